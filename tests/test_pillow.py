"""The Pillow plugin (issue 14): ``import refcodec.pillow`` registers .rcdc, so Image.open decodes and
Image.save encodes, with model= and quality= options, as pillow-heif and pillow-jxl-plugin do."""

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import refcodec
import refcodec.pillow

SAMPLE = Path(__file__).resolve().parent.parent / "refcodec" / "data" / "sample.png"


@pytest.fixture(scope="module")
def levels_model(tmp_path_factory):
    """The shipped factorized model with two quality levels: level 1 as shipped, level 2 at half the latent
    scale (the encoder multiplies by 0.5 before rounding, the decoder by 2 before the synthesis)."""
    from refcodec.decoder.model import parse_container, shipped_model_paths
    from refcodec.encoder.export import save_safetensors

    meta, tensors = parse_container(shipped_model_paths()["factorized"].read_bytes())
    tensors = dict(tensors)
    m = int(meta["M"])
    tensors["quality.y_gain"] = np.array([[1 << 16] * m, [1 << 17] * m], np.int32)
    tensors["encoder.quality.y_gain"] = np.array([[1.0] * m, [0.5] * m], np.float32)
    path = tmp_path_factory.mktemp("models") / "levels.safetensors"
    path.write_bytes(save_safetensors(tensors, meta))
    return path


def test_registered():
    assert Image.registered_extensions()[".rcdc"] == "RCDC"
    assert Image.MIME["RCDC"] == "image/x-refcodec"


def test_open_decodes(tmp_path):
    stream = refcodec.encode(SAMPLE)
    path = tmp_path / "s.rcdc"
    path.write_bytes(stream)
    with Image.open(path) as im:
        assert im.format == "RCDC" and im.mode == "RGB" and im.size == (200, 200)
        assert np.array_equal(np.asarray(im), refcodec.decode(stream))
    with Image.open(io.BytesIO(stream)) as im:  # a file object too
        assert np.array_equal(np.asarray(im), refcodec.decode(stream))


def test_save_encodes(tmp_path):
    with Image.open(SAMPLE) as im:
        im.save(tmp_path / "a.rcdc")
        im.save(tmp_path / "b.rcdc", model="hyperprior")
        buf = io.BytesIO()
        im.save(buf, format="RCDC")
    assert (tmp_path / "a.rcdc").read_bytes() == refcodec.encode(SAMPLE) == buf.getvalue()
    assert (tmp_path / "b.rcdc").read_bytes() == refcodec.encode(SAMPLE, model="hyperprior")
    with Image.open(tmp_path / "b.rcdc") as im:
        assert im.size == (200, 200)


def test_save_with_quality(tmp_path, levels_model):
    sizes = []
    with Image.open(SAMPLE) as im:
        for q in (1, 2):
            out = tmp_path / f"q{q}.rcdc"
            im.save(out, model=str(levels_model), quality=q)
            data = out.read_bytes()
            assert data[4:7] == bytes([2, 0, q - 1])  # version 2, factorized, level q - 1
            sizes.append(len(data))
        with pytest.raises(refcodec.InputError, match=r"outside 1\.\.2"):
            im.save(tmp_path / "q3.rcdc", model=str(levels_model), quality=3)
        with pytest.raises(refcodec.InputError, match="single rate"):
            im.save(tmp_path / "q.rcdc", quality=2)
    assert sizes[1] < sizes[0]
    refcodec.pillow.register(model_files=[levels_model])
    try:
        with Image.open(tmp_path / "q2.rcdc") as im:
            assert np.array_equal(np.asarray(im), refcodec.decode(tmp_path / "q2.rcdc", [levels_model]))
    finally:
        refcodec.pillow.register()


def test_a_broken_stream_raises_the_decoders_error(tmp_path):
    stream = bytearray(refcodec.encode(SAMPLE))
    stream[-3:] = b"\xff\xff\xff"
    path = tmp_path / "bad.rcdc"
    path.write_bytes(bytes(stream[:-1]))  # y_length now runs past the end
    with Image.open(path) as im, pytest.raises(refcodec.StreamError, match=r"§7\.2"):
        im.load()


def test_not_a_stream_is_not_opened(tmp_path):
    path = tmp_path / "x.rcdc"
    path.write_bytes(b"RCDC\x09" + bytes(60))
    with pytest.raises(Image.UnidentifiedImageError):
        Image.open(path)
