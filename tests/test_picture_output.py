"""Decoded pictures written as their rows come (refcodec.png, refcodec.image.picture_writer): valid files with the
picture's pixels, no file after an error."""

import io
import struct
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from refcodec import png
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
