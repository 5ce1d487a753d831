"""Integer layers (spec §5), fast path: integer SIMD or tiles, or BLAS on exact integers, plus Numba kernels.

On a CPU with AVX512-VNNI (``INTEGER_SIMD``) the convolutions and IGDN sum their
products with refcodec.fast.vnni's kernel, or with its AMX-INT8 tile kernels
where the CPU has them (``MATRIX_SIMD``), whose exactness arguments are there;
their outputs are int16. Otherwise every value is an integer held in float64,
from the layers' input to their outputs, and sums of products run as float64
matrix products. That is exact, whatever the BLAS, its thread count or its
order of summation: every term and every partial sum of a layer is an integer
of magnitude at most 2^47 (convolutions) or 2^53 - 1 (IGDN norm), the bounds
a model file is checked against at load time (spec §6.4), and float64
represents every integer up to 2^53 exactly. On these paths Round2(a, s) is
computed as floor((a + 2^(s-1)) * 2^-s): the sum is an integer below 2^53 (|a|
< 2^47 and s <= 47; in IGDN |a| = |x| * Isqrt(T) < 2^15 * 2^27), multiplying by a
power of two is exact, and so is floor -- so the Numba kernels give the spec's integer
results bit for bit, and vectorise. The negative side of a leaky layer, Round2(a * slope,
s + 16), runs in int64 (|a * slope| < 2^62, spec §5.6), where float64 would round.
Every layer's output is a C-contiguous (C, H, W) array.
"""

import numpy as np
from numba import njit, prange

from refcodec.decoder.layers import ACT_MAX, ACT_MIN, KERNEL, LEAKY_BITS, PAD, PIX_MAX, PIX_MIN, Layer
from refcodec.fast import vnni

TILE_BYTES = 1 << 24  # im2col block size
INTEGER_SIMD = vnni.AVAILABLE  # convolutions and IGDN on AVX512-VNNI (refcodec.fast.vnni), else float64 BLAS
MATRIX_SIMD = vnni.AMX_AVAILABLE  # with INTEGER_SIMD: on AMX-INT8 tiles instead (refcodec.fast.vnni)
RANGES = {"none": (ACT_MIN, ACT_MAX), "relu": (0, ACT_MAX), "leaky": (ACT_MIN, ACT_MAX), "pixels": (PIX_MIN, PIX_MAX)}


@njit(cache=True, nogil=True)
def activate_value(a, s, lo, hi, slope):
    """spec §5.6 on one int64 accumulator: Clip3(lo, hi, Round2(a, s)); with ``slope`` > 0 (a leaky
    layer) a negative a becomes Round2(a * slope, s + LEAKY_BITS)."""
    if slope > 0 and a < 0:
        a *= slope
        s += LEAKY_BITS
    half = (np.int64(1) << (s - 1)) if s > 0 else np.int64(0)  # 2^(s-1); s <= 63, so never 1 << 63
    return min(max((a + half) >> s, lo), hi)


def leaky_slope(layer: Layer) -> int:
    """The ``slope`` argument of the kernels: the layer's slope if it is leaky, else 0 (spec §5.6)."""
    return layer.slope if layer.activation == "leaky" else 0


@njit(cache=True, nogil=True)
def _round2(a, scale, half):
    """Round2(a, s) for float64 a holding an integer, scale = 2^-s, half = 2^(s-1) (or 0 for s = 0)."""
    return np.floor((a + half) * scale)


@njit(cache=True, nogil=True)
def _round2_factors(s):
    """(scale, half) of :func:`_round2` for a shift s: (2^-s, 2^(s-1)), half 0 for s = 0."""
    return 0.5**s, np.float64((np.int64(1) << s) >> 1)


@njit(cache=True, nogil=True)
def _activate(acc, bias, shift, lo, hi, slope, out):
    """out = activate_value(acc + bias) over (C, H, W) float64 arrays of exact integers.

    (The kernels write into arrays NumPy allocated: measured 5x faster than
    allocating inside the kernel.)"""
    for c in range(acc.shape[0]):
        s = np.int64(shift[c])
        b = np.float64(bias[c])
        scale, half = _round2_factors(s)
        for y in range(acc.shape[1]):
            row, dst = acc[c, y], out[c, y]
            for i in range(acc.shape[2]):
                a = row[i] + b
                if slope > 0 and a < 0:
                    dst[i] = activate_value(np.int64(a), s, lo, hi, slope)
                else:
                    dst[i] = min(max(_round2(a, scale, half), lo), hi)


@njit(cache=True, nogil=True)
def _isqrt(t):
    """Isqrt(t) (spec §2) for a float64 t holding an integer below 2^53 (spec §6.4).

    sqrt is correctly rounded, so floor(sqrt(t)) is off by at most one; the two corrections
    (exact: r^2 < 2^53, and a rounded (r + 1)^2 still exceeds t whenever the exact one does)
    make it Isqrt(t)."""
    r = np.floor(np.sqrt(t))
    r -= 1.0 if r * r > t else 0.0
    return r + (1.0 if (r + 1.0) * (r + 1.0) <= t else 0.0)


@njit(cache=True, nogil=True)
def _igdn_value(x, t, scale, half):
    """Clip3(ACT_MIN, ACT_MAX, Round2(x * Isqrt(t), s)) (spec §5.4) for float64 x and norm t, (scale, half) of s."""
    return min(max(_round2(x * _isqrt(t), scale, half), ACT_MIN), ACT_MAX)


@njit(cache=True, nogil=True)
def _igdn_finish(x, t, shift, out):
    """out = :func:`_igdn_value` of x and t, per channel's shift; float64 (C, n) arrays."""
    for c in range(x.shape[0]):
        scale, half = _round2_factors(np.int64(shift[c]))
        xc, tc, dst = x[c], t[c], out[c]
        for i in range(x.shape[1]):
            dst[i] = _igdn_value(xc[i], tc[i], scale, half)


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


def _phases(layer: Layer):
    """The layer as stride-1 correlations: per phase, (row parity, column parity, offsets, weights).

    A convolution is one phase; its offsets (dy, dx) index the input padded by K // 2. The
    transposed convolution is four, one per parity of the output row and column (3x3, 3x2,
    2x3 and 2x2 taps of its kernel), whose offsets index the input padded by 1. ``weights``
    holds one (Cout, Cin) matrix per offset."""
    weight = layer.weight
    if layer.kind == "deconv":
        for py, px in ((0, 0), (0, 1), (1, 0), (1, 1)):
            taps = [(ky, kx, dy, dx) for ky, dy in _phase_taps(py) for kx, dx in _phase_taps(px)]
            yield py, px, [(dy, dx) for _, _, dy, dx in taps], [weight[:, :, ky, kx].T for ky, kx, _, _ in taps]
    else:
        k = weight.shape[2]
        yield 0, 0, [(ky, kx) for ky in range(k) for kx in range(k)], \
            [weight[:, :, ky, kx] for ky in range(k) for kx in range(k)]


def convolution(x: np.ndarray, layer: Layer) -> np.ndarray:
    """A convolution layer (spec §5.2 or §5.7) with its requantisation (§5.6).

    With AVX512-VNNI (``INTEGER_SIMD``), in 16-bit integer SIMD (:func:`_simd_convolution`).
    Otherwise in float64 BLAS: each phase of :func:`_phases` as im2col matrix products --
    or, for a transposed convolution with fewer outputs than inputs (the picture layer),
    :func:`_scatter_deconv`.
    """
    if INTEGER_SIMD:
        if MATRIX_SIMD and _amx_fits(layer):
            return _amx_convolution(x, layer)
        return _simd_convolution(x, layer)
    if layer.kind == "deconv" and layer.weight.shape[1] < layer.weight.shape[0]:
        return _scatter_deconv(x, layer)
    _, h, w = x.shape
    bias, shift = layer.bias, layer.shift
    lo, hi = RANGES[layer.activation]
    slope = leaky_slope(layer)
    scale, pad = _geometry(layer)
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    cout = bias.shape[0]
    out = np.empty((cout, scale * h, scale * w))
    for py, px, offsets, mats in _phases(layer):
        def emit(r0, r1, acc, py=py, px=px):
            _activate(acc.reshape(cout, r1 - r0, w), bias, shift, lo, hi, slope,
                      out[:, scale * r0 + py : scale * r1 : scale, px::scale])

        _gemm_rows(xp, offsets, np.concatenate(mats, axis=1).astype(np.float64), h, w, emit)
    return out


def _geometry(layer: Layer) -> tuple:
    """(output samples per input sample along each axis, padding of the input for :func:`_phases`)."""
    return (2, 1) if layer.kind == "deconv" else (1, layer.weight.shape[2] // 2)


def _packed(layer: Layer, key: str, pack):
    """pack(layer), computed once per layer and kept in it (``Layer.packed``): a layer's tensors are constant."""
    if key not in layer.packed:
        layer.packed[key] = pack(layer)
    return layer.packed[key]


def _simd_convolution(x: np.ndarray, layer: Layer) -> np.ndarray:
    """:func:`convolution` on refcodec.fast.vnni's kernel: int16 output."""
    _, h, w = x.shape
    scale, pad = _geometry(layer)
    hp, wp = h + 2 * pad, vnni.padded_width(w) + 2 * pad  # every kernel block reads inside
    xp = vnni.pack(x, pad, pad, hp, wp)
    lo, hi = RANGES[layer.activation]
    out = np.empty((layer.bias.shape[0], scale * h, scale * w), np.int16)
    phases = _packed(layer, "weight", lambda lay: [(py, px, offsets, *vnni.pack_weights(mats))
                                                   for py, px, offsets, mats in _phases(lay)])
    for py, px, offsets, weights, pairs in phases:
        _correlate(xp, weights, vnni.segments(offsets, pairs, wp), layer.bias, layer.shift,
                   lo, hi, leaky_slope(layer), out, py, px, scale)
    return out


@njit(cache=True, nogil=True, parallel=True)
def _correlate(xp, weights, seg, bias, shift, lo, hi, slope, out, y0, x0, step):
    """out[o, y0 + step*y, x0 + step*x] = activate_value(bias[o] + the kernel's sum) for every (y, x).

    One job per output row and block of vnni.MR channels, vnni.COLS columns per kernel call."""
    cout = out.shape[0]
    n_y, n_x = (out.shape[1] - y0 + step - 1) // step, (out.shape[2] - x0 + step - 1) // step
    pair_stride, row_stride = xp.shape[2] * 4, xp.shape[1] * xp.shape[2] * 4
    for job in prange(weights.shape[0] * n_y):
        b, y = job // n_y, job % n_y
        acc = np.empty((vnni.MR, vnni.COLS), np.int64)
        for c0 in range(0, n_x, vnni.COLS):
            acc[:] = 0
            vnni.block(xp.ctypes.data + y * row_stride + c0 * 4, weights[b].ctypes.data, acc.ctypes.data,
                       seg.shape[0] // 2, seg.ctypes.data, pair_stride, vnni.COLS * 8, 0)
            for r in range(min(vnni.MR, cout - b * vnni.MR)):
                o = b * vnni.MR + r
                s, row = np.int64(shift[o]), out[o, y0 + step * y]
                for i in range(min(vnni.COLS, n_x - c0)):
                    row[x0 + step * (c0 + i)] = activate_value(acc[r, i] + bias[o], s, lo, hi, slope)


def _scatter_deconv(x: np.ndarray, layer: Layer) -> np.ndarray:
    """The transposed convolution as one matrix product for all 25 taps, whose (Cout, H, W) results
    are then added onto the stride-2 output grid, tap by tap (cheap when Cout is small)."""
    cin, h, w = x.shape
    weight = layer.weight
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
    lo, hi = RANGES[layer.activation]
    _activate(acc[:, PAD : PAD + 2 * h, PAD : PAD + 2 * w], layer.bias, layer.shift, lo, hi,
              leaky_slope(layer), out)
    return out


def igdn(x: np.ndarray, layer: Layer) -> np.ndarray:
    """IGDN (spec §5.4): on refcodec.fast.vnni's kernel with ``INTEGER_SIMD``, else float64 BLAS."""
    if INTEGER_SIMD:
        return _amx_igdn(x, layer) if MATRIX_SIMD else _simd_igdn(x, layer)
    c = x.shape[0]
    flat = x.reshape(c, -1).astype(np.float64)
    t = layer.gamma.astype(np.float64) @ (flat * flat)
    t += layer.beta.astype(np.float64)[:, None]
    out = np.empty_like(flat)
    _igdn_finish(flat, t, layer.shift, out)
    return out.reshape(x.shape)


def _simd_igdn(x: np.ndarray, layer: Layer) -> np.ndarray:
    """T = beta + sum_j gamma * x^2 as four 1x1 kernel sums: gamma = G1 * 2^15 + G0 (G0 < 2^15,
    G1 <= 2^8: gamma < 2^23 by spec §6.4) times x^2 = A * 2^16 + B (vnni.pack_squares); int16 output."""
    wp = vnni.padded_width(x.shape[2])
    low, high = vnni.pack_squares(x, wp)
    g0, g1, pairs = _packed(layer, "gamma", _gamma_parts)
    out = np.empty(x.shape, np.int16)
    _igdn_sums(low, high, g0, g1, vnni.segments([(0, 0)], pairs, wp), layer.beta, layer.shift, x, out)
    return out


def _gamma_parts(layer: Layer) -> tuple:
    """gamma = G1 * 2^15 + G0 as the kernel's weights: (G0, G1, pairs)."""
    gamma = layer.gamma.astype(np.int64)
    g0, pairs = vnni.pack_weights([gamma & 0x7FFF])
    return g0, vnni.pack_weights([gamma >> 15])[0], pairs


@njit(cache=True, nogil=True, parallel=True)
def _igdn_sums(low, high, g0, g1, seg, beta, shift, x, out):
    """out = :func:`_igdn_value` of x and T = beta + the four sums of :func:`_simd_igdn`."""
    c, n_y, n_x = out.shape
    pair_stride, row_stride, n_seg = low.shape[2] * 4, low.shape[1] * low.shape[2] * 4, seg.shape[0] // 2
    blocks = g0.shape[0]
    for job in prange(blocks * n_y):
        y, b = job // blocks, job % blocks  # row after row: a row's squares stay in cache for every block
        acc = np.empty((vnni.MR, vnni.COLS), np.int64)
        for c0 in range(0, n_x, vnni.COLS):
            acc[:] = 0
            at = y * row_stride + c0 * 4
            for sq, g, scale in ((low, g0, 0), (high, g0, 16), (low, g1, 15), (high, g1, 31)):
                vnni.block(sq.ctypes.data + at, g[b].ctypes.data, acc.ctypes.data, n_seg, seg.ctypes.data,
                           pair_stride, vnni.COLS * 8, scale)
            for r in range(min(vnni.MR, c - b * vnni.MR)):
                o = b * vnni.MR + r
                scale, half = _round2_factors(np.int64(shift[o]))
                sums, xr, dst = acc[r], x[o, y], out[o, y]
                for i in range(min(vnni.COLS, n_x - c0)):
                    dst[c0 + i] = _igdn_value(np.float64(xr[c0 + i]), np.float64(beta[o] + sums[i]), scale, half)


def _amx_fits(layer: Layer) -> bool:
    """Whether every sum of the layer has at most vnni.MAX_KSTEPS tile products (always, for the layers of
    spec §6.3: at most 25 taps x 768 channels = 300 products)."""
    weight = layer.weight
    cin = weight.shape[0] if layer.kind == "deconv" else weight.shape[1]
    taps = 9 if layer.kind == "deconv" else weight.shape[2] ** 2
    return taps * -(-cin // vnni.KSTEP) <= vnni.MAX_KSTEPS


def _half(s: np.ndarray) -> np.ndarray:
    """2^(s-1) for s > 0, 0 for s = 0 (int64; s <= 63)."""
    return np.where(s > 0, np.left_shift(np.int64(1), np.maximum(s - 1, 0)), 0).astype(np.int64)


DECONV4 = 4  # transposed convolutions of at most this many output channels run as one correlation (amx_deconv4)


def _amx_convolution(x: np.ndarray, layer: Layer) -> np.ndarray:
    """:func:`convolution` on refcodec.fast.vnni's AMX kernels: int16 output."""
    c, h, w = x.shape
    scale, pad = _geometry(layer)
    groups, quads = -(-w // vnni.TILE), -(-c // vnni.KSTEP) * (vnni.KSTEP // 4)
    hp, wp = h + 2 * pad, groups * vnni.TILE + 2 * pad
    planes = vnni.pack_quads(x, pad, hp, wp, quads)
    weights, phases, offsets, params = _packed(layer, "amx", _amx_weights)
    seg = np.array([[(dy * quads * wp + dx) * 4, quads // 16] for dy, dx in offsets], np.int64)
    lo, hi = RANGES[layer.activation]
    out = np.empty((layer.bias.shape[0], scale * h, scale * w), np.int16)
    _amx_correlate(planes, weights, seg, phases, params, lo, hi, out, h, w, groups, scale)
    return out


def _amx_weights(layer: Layer) -> tuple:
    """The layer in the AMX kernels' layout: (weights, phases, offsets, params).

    weights (blocks of 16 output channels, bytes) uint8: per block, per phase, per tap, per product of
    64 input channels, A tiles of the high and the low bytes (vnni.amx_weight_tiles). phases: per phase
    (row parity, column parity, first tap, taps, byte offset of its weights in a block); offsets: the
    (dy, dx) of every tap, phase after phase; params (blocks, 6, 16) int64: per output channel the rows
    vnni.CONV_PARAMS: bias, then Round2's (half, shift) of a non-negative and of a negative accumulator and
    the multiplier of a negative one (spec §5.6: slope, s + 16 for a leaky layer; else 1, s).

    A transposed convolution of at most DECONV4 output channels (the picture layer) is one phase, row
    parity -1: a 3 x 3 correlation of the input padded by 1 whose 16 outputs are 8py + 4px + o, the output
    o of phase (py, px) (:func:`_phase_taps`: tap k of a phase of parity p reads offset (p + 4 - k) / 2;
    an offset a phase does not read has weight 0)."""
    tiles, phases, offsets, at, first = [], [], [], 0, 0
    cout = layer.bias.shape[0]
    if layer.kind == "deconv" and cout <= DECONV4:
        mats = []
        for dy in range(3):
            for dx in range(3):
                m = np.zeros((vnni.TILE, layer.weight.shape[0]), np.int64)
                for py in range(2):
                    for px in range(2):
                        ky, kx = py + 4 - 2 * dy, px + 4 - 2 * dx
                        if ky <= 4 and kx <= 4:
                            m[8 * py + 4 * px : 8 * py + 4 * px + cout] = layer.weight[:, :, ky, kx].T
                mats.append(m)
        layout = [(-1, 0, [(dy, dx) for dy in range(3) for dx in range(3)], mats)]
    else:
        layout = list(_phases(layer))
    for py, px, offs, mats in layout:
        t = vnni.amx_weight_tiles(mats)
        phases.append((py, px, first, len(offs), at))
        offsets += offs
        tiles.append(t.reshape(t.shape[0], -1))
        at += tiles[-1].shape[1]
        first += len(offs)
    s = layer.shift.astype(np.int64)
    slope = leaky_slope(layer)
    sn = s + LEAKY_BITS if slope else s
    params = np.stack([layer.bias.astype(np.int64), _half(s), s, _half(sn), sn, np.full_like(s, slope or 1)])
    params = np.pad(params, ((0, 0), (0, -s.shape[0] % vnni.TILE)), mode="edge")
    return (np.ascontiguousarray(np.concatenate(tiles, axis=1)), np.array(phases, np.int64), offsets,
            np.ascontiguousarray(params.reshape(6, -1, vnni.TILE).transpose(1, 0, 2)))


@njit(cache=True, nogil=True, parallel=True)
def _amx_correlate(planes, weights, seg, phases, params, lo, hi, out, h, w, groups, step):
    """out[o, step*y + py, step*x + px] = the requantised bias[o] + sums of phase (py, px) for every input row
    y < h, column x < w and phase (refcodec.fast.vnni.amx_conv; a transposed convolution, step 2:
    amx_deconv, both column phases at once; one of at most DECONV4 output channels: amx_deconv4, all four).
    One job per output row and block of 16 output channels (amx_deconv4: per input row)."""
    cout, out_h, out_w = out.shape
    blocks, kstride = weights.shape[0], planes.shape[3]
    row_bytes, plane_bytes = planes.shape[2] * kstride, planes.shape[1] * planes.shape[2] * kstride
    chan = out_h * out_w * 2
    four = phases[0, 0] < 0
    rows = h if four else out_h
    for job in prange(rows * blocks):
        oy, b = job // blocks, job % blocks
        y, py = (oy, 0) if four else (oy // step, oy % step)
        x = planes.ctypes.data + y * row_bytes
        o = out.ctypes.data + b * vnni.TILE * chan + step * y * out_w * 2 if four else (
            out.ctypes.data + b * vnni.TILE * chan + oy * out_w * 2)
        n_o = min(vnni.TILE, cout - b * vnni.TILE)
        wb = weights[b].ctypes.data
        if four:
            vnni.amx_deconv4(x, plane_bytes, kstride, 16 * kstride, wb, wb, groups, seg.ctypes.data, phases[0, 3], 0,
                             o, chan, out_w * 2, w, params[b].ctypes.data, cout, lo, hi)
        elif step == 1:
            first, taps, at = phases[0, 2], phases[0, 3], phases[0, 4]
            vnni.amx_conv(x, plane_bytes, kstride, 16 * kstride, wb + at, wb, groups, seg[first:].ctypes.data, taps,
                          0, o, chan, 0, w, params[b].ctypes.data, n_o, lo, hi)
        else:
            p0, p1 = phases[2 * py], phases[2 * py + 1]  # (py, 0) and (py, 1)
            vnni.amx_deconv(x, plane_bytes, kstride, 16 * kstride, wb + p0[4], wb + p1[4], groups,
                            seg[p0[2]:].ctypes.data, p0[3], p1[3], o, chan, 0, w, params[b].ctypes.data, n_o, lo, hi)


def _amx_igdn(x: np.ndarray, layer: Layer) -> np.ndarray:
    """IGDN on refcodec.fast.vnni's AMX kernel: T = beta + the sums of the bytes of gamma times the bytes of x^2;
    int16 output."""
    c, h, w = x.shape
    if x.dtype != np.int16 or x.strides[2] != 2:  # the kernel reads rows of int16 (channels and rows at any stride)
        x = np.ascontiguousarray(x, np.int16)
    gamma, params = _packed(layer, "amx", _amx_gamma)
    out = np.empty((c, h, w), np.int16)
    _amx_igdn_rows(gamma, params, x, out, -(-w // vnni.TILE))
    return out


def _amx_gamma(layer: Layer) -> tuple:
    """(gamma's A tiles (vnni.amx_gamma_tiles), params (blocks, 3, 16) int64): per channel the rows
    vnni.IGDN_PARAMS: beta, and the (scale, half) of :func:`_round2` as the bits of float64 values."""
    s = layer.shift.astype(np.int64)
    params = np.stack([layer.beta.astype(np.int64), (0.5**s).view(np.int64),
                       _half(s).astype(np.float64).view(np.int64)])
    params = np.pad(params, ((0, 0), (0, -s.shape[0] % vnni.TILE)), mode="edge")
    blocks = np.ascontiguousarray(params.reshape(3, -1, vnni.TILE).transpose(1, 0, 2))
    return vnni.amx_gamma_tiles(layer.gamma), blocks


@njit(cache=True, nogil=True, parallel=True)
def _amx_igdn_rows(gamma, params, x, out, groups):
    """out[o, y, x] = :func:`_igdn_value` of x[o, y, x] and T = beta[o] + the sums (refcodec.fast.vnni.amx_igdn).
    One job per row."""
    c, h, w = out.shape
    for y in prange(h):
        vnni.amx_igdn(x.ctypes.data + y * x.strides[1], x.strides[0], c, gamma.ctypes.data, gamma.shape[0],
                      gamma.shape[1], groups, w, out.ctypes.data + y * w * 2, h * w * 2, params.ctypes.data)


def run_layers(x: np.ndarray, layers: list) -> list:
    """As refcodec.decoder.layers.run_layers (spec §8.4, §8.7); its outputs hold their integers in int16 or float64.
    The integer kernels read their input in any integer or float dtype (the float64 path converts it)."""
    outputs = []
    if not INTEGER_SIMD:
        x = x.astype(np.float64)
    for layer in layers:
        x = igdn(x, layer) if layer.kind == "igdn" else convolution(x, layer)
        outputs.append(x)
    return outputs
