"""Integer layers (spec §5), fast path: BLAS on exact integers plus Numba kernels.

Sums of products run as float64 matrix products. That is exact, whatever the
BLAS, its thread count or its order of summation: every term and every
partial sum is an integer of magnitude at most 2^47 (convolutions) or
2^53 - 1 (IGDN norm), the bounds a model file is checked against at load time
(spec §6.4), and float64 represents every integer up to 2^53 exactly. The
rounding, clamping and square roots then run in int64 in Numba kernels.
"""

import numpy as np
from numba import njit

from ..layers import ACT_MAX, ACT_MIN, LEAKY_SHIFT, PIX_MAX, PIX_MIN, conv, conv_transpose

RANGES = {"none": (ACT_MIN, ACT_MAX), "relu": (0, ACT_MAX), "leaky": (ACT_MIN, ACT_MAX), "pixels": (PIX_MIN, PIX_MAX)}


@njit(cache=True, nogil=True)
def activate_value(a, s, lo, hi, leaky):
    """spec §5.6 on one accumulator: Clip3(lo, hi, Round2(a, s)), s + LEAKY_SHIFT for a < 0 if leaky."""
    if leaky and a < 0:
        s += LEAKY_SHIFT
    v = (a + ((np.int64(1) << s) >> 1)) >> s
    return min(max(v, lo), hi)


@njit(cache=True, nogil=True)
def _activate(acc, shift, lo, hi, leaky):
    """activate_value over a (C, n) int64 array with a shift per channel."""
    out = np.empty_like(acc)
    for c in range(acc.shape[0]):
        s = np.int64(shift[c])
        for i in range(acc.shape[1]):
            out[c, i] = activate_value(acc[c, i], s, lo, hi, leaky)
    return out


@njit(cache=True, nogil=True)
def _igdn_finish(x, t, shift):
    """Clip3(ACT_MIN, ACT_MAX, Round2(x * Isqrt(t), shift)) (spec §5.4) on (C, n) int64 arrays.

    Isqrt: float64 holds t < 2^53 exactly and sqrt is correctly rounded, so the
    estimate is off by at most one; the integer corrections make it exact.
    """
    out = np.empty_like(x)
    for c in range(x.shape[0]):
        s = np.int64(shift[c])
        half = (np.int64(1) << s) >> 1
        for i in range(x.shape[1]):
            v = t[c, i]
            r = np.int64(np.sqrt(np.float64(v)))
            while r * r > v:
                r -= 1
            while (r + 1) * (r + 1) <= v:
                r += 1
            out[c, i] = min(max((x[c, i] * r + half) >> s, ACT_MIN), ACT_MAX)
    return out


def convolution(x: np.ndarray, layer: dict) -> np.ndarray:
    """A convolution layer (spec §5.2 or §5.7) with its requantisation (§5.6)."""
    transform = conv_transpose if layer["kind"] == "deconv" else conv
    acc = transform(x.astype(np.float64), layer["weight"], layer["bias"]).astype(np.int64)
    lo, hi = RANGES[layer["activation"]]
    c = acc.shape[0]
    return _activate(acc.reshape(c, -1), layer["shift"], lo, hi, layer["activation"] == "leaky").reshape(acc.shape)


def igdn(x: np.ndarray, layer: dict) -> np.ndarray:
    c = x.shape[0]
    flat = x.reshape(c, -1)
    sq = (flat * flat).astype(np.float64)
    t = (layer["gamma"].astype(np.float64) @ sq + layer["beta"].astype(np.float64)[:, None]).astype(np.int64)
    return _igdn_finish(flat, t, layer["shift"]).reshape(x.shape)


def run_layers(x: np.ndarray, layers: list) -> list:
    """Same contract as refcodec.layers.run_layers (spec §8.4, §8.7)."""
    outputs, x = [], x.astype(np.int64)
    for layer in layers:
        x = igdn(x, layer) if layer["kind"] == "igdn" else convolution(x, layer)
        outputs.append(x)
    return outputs
