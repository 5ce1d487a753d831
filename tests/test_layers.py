"""Spec §5: integer layers. Exact small cases, spec pseudocode vs reference vs fast."""

import numpy as np
from hypothesis import given, settings, strategies as st

from refcodec import layers
from refcodec.fast import layers as fast
from refcodec.layers import ACT_MAX, ACT_MIN


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


def _random_layer(rng, kind, cin, cout, extreme):
    if kind == "deconv":
        w = rng.integers(-32768, 32768, size=(cin, cout, 5, 5)).astype(np.int16)
        return {"kind": kind, "weight": w, "bias": rng.integers(-(1 << 40), 1 << 40, size=cout),
                "shift": rng.integers(0, 48, size=cout).astype(np.uint8)}
    gmax = ((1 << 53) - 1 >> 30) // cin
    gamma = rng.integers(0, gmax + 1 if extreme else 1000, size=(cout, cin))
    room = (1 << 53) - 1 - (1 << 30) * gamma.sum(axis=1)
    return {"kind": kind, "gamma": gamma.astype(np.int32), "beta": rng.integers(1, room + 1),
            "shift": rng.integers(0, 48, size=cout).astype(np.uint8)}


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 3), st.integers(1, 3), st.integers(1, 4), st.integers(1, 4),
       st.booleans())
def test_layers_spec_reference_fast_agree(seed, cin, cout, h, w, extreme):
    """Spec §5.2-5.4 pseudocode, the NumPy reference and the fast path give identical integers."""
    from conftest import spec_namespace

    ns = spec_namespace()
    rng = np.random.default_rng(seed)
    x = (rng.choice([ACT_MIN, ACT_MAX], size=(cin, h, w)) if extreme
         else rng.integers(ACT_MIN, ACT_MAX + 1, size=(cin, h, w))).astype(np.int64)
    d = _random_layer(rng, "deconv", cin, cout, extreme)
    acc = ns["ConvTranspose"](x.tolist(), d["weight"].tolist(), d["bias"].tolist())
    want = ns["Requantize"](acc, d["shift"].tolist(), ACT_MIN, ACT_MAX)
    assert layers.conv_transpose(x, d["weight"], d["bias"]).tolist() == acc
    assert layers.deconv(x, d, last=False).tolist() == want
    assert fast.deconv(x, d, last=False).tolist() == want
    g = _random_layer(rng, "igdn", cin, cin, extreme)
    want = ns["Igdn"](x.tolist(), g["gamma"].tolist(), g["beta"].tolist(), g["shift"].tolist())
    assert layers.igdn(x, g["gamma"], g["beta"], g["shift"]).tolist() == want
    assert fast.igdn(x, g).tolist() == want


def test_fast_igdn_at_norm_bound():
    """T = 2^53 - 1 exactly: the float estimate of the square root must still be corrected to the exact value."""
    c = 2
    gamma = np.full((c, c), ((1 << 53) - 1 >> 30) // c, dtype=np.int32)
    beta = (1 << 53) - 1 - (1 << 30) * gamma.astype(np.int64).sum(axis=1)
    x = np.full((c, 1, 1), ACT_MIN, dtype=np.int64)
    layer = {"kind": "igdn", "gamma": gamma, "beta": beta, "shift": np.array([20, 27], np.uint8)}
    t = layers.igdn_norm(x, gamma, beta)
    assert t.max() == (1 << 53) - 1
    assert fast.igdn(x, layer).tolist() == layers.igdn(x, gamma, beta, layer["shift"]).tolist()
