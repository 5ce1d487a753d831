"""Spec §5: integer layers. Exact small cases, spec pseudocode vs reference vs fast."""

import contextlib
import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refcodec.decoder import layers
from refcodec.decoder.layers import ACT_MAX, ACT_MIN, DEFAULT_LEAKY_SLOPE, LEAKY_BITS, Layer
from refcodec.fast import layers as fast
from refcodec.fast import vnni

# The fast path's two ways to sum products: float64 BLAS, and AVX512-VNNI where the CPU has it.
SIMD_MODES = [False, True] if vnni.AVAILABLE else [False]


@contextlib.contextmanager
def integer_simd(on: bool):
    """Run the fast layers with refcodec.fast.vnni on or off."""
    saved, fast.INTEGER_SIMD = fast.INTEGER_SIMD, on
    try:
        yield
    finally:
        fast.INTEGER_SIMD = saved


def test_conv_transpose_single_tap():
    # One input sample 3 at (0, 0), one channel, weight 1 only at tap (2, 2):
    # output (2*0 + 2 - 2, 2*0 + 2 - 2) = (0, 0) gets 3; everything else is the bias 10.
    x = np.array([[[3, 0], [0, 0]]], dtype=np.int64)
    w = np.zeros((1, 1, 5, 5), dtype=np.int16)
    w[0, 0, 2, 2] = 1
    out = layers.conv_transpose(x, w, np.array([10]))
    expected = np.full((1, 4, 4), 10)
    expected[0, 0, 0] = 13
    assert out.tolist() == expected.tolist()


def test_conv_transpose_output_positions():
    # Input sample at (1, 1) with all taps = 1 covers outputs 2*1 + k - 2 = 0..4, cropped to 0..3.
    x = np.zeros((1, 2, 2), dtype=np.int64)
    x[0, 1, 1] = 1
    out = layers.conv_transpose(x, np.ones((1, 1, 5, 5), dtype=np.int16), np.zeros(1, np.int64))
    assert out[0].tolist() == [[1, 1, 1, 1]] * 4
    x = np.zeros((1, 2, 2), dtype=np.int64)
    x[0, 0, 0] = 1
    out = layers.conv_transpose(x, np.ones((1, 1, 5, 5), dtype=np.int16), np.zeros(1, np.int64))
    assert out[0].tolist() == [[1, 1, 1, 0], [1, 1, 1, 0], [1, 1, 1, 0], [0, 0, 0, 0]]


def test_requantize_rounds_half_up_and_clamps():
    acc = np.array([[[5, -5, -6, -7, 1 << 40, -(1 << 40)]]], dtype=np.int64)
    assert layers.requantize(acc, np.array([1])).tolist() == [[[3, -2, -3, -3, ACT_MAX, ACT_MIN]]]
    assert layers.requantize(acc, np.array([0]), 0, 255).tolist() == [[[5, 0, 0, 0, 255, 0]]]


def test_igdn_exact():
    # T = beta + gamma * x^2 = 7 + 2 * 9 = 25, Isqrt = 5, Round2(3 * 5, 1) = 8; x = -3: Round2(-15, 1) = -7.
    x = np.array([[[3, -3]]], dtype=np.int64)
    out = layers.igdn(x, np.array([[2]]), np.array([7]), np.array([1]))
    assert out.tolist() == [[[8, -7]]]
    # Two channels: T_0 = 1 + 1*16 + 3*4 = 29 -> 5; T_1 = 1 + 0 + 1*4 = 5 -> 2.
    x = np.array([[[4]], [[2]]], dtype=np.int64)
    out = layers.igdn(x, np.array([[1, 3], [0, 1]]), np.array([1, 1]), np.array([0, 0]))
    assert out.tolist() == [[[20]], [[4]]]


def test_activations_exact():
    """spec §5.6: relu clamps at 0; leaky rounds a negative accumulator with shift + 6 in one step."""
    acc = np.array([[100, -100, -96, -97, -(1 << 40), 1 << 40]], dtype=np.int64)
    shift = np.array([1])

    def requantized(activation, values=acc, shifts=shift):
        return layers.requantize_map(values, shifts, activation, DEFAULT_LEAKY_SLOPE).tolist()

    assert requantized("none") == [[50, -50, -48, -48, ACT_MIN, ACT_MAX]]
    assert requantized("relu") == [[50, 0, 0, 0, 0, ACT_MAX]]
    # Round2(-100, 7) = (-100 + 64) >> 7 = -1; Round2(-96, 7) = -32 >> 7 = -1; Round2(-(2^40), 7) = -2^33 -> clamp
    assert requantized("leaky") == [[50, -1, -1, -1, ACT_MIN, ACT_MAX]]
    assert requantized("pixels") == [[50, 0, 0, 0, 0, 255]]
    assert requantized("leaky", np.array([[-32]]), np.array([0])) == [[0]]  # Round2(-32, 6) = 0


def test_leaky_slope_exact():
    """spec §5.6, edition 5: a negative a becomes Round2(a * slope, shift + 16); slope 655 is CompressAI's 0.01."""
    acc = np.array([[-1000, -1, 1000]], dtype=np.int64)
    # Round2(-655000, 16) = (-655000 + 32768) >> 16 = floor(-9.49...) = -10; Round2(-655, 16) = 0
    assert layers.requantize_map(acc, np.array([0]), "leaky", 655).tolist() == [[-10, 0, 1000]]
    # The extremes of the ranges: |a| = 2^47 - 1, slope 2^15 - 1, shift 47 (a sum below 2^63 in magnitude).
    a, slope, shift = -((1 << 47) - 1), (1 << 15) - 1, 47
    expected = (a * slope + (1 << (shift + LEAKY_BITS - 1))) >> (shift + LEAKY_BITS)
    got = layers.requantize_map(np.array([[a]], dtype=np.int64), np.array([shift]), "leaky", slope)
    assert got.tolist() == [[expected]] == [[0]]  # a * slope + 2^62 = 2^47 + 2^15 - 1 > 0


@settings(max_examples=300, deadline=None)
@given(st.integers(-(1 << 47) + 1, (1 << 47) - 1), st.integers(0, 47))
def test_default_leaky_slope_is_editions_2_to_4(a, shift):
    """spec §5.6: slope 1024 with shift + 16 is exactly the shift + 6 of earlier editions, for every a."""
    old = (a + (1 << (shift + 5))) >> (shift + 6) if a < 0 else (a + ((1 << shift) >> 1)) >> shift
    got = layers.requantize_map(np.array([[a]], dtype=np.int64), np.array([shift]), "leaky", DEFAULT_LEAKY_SLOPE)
    assert got.tolist() == [[min(max(old, ACT_MIN), ACT_MAX)]]


def test_conv_exact():
    """spec §5.7: stride 1, zero padding K // 2, weight indexed [output][input]."""
    x = np.arange(1, 7, dtype=np.int64).reshape(1, 2, 3)  # [[1, 2, 3], [4, 5, 6]]
    w = np.zeros((2, 1, 3, 3), np.int16)
    w[0, 0, 1, 2] = 1  # output 0 = the right neighbour (0 past the edge)
    w[1, 0, 0, 1] = 2  # output 1 = twice the sample above
    out = layers.conv(x, w, np.array([10, 0]))
    assert out.tolist() == [[[12, 13, 10], [15, 16, 10]], [[0, 0, 0], [2, 4, 6]]]


def test_context_sees_only_earlier_positions():
    """spec §5.8: changing y_hat at or after (ly, lx) never changes ContextAt there, and it equals the full conv."""
    rng = np.random.default_rng(3)
    w = rng.integers(-9, 10, size=(2, 3, 5, 5)).astype(np.int16)
    w[:, :, 2, 2:] = 0
    w[:, :, 3:] = 0
    layer = Layer("conv", np.array([0, 1]), "none", w, np.array([5, -5]))
    y = rng.integers(-50, 50, size=(3, 4, 6))
    full = layers.apply_layer(y, layer)
    for ly in range(4):
        for lx in range(6):
            later = y.copy().reshape(3, -1)
            later[:, ly * 6 + lx:] = rng.integers(-50, 50, size=later[:, ly * 6 + lx:].shape)
            got = layers.context_at(later.reshape(y.shape), ly, lx, layer)
            assert got.tolist() == full[:, ly, lx].tolist()


def _random_layer(rng, kind, cin, cout, extreme, k=5, activation="none"):
    if kind in ("deconv", "conv"):
        shape = (cin, cout, k, k) if kind == "deconv" else (cout, cin, k, k)
        w = rng.integers(-32768, 32768, size=shape).astype(np.int16)
        slope = int(rng.choice([DEFAULT_LEAKY_SLOPE, 655, 1, (1 << 15) - 1, rng.integers(1, 1 << 15)]))
        return Layer(kind, rng.integers(0, 48, size=cout).astype(np.uint8), activation, w,
                     rng.integers(-(1 << 40), 1 << 40, size=cout), slope=slope)
    gmax = ((1 << 53) - 1 >> 30) // cin
    gamma = rng.integers(0, gmax + 1 if extreme else 1000, size=(cout, cin))
    room = (1 << 53) - 1 - (1 << 30) * gamma.sum(axis=1)
    return Layer(kind, rng.integers(0, 48, size=cout).astype(np.uint8), gamma=gamma.astype(np.int32),
                 beta=rng.integers(1, room + 1))


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 3), st.integers(1, 3), st.integers(1, 4), st.integers(1, 4),
       st.booleans(), st.sampled_from(layers.ACTIVATIONS), st.sampled_from([1, 3, 5]))
def test_layers_spec_reference_fast_agree(seed, cin, cout, h, w, extreme, activation, k):
    """Spec §5.2-5.8 pseudocode, the NumPy reference and the fast path give identical integers."""
    from conftest import spec_namespace

    ns = spec_namespace()
    rng = np.random.default_rng(seed)
    x = (rng.choice([ACT_MIN, ACT_MAX], size=(cin, h, w)) if extreme
         else rng.integers(ACT_MIN, ACT_MAX + 1, size=(cin, h, w))).astype(np.int64)
    d = _random_layer(rng, "deconv", cin, cout, extreme, activation=activation)
    acc = ns["ConvTranspose"](x.tolist(), d.weight.tolist(), d.bias.tolist())
    assert layers.conv_transpose(x, d.weight, d.bias).tolist() == acc
    if activation == "none":
        assert ns["Requantize"](acc, d.shift.tolist(), ACT_MIN, ACT_MAX) == ns["RequantizeMap"](
            acc, d.shift.tolist(), "none", d.slope)
    c = _random_layer(rng, "conv", cin, cout, extreme, k, activation)
    assert layers.conv(x, c.weight, c.bias).tolist() == ns["Conv"](x.tolist(), c.weight.tolist(),
                                                                         c.bias.tolist())
    g = _random_layer(rng, "igdn", cin, cin, extreme)
    for layer in (d, c, g):
        spec_layer = _spec_form(layer)
        want = ns["ApplyLayer"](x.tolist(), spec_layer)
        assert layers.apply_layer(x, layer).tolist() == want
        for simd in SIMD_MODES:
            with integer_simd(simd):
                assert fast.run_layers(x, [layer])[-1].tolist() == want
    p = layers.pointwise_at(x[:, 0, 0], _as_1x1(c))
    spec_1x1 = _spec_form(_as_1x1(c))
    assert p.tolist() == ns["PointwiseAt"](x[:, 0, 0].tolist(), spec_1x1)


def _as_1x1(layer):
    return dataclasses.replace(layer, weight=np.ascontiguousarray(layer.weight[:, :, :1, :1]), packed={})


def _spec_form(layer):
    """A layer as the spec's pseudocode takes it: a dict of its fields, arrays as lists."""
    return {"kind": layer.kind, "activation": layer.activation, "slope": layer.slope,
            **{k: v.tolist() for k, v in layer.tensors().items()}}


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 3), st.integers(1, 5), st.integers(1, 5))
def test_context_spec_and_reference_agree(seed, m, h, w):
    """spec §5.8 ContextAt and refcodec.decoder.layers.context_at, on every position of a random array."""
    from conftest import spec_namespace

    ns = spec_namespace()
    rng = np.random.default_rng(seed)
    layer = _random_layer(rng, "conv", m, 2 * m, False, 5, "none")
    weight = layer.weight.copy()
    for ky, kx in [(ky, kx) for ky in range(5) for kx in range(5) if (ky, kx) not in layers.CONTEXT_TAPS]:
        weight[:, :, ky, kx] = 0
    layer = dataclasses.replace(layer, weight=weight)
    y = rng.integers(ACT_MIN, ACT_MAX + 1, size=(m, h, w))
    spec_layer = _spec_form(layer)
    for ly in range(h):
        for lx in range(w):
            assert layers.context_at(y, ly, lx, layer).tolist() == ns["ContextAt"](y.tolist(), ly, lx, spec_layer)


def test_fast_igdn_at_norm_bound():
    """T = 2^53 - 1 exactly: the float estimate of the square root must still be corrected to the exact value."""
    c = 2
    gamma = np.full((c, c), ((1 << 53) - 1 >> 30) // c, dtype=np.int32)
    beta = (1 << 53) - 1 - (1 << 30) * gamma.astype(np.int64).sum(axis=1)
    x = np.full((c, 1, 1), ACT_MIN, dtype=np.int64)
    layer = Layer("igdn", np.array([20, 27], np.uint8), gamma=gamma, beta=beta)
    t = layers.igdn_norm(x, gamma, beta)
    assert t.max() == (1 << 53) - 1
    for simd in SIMD_MODES:
        with integer_simd(simd):
            assert fast.igdn(x, layer).tolist() == layers.igdn(x, gamma, beta, layer.shift).tolist()


@pytest.mark.skipif(not vnni.AVAILABLE, reason=vnni.STATUS)
@pytest.mark.parametrize("kind", ["deconv", "conv"])
def test_vnni_lanes_at_their_bound(kind):
    """The 32-bit lanes at their largest sums (refcodec.fast.vnni): inputs ACT_MIN, weights whose low byte
    is 255 (-32513 = -128 * 256 + 255) or whose high byte is -128 (-32768: x * hi = +2^22, so 128 pairs
    would reach 2^31), over 300 input channels (segments of MAX_PAIRS = 127 pairs, 127 and 23 pairs),
    5 output channels (not a multiple of MR) and 50 columns (more than one block of COLS)."""
    rng = np.random.default_rng(7)
    cin, cout, h, w = 300, 5, 3, 50
    x = np.full((cin, h, w), ACT_MIN, np.int64)
    x[:, 1, ::3] = ACT_MAX
    shape = (cin, cout, 5, 5) if kind == "deconv" else (cout, cin, 3, 3)
    weight = rng.choice(np.array([-1, 255, -32513, -32768], np.int16), size=shape)
    weight[(slice(None), 0) if kind == "deconv" else 0] = -32768
    layer = Layer(kind, np.full(cout, 20, np.uint8), "none", weight, rng.integers(-(1 << 40), 1 << 40, cout))
    with integer_simd(True):
        assert fast.convolution(x, layer).tolist() == layers.apply_layer(x, layer).tolist()


@pytest.mark.skipif(not vnni.AVAILABLE, reason=vnni.STATUS)
def test_vnni_igdn_many_channels():
    """IGDN on the kernel with 131 channels (66 pairs, the last one half empty) and gamma using all 23 bits."""
    rng = np.random.default_rng(8)
    c = 131
    x = rng.choice(np.array([ACT_MIN, ACT_MAX, -1, 0, 181], np.int64), size=(c, 2, 61))
    layer = _random_layer(rng, "igdn", c, c, True)
    assert layer.gamma.max() >= 1 << 15
    with integer_simd(True):
        got = fast.igdn(x, layer)
    assert got.tolist() == layers.igdn(x, layer.gamma, layer.beta, layer.shift).tolist()


def test_vnni_kernel_builds_wherever_the_cpu_has_it():
    """No AVX512-VNNI (or no JIT) is a reason to use the float64 path; a kernel that fails to build on a
    CPU that has it is a bug, and fails here instead of skipping the kernel tests (refcodec.fast.vnni)."""
    assert vnni.STATUS in (vnni.BUILT, vnni.NO_VNNI, vnni.NO_JIT), vnni.STATUS
