"""Quality levels (spec edition 4: §6.3 quality.y_gain / quality.z_gain, §7.1 stream version 2, §8.11 ApplyGain).

Small random models with gains: every level round-trips bit-exactly through both decoders; a version-1
stream ignores the gains; the stream's quality and the model's gains are checked with the right class.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refcodec import decode
from refcodec.conformance.models import random_model, with_gains
from refcodec.decoder.decoding import stages
from refcodec.decoder.errors import ModelError, StreamError
from refcodec.decoder.model import MAX_GAIN, load_model
from refcodec.encoder.encode import code_latents, quality_level

ARCHITECTURES = ["factorized", "hyperprior", "mean-scale", "joint"]


def small_case(rng, architecture: str, levels: int = 3):
    """(model file, model, y, z_hat, width, height) of a small random model with gains and random latents."""
    n, m = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    data = with_gains(random_model(rng, n, m, architecture=architecture, levels=4), rng, levels)
    model = load_model(data)
    w, h = int(rng.integers(1, 70)), int(rng.integers(1, 70))
    lat_h, lat_w = -(-h // 16), -(-w // 16)
    y = rng.integers(-60, 60, (m, lat_h, lat_w)) << model.mean_shift
    z_hat = None if architecture == "factorized" else rng.integers(-8, 8, (n, -(-lat_h // 4), -(-lat_w // 4)))
    return data, model, y, z_hat, w, h


@settings(max_examples=16, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from(ARCHITECTURES))
def test_every_level_round_trips_through_both_decoders(tmp_path_factory, seed, architecture):
    rng = np.random.default_rng(seed)
    data, model, y, z_hat, w, h = small_case(rng, architecture)
    path = tmp_path_factory.mktemp("q") / "model.safetensors"
    path.write_bytes(data)
    for level in range(model.levels):
        stream, _ = code_latents(y, model, w, h, "reference", z_hat, level)
        assert stream[4:7] == bytes([2, model.code, level])
        ref = decode(stream, [path], impl="reference")
        assert np.array_equal(decode(stream, [path], impl="fast"), ref)
        dumped = stages(stream, [path])
        assert ("z_gain" in dumped) == (architecture != "factorized") and "y_gain" in dumped


def test_version_1_stream_ignores_the_gains(tmp_path):
    """A version-1 stream decoded with a model that has gains applies none (spec §8.11): the same pixels as
    with the model without them, whose identity differs."""
    rng = np.random.default_rng(5)
    plain = random_model(rng, 2, 3, architecture="mean-scale", levels=4)
    gains = with_gains(plain, rng, 2)
    y, z_hat = rng.integers(-40, 40, (3, 2, 2)), rng.integers(-5, 5, (2, 1, 1))
    out = []
    for data in (plain, gains):
        path = tmp_path / f"{len(out)}.safetensors"
        path.write_bytes(data)
        stream, _ = code_latents(y, load_model(data), 20, 30, "reference", z_hat)
        assert stream[4] == 1
        out.append(decode(stream, [path], impl="reference"))
    assert np.array_equal(out[0], out[1])


def test_quality_must_be_a_level_of_the_model(tmp_path):
    rng = np.random.default_rng(6)
    data, model, y, z_hat, w, h = small_case(rng, "hyperprior", levels=2)
    path = tmp_path / "m.safetensors"
    path.write_bytes(data)
    stream = bytearray(code_latents(y, model, w, h, "reference", z_hat, 1)[0])
    stream[6] = 2  # level 2 of a model with levels 0 and 1
    with pytest.raises(StreamError, match="quality 2") as e:
        decode(bytes(stream), [path], impl="reference")
    assert e.value.clause == "8.1"
    plain = random_model(rng, model.n, model.m, architecture="hyperprior", levels=4)
    path.write_bytes(plain)
    stream = code_latents(y, load_model(plain), w, h, "reference", z_hat)[0]
    stream = stream[:4] + bytes([2, 1, 0]) + stream[6:]  # version 2, quality 0, for a model without levels
    with pytest.raises(StreamError) as e:
        decode(stream, [path], impl="reference")
    assert e.value.clause == "8.1"


@pytest.mark.parametrize("edit, match", [
    (lambda t: t["quality.y_gain"].__setitem__((0, 0), 0), "outside 1"),
    (lambda t: t["quality.z_gain"].__setitem__((1, 0), MAX_GAIN + 1), "outside 1"),
    (lambda t: t.pop("quality.z_gain"), "no tensor 'quality.z_gain'"),
    (lambda t: t.pop("quality.y_gain"), "quality.z_gain without quality.y_gain"),
    (lambda t: t.__setitem__("quality.z_gain", np.ones((3, 2), np.int32)), "quality.z_gain"),
    (lambda t: t.__setitem__("quality.y_gain", np.ones((65, 3), np.int32)), "65 rows"),
])
def test_bad_gains_are_model_errors(edit, match):
    def mutable(t):
        for k in ("quality.y_gain", "quality.z_gain"):
            if k in t:
                t[k] = np.array(t[k])
        edit(t)

    data = with_gains(random_model(np.random.default_rng(7), 2, 3, architecture="joint", levels=3),
                      np.random.default_rng(8), 2, mutable)
    with pytest.raises(ModelError, match=match):
        load_model(data)


def test_factorized_takes_no_z_gain():
    data = with_gains(random_model(np.random.default_rng(9), 2, 3), np.random.default_rng(1), 2,
                      lambda t: t.__setitem__("quality.z_gain", np.ones((2, 2), np.int32)))
    with pytest.raises(ModelError, match=r"unexpected tensor 'quality\.z_gain'"):
        load_model(data)


def test_quality_levels_of_the_api():
    model = load_model(with_gains(random_model(np.random.default_rng(2), 2, 2, architecture="joint", levels=2),
                                  np.random.default_rng(3), 8))
    assert [quality_level(model, q) for q in (None, 1, 8)] == [3, 0, 7]
    for bad in (0, 9, 2.5):
        with pytest.raises(Exception, match=r"outside 1\.\.8"):
            quality_level(model, bad)
