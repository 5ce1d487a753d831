"""Fuzz harness (e): the conformance runner's judging of a decoder's outcome, output file and stage files
(refcodec.conformance.judge, harness.last_line, reports), as a hostile or broken decoder leaves them.

An input chooses one of a few golden vectors (positive ones with stages, negative ones of each error
class), the decoder's exit status (or a timeout), the raw bytes of its stderr, what it left at the
output path (nothing, the right pixels, the right pixels with a few bytes changed, arbitrary bytes, a
PNG of another size, a folder, a FIFO, a symbolic link) in PNG or raw RGB, and, per stage of spec §9.4, what
it left in the stage folder (nothing, the right file, a changed, cut or extended one, arbitrary bytes, a
link, a folder, a FIFO). ``judge`` must return a Result -- never raise, never hang -- whose verdict
obeys spec §9.1 (the right pixels and stages with status 0 pass; a timeout, or a negative vector
accepted, fail), and the JSON and JUnit reports of it must be well-formed.

Its two findings (fuzz/README.md: a FIFO at the output path hung ``read_png``; a folder at a stage
path made ``stage_file_problem`` raise) are fixed; their inputs are in fuzz/crashes/judge/.

    python fuzz/fuzz_judge.py CORPUS_DIR [libFuzzer flags]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import struct
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import fuzzlib

with fuzzlib.instrumented(__name__ == "__main__"):
    from refcodec.conformance import harness, judge, reports, suite
    from refcodec.image import png_bytes

import numpy as np
from PIL import Image

VECTOR_NAMES = ("model-escaped-names", "stress-joint", "neg-bad-magic", "neg-model-bias-bound")
VECTORS: list = []
STAGES: dict = {}  # vector name -> {stage name: correct file bytes}
PIXELS: dict = {}  # vector name -> correct (H, W, 3) uint8 pixels
_work: list = []


def setup() -> None:
    """The vectors, their pixels (from expected.png) and correct stage files (the reference decoder's)."""
    if VECTORS:
        return
    from refcodec.decoder.decoding import stage_bytes, stages

    index = json.loads((fuzzlib.VECTORS / "index.json").read_text(encoding="utf-8"))
    entries = {e["name"]: e for e in index["vectors"]}
    for name in VECTOR_NAMES:
        if name not in entries:
            continue
        vector = suite.load_vector(fuzzlib.VECTORS, entries[name])
        VECTORS.append(vector)
        if not vector.negative:
            with Image.open(vector.expected) as im:
                PIXELS[name] = np.asarray(im.convert("RGB"))
            STAGES[name] = {k: stage_bytes(v) for k, v in
                            stages(vector.stream.read_bytes(), [vector.model], impl="reference").items()}
    _work.append(tempfile.TemporaryDirectory(prefix="refcodec-fuzz-judge-"))


def status_of(r: fuzzlib.Reader) -> int | None:
    kind = r.byte() % 7
    if kind < 4:
        return (None, 0, 1, -9)[kind]
    if kind == 4:
        return -r.byte()
    if kind == 5:
        return r.byte() - 128
    return int(struct.unpack("<i", struct.pack("<I", r.uint(4)))[0])


def edited(data: bytes, r: fuzzlib.Reader) -> bytes:
    out = bytearray(data)
    for _ in range(1 + r.byte() % 3):
        pos, flip = r.uint(2), r.byte() | 1
        if out:
            out[pos % len(out)] ^= flip
    return bytes(out)


def write_output(path: Path, vector, fmt: str, r: fuzzlib.Reader, folder: Path) -> bool:
    """What the decoder left at ``path``; True when it is exactly the right picture in a regular file."""
    kind = r.byte() % 8
    pixels = PIXELS.get(vector.name)
    right = None if pixels is None else (png_bytes(pixels) if fmt == "png" else pixels.tobytes())
    if kind == 0:
        return False
    if kind == 1 and right is not None:
        path.write_bytes(right)
        return True
    if kind == 2 and right is not None:
        path.write_bytes(edited(right, r))
    elif kind == 3:
        path.write_bytes(r.take(r.uint(2) % 4096))
    elif kind == 4:
        w, h = 1 + r.byte() % 20, 1 + r.byte() % 20
        path.write_bytes(png_bytes(np.full((h, w, 3), r.byte(), np.uint8)))
    elif kind == 5 and r.byte() % 2:
        os.mkfifo(path)  # finding 1 (fixed): read_png blocked on it
    elif kind == 5:
        path.mkdir()
    elif kind == 6:
        target = [vector.expected, Path("/dev/zero"), folder / "missing", folder][r.byte() % 4]
        path.symlink_to(target)
    elif right is not None:  # the right picture cut or extended
        cut = r.uint(2) % (len(right) + 8)
        path.write_bytes(right[:cut] if cut <= len(right) else right + bytes(cut - len(right)))
    return False


def write_stages(dump: Path, vector, r: fuzzlib.Reader) -> bool:
    """The decoder's stage files; True when every stage is exactly right (or none was written)."""
    right, written = True, 0
    for name, data in STAGES.get(vector.name, {}).items():
        path = dump / f"{name}{suite.STAGE_SUFFIX}"
        kind = r.byte() % 10
        if kind == 0:
            right = False
            continue
        written += 1
        if kind == 1:
            path.write_bytes(data)
            continue
        right = False
        if kind == 2:
            path.write_bytes(edited(data, r))
        elif kind == 3:
            path.write_bytes(data[: r.uint(2) % (len(data) + 1)])
        elif kind == 4:
            path.write_bytes(data + r.take(1 + r.byte() % 8))
        elif kind == 5:
            path.write_bytes(r.take(r.uint(2) % 512))
        elif kind == 6:
            (dump / "real").write_bytes(data)
            path.symlink_to("real")
        elif kind == 7:
            path.mkdir()  # finding 2 (fixed): stage_file_problem raised IsADirectoryError
        elif kind == 8:
            os.mkfifo(path)
        else:
            path.symlink_to("/dev/zero")
    return right or written == 0


def test_one_input(data: bytes) -> None:
    setup()
    if not VECTORS:
        return
    r = fuzzlib.Reader(bytes(data))
    vector = VECTORS[r.byte() % len(VECTORS)]
    flags = r.byte()
    fmt, dump_on = ("png", "rgb")[flags & 1], bool(flags & 2)
    status = status_of(r)
    stderr = harness.last_line(r.take(r.byte()))
    folder = Path(_work[0].name) / "case"
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "stages").mkdir(parents=True)
    output = folder / f"output.{fmt}"
    right_output = write_output(output, vector, fmt, r, folder)
    right_stages = write_stages(folder / "stages", vector, r) if dump_on else True
    config = harness.Config(["decoder", "{stream}", "{output}"], fmt, folder / "diffs", dump=dump_on)
    outcome = harness.Outcome(status, stderr, r.uint(2) / 100)
    result = judge.judge(vector, outcome, output, folder / "stages", config)
    if not isinstance(result, judge.Result):
        raise fuzzlib.Finding(f"judge returned {result!r}")
    if status is None and result.passed:
        raise fuzzlib.Finding("a timed-out decoder passed")
    if vector.negative and status == 0 and result.passed:
        raise fuzzlib.Finding("a negative vector accepted with status 0 passed")
    if not vector.negative and status == 0 and right_output and right_stages and not result.passed:
        raise fuzzlib.Finding(f"the right pixels and stages failed: {result.reason}: {result.detail}")
    if not vector.negative and (status != 0 or (not right_output and not output.exists())) and result.passed:
        raise fuzzlib.Finding(f"a positive vector passed with status {status} and no output")
    check_reports(result)


def check_reports(result) -> None:
    args = argparse.Namespace(decoder="decoder {stream} {output}", output_format="png")
    text = reports.json_report(args, {"vectors": "v"}, [result], 1.0)
    json.loads(text)
    root = reports.junit_report([result], 1.0).getroot()
    if root is None:
        raise fuzzlib.Finding("an empty JUnit report")
    xml = ET.tostring(root, encoding="unicode")
    ET.fromstring(xml)


def make_input(vector: int, status_kind: int, output_kind: int, stage_kinds: bytes = b"", png: bool = True,
               dump: bool = True, stderr: bytes = b"") -> bytes:
    """An input for the corpus (the layout test_one_input reads)."""
    return (bytes([vector, (0 if png else 1) | (2 if dump else 0), status_kind, len(stderr)]) + stderr
            + bytes([output_kind]) + stage_kinds)


if __name__ == "__main__":
    fuzzlib.main(test_one_input, setup=setup, seeds="judge")
    sys.exit(0)
