"""Integer layers (spec §5), NumPy reference.

Feature maps are int64 arrays of shape (C, H, W) whose values lie in the
activation range ACT_MIN..ACT_MAX (spec §5.1). Every function here computes
exactly the formula of its clause; int64 never overflows because the model
file bounds of spec §6.4 hold (checked at load time by refcodec.decoder.model).

A layer is a frozen ``Layer`` (refcodec.decoder.model builds them from the
model file, spec §6.3): ``kind`` "deconv" (§5.2), "conv" (§5.7) or "igdn"
(§5.4); the convolutions carry ``weight``, ``bias``, ``shift``, ``activation``
and the model's leaky ``slope`` (§5.6), IGDN carries ``gamma``, ``beta`` and ``shift``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from refcodec.decoder.conventions import clause, clip3, isqrt, round2

ACT_MIN, ACT_MAX = -(1 << 15), (1 << 15) - 1  # spec §5.1
PIX_MIN, PIX_MAX = 0, 255  # spec §5.5
KERNEL, STRIDE, PAD = 5, 2, 2  # spec §5.2
LEAKY_BITS = 16  # spec §5.6: the leaky ReLU's negative slope is slope * 2^-16
DEFAULT_LEAKY_SLOPE = 1024  # spec §5.6: 2^-6, the slope of a model without leaky_slope (editions 2 to 4)
ACTIVATIONS = ("none", "relu", "leaky", "pixels")  # spec §5.6
CONTEXT_TAPS = [(ky, kx) for ky in range(KERNEL) for kx in range(KERNEL) if ky < 2 or (ky == 2 and kx < 2)]  # §5.8


@dataclass(frozen=True, eq=False)
class Layer:
    """One layer of spec §6.3 and its tensors (read-only arrays).

    ``packed`` holds forms of the tensors that another implementation computes
    from them once (refcodec.fast: kernel layouts), so they live exactly as long
    as the layer.
    """

    kind: str
    shift: np.ndarray
    activation: str = "none"
    # The tensors of the layer's kind are arrays, the others None (typed Any: every use knows the kind).
    weight: Any = None
    bias: Any = None
    gamma: Any = None
    beta: Any = None
    slope: int = DEFAULT_LEAKY_SLOPE
    packed: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        for array in self.tensors().values():
            array.flags.writeable = False

    def tensors(self) -> dict:
        """part -> array of the tensors this layer has (spec §6.3: weight, bias, shift or gamma, beta, shift)."""
        parts = ("weight", "bias", "shift", "gamma", "beta")
        return {p: getattr(self, p) for p in parts if getattr(self, p) is not None}


@clause("5.2")
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


@clause("5.7")
def conv(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """The KxK stride-1 convolution of spec §5.7 (K odd, zero padding K // 2), in the dtype of ``x``.

    out[o][y][x] = bias[o] + sum over i, ky, kx of x[i][y + ky - K//2][x + kx - K//2] * weight[o][i][ky][kx],
    samples outside the map being 0; weight (Cout, Cin, K, K), output (Cout, H, W).
    """
    _, h, w = x.shape
    k = weight.shape[2]
    p = k // 2
    xp = np.pad(x, ((0, 0), (p, p), (p, p)))
    acc = np.zeros((weight.shape[0], h, w), dtype=x.dtype)
    for ky in range(k):
        for kx in range(k):
            acc += np.tensordot(weight[:, :, ky, kx].astype(x.dtype), xp[:, ky : ky + h, kx : kx + w], axes=([1], [0]))
    return acc + bias.astype(x.dtype)[:, None, None]


def channel_shift(shift: np.ndarray, ndim: int) -> np.ndarray:
    """A per-channel shift shaped to broadcast over axis 0 of an ``ndim``-D array."""
    return shift.astype(np.int64).reshape((-1,) + (1,) * (ndim - 1))


@clause("5.3")
def requantize(acc: np.ndarray, shift: np.ndarray, lo: int = ACT_MIN, hi: int = ACT_MAX) -> np.ndarray:
    """out = Clip3(lo, hi, Round2(acc, shift[c])) per channel c on axis 0 (spec §5.3)."""
    return clip3(lo, hi, round2(acc, channel_shift(shift, acc.ndim)))


@clause("5.6")
def requantize_value(a: np.ndarray, shift: np.ndarray, activation: str, slope: int) -> np.ndarray:
    """RequantizeValue (spec §5.6), element-wise on int64 ``a`` with ``shift`` broadcasting against it.

    none: Clip3(ACT_MIN, ACT_MAX, Round2(a, shift)); relu: clamped at 0 instead of
    ACT_MIN; leaky: a negative a becomes Round2(a * slope, shift + LEAKY_BITS); pixels:
    Clip3(0, 255, ...) (spec §5.5). (|a * slope| < 2^62: no int64 overflow.)
    """
    lo, hi = {"relu": (0, ACT_MAX), "pixels": (PIX_MIN, PIX_MAX)}.get(activation, (ACT_MIN, ACT_MAX))
    if activation == "leaky":
        negative = round2(np.minimum(a, 0) * slope, shift + LEAKY_BITS)  # used where a < 0 only
        return clip3(lo, hi, np.where(a < 0, negative, round2(a, shift)))
    return clip3(lo, hi, round2(a, shift))


@clause("5.6")
def requantize_map(acc: np.ndarray, shift: np.ndarray, activation: str, slope: int) -> np.ndarray:
    """RequantizeMap (spec §5.6): ``requantize_value`` with shift[c] for channel c on axis 0."""
    return requantize_value(acc, channel_shift(shift, acc.ndim), activation, slope)


def igdn_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """T[i] = beta[i] + sum_j gamma[i][j] * x[j]^2 at every position (spec §5.4)."""
    return beta.astype(np.int64)[:, None, None] + np.tensordot(gamma.astype(np.int64), x * x, axes=([1], [0]))


@clause("5.4")
def igdn(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """Integer inverse GDN (spec §5.4): Clip3(ACT_MIN, ACT_MAX, Round2(x[i] * Isqrt(T[i]), shift[i]))."""
    return requantize(x * isqrt(igdn_norm(x, gamma, beta)), shift)


@clause("5.7")
def apply_layer(x: np.ndarray, layer: Layer) -> np.ndarray:
    """One layer: a convolution (§5.2, §5.7) with its requantisation (§5.6), or an IGDN (§5.4)."""
    if layer.kind == "igdn":
        return igdn(x, layer.gamma, layer.beta, layer.shift)
    transform = conv_transpose if layer.kind == "deconv" else conv
    return requantize_map(transform(x, layer.weight, layer.bias), layer.shift, layer.activation, layer.slope)


@clause("5.7")
def run_layers(x: np.ndarray, layers: list) -> list:
    """Apply ``layers`` in order (spec §8.4, §8.7); returns the output of every layer (int64;
    refcodec.fast.layers returns the same integers in int16 or float64)."""
    outputs, x = [], x.astype(np.int64)
    for layer in layers:
        x = apply_layer(x, layer)
        outputs.append(x)
    return outputs


@clause("5.8")
def context_at(y_hat: np.ndarray, ly: int, lx: int, layer: Layer) -> np.ndarray:
    """The masked 5x5 context convolution at latent position (ly, lx) (spec §5.8), requantised.

    Only the 12 taps CONTEXT_TAPS (the rows above, and the two samples to the left)
    contribute; samples outside the latent array are 0.
    """
    _, lat_h, lat_w = y_hat.shape
    acc = layer.bias.astype(np.int64).copy()
    for ky, kx in CONTEXT_TAPS:
        sy, sx = ly + ky - PAD, lx + kx - PAD
        if 0 <= sy < lat_h and 0 <= sx < lat_w:
            acc += layer.weight[:, :, ky, kx].astype(np.int64) @ y_hat[:, sy, sx]
    return requantize_map(acc, layer.shift, layer.activation, layer.slope)


@clause("5.8")
def pointwise_at(v: np.ndarray, layer: Layer) -> np.ndarray:
    """PointwiseAt (spec §5.8): a 1x1 convolution (spec §5.7 with K = 1) at one position: Cin values -> Cout values."""
    acc = layer.bias.astype(np.int64) + layer.weight[:, :, 0, 0].astype(np.int64) @ v
    return requantize_map(acc, layer.shift, layer.activation, layer.slope)
