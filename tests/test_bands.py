"""Decoding in bands (refcodec.decoder.bands) gives the picture of whole-picture decoding (spec §8.6) at every band
height, in both decoders, for every architecture, picture size and quality level; the joint architecture's
latents are decoded row by row in a bounded window; and a stream whose error is found after some bands were
made leaves no output file."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refcodec.cli import main
from refcodec.conformance.models import random_model, with_gains
from refcodec.decoder.bands import BAND_ALIGN, CONTEXT_ROWS, band_rows, default_band_height, synthesis_bands
from refcodec.decoder.bitstream import parse_stream
from refcodec.decoder.decoding import (
    crop,
    decode_stream,
    decode_y,
    gained,
    kernels,
    open_stream,
    picture_bands,
    synthesis_latents,
)
from refcodec.decoder.errors import StreamError
from refcodec.decoder.model import layer_plan, load_model, parse_container
from refcodec.encoder.encode import code_latents, write_stream
from refcodec.encoder.export import save_safetensors

ARCHITECTURES = ["factorized", "hyperprior", "mean-scale", "joint"]
IMPLS = ["reference", "fast"]


def lively(data: bytes) -> bytes:
    """The model file ``data`` with every layer made to pass its input's variation on: biases 0 (the picture
    layer's mid-grey), shifts that keep a layer's output about as large as its input (2^shift about the root
    of the sum of squares of a channel's weights, a quarter of them for a transposed convolution; for IGDN
    about Isqrt(beta + 32^2 * sum gamma)), and table thresholds close together. random_model's layers are
    mostly saturated by their biases, so that decoding the wrong rows, or a context of the wrong rows, would
    often give the same pixels; with these it changes them."""
    meta, tensors = parse_container(data)
    t = {k: np.array(v) for k, v in tensors.items()}
    for group, plan in layer_plan(meta["architecture"], int(meta["N"]), int(meta["M"])).items():
        for k, (kind, *_) in enumerate(plan):
            name = f"{group}.{k}"
            if kind == "igdn":
                shift = np.log2(np.sqrt(t[f"{name}.beta"] + t[f"{name}.gamma"].astype(np.int64).sum(axis=1) * 32**2))
            else:
                w = t[f"{name}.weight"].astype(np.float64)
                squares = (w**2).sum(axis=(0, 2, 3)) / 4 if kind == "deconv" else (w**2).sum(axis=(1, 2, 3))
                shift = np.log2(np.sqrt(squares))
                t[f"{name}.bias"][:] = 0
            t[f"{name}.shift"] = np.clip(np.round(shift), 0, 47).astype(np.uint8)
    t["synthesis.6.bias"] = 128 << t["synthesis.6.shift"].astype(np.int64)
    if "entropy.y.scale_bound" in t:
        count = t["entropy.y.scale_bound"].size
        t["entropy.y.scale_bound"] = (2 * np.arange(count) - count).astype(np.int32)
    return save_safetensors(t, meta)


def random_stream(rng: np.random.Generator, architecture: str, width: int, height: int, quality: bool,
                  mean_shift: int | None = None) -> tuple:
    """(model file, model, stream, y_hat, level): a tiny random ``lively`` model (with quality levels if
    ``quality``) and a stream of random latents coded with it (version 2, at a random level, if ``quality``)."""
    n, m = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    shift = mean_shift if architecture in ("mean-scale", "joint") else None
    data = random_model(rng, n, m, architecture=architecture, levels=3, mean_shift=shift)
    data = lively(data) if not quality else with_gains(lively(data), rng, 2)
    model = load_model(data)
    level = int(rng.integers(0, 2)) if quality else None
    lat_h, lat_w = -(-height // 16), -(-width // 16)
    y = rng.integers(-100, 100, (m, lat_h, lat_w)) << model.mean_shift
    z_hat = None if architecture == "factorized" else rng.integers(-100, 100, (n, -(-lat_h // 4), -(-lat_w // 4)))
    stream, y_hat = code_latents(y, model, width, height, "reference", z_hat, level)
    return data, model, stream, y_hat, level


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from(ARCHITECTURES), st.integers(1, 200), st.integers(1, 80),
       st.sampled_from(IMPLS), st.booleans(), st.sampled_from([None, 0, 3]), st.sampled_from([48, 80, 112]))
def test_every_band_height_gives_the_whole_picture(tmp_path_factory, seed, architecture, height, width, impl,
                                                   quality, mean_shift, odd_band):
    """Bands of 16 rows (the hyper-synthesis then in bands of one latent row), of an odd multiple of 16, and
    one band for the whole picture: the bytes of the whole-picture synthesis of the encoder's ŷ (spec §8.4,
    §8.5, §8.11), which none of the banding computes."""
    rng = np.random.default_rng(seed)
    data, model, stream, y_hat, level = random_stream(rng, architecture, width, height, quality, mean_shift)
    path = tmp_path_factory.mktemp("b") / "m.safetensors"
    path.write_bytes(data)
    whole_input = gained(y_hat, model.y_gain, level)
    whole = crop(kernels(impl).layers.run_layers(whole_input, model.synthesis)[-1], width, height).tobytes()
    for band_height in (16, odd_band, -(-height // BAND_ALIGN) * BAND_ALIGN):
        assert decode_stream(stream, [path], impl, band_height=band_height).tobytes() == whole


@pytest.mark.parametrize("impl", IMPLS)
def test_joint_latents_are_decoded_in_a_bounded_window(tmp_path, impl):
    """The synthesis' requests for ŷ rows (bands of 16 pixel rows) get the rows of the whole-picture decoding
    (spec §8.10), while the window holds only the rows of one request and the context above it, and the
    hyper parameters only the rows of one band of the hyper-synthesis."""
    rng = np.random.default_rng(5)
    data, model, stream, _, _ = random_stream(rng, "joint", 48, 16 * 24, quality=True)
    path = tmp_path / "m.safetensors"
    path.write_bytes(data)
    header, model = open_stream(stream, [path], impl)
    whole = decode_y(header, model, impl)["y_hat"]
    source = synthesis_latents(header, model, impl, hyper_rows=2)
    lat_h = header.latent_shape[0]
    for a in range(0, 16 * lat_h, 16):
        lo, hi = band_rows(model.synthesis, a, a + 16, lat_h)[0]
        assert np.array_equal(source.rows(lo, hi), whole[:, lo:hi])
        assert source.window.shape[0] <= hi - lo + CONTEXT_ROWS
        assert source.params.shape[1] <= 2
    assert source.top == lat_h
    source.close()
    source = synthesis_latents(header, model, impl, hyper_rows=3)  # requests that skip rows: the context is kept
    for lo, hi in [(0, 1), (5, 6), (6, 9), (20, 24)]:
        assert np.array_equal(source.rows(lo, hi), whole[:, lo:hi])


def truncated_joint_stream(tmp_path) -> tuple:
    """(model file, stream): a joint stream of 32 x 320 pixels whose y sub-stream has lost its second half, the
    header rewritten to match, so that the error (spec §3.3) comes after the first latent rows."""
    rng = np.random.default_rng(3)
    data, model, stream, _, _ = random_stream(rng, "joint", 32, 320, quality=False)
    path = tmp_path / "joint.safetensors"
    path.write_bytes(data)
    header = parse_stream(stream)
    y_data = header.y_data[: len(header.y_data) // 8 * 4]
    return path, write_stream(model.model_id, model.code, 32, 320, y_data, header.z_data)


@pytest.mark.parametrize("impl", IMPLS)
def test_a_truncated_joint_stream_fails_after_the_first_bands(tmp_path, impl):
    """The premise of the next test: bands are made before the error is found."""
    path, stream = truncated_joint_stream(tmp_path)
    header, model = open_stream(stream, [path], impl)
    made = []
    with pytest.raises(StreamError) as e:
        for row, _ in picture_bands(header, model, impl, band_height=16):
            made.append(row)
    assert made and e.value.clause == "3.3"


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("name", ["out.png", "out.ppm", "out.rgb", "out.bmp"])
def test_a_truncated_joint_stream_leaves_no_output_file(tmp_path, capsys, impl, name):
    """spec §2.6: no output file (not even a partial one) and no temporary file, whatever the format; an existing
    file at the output path stays as it was."""
    path, stream = truncated_joint_stream(tmp_path)
    src = tmp_path / "bad.rcdc"
    src.write_bytes(stream)
    out = tmp_path / name
    assert main(["decode", "--impl", impl, "--band-height", "16", "--model-file", path, src, out]) == 1
    assert "StreamError" in capsys.readouterr().err
    assert not out.exists() and not list(tmp_path.glob(".refcodec-*"))
    out.write_bytes(b"precious")
    assert main(["decode", "--impl", impl, "--band-height", "16", "--model-file", path, src, out]) == 1
    assert out.read_bytes() == b"precious" and not list(tmp_path.glob(".refcodec-*"))


def test_band_rows_cover_the_halo():
    """Pixel rows 0..15 need latent rows 0..2 through four transposed convolutions (a halo of two rows
    below), and rows 64..79 (latent row 4) need latent rows 3..6 (one row above, two below)."""
    model = load_model(random_model(np.random.default_rng(1), 2, 2))
    assert band_rows(model.synthesis, 0, 16, 10)[0] == (0, 3)
    assert band_rows(model.synthesis, 64, 80, 10)[0] == (3, 7)


def test_default_band_height_bounds_memory():
    model = load_model(random_model(np.random.default_rng(1), 64, 96))
    assert default_band_height(model.synthesis, 768) >= 512  # a Kodak picture is one band
    assert default_band_height(model.synthesis, 4096) == 128
    with pytest.raises(ValueError, match="multiple of 16"):
        next(synthesis_bands(lambda lo, hi: np.zeros((96, hi - lo, 1)), model.synthesis, None, 16, 16,
                             band_height=24))
