"""Joint-architecture latent decoding (spec §8.10), fast path: Numba kernels on AVX512-VNNI, or in float64.

Decoding is sequential over latent positions: the scales and means at a
position depend on the latents decoded before it. Per position in raster order
the kernels run the masked context convolution (spec §5.8), the three 1x1
entropy-parameter layers (spec §5.7), the table selection (spec §8.8) and the
rANS decoding of the M values there (spec §3), exactly as
refcodec.decoder.latents.LatentReader.joint_rows does, on a range of latent
rows with the rANS state carried from call to call, so that
refcodec.decoder.bands.JointLatents can decode rows just ahead of the synthesis
band that needs them (ŷ in an s16 window of rows). The encoder runs the same loop
(``code_joint``, as refcodec.encoder.latents.code_joint), choosing each value from
its latent (Annex A.1.4) instead of decoding it.

With AVX512-VNNI (refcodec.fast.layers.INTEGER_SIMD), most of that work leaves the
sequential loop: of the context's 12 taps, the 10 in the two rows above depend only
on rows already decoded, and of the first entropy-parameter layer's 4M inputs the 2M
hyper parameters are known in advance, so for each latent row both partial sums
(bias included) are computed for every position at once, as int64, by the
convolution kernel of refcodec.fast.vnni (``_row_sums``); the sequential loop
(``_vnni_row``) adds to them the two taps to the left and runs the other products
as matrix-vector products on refcodec.fast.vnni's ``matvec`` kernel (int16 weights
and inputs, the inputs split in bytes; the requantisation of spec §5.6 in the
kernel). Every partial sum is an integer below 2^47 (spec §6.4) and int64 holds it
exactly, so splitting a sum cannot change it (the kernels' lane bounds are argued
in refcodec.fast.vnni). Without it (``_loop``) sums of products are float64: every
partial sum is an integer of magnitude below 2^47, so they are exact in any order --
which is why that kernel may let the compiler reorder them (fastmath reassociation,
for vectorised sums). Single-threaded, so the thread count cannot matter.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from refcodec.decoder.errors import StreamError
from refcodec.decoder.layers import ACT_MAX, ACT_MIN, CONTEXT_TAPS, LEAKY_BITS, PAD
from refcodec.encoder.latents import choose_value
from refcodec.fast import layers as fast_layers
from refcodec.fast import vnni
from refcodec.fast.layers import activate_value
from refcodec.fast.rans import OK, OUT_OF_RANGE, ValueReader, decode_value

_choose_value = njit(cache=True, nogil=True)(choose_value)


@njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
def _dense(v, w, b, s, slope, out):
    """A 1x1 convolution at one position (spec §5.7), requantised (spec §5.6; slope 0: not leaky)."""
    for o in range(w.shape[0]):
        acc = b[o]
        for i in range(w.shape[1]):
            acc += w[o, i] * v[i]
        out[o] = activate_value(np.int64(acc), np.int64(s[o]), ACT_MIN, ACT_MAX, slope)


@njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
def _loop(words, x, p, r0, r1, targets, params, params_lo, taps, ctx_w, ctx_b, ctx_s, w0, b0, s0, w1, b1, s1,
          w2, b2, s2, slope, bound, cdf, cdf_length, offset, lut, mean_shift, y, y_lo, values, rows):
    """Latent rows r0 .. r1 - 1 in raster order of positions, into y[ly - y_lo, lx, c]; (code, aux, x, p), the
    code and aux as refcodec.fast.rans, (x, p) the rANS state (spec §3.1) after the last value decoded.

    ``params[c, ly - params_lo, lx]`` are the hyper parameters; ``y`` holds the rows from ``y_lo`` on, 0 or
    at most r0 - 2 (the context, spec §5.8). ``slope``: the model's leaky slope (spec §5.6). Decoding
    (``targets`` empty): each value from ``words``. Encoding: each value chosen for ``targets[ly, lx, c]``
    and stored, with its table row, in ``values`` and ``rows``."""
    encoding = targets.size > 0
    lat_w, m = y.shape[1], y.shape[2]
    c2 = ctx_w.shape[1]
    feat = np.empty(c2 + params.shape[0], np.float64)
    h0 = np.empty(w0.shape[0], np.float64)
    h1 = np.empty(w1.shape[0], np.float64)
    out = np.empty(w2.shape[0], np.int64)
    acc = np.empty(c2, np.float64)
    for ly in range(r0, r1):
        for lx in range(lat_w):
            acc[:] = ctx_b
            for t in range(taps.shape[0]):
                sy, sx = ly + taps[t, 0] - PAD, lx + taps[t, 1] - PAD
                if sy < 0 or sx < 0 or sx >= lat_w:
                    continue
                for o in range(c2):
                    a = 0.0
                    for i in range(m):
                        a += ctx_w[t, o, i] * y[sy - y_lo, sx, i]
                    acc[o] += a
            for o in range(c2):
                feat[o] = activate_value(np.int64(acc[o]), np.int64(ctx_s[o]), ACT_MIN, ACT_MAX, 0)
            for c in range(params.shape[0]):
                feat[c2 + c] = params[c, ly - params_lo, lx]
            _dense(feat, w0, b0, s0, slope, h0)
            _dense(h0, w1, b1, s1, slope, h1)
            _dense(h1, w2, b2, s2, 0, out)
            for c in range(m):
                q = out[c]
                r = 0  # spec §8.8: the number of bounds below q
                while r < bound.shape[0] and q > bound[r]:
                    r += 1
                if encoding:
                    value = _choose_value(targets[ly, lx, c], out[m + c], mean_shift)
                    values[ly, lx, c], rows[ly, lx, c] = value, r
                else:
                    code, x, p, value = decode_value(x, p, words, cdf, cdf_length, offset, lut, r)
                    if code != OK:
                        return code, value, x, p
                value = value * (1 << mean_shift) + out[m + c]  # spec §8.8
                if value < ACT_MIN or value > ACT_MAX:
                    return OUT_OF_RANGE, value, x, p
                y[ly - y_lo, lx, c] = value
    return OK, np.int64(0), x, p


def kernel_weights(model) -> tuple:
    """The context and entropy-parameter tensors in the kernel's layout, computed once per model and kept
    in its context layer (``Layer.packed``)."""
    ctx = model.context[0]
    if "joint" not in ctx.packed:
        taps = np.array(CONTEXT_TAPS, np.int64)
        ctx_w = np.stack([ctx.weight[:, :, ky, kx] for ky, kx in CONTEXT_TAPS]).astype(np.float64)
        dense = []
        for layer in model.entropy_parameters:
            dense += [layer.weight[:, :, 0, 0].astype(np.float64), layer.bias.astype(np.float64),
                      layer.shift.astype(np.int64)]
        ctx.packed["joint"] = (taps, np.ascontiguousarray(ctx_w), ctx.bias.astype(np.float64),
                               ctx.shift.astype(np.int64), *dense)
    return ctx.packed["joint"]


def _run(words, x, p, lut, r0, r1, targets, model, params: np.ndarray, params_lo: int, y: np.ndarray, y_lo: int,
         values: np.ndarray, rows: np.ndarray) -> tuple:
    """The kernel on latent rows r0 .. r1 - 1 with this model's tensors: (code, aux, x, p); ``lut``: the
    y table's refcodec.fast.rans.symbol_lut (decoding)."""
    table = model.y_table
    params = np.ascontiguousarray(params, np.int16)
    if fast_layers.INTEGER_SIMD:
        return _vnni_rows(words, x, p, lut, r0, r1, targets, model, params, params_lo, y, y_lo, values, rows)
    return _loop(words, x, p, r0, r1, targets, params, params_lo,
                 *kernel_weights(model), model.entropy_parameters[0].slope, model.scale_bound.astype(np.int64),
                 table.cdf, table.cdf_length, table.offset, lut, model.mean_shift, y, y_lo, values, rows)


ABOVE = 10  # context taps in the two rows above (spec §5.8: CONTEXT_TAPS[:10]); the last two are to the left


def _requantizer(layer) -> tuple:
    """A layer's requantisation for vnni.matvec: (params (blocks of 16 outputs, 5, 16) int64 with the rows
    vnni.MV_PARAMS, lo, hi); spec §5.6 as refcodec.fast.layers.activate_value computes it."""
    s = layer.shift.astype(np.int64)
    slope = fast_layers.leaky_slope(layer)
    sn = s + LEAKY_BITS if slope else s
    rows = np.stack([fast_layers._half(s), s, fast_layers._half(sn), sn, np.full_like(s, slope or 1)])
    rows = np.pad(rows, ((0, 0), (0, -s.shape[0] % vnni.MV_OUT)), mode="edge")
    lo, hi = fast_layers.RANGES[layer.activation]
    return np.ascontiguousarray(rows.reshape(5, -1, 16).transpose(1, 0, 2)), lo, hi


def _padded(a: np.ndarray, n: int) -> np.ndarray:
    """a (int64) padded with zeros to n entries."""
    return np.pad(a.astype(np.int64), (0, n - a.shape[0]))


def vnni_weights(model) -> dict:
    """The context and entropy-parameter tensors in the layouts of the VNNI kernels, computed once per model
    and kept in its context layer (``Layer.packed``)."""
    ctx = model.context[0]
    if "joint_vnni" not in ctx.packed:
        m2 = ctx.weight.shape[0]  # 2M
        e0, e1, e2 = model.entropy_parameters
        w0 = e0.weight[:, :, 0, 0]
        k = {"above": vnni.pack_weights([ctx.weight[:, :, ky, kx] for ky, kx in CONTEXT_TAPS[:ABOVE]])[0],
             "hyper": vnni.pack_weights([w0[:, m2:]])[0],
             "ctx_bias": ctx.bias.astype(np.int64), "hyper_bias": e0.bias.astype(np.int64)}
        for name, w, layer in (("left", np.concatenate([ctx.weight[:, :, ky, kx] for ky, kx in CONTEXT_TAPS[ABOVE:]],
                                                          axis=1), ctx),
                               ("w0", w0[:, :m2], e0), ("w1", e1.weight[:, :, 0, 0], e1),
                               ("w2", e2.weight[:, :, 0, 0], e2)):
            packed = vnni.pack_matvec(w)
            k[name] = packed
            k[name + "_q"] = _requantizer(layer)
        k["b1"] = _padded(e1.bias, k["w1"].shape[0] * vnni.MV_OUT)
        k["b2"] = _padded(e2.bias, k["w2"].shape[0] * vnni.MV_OUT)
        ctx.packed["joint_vnni"] = k
    return ctx.packed["joint_vnni"]


def _vnni_rows(words, x, p, lut, r0, r1, targets, model, params, params_lo, y, y_lo, values, rows) -> tuple:
    """Latent rows r0 .. r1 - 1 as ``_loop`` computes them, on the VNNI kernels: per row, the partial sums of the
    rows above and of the hyper parameters (``RowSums``), then the sequential loop (``_vnni_row``)."""
    k = vnni_weights(model)
    sums = RowSums(model, y.shape[1], k)
    table = model.y_table
    bound = model.scale_bound.astype(np.int64)
    for ly in range(r0, r1):
        above, hyper = sums.row(y, ly - y_lo, params, ly - params_lo)
        code, aux, x, p = _vnni_row(words, x, p, ly, targets, y, y_lo, above, hyper, 2 * model.m,
                                    k["left"], *k["left_q"], k["w0"], *k["w0_q"], k["w1"], k["b1"], *k["w1_q"],
                                    k["w2"], k["b2"], *k["w2_q"], bound, table.cdf, table.cdf_length, table.offset,
                                    lut, model.mean_shift, values, rows)
        if code != OK:
            return code, aux, x, p
    return OK, np.int64(0), x, p


class RowSums:
    """Per latent row, for every position: the context's bias plus the sums of its taps in the two rows above
    (``above``), and the first entropy-parameter layer's bias plus the sums of its hyper-parameter inputs
    (``hyper``), int64 (W, outputs padded to whole groups of vnni.matvec), exact. On AMX tiles (vnni.amx_raw)
    where refcodec.fast.layers.MATRIX_SIMD, else on the VNNI convolution kernel (vnni.block)."""

    def __init__(self, model, lat_w: int, k: dict):
        self.k, self.lat_w, self.m = k, lat_w, model.m
        self.above = np.zeros((lat_w, k["left"].shape[0] * vnni.MV_OUT), np.int64)  # read by whole groups
        self.hyper = np.zeros((lat_w, k["w0"].shape[0] * vnni.MV_OUT), np.int64)
        self.amx = fast_layers.MATRIX_SIMD
        if self.amx:
            self.a = amx_weights(model)
        else:
            self.wp = vnni.padded_width(lat_w) + 2 * PAD
            self.above_seg = vnni.segments([(ky, kx) for ky, kx in CONTEXT_TAPS[:ABOVE]], (self.m + 1) // 2, self.wp)
            self.hyper_seg = vnni.segments([(0, 0)], self.m, vnni.padded_width(lat_w))

    def row(self, y: np.ndarray, wy: int, params: np.ndarray, py: int) -> tuple:
        """(above, hyper) of the row y[wy] of the window (rows, W, M), whose hyper parameters are params[:, py]."""
        lat_w, m = self.lat_w, self.m
        rows = np.zeros((2, lat_w, m), np.int16)  # the two rows above, zeros above the picture
        first = max(0, 2 - wy)
        rows[first:] = y[wy - 2 + first : wy]
        if self.amx:
            a = self.a
            self._amx(rows.transpose(2, 0, 1), PAD, a["above"], a["above_bias"], a["above_taps"], self.above)
            self._amx(params[:, py : py + 1], 0, a["hyper"], a["hyper_bias"], [(0, 0)], self.hyper)
            return self.above, self.hyper
        k = self.k
        xp = np.zeros((2, (m + 1) // 2, self.wp, 2), np.int16)
        xp[:, :, PAD : PAD + lat_w] = _pairs(rows)
        _row_sums(xp, k["above"], self.above_seg, k["ctx_bias"], self.above)
        hp = np.zeros((1, m, vnni.padded_width(lat_w), 2), np.int16)
        hp[0, :, :lat_w] = _pairs(params[:, py].T[None])[0]
        _row_sums(hp, k["hyper"], self.hyper_seg, k["hyper_bias"], self.hyper)
        return self.above, self.hyper

    @staticmethod
    def _amx(x: np.ndarray, left: int, weights: np.ndarray, bias: np.ndarray, taps: list, out: np.ndarray) -> None:
        """out[x, o] = bias[o] + the sums of ``taps`` (dy, dx) of x (C, rows, W) padded by ``left`` columns."""
        c, _, w = x.shape
        groups, quads = -(-w // vnni.TILE), -(-c // vnni.KSTEP) * (vnni.KSTEP // 4)
        wp = groups * vnni.TILE + 2 * left
        planes = vnni.pack_quads(x, left, x.shape[1], wp, quads, top=0, parallel=False)  # no parallel kernels here
        seg = np.array([[(dy * quads * wp + dx) * 4, quads // 16] for dy, dx in taps], np.int64)
        sums = np.empty((weights.shape[0] * vnni.TILE, groups * vnni.TILE), np.int64)
        _amx_raw(planes, weights, seg, bias, sums, groups, w)
        out[:, : sums.shape[0]] = sums[:, :w].T


def _pairs(rows: np.ndarray) -> np.ndarray:
    """rows (R, W, C) -> (R, ceil(C / 2), W, 2): channel pairs, vnni.pack's layout."""
    r, w, c = rows.shape
    if c % 2:
        rows = np.concatenate([rows, np.zeros((r, w, 1), rows.dtype)], axis=2)
    return rows.reshape(r, w, -1, 2).transpose(0, 2, 1, 3)


def amx_weights(model) -> dict:
    """The context's taps above and the first entropy-parameter layer's hyper-parameter half as A tiles of the AMX
    kernels (vnni.amx_weight_tiles), with their biases per block of 16 outputs; kept in the context layer."""
    ctx = model.context[0]
    if "joint_amx" not in ctx.packed:
        m2 = ctx.weight.shape[0]
        e0 = model.entropy_parameters[0]
        taps = CONTEXT_TAPS[:ABOVE]
        a: dict = {"above_taps": taps}
        for name, mats, bias in (("above", [ctx.weight[:, :, ky, kx] for ky, kx in taps], ctx.bias),
                                 ("hyper", [e0.weight[:, m2:, 0, 0]], e0.bias)):
            tiles = vnni.amx_weight_tiles(mats)
            blocks = tiles.shape[0]
            a[name] = np.ascontiguousarray(tiles.reshape(blocks, -1))
            a[name + "_bias"] = _padded(bias, blocks * vnni.TILE).reshape(blocks, vnni.TILE)
        ctx.packed["joint_amx"] = a
    return ctx.packed["joint_amx"]


@njit(cache=True, nogil=True)
def _amx_raw(planes, weights, seg, bias, out, groups, w):
    """out[16b + n, x] = bias[b, n] + the sums (vnni.amx_raw) for every block b of 16 outputs and column x < 16 *
    groups; ``planes``: one output row's packed input (vnni.pack_quads)."""
    kstride = planes.shape[3]
    plane_bytes = planes.shape[1] * planes.shape[2] * kstride
    chan = out.shape[1] * 8
    for b in range(weights.shape[0]):
        vnni.amx_raw(planes.ctypes.data, plane_bytes, kstride, 16 * kstride, weights[b].ctypes.data, 0, groups,
                     seg.ctypes.data, seg.shape[0], 0, out.ctypes.data + b * vnni.TILE * chan, chan, 0, w,
                     bias[b].ctypes.data, vnni.TILE, 0, 0)


@njit(cache=True, nogil=True)
def _row_sums(xp, weights, seg, bias, out):
    """out[x, o] = bias[o] + the sums of the taps ``seg`` at column x (vnni.block; int64, exact) for every column
    x < out.shape[0] and output o < bias.shape[0]."""
    cout, n_x = bias.shape[0], out.shape[0]
    acc = np.empty((vnni.MR, vnni.COLS), np.int64)
    for b in range(weights.shape[0]):
        for c0 in range(0, n_x, vnni.COLS):
            acc[:] = 0
            vnni.block(xp.ctypes.data + c0 * 4, weights[b].ctypes.data, acc.ctypes.data, seg.shape[0] // 2,
                       seg.ctypes.data, xp.shape[2] * 4, vnni.COLS * 8, 0)
            for r in range(min(vnni.MR, cout - b * vnni.MR)):
                o = b * vnni.MR + r
                for i in range(min(vnni.COLS, n_x - c0)):
                    out[c0 + i, o] = acc[r, i] + bias[o]


@njit(cache=True, nogil=True)
def _matvec(w, v, bias, out, params, lo, hi):
    """out = the requantised bias + w v (vnni.matvec): ``v`` int16 with an even number of entries."""
    vnni.matvec(w.ctypes.data, v.ctypes.data, w.shape[1], w.shape[0], bias.ctypes.data, out.ctypes.data,
                params.ctypes.data, 0, lo, hi)


@njit(cache=True, nogil=True)
def _vnni_row(words, x, p, ly, targets, y, y_lo, above, hyper, m2, w_left, q_left, lo_left, hi_left, w0, q0, lo0,
              hi0, w1, b1, q1, lo1, hi1, w2, b2, q2, lo2, hi2, bound, cdf, cdf_length, offset, lut, mean_shift,
              values, rows):
    """Latent row ly, position by position, as ``_loop``: ``above[lx]`` holds the context's bias and sums of the
    rows above, ``hyper[lx]`` the first entropy-parameter layer's bias and sums of the hyper parameters."""
    encoding = targets.size > 0
    lat_w, m = y.shape[1], y.shape[2]
    left = np.zeros(2 * m + 2, np.int16)  # the two samples to the left, zeros outside the picture
    ctx = np.zeros(max(w_left.shape[0] * vnni.MV_OUT, w0.shape[1] * 2), np.int16)  # outputs padded to whole groups
    h0 = np.zeros(max(w0.shape[0] * vnni.MV_OUT, w1.shape[1] * 2), np.int16)
    h1 = np.zeros(max(w1.shape[0] * vnni.MV_OUT, w2.shape[1] * 2), np.int16)
    e = np.zeros(w2.shape[0] * vnni.MV_OUT, np.int16)
    row = y[ly - y_lo]
    for lx in range(lat_w):
        for i in range(2 * m):
            j = lx - 2 + i // m
            left[i] = row[j, i % m] if j >= 0 else 0
        vnni.matvec(w_left.ctypes.data, left.ctypes.data, w_left.shape[1], w_left.shape[0], above[lx].ctypes.data,
                    ctx.ctypes.data, q_left.ctypes.data, 0, lo_left, hi_left)
        vnni.matvec(w0.ctypes.data, ctx.ctypes.data, w0.shape[1], w0.shape[0], hyper[lx].ctypes.data,
                    h0.ctypes.data, q0.ctypes.data, 0, lo0, hi0)
        _matvec(w1, h0, b1, h1, q1, lo1, hi1)
        _matvec(w2, h1, b2, e, q2, lo2, hi2)
        for c in range(m):
            q = np.int64(e[c])
            lo, n = 0, bound.shape[0]  # spec §8.8: r = the number of bounds below q (strictly increasing)
            while n > 0:
                half = n >> 1
                if q > bound[lo + half]:
                    lo += half + 1
                    n -= half + 1
                else:
                    n = half
            r = lo
            mean = np.int64(e[m + c])
            if encoding:
                value = _choose_value(targets[ly, lx, c], mean, mean_shift)
                values[ly, lx, c], rows[ly, lx, c] = value, r
            else:
                code, x, p, value = decode_value(x, p, words, cdf, cdf_length, offset, lut, r)
                if code != OK:
                    return code, value, x, p
            value = value * (1 << mean_shift) + mean  # spec §8.8
            if value < ACT_MIN or value > ACT_MAX:
                return OUT_OF_RANGE, value, x, p
            row[lx, c] = value
    return OK, np.int64(0), x, p


NO_ARRAY = np.zeros((0, 0, 0), np.int64)  # the kernel's targets, values and rows when decoding
NO_LUT = np.zeros((0, 0), np.int32)  # the kernel's symbol table when encoding


class LatentReader(ValueReader):
    """As refcodec.decoder.latents.LatentReader: a sub-stream decoded value by value (refcodec.fast.rans.ValueReader),
    and the latent rows of the joint architecture (spec §8.10) by the kernel above."""

    def joint_rows(self, model, params: np.ndarray, params_lo: int, y: np.ndarray, y_lo: int, r0: int,
                   r1: int) -> None:
        """As refcodec.decoder.latents.LatentReader.joint_rows; ``y`` is C-contiguous s16."""
        code, aux, self.x, self.p = _run(self.words, self.x, self.p, self.lut, r0, r1, NO_ARRAY, model, params,
                                         params_lo, y, y_lo, NO_ARRAY, NO_ARRAY)
        self.check(code, aux, "8.8")


def code_joint(y: np.ndarray, model, params: np.ndarray) -> tuple:
    """As refcodec.encoder.latents.code_joint (Annex A.1.4): (y_hat, values, table rows), each (M, LatH, LatW)."""
    targets = np.ascontiguousarray(y.transpose(1, 2, 0), np.int64)
    y_hat = np.zeros(targets.shape, np.int16)
    values, rows = np.zeros_like(targets), np.zeros_like(targets)
    code, _, _, _ = _run(np.zeros(0, np.uint32), np.int64(0), 0, NO_LUT, 0, targets.shape[0], targets, model, params,
                         0, y_hat, 0, values, rows)
    if code == OUT_OF_RANGE:
        raise StreamError(f"a y latent lies outside {ACT_MIN}..{ACT_MAX}", "8.8")
    return tuple(np.ascontiguousarray(a.transpose(2, 0, 1)) for a in (y_hat, values, rows))
