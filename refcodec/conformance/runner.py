"""Conformance runner: decode every golden vector (vectors/) with any decoder and check the result.

A decoder proves itself conforming by passing every vector::

    refcodec conform --decoder './mydec --model {model} {stream} {output}'
    refcodec conform --decoder 'mydec {stream} {model} {output}' --output-format png \\
        --json results.json --junit results.xml --filter neg- --jobs 4

``--decoder`` is a command line, split into words as a POSIX shell would
(``shlex``) and run without a shell, from the current directory. Within each
word, ``{stream}``, ``{model}`` and ``{output}`` become the paths of the
vector's stream, the model file it needs and the file the decoder shall write,
``{dump}`` an empty directory of the vector's own for intermediate stages
(below), and ``{python}`` the running Python interpreter; substitution happens
after splitting, so paths with spaces are passed as single arguments. The
output is raw RGB bytes, row-major (H, W, 3) (``--output-format rgb``, the
default; the path ends in ``.rgb``) or a PNG file (``--output-format png``;
``.png``). refcodec's own decoder passes with (``python -m refcodec.conform``
takes the same options)::

    refcodec conform --decoder '{python} -m refcodec.cli decode --model-file {model} {stream} {output}'

A positive vector passes when the decoder exits with status 0 and the SHA-256
of its output pixels equals the manifest's ``pixels_sha256``; for a mismatch
the report gives PSNR, the largest difference and the number of differing
pixels, and a heat-map of the differences is written to ``--diff-dir``. A
negative vector (``neg-*``) passes when the decoder reports an error (spec
§2.6): it exits with a non-zero status (not killed by a signal) and leaves no
output file. The class of
the error (``StreamError`` or ``ModelError``, spec §2.6) cannot be read from a
foreign decoder's exit status, so it is read from the last line the decoder
writes to stderr: a decoder that names the other class there fails the vector
(``wrong-error``); one that names neither is judged by its exit status alone,
and the report's note says that its class was not checked.

Intermediate stages (spec §9.4). When the template contains ``{dump}``, the
decoder may write its stages there as ``<stage>.i32``; after it ran, the
runner compares them, in decoding order, with the ``stages`` of a positive
vector's manifest and names the first one that is missing, has the wrong size
or the wrong checksum (``first_divergent_stage``; ``output`` when every stage
matches but the picture differs: the divergence is in the crop or the output,
§8.5). A decoder that writes stages is expected to write all of them; one that
writes none is not judged on them. Stages that differ under correct pixels fail
the vector too (``stage-mismatch``). Stage files are sized before they are read
and only hashed, never loaded, and neither links nor special files are followed.
refcodec's own decoder::

    refcodec conform --decoder '{python} -m refcodec.cli decode --dump-stages {dump} \\
        --model-file {model} {stream} {output}'

Generative conformance. ``--random N`` replaces the golden vectors with N
fresh valid streams: stream i of ``--seed S`` has a random architecture, a
small random valid model (``refcodec.testing.random_model``, N and M 1..4,
some at the bounds of §6.4, any mean shift of §6.3), a random size (1..96 each side) and random
latents (mostly small, some escapes and ``s16`` extremes), encoded by
refcodec's encoder and decoded by its reference decoder for the expected
picture. The same seed gives the same streams (with the same refcodec
version), and stream i does not depend on N; without ``--seed`` a seed is
drawn and printed. A stream a decoder fails is shrunk: smaller pictures,
zeroed parts of the latents, smaller values are tried greedily, at most
``--shrink-runs`` decoder runs (default 60) per failing stream, keeping a change
when the decoder still fails in the same way; the smallest failing stream is
saved under ``--save-dir`` as a vector folder in the golden-vector format, with
an ``index.json``, so that ``refcodec conform --vectors DIR`` runs it again.

Exit status: 0 when every vector passes, 1 when any fails, 2 on a usage error
(a bad ``--decoder`` template, no vectors, a decoder that cannot be started).
"""

from __future__ import annotations

import argparse
import dataclasses
import errno
import hashlib
import json
import math
import os
import re
import secrets
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from concurrent.futures import CancelledError, ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from refcodec import __version__
from refcodec.decoder import decoding as decoder
from refcodec.decoder.bitstream import HYPER_STRIDE, STRIDE
from refcodec.encoder.encode import encode_latents
from refcodec.image import png_bytes, psnr
from refcodec.decoder.layers import ACT_MAX, ACT_MIN
from refcodec.decoder.model import ARCHITECTURES, MAX_MEAN_SHIFT, model_from_bytes
from refcodec.conformance.models import random_model

DEFAULT_VECTORS = Path(__file__).resolve().parents[2] / "vectors"
PLACEHOLDER = re.compile(r"\{(stream|model|output|dump|python)\}")
REQUIRED_PLACEHOLDERS = ("stream", "output")
ERROR_CLASS = re.compile(r"\b(StreamError|ModelError)\b")  # the error classes of spec §2.6
ESCAPE_SEQUENCE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
NOT_XML_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")
MAX_LINE = 500  # characters kept of a decoder's last stderr line
SUITE = "refcodec-conformance"
CLASSNAME = "refcodec.vectors"
STAGE_NAME = re.compile(r"[a-z_]+(\.[0-9]+)?")  # z_hat, synthesis.3, ... (spec §9.4)
STAGE_SUFFIX = ".i32"
STAGE_VALUE_BYTES = 4  # s32 (spec §9.4)
OUTPUT_STAGE = "output"  # first_divergent_stage when every stage matches: the crop and output (spec §8.5)
OPEN_STAGE = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
HASH_CHUNK = 1 << 20
DEFAULT_SAVE_DIR = Path("conform-failures")
MAX_SHRINK_RUNS = 60  # decoder runs spent shrinking one failing random stream
MAX_RANDOM_SIDE = 96  # random pictures are 1..96 samples on each side
MAX_RANDOM_CHANNELS = 4  # random models have N, M in 1..4
MAX_RANDOM_LEVELS = 8  # rows of the y table of random hyperprior-family models
STRESS_CHANCE = 0.25  # share of random models at the bounds of spec §6.4


class UsageError(Exception):
    """A bad option, unreadable vectors or a decoder that cannot be started: exit status 2."""


class Failure(Exception):
    """A vector failed: ``reason`` is a short code, ``detail`` one line for people,
    ``data`` further fields of the :class:`Result`."""

    def __init__(self, reason: str, detail: str, **data):
        super().__init__(detail)
        self.reason, self.detail, self.data = reason, detail, data


@dataclass(frozen=True)
class Vector:
    name: str
    folder: Path
    model: Path
    manifest: dict

    @property
    def negative(self) -> bool:
        return "expected_error" in self.manifest

    @property
    def stream(self) -> Path:
        return self.folder / "stream.rcdc"

    @property
    def expected(self) -> Path:
        return self.folder / "expected.png"


@dataclass(frozen=True)
class Config:
    """How to run and judge the decoder; ``dump``: the template has ``{dump}`` (compare stages)."""

    template: list[str]
    output_format: str
    diff_dir: Path
    dump: bool = False


@dataclass(frozen=True)
class Outcome:
    """What a decoder did: ``status`` is its exit status (negative: killed by that
    signal) or None when it was killed after the timeout."""

    status: int | None
    stderr: str
    seconds: float


@dataclass
class Result:
    """One vector's result. ``reason`` is "" when it passed, else one of: timeout,
    exit-status, missing-output, unreadable-output, wrong-size, mismatch,
    stage-mismatch (positive vectors); timeout, accepted, crashed, output-left
    (negative vectors).

    ``first_divergent_stage``: with ``{dump}``, the first stage (spec §9.4) the
    decoder wrote wrongly or not at all, or "output" when every stage matched but
    the vector failed; None when it passed, or wrote no stage. With ``--random``,
    ``saved_vector`` is the folder of the smallest failing stream the shrinker
    found, after ``shrink_runs`` decoder runs."""

    name: str
    negative: bool
    passed: bool
    reason: str
    detail: str
    seconds: float
    exit_status: int | None
    stderr: str  # the decoder's last non-empty stderr line
    note: str = ""
    psnr: float | None = None
    max_abs_diff: int | None = None
    differing_pixels: int | None = None
    heatmap: str | None = None
    first_divergent_stage: str | None = None
    saved_vector: str | None = None
    shrink_runs: int | None = None


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {text}")
    return value


def natural_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, not {text}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, not {text}")
    return value


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the conformance runner's options to ``p`` (the ``conform`` subcommand)."""
    p.add_argument("--decoder", required=True, metavar="CMD",
                   help="decoder command line; {stream}, {model} and {output} become paths, {dump} a "
                        "directory for intermediate stages, {python} this Python interpreter")
    p.add_argument("--output-format", choices=("rgb", "png"), default="rgb",
                   help="what the decoder writes: raw RGB bytes (default) or PNG")
    p.add_argument("--vectors", type=Path, metavar="DIR",
                   help="golden vectors folder (default: the repository's vectors/)")
    p.add_argument("--filter", action="append", default=[], metavar="SUBSTR",
                   help="run only vectors whose name contains SUBSTR (repeatable: any of them)")
    p.add_argument("--timeout", type=positive_float, default=60.0, metavar="SECONDS",
                   help="time limit per vector (default 60)")
    p.add_argument("--jobs", type=positive_int, default=os.cpu_count() or 1, metavar="N",
                   help="vectors decoded in parallel (default: the number of CPUs)")
    p.add_argument("--diff-dir", type=Path, default=Path("conform-diffs"), metavar="DIR",
                   help="where heat-maps of mismatching pixels go (default ./conform-diffs)")
    p.add_argument("--json", type=Path, metavar="FILE", help="write all results as JSON")
    p.add_argument("--junit", type=Path, metavar="FILE", help="write JUnit XML")
    g = p.add_argument_group("generative conformance (instead of the golden vectors)")
    g.add_argument("--random", type=positive_int, metavar="N",
                   help="decode N fresh random valid streams instead of the golden vectors")
    g.add_argument("--seed", type=natural_int, metavar="S",
                   help="seed of the random streams (same seed, same streams; default: drawn and printed)")
    g.add_argument("--save-dir", type=Path, metavar="DIR",
                   help=f"where the shrunk failing streams are saved as vectors (default ./{DEFAULT_SAVE_DIR})")
    g.add_argument("--shrink-runs", type=natural_int, metavar="K",
                   help=f"decoder runs spent shrinking each failing stream (default {MAX_SHRINK_RUNS}; "
                        "0: save it as it is)")


def run(args: argparse.Namespace) -> int:
    """Run the vectors ``args`` select (or ``--random`` streams) through the decoder; returns the exit status."""
    try:
        check_options(args)
        words = parse_template(args.decoder)
        config = Config(words, args.output_format, args.diff_dir, dump="dump" in placeholders(words))
        decoders = Decoders(args.timeout)
        start = time.monotonic()
        if args.random:
            results, source = run_random(args, config, decoders)
        else:
            folder = args.vectors or DEFAULT_VECTORS
            results = check_all(load_vectors(folder, args.filter), config, decoders, args.jobs)
            source = {"vectors": str(folder.resolve())}
        print_summary(results)
        write_reports(args, source, results, time.monotonic() - start)
    except UsageError as e:
        print(f"refcodec conform: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("refcodec conform: interrupted", file=sys.stderr)
        return 130
    return 0 if all(r.passed for r in results) else 1


def check_options(args: argparse.Namespace) -> None:
    """--random replaces the golden vectors; --seed, --save-dir and --shrink-runs only go with it."""
    if args.random and (args.vectors or args.filter):
        raise UsageError("--random replaces the golden vectors: do not combine it with --vectors or --filter")
    if not args.random:
        given = [f"--{name.replace('_', '-')}" for name in ("seed", "save_dir", "shrink_runs")
                 if getattr(args, name) is not None]
        if given:
            raise UsageError(f"{', '.join(given)}: only with --random N")


# --- the decoder command ---------------------------------------------------


def placeholders(words: list[str]) -> set[str]:
    """The names of the placeholders in a template's words."""
    return {name for word in words for name in PLACEHOLDER.findall(word)}


def parse_template(template: str) -> list[str]:
    """The words of a ``--decoder`` template, placeholders not yet substituted."""
    try:
        words = shlex.split(template)
    except ValueError as e:
        raise UsageError(f"--decoder: {e}") from None
    missing = [f"{{{name}}}" for name in REQUIRED_PLACEHOLDERS if name not in placeholders(words)]
    if missing:
        raise UsageError(f"--decoder must contain {' and '.join(missing)}: {template!r}")
    return words


def build_command(words: list[str], paths: dict[str, str]) -> list[str]:
    """``words`` with every placeholder replaced, in one pass (a path containing
    ``{model}`` stays as it is)."""
    return [PLACEHOLDER.sub(lambda m: paths[m.group(1)], word) for word in words]


class Decoders:
    """Runs decoder processes, each in a session of its own, so that a timeout or
    an interrupt kills everything a decoder started, not only the decoder."""

    def __init__(self, timeout: float):
        self.timeout = timeout
        self._lock = threading.Lock()
        self._running: set[subprocess.Popen] = set()
        self._stopped = False

    def run(self, argv: list[str]) -> Outcome:
        start = time.monotonic()
        proc = self._start(argv)
        try:
            _, err = proc.communicate(timeout=self.timeout)
            status = proc.returncode
        except subprocess.TimeoutExpired:
            kill_group(proc)
            _, err = proc.communicate()
            status = None
        finally:
            with self._lock:
                self._running.discard(proc)
        return Outcome(status, last_line(err), round(time.monotonic() - start, 3))

    def _start(self, argv: list[str]) -> subprocess.Popen:
        with self._lock:
            if self._stopped:
                raise CancelledError
            try:
                proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, start_new_session=True)
            except OSError as e:
                raise UsageError(f"cannot run the decoder {argv[0]!r}: {e.strerror or e}") from None
            self._running.add(proc)
        return proc

    def stop(self) -> None:
        """Kill every running decoder and start no more."""
        with self._lock:
            self._stopped = True
            for proc in self._running:
                kill_group(proc)


def kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def last_line(output: bytes) -> str:
    """The last non-empty line of a decoder's output, as plain text that is also valid in XML."""
    lines = output.decode("utf-8", "replace").splitlines()
    line = next((s.strip() for s in reversed(lines) if s.strip()), "")
    line = NOT_XML_TEXT.sub("?", ESCAPE_SEQUENCE.sub("", line))
    return line if len(line) <= MAX_LINE else line[: MAX_LINE - 1] + "…"


def describe_status(status: int) -> str:
    if status >= 0:
        return f"exit status {status}"
    try:
        return f"killed by {signal.Signals(-status).name}"
    except ValueError:
        return f"killed by signal {-status}"


# --- the vectors ----------------------------------------------------------


def load_vectors(folder: Path, filters: list[str]) -> list[Vector]:
    """The vectors of ``folder``/index.json whose name contains any of ``filters`` (all if none)."""
    folder = folder.resolve()
    if not (folder / "index.json").is_file():
        raise UsageError(f"no golden vectors in {folder} (no index.json); pass --vectors DIR")
    try:
        entries = json.loads((folder / "index.json").read_text(encoding="utf-8"))["vectors"]
        vectors = [load_vector(folder, e) for e in entries if any(s in e["name"] for s in filters or [""])]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UsageError(f"cannot read the golden vectors in {folder}: {type(e).__name__}: {e}") from None
    if not vectors:
        raise UsageError(f"no vector's name contains {' or '.join(map(repr, filters))}")
    return vectors


def load_vector(folder: Path, entry: dict) -> Vector:
    """One vector, after checking its stream and model against the manifest's hashes
    (so that a damaged checkout is not blamed on the decoder) and its stage list."""
    manifest_path = folder / entry["manifest"]
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    vector = Vector(entry["name"], manifest_path.parent, folder / manifest["model"], manifest)
    require_sha256(vector.stream, manifest["stream_sha256"])
    if "model_id" in manifest:
        require_sha256(vector.model, manifest["model_id"])
    for stage in manifest.get("stages", []):
        stage_file_size(stage)
    return vector


def stage_file_size(stage: dict) -> int:
    """The size of a manifest stage's file; ValueError for a name that is not a plain
    stage name (it becomes a file name) or a shape that is not a list of sizes."""
    shape = stage["shape"]
    if not (isinstance(stage["name"], str) and STAGE_NAME.fullmatch(stage["name"]) and isinstance(shape, list)
            and all(type(s) is int and s >= 0 for s in shape) and isinstance(stage["sha256"], str)):
        raise ValueError(f"malformed stage entry {stage!r}")
    return STAGE_VALUE_BYTES * math.prod(shape)


def require_sha256(path: Path, expected: str) -> None:
    if sha256(path.read_bytes()) != expected:
        raise UsageError(f"{path} is damaged: its SHA-256 differs from the manifest's")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- checking one vector --------------------------------------------------


def run_parallel(task, items: list, labels: list[str], jobs: int, decoders: Decoders) -> list:
    """``task(item)`` for every item, ``jobs`` at a time, in the order of ``items``;
    on an error or an interrupt every running decoder is killed."""
    results: list = [None] * len(items)
    executor = ThreadPoolExecutor(max_workers=jobs)
    try:
        futures = {executor.submit(task, item): i for i, item in enumerate(items)}
        for done, future in enumerate(as_completed(futures), 1):
            results[futures[future]] = future.result()
            show_progress(done, len(items), labels[futures[future]])
    except BaseException:
        decoders.stop()
        raise
    finally:
        executor.shutdown(cancel_futures=True)
    return results


def check_all(vectors: list[Vector], config: Config, decoders: Decoders, jobs: int) -> list[Result]:
    """Every vector's result, in the order of ``vectors``, decoding ``jobs`` at a time."""
    return run_parallel(lambda v: check_vector(v, config, decoders), vectors, [v.name for v in vectors],
                        jobs, decoders)


def check_vector(vector: Vector, config: Config, decoders: Decoders) -> Result:
    """Decode ``vector`` in a temporary directory of its own and judge the outcome."""
    with tempfile.TemporaryDirectory(prefix="refcodec-conform-") as tmp:
        output, dump = Path(tmp) / f"output.{config.output_format}", Path(tmp) / "stages"
        dump.mkdir()
        paths = {"stream": str(vector.stream), "model": str(vector.model), "output": str(output),
                 "dump": str(dump), "python": sys.executable}
        outcome = decoders.run(build_command(config.template, paths))
        reason, data = "", {}
        try:
            if vector.negative:
                detail = check_negative(vector, outcome, output)
            else:
                detail = check_positive(vector, outcome, output, config)
        except Failure as f:
            reason, detail, data = f.reason, f.detail, f.data
        if config.dump and not vector.negative:
            reason, detail, stage = judge_stages(vector, dump, reason, detail)
            data["first_divergent_stage"] = stage
    note = error_class_note(vector.manifest["expected_error"], outcome.stderr) if vector.negative else ""
    return Result(vector.name, vector.negative, not reason, reason, detail, outcome.seconds,
                  outcome.status, outcome.stderr, note, **data)


def check_positive(vector: Vector, outcome: Outcome, output: Path, config: Config) -> str:
    """Passes when the decoder exits with status 0 and writes exactly the expected pixels."""
    require_finished(outcome)
    if outcome.status != 0:
        raise Failure("exit-status", f"{describe_status(outcome.status)}: {outcome.stderr or '(no message)'}")
    if not output.exists():
        raise Failure("missing-output", "exit status 0 but no output file")
    width, height = vector.manifest["width"], vector.manifest["height"]
    read = read_png if config.output_format == "png" else read_rgb
    pixels = read(output, width, height)
    if sha256(pixels.tobytes()) != vector.manifest["pixels_sha256"]:
        raise mismatch(vector, pixels, config.diff_dir)
    return "pixels match"


def check_negative(vector: Vector, outcome: Outcome, output: Path) -> str:
    """Passes when the decoder reports an error (a non-zero exit status), leaves no
    output file and, if its stderr names an error class, names the expected one (spec §2.6)."""
    require_finished(outcome)
    expected = vector.manifest["expected_error"]
    status = describe_status(outcome.status)
    if outcome.status == 0:
        wrote = f"wrote {output_size(output)}" if output.exists() else "wrote no output"
        raise Failure("accepted", f"{status} and {wrote}; expected a {expected}")
    if outcome.status < 0:
        raise Failure("crashed", f"{status} instead of reporting a {expected}")
    if output.exists():
        raise Failure("output-left", f"{status} but left an output file ({output_size(output)}): "
                                     f"{outcome.stderr or '(no message)'}")
    named = ERROR_CLASS.search(outcome.stderr)
    if named and named.group(1) != expected:
        raise Failure("wrong-error", f"{status}, reported a {named.group(1)}; expected a {expected}: {outcome.stderr}")
    return f"rejected, {status}: {outcome.stderr or '(no message)'}"


def require_finished(outcome: Outcome) -> None:
    if outcome.status is None:
        raise Failure("timeout", f"timed out, killed after {outcome.seconds:.1f} s")


def output_size(output: Path) -> str:
    return f"{output.stat().st_size} bytes"


def error_class_note(expected: str, stderr: str) -> str:
    """Whether the error class named on the decoder's stderr is the expected one."""
    match = ERROR_CLASS.search(stderr)
    if not match:
        return "error class not reported, not checked"
    if match.group(1) == expected:
        return f"reported {expected} as expected"
    return f"reported {match.group(1)}, expected {expected}"


def read_rgb(path: Path, width: int, height: int) -> np.ndarray:
    """The raw RGB output, sized before it is read (a hostile decoder's file may be huge)."""
    size, expected = path.stat().st_size, width * height * 3
    if size != expected:
        raise Failure("wrong-size", f"output has {size} bytes, expected {width}x{height}x3 = {expected}")
    with open(path, "rb") as f:
        data = f.read(expected)
    if len(data) != expected:
        raise Failure("wrong-size", f"output has {len(data)} bytes, expected {width}x{height}x3 = {expected}")
    return np.frombuffer(data, np.uint8).reshape(height, width, 3)


def read_png(path: Path, width: int, height: int) -> np.ndarray:
    try:
        with Image.open(path) as im:
            if im.format != "PNG":
                raise Failure("unreadable-output", f"output is {im.format}, not PNG")
            if im.size != (width, height):
                raise Failure("wrong-size", f"output is {im.width}x{im.height}, expected {width}x{height}")
            return np.asarray(im.convert("RGB"))
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise Failure("unreadable-output", f"output is not a readable PNG: {e}") from None


def mismatch(vector: Vector, pixels: np.ndarray, diff_dir: Path) -> Failure:
    """The failure for wrong pixels, with statistics against expected.png and a heat-map in ``diff_dir``."""
    with Image.open(vector.expected) as im:
        expected = np.asarray(im.convert("RGB"))
    diff = np.abs(pixels.astype(np.int16) - expected.astype(np.int16)).max(axis=2)
    quality = psnr(pixels, expected)
    differing, largest = int(np.count_nonzero(diff)), int(diff.max())
    quality = None if quality == float("inf") else quality  # JSON has no infinity
    heatmap = diff_dir / f"{vector.name}.png"
    try:
        diff_dir.mkdir(parents=True, exist_ok=True)
        Image.fromarray(heat_colours(diff)).save(heatmap)
    except OSError as e:
        raise UsageError(f"cannot write a heat-map: {e}") from None
    shown = "inf" if quality is None else f"{quality:.2f}"
    return Failure("mismatch", f"pixels differ: {differing} of {diff.size} pixels, max abs difference "
                               f"{largest}, PSNR {shown} dB; heat-map {heatmap}",
                   psnr=quality, max_abs_diff=largest, differing_pixels=differing, heatmap=str(heatmap))


def heat_colours(diff: np.ndarray) -> np.ndarray:
    """An RGB picture of a per-pixel difference: black for none, through red and
    yellow, to white for the largest."""
    t = diff.astype(np.float64) / max(int(diff.max()), 1)
    ramp = np.stack([3 * t, 3 * t - 1, 3 * t - 2], axis=-1)
    return np.round(np.clip(ramp, 0, 1) * 255).astype(np.uint8)


# --- intermediate stages (spec §9.4) ---------------------------------------


def judge_stages(vector: Vector, folder: Path, reason: str, detail: str) -> tuple[str, str, str | None]:
    """A positive vector's verdict (reason, detail) with the decoder's stage files in
    ``folder`` compared, and the first divergent stage (None: none, or nothing dumped)."""
    stages = vector.manifest.get("stages", [])
    found = first_divergent_stage(stages, folder)
    if found is None:  # the decoder wrote no stage: nothing to say
        return reason, detail, None
    name, problem = found
    if name is None and not reason:
        return reason, f"{detail}; all {len(stages)} stages match", None
    if name is None:
        return (reason, f"{detail}; every stage matches, so the divergence is after the last stage "
                        f"({stages[-1]['name']}): in the crop or the output (§8.5)", OUTPUT_STAGE)
    where = f"first divergent stage: {name} ({problem})"
    if not reason:
        return "stage-mismatch", f"pixels match but {where}", name
    return reason, f"{detail}; {where}", name


def first_divergent_stage(stages: list[dict], folder: Path) -> tuple[str | None, str] | None:
    """(name, what is wrong) of the first of ``stages`` (manifest entries, in decoding
    order) whose file in ``folder`` is missing, of the wrong size or checksum;
    (None, "") when all match; None when the decoder wrote none of them."""
    paths = [folder / f"{stage['name']}{STAGE_SUFFIX}" for stage in stages]
    if not any(os.path.lexists(path) for path in paths):
        return None
    for stage, path in zip(stages, paths):
        problem = stage_file_problem(path, stage_file_size(stage), stage["sha256"])
        if problem:
            return stage["name"], problem
    return None, ""


def stage_file_problem(path: Path, size: int, digest: str) -> str:
    """"" when ``path`` is a regular file of ``size`` bytes whose SHA-256 is ``digest``,
    else what is wrong. A decoder may be hostile: the file is opened without following
    links or blocking (a FIFO), sized before a byte is read, and hashed in chunks."""
    try:
        fd = os.open(path, OPEN_STAGE)
    except FileNotFoundError:
        return "missing"
    except OSError as e:
        return "a symbolic link" if e.errno == errno.ELOOP else f"unreadable: {e.strerror or e}"
    with open(fd, "rb", buffering=0) as f:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return "not a regular file"
        if info.st_size != size:
            return f"{info.st_size} bytes, expected {size}"
        h, left = hashlib.sha256(), size
        while left and (chunk := f.read(min(HASH_CHUNK, left))):
            h.update(chunk)
            left -= len(chunk)
    return "" if not left and h.hexdigest() == digest else "checksum differs"


# --- generative conformance (--random) -------------------------------------


@dataclass(frozen=True, eq=False)
class Case:
    """The ingredients of one random stream, what the shrinker changes: a model file,
    a picture size, latents y (M, LatH, LatW) and, except for factorized, z (N, ZH, ZW)."""

    seed: int
    index: int
    architecture: str
    n: int
    m: int
    stress: bool
    model: bytes
    width: int
    height: int
    y: np.ndarray
    z: np.ndarray | None

    @property
    def name(self) -> str:
        return f"random-{self.seed}-{self.index}"

    def summary(self) -> str:
        bounds = ", at the bounds of §6.4" if self.stress else ""
        return f"{self.architecture} {self.width}x{self.height}, N={self.n} M={self.m}{bounds}"


def run_random(args: argparse.Namespace, config: Config, decoders: Decoders) -> tuple[list[Result], dict]:
    """Decode ``args.random`` random streams of ``args.seed``, shrink and save the ones
    the decoder fails; (results, the JSON report's description of the source)."""
    seed = secrets.randbelow(1 << 32) if args.seed is None else args.seed
    save_dir = args.save_dir or DEFAULT_SAVE_DIR
    budget = MAX_SHRINK_RUNS if args.shrink_runs is None else args.shrink_runs
    print(f"{args.random} random streams, seed {seed} (refcodec {__version__})")
    with tempfile.TemporaryDirectory(prefix="refcodec-random-") as tmp:
        cases = [random_case(seed, i) for i in range(args.random)]
        vectors = [write_vector(Path(tmp) / "streams", case, describe_case(case)) for case in cases]
        results = check_all(vectors, config, decoders, args.jobs)
        for case, result in zip(cases, results):
            result.note = case.summary()
        failed = [(case, result) for case, result in zip(cases, results) if not result.passed]
        scratch = dataclasses.replace(config, diff_dir=Path(tmp) / "diffs")
        run_parallel(lambda f: shrink_and_save(*f, scratch, decoders, budget, save_dir, Path(tmp) / f[0].name),
                     failed, [case.name for case, _ in failed], args.jobs, decoders)
    return results, {"random": args.random, "seed": seed, "save_dir": str(save_dir.resolve())}


def random_case(seed: int, index: int) -> Case:
    """Stream ``index`` of ``seed``: drawn from a generator of its own, so it does not depend
    on how many streams are drawn (spec-valid by construction: every latent is an s16)."""
    rng = np.random.default_rng([seed, index])
    architecture = list(ARCHITECTURES)[int(rng.integers(len(ARCHITECTURES)))]
    n, m = (int(c) for c in rng.integers(1, MAX_RANDOM_CHANNELS + 1, size=2))
    stress = bool(rng.random() < STRESS_CHANCE)
    levels = None if architecture == "factorized" else int(rng.integers(1, MAX_RANDOM_LEVELS + 1))
    # -1: no entropy.y.mean_shift tensor; a generator of its own keeps the other draws those of edition 2
    mean_shift = int(np.random.default_rng([seed, index, 1]).integers(-1, MAX_MEAN_SHIFT + 1))
    model = random_model(rng, n, m, stress=stress, name=f"random-{seed}-{index}", architecture=architecture,
                         levels=levels, mean_shift=None if mean_shift < 0 else mean_shift)
    width, height = (int(s) for s in rng.integers(1, MAX_RANDOM_SIDE + 1, size=2))
    lat_h, lat_w = latent_shape(width, height)
    y = random_latents(rng, (m, lat_h, lat_w))
    z = None if architecture == "factorized" else random_latents(rng, (n, *hyper_shape(lat_h, lat_w)))
    return Case(seed, index, architecture, n, m, stress, model, width, height, y, z)


def latent_shape(width: int, height: int) -> tuple[int, int]:
    """(LatH, LatW) of spec §8.2."""
    return -(-height // STRIDE), -(-width // STRIDE)


def hyper_shape(lat_h: int, lat_w: int) -> tuple[int, int]:
    """(ZH, ZW) of spec §8.2."""
    return -(-lat_h // HYPER_STRIDE), -(-lat_w // HYPER_STRIDE)


def random_latents(rng: np.random.Generator, shape: tuple) -> np.ndarray:
    """Mostly small values (inside the tables), sometimes a few escape-sized ones and the s16 extremes."""
    spread = int(rng.choice([0, 1, 3, 10, 100]))
    values = rng.integers(-spread, spread + 1, size=shape)
    if rng.random() < 0.4:  # escapes of 2 to 4 raw nibbles
        k = int(rng.integers(1, 4))
        magnitudes = np.exp2(rng.uniform(5, 15, size=k)).astype(np.int64)
        values.flat[rng.integers(0, values.size, size=k)] = magnitudes * rng.choice([-1, 1], size=k)
    if rng.random() < 0.25:
        k = int(rng.integers(1, 3))
        values.flat[rng.integers(0, values.size, size=k)] = rng.choice([ACT_MIN, ACT_MAX], size=k)
    return values.astype(np.int64)


def describe_case(case: Case, shrunk_from: Case | None = None, runs: int = 0) -> str:
    """A saved vector's description: where it comes from and how it was shrunk."""
    text = f"Random stream {case.index} of seed {case.seed} (refcodec conform --random, refcodec {__version__})"
    if shrunk_from is None:
        return f"{text}: {case.summary()}."
    return f"{text}, {shrunk_from.summary()}, shrunk in {runs} decoder runs to {case.width}x{case.height}."


def write_vector(root: Path, case: Case, description: str) -> Vector:
    """``case`` as a positive vector in ``root`` (the golden-vector format, vectors/README.md): the
    stream encoded by refcodec, the picture and stages of its reference decoder, the model in models/."""
    model_id = sha256(case.model)
    model_path = root / "models" / f"{model_id}.safetensors"
    model_path.parent.mkdir(parents=True, exist_ok=True)
    if not model_path.exists():
        model_path.write_bytes(case.model)
    model = model_from_bytes(case.model)
    stream = encode_latents(case.y, model, case.width, case.height, impl="reference", z_hat=case.z)
    pixels = decoder.decode_stream(stream, [model_path], impl="reference")
    stages = decoder.stages(stream, [model_path], impl="reference")
    folder = root / case.name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    (folder / "stream.rcdc").write_bytes(stream)
    (folder / "expected.png").write_bytes(png_bytes(pixels))
    manifest = {"name": case.name, "description": description, "architecture": case.architecture,
                "width": case.width, "height": case.height, "model": f"models/{model_path.name}",
                "model_id": model_id, "clauses": [], "stream_sha256": sha256(stream),
                "pixels_sha256": sha256(pixels.tobytes()),
                "stages": [{"name": name, "shape": list(array.shape), "sha256": sha256(decoder.stage_bytes(array))}
                           for name, array in stages.items()]}
    write_json(folder / "manifest.json", manifest)
    return Vector(case.name, folder, model_path, manifest)


def write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def shrink_and_save(case: Case, result: Result, config: Config, decoders: Decoders, budget: int,
                    save_dir: Path, scratch: Path) -> None:
    """Shrink a failing random stream with the decoder, save the smallest failing one
    under ``save_dir`` and record it in ``result``."""
    def fails_alike(candidate: Case) -> bool:
        return check_vector(write_vector(scratch, candidate, ""), config, decoders).reason == result.reason

    smallest, runs = shrink(case, fails_alike, budget)
    vector = write_vector(scratch, smallest, describe_case(smallest, case, runs))
    saved = save_vector(vector, save_dir)
    result.saved_vector, result.shrink_runs = str(saved), runs
    result.detail += f"; shrunk in {runs} runs to {smallest.summary()}, saved as {saved}"


def shrink(case: Case, still_fails, budget: int) -> tuple[Case, int]:
    """The smallest case found greedily for which ``still_fails(case)`` is true, trying at most
    ``budget`` candidates; (that case, how many were tried). After each success the candidates
    are tried again from the most aggressive."""
    runs, progress = 0, True
    while progress and runs < budget:
        progress = False
        for candidate in shrink_candidates(case):
            if runs == budget:
                break
            runs += 1
            if still_fails(candidate):
                case, progress = candidate, True
                break
    return case, runs


def shrink_candidates(case: Case):
    """Smaller variants of ``case``, most aggressive first: a smaller picture (latents cropped
    to it), zeroed latents (all, halves, quarters), s16 extremes set to 0, halved values."""
    for width, height in ((1, case.height), (case.width, 1), (case.width // 2, case.height),
                          (case.width, case.height // 2)):
        if 1 <= width and 1 <= height and (width, height) != (case.width, case.height):
            yield cropped(case, width, height)
    for field in ("y", "z"):
        values = getattr(case, field)
        if values is None:
            continue
        for smaller in smaller_latents(values):
            yield dataclasses.replace(case, **{field: smaller})


def cropped(case: Case, width: int, height: int) -> Case:
    """``case`` for a smaller picture, with the latents of its top-left corner."""
    lat_h, lat_w = latent_shape(width, height)
    z_h, z_w = hyper_shape(lat_h, lat_w)
    z = None if case.z is None else case.z[:, :z_h, :z_w]
    return dataclasses.replace(case, width=width, height=height, y=case.y[:, :lat_h, :lat_w], z=z)


def smaller_latents(values: np.ndarray):
    """Variants of a latent array that differ from it: all zero, each half and quarter (in
    channel, row, column order) zero, the s16 extremes zero, every value halved toward 0."""
    flat = values.reshape(-1)
    variants = [np.zeros_like(flat)]
    for parts in (2, 4):
        for part in np.array_split(np.arange(flat.size), parts):
            v = flat.copy()
            v[part] = 0
            variants.append(v)
    variants.append(np.where((flat == ACT_MIN) | (flat == ACT_MAX), 0, flat))
    variants.append(np.sign(flat) * (np.abs(flat) // 2))
    seen = {flat.tobytes()}
    for v in variants:
        if v.tobytes() not in seen:
            seen.add(v.tobytes())
            yield v.reshape(values.shape)


def save_vector(vector: Vector, save_dir: Path) -> Path:
    """Copy ``vector`` (with its model) into ``save_dir`` and list it in its index.json
    (replacing an entry of the same name); returns the vector's folder there."""
    target = save_dir / vector.name
    try:
        with _save_lock:  # failures are shrunk in parallel
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(vector.folder, target)
            (save_dir / "models").mkdir(exist_ok=True)
            shutil.copyfile(vector.model, save_dir / vector.manifest["model"])
            add_to_index(save_dir, vector.name)
    except OSError as e:
        raise UsageError(f"cannot save a failing stream in {save_dir}: {e}") from None
    return target


_save_lock = threading.Lock()


def add_to_index(folder: Path, name: str) -> None:
    """List the vector ``name`` in ``folder``/index.json, creating it if need be."""
    path = folder / "index.json"
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        index = {"suite": "refcodec conform --random failures", "version": 1, "vectors": []}
    entries = [e for e in index["vectors"] if e.get("name") != name]
    entries.append({"name": name, "manifest": f"{name}/manifest.json"})
    index["vectors"] = sorted(entries, key=lambda e: natural_order(e["name"]))
    write_json(path, index)


def natural_order(name: str) -> list:
    """A sort key that puts random-1-9 before random-1-10."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", name)]


# --- reports --------------------------------------------------------------


def show_progress(done: int, total: int, name: str) -> None:
    """A counter on stderr when it is a terminal, erased after the last vector."""
    if sys.stderr.isatty():
        line = "" if done == total else f"[{done}/{total}] {name}"
        sys.stderr.write(f"\r\033[K{line}")
        sys.stderr.flush()


def print_summary(results: list[Result]) -> None:
    for r in results:
        note = f" [{r.note}]" if r.note else ""
        print(f"{'PASS' if r.passed else 'FAIL'} {r.name} — {r.detail}{note}")
    failed = sum(not r.passed for r in results)
    print(f"{len(results) - failed} passed, {failed} failed")


def write_reports(args: argparse.Namespace, source: dict, results: list[Result], seconds: float) -> None:
    try:
        if args.json:
            args.json.write_text(json_report(args, source, results, seconds), encoding="utf-8")
        if args.junit:
            junit_report(results, seconds).write(args.junit, encoding="utf-8", xml_declaration=True)
    except OSError as e:
        raise UsageError(f"cannot write a report: {e}") from None


def json_report(args: argparse.Namespace, source: dict, results: list[Result], seconds: float) -> str:
    """The whole run as JSON; ``source`` says what was decoded: {"vectors": folder} or
    {"random": N, "seed": S, "save_dir": folder}."""
    failed = sum(not r.passed for r in results)
    report = {"suite": SUITE, "decoder": args.decoder, "output_format": args.output_format, **source,
              "passed": len(results) - failed, "failed": failed, "seconds": round(seconds, 3),
              "results": [asdict(r) for r in results]}
    return json.dumps(report, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def junit_report(results: list[Result], seconds: float) -> ET.ElementTree:
    """One testsuite, one testcase per vector; a failure element says why it failed."""
    failed = sum(not r.passed for r in results)
    suite = ET.Element("testsuite", name=SUITE, tests=str(len(results)), failures=str(failed),
                       errors="0", skipped="0", time=f"{seconds:.3f}")
    for r in results:
        case = ET.SubElement(suite, "testcase", name=r.name, classname=CLASSNAME, time=f"{r.seconds:.3f}")
        if not r.passed:
            failure = ET.SubElement(case, "failure", message=r.detail, type=r.reason)
            failure.text = "\n".join(failure_lines(r)) or None
        if r.note:
            ET.SubElement(case, "system-out").text = r.note
    ET.indent(suite)
    return ET.ElementTree(suite)


def failure_lines(r: Result) -> list[str]:
    """The text of a JUnit failure: the first divergent stage, the saved vector, the decoder's stderr."""
    lines = []
    if r.first_divergent_stage:
        lines.append(f"first divergent stage: {r.first_divergent_stage}")
    if r.saved_vector:
        lines.append(f"smallest failing stream saved as {r.saved_vector}")
    if r.stderr:
        lines.append(f"decoder stderr: {r.stderr}")
    return lines


def main(argv: list[str] | None = None) -> int:
    """``python -m refcodec.conform ...``, the same as ``refcodec conform ...``."""
    parser = argparse.ArgumentParser(prog="refcodec conform", description=__doc__.split("\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
