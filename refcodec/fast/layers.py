"""Integer layers (spec §5), fast path: BLAS on exact integers plus Numba kernels.

Sums of products run as float64 matrix products. That is exact, whatever the
BLAS, its thread count or its order of summation: every term and every
partial sum is an integer of magnitude at most 2^47 (deconvolution) or
2^53 - 1 (IGDN norm), the bounds a model file is checked against at load time
(spec §6.4), and float64 represents every integer up to 2^53 exactly. The
rounding, clamping and square roots then run in int64 in Numba kernels.
"""

import numpy as np
from numba import njit

from ..layers import ACT_MAX, ACT_MIN, PIX_MAX, PIX_MIN, conv_transpose


@njit(cache=True, nogil=True)
def _requantize(acc, shift, lo, hi):
    """Clip3(lo, hi, Round2(acc[c, i], shift[c])) (spec §5.3) on a (C, n) int64 array."""
    out = np.empty_like(acc)
    for c in range(acc.shape[0]):
        s = np.int64(shift[c])
        half = (np.int64(1) << s) >> 1
        for i in range(acc.shape[1]):
            out[c, i] = min(max((acc[c, i] + half) >> s, lo), hi)
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


def deconv(x: np.ndarray, layer: dict, last: bool) -> np.ndarray:
    acc = conv_transpose(x.astype(np.float64), layer["weight"], layer["bias"]).astype(np.int64)
    lo, hi = (PIX_MIN, PIX_MAX) if last else (ACT_MIN, ACT_MAX)
    c = acc.shape[0]
    return _requantize(acc.reshape(c, -1), layer["shift"], lo, hi).reshape(acc.shape)


def igdn(x: np.ndarray, layer: dict) -> np.ndarray:
    c = x.shape[0]
    flat = x.reshape(c, -1)
    sq = (flat * flat).astype(np.float64)
    t = (layer["gamma"].astype(np.float64) @ sq + layer["beta"].astype(np.float64)[:, None]).astype(np.int64)
    return _igdn_finish(flat, t, layer["shift"]).reshape(x.shape)


def synthesis(y_hat: np.ndarray, layers: list) -> list:
    """Same contract as refcodec.layers.synthesis (spec §8.4)."""
    outputs, x = [], y_hat.astype(np.int64)
    for k, layer in enumerate(layers):
        x = deconv(x, layer, k == len(layers) - 1) if layer["kind"] == "deconv" else igdn(x, layer)
        outputs.append(x)
    return outputs
