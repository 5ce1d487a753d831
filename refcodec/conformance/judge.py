"""Judging a decoder's outcome on one vector (spec §9.1, §9.3, §9.4).

A positive vector passes when the decoder exits with status 0 and the SHA-256 of its output
pixels equals the manifest's ``pixels_sha256`` (spec §9.1 item 1); for a mismatch the result
gives PSNR, the largest difference and the number of differing pixels, and a heat-map of the
differences is written to ``--diff-dir``. A negative vector passes when the decoder reports an
error (spec §9.1 item 2): it exits with a non-zero status, not killed by a signal, and leaves no
output file. Its class (spec §2.6) cannot be read from a foreign decoder's exit status, so it is
read from the last line the decoder writes to stderr: naming the other class fails the vector
(``wrong-error``); naming neither is judged by the exit status alone, and the note says that the
class was not checked (spec §9.3).

Intermediate stages (spec §9.4): when the decoder writes stage files, those of a positive vector
are compared, in decoding order, with the manifest's ``stages``, and the first one that is
missing, has the wrong size or the wrong checksum is named (``first_divergent_stage``;
``output`` when every stage matches but the picture differs: the divergence is in the crop or
the output, spec §8.5). A decoder that writes no stage is not judged on them; stages that differ
under correct pixels fail the vector (``stage-mismatch``). Stage files are sized before they are
read and only hashed, never loaded, and neither links nor special files are followed.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import signal
import stat
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from refcodec.conformance import UsageError
from refcodec.conformance.harness import Config, Decoders, Outcome, decoded, run_parallel
from refcodec.conformance.suite import STAGE_SUFFIX, Vector, stage_file_size
from refcodec.decoder.conventions import sha256
from refcodec.decoder.errors import ModelError, StreamError
from refcodec.image import psnr

ERROR_CLASS = re.compile(rf"\b({StreamError.__name__}|{ModelError.__name__})\b")  # the classes of spec §2.6
OUTPUT_STAGE = "output"  # first_divergent_stage when every stage matches: the crop and output (spec §8.5)
OPEN_STAGE = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
HASH_CHUNK = 1 << 20


class Failure(Exception):
    """A vector failed: ``reason`` is a short code, ``detail`` one line for people,
    ``data`` further fields of the :class:`Result`."""

    def __init__(self, reason: str, detail: str, **data):
        super().__init__(detail)
        self.reason, self.detail, self.data = reason, detail, data


@dataclass
class Result:
    """One vector's result. ``reason`` is "" when it passed, else one of: timeout,
    exit-status, missing-output, unreadable-output, wrong-size, mismatch,
    stage-mismatch (positive vectors); timeout, accepted, crashed, output-left,
    wrong-error (negative vectors).

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


def check_all(vectors: list[Vector], config: Config, decoders: Decoders, jobs: int) -> list[Result]:
    """Every vector's result, in the order of ``vectors``, decoding ``jobs`` at a time."""
    return run_parallel(lambda v: check_vector(v, config, decoders), vectors, [v.name for v in vectors],
                        jobs, decoders)


def check_vector(vector: Vector, config: Config, decoders: Decoders) -> Result:
    """Run the decoder on ``vector`` and judge the outcome."""
    with decoded(vector, config, decoders) as (outcome, output, dump):
        return judge(vector, outcome, output, dump, config)


def judge(vector: Vector, outcome: Outcome, output: Path, dump: Path, config: Config) -> Result:
    """The result of a decoder on ``vector`` that did ``outcome``, with ``output`` the path of
    its output file and ``dump`` its stage directory (compared when ``config.dump``)."""
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
    if config.strict and not reason and note == CLASS_UNVERIFIED:
        reason, detail = "class-unverified", f"{detail}; the decoder named no error class (--strict)"
    return Result(vector.name, vector.negative, not reason, reason, detail, outcome.seconds,
                  outcome.status, outcome.stderr, note, **data)


# --- positive and negative vectors (spec §9.1) ---------------------------------


def check_positive(vector: Vector, outcome: Outcome, output: Path, config: Config) -> str:
    """Passes when the decoder exits with status 0 and writes exactly the expected pixels."""
    exit_status = require_finished(outcome)
    if exit_status != 0:
        raise Failure("exit-status", f"{describe_status(exit_status)}: {outcome.stderr or '(no message)'}")
    if not output.exists():
        raise Failure("missing-output", "exit status 0 but no output file")
    width, height = vector.manifest["width"], vector.manifest["height"]
    read = read_png if config.output_format == "png" else read_rgb
    pixels = read(output, width, height)
    if sha256(pixels.tobytes()).hex() != vector.manifest["pixels_sha256"]:
        raise mismatch(vector, pixels, config.diff_dir)
    return "pixels match"


def check_negative(vector: Vector, outcome: Outcome, output: Path) -> str:
    """Passes when the decoder reports an error (a non-zero exit status), leaves no
    output file and, if its stderr names an error class, names the expected one (spec §2.6)."""
    exit_status = require_finished(outcome)
    expected = vector.manifest["expected_error"]
    status = describe_status(exit_status)
    if exit_status == 0:
        wrote = f"wrote {output_size(output)}" if output.exists() else "wrote no output"
        raise Failure("accepted", f"{status} and {wrote}; expected a {expected}")
    if exit_status < 0:
        raise Failure("crashed", f"{status} instead of reporting a {expected}")
    if output.exists():
        raise Failure("output-left", f"{status} but left an output file ({output_size(output)}): "
                                     f"{outcome.stderr or '(no message)'}")
    named = ERROR_CLASS.search(outcome.stderr)
    if named and named.group(1) != expected:
        raise Failure("wrong-error", f"{status}, reported a {named.group(1)}; expected a {expected}: {outcome.stderr}")
    return f"rejected, {status}: {outcome.stderr or '(no message)'}"


def require_finished(outcome: Outcome) -> int:
    """The decoder's exit status; a timeout failure if it was killed after the timeout."""
    if outcome.status is None:
        raise Failure("timeout", f"timed out, killed after {outcome.seconds:.1f} s")
    return outcome.status


def describe_status(status: int) -> str:
    if status >= 0:
        return f"exit status {status}"
    try:
        return f"killed by {signal.Signals(-status).name}"
    except ValueError:
        return f"killed by signal {-status}"


def output_size(output: Path) -> str:
    return f"{output.stat().st_size} bytes"


CLASS_UNVERIFIED = "error class not reported, not checked"


def error_class_note(expected: str, stderr: str) -> str:
    """Whether the error class named on the decoder's stderr is the expected one."""
    match = ERROR_CLASS.search(stderr)
    if not match:
        return CLASS_UNVERIFIED
    if match.group(1) == expected:
        return f"reported {expected} as expected"
    return f"reported {match.group(1)}, expected {expected}"


# --- the output picture ----------------------------------------------------------


def require_regular_file(path: Path) -> None:
    """The output must be a regular file: a FIFO would block its reader, a link could point anywhere."""
    if not stat.S_ISREG(path.lstat().st_mode):
        raise Failure("unreadable-output", "the output is not a regular file (a link, a FIFO or a folder)")


def read_rgb(path: Path, width: int, height: int) -> np.ndarray:
    """The raw RGB output, sized before it is read (a hostile decoder's file may be huge)."""
    require_regular_file(path)
    size, expected = path.stat().st_size, width * height * 3
    if size != expected:
        raise Failure("wrong-size", f"output has {size} bytes, expected {width}x{height}x3 = {expected}")
    with open(path, "rb") as f:
        data = f.read(expected)
    if len(data) != expected:
        raise Failure("wrong-size", f"output has {len(data)} bytes, expected {width}x{height}x3 = {expected}")
    return np.frombuffer(data, np.uint8).reshape(height, width, 3)


def read_png(path: Path, width: int, height: int) -> np.ndarray:
    """The PNG output's pixels, (height, width, 3)."""
    require_regular_file(path)
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
    measured = psnr(pixels, expected)
    differing, largest = int(np.count_nonzero(diff)), int(diff.max())
    quality = None if measured == float("inf") else measured  # JSON has no infinity
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
    for stage, path in zip(stages, paths, strict=True):
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
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):  # a folder cannot even be wrapped in a file object
        os.close(fd)
        return "not a regular file"
    with open(fd, "rb", buffering=0) as f:
        if info.st_size != size:
            return f"{info.st_size} bytes, expected {size}"
        h, left = hashlib.sha256(), size
        while left and (chunk := f.read(min(HASH_CHUNK, left))):
            h.update(chunk)
            left -= len(chunk)
    return "" if not left and h.hexdigest() == digest else "checksum differs"
