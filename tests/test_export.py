"""The exporter (Annex A.1.5): float parameters -> a valid integer model close to its float twin."""

import math

import numpy as np
import pytest

from refcodec import decode, encode
from refcodec.conformance.models import random_float_params
from refcodec.decoder.model import load_model
from refcodec.encoder import export, floatnet
from refcodec.encoder.encode import analyse
from refcodec.encoder.export import save_safetensors


def _smooth(seed, w, h):
    from PIL import Image

    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(h // 8, w // 8, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize((w, h), Image.BILINEAR))


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    rng = np.random.default_rng(11)
    p = random_float_params(rng, 8, 6)
    data = export.export(p, [_smooth(1, 48, 40), _smooth(2, 40, 56)], "test", {"iteration": 1})
    path = tmp_path_factory.mktemp("export") / "m.safetensors"
    path.write_bytes(data)
    return p, path, load_model(data)


def test_export_is_a_valid_model_with_its_float_twin(exported):
    p, _, model = exported
    assert (model.n, model.m, model.name) == (8, 6, "test")
    assert '"iteration": 1' in model.metadata["training"]
    for k in ("analysis.0.weight", "synthesis.6.bias", "synthesis.5.gamma"):
        assert np.allclose(model.encoder[k], p[k], rtol=1e-3, atol=1e-4)


def test_exported_model_round_trips(exported):
    _, path, model = exported
    img = _smooth(3, 45, 37)
    stream, recon = encode(img, model=model, return_reconstruction=True)
    assert np.array_equal(decode(stream, [path]), recon)
    assert np.array_equal(decode(stream, [path], impl="reference"), recon)


def test_integer_layers_track_the_float_synthesis(exported):
    """Every hidden layer of the integer synthesis equals the float one up to its scale, to < 0.5%."""
    from refcodec.decoder import layers

    p, _, model = exported
    y_hat = analyse(_smooth(1, 48, 40), model)
    trace: list = []
    floatnet.synthesis(y_hat.astype(np.float64), p, trace)
    ints = layers.run_layers(y_hat, model.synthesis)
    for k, (f, q) in enumerate(zip(trace[:-1], ints[:-1], strict=True)):
        q = q.astype(np.float64)
        scale = (f * q).sum(axis=(1, 2)) / np.maximum((q * q).sum(axis=(1, 2)), 1e-12)
        err = np.abs(f - scale[:, None, None] * q).max() / np.abs(f).max()
        assert err < 5e-3, (k, err)


def test_cdf_tables_follow_the_density(exported):
    """The table's most probable symbol of each channel is where the density has most mass."""
    p, _, model = exported
    t = model.y_table
    for c in range(model.m):
        freqs = np.diff(t.cdf[c, : t.cdf_length[c]])
        assert freqs.min() >= 1 and t.cdf[c, t.cdf_length[c] - 1] == 1 << 16
        lo = math.floor(p["density.quantiles"][c, 0, 0])
        assert t.offset[c] >= lo - 1


def test_float_params_from_a_training_checkpoint():
    """Names and the GDN reparametrisation (value = max(p, bound)^2 - pedestal) of refcodec.encoder.train's files."""
    rng = np.random.default_rng(0)
    t = {}
    for side, shapes in (("g_a", [(4, 3), (4, 4), (4, 4), (5, 4)]), ("g_s", [(5, 4), (4, 4), (4, 4), (4, 3)])):
        for j, (a, b) in enumerate(shapes):
            t[f"{side}.{2 * j}.weight"] = rng.normal(size=(a, b, 5, 5)).astype(np.float16)
            t[f"{side}.{2 * j}.bias"] = rng.normal(size=(b if side == "g_s" else a)).astype(np.float16)
            if j < 3:
                c = a if side == "g_a" else b
                t[f"{side}.{2 * j + 1}.beta.p"] = np.full(c, 2.0, np.float16)
                t[f"{side}.{2 * j + 1}.gamma.p"] = np.full((c, c), -1.0, np.float16)
    t["density.quantiles"] = np.zeros((5, 1, 3), np.float16)
    p, meta = export.float_params(save_safetensors(t, {"iteration": "7"}))
    assert meta == {"iteration": 7}
    assert np.allclose(p["analysis.1.beta"], 4.0 - export.PEDESTAL)
    assert np.allclose(p["synthesis.3.gamma"], 0.0, atol=1e-9)  # clamped at the lower bound
    assert p["synthesis.6.weight"].shape == (4, 3, 5, 5) and "density.quantiles" in p


@pytest.fixture(scope="module", params=["hyperprior", "mean-scale", "joint"])
def exported_hyper(request, tmp_path_factory):
    rng = np.random.default_rng(12)
    p = random_float_params(rng, 6, 5, request.param)
    data = export.export(p, [_smooth(1, 48, 40), _smooth(2, 72, 56)], "test", None, request.param)
    path = tmp_path_factory.mktemp("export") / "m.safetensors"
    path.write_bytes(data)
    return p, path, load_model(data)


def test_exported_hyperprior_models_round_trip(exported_hyper):
    p, path, model = exported_hyper
    assert model.metadata["architecture"] == model.architecture and model.y_table.rows == export.SCALE_LEVELS
    assert np.all(np.diff(model.scale_bound.astype(np.int64)) > 0)
    for name in ("hyper_analysis.0.weight", "hyper_analysis.2.bias"):
        assert np.allclose(model.encoder[name], p[name], rtol=1e-3, atol=1e-4)
    img = _smooth(4, 70, 45)
    stream, recon = encode(img, model=model, return_reconstruction=True)
    assert np.array_equal(decode(stream, [path]), recon)
    assert np.array_equal(decode(stream, [path], impl="reference"), recon)


def test_integer_hyper_synthesis_tracks_the_float_one(exported_hyper):
    """Scales come out in units of 2^-8 and means in units of 2^-F, the unit of y_hat (Annex A.1.5):
    the integer outputs of the hyper-synthesis (or entropy parameters) follow the float network's."""
    from refcodec.decoder import latents, layers
    from refcodec.decoder.model import layer_plan
    from refcodec.encoder.encode import analyse_all

    p, _, model = exported_hyper
    y_hat, z_hat = analyse_all(_smooth(1, 48, 40), model)
    plan = layer_plan(model.architecture, model.n, model.m)
    f = floatnet.run(z_hat.astype(np.float64), p, "hyper_synthesis", plan["hyper_synthesis"])[:, :y_hat.shape[1],
                                                                                             :y_hat.shape[2]]
    q = latents.hyper_synthesis(z_hat, model, *y_hat.shape[1:], layers)
    if model.architecture == "joint":
        ctx = floatnet.run(y_hat * 2.0**-model.mean_shift, p, "context", plan["context"])
        f = floatnet.run(np.concatenate([ctx, f]), p, "entropy_parameters", plan["entropy_parameters"])
        q = latents.joint_params(y_hat, q, model, layers)
    m = model.m
    scales = np.maximum(f[:m], 0) if model.architecture == "hyperprior" else f[:m]
    unit = 2.0 ** export.scale_bits({})
    assert np.abs(np.clip(scales * unit, -32768, 32767) - q[:m]).max() <= 0.01 * np.abs(scales * unit).max() + 2
    if model.architecture != "hyperprior":
        assert model.mean_shift == floatnet.MEAN_SHIFT
        means = f[m:] * 2.0**model.mean_shift
        assert np.abs(means - q[m:]).max() <= 0.01 * np.abs(means).max() + 2


def test_gaussian_tables():
    """Annex A.2.3: row r is the unit-binned zero-mean Gaussian of scale r, centred, widening with r."""
    scales = export.gaussian_scales()
    table = export.gaussian_tables(scales)
    bounds = export.scale_bounds({})
    assert table.rows == len(scales) == len(bounds) + 1 and np.all(np.diff(bounds.astype(np.int64)) > 0)
    assert np.all(np.diff(table.cdf_length) >= 0) and np.all(table.offset == -(table.cdf_length - 3) // 2)
    for r in (0, 31, 63):
        freqs = np.diff(table.cdf[r, : table.cdf_length[r]])[:-1]  # without the escape
        assert np.argmax(freqs) == -table.offset[r] and np.abs(freqs - freqs[::-1]).max() <= 8  # zero bins get 1


def test_float_params_of_the_hyperprior_architectures():
    """refcodec.encoder.train names: h_a/h_s/entropy_parameters as nn.Sequential (layers at 0, 2, 4), the masked
    context."""
    rng = np.random.default_rng(1)
    t = {}
    for side in ("g_a", "g_s"):
        for j in range(4):
            t[f"{side}.{2 * j}.weight"] = rng.normal(size=(2, 2, 5, 5)).astype(np.float16)
            t[f"{side}.{2 * j}.bias"] = rng.normal(size=2).astype(np.float16)
            if j < 3:
                t[f"{side}.{2 * j + 1}.beta.p"] = np.ones(2, np.float16)
                t[f"{side}.{2 * j + 1}.gamma.p"] = np.ones((2, 2), np.float16)
    for group in ("h_a", "h_s", "entropy_parameters"):
        for j in range(3):
            t[f"{group}.{2 * j}.weight"] = np.full((2, 2, 1, 1), j, np.float16)
            t[f"{group}.{2 * j}.bias"] = np.full(2, j, np.float16)
    t["context.weight"] = np.ones((4, 2, 5, 5), np.float16)
    t["context.bias"] = np.zeros(4, np.float16)
    t["context.mask"] = np.zeros((1, 1, 5, 5), np.float16)
    t["context.mask"][..., :2, :] = 1
    p, meta = export.float_params(save_safetensors(t, {"record": '{"arch": "joint"}'}))
    assert export.architecture_of(meta) == "joint" and export.architecture_of({}) == "factorized"
    assert p["hyper_synthesis.2.weight"][0, 0, 0, 0] == 2 and p["entropy_parameters.1.bias"][0] == 1
    assert p["hyper_analysis.0.weight"].shape == (2, 2, 1, 1)
    assert p["context.0.weight"][:, :, 2:].sum() == 0 and p["context.0.weight"][:, :, :2].sum() == 4 * 2 * 10


@pytest.mark.parametrize("architecture", ["hyperprior", "mean-scale", "joint"])
def test_hyper_analysis_sees_magnitudes_then_signs(architecture):
    """Annex A.1.3: h_a runs on |y| (hyperprior) or on |y| followed by y (mean-scale, joint), with ReLU."""
    y = np.array([[[-3.0, 2.0], [5.0, -7.0]]])  # M = 1, 2x2 latents: z is 1x1, from y[0, 0, 0]
    inputs = floatnet.hyper_analysis_inputs(architecture, 1)
    assert inputs == (1 if architecture == "hyperprior" else 2)
    for channel, want in [(0, 3.0), (1, 0.0)][:inputs]:  # |-3| = 3; relu(-3) = 0
        p = {}
        for j, (cin, k) in enumerate(((inputs, 3), (1, 5), (1, 5))):
            p[f"hyper_analysis.{j}.weight"] = np.zeros((1, cin, k, k))
            p[f"hyper_analysis.{j}.weight"][0, channel if j == 0 else 0, k // 2, k // 2] = 1
            p[f"hyper_analysis.{j}.bias"] = np.zeros(1)
        assert floatnet.hyper_analysis(y, p, architecture).tolist() == [[[want]]]
    if inputs == 2:  # the y channel with a negative weight: relu(3) = 3
        p["hyper_analysis.0.weight"][0, 1, 1, 1] = -1
        assert floatnet.hyper_analysis(y, p, architecture).tolist() == [[[3.0]]]
