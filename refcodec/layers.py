"""Integer layers (spec §5), NumPy reference.

Feature maps are int64 arrays of shape (C, H, W) whose values lie in the
activation range ACT_MIN..ACT_MAX (spec §5.1). Every function here computes
exactly the formula of its clause; int64 never overflows because the model
file bounds of spec §6.4 hold (checked at load time by refcodec.model).
"""

import numpy as np

from .conventions import clip3, isqrt, round2

ACT_MIN, ACT_MAX = -(1 << 15), (1 << 15) - 1  # spec §5.1
PIX_MIN, PIX_MAX = 0, 255  # spec §5.5
KERNEL, STRIDE, PAD = 5, 2, 2  # spec §5.2


def conv_transpose(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """The 5x5 stride-2 transposed convolution of spec §5.2, in the dtype of ``x``.

    out[o][oy][ox] = bias[o] + sum over i, ky, kx with oy = 2*iy + ky - 2 and
    ox = 2*ix + kx - 2 of x[i][iy][ix] * weight[i][o][ky][kx]; output (Cout, 2H, 2W).
    Each kernel tap (ky, kx) adds its contribution on a stride-2 grid of an
    array padded by PAD on each side, which is then cropped. With int64 input
    this is the accumulator of spec §5.2; the encoder (Annex A) runs the same
    code in float32 for its float model.
    """
    _, h, w = x.shape
    cout = weight.shape[1]
    acc = np.zeros((cout, 2 * h + 2 * PAD, 2 * w + 2 * PAD), dtype=x.dtype)
    for ky in range(KERNEL):
        for kx in range(KERNEL):
            tap = np.tensordot(weight[:, :, ky, kx].astype(x.dtype), x, axes=([0], [0]))
            acc[:, ky : ky + 2 * h : STRIDE, kx : kx + 2 * w : STRIDE] += tap
    return acc[:, PAD : PAD + 2 * h, PAD : PAD + 2 * w] + bias.astype(x.dtype)[:, None, None]


def requantize(acc: np.ndarray, shift: np.ndarray, lo: int = ACT_MIN, hi: int = ACT_MAX) -> np.ndarray:
    """out = Clip3(lo, hi, Round2(acc, shift[c])) per channel c (spec §5.3)."""
    return clip3(lo, hi, round2(acc, shift.astype(np.int64)[:, None, None]))


def igdn_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """T[i] = beta[i] + sum_j gamma[i][j] * x[j]^2 at every position (spec §5.4)."""
    return beta.astype(np.int64)[:, None, None] + np.tensordot(gamma.astype(np.int64), x * x, axes=([1], [0]))


def igdn(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """Integer inverse GDN (spec §5.4): Clip3(ACT_MIN, ACT_MAX, Round2(x[i] * Isqrt(T[i]), shift[i]))."""
    return requantize(x * isqrt(igdn_norm(x, gamma, beta)), shift)


def deconv(x: np.ndarray, layer: dict, last: bool) -> np.ndarray:
    """A transposed-convolution layer with its requantisation (spec §5.2, §5.3, §5.5)."""
    acc = conv_transpose(x, layer["weight"], layer["bias"])
    return requantize(acc, layer["shift"], *((PIX_MIN, PIX_MAX) if last else (ACT_MIN, ACT_MAX)))


def synthesis(y_hat: np.ndarray, layers: list) -> list:
    """Run the synthesis transform (spec §8.4); returns the output of every layer."""
    outputs, x = [], y_hat.astype(np.int64)
    for k, layer in enumerate(layers):
        if layer["kind"] == "deconv":
            x = deconv(x, layer, last=k == len(layers) - 1)
        else:
            x = igdn(x, layer["gamma"], layer["beta"], layer["shift"])
        outputs.append(x)
    return outputs
