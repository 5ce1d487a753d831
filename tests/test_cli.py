"""The refcodec command line: one line on stderr and exit 1 on any error, no partial output files."""

import os
import subprocess
import sys
from pathlib import Path

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


def test_demo_with_a_model_file(tmp_path):
    """A model that is not shipped (another identity: one more metadata entry)."""
    from refcodec.decoder.model import parse_container, shipped_model_paths
    from refcodec.encoder.export import save_safetensors

    meta, tensors = parse_container(shipped_model_paths()["factorized"].read_bytes())
    path = tmp_path / "mine.safetensors"
    path.write_bytes(save_safetensors(dict(tensors), {**meta, "note": "not shipped"}))
    code, out, err = run("demo", "--model", path)
    assert code == 0 and "bit-exactly" in out, err


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


# --- issue 14: the conventions of cjpeg, cwebp, avifenc, cjxl ----------------------------------------------


def run_bytes(*args, stdin: bytes = b""):
    """Run the CLI in-process with binary stdin and stdout; returns (exit code, stdout bytes, stderr text)."""
    import contextlib
    import io

    out_bytes = io.BytesIO()
    stdin_wrapper, stdout_wrapper = io.TextIOWrapper(io.BytesIO(stdin)), io.TextIOWrapper(out_bytes)
    err = io.StringIO()
    saved = sys.stdin, sys.stdout
    sys.stdin, sys.stdout = stdin_wrapper, stdout_wrapper
    try:
        with contextlib.redirect_stderr(err):
            code = main(list(map(str, args)))
        stdout_wrapper.flush()
    finally:
        sys.stdin, sys.stdout = saved
    return code, out_bytes.getvalue(), err.getvalue()


def test_version():
    import refcodec

    with pytest.raises(SystemExit) as e:
        run("--version")
    assert e.value.code == 0
    p = subprocess.run([sys.executable, "-m", "refcodec.cli", "--version"], capture_output=True, text=True)
    assert p.returncode == 0 and p.stdout.startswith(f"refcodec {refcodec.__version__}") and not p.stderr


LIGHT = """
import sys, time
start = time.perf_counter()
from refcodec.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
heavy = sorted(m for m in ("numba", "llvmlite", "PIL", "numpy", "refcodec.encoder", "refcodec.conformance",
                           "refcodec.decoder.decoding") if m in sys.modules)
print("HEAVY", heavy, time.perf_counter() - start, file=sys.stderr)
"""


@pytest.mark.parametrize("command", [["--help"], ["--version"], ["models"], ["encode", "--help"]])
def test_light_commands_import_nothing_heavy(command):
    """--help, --version and models import neither Numba, Pillow, NumPy nor the encoder: they answer at once."""
    p = subprocess.run([sys.executable, "-c", LIGHT, *command], capture_output=True, text=True, timeout=60)
    line = [x for x in p.stderr.splitlines() if x.startswith("HEAVY")][-1]
    assert line.startswith("HEAVY []"), line
    assert p.stdout


def test_import_refcodec_is_light_and_fast_is_registered():
    code = ("import sys, refcodec; assert not [m for m in ('numpy', 'numba', 'PIL', 'refcodec.encoder') "
            "if m in sys.modules], sorted(sys.modules)\n"
            "from refcodec.decoder.decoding import implementations; print(implementations())")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert "fast" in p.stdout and "reference" in p.stdout


def test_stdin_and_stdout(tmp_path):
    png = Path(SAMPLE).read_bytes()
    code, stream, err = run_bytes("encode", "-", "-", stdin=png)
    assert code == 0 and stream[:4] == b"RCDC" and "bpp" in err
    code, picture, _ = run_bytes("decode", "-", "-", stdin=stream)
    assert code == 0 and picture[:8] == b"\x89PNG\r\n\x1a\n"
    code, ppm, _ = run_bytes("decode", "--format", "ppm", "-", "-", stdin=stream)
    assert code == 0 and ppm[:2] == b"P6"
    import io

    assert np.array_equal(np.asarray(Image.open(io.BytesIO(picture))), np.asarray(Image.open(io.BytesIO(ppm))))
    code, text, _ = run_bytes("info", "-", stdin=stream)
    assert code == 0 and b"200x200" in text
    assert not list(tmp_path.iterdir()) and not os.path.exists("-")


def test_several_inputs_and_a_folder_with_output_dir(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.open(SAMPLE).save(photos / "a.png")
    Image.open(SAMPLE).crop((0, 0, 64, 48)).save(photos / "b.bmp")
    (photos / "notes.txt").write_text("not a picture")
    code, out, _ = run("encode", "-o", tmp_path / "streams", photos)
    assert code == 0 and len(out.splitlines()) == 2
    assert sorted(p.name for p in (tmp_path / "streams").iterdir()) == ["a.rcdc", "b.rcdc"]
    code, _, _ = run("decode", "-o", tmp_path / "out", "--format", "bmp", tmp_path / "streams" / "a.rcdc",
                     tmp_path / "streams" / "b.rcdc")
    assert code == 0 and Image.open(tmp_path / "out" / "b.bmp").size == (64, 48)
    code, _, err = run("encode", photos / "a.png", photos / "b.bmp", tmp_path / "x.rcdc")
    assert code == 1 and "-o DIR" in err


def test_worker_processes(tmp_path):
    """-j 2: two worker processes; each file's line in input order; a bad file fails alone."""
    streams = tmp_path / "s"
    streams.mkdir()
    for k in range(3):
        Image.open(SAMPLE).crop((0, 0, 40 + 8 * k, 40)).save(tmp_path / f"p{k}.png")
    (tmp_path / "p3.png").write_bytes(b"not a png")
    pictures = [tmp_path / f"p{k}.png" for k in range(4)]
    code, out, err = run("encode", "-j", "2", "--threads", "1", "-o", streams, *pictures)
    assert code == 1
    assert [line.split(":")[0] for line in out.splitlines()] == [str(streams / f"p{k}.rcdc") for k in range(3)]
    assert err.count("\n") == 1 and "p3.png" in err and "Traceback" not in err
    single = tmp_path / "single.rcdc"
    assert run("encode", tmp_path / "p1.png", single)[0] == 0
    assert single.read_bytes() == (streams / "p1.rcdc").read_bytes()


def test_quiet_verbose_and_threads(tmp_path):
    stream = tmp_path / "s.rcdc"
    code, out, err = run("encode", "--quiet", SAMPLE, stream)
    assert code == 0 and out == "" and err == ""
    code, out, _ = run("-v", "encode", "--threads", "1", SAMPLE, stream)
    assert code == 0 and "model factorized" in out and " s" in out
    code, _, err = run("decode", "--verbose", stream, tmp_path / "o.png")
    assert code == 0 and "200x200 PNG" in err
    code, _, err = run("--threads", "100000", "decode", stream, tmp_path / "o.png")
    assert code == 1 and err.count("\n") == 1 and "--threads" in err


def test_ctrl_c_exits_130_with_one_line(monkeypatch, tmp_path):
    import refcodec.cli as cli

    def interrupted(*_):
        raise KeyboardInterrupt

    monkeypatch.setitem(cli.JOBS, "encode", interrupted)
    code, _, err = run("encode", SAMPLE, tmp_path / "s.rcdc")
    assert code == 130 and err == "refcodec: interrupted\n" and not (tmp_path / "s.rcdc").exists()


def test_ctrl_c_in_a_real_process(tmp_path):
    """SIGINT while the command works: exit 130, one line, no traceback."""
    import signal
    import time

    big = tmp_path / "big.png"  # large enough that the encode still works when the signal comes
    Image.open(SAMPLE).resize((2048, 2048)).save(big)
    p = subprocess.Popen([sys.executable, "-m", "refcodec.cli", "encode", "--impl", "reference", big,
                          tmp_path / "big.rcdc"], stderr=subprocess.PIPE, text=True)
    maps = Path(f"/proc/{p.pid}/maps")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and p.poll() is None:  # until the work has begun (Pillow is loaded)
        if not maps.exists() or "_imaging" in maps.read_text():
            break
        time.sleep(0.05)
    time.sleep(0.3)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=300)
    assert p.returncode == 130 and err.strip().splitlines()[-1] == "refcodec: interrupted"
    assert "Traceback" not in err and not (tmp_path / "big.rcdc").exists()


@pytest.fixture
def no_encoding(monkeypatch):
    """Coding fails the test: an error must come before any work."""
    from refcodec.decoder import decoding
    from refcodec.encoder import encode

    def forbidden(*_, **__):
        raise AssertionError("coded before the output path was checked")

    monkeypatch.setattr(encode, "encode", forbidden)
    monkeypatch.setattr(decoding, "decode_stream", forbidden)


@pytest.mark.parametrize("case", ["missing folder", "a folder", "name too long", "read-only folder"])
def test_output_path_checked_before_any_work(tmp_path, no_encoding, case):
    if case == "read-only folder" and os.geteuid() == 0:
        pytest.skip("root writes in read-only folders")
    target = {"missing folder": tmp_path / "nope" / "x.rcdc", "a folder": tmp_path,
              "name too long": tmp_path / ("n" * 251 + ".rcdc"), "read-only folder": tmp_path / "ro" / "x.rcdc"}[case]
    if case == "read-only folder":
        (tmp_path / "ro").mkdir(mode=0o500)
    code, _, err = run("encode", SAMPLE, target)
    assert code == 1 and err.count("\n") == 1 and str(target) in err and ".refcodec-" not in err, err
    assert ".x.rcdc." not in err


def test_long_names_up_to_the_limit_are_written(tmp_path):
    """A name of 246-255 bytes is a valid file name: the temporary file must not make it too long."""
    name = "n" * 250 + ".rcdc"
    code, _, err = run("encode", SAMPLE, tmp_path / name)
    assert code == 0, err
    assert [p.name for p in tmp_path.iterdir()] == [name]


def test_write_errors_name_the_users_path(tmp_path, monkeypatch):
    from refcodec import image

    def full(*_, **__):
        raise OSError(28, "No space left on device")

    stream = tmp_path / "s.rcdc"
    assert run("encode", SAMPLE, stream)[0] == 0
    monkeypatch.setattr(image.os, "replace", full)
    code, _, err = run("decode", stream, tmp_path / "o.png")
    assert code == 1 and str(tmp_path / "o.png") in err and "No space" in err and ".refcodec-" not in err
    assert [p.name for p in tmp_path.iterdir()] == ["s.rcdc"]


@pytest.mark.parametrize("name", ["o.jpg", "o.JPEG", "o.avif", "o.gif", "o.xyz", "noextension"])
def test_lossy_or_unknown_output_format_refused_before_decoding(tmp_path, no_encoding, name):
    stream = tmp_path / "s.rcdc"
    stream.write_bytes(b"RCDC")
    code, _, err = run("decode", stream, tmp_path / name)
    assert code == 1 and err.count("\n") == 1 and name in err and ".png" in err
    assert not (tmp_path / name).exists()


def test_every_lossless_output_format_holds_the_picture(tmp_path):
    stream = tmp_path / "s.rcdc"
    assert run("encode", SAMPLE, stream)[0] == 0
    assert run("decode", stream, tmp_path / "o.rgb")[0] == 0
    want = (tmp_path / "o.rgb").read_bytes()
    for ext in (".png", ".ppm", ".pnm", ".bmp", ".tif", ".tiff", ".webp"):
        out = tmp_path / f"o{ext}"
        assert run("decode", stream, out)[0] == 0
        with Image.open(out) as im:
            assert im.format == {".pnm": "PPM", ".tif": "TIFF", ".tiff": "TIFF"}.get(ext, ext[1:].upper())
            assert np.asarray(im.convert("RGB")).tobytes() == want, ext


def test_fifo_input_ends_at_the_limit(tmp_path, monkeypatch):
    """A FIFO that never ends (or /dev/zero) stops at the largest valid stream: one line, exit 1."""
    import threading

    from refcodec.decoder import bitstream

    monkeypatch.setattr(bitstream, "MAX_STREAM_BYTES", 1000)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)

    def writer():
        try:
            with open(fifo, "wb") as f:
                f.write(b"RCDC" + bytes([1, 0]) + bytes(32) + bytes([16, 0, 16, 0]) + bytes(4958))  # valid header
        except BrokenPipeError:
            pass

    thread = threading.Thread(target=writer)
    thread.start()
    code, _, err = run("decode", fifo, tmp_path / "o.png")
    thread.join(timeout=10)
    assert code == 1 and err.count("\n") == 1 and "1000 bytes" in err and "§7.3" in err
    code, _, err = run("info", "/dev/zero")  # a broken header: refused as soon as it is read
    assert code == 1 and err.count("\n") == 1 and "magic" in err and "§7.2" in err


def test_conform_without_vectors_says_where_they_are(monkeypatch, tmp_path):
    from refcodec.conformance import suite

    monkeypatch.setattr(suite, "DEFAULT_VECTORS", tmp_path / "vectors")
    code, _, err = run("conform", "--decoder", "true {stream} {model} {output}")
    assert code == 2 and err.count("\n") == 1 and "vectors/" in err and "--vectors DIR" in err


def test_compile_note_when_the_cache_is_cold(monkeypatch, tmp_path):
    """A cold kernel cache: one line on stderr before the long first compilation (not with --quiet)."""
    import refcodec.cli as cli

    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    assert cli.kernels_cold()
    monkeypatch.setattr(cli, "JOBS", {"encode": lambda *_: cli.Outcome()})
    code, _, err = run("encode", SAMPLE, tmp_path / "s.rcdc")
    assert code == 0 and err.count("\n") == 1 and "compiling" in err
    assert run("encode", "-q", SAMPLE, tmp_path / "s.rcdc")[2] == ""
    code, _, err = run("encode", "--impl", "reference", SAMPLE, tmp_path / "s.rcdc")
    assert err == ""


def test_kernels_warm_after_a_fast_decode():
    import refcodec.cli as cli

    assert run("demo")[0] == 0
    assert not cli.kernels_cold()  # the kernels the demo used are in the per-user cache


def test_decode_band_height(tmp_path):
    """--band-height H runs the synthesis in bands of H rows: the same picture; H must be a multiple of 16."""
    cli = main
    src = tmp_path / "p.png"
    Image.fromarray(np.random.default_rng(3).integers(0, 256, (70, 40, 3), dtype=np.uint8)).save(src)
    assert cli(["-q", "encode", str(src), str(tmp_path / "p.rcdc")]) == 0
    outs = []
    for h in ("16", "48", "1024"):
        out = tmp_path / f"{h}.png"
        assert cli(["-q", "decode", "--band-height", h, str(tmp_path / "p.rcdc"), str(out)]) == 0
        outs.append(np.asarray(Image.open(out)))
    assert all(np.array_equal(o, outs[0]) for o in outs)
    with pytest.raises(SystemExit) as e:
        cli(["decode", "--band-height", "24", str(tmp_path / "p.rcdc"), str(tmp_path / "x.png")])
    assert e.value.code == 2


def test_max_pixels_refuses_before_decoding(tmp_path, capsys):
    """--max-pixels N (max_pixels= in the API) refuses a bigger picture before anything is decoded: the
    refusal comes even though the stream's model is not available (which decoding would report)."""
    import refcodec

    src = tmp_path / "p.png"
    Image.fromarray(np.random.default_rng(4).integers(0, 256, (40, 30, 3), dtype=np.uint8)).save(src)
    assert main(["-q", "encode", str(src), str(tmp_path / "p.rcdc")]) == 0
    stream = (tmp_path / "p.rcdc").read_bytes()
    unknown = stream[:6] + bytes(32) + stream[38:]  # names a model nobody has
    with pytest.raises(refcodec.LimitError, match="30x40 = 1200 pixels, more than max_pixels = 1199"):
        refcodec.decode(unknown, max_pixels=1199)
    with pytest.raises(refcodec.ModelError):
        refcodec.decode(unknown, max_pixels=1200)
    assert refcodec.decode(stream, max_pixels=1200).shape == (40, 30, 3)
    out = tmp_path / "o.png"
    assert main(["decode", "--max-pixels", "1000", str(tmp_path / "p.rcdc"), str(out)]) == 1
    assert "LimitError" in capsys.readouterr().err and not out.exists()
