"""The fast path's integer kernels, each forced on in turn, give the NumPy reference's integers (spec §5).

refcodec.fast.layers sums products on AMX-INT8 tiles (MATRIX_SIMD), on AVX512-VNNI (INTEGER_SIMD), or in
float64 BLAS; tests/test_layers.py toggles INTEGER_SIMD only, so on a CPU with AMX it never reaches the
VNNI kernel. Here every available mode runs, on shapes around the kernels' block sizes (16 channels and
positions per tile, 64 channels per tile product, MR x COLS per VNNI block) and at the bounds of their
exactness arguments (refcodec.fast.vnni).
"""

import contextlib

import numpy as np
import pytest

from refcodec.decoder import layers
from refcodec.decoder.layers import ACT_MAX, ACT_MIN, Layer
from refcodec.fast import layers as fast
from refcodec.fast import vnni

MODES = ["float64"] + (["vnni"] if vnni.AVAILABLE else []) + (["amx"] if vnni.AVAILABLE and vnni.AMX_AVAILABLE else [])
EXTREME_WEIGHTS = np.array([-32768, -32513, -1, 255, 256, 32767], np.int16)  # the bytes' bounds


@contextlib.contextmanager
def mode(name: str):
    """Run the fast layers on one way of summing products."""
    saved = fast.INTEGER_SIMD, fast.MATRIX_SIMD
    fast.INTEGER_SIMD, fast.MATRIX_SIMD = name != "float64", name == "amx"
    try:
        yield
    finally:
        fast.INTEGER_SIMD, fast.MATRIX_SIMD = saved


def _conv_layer(rng, kind, cin, cout, k, activation, extreme):
    shape = (cin, cout, 5, 5) if kind == "deconv" else (cout, cin, k, k)
    weight = (rng.choice(EXTREME_WEIGHTS, size=shape) if extreme
              else rng.integers(-32768, 32768, size=shape)).astype(np.int16)
    shift = rng.integers(0, 48, size=cout).astype(np.uint8)
    shift[0] = 47  # a leaky layer's negative side then shifts by 63
    slope = int(rng.choice([1, 1024, (1 << 15) - 1]))
    return Layer(kind, shift, activation, weight, rng.integers(-(1 << 40), 1 << 40, size=cout), slope=slope)


def _input(rng, c, h, w, extreme):
    if extreme:
        return rng.choice(np.array([ACT_MIN, ACT_MAX, -1, 0, 255, 256, -256], np.int64), size=(c, h, w))
    return rng.integers(ACT_MIN, ACT_MAX + 1, size=(c, h, w))


def _check(x, layer, name):
    want = layers.apply_layer(x, layer)
    for dtype in (np.int16, np.float64):
        with mode(name):
            got = fast.run_layers(x.astype(dtype), [layer])[-1]
        assert got.shape == want.shape
        assert got.flags.c_contiguous
        assert np.array_equal(got, want), (name, layer.kind, x.shape)


@pytest.mark.parametrize("name", MODES)
@pytest.mark.parametrize("kind,k", [("deconv", 5), ("conv", 1), ("conv", 3), ("conv", 5)])
@pytest.mark.parametrize("cin,cout,h,w", [(1, 1, 1, 1), (3, 17, 2, 15), (64, 16, 3, 16), (65, 3, 2, 17),
                                          (130, 33, 2, 50)])
def test_convolutions(name, kind, k, cin, cout, h, w):
    rng = np.random.default_rng(cin * 1000 + cout * 10 + k)
    for activation in layers.ACTIVATIONS:
        extreme = activation in ("none", "leaky")
        _check(_input(rng, cin, h, w, extreme), _conv_layer(rng, kind, cin, cout, k, activation, extreme), name)


@pytest.mark.parametrize("name", MODES)
def test_convolution_lanes_at_their_bound(name):
    """Every input ACT_MIN and every weight -32768 over 300 input channels and 9 taps: the largest sums of
    the VNNI lanes (2^22 per product, segments of 127 pairs) and of the AMX tiles (2^14 per high-byte
    product; the low-byte tiles 255 * 255 per product), a partial sum of 2^30 * 2700."""
    cin, cout, h, w = 300, 5, 3, 20
    x = np.full((cin, h, w), ACT_MIN, np.int64)
    weight = np.full((cout, cin, 3, 3), -32768, np.int16)
    weight[1] = -32513  # high byte -128, low byte 255
    weight[2] = 255
    layer = Layer("conv", np.full(cout, 40, np.uint8), "none", weight, np.zeros(cout, np.int64))
    _check(x, layer, name)


def _igdn_layer(rng, c, full):
    gmax = ((1 << 53) - 1 >> 30) // c
    gamma = rng.integers(0, gmax + 1, size=(c, c)) if full else rng.integers(0, 1000, size=(c, c))
    room = (1 << 53) - 1 - (1 << 30) * gamma.sum(axis=1)
    return Layer("igdn", rng.integers(0, 48, size=c).astype(np.uint8), gamma=gamma.astype(np.int32),
                 beta=rng.integers(1, room + 1))


@pytest.mark.parametrize("name", MODES)
@pytest.mark.parametrize("c,h,w", [(1, 1, 1), (3, 2, 17), (64, 2, 16), (65, 3, 33), (131, 2, 61)])
def test_igdn(name, c, h, w):
    rng = np.random.default_rng(c * 100 + w)
    for full in (False, True):
        _check(_input(rng, c, h, w, full), _igdn_layer(rng, c, full), name)


@pytest.mark.parametrize("name", MODES)
def test_igdn_at_norm_bound(name):
    """T = 2^53 - 1 from gamma of 23 bits (every byte of x^2 = 2^30 and of gamma in use)."""
    c = 3
    gamma = np.full((c, c), ((1 << 53) - 1 >> 30) // c, np.int64)
    beta = (1 << 53) - 1 - (1 << 30) * gamma.sum(axis=1)
    layer = Layer("igdn", np.array([20, 27, 47], np.uint8), gamma=gamma.astype(np.int32), beta=beta)
    x = np.full((c, 2, 18), ACT_MIN, np.int64)
    x[:, 1] = ACT_MAX
    _check(x, layer, name)


def test_amx_kernels_build_wherever_the_cpu_has_them():
    """No AMX-INT8 (or no JIT, or an OS that does not grant tile state) is a reason to use the VNNI kernel; AMX
    kernels that fail to build on a CPU that has them are a bug (refcodec.fast.vnni)."""
    assert vnni.AMX_STATUS in (vnni.BUILT, vnni.NO_AMX, vnni.NO_AMX_STATE, vnni.NO_JIT), vnni.AMX_STATUS


def _joint_case(seed: int, m: int, stress: bool) -> tuple:
    """(model, stream header, hyper parameters, latents y) of a random joint model with M = m and a stream of
    random latents on a 3 x 7 latent grid (coded by the reference encoder)."""
    from test_bands import lively

    from refcodec.conformance.models import random_model
    from refcodec.decoder import latents
    from refcodec.decoder.bitstream import parse_stream
    from refcodec.decoder.decoding import gained
    from refcodec.decoder.model import load_model
    from refcodec.encoder.encode import code_latents

    rng = np.random.default_rng(seed)
    data = random_model(rng, 2, m, stress=stress, architecture="joint", levels=int(rng.integers(1, 9)),
                        mean_shift=int(rng.choice([0, 3])))
    model = load_model(data if stress else lively(data))
    y = rng.integers(-100, 100, (m, 3, 7)) << model.mean_shift
    z = rng.integers(-20, 20, (2, 1, 2))
    stream, _ = code_latents(y, model, 7 * 16, 3 * 16, "reference", z)
    header = parse_stream(stream)
    z_hat = latents.decode_latents(header.z_data, model.z_table, (2, 1, 2), "z", latents.LatentReader,
                                   model.z_median, model.z_shift)
    params = latents.hyper_synthesis(gained(z_hat, model.z_gain, None), model, 3, 7, layers)
    return model, header, params, y


@pytest.mark.parametrize("name", MODES)
@pytest.mark.parametrize("m", [1, 3, 20, 33])
@pytest.mark.parametrize("stress", [False, True])
def test_joint_rows(name, m, stress):
    """Spec §8.10 on refcodec.fast.joint's kernels (partial sums of the rows above and of the hyper parameters
    per row on AMX tiles or the VNNI convolution kernel, then VNNI matrix-vector products; or one float64
    loop), decoding and encoding, for M whose
    2M, E1 = 10M // 3 and E2 = 8M // 3 fall inside or across the kernels' blocks (E1 odd for M = 1), and
    models at the bounds of spec §6.4: the reference decoder's and encoder's latents and table rows."""
    from refcodec.decoder import latents
    from refcodec.encoder import latents as encoder_latents
    from refcodec.fast import joint

    model, header, params, y = _joint_case(m * 10 + stress, m, stress)
    want = latents.decode_joint(header.y_data, model, params, latents.LatentReader)
    want_coded = encoder_latents.code_joint(y, model, params)
    with mode(name):
        got = latents.decode_joint(header.y_data, model, params, joint.LatentReader)
        got_coded = joint.code_joint(y, model, params)
    assert np.array_equal(got, want)
    for a, b in zip(got_coded, want_coded, strict=True):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("name", MODES)
@pytest.mark.parametrize("dtype", [np.int16, np.int64])
def test_inputs_that_are_views(name, dtype):
    """Inputs as refcodec.decoder.bands hands them over: rows cut from a layer's output (run_band), ŷ as a
    transposed window (JointLatents.rows), and columns cut, in int16 and int64."""
    rng = np.random.default_rng(5)
    whole = rng.integers(ACT_MIN, ACT_MAX + 1, size=(20, 9, 33)).astype(dtype)
    window = np.ascontiguousarray(whole.transpose(1, 2, 0))  # (rows, W, C)
    convs = [_conv_layer(rng, "deconv", 20, 17, 5, "none", False),
             _conv_layer(rng, "deconv", 20, 3, 5, "pixels", False),
             _conv_layer(rng, "conv", 20, 3, 3, "relu", False), _igdn_layer(rng, 20, True)]
    for view in (whole[:, 2:7], window.transpose(2, 0, 1)[:, 1:5], whole[:, :, 3:30]):
        assert not view.flags.c_contiguous
        for layer in convs:
            want = layers.apply_layer(view.astype(np.int64), layer)
            with mode(name):
                got = fast.run_layers(view, [layer])[-1]
            assert np.array_equal(got, want)
