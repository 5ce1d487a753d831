"""Joint-architecture latent decoding (spec §8.10), fast path: one Numba kernel.

Decoding is sequential over latent positions: the scales and means at a
position depend on the latents decoded before it. The kernel runs, per
position in raster order, the masked context convolution (spec §5.8), the
three 1x1 entropy-parameter layers (spec §5.7), the table selection (spec
§8.8) and the rANS decoding of the M values there (spec §3), exactly as
refcodec.decoder.latents.LatentReader.joint_rows does, on a range of latent
rows with the rANS state carried from call to call, so that
refcodec.decoder.bands.JointLatents can decode rows just ahead of the synthesis
band that needs them (ŷ in an s16 window of rows). The encoder runs the same loop
(``code_joint``, as refcodec.encoder.latents.code_joint), choosing each value from
its latent (Annex A.1.4) instead of decoding it. Sums of products are float64: every
partial sum is an integer of magnitude below 2^47 (spec §6.4), so they are
exact in any order -- which is why the kernels may let the compiler reorder
them (fastmath reassociation, for vectorised sums). Single-threaded, so the
thread count cannot matter.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from refcodec.decoder.errors import StreamError
from refcodec.decoder.layers import ACT_MAX, ACT_MIN, CONTEXT_TAPS, PAD
from refcodec.encoder.latents import choose_value
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
          w2, b2, s2, slope, bound, cdf, cdf_length, offset, mean_shift, y, y_lo, values, rows):
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
                    code, x, p, value = decode_value(x, p, words, cdf, cdf_length, offset, r)
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


def _run(words, x, p, r0, r1, targets, model, params: np.ndarray, params_lo: int, y: np.ndarray, y_lo: int,
         values: np.ndarray, rows: np.ndarray) -> tuple:
    """The kernel on latent rows r0 .. r1 - 1 with this model's tensors: (code, aux, x, p)."""
    table = model.y_table
    return _loop(words, x, p, r0, r1, targets, np.ascontiguousarray(params, np.int16), params_lo,
                 *kernel_weights(model), model.entropy_parameters[0].slope, model.scale_bound.astype(np.int64),
                 table.cdf, table.cdf_length, table.offset, model.mean_shift, y, y_lo, values, rows)


NO_ARRAY = np.zeros((0, 0, 0), np.int64)  # the kernel's targets, values and rows when decoding


class LatentReader(ValueReader):
    """As refcodec.decoder.latents.LatentReader: a sub-stream decoded value by value (refcodec.fast.rans.ValueReader),
    and the latent rows of the joint architecture (spec §8.10) by the kernel above."""

    def joint_rows(self, model, params: np.ndarray, params_lo: int, y: np.ndarray, y_lo: int, r0: int,
                   r1: int) -> None:
        """As refcodec.decoder.latents.LatentReader.joint_rows; ``y`` is C-contiguous s16."""
        code, aux, self.x, self.p = _run(self.words, self.x, self.p, r0, r1, NO_ARRAY, model, params, params_lo,
                                         y, y_lo, NO_ARRAY, NO_ARRAY)
        self.check(code, aux, "8.8")


def code_joint(y: np.ndarray, model, params: np.ndarray) -> tuple:
    """As refcodec.encoder.latents.code_joint (Annex A.1.4): (y_hat, values, table rows), each (M, LatH, LatW)."""
    targets = np.ascontiguousarray(y.transpose(1, 2, 0), np.int64)
    y_hat = np.zeros(targets.shape, np.int16)
    values, rows = np.zeros_like(targets), np.zeros_like(targets)
    code, _, _, _ = _run(np.zeros(0, np.uint32), np.int64(0), 0, 0, targets.shape[0], targets, model, params, 0,
                         y_hat, 0, values, rows)
    if code == OUT_OF_RANGE:
        raise StreamError(f"a y latent lies outside {ACT_MIN}..{ACT_MAX}", "8.8")
    return tuple(np.ascontiguousarray(a.transpose(2, 0, 1)) for a in (y_hat, values, rows))
