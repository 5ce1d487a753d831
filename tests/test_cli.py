"""The refcodec command line: one line on stderr and exit 1 on any error, no partial output files."""

import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from refcodec.cli import main

SAMPLE = os.path.join(os.path.dirname(__file__), "..", "refcodec", "data", "sample.png")


def run(*args):
    """Run the CLI in-process; returns (exit code, stdout, stderr)."""
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(map(str, args)))
    return code, out.getvalue(), err.getvalue()


def test_encode_decode_info(tmp_path):
    stream, png = tmp_path / "s.rcdc", tmp_path / "out.png"
    code, out, _ = run("encode", SAMPLE, stream)
    assert code == 0 and "bpp" in out and "PSNR" in out
    assert run("decode", stream, png)[0] == 0
    assert Image.open(png).size == (200, 200)
    umask = os.umask(0)
    os.umask(umask)
    assert png.stat().st_mode & 0o777 == 0o666 & ~umask
    code, out, _ = run("info", stream)
    assert code == 0 and "200x200" in out and "factorized" in out and "model_id" in out
    raw = tmp_path / "out.rgb"
    assert run("decode", "--impl", "reference", stream, raw)[0] == 0
    assert raw.read_bytes() == np.asarray(Image.open(png)).tobytes()


def test_models_lists_every_shipped_model():
    from refcodec.decoder.model import shipped_model_paths

    code, out, _ = run("models")
    lines = out.splitlines()
    assert code == 0 and len(lines) == len(shipped_model_paths()) >= 1
    for line in lines:
        _, arch, n, m = line.split()[:4]
        assert arch in ("factorized", "hyperprior", "mean-scale", "joint") and n.startswith("N=") and m.startswith("M=")
        assert "on Kodak" in line


def test_info_of_a_hyperprior_stream(tmp_path):
    from refcodec.conformance.models import random_model
    from refcodec.decoder.model import load_model
    from refcodec.encoder.encode import encode_latents

    data = random_model(np.random.default_rng(2), 2, 3, architecture="joint")
    model_file, stream = tmp_path / "m.safetensors", tmp_path / "s.rcdc"
    model_file.write_bytes(data)
    stream.write_bytes(encode_latents(np.zeros((3, 3, 5), np.int64), load_model(data), 70, 40,
                                      z_hat=np.zeros((2, 1, 2), np.int64)))
    code, out, _ = run("info", "--model-file", model_file, stream)
    assert code == 0 and "3 (joint)" in out and "z stream" in out and "hyper-latent 2x1" in out and "N=2 M=3" in out


def test_demo():
    code, out, _ = run("demo")
    assert code == 0 and "bpp" in out and "bit-exactly" in out


@pytest.mark.parametrize("content", [b"", b"garbage", b"RCDC" + bytes(100)])
def test_bad_stream_one_line_and_no_output(tmp_path, content):
    bad, out = tmp_path / "bad.rcdc", tmp_path / "out.png"
    bad.write_bytes(content)
    code, _, err = run("decode", bad, out)
    assert code == 1 and err.count("\n") == 1 and "spec §" in err and "StreamError" in err
    assert not out.exists()


def test_failure_keeps_existing_output(tmp_path):
    bad, out = tmp_path / "bad.rcdc", tmp_path / "out.png"
    bad.write_bytes(b"RCDC")
    out.write_bytes(b"precious")
    assert run("decode", bad, out)[0] == 1
    assert out.read_bytes() == b"precious"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_alpha_input_refused(tmp_path):
    src, out = tmp_path / "a.png", tmp_path / "a.rcdc"
    Image.new("RGBA", (10, 10)).save(src)
    code, _, err = run("encode", src, out)
    assert code == 1 and "alpha" in err and err.count("\n") == 1
    assert not out.exists()


def test_missing_input_and_unknown_model(tmp_path):
    code, _, err = run("decode", tmp_path / "nope", tmp_path / "o.png")
    assert code == 1 and err.count("\n") == 1
    code, _, err = run("encode", "--model", "nosuch", SAMPLE, tmp_path / "o.rcdc")
    assert code == 1 and "nosuch" in err


def test_console_script_entry_point(tmp_path):
    """`python -m refcodec.cli` behaves like the installed `refcodec` command."""
    bad = tmp_path / "bad"
    bad.write_bytes(b"xx")
    p = subprocess.run([sys.executable, "-m", "refcodec.cli", "decode", str(bad), str(tmp_path / "o.png")],
                       capture_output=True, text=True)
    assert p.returncode == 1 and p.stderr.count("\n") == 1 and "Traceback" not in p.stderr


def test_conform_subcommand():
    decoder = "{python} -m refcodec.cli decode --model-file {model} {stream} {output}"
    assert run("conform", "--decoder", decoder, "--filter", "size-1x1", "--filter", "neg-bad-magic")[0] == 0
    assert run("conform", "--decoder", "true {stream}", "--filter", "size-1x1")[0] == 2  # no {output}
