"""The synthesis in bands (refcodec.decoder.bands) gives the integers of the whole-picture synthesis (spec §8.4)
at every band height, in both decoders, for every architecture and picture size."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refcodec.conformance.models import random_model
from refcodec.decoder.bands import BAND_ALIGN, band_rows, default_band_height, synthesis_bands
from refcodec.decoder.decoding import crop, decode_stream, kernels
from refcodec.decoder.model import load_model
from refcodec.encoder.encode import encode_latents


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from(["factorized", "hyperprior", "mean-scale", "joint"]),
       st.integers(1, 100), st.integers(1, 80), st.sampled_from(["reference", "fast"]))
def test_every_band_height_gives_the_whole_picture(tmp_path_factory, seed, architecture, height, width, impl):
    rng = np.random.default_rng(seed)
    n, m = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    data = random_model(rng, n, m, architecture=architecture, levels=3)
    path = tmp_path_factory.mktemp("b") / "m.safetensors"
    path.write_bytes(data)
    model = load_model(data)
    lat_h, lat_w = -(-height // 16), -(-width // 16)
    y = rng.integers(-30, 30, (m, lat_h, lat_w)) << model.mean_shift
    z_hat = None if architecture == "factorized" else rng.integers(-4, 4, (n, -(-lat_h // 4), -(-lat_w // 4)))
    stream = encode_latents(y, model, width, height, "reference", z_hat)
    whole = crop(kernels(impl).layers.run_layers(y, model.synthesis)[-1], width, height)  # spec §8.4, §8.5
    for band_height in (16, 48, 80, -(-height // BAND_ALIGN) * BAND_ALIGN):
        assert np.array_equal(decode_stream(stream, [path], impl, band_height=band_height), whole)


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
        next(synthesis_bands(np.zeros((96, 1, 1), np.int64), model.synthesis, None, 16, 16, band_height=24))
