"""Joint-architecture latent decoding (spec §8.10), fast path: one Numba kernel.

Decoding is sequential over latent positions: the scales and means at a
position depend on the latents decoded before it. The kernel runs, per
position in raster order, the masked context convolution (spec §5.8), the
three 1x1 entropy-parameter layers (spec §5.7), the table selection (spec
§8.8) and the rANS decoding of the M values there (spec §3), exactly as
refcodec.decoder.latents.decode_joint does. The encoder runs the same loop
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
from refcodec.decoder.latents import check_sub_stream_length
from refcodec.decoder.layers import ACT_MAX, ACT_MIN, CONTEXT_TAPS, PAD
from refcodec.encoder.latents import choose_value
from refcodec.fast.layers import activate_value
from refcodec.fast.rans import OK, decode_value, exit_check, initial_state, raise_for, stream_words

OUT_OF_RANGE = 100  # kernel code: a decoded latent outside ACT_MIN..ACT_MAX

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
def _loop(words, targets, params, taps, ctx_w, ctx_b, ctx_s, w0, b0, s0, w1, b1, s1, w2, b2, s2,
          slope, bound, cdf, cdf_length, offset, mean_shift, y, values, rows):
    """y[ly, lx, c] in raster order of positions; (code, aux) as refcodec.fast.rans.

    ``slope``: the model's leaky slope (spec §5.6). Decoding (``targets`` empty): each value from ``words``. Encoding: each value chosen for
    ``targets[ly, lx, c]`` and stored, with its table row, in ``values`` and ``rows``."""
    encoding = targets.size > 0
    lat_h, lat_w, m = y.shape
    c2 = ctx_w.shape[1]
    feat = np.empty(c2 + params.shape[0], np.float64)
    h0 = np.empty(w0.shape[0], np.float64)
    h1 = np.empty(w1.shape[0], np.float64)
    out = np.empty(w2.shape[0], np.int64)
    acc = np.empty(c2, np.float64)
    x, p = (np.int64(0), 0) if encoding else initial_state(words)
    for ly in range(lat_h):
        for lx in range(lat_w):
            acc[:] = ctx_b
            for t in range(taps.shape[0]):
                sy, sx = ly + taps[t, 0] - PAD, lx + taps[t, 1] - PAD
                if sy < 0 or sx < 0 or sx >= lat_w:
                    continue
                for o in range(c2):
                    a = 0.0
                    for i in range(m):
                        a += ctx_w[t, o, i] * y[sy, sx, i]
                    acc[o] += a
            for o in range(c2):
                feat[o] = activate_value(np.int64(acc[o]), np.int64(ctx_s[o]), ACT_MIN, ACT_MAX, 0)
            for c in range(params.shape[0]):
                feat[c2 + c] = params[c, ly, lx]
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
                        return code, value
                value = value * (1 << mean_shift) + out[m + c]  # spec §8.8
                if value < ACT_MIN or value > ACT_MAX:
                    return OUT_OF_RANGE, value
                y[ly, lx, c] = value
    return (OK, 0) if encoding else exit_check(x, p, words)


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


def _run(words, targets, model, params: np.ndarray) -> tuple:
    """The kernel over ``params``: ((code, aux), y_hat, values, rows), the last three (LatH, LatW, M)."""
    m, lat_h, lat_w = model.m, params.shape[1], params.shape[2]
    y = np.zeros((lat_h, lat_w, m), np.int64)
    unused = np.zeros((0, 0, 0), np.int64)  # decoding writes no values or rows
    values, rows = (np.zeros_like(y), np.zeros_like(y)) if targets.size else (unused, unused)
    table = model.y_table
    result = _loop(words, targets, np.ascontiguousarray(params, np.int64), *kernel_weights(model),
                   model.entropy_parameters[0].slope, model.scale_bound.astype(np.int64), table.cdf, table.cdf_length, table.offset,
                   model.mean_shift, y, values, rows)
    if result[0] == OUT_OF_RANGE:
        raise StreamError(f"a y latent lies outside {ACT_MIN}..{ACT_MAX}", "8.8")
    return result, y, values, rows


def decode_joint(data: bytes, model, params: np.ndarray) -> np.ndarray:
    """As refcodec.decoder.latents.decode_joint (spec §8.10)."""
    check_sub_stream_length(data, model.m * params.shape[1] * params.shape[2], "y")
    (code, aux), y, _, _ = _run(stream_words(data, "y"), np.zeros((0, 0, 0), np.int64), model, params)
    raise_for(code, aux, "y")
    return np.ascontiguousarray(y.transpose(2, 0, 1))


def code_joint(y: np.ndarray, model, params: np.ndarray) -> tuple:
    """As refcodec.encoder.latents.code_joint (Annex A.1.4): (y_hat, values, table rows), each (M, LatH, LatW)."""
    targets = np.ascontiguousarray(y.transpose(1, 2, 0), np.int64)
    _, *arrays = _run(np.zeros(0, np.uint32), targets, model, params)
    return tuple(np.ascontiguousarray(a.transpose(2, 0, 1)) for a in arrays)
