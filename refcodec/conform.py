"""Conformance runner: decode every golden vector (vectors/) with any decoder and check the result.

A decoder proves itself conforming by passing every vector::

    refcodec conform --decoder './mydec --model {model} {stream} {output}'
    refcodec conform --decoder 'mydec {stream} {model} {output}' --output-format png \\
        --json results.json --junit results.xml --filter neg- --jobs 4

``--decoder`` is a command line, split into words as a POSIX shell would
(``shlex``) and run without a shell, from the current directory. Within each
word, ``{stream}``, ``{model}`` and ``{output}`` become the paths of the
vector's stream, the model file it needs and the file the decoder shall write,
and ``{python}`` the running Python interpreter; substitution happens after
splitting, so paths with spaces are passed as single arguments. The output is
raw RGB bytes, row-major (H, W, 3) (``--output-format rgb``, the default; the
path ends in ``.rgb``) or a PNG file (``--output-format png``; ``.png``).
refcodec's own decoder passes with (``python -m refcodec.conform`` takes the
same options)::

    refcodec conform --decoder '{python} -m refcodec.cli decode --model-file {model} {stream} {output}'

A positive vector passes when the decoder exits with status 0 and the SHA-256
of its output pixels equals the manifest's ``pixels_sha256``; for a mismatch
the report gives PSNR, the largest difference and the number of differing
pixels, and a heat-map of the differences is written to ``--diff-dir``. A
negative vector (``neg-*``) passes when the decoder reports an error (spec
§2.6): it exits with a non-zero status (not killed by a signal) and leaves no
output file. The class of
the error (``StreamError`` or ``ModelError``) cannot be read from a foreign
decoder's exit status; when the last line it writes to stderr names one, the
report notes whether it is the expected one, without failing the vector.

Exit status: 0 when every vector passes, 1 when any fails, 2 on a usage error
(a bad ``--decoder`` template, no vectors, a decoder that cannot be started).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shlex
import signal
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

from .image import psnr

DEFAULT_VECTORS = Path(__file__).resolve().parent.parent / "vectors"
PLACEHOLDER = re.compile(r"\{(stream|model|output|python)\}")
REQUIRED_PLACEHOLDERS = ("stream", "output")
ERROR_CLASS = re.compile(r"\b(StreamError|ModelError)\b")  # the error classes of spec §2.6
ESCAPE_SEQUENCE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
NOT_XML_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")
MAX_LINE = 500  # characters kept of a decoder's last stderr line
SUITE = "refcodec-conformance"
CLASSNAME = "refcodec.vectors"


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
    template: list[str]
    output_format: str
    diff_dir: Path


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
    exit-status, missing-output, unreadable-output, wrong-size, mismatch (positive
    vectors); timeout, accepted, crashed, output-left (negative vectors)."""

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


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {text}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, not {text}")
    return value


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the conformance runner's options to ``p`` (the ``conform`` subcommand)."""
    p.add_argument("--decoder", required=True, metavar="CMD",
                   help="decoder command line; {stream}, {model} and {output} become paths, "
                        "{python} this Python interpreter")
    p.add_argument("--output-format", choices=("rgb", "png"), default="rgb",
                   help="what the decoder writes: raw RGB bytes (default) or PNG")
    p.add_argument("--vectors", type=Path, default=DEFAULT_VECTORS, metavar="DIR",
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


def run(args: argparse.Namespace) -> int:
    """Run the vectors ``args`` select through the decoder; returns the exit status."""
    try:
        config = Config(parse_template(args.decoder), args.output_format, args.diff_dir)
        vectors = load_vectors(args.vectors, args.filter)
        start = time.monotonic()
        results = check_all(vectors, config, args.timeout, args.jobs)
        print_summary(results)
        write_reports(args, results, time.monotonic() - start)
    except UsageError as e:
        print(f"refcodec conform: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("refcodec conform: interrupted", file=sys.stderr)
        return 130
    return 0 if all(r.passed for r in results) else 1


# --- the decoder command ---------------------------------------------------


def parse_template(template: str) -> list[str]:
    """The words of a ``--decoder`` template, placeholders not yet substituted."""
    try:
        words = shlex.split(template)
    except ValueError as e:
        raise UsageError(f"--decoder: {e}") from None
    present = {name for word in words for name in PLACEHOLDER.findall(word)}
    missing = [f"{{{name}}}" for name in REQUIRED_PLACEHOLDERS if name not in present]
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
    (so that a damaged checkout is not blamed on the decoder)."""
    manifest_path = folder / entry["manifest"]
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    vector = Vector(entry["name"], manifest_path.parent, folder / manifest["model"], manifest)
    require_sha256(vector.stream, manifest["stream_sha256"])
    if "model_id" in manifest:
        require_sha256(vector.model, manifest["model_id"])
    return vector


def require_sha256(path: Path, expected: str) -> None:
    if sha256(path.read_bytes()) != expected:
        raise UsageError(f"{path} is damaged: its SHA-256 differs from the manifest's")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- checking one vector --------------------------------------------------


def check_all(vectors: list[Vector], config: Config, timeout: float, jobs: int) -> list[Result]:
    """Every vector's result, in the order of ``vectors``, decoding ``jobs`` at a time."""
    decoders = Decoders(timeout)
    results: list[Result | None] = [None] * len(vectors)
    executor = ThreadPoolExecutor(max_workers=jobs)
    try:
        futures = {executor.submit(check_vector, v, config, decoders): i for i, v in enumerate(vectors)}
        for done, future in enumerate(as_completed(futures), 1):
            results[futures[future]] = future.result()
            show_progress(done, len(vectors), vectors[futures[future]].name)
    except BaseException:
        decoders.stop()
        raise
    finally:
        executor.shutdown(cancel_futures=True)
    return results


def check_vector(vector: Vector, config: Config, decoders: Decoders) -> Result:
    """Decode ``vector`` in a temporary directory of its own and judge the outcome."""
    with tempfile.TemporaryDirectory(prefix="refcodec-conform-") as tmp:
        output = Path(tmp) / f"output.{config.output_format}"
        paths = {"stream": str(vector.stream), "model": str(vector.model), "output": str(output),
                 "python": sys.executable}
        outcome = decoders.run(build_command(config.template, paths))
        reason, data = "", {}
        try:
            if vector.negative:
                detail = check_negative(vector, outcome, output)
            else:
                detail = check_positive(vector, outcome, output, config)
        except Failure as f:
            reason, detail, data = f.reason, f.detail, f.data
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
    """Passes when the decoder reports an error (a non-zero exit status) and
    leaves no output file (spec §2.6)."""
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
    return f"rejected, {status}: {outcome.stderr or '(no message)'}"


def require_finished(outcome: Outcome) -> None:
    if outcome.status is None:
        raise Failure("timeout", f"timed out, killed after {outcome.seconds:.1f} s")


def output_size(output: Path) -> str:
    return f"{output.stat().st_size} bytes"


def error_class_note(expected: str, stderr: str) -> str:
    """Whether the error class named on the decoder's stderr, if any, is the
    expected one (informational: a foreign decoder's class is not checked)."""
    match = ERROR_CLASS.search(stderr)
    if not match:
        return ""
    if match.group(1) == expected:
        return f"reported {expected} as expected"
    return f"reported {match.group(1)}, expected {expected}"


def read_rgb(path: Path, width: int, height: int) -> np.ndarray:
    data = path.read_bytes()
    if len(data) != width * height * 3:
        raise Failure("wrong-size", f"output has {len(data)} bytes, expected {width}x{height}x3 = "
                                    f"{width * height * 3}")
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


def write_reports(args: argparse.Namespace, results: list[Result], seconds: float) -> None:
    try:
        if args.json:
            args.json.write_text(json_report(args, results, seconds), encoding="utf-8")
        if args.junit:
            junit_report(results, seconds).write(args.junit, encoding="utf-8", xml_declaration=True)
    except OSError as e:
        raise UsageError(f"cannot write a report: {e}") from None


def json_report(args: argparse.Namespace, results: list[Result], seconds: float) -> str:
    failed = sum(not r.passed for r in results)
    report = {"suite": SUITE, "decoder": args.decoder, "output_format": args.output_format,
              "vectors": str(args.vectors.resolve()), "passed": len(results) - failed, "failed": failed,
              "seconds": round(seconds, 3), "results": [asdict(r) for r in results]}
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
            failure.text = f"decoder stderr: {r.stderr}" if r.stderr else None
        if r.note:
            ET.SubElement(case, "system-out").text = r.note
    ET.indent(suite)
    return ET.ElementTree(suite)


def main(argv: list[str] | None = None) -> int:
    """``python -m refcodec.conform ...``, the same as ``refcodec conform ...``."""
    parser = argparse.ArgumentParser(prog="refcodec conform", description=__doc__.split("\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
