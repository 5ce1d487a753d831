"""What the encoder does to the user's picture before coding (refcodec.image, Annex A.1.1; issue 14):
EXIF orientation applied, a non-sRGB ICC profile converted to sRGB with a note, 16-bit RGB and 16-bit
grayscale both rounded to 8 bits with a note, alpha refused with a hint to flatten; and the API's inputs."""

import io
import os
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageOps

import refcodec
from refcodec.image import to_rgb_array

SAMPLE = os.path.join(os.path.dirname(__file__), "..", "refcodec", "data", "sample.png")


def png_bytes(im: Image.Image, **options) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "PNG", **options)
    return buf.getvalue()


def png16(samples: np.ndarray) -> bytes:
    """A 16-bit PNG (RGB for (H, W, 3), grayscale for (H, W, 1)) written by hand: Pillow writes neither."""
    h, w, c = samples.shape
    raw = b"".join(b"\x00" + samples[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 16, {1: 0, 3: 2}[c], 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def icc_profile(name: str, red, green, blue, gamma: float = 2.2) -> bytes:
    """A minimal ICC v2 RGB display profile (matrix and gamma curves)."""

    def s15(v):
        return struct.pack(">i", round(v * 65536))

    def xyz(x, y, z):
        return b"XYZ " + bytes(4) + s15(x) + s15(y) + s15(z)

    text = name.encode() + b"\0"
    desc = b"desc" + bytes(4) + struct.pack(">I", len(text)) + text + bytes(8) + bytes(3) + bytes(67)
    curve = b"curv" + bytes(4) + struct.pack(">IH", 1, round(gamma * 256)) + bytes(2)
    tags = [(b"desc", desc), (b"wtpt", xyz(0.9642, 1.0, 0.8249)), (b"rXYZ", xyz(*red)), (b"gXYZ", xyz(*green)),
            (b"bXYZ", xyz(*blue)), (b"rTRC", curve), (b"gTRC", curve), (b"bTRC", curve),
            (b"cprt", b"text" + bytes(4) + b"none\0\0\0\0")]
    offset = 128 + 4 + 12 * len(tags)
    table, data = b"", b""
    for sig, body in tags:
        table += sig + struct.pack(">II", offset + len(data), len(body))
        data += body + bytes(-len(body) % 4)
    header = (struct.pack(">I", offset + len(data)) + bytes(4) + bytes([2, 0x10, 0, 0]) + b"mntrRGB XYZ " + bytes(12)
              + b"acsp" + bytes(24) + bytes(4) + s15(0.9642) + s15(1.0) + s15(0.8249) + bytes(48))
    return header + struct.pack(">I", len(tags)) + table + data


SRGB_RED, SRGB_GREEN, SRGB_BLUE = (0.4361, 0.2225, 0.0139), (0.3851, 0.7169, 0.0971), (0.1431, 0.0606, 0.7141)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied(orientation):
    im = Image.fromarray(np.random.default_rng(orientation).integers(0, 256, (10, 24, 3), dtype=np.uint8))
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = png_bytes(im, exif=exif)
    want = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB"))
    got = to_rgb_array(data)
    assert np.array_equal(got, want)
    assert got.shape == ((24, 10, 3) if orientation >= 5 else (10, 24, 3))


def test_a_portrait_photo_decodes_upright(tmp_path):
    """A JPEG shot sideways with orientation 6: the stream holds the upright (portrait) picture."""
    exif = Image.Exif()
    exif[0x0112] = 6
    src = tmp_path / "portrait.jpg"
    Image.open(SAMPLE).crop((0, 0, 200, 120)).save(src, quality=95, exif=exif)
    stream = refcodec.encode(src)
    assert refcodec.decode(stream).shape == (200, 120, 3)


def test_icc_profile_converted_to_srgb_with_a_note():
    """A profile whose red is sRGB's green: pure red in it is green in sRGB."""
    profile = icc_profile("swapped red and green", SRGB_GREEN, SRGB_RED, SRGB_BLUE)
    data = png_bytes(Image.new("RGB", (8, 8), (200, 0, 0)), icc_profile=profile)
    notes = []
    pixel = to_rgb_array(data, notes.append)[0, 0]
    assert pixel[1] > 150 and pixel[0] < 30 and pixel[2] < 30, pixel
    assert len(notes) == 1 and "sRGB" in notes[0] and "swapped red and green" in notes[0]


def test_srgb_profile_kept_without_a_note():
    from PIL import ImageCms

    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    notes = []
    pixel = to_rgb_array(png_bytes(Image.new("RGB", (4, 4), (200, 10, 20)), icc_profile=srgb), notes.append)[0, 0]
    assert list(pixel) == [200, 10, 20] and notes == []


def test_16_bit_rgb_and_grayscale_rounded_alike():
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 65536, (9, 11, 3)).astype(np.uint16)
    rgb[0, 0] = (128, 129, 385)  # round(128/257) = 0, round(129/257) = 1, round(385/257) = 1 (v >> 8 gives 0, 0, 1)
    gray = rng.integers(0, 65536, (9, 11, 1)).astype(np.uint16)
    notes = []
    got = to_rgb_array(png16(rgb), notes.append)
    assert np.array_equal(got, ((rgb.astype(np.int64) + 128) // 257).astype(np.uint8))
    assert list(got[0, 0]) == [0, 1, 1]
    got = to_rgb_array(png16(gray), notes.append)
    assert np.array_equal(got, np.repeat(((gray.astype(np.int64) + 128) // 257).astype(np.uint8), 3, axis=2))
    assert len(notes) == 2 and all("16-bit" in n and "8 bits" in n for n in notes)


def test_16_bit_ppm_rounded_too():
    rgb = np.random.default_rng(4).integers(0, 65536, (5, 6, 3)).astype(np.uint16)
    ppm = b"P6\n6 5\n65535\n" + rgb.astype(">u2").tobytes()
    assert np.array_equal(to_rgb_array(ppm), ((rgb.astype(np.int64) + 128) // 257).astype(np.uint8))


@pytest.mark.parametrize("mode", ["RGBA", "LA", "PA"])
def test_alpha_refused_with_a_hint_to_flatten(mode):
    im = Image.new("RGBA", (4, 4), (1, 2, 3, 128)).convert(mode)
    with pytest.raises(refcodec.InputError, match=r"alpha channel.*flatten"):
        to_rgb_array(im)
    if mode != "PA":  # Pillow writes no PA PNG
        with pytest.raises(refcodec.InputError, match=r"alpha channel.*flatten"):
            to_rgb_array(png_bytes(im))


def test_palette_transparency_refused():
    im = Image.new("P", (4, 4))
    with pytest.raises(refcodec.InputError, match="flatten"):
        to_rgb_array(png_bytes(im, transparency=0))


def test_cli_prints_the_notes(tmp_path):
    from test_cli import run

    src = tmp_path / "deep.png"
    src.write_bytes(png16(np.full((20, 20, 3), 40000, np.uint16)))
    code, _, err = run("encode", src, tmp_path / "s.rcdc")
    assert code == 0 and err.count("\n") == 1 and "note" in err and "16-bit RGB" in err
    assert run("encode", "-q", src, tmp_path / "s.rcdc")[2] == ""


# --- the API's inputs ------------------------------------------------------------------------------------


def test_decode_takes_bytes_paths_and_files(tmp_path):
    stream = refcodec.encode(SAMPLE)
    path = tmp_path / "s.rcdc"
    path.write_bytes(stream)
    want = refcodec.decode(stream)
    for data in (bytearray(stream), memoryview(stream), path, str(path)):
        assert np.array_equal(refcodec.decode(data), want), type(data)
    with open(path, "rb") as f:
        assert np.array_equal(refcodec.decode(f), want)


@pytest.mark.parametrize("bad", [12, None, np.zeros(10, np.uint8), ["RCDC"]])
def test_decode_of_another_type_is_a_clear_type_error(bad):
    with pytest.raises(TypeError, match="bytes, bytearray or memoryview, or a path"):
        refcodec.decode(bad)


def test_decode_of_a_missing_file_is_an_os_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        refcodec.decode(tmp_path / "nope.rcdc")


def test_encode_takes_encoded_picture_bytes():
    with open(SAMPLE, "rb") as f:
        png = f.read()
    assert refcodec.encode(png) == refcodec.encode(SAMPLE) == refcodec.encode(bytearray(png))
    buf = io.BytesIO()
    Image.open(SAMPLE).save(buf, "JPEG", quality=90)
    assert refcodec.decode(refcodec.encode(buf.getvalue())).shape == (200, 200, 3)
    with pytest.raises(refcodec.InputError, match="cannot read image"):
        refcodec.encode(b"not a picture")
    with pytest.raises(refcodec.InputError, match="pass bytes"):
        refcodec.encode(np.frombuffer(png, "S1"))


def test_api_docstrings_say_what_users_need():
    for f in (refcodec.encode, refcodec.decode):
        doc = f.__doc__
        assert "Returns" in doc and "Raises" in doc and ">>>" in doc
    assert '"factorized"' in refcodec.encode.__doc__
    from refcodec.decoder.model import DEFAULT_MODEL

    assert refcodec.DEFAULT_MODEL == DEFAULT_MODEL


def test_pillow_bomb_limit_gives_way_to_ours(tmp_path, monkeypatch):
    """Pillow refuses pictures above 2 x MAX_IMAGE_PIXELS when it opens them; refcodec's own limit (MAX_DIMENSION
    on a side, spec §7.3) applies instead, and Pillow's setting is left as it was."""
    from PIL import Image

    from refcodec.image import to_rgb_array

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    path = tmp_path / "p.png"
    Image.new("RGB", (30, 20), (1, 2, 3)).save(path)  # 600 pixels: a "bomb" to Pillow's lowered limit
    assert to_rgb_array(path).shape == (20, 30, 3) and Image.MAX_IMAGE_PIXELS == 100
    with pytest.raises(Image.DecompressionBombError):
        Image.open(path)
