"""The fuzz harnesses of fuzz/ as regression tests (issue 15): every committed seed (fuzz/seeds/) and every
committed input of a finding (fuzz/crashes/<harness>/) replayed through its harness, the mutators run,
the open findings held as xfail tests, and bounded reads of /dev/zero and a FIFO.

No atheris needed: each harness's ``test_one_input`` is called directly (what libFuzzer calls), with
the memory bound of fuzzlib checked on every input.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
FUZZ = ROOT / "fuzz"
sys.path.insert(0, str(FUZZ))
os.environ.setdefault("REFCODEC_FUZZ_MEMORY", "1")

HARNESSES = ("stream", "model", "json", "rans", "judge")


@pytest.fixture(autouse=True)
def shipped_models_restored():
    """The harnesses hide the shipped models and widen the model cache for the life of a fuzzing process
    (fuzzlib.hide_shipped_models, keep_models_loaded); in the test process the next test gets them back."""
    from refcodec.decoder import model

    saved = model.MODELS_DIR, model._loaded.size
    yield
    model.MODELS_DIR, model._loaded.size = saved


def harness(name: str):
    return importlib.import_module(f"fuzz_{name}")


def seed_folder(name: str) -> Path:
    return FUZZ / "seeds" / ("models" if name == "model" else name)


def committed(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*") if p.is_file()) if folder.is_dir() else []


@pytest.mark.parametrize("name", HARNESSES)
def test_seeds_replay(name):
    """Every committed seed passes its harness: the same outcome from both decoders, only RefcodecErrors,
    memory under the bound, a verdict from the judge."""
    seeds = committed(seed_folder(name))
    assert seeds, f"no committed seeds for the {name} harness"
    h = harness(name)
    for path in seeds:
        h.test_one_input(path.read_bytes())


CRASHES = [(name, path) for name in HARNESSES for path in committed(FUZZ / "crashes" / name)]


@pytest.mark.parametrize(("name", "path"), CRASHES, ids=[f"{n}-{p.name[:16]}" for n, p in CRASHES])
def test_crash_inputs_replay(name, path):
    """Each input of a fixed finding, committed under fuzz/crashes/<harness>/, passes its harness now."""
    harness(name).test_one_input(path.read_bytes())


@pytest.mark.parametrize("name", ["stream", "model"])
def test_mutators(name):
    """The structure-aware mutators turn every seed into bytes within max_size, deterministic per seed,
    and what they make passes the harness."""
    h = harness(name)
    for i, path in enumerate(committed(seed_folder(name))[:4]):
        data = path.read_bytes()
        out = h.custom_mutator(data, 1 << 17, i)
        assert isinstance(out, bytes) and len(out) <= 1 << 17
        assert out == h.custom_mutator(data, 1 << 17, i)
        h.test_one_input(out)


def test_stream_mutator_fixes_lengths():
    """A stream's sub-stream mutated, the length fields are those of the new sub-streams."""
    h = harness("stream")
    for path in committed(seed_folder("stream")):
        fields = h.split(path.read_bytes())
        fields["y"] = fields["y"] + b"\x01\x02\x03\x04"
        again = h.split(h.join(fields))
        assert again["y"] == fields["y"] and again["z"] == fields["z"]


def test_model_mutator_keeps_valid_containers():
    """Most mutations of a valid model keep a parseable container (spec §6.1): offsets and header length fixed up."""
    from refcodec.decoder.errors import ModelError
    from refcodec.decoder.model import parse_container

    h = harness("model")
    data = committed(seed_folder("model"))[0].read_bytes()
    parsed = 0
    for seed in range(40):
        try:
            parse_container(h.custom_mutator(data, 1 << 17, seed))
            parsed += 1
        except ModelError:
            pass
    assert parsed >= 25


def test_memory_bound_catches_a_large_allocation():
    """The harnesses' memory check fails an input whose handling allocates more than the bound."""
    import fuzzlib

    with fuzzlib.traced_peak(b"") as peak:
        block = np.ones(fuzzlib.memory_bound(0) // 8 + 1024)
    del block
    with pytest.raises(fuzzlib.Finding):
        fuzzlib.check_memory(peak[0], fuzzlib.memory_bound(0), "test")


def test_memory_bound_holds_for_a_large_picture():
    """A 512 x 256 picture of a small model (N=2, M=3), where the per-pixel term of the bound dominates:
    the reference decoder's peak stays under half of it (fuzz/README.md, "Memory bound")."""
    import fuzzlib

    from refcodec.decoder.bitstream import hyper_size, latent_size
    from refcodec.decoder.decoding import decode_stream
    from refcodec.decoder.model import model_from_bytes
    from refcodec.encoder.encode import encode_latents

    path = next(p for p in committed(seed_folder("model")) if model_from_bytes(p.read_bytes()).architecture
                == "hyperprior")
    model = model_from_bytes(path.read_bytes())
    lat = latent_size(256, 512)
    rng = np.random.default_rng(4)
    stream = encode_latents(rng.integers(-2, 3, size=(model.m, *lat)), model, 512, 256, impl="fast",
                            z_hat=rng.integers(-1, 2, size=(model.n, *hyper_size(*lat))))
    with fuzzlib.traced_peak(stream) as peak:
        decode_stream(stream, [path], "reference")
    pixel_part = fuzzlib.PIXEL_K * 256 * lat[0] * lat[1]
    assert peak[0] <= pixel_part // 2 + fuzzlib.BASE_BYTES
    fuzzlib.check_memory(peak[0], fuzzlib.memory_bound(len(stream), max(model.n, model.m), *lat,
                                                       path.stat().st_size), "decoding")


@pytest.mark.parametrize("item", [b"[0],", b"{},", b"[],"])
def test_memory_bound_holds_for_a_header_of_tiny_containers(item):
    """The costliest model header per byte (fuzz/README.md, "Memory bound"): a JSON array of tiny
    containers, here 128 KiB of it, stays under half the bound's 64 bytes per byte of model file."""
    import fuzzlib

    from refcodec.decoder.errors import ModelError
    from refcodec.decoder.model import load_model

    header = b"[" + item * ((1 << 17) // len(item)) + item[:-1] + b"]"
    data = len(header).to_bytes(8, "little") + header
    with fuzzlib.traced_peak(data) as peak, pytest.raises(ModelError):
        load_model(data)
    assert peak[0] <= fuzzlib.MODEL_K // 2 * len(data)
    fuzzlib.check_memory(peak[0], fuzzlib.memory_bound(0, model_bytes=len(data)), "model loading")


# --- open findings (fuzz/README.md): minimal failing regression tests ----------------------------


def _judge_setup():
    h = harness("judge")
    h.setup()
    return h


def test_judge_png_output_fifo_does_not_hang(tmp_path):
    """Finding 1 (fixed): a FIFO left at the output path is refused before it is opened."""
    from refcodec.conformance.judge import Failure, read_png

    fifo = tmp_path / "output.png"
    os.mkfifo(fifo)
    outcome: list = []

    def read() -> None:
        try:
            read_png(fifo, 16, 16)
        except Failure as f:
            outcome.append(f.reason)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(2.0)
    hung = reader.is_alive()
    if hung:  # release the reader: a writer opens the FIFO and closes it at once (end of file)
        os.close(os.open(fifo, os.O_WRONLY))
        reader.join(5.0)
    assert not hung, "read_png blocked on a FIFO"
    assert outcome == ["unreadable-output"]


def test_judge_stage_folder_is_a_verdict():
    """Finding 2 (fixed): a folder at a stage path is a verdict ("not a regular file"), not an exception."""
    h = _judge_setup()
    vector = next(i for i, v in enumerate(h.VECTORS) if not v.negative)
    # status 0, the right output, dump on; the first stage a folder, the others right
    h.test_one_input(h.make_input(vector, 1, 1, b"\x07" + b"\x01" * 20))


# --- bounded reads (issue 15, item 4) ---------------------------------------------------------------


def _endless_fifo(path: Path, stop: threading.Event, head: bytes = b"") -> threading.Thread:
    """A FIFO at ``path`` with a writer that writes ``head`` then zeros until the reader goes away."""
    os.mkfifo(path)

    def write():
        try:
            with open(path, "wb") as f:
                f.write(head)
                while not stop.is_set():
                    f.write(bytes(1 << 16))
        except (BrokenPipeError, OSError):
            pass

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    return writer


@pytest.mark.parametrize("kind", ["dev-zero", "fifo"])
def test_stream_file_reads_are_bounded(tmp_path, monkeypatch, kind):
    from refcodec.decoder import bitstream
    from refcodec.decoder.errors import StreamError

    if not hasattr(bitstream, "read_stream_file"):
        pytest.skip("refcodec.decoder.bitstream.read_stream_file does not exist yet")
    monkeypatch.setattr(bitstream, "MAX_STREAM_BYTES", 3 << 20)
    stop = threading.Event()
    path = Path("/dev/zero") if kind == "dev-zero" else tmp_path / "stream.fifo"
    if kind == "fifo":  # a valid fixed header (spec §7.1), then zeros without end
        _endless_fifo(path, stop, bitstream.MAGIC + bytes([1, 0]) + bytes(32) + bytes([16, 0, 16, 0, 0]))
    start = time.monotonic()
    try:
        with pytest.raises(StreamError) as e:
            bitstream.read_stream_file(path)
    finally:
        stop.set()
    assert e.value.clause == ("7.2" if kind == "dev-zero" else "7.3")  # /dev/zero: its magic, read no further
    assert time.monotonic() - start < 10


@pytest.mark.parametrize("kind", ["dev-zero", "fifo"])
def test_model_file_reads_are_bounded(tmp_path, monkeypatch, kind):
    from refcodec.decoder import model
    from refcodec.decoder.errors import ModelError

    monkeypatch.setattr(model, "MAX_MODEL_BYTES", 3 << 20)
    stop = threading.Event()
    path = Path("/dev/zero") if kind == "dev-zero" else tmp_path / "model.fifo"
    if kind == "fifo":
        _endless_fifo(path, stop)
    try:
        with pytest.raises(ModelError) as e:
            model.read_model_file(path)
    finally:
        stop.set()
    assert e.value.clause == "6.1"
