"""Decoded pictures written as their rows come (refcodec.png, refcodec.image.picture_writer) and the progress
of long encodes and decodes (refcodec.progress): valid files with the picture's pixels, no file after an
error, a progress bar only on a terminal."""

import io
import struct
import sys
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from refcodec import png, progress
from refcodec.cli import main
from refcodec.decoder.decoding import decode_stream
from refcodec.encoder.encode import encode
from refcodec.image import picture_bytes, picture_writer, write_picture


def pictures():
    """(pixels, band height): small pictures, noisy or smooth (long runs), cut into bands."""
    shape = st.tuples(st.integers(1, 70), st.integers(1, 70))
    return st.tuples(shape, st.integers(0, 2**32 - 1), st.booleans(), st.integers(1, 80)).map(_picture)


def _picture(args):
    (h, w), seed, smooth, band = args
    rng = np.random.default_rng(seed)
    if smooth:
        return np.repeat(np.repeat(rng.integers(0, 256, (h // 8 + 1, w // 8 + 1, 3)), 8, 0), 8, 1)[:h, :w]\
            .astype(np.uint8), band
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8), band


def chunks(data: bytes) -> list:
    """[(type, data)] of a PNG file, each chunk's CRC checked."""
    assert data[:8] == png.SIGNATURE
    out, pos = [], 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + body), kind
        out.append((kind, body))
        pos += 12 + length
    return out


@settings(max_examples=60, deadline=None)
@given(pictures())
def test_png_written_band_by_band_decodes_to_the_picture(picture):
    pixels, band = picture
    f = io.BytesIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(png, "IDAT_BYTES", 97)  # many IDAT chunks
        patch.setattr(png, "FILTER_BYTES", 50)  # several filter steps per band
        writer = png.PngWriter(f, pixels.shape[1], pixels.shape[0])
        for a in range(0, pixels.shape[0], band):
            writer.write(pixels[a : a + band])
        writer.close()
    data = f.getvalue()
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(data))), pixels)
    found = chunks(data)
    assert [k for k, _ in found[:1]] == [b"IHDR"] and found[-1] == (b"IEND", b"")
    assert struct.unpack(">IIBBBBB", found[0][1]) == (pixels.shape[1], pixels.shape[0], 8, 2, 0, 0, 0)
    idat = [body for kind, body in found if kind == b"IDAT"]
    assert all(len(body) <= 97 for body in idat) and {k for k, _ in found} == {b"IHDR", b"IDAT", b"IEND"}
    rows = np.frombuffer(zlib.decompress(b"".join(idat)), np.uint8).reshape(pixels.shape[0], -1)
    assert set(rows[:, 0].tolist()) <= {0, 1, 2, 3, 4}  # the filter types


def test_png_writer_refuses_a_wrong_band_or_a_missing_row():
    writer = png.PngWriter(io.BytesIO(), 4, 3)
    with pytest.raises(ValueError, match="does not continue"):
        writer.write(np.zeros((1, 5, 3), np.uint8))
    writer.write(np.zeros((2, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="2 rows written"):
        writer.close()


@pytest.mark.parametrize("fmt", ["PNG", "PPM", "RGB", "BMP", "TIFF", "WEBP"])
def test_every_format_written_band_by_band(fmt):
    """PPM and raw RGB give the bytes of the whole-picture writer; every format decodes to the picture."""
    pixels = np.random.default_rng(1).integers(0, 256, (37, 21, 3), dtype=np.uint8)
    f = io.BytesIO()
    writer = picture_writer(f, fmt, 21, 37)
    for a in range(0, 37, 16):
        writer.write(pixels[a : a + 16])
    writer.close()
    if fmt in ("PPM", "RGB"):
        assert f.getvalue() == picture_bytes(pixels, fmt)
    if fmt != "RGB":
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(f.getvalue()))), pixels)


def test_no_file_when_the_bands_fail(tmp_path):
    """An error after some bands leaves no file and no temporary file (spec §2.6)."""
    def bands():
        yield 0, np.zeros((16, 8, 3), np.uint8)
        raise RuntimeError("the stream broke")

    with pytest.raises(RuntimeError):
        write_picture(tmp_path / "out.png", "PNG", 8, 32, bands())
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def stream_file(tmp_path_factory):
    """A stream of a 40 x 100 picture of the shipped hyperprior model."""
    pixels = np.random.default_rng(2).integers(0, 256, (100, 40, 3), dtype=np.uint8)
    path = tmp_path_factory.mktemp("s") / "p.rcdc"
    path.write_bytes(encode(pixels, model="hyperprior"))
    return path


def test_progress_callbacks_count_rows(stream_file):
    """decode_stream reports the rows of each band done; encode the rows of its analysis, then of its
    reconstruction (twice the height in all)."""
    seen = []
    decode_stream(stream_file.read_bytes(), band_height=32, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(32, 100), (64, 100), (96, 100), (100, 100)]
    seen.clear()
    encode(np.zeros((40, 20, 3), np.uint8), return_reconstruction=True, progress=lambda *a: seen.append(a))
    assert seen[-1] == (80, 80) and [d for d, _ in seen] == sorted(d for d, _ in seen) and (40, 80) in seen


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize("command", ["decode", "encode"])
def test_progress_only_on_a_terminal_and_not_quiet(tmp_path, monkeypatch, stream_file, command):
    monkeypatch.setattr(progress, "DELAY", 0.0)  # every operation is "long"
    src = stream_file if command == "decode" else tmp_path / "p.png"
    if command == "encode":
        Image.new("RGB", (40, 100), "teal").save(src)
    args = [command, src, tmp_path / ("o.png" if command == "decode" else "o.rcdc")]
    if command == "decode":
        args[1:1] = ["--band-height", "32"]
    for terminal, quiet in ((False, False), (True, True), (True, False)):
        err = FakeTerminal() if terminal else io.StringIO()
        monkeypatch.setattr(sys, "stderr", err)
        assert main(args + (["-q"] if quiet else [])) == 0
        shown = f"{command[:-1]}ing {src.name}" in err.getvalue()
        assert shown == (terminal and not quiet), err.getvalue()
