"""The conformance runner (refcodec.conformance): refcodec's own decoder passes a sample
of the golden vectors (tests/test_vectors.py judges every vector in process, as the runner
does) and random streams, and decoders that are wrong in the usual ways are caught, down to
the first intermediate stage (spec §9.4) where they go wrong.

The wrong decoders are small Python scripts wrapping refcodec's CLI (its reference
decoder, with refcodec internals patched before ``refcodec.cli.main`` runs); they
live in a folder whose name has spaces, so every run also checks that the
template's paths reach the decoder as single arguments.
"""

import hashlib
import json
import os
import re
import shlex
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from refcodec.conformance import UsageError
from refcodec.conformance.cli import main
from refcodec.conformance.harness import build_command, last_line, parse_template
from refcodec.conformance.judge import error_class_note, first_divergent_stage
from refcodec.conformance.random_streams import Case, random_case, shrink
from refcodec.decoder.decoding import stage_bytes
from refcodec.decoder.model import ARCHITECTURES, load_model

REPO = Path(__file__).resolve().parent.parent
INDEX = json.loads((REPO / "vectors" / "index.json").read_text())["vectors"]
OWN_DECODER = "{python} -m refcodec.cli decode --model-file {model} {stream} {output}"
OWN_REFERENCE_DUMPING = "{python} -m refcodec.cli decode --impl reference --dump-stages {dump} " \
                        "--model-file {model} {stream} {output}"

STAGE_COUNT = {"factorized": 8, "hyperprior": 11, "mean-scale": 12, "joint": 12}  # spec §9.4, version 1
GAIN_STAGES = {"factorized": 1, "hyperprior": 2, "mean-scale": 2, "joint": 2}  # y_gain, z_gain: version 2

PRELUDE = f"""\
import sys
sys.path.insert(0, {str(REPO)!r})
stream, model, output, *dump = sys.argv[1:]

def decode():
    from refcodec.cli import main
    stages = ["--dump-stages", dump[0]] if dump else []
    return main(["decode", "--impl", "reference", *stages, "--model-file", model, stream, output])
"""

FLIP_ONE_PIXEL = """
code = decode()
if code == 0:
    from PIL import Image
    im = Image.open(output).convert("RGB")
    r, g, b = im.getpixel((0, 0))
    im.putpixel((0, 0), (r ^ 1, g, b))
    im.save(output)
sys.exit(code)
"""

ACCEPT_EVERYTHING = """
if decode() != 0:
    open(output, "wb").write(bytes(3))
sys.exit(0)
"""

LEAVE_OUTPUT_ON_ERROR = """
code = decode()
if code != 0:
    open(output, "wb").close()
sys.exit(code)
"""

CORRUPT_ONE_STAGE = """
code = decode()
path = dump[0] + "/synthesis.2.i32"
data = bytearray(open(path, "rb").read())
data[0] ^= 1
open(path, "wb").write(data)
sys.exit(code)
"""

# One layer rounds (x + 2^(n-1)) / 2^n toward zero, as C's integer division does, instead
# of flooring (spec §2.4 Round2): the layer is marked when the model is loaded.
ROUND_ONE_LAYER_TOWARD_ZERO = """
import numpy as np
from refcodec.decoder import layers
from refcodec.decoder import model as models
GROUP, LAYER = GROUP_AND_LAYER

def round_toward_zero(x, n):
    n = np.asarray(n, np.int64)
    v, d = x + ((np.int64(1) << n) >> 1), np.int64(1) << n
    return np.where(v < 0, -(-v // d), v // d)

load_model, apply_layer, round2 = models.load_model, layers.apply_layer, layers.round2

def marked_load_model(data):
    model = load_model(data)
    getattr(model, GROUP)[LAYER].packed["round_toward_zero"] = True
    return model

def wrong_apply_layer(x, layer):
    layers.round2 = round_toward_zero if layer.packed.get("round_toward_zero") else round2
    try:
        return apply_layer(x, layer)
    finally:
        layers.round2 = round2

models.load_model, layers.apply_layer = marked_load_model, wrong_apply_layer
sys.exit(decode())
"""

# A missing word at the end of a sub-stream is read as 0 instead of failing (spec §3.3).
READ_ZEROS_PAST_THE_END = """
from refcodec.decoder import latents, rans

def renormalize(state):
    if state.x < rans.RANS_L:
        state.x = (state.x << 32) | int.from_bytes(state.data[state.pos:state.pos + 4].ljust(4, b"\\0"), "little")
        state.pos = min(state.pos + 4, len(state.data))

rans.rans_renormalize = renormalize
"""

SKIP_RANS_EXIT = """
rans.rans_exit = latents.rans_exit = lambda state: None  # no end-of-stream check (spec §3.6), as in CompressAI
"""

# The escape symbol is taken as the value max_value: no bypass nibbles are read (spec §3.5).
IGNORE_ESCAPES = READ_ZEROS_PAST_THE_END + SKIP_RANS_EXIT + """
def decode_value(state, cdf, cdf_length, offset):
    return rans.rans_decode_symbol(state, cdf, cdf_length) + offset

rans.rans_decode_value = latents.rans_decode_value = decode_value
sys.exit(decode())
"""

HANG_WITH_A_CHILD = """
import subprocess, time
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
time.sleep(60)
"""


def decoder_template(tmp_path: Path, body: str, dump: bool = False) -> str:
    """A --decoder template running ``body`` as a Python script in a folder with spaces in its name;
    with ``dump`` the decoder also writes its stages to {dump} (``--dump-stages``)."""
    folder = tmp_path / "decoders with spaces"
    folder.mkdir(exist_ok=True)
    script = folder / "wrong decoder.py"
    script.write_text(PRELUDE + body)
    return f"{{python}} {shlex.quote(str(script))} {{stream}} {{model}} {{output}}" + (" {dump}" if dump else "")


def conform(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def by_name(json_path: Path) -> dict:
    return {r["name"]: r for r in json.loads(json_path.read_text())["results"]}


def manifest(name: str) -> dict:
    entry = next(e for e in INDEX if e["name"] == name)
    return json.loads((REPO / "vectors" / entry["manifest"]).read_text())


def architecture(name: str) -> str:
    return manifest(name)["architecture"]


def stage_count(name: str) -> int:
    """The number of stages of spec §9.4 of a positive vector: by architecture and stream version."""
    stream = (REPO / "vectors" / name / "stream.rcdc").read_bytes()
    arch = architecture(name)
    return STAGE_COUNT[arch] + (GAIN_STAGES[arch] if stream[4] == 2 else 0)


# A sample of the vectors through the runner, refcodec's decoder in a subprocess: the smallest picture of
# each architecture, a version-2 stream, and StreamErrors (one from the header alone) and a ModelError.
# tests/test_vectors.py judges every vector in process.
SAMPLE = ("size-1x1", "quality-mean-scale-highest", "neg-bad-magic", "neg-unknown-model")


def test_own_decoder_passes_a_sample_of_the_vectors(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    monkeypatch.chdir(tmp_path)
    report, junit = tmp_path / "report.json", tmp_path / "junit.xml"
    filters = [arg for name in SAMPLE for arg in ("--filter", name)]
    code, out, _ = conform(capsys, "--decoder", OWN_DECODER, *filters, "--jobs", 2, "--json", report,
                           "--junit", junit)
    sample = [e["name"] for e in INDEX if any(name in e["name"] for name in SAMPLE)]
    assert len(sample) == len(ARCHITECTURES) + 4  # neg-bad-magic and neg-bad-magic-unknown-model
    assert code == 0, out
    assert out.splitlines()[-1] == f"{len(sample)} passed, 0 failed"
    data = json.loads(report.read_text())
    assert (data["passed"], data["failed"]) == (len(sample), 0)
    assert [r["name"] for r in data["results"]] == sample
    assert {architecture(r["name"]) for r in data["results"] if not r["negative"]} == set(ARCHITECTURES)
    negatives = [r for r in data["results"] if r["negative"]]
    assert [r["note"] for r in negatives] == [f"reported {manifest(r['name'])['expected_error']} as expected"
                                              for r in negatives]
    assert {r["note"] for r in negatives} == {"reported StreamError as expected", "reported ModelError as expected"}
    suite = ET.parse(junit).getroot()
    assert suite.tag == "testsuite" and suite.get("name") == "refcodec-conformance"
    assert (suite.get("tests"), suite.get("failures")) == (str(len(sample)), "0")
    assert len(suite.findall("testcase")) == len(sample) and not suite.findall(".//failure")
    assert not (tmp_path / "conform-diffs").exists()  # created only for a mismatch


def test_one_wrong_pixel_is_reported_with_a_heat_map(tmp_path, capsys):
    diffs, report = tmp_path / "diffs", tmp_path / "report.json"
    code, out, _ = conform(capsys, "--decoder", decoder_template(tmp_path, FLIP_ONE_PIXEL, dump=True),
                           "--output-format", "png", "--filter", "size-33x17", "--filter", "size-1x40",
                           "--diff-dir", diffs, "--json", report)
    assert code == 1 and out.splitlines()[-1] == "0 passed, 2 failed"
    for name, (w, h) in {"size-33x17": (33, 17), "size-1x40": (1, 40)}.items():
        r = by_name(report)[name]
        assert (r["passed"], r["reason"], r["differing_pixels"], r["max_abs_diff"]) == (False, "mismatch", 1, 1)
        assert r["first_divergent_stage"] == "output"  # every stage matched: the error is in the output
        assert r["detail"].endswith("every stage matches, so the divergence is after the last stage "
                                    "(synthesis.6): in the crop or the output (§8.5)")
        assert r["psnr"] == pytest.approx(10 * np.log10(255**2 * 3 * w * h))
        heat = np.asarray(Image.open(r["heatmap"]))
        assert Path(r["heatmap"]) == diffs / f"{name}.png" and heat.shape == (h, w, 3)
        assert heat[0, 0].tolist() == [255, 255, 255] and heat.sum() == 3 * 255
        assert f"FAIL {name} — pixels differ: 1 of {w * h} pixels" in out


def test_decoder_accepting_negative_vectors_fails_them(tmp_path, capsys):
    report, junit = tmp_path / "report.json", tmp_path / "junit.xml"
    code, out, _ = conform(capsys, "--decoder", decoder_template(tmp_path, ACCEPT_EVERYTHING),
                           "--filter", "size-1x1", "--filter", "neg-bad-magic", "--filter", "neg-unknown-model",
                           "--json", report, "--junit", junit)
    sizes = [e["name"] for e in INDEX if "size-1x1" in e["name"]]  # size-1x1 of every architecture
    assert code == 1 and out.splitlines()[-1] == f"{len(sizes)} passed, 3 failed"
    results = by_name(report)
    assert all(results[name]["passed"] for name in sizes)
    for name, expected in {"neg-bad-magic": "StreamError", "neg-unknown-model": "ModelError",
                           "neg-bad-magic-unknown-model": "StreamError"}.items():
        assert (results[name]["reason"], results[name]["exit_status"]) == ("accepted", 0)
        assert results[name]["detail"] == f"exit status 0 and wrote 3 bytes; expected a {expected}"
    suite = ET.parse(junit).getroot()
    assert (suite.get("tests"), suite.get("failures")) == (str(len(sizes) + 3), "3")
    failed = {case.get("name"): case.find("failure") for case in suite.iter("testcase")}
    assert failed["size-1x1"] is None
    assert failed["neg-bad-magic"].get("message").startswith("exit status 0 and wrote 3 bytes")


DECLINE_ABOVE_LEVEL_1 = """
from refcodec.decoder.bitstream import parse_stream
from refcodec.decoder.errors import StreamError
try:
    level = parse_stream(open(stream, "rb").read()).level
except StreamError:
    level = 1  # a broken header: refcodec's decoder reports its StreamError
if level > 1:
    print(f"declined: the stream is of level {level}, this decoder of level 1", file=sys.stderr)
    sys.exit(1)
sys.exit(decode())
"""


def test_level_option_leaves_out_the_vectors_above_the_level(tmp_path, capsys):
    """A decoder of level 1 declines the pictures above 4096 (spec §7.3, §9.1): judged at level 1
    (``--level 1``) it passes, the vectors of levels 2 and 3 not run; judged at level 3 it fails them.
    The headers above MAX_DIMENSION are StreamErrors at every level and are run."""
    template = decoder_template(tmp_path, DECLINE_ABOVE_LEVEL_1)
    big = ["size-4112x16", "size-16384x16", "joint-size-16x16384"]
    filters = [arg for name in [*big, "size-1x1", "neg-width-16385", "neg-size-65535x65535"]
               for arg in ("--filter", name)]
    report = tmp_path / "report.json"
    code, out, _ = conform(capsys, "--decoder", template, "--level", 1, *filters, "--json", report)
    sizes = [e["name"] for e in INDEX if "size-1x1" in e["name"]]
    assert code == 0, out
    assert out.splitlines()[0] == f"3 vectors of a level above 1 not run: {', '.join(big)}"
    assert out.splitlines()[-1] == f"{len(sizes) + 2} passed, 0 failed"
    data = json.loads(report.read_text())
    assert (data["level"], data["not_run_above_level"]) == (1, big)
    assert not set(big) & {r["name"] for r in data["results"]}
    code, out, _ = conform(capsys, "--decoder", template, *filters, "--json", report)
    assert code == 1 and out.splitlines()[-1] == f"{len(sizes) + 2} passed, 3 failed"
    assert {name for name, r in by_name(report).items() if not r["passed"]} == set(big)
    code, _, err = conform(capsys, "--decoder", template, "--level", 1, "--filter", "size-16384x16")
    assert code == 2 and "no vector of level 1 or below" in err


def test_output_left_behind_after_an_error_fails(tmp_path, capsys):
    report = tmp_path / "report.json"
    code, out, _ = conform(capsys, "--decoder", decoder_template(tmp_path, LEAVE_OUTPUT_ON_ERROR),
                           "--filter", "neg-width-0", "--json", report)
    r = by_name(report)["neg-width-0"]
    assert code == 1, out
    assert (r["reason"], r["exit_status"]) == ("output-left", 1)
    assert "left an output file (0 bytes)" in r["detail"] and "StreamError" in r["stderr"]
    assert r["note"] == "reported StreamError as expected"


ALWAYS_STREAM_ERROR = """
code = decode()
if code != 0:
    print("StreamError: something", file=sys.stderr)
sys.exit(code)
"""


def test_wrong_error_class_fails(tmp_path, capsys):
    """A decoder that names the wrong class of spec §2.6 fails the vector; the right one passes."""
    report = tmp_path / "report.json"
    code, out, _ = conform(capsys, "--decoder", decoder_template(tmp_path, ALWAYS_STREAM_ERROR),
                           "--filter", "neg-model-mean-shift", "--filter", "neg-mean-shift-out-of-range",
                           "--json", report)
    results = by_name(report)
    assert code == 1 and out.splitlines()[-1] == "1 passed, 1 failed"
    assert results["neg-mean-shift-out-of-range"]["passed"]
    r = results["neg-model-mean-shift"]
    assert r["reason"] == "wrong-error" and "reported a StreamError; expected a ModelError" in r["detail"]


def test_own_decoder_stages_match(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    report = tmp_path / "report.json"
    code, out, _ = conform(capsys, "--decoder", OWN_REFERENCE_DUMPING, "--filter", "size-1x1", "--filter", "stress-",
                           "--filter", "quality-joint", "--filter", "quality-version-1", "--filter", "neg-bad-magic",
                           "--jobs", 2, "--json", report)
    assert code == 0, out
    results = by_name(report)
    assert len(results) == 2 + 2 * len(ARCHITECTURES) + 3
    assert [stage_count(name) for name in ("quality-joint-lowest", "quality-version-1")] == [14, 12]
    for name, r in results.items():
        if not r["negative"]:
            stages = stage_count(name)
            assert r["detail"] == f"pixels match; all {stages} stages match" and r["first_divergent_stage"] is None


def test_wrong_stage_under_right_pixels_fails(tmp_path, capsys):
    report, junit = tmp_path / "report.json", tmp_path / "junit.xml"
    code, out, _ = conform(capsys, "--decoder", decoder_template(tmp_path, CORRUPT_ONE_STAGE, dump=True),
                           "--filter", "size-1x40", "--json", report, "--junit", junit)
    r = by_name(report)["size-1x40"]
    assert code == 1 and not r["passed"], out
    assert (r["reason"], r["first_divergent_stage"]) == ("stage-mismatch", "synthesis.2")
    assert r["detail"] == "pixels match but first divergent stage: synthesis.2 (checksum differs)"
    failure = ET.parse(junit).getroot().find("testcase/failure")
    assert failure.get("type") == "stage-mismatch" and "first divergent stage: synthesis.2" in failure.text


@pytest.mark.parametrize("group, layer, vector, stage", [
    ("synthesis", 3, "size-33x17", "synthesis.3"),  # an IGDN layer of g_s
    ("hyper_synthesis", 2, "mean-scale-size-40x1", "hyper_synthesis"),  # the last layer of h_s: wrong means
])
def test_one_layer_rounding_toward_zero_is_located(tmp_path, capsys, group, layer, vector, stage):
    body = ROUND_ONE_LAYER_TOWARD_ZERO.replace("GROUP_AND_LAYER", f"{group!r}, {layer}")
    report = tmp_path / "report.json"
    code, out, _ = conform(capsys, "--decoder", decoder_template(tmp_path, body, dump=True), "--filter", vector,
                           "--diff-dir", tmp_path / "diffs", "--json", report)
    r = by_name(report)[vector]
    assert code == 1 and (r["reason"], r["first_divergent_stage"]) == ("mismatch", stage)
    assert f"FAIL {vector} — pixels differ: " in out and out.splitlines()[0].endswith(
        f"; first divergent stage: {stage} (checksum differs)")


def test_decoder_ignoring_escapes_is_caught_at_the_first_latents(tmp_path, capsys):
    report = tmp_path / "report.json"
    code, out, _ = conform(capsys, "--decoder", decoder_template(tmp_path, IGNORE_ESCAPES, dump=True),
                           "--filter", "latents-escapes", "--diff-dir", tmp_path / "diffs", "--json", report)
    results = by_name(report)
    assert code == 1 and out.splitlines()[-1] == f"0 passed, {len(ARCHITECTURES)} failed"
    for name, r in results.items():  # z is decoded first, and has escapes too, in the hyperprior family
        assert r["first_divergent_stage"] == ("y_hat" if architecture(name) == "factorized" else "z_hat"), r


@pytest.mark.parametrize("skip_exit", [False, True], ids=["with-RansExit", "without-RansExit"])
def test_decoder_reading_zeros_past_the_end(tmp_path, capsys, skip_exit):
    """Reading zeros past the end of a sub-stream is still caught by the final state check
    of spec §3.6 (RansExit); a decoder that also skips that accepts truncated streams."""
    body = READ_ZEROS_PAST_THE_END + (SKIP_RANS_EXIT if skip_exit else "") + "sys.exit(decode())\n"
    report = tmp_path / "report.json"
    code, out, _ = conform(capsys, "--decoder", decoder_template(tmp_path, body), "--filter", "truncated",
                           "--json", report)
    results = by_name(report)
    assert {"neg-y-truncated", "neg-z-truncated", "neg-joint-y-truncated"} <= set(results)
    for r in results.values():
        if skip_exit:
            assert (r["passed"], r["reason"], r["exit_status"]) == (False, "accepted", 0)
            assert r["detail"].startswith("exit status 0 and wrote ")
        else:
            assert r["passed"] and "not 2^31" in r["stderr"] and r["note"] == "reported StreamError as expected"
    assert code == int(skip_exit), out


def test_own_decoder_passes_random_streams(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    monkeypatch.chdir(tmp_path)
    report = tmp_path / "report.json"
    code, out, _ = conform(capsys, "--decoder", OWN_REFERENCE_DUMPING, "--random", 5, "--seed", 17, "--jobs", 2,
                           "--json", report)
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0].startswith("5 random streams, seed 17") and lines[-1] == "5 passed, 0 failed"
    data = json.loads(report.read_text())
    assert (data["random"], data["seed"]) == (5, 17) and "vectors" not in data
    assert [r["name"] for r in data["results"]] == [f"random-17-{i}" for i in range(5)]
    assert {r["note"].split()[0] for r in data["results"]} == set(ARCHITECTURES)  # seed 17: all four
    assert ["quality" in r["note"] for r in data["results"]] == [False, True, False, True, False]  # version 2
    assert all(re.fullmatch(r"pixels match; all (8|9|11|12|13|14) stages match", r["detail"])
               for r in data["results"])
    assert not (tmp_path / "conform-failures").exists()  # created only for a failure


def test_wrong_decoder_on_random_streams_is_shrunk_and_saved(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    wrong = decoder_template(tmp_path, ROUND_ONE_LAYER_TOWARD_ZERO.replace("GROUP_AND_LAYER", "'synthesis', 3"),
                             dump=True)
    saved, report, junit = tmp_path / "failures", tmp_path / "report.json", tmp_path / "junit.xml"
    code, out, _ = conform(capsys, "--decoder", wrong, "--random", 2, "--seed", 2, "--save-dir", saved,
                           "--diff-dir", tmp_path / "diffs", "--jobs", 2, "--json", report, "--junit", junit)
    assert code == 1 and out.splitlines()[-1] == "1 passed, 1 failed"
    r = by_name(report)["random-2-0"]
    assert (r["reason"], r["first_divergent_stage"], r["saved_vector"]) == \
        ("stage-mismatch", "synthesis.3", str(saved / "random-2-0"))
    assert 1 <= r["shrink_runs"] <= 60 and ", saved as " in r["detail"]
    manifest = json.loads((saved / "random-2-0" / "manifest.json").read_text())
    assert "seed 2" in manifest["description"] and manifest["clauses"] == []
    assert manifest["width"] * manifest["height"] < 79 * 14  # shrunk from joint 79x14
    assert "smallest failing stream saved as" in ET.parse(junit).getroot().find("testcase/failure").text
    # the saved folder is a vector set: refcodec's decoder passes it, the wrong one still fails it
    for decoder, expected in ((OWN_REFERENCE_DUMPING, "1 passed, 0 failed"), (wrong, "0 passed, 1 failed")):
        code, out, _ = conform(capsys, "--decoder", decoder, "--vectors", saved, "--diff-dir", tmp_path / "diffs")
        assert out.splitlines()[-1] == expected, out


def test_random_streams_are_reproducible():
    first, again = random_case(7, 3), random_case(7, 3)
    assert first.model == again.model and first.summary() == again.summary()
    assert np.array_equal(first.y, again.y) and (first.z is None or np.array_equal(first.z, again.z))
    assert random_case(8, 3).model != first.model
    cases = [random_case(0, i) for i in range(20)]
    assert {case.architecture for case in cases} == set(ARCHITECTURES)
    with_levels = [case for case in cases if case.levels]  # version-2 streams of models with quality levels
    assert 0 < len(with_levels) < len(cases)
    assert all(load_model(case.model).levels == case.levels and 0 <= case.level < case.levels for case in with_levels)
    assert all(load_model(case.model).levels == 0 and case.level is None for case in cases if not case.levels)


def test_shrinking_drops_the_quality_levels_when_the_failure_does_not_need_them():
    case = random_case(17, 3)  # hyperprior 88x89 with 5 quality levels, a version-2 stream
    assert case.levels == 5 and case.level is not None
    smallest, _ = shrink(case, lambda candidate: True, 60)
    assert (smallest.width, smallest.height, smallest.levels, smallest.level) == (1, 1, 0, None)
    assert load_model(smallest.model).levels == 0 and not np.any(smallest.y)
    kept, _ = shrink(case, lambda candidate: candidate.level is not None, 60)  # a failure in the gains
    assert (kept.width, kept.height, kept.levels, kept.level) == (1, 1, 5, case.level)


def test_shrink_keeps_what_fails(tmp_path):
    y = np.zeros((2, 3, 4), np.int64)
    y[1, 1, 2], y[0, 0, 0] = 1000, 32767
    case = Case(0, 0, "factorized", 1, 2, False, b"", 60, 40, y, None)
    tried = []

    def fails(candidate):  # the failure needs a latent >= 300 at position (1, 2) of channel 1
        tried.append(candidate)
        _, lat_h, lat_w = candidate.y.shape
        return lat_h > 1 and lat_w > 2 and candidate.y[1, 1, 2] >= 300

    smallest, runs = shrink(case, fails, 60)
    assert runs == len(tried) <= 60
    assert (smallest.width, smallest.height) == (60, 20)  # halving the width would lose latent column 2
    assert smallest.y.shape == (2, 2, 4) and smallest.y[1, 1, 2] == 500 and np.count_nonzero(smallest.y) == 1
    assert shrink(case, fails, 5)[1] == 5


def test_stage_files_are_judged_without_trusting_them(tmp_path):
    arrays = {"y_hat": np.arange(6).reshape(1, 2, 3), "synthesis.0": -np.ones((2, 2, 2), np.int64),
              "synthesis.1": np.zeros((1, 1, 1), np.int64)}
    stages = [{"name": k, "shape": list(a.shape), "sha256": hashlib.sha256(stage_bytes(a)).hexdigest()}
              for k, a in arrays.items()]
    assert first_divergent_stage(stages, tmp_path) is None  # nothing dumped: nothing to say
    for name, a in arrays.items():
        (tmp_path / f"{name}.i32").write_bytes(stage_bytes(a))
    assert first_divergent_stage(stages, tmp_path) == (None, "")
    s1 = tmp_path / "synthesis.1.i32"
    s1.unlink()
    assert first_divergent_stage(stages, tmp_path) == ("synthesis.1", "missing")
    os.mkfifo(s1)  # reading it would block for ever
    assert first_divergent_stage(stages, tmp_path) == ("synthesis.1", "not a regular file")
    s0 = tmp_path / "synthesis.0.i32"
    s0.unlink()
    s0.symlink_to("/dev/zero")
    assert first_divergent_stage(stages, tmp_path) == ("synthesis.0", "a symbolic link")
    s0.unlink()
    with open(s0, "wb") as f:
        f.truncate(1 << 40)  # sparse: a terabyte is never read
    assert first_divergent_stage(stages, tmp_path) == ("synthesis.0", f"{1 << 40} bytes, expected 32")
    (tmp_path / "y_hat.i32").write_bytes(stage_bytes(arrays["y_hat"] + 1))
    assert first_divergent_stage(stages, tmp_path) == ("y_hat", "checksum differs")


def test_hanging_decoder_and_its_children_are_killed(tmp_path, capsys):
    report = tmp_path / "report.json"
    start = time.monotonic()
    code, out, _ = conform(capsys, "--decoder", decoder_template(tmp_path, HANG_WITH_A_CHILD),
                           "--filter", "size-33x17", "--filter", "neg-width-0", "--timeout", 1, "--jobs", 2,
                           "--json", report)
    assert time.monotonic() - start < 10  # the sleeping child would hold stderr open for 60 s
    assert code == 1
    results = by_name(report)
    assert sorted(results) == ["neg-width-0", "size-33x17"]  # a positive and a negative vector
    for r in results.values():
        assert (r["passed"], r["reason"], r["exit_status"]) == (False, "timeout", None)
        assert f"FAIL {r['name']} — timed out" in out


@pytest.mark.parametrize("args, message", [
    (["--decoder", "mydec {stream}"], "--decoder must contain {output}"),
    (["--decoder", "mydec 'x {stream} {output}"], "No closing quotation"),
    (["--decoder", "mydec {stream} {output}", "--vectors", "/nonexistent"], "no golden vectors in /nonexistent"),
    (["--decoder", "mydec {stream} {output}", "--filter", "no-such-vector"], "no vector's name contains"),
    (["--decoder", "/nonexistent/mydec {stream} {output}", "--filter", "size-1x1"], "cannot run the decoder"),
    (["--decoder", "mydec {stream} {output}", "--random", "3", "--filter", "size"], "--random replaces the golden"),
    (["--decoder", "mydec {stream} {output}", "--seed", "3"], "--seed: only with --random N"),
])
def test_usage_errors_exit_2(capsys, args, message):
    code, _, err = conform(capsys, *args)
    assert code == 2 and message in err


def test_placeholders_are_substituted_within_words_after_splitting():
    words = parse_template("'my dec' --in={stream} -m {model} {output}")
    paths = {"stream": "/a b/s.rcdc", "model": "/x/{output}", "output": "/o u t.rgb", "python": "py"}
    assert build_command(words, paths) == ["my dec", "--in=/a b/s.rcdc", "-m", "/x/{output}", "/o u t.rgb"]
    with pytest.raises(UsageError):
        parse_template("")


def test_stderr_line_and_error_class_note():
    assert last_line(b"debug\n\x1b[31merror: StreamError: bad\x07\x1b[0m\n\n") == "error: StreamError: bad?"
    assert error_class_note("ModelError", "StreamError: bad") == "reported StreamError, expected ModelError"
    assert error_class_note("ModelError", "error 7") == "error class not reported, not checked"


NAME_NO_ERROR_CLASS = """
code = decode()
if code != 0:
    print("error 7", file=sys.stderr)  # a decoder that fails without naming StreamError or ModelError
sys.exit(code)
"""


def test_error_class_unverified_is_counted_and_strict_fails_it(tmp_path, capsys):
    """A negative vector whose decoder names no error class passes, counted as "class unverified" in the
    summary; --strict fails it (spec §9.3)."""
    template = decoder_template(tmp_path, NAME_NO_ERROR_CLASS)
    code, out, _ = conform(capsys, "--decoder", template, "--filter", "neg-bad-magic-unknown-model")
    assert code == 0
    assert "1 negative vectors passed with their error class unverified" in out
    assert out.splitlines()[-1] == "1 passed, 0 failed"
    code, out, _ = conform(capsys, "--decoder", template, "--filter", "neg-bad-magic-unknown-model", "--strict")
    assert code == 1 and out.splitlines()[-1] == "0 passed, 1 failed"
    assert "the decoder named no error class (--strict)" in out
