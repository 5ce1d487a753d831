"""The conformance runner (refcodec/conform.py): refcodec's own decoder passes every
golden vector, and decoders that are wrong in the usual ways are caught.

The wrong decoders are small Python scripts wrapping refcodec's CLI; they live in
a folder whose name has spaces, so every run also checks that the template's
paths reach the decoder as single arguments.
"""

import json
import shlex
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from refcodec.conform import UsageError, build_command, error_class_note, last_line, main, parse_template

REPO = Path(__file__).resolve().parent.parent
INDEX = json.loads((REPO / "vectors" / "index.json").read_text())["vectors"]
OWN_DECODER = "{python} -m refcodec.cli decode --model-file {model} {stream} {output}"

PRELUDE = f"""\
import sys
sys.path.insert(0, {str(REPO)!r})
stream, model, output = sys.argv[1:4]

def decode():
    from refcodec.cli import main
    return main(["decode", "--model-file", model, stream, output])
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

HANG_WITH_A_CHILD = """
import subprocess, time
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
time.sleep(60)
"""


def decoder_template(tmp_path: Path, body: str) -> str:
    """A --decoder template running ``body`` as a Python script in a folder with spaces in its name."""
    folder = tmp_path / "decoders with spaces"
    folder.mkdir(exist_ok=True)
    script = folder / "wrong decoder.py"
    script.write_text(PRELUDE + body)
    return f"{{python}} {shlex.quote(str(script))} {{stream}} {{model}} {{output}}"


def conform(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def by_name(json_path: Path) -> dict:
    return {r["name"]: r for r in json.loads(json_path.read_text())["results"]}


def test_own_decoder_passes_every_vector(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    monkeypatch.chdir(tmp_path)
    report, junit = tmp_path / "report.json", tmp_path / "junit.xml"
    code, out, _ = conform(capsys, "--decoder", OWN_DECODER, "--jobs", 2, "--json", report, "--junit", junit)
    assert code == 0, out
    assert out.splitlines()[-1] == f"{len(INDEX)} passed, 0 failed"
    data = json.loads(report.read_text())
    assert (data["passed"], data["failed"]) == (len(INDEX), 0)
    assert [r["name"] for r in data["results"]] == [e["name"] for e in INDEX]
    negatives = [r for r in data["results"] if r["negative"]]
    assert negatives and all(r["note"].endswith("as expected") for r in negatives)
    suite = ET.parse(junit).getroot()
    assert suite.tag == "testsuite" and suite.get("name") == "refcodec-conformance"
    assert (suite.get("tests"), suite.get("failures")) == (str(len(INDEX)), "0")
    assert len(suite.findall("testcase")) == len(INDEX) and not suite.findall(".//failure")
    assert not (tmp_path / "conform-diffs").exists()  # created only for a mismatch


def test_one_wrong_pixel_is_reported_with_a_heat_map(tmp_path, capsys):
    diffs, report = tmp_path / "diffs", tmp_path / "report.json"
    code, out, _ = conform(capsys, "--decoder", decoder_template(tmp_path, FLIP_ONE_PIXEL),
                           "--output-format", "png", "--filter", "size-33x17", "--filter", "size-1x40",
                           "--diff-dir", diffs, "--json", report)
    assert code == 1 and out.splitlines()[-1] == "0 passed, 2 failed"
    for name, (w, h) in {"size-33x17": (33, 17), "size-1x40": (1, 40)}.items():
        r = by_name(report)[name]
        assert (r["passed"], r["reason"], r["differing_pixels"], r["max_abs_diff"]) == (False, "mismatch", 1, 1)
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
    assert code == 1 and out.splitlines()[-1] == "1 passed, 2 failed"
    results = by_name(report)
    assert results["size-1x1"]["passed"]
    for name, expected in {"neg-bad-magic": "StreamError", "neg-unknown-model": "ModelError"}.items():
        assert (results[name]["reason"], results[name]["exit_status"]) == ("accepted", 0)
        assert results[name]["detail"] == f"exit status 0 and wrote 3 bytes; expected a {expected}"
    suite = ET.parse(junit).getroot()
    assert (suite.get("tests"), suite.get("failures")) == ("3", "2")
    failed = {case.get("name"): case.find("failure") for case in suite.iter("testcase")}
    assert failed["size-1x1"] is None
    assert failed["neg-bad-magic"].get("message").startswith("exit status 0 and wrote 3 bytes")


def test_output_left_behind_after_an_error_fails(tmp_path, capsys):
    report = tmp_path / "report.json"
    code, out, _ = conform(capsys, "--decoder", decoder_template(tmp_path, LEAVE_OUTPUT_ON_ERROR),
                           "--filter", "neg-width-0", "--json", report)
    r = by_name(report)["neg-width-0"]
    assert code == 1 and (r["reason"], r["exit_status"]) == ("output-left", 1)
    assert "left an output file (0 bytes)" in r["detail"] and "StreamError" in r["stderr"]
    assert r["note"] == "reported StreamError as expected"


def test_hanging_decoder_and_its_children_are_killed(tmp_path, capsys):
    report = tmp_path / "report.json"
    start = time.monotonic()
    code, out, _ = conform(capsys, "--decoder", decoder_template(tmp_path, HANG_WITH_A_CHILD),
                           "--filter", "size-1x1", "--filter", "neg-bad-magic", "--timeout", 1, "--json", report)
    assert time.monotonic() - start < 10  # the sleeping child would hold stderr open for 60 s
    assert code == 1
    for r in by_name(report).values():
        assert (r["passed"], r["reason"], r["exit_status"]) == (False, "timeout", None)
        assert f"FAIL {r['name']} — timed out" in out


@pytest.mark.parametrize("args, message", [
    (["--decoder", "mydec {stream}"], "--decoder must contain {output}"),
    (["--decoder", "mydec 'x {stream} {output}"], "No closing quotation"),
    (["--decoder", "mydec {stream} {output}", "--vectors", "/nonexistent"], "no golden vectors in /nonexistent"),
    (["--decoder", "mydec {stream} {output}", "--filter", "no-such-vector"], "no vector's name contains"),
    (["--decoder", "/nonexistent/mydec {stream} {output}", "--filter", "size-1x1"], "cannot run the decoder"),
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
    assert error_class_note("ModelError", "error 7") == ""
