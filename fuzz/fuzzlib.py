"""What the fuzz harnesses share: the repository on sys.path, instrumentation, the outcome rule,
the models the stream harness may use, the memory bound, and the entry point of every harness.

A harness is a script ``fuzz/fuzz_<name>.py`` with ``test_one_input(data: bytes)`` (libFuzzer's
``LLVMFuzzerTestOneInput``) and optionally ``custom_mutator(data, max_size, seed)``. The only
allowed outcome of an input is a return or a :class:`refcodec.RefcodecError` raised by the code
under test, which the harness catches; anything else escapes ``test_one_input`` and is a finding:
a foreign exception, a :class:`Finding` (two decoders disagree, memory above the bound, a judge
that does not return a verdict), a crash or a hang (libFuzzer's ``-timeout``).

``main`` runs the harness under atheris (coverage-guided libFuzzer; every libFuzzer flag works:
``-max_total_time``, ``-dict``, ``-runs``, corpus folders, a file to reproduce). Without atheris
it replays the files and folders given on the command line, so a finding can be reproduced
anywhere (``python fuzz/fuzz_stream.py crash-...``).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import tempfile
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

FUZZ_DIR = Path(__file__).resolve().parent
REPO = FUZZ_DIR.parent
if str(REPO) not in sys.path:  # fuzz the checkout this file is in, installed or not
    sys.path.insert(0, str(REPO))

try:
    import atheris
except ImportError:  # replay only (tests, a machine without the wheel)
    atheris = None

VECTORS = REPO / "vectors"
SEEDS = FUZZ_DIR / "seeds"  # the small committed seed set, one folder per harness
SEED_MODELS = SEEDS / "models"
CRASHES = FUZZ_DIR / "crashes"  # committed inputs of fixed findings, one folder per harness: regression tests
SMALL_MODEL_BYTES = 64 * 1024  # the test models of vectors/models/ (N, M <= 64), not the shipped photo models
# Modules Numba compiles (their bytecode must stay as written) are never instrumented.
NOT_INSTRUMENTED = ("refcodec.fast.layers", "refcodec.fast.rans", "refcodec.fast.joint", "refcodec.fast.vnni",
                    "refcodec.encoder.latents")


class Finding(AssertionError):
    """An outcome no input may have, other than a foreign exception."""


def instrumented(active: bool):
    """A context in which refcodec's modules are imported with atheris' coverage instrumentation
    (when ``active`` -- the harness runs as a script -- and atheris is installed)."""
    if not active or atheris is None or os.environ.get("REFCODEC_FUZZ_NO_INSTRUMENT") == "1":
        return contextlib.nullcontext()
    return atheris.instrument_imports(include=["refcodec"], exclude=list(NOT_INSTRUMENTED))


def error_outcome(e: Exception) -> tuple:
    """A RefcodecError as compared between decoders: (class name, clause)."""
    return (type(e).__name__, e.clause)  # type: ignore[attr-defined]


def outcome(run: Callable[[], Any]) -> tuple:
    """("ok", value) or ("error", class, clause) of ``run()``; a foreign exception propagates."""
    from refcodec.decoder.errors import RefcodecError

    try:
        return ("ok", run())
    except RefcodecError as e:
        return ("error", *error_outcome(e))


def compare_stages(stream: bytes, model_files: list) -> None:
    """The intermediate stages of spec §9.4 (what ``--dump-stages`` writes and the conformance runner
    compares) of a stream both decoders decode are the same in both: the crop of §8.5 could hide a
    difference in the padding."""
    import numpy as np

    from refcodec.decoder.decoding import stages

    expected, got = stages(stream, model_files, "reference"), stages(stream, model_files, "fast")
    if list(expected) != list(got):
        raise Finding(f"the decoders dump different stages: {list(expected)} vs {list(got)}")
    for name, array in expected.items():
        if not np.array_equal(array, got[name]):
            raise Finding(f"stage {name} differs between the decoders")


# --- models for the stream harness --------------------------------------------


def small_model_files() -> list[Path]:
    """The model files a fuzzed stream may name: the committed seed models (fuzz/seeds/models/, one per
    architecture: the committed streams name them) and the small test models of vectors/models/ (valid
    and invalid ones)."""
    vectors = sorted(p for p in (VECTORS / "models").glob("*.safetensors") if p.stat().st_size <= SMALL_MODEL_BYTES)
    return sorted(SEED_MODELS.glob("*.safetensors")) + vectors


_hidden: list = []


def hide_shipped_models() -> None:
    """Make refcodec's shipped models (2-6 MB, N=128/192) unavailable in this process, so that a fuzzed
    stream decodes only with the small models passed to it (a photo model costs seconds per input)."""
    from refcodec.decoder import model

    if not _hidden:
        empty = tempfile.TemporaryDirectory(prefix="refcodec-fuzz-no-models-")
        _hidden.append(empty)  # kept alive for the life of the process
        model.MODELS_DIR = Path(empty.name)


def keep_models_loaded(count: int) -> None:
    """Let refcodec's cache of loaded models (model._loaded, 8 models) hold ``count``: the stream harness
    swaps among dozens of small models, and reloading one per input would be most of its time (model
    loading has a harness of its own)."""
    from refcodec.decoder import model

    model._loaded.size = max(model._loaded.size, count)


# --- the memory bound (issue 15, item 4) ----------------------------------------

# Peak bytes traced (tracemalloc: Python objects and NumPy buffers) while one input is handled, of what was
# allocated during it, must not exceed
#     (STREAM_K * max(N, M) + PIXEL_K) * 256 * LatH * LatW  +  MODEL_K * model file bytes  +  INPUT_K * input bytes
#     + BASE_BYTES
# where LatH, LatW come from the stream's validated width and height (spec §7.3, §8.2; 256 LatH LatW is the
# padded picture), N, M from the model's validated metadata (spec §6.2), the model file's size from §6.1.
# The constants come from measurement (fuzz/README.md, "Memory bound"), with a margin of 2 or more.
STREAM_K = 32  # the reference synthesis's activations: at most 13 bytes per channel and padded pixel measured
PIXEL_K = 256  # its 3-channel output, the crop's copies: 107 bytes per padded pixel measured (N=2, M=3)
MODEL_K = 64  # loading: 1.2 x the file measured; a header of 1 MiB of "[0]," JSON makes 25 bytes of objects a byte
INPUT_K = 16  # copies of the stream and its sub-streams, bytes -> words
BASE_BYTES = 4 << 20


def memory_bound(input_bytes: int, channels: int = 0, lat_h: int = 0, lat_w: int = 0, model_bytes: int = 0) -> int:
    """The largest peak allowed for one input (see above)."""
    return ((STREAM_K * channels + PIXEL_K) * 256 * lat_h * lat_w + MODEL_K * model_bytes + INPUT_K * input_bytes
            + BASE_BYTES)


# REFCODEC_FUZZ_MEMORY=K: measure one input in K (chosen by its SHA-256, so a finding reproduces);
# 1 (the default) measures every input, 0 none. tracemalloc makes a traced decode ~7 times slower.
MEMORY_EVERY = int(os.environ.get("REFCODEC_FUZZ_MEMORY", "1") or "1")


def measured(data: bytes) -> bool:
    """Whether the memory of this input is measured (REFCODEC_FUZZ_MEMORY)."""
    return MEMORY_EVERY == 1 or (MEMORY_EVERY > 1 and hashlib.sha256(data).digest()[0] % MEMORY_EVERY == 0)


@contextlib.contextmanager
def traced_peak(data: bytes) -> Iterator[list]:
    """Yields a list that holds, after the block, the peak of the bytes allocated during it and not yet
    freed (tracemalloc, started for the block alone); 0 when input ``data`` is not measured."""
    result = [0]
    if not measured(data) or tracemalloc.is_tracing():  # someone else traces: no measurement of ours
        yield result
        return
    tracemalloc.start()  # traces only what is allocated from here on: the block's own allocations
    try:
        yield result
    finally:
        result[0] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()


def check_memory(peak: int, bound: int, what: str) -> None:
    if peak > bound:
        raise Finding(f"{what}: peak memory {peak} bytes above the bound {bound}")


# --- the spec's own pseudocode ------------------------------------------------------

_spec: dict = {}


def spec_namespace() -> dict:
    """Every ```python block of spec/*.md executed in file order in one namespace (spec §2.1), as
    tests/conftest.py does: the spec's procedures (ParseJson, ...) as an independent oracle."""
    if not _spec:
        import re

        block = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
        ns: dict = {"__name__": "refcodec_spec"}
        for path in sorted((REPO / "spec").glob("*.md")):
            for code in block.findall(path.read_text(encoding="utf-8")):
                exec(compile(code, f"spec/{path.name}", "exec"), ns)
        _spec.update(ns)
    return _spec


# --- helpers for mutators ---------------------------------------------------------


def rng_for(data: bytes, seed: int):
    """A NumPy generator seeded from a mutator's seed (and the input, so every input mutates differently)."""
    import numpy as np

    return np.random.default_rng([seed & 0xFFFFFFFF, int.from_bytes(hashlib.sha256(data).digest()[:8], "little")])


_fuzzing: list = []  # non-empty inside atheris.Fuzz(): atheris.Mutate aborts the process outside it


def byte_mutate(data: bytes, max_size: int) -> bytes:
    """libFuzzer's own mutation of ``data`` under atheris; a few random byte flips without it."""
    if _fuzzing:
        return atheris.Mutate(data, max_size)
    import numpy as np

    rng = np.random.default_rng()
    out = bytearray(data or b"\0")
    for _ in range(int(rng.integers(1, 4))):
        out[int(rng.integers(len(out)))] = int(rng.integers(256))
    return bytes(out[:max_size])


INTERESTING_16 = (0, 1, 2, 3, 15, 16, 17, 255, 256, 1023, 4095, 4096, 4097, 0x7FFF, 0x8000, 0xFFFF)
INTERESTING_32 = (0, 1, 4, 8, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0xFFFFFFFC)


class Reader:
    """Consumes an input from its front, as libFuzzer's FuzzedDataProvider does, but plain Python (replay
    works without atheris) and never failing: past the end every byte reads as 0."""

    def __init__(self, data: bytes):
        self.data, self.pos = bytes(data), 0

    def byte(self) -> int:
        b = self.data[self.pos] if self.pos < len(self.data) else 0
        self.pos += 1
        return b

    def uint(self, n: int) -> int:
        """An unsigned little-endian integer of ``n`` bytes."""
        return int.from_bytes(bytes(self.byte() for _ in range(n)), "little")

    def take(self, n: int) -> bytes:
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def rest(self) -> bytes:
        out = self.data[self.pos :]
        self.pos = len(self.data)
        return out


# --- the entry point ----------------------------------------------------------------


def inputs(paths: list[str]) -> Iterator[Path]:
    """The files among ``paths`` and inside the folders among them, sorted."""
    for arg in paths:
        p = Path(arg)
        if p.is_dir():
            yield from sorted(q for q in p.rglob("*") if q.is_file())
        else:
            yield p


def replay(test_one_input: Callable[[bytes], None], paths: list[str]) -> int:
    """Run ``test_one_input`` on every file of ``paths``; the number of inputs run."""
    n = 0
    for path in inputs(paths):
        test_one_input(path.read_bytes())
        n += 1
    return n


def main(test_one_input: Callable[[bytes], None], custom_mutator: Callable | None = None,
         setup: Callable[[], None] | None = None, seeds: str | None = None) -> None:
    """Fuzz with atheris (libFuzzer flags on the command line), or replay without it. Before fuzzing, the
    committed seeds of fuzz/seeds/``seeds`` run once, untimed: Numba compiles the fast path's kernels then
    (seconds on a clean clone), not inside libFuzzer's per-input -timeout."""
    if setup is not None:
        setup()
    if seeds is not None:
        replay(test_one_input, [str(SEEDS / seeds)])
    if atheris is None:
        files = [a for a in sys.argv[1:] if not a.startswith("-")]
        if not files:
            sys.exit("atheris is not installed (pip install atheris): only replaying given files works")
        print(f"replayed {replay(test_one_input, files)} inputs, no finding")
        return
    if custom_mutator is not None and os.environ.get("REFCODEC_FUZZ_PLAIN") != "1":
        atheris.Setup(sys.argv, test_one_input, custom_mutator=custom_mutator)
    else:
        atheris.Setup(sys.argv, test_one_input)
    _fuzzing.append(True)
    atheris.Fuzz()
