"""Integer layers (spec §5), fast path: BLAS on exact integers plus Numba kernels.

Every value is an integer held in float64, from the layers' input to their
outputs. Sums of products run as float64 matrix products. That is exact,
whatever the BLAS, its thread count or its order of summation: every term and
every partial sum of a layer is an integer of magnitude at most 2^47
(convolutions) or 2^53 - 1 (IGDN norm), the bounds a model file is checked
against at load time (spec §6.4), and float64 represents every integer up to
2^53 exactly. Round2(a, s) is computed as floor((a + 2^(s-1)) * 2^-s): the sum
is an integer below 2^53 (|a| < 2^47 and s + LEAKY_SHIFT <= 53; in IGDN |a| =
|x| * Isqrt(T) < 2^15 * 2^27), multiplying by a power of two is exact, and so
is floor -- so the Numba kernels give the spec's integer results bit for bit,
and vectorise.
"""

import numpy as np
from numba import njit

from ..layers import ACT_MAX, ACT_MIN, KERNEL, LEAKY_SHIFT, PAD, PIX_MAX, PIX_MIN

TILE_BYTES = 1 << 24  # im2col block size
RANGES = {"none": (ACT_MIN, ACT_MAX), "relu": (0, ACT_MAX), "leaky": (ACT_MIN, ACT_MAX), "pixels": (PIX_MIN, PIX_MAX)}


@njit(cache=True, nogil=True)
def activate_value(a, s, lo, hi, leaky):
    """spec §5.6 on one accumulator: Clip3(lo, hi, Round2(a, s)), s + LEAKY_SHIFT for a < 0 if leaky."""
    if leaky and a < 0:
        s += LEAKY_SHIFT
    v = (a + ((np.int64(1) << s) >> 1)) >> s
    return min(max(v, lo), hi)


@njit(cache=True, nogil=True)
def _round2(a, scale, half):
    """Round2(a, s) for float64 a holding an integer, scale = 2^-s, half = 2^(s-1) (or 0 for s = 0)."""
    return np.floor((a + half) * scale)


@njit(cache=True, nogil=True)
def _activate(acc, bias, shift, lo, hi, leaky, out):
    """out = activate_value(acc + bias) over (C, H, W) float64 arrays of exact integers.

    (The kernels write into arrays NumPy allocated: measured 5x faster than
    allocating inside the kernel.)"""
    for c in range(acc.shape[0]):
        s = np.int64(shift[c])
        b = np.float64(bias[c])
        scale, half = 0.5**s, np.float64((np.int64(1) << s) >> 1)
        scale_neg, half_neg = (0.5 ** (s + LEAKY_SHIFT), np.float64(np.int64(1) << (s + LEAKY_SHIFT - 1))) \
            if leaky else (scale, half)
        for y in range(acc.shape[1]):
            row, dst = acc[c, y], out[c, y]
            for i in range(acc.shape[2]):
                a = row[i] + b
                v = _round2(a, scale_neg, half_neg) if a < 0 else _round2(a, scale, half)
                dst[i] = min(max(v, lo), hi)


@njit(cache=True, nogil=True)
def _igdn_finish(x, t, shift, out):
    """out = Clip3(ACT_MIN, ACT_MAX, Round2(x * Isqrt(t), shift)) (spec §5.4); float64 (C, n) arrays.

    t is below 2^53 (spec §6.4) and sqrt is correctly rounded, so floor(sqrt(t)) is off
    by at most one; the two corrections (exact: r^2 < 2^53, and a rounded (r + 1)^2 still
    exceeds t whenever the exact one does) make it Isqrt(t).
    """
    for c in range(x.shape[0]):
        s = np.int64(shift[c])
        scale, half = 0.5**s, np.float64((np.int64(1) << s) >> 1)
        xc, tc, dst = x[c], t[c], out[c]
        for i in range(x.shape[1]):
            v = tc[i]
            r = np.floor(np.sqrt(v))
            r -= 1.0 if r * r > v else 0.0
            r += 1.0 if (r + 1.0) * (r + 1.0) <= v else 0.0
            dst[i] = min(max(_round2(xc[i] * r, scale, half), ACT_MIN), ACT_MAX)


def _phase_taps(parity: int) -> list:
    """(tap k, row offset into the input padded by 1) of the 5x5 stride-2 transposed convolution
    for the output rows (or columns) of ``parity``: output 2a + parity takes input a + 1 - (k - parity) // 2."""
    return [(k, (parity + 4 - k) // 2) for k in range(parity, KERNEL, 2)]


def _gemm_rows(xp: np.ndarray, offsets: list, weights: np.ndarray, h: int, w: int, emit) -> None:
    """For blocks of rows r0..r1 of an h x w output: im2col of ``xp`` at the (dy, dx) ``offsets``,
    one matrix product with ``weights`` (Cout, len(offsets) * Cin), then ``emit(r0, r1, product)``."""
    cin = xp.shape[0]
    rows = max(1, TILE_BYTES // (8 * len(offsets) * cin * w))
    for r0 in range(0, h, rows):
        r1 = min(h, r0 + rows)
        cols = np.empty((len(offsets), cin, r1 - r0, w))
        for t, (dy, dx) in enumerate(offsets):
            cols[t] = xp[:, r0 + dy : r1 + dy, dx : dx + w]
        emit(r0, r1, weights @ cols.reshape(-1, (r1 - r0) * w))


def convolution(x: np.ndarray, layer: dict) -> np.ndarray:
    """A convolution layer (spec §5.2 or §5.7) with its requantisation (§5.6).

    The transposed convolution runs as four stride-1 convolutions, one per parity of the
    output row and column (3x3, 3x2, 2x3 and 2x2 taps), each an im2col matrix product --
    or, with fewer outputs than inputs (the picture layer), as :func:`_scatter_deconv`.
    """
    if layer["kind"] == "deconv" and layer["weight"].shape[1] < layer["weight"].shape[0]:
        return _scatter_deconv(x, layer)
    _, h, w = x.shape
    weight, bias, shift = layer["weight"], layer["bias"], layer["shift"]
    lo, hi = RANGES[layer["activation"]]
    leaky = layer["activation"] == "leaky"
    deconv = layer["kind"] == "deconv"
    cout = weight.shape[1] if deconv else weight.shape[0]
    pad = 1 if deconv else weight.shape[2] // 2
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    scale = 2 if deconv else 1
    out = np.empty((cout, scale * h, scale * w))
    phases = [(py, px) for py in (0, 1) for px in (0, 1)] if deconv else [(0, 0)]
    for py, px in phases:
        if deconv:
            taps = [(ky, kx, dy, dx) for ky, dy in _phase_taps(py) for kx, dx in _phase_taps(px)]
            mats = [weight[:, :, ky, kx].T for ky, kx, _, _ in taps]
        else:
            k = weight.shape[2]
            taps = [(ky, kx, ky, kx) for ky in range(k) for kx in range(k)]
            mats = [weight[:, :, ky, kx] for ky, kx, _, _ in taps]
        weights = np.concatenate(mats, axis=1).astype(np.float64)

        def emit(r0, r1, acc, py=py, px=px):
            _activate(acc.reshape(cout, r1 - r0, w), bias, shift, lo, hi, leaky,
                      out[:, scale * r0 + py : scale * r1 : scale, px::scale])

        _gemm_rows(xp, [(dy, dx) for _, _, dy, dx in taps], weights, h, w, emit)
    return out


def _scatter_deconv(x: np.ndarray, layer: dict) -> np.ndarray:
    """The transposed convolution as one matrix product for all 25 taps, whose (Cout, H, W) results
    are then added onto the stride-2 output grid, tap by tap (cheap when Cout is small)."""
    cin, h, w = x.shape
    weight = layer["weight"]
    cout = weight.shape[1]
    taps = weight.transpose(2, 3, 1, 0).reshape(KERNEL * KERNEL * cout, cin).astype(np.float64)
    acc = np.zeros((cout, 2 * h + 2 * PAD, 2 * w + 2 * PAD))
    rows = max(1, TILE_BYTES // (8 * KERNEL * KERNEL * cout * w))
    for r0 in range(0, h, rows):
        r1 = min(h, r0 + rows)
        product = (taps @ x[:, r0:r1].reshape(cin, -1)).reshape(KERNEL, KERNEL, cout, r1 - r0, w)
        for ky in range(KERNEL):
            for kx in range(KERNEL):
                acc[:, 2 * r0 + ky : 2 * r1 + ky : 2, kx : kx + 2 * w : 2] += product[ky, kx]
    out = np.empty((cout, 2 * h, 2 * w))
    lo, hi = RANGES[layer["activation"]]
    _activate(acc[:, PAD : PAD + 2 * h, PAD : PAD + 2 * w], layer["bias"], layer["shift"], lo, hi,
              layer["activation"] == "leaky", out)
    return out


def igdn(x: np.ndarray, layer: dict) -> np.ndarray:
    c = x.shape[0]
    flat = x.reshape(c, -1)
    t = layer["gamma"].astype(np.float64) @ (flat * flat)
    t += layer["beta"].astype(np.float64)[:, None]
    out = np.empty_like(flat)
    _igdn_finish(flat, t, layer["shift"], out)
    return out.reshape(x.shape)


def run_layers(x: np.ndarray, layers: list) -> list:
    """As refcodec.layers.run_layers (spec §8.4, §8.7), but its outputs hold their integers in float64."""
    outputs, x = [], x.astype(np.float64)
    for layer in layers:
        x = igdn(x, layer) if layer["kind"] == "igdn" else convolution(x, layer)
        outputs.append(x)
    return outputs
