"""Latent decoding (spec §8.3, §8.7-§8.10), NumPy reference: z_hat and y_hat from their sub-streams.

    factorized   y_hat: one table row per channel                         spec §8.3
    hyperprior   z_hat as above; h_s(z_hat) -> scales -> table rows       spec §8.7, §8.8, §8.9
    mean-scale   as hyperprior, and y_hat = v * 2^F + mean from the        spec §8.8, §8.9
                 decoded value v (F = the model's mean_shift)
    joint        per latent position, in raster order: masked context     spec §8.10
                 of the y_hat decoded so far + h_s(z_hat) -> entropy
                 parameters -> scales, means -> the M values there

A sub-stream is decoded by a ``LatentReader``, value by value in the order of its clause, each value checked
to lie in ACT_MIN .. ACT_MAX as it is decoded; refcodec.fast has one with the same methods. Latents are held
as s16 (their range). The hyper parameters of the hyperprior and mean-scale architectures are computed in
bands (refcodec.decoder.bands) and kept as table rows (u8, spec §6.3: at most 256 rows) and means (s16) only.

Given y_hat, the scales and means of the joint model follow from the whole
array at once (``joint_params``), because the context only sees earlier
positions (spec §5.8).
"""

from __future__ import annotations

import numpy as np

from refcodec.decoder.bands import bands, hyper_band, hyper_band_height
from refcodec.decoder.bitstream import MAX_WORDS_PER_VALUE
from refcodec.decoder.conventions import clause
from refcodec.decoder.errors import StreamError
from refcodec.decoder.layers import ACT_MAX, ACT_MIN, context_at, pointwise_at
from refcodec.decoder.rans import rans_decode_value, rans_exit, rans_init


@clause("8.3")
def check_sub_stream_length(data: bytes, count: int, name: str) -> None:
    """CheckSubStreamLength (spec §8.3): a sub-stream for ``count`` values is at most 8 + 40 * count bytes."""
    if len(data) > 8 + MAX_WORDS_PER_VALUE * 4 * count:
        raise StreamError(f"{name} sub-stream of {len(data)} bytes is longer than {count} values can use", "8.3")


def check_range(value: int, name: str, number: str) -> None:
    """A decoded latent lies in ACT_MIN .. ACT_MAX (spec §8.3, §8.8); else a StreamError of clause ``number``."""
    if not ACT_MIN <= value <= ACT_MAX:
        raise StreamError(f"a {name} latent lies outside {ACT_MIN}..{ACT_MAX}", number)


def channel_rows(c: int, h: int, w: int) -> np.ndarray:
    """The table row of every value in channel, row, column order: channel c uses row c (spec §8.3)."""
    return np.repeat(np.arange(c, dtype=np.int32), h * w)


def latent_values(v, means, mean_shift: int):
    """y_hat = v * 2^F + mean (spec §8.8), F = ``mean_shift``; ints or arrays."""
    return v * (1 << mean_shift) + means


class LatentReader:
    """A sub-stream ``name`` being decoded with ``table`` (spec §3.2-§3.6), value by value.

    ``values`` decodes the values of the order of spec §8.3 and §8.9, ``joint_rows`` those of latent rows in
    the order of §8.10, ``finish`` runs the end-of-stream checks of §3.6. refcodec.fast.joint.LatentReader
    has the same methods and gives the same values and errors.
    """

    def __init__(self, data: bytes, name: str, table):
        self.state = rans_init(data, name)
        self.name = name
        self.cdf, self.cdf_length, self.offset = table.cdf.tolist(), table.cdf_length.tolist(), table.offset.tolist()

    def value(self, r: int, mean: int, mean_shift: int, number: str) -> int:
        """The next latent: the value decoded with table row r (spec §3.5), times 2^mean_shift, plus ``mean``
        (spec §8.8), checked to lie in ACT_MIN .. ACT_MAX (a StreamError of clause ``number``)."""
        v = rans_decode_value(self.state, self.cdf[r], self.cdf_length[r], self.offset[r])
        latent = latent_values(v, mean, mean_shift)
        check_range(latent, self.name, number)
        return latent

    def values(self, out: np.ndarray, rows, means, mean_shift: int, number: str) -> None:
        """Fill ``out`` (C-contiguous) in order with the latents of table row ``rows`` and mean ``means``, each
        an int (the same for all) or an array of out's shape; ``means`` may be ``out`` itself."""
        count = out.size
        row_list = rows.reshape(-1).tolist() if isinstance(rows, np.ndarray) else [int(rows)] * count
        mean_list = means.reshape(-1).tolist() if isinstance(means, np.ndarray) else [int(means)] * count
        pairs = zip(row_list, mean_list, strict=True)
        out.reshape(-1)[:] = [self.value(r, mean, mean_shift, number) for r, mean in pairs]

    def joint_rows(self, model, params: np.ndarray, params_lo: int, y: np.ndarray, y_lo: int, r0: int,
                   r1: int) -> None:
        """Spec §8.10 at the positions of latent rows r0 .. r1 - 1, in raster order.

        ``params`` holds the hyper parameters of latent rows from ``params_lo`` on (2M, rows, LatW); ŷ is
        written to y[ly - y_lo, lx, c] of the window ``y`` (rows, LatW, M), which holds the rows from ``y_lo``
        on, y_lo being 0 or at most r0 - 2 (the context of row r0, spec §5.8).
        """
        m = model.m
        window = y.transpose(2, 0, 1)  # (M, rows, LatW), as context_at reads it
        for ly in range(r0, r1):
            for lx in range(y.shape[1]):
                context = context_at(window, ly - y_lo, lx, model.context[0])
                e = entropy_parameters(context, params[:, ly - params_lo, lx], model)
                rows = scale_index(e[:m], model.scale_bound)
                for c in range(m):
                    y[ly - y_lo, lx, c] = self.value(int(rows[c]), int(e[m + c]), model.mean_shift, "8.8")

    def finish(self) -> None:
        """RansExit (spec §3.6) after the last value."""
        rans_exit(self.state)


@clause("8.3")
def decode_latents(data: bytes, table, shape: tuple, name: str, reader, median: np.ndarray,
                   shift: int) -> np.ndarray:
    """DecodeLatents (spec §8.3): latents of ``shape`` (C, H, W), s16, row c of ``table`` and the value
    decoded times 2^shift plus median[c] for channel c; ``reader`` (an implementation's LatentReader class)
    decodes."""
    check_sub_stream_length(data, int(np.prod(shape)), name)
    out = np.empty(shape, np.int16)
    source = reader(data, name, table)
    for c in range(shape[0]):
        source.values(out[c], c, int(median[c]), shift, "8.3")
    source.finish()
    return out


@clause("8.7")
def hyper_synthesis(z_hat: np.ndarray, model, lat_h: int, lat_w: int, layers) -> np.ndarray:
    """HyperSynthesis (spec §8.7): h_s(z_hat) cropped to the latent size, the hyper parameters;
    ``layers`` (an implementation's layers module) runs the layers."""
    return layers.run_layers(z_hat, model.hyper_synthesis)[-1][:, :lat_h, :lat_w].astype(np.int64)


@clause("8.8")
def scale_index(scales: np.ndarray, scale_bound: np.ndarray) -> np.ndarray:
    """ScaleIndex (spec §8.8): table row of each scale q: the number of k with q > scale_bound[k] (spec §8.8)."""
    return np.searchsorted(scale_bound.astype(np.int64), scales, side="left")


def gaussian_params(params: np.ndarray, model) -> tuple:
    """(table rows, means) of every latent from the 2M (or M) parameter channels (spec §8.8)."""
    m = model.m
    means = params[m : 2 * m] if model.architecture != "hyperprior" else np.zeros_like(params[:m])
    return scale_index(params[:m], model.scale_bound), means


def gaussian_tables(z_in: np.ndarray, model, lat_h: int, lat_w: int, run_layers,
                    hyper_rows: int | None = None) -> tuple:
    """(table rows as u8, means as s16 or None for hyperprior) of every latent (spec §8.7, §8.8) of the
    hyper-synthesis of ``z_in``, computed in bands of ``hyper_rows`` latent rows (None: a height for bounded
    memory; refcodec.decoder.bands.hyper_band): the hyper parameters never exist in full, and ScaleIndex's
    int64 row numbers exist for one channel of a band at a time."""
    m = model.m
    rows = np.empty((m, lat_h, lat_w), np.uint8)
    means = None if model.architecture == "hyperprior" else np.empty((m, lat_h, lat_w), np.int16)
    for a, b in bands(lat_h, hyper_rows or hyper_band_height(model, lat_w)):
        params = hyper_band(z_in, model, a, b, lat_w, run_layers)
        for c in range(m):
            rows[c, a:b] = scale_index(params[c], model.scale_bound)
        if means is not None:
            means[:, a:b] = params[m:]
    return rows, means


@clause("8.9")
def decode_gaussian(data: bytes, model, rows: np.ndarray, means: np.ndarray | None, reader) -> np.ndarray:
    """DecodeGaussian (spec §8.9): y_hat (s16) of the hyperprior and mean-scale architectures, channel by
    channel, from the table rows and means of ``gaussian_tables``; y_hat is written over ``means``."""
    check_sub_stream_length(data, rows.size, "y")
    y_hat = np.empty(rows.shape, np.int16) if means is None else means
    source = reader(data, "y", model.y_table)
    for c in range(rows.shape[0]):
        source.values(y_hat[c], rows[c], 0 if means is None else means[c], model.mean_shift, "8.8")
    source.finish()
    return y_hat


def joint_params(y_hat: np.ndarray, params: np.ndarray, model, layers) -> np.ndarray:
    """Spec §8.10 steps 1-3 at every position at once, given the whole of ``y_hat``.

    The context convolution over the whole of ``y_hat`` (its masked taps are 0,
    spec §6.4) and the 1x1 entropy-parameter layers over every position.
    """
    x = np.concatenate([layers.run_layers(y_hat, model.context)[-1], params])
    return layers.run_layers(x, model.entropy_parameters)[-1].astype(np.int64)


def entropy_parameters(context: np.ndarray, hyper: np.ndarray, model) -> np.ndarray:
    """Spec §8.10 steps 2-3: the 2M entropy parameters e from the 2M context outputs and the 2M hyper
    parameters at a position."""
    e = np.concatenate([context, hyper.astype(np.int64)])
    for layer in model.entropy_parameters:
        e = pointwise_at(e, layer)
    return e


def entropy_parameters_at(y_hat: np.ndarray, params: np.ndarray, ly: int, lx: int, model) -> np.ndarray:
    """Spec §8.10 steps 1-3 at one position: the 2M entropy parameters e from the context of the latents
    decoded before (ly, lx) and the hyper parameters there."""
    return entropy_parameters(context_at(y_hat, ly, lx, model.context[0]), params[:, ly, lx], model)


@clause("8.10")
def decode_joint(data: bytes, model, params: np.ndarray, reader) -> np.ndarray:
    """DecodeJoint (spec §8.10): y_hat (s16) of the joint architecture, position by position in raster order,
    given the whole of ``params``; refcodec.decoder.bands.JointLatents decodes the same rows band by band."""
    m, lat_h, lat_w = model.m, params.shape[1], params.shape[2]
    check_sub_stream_length(data, m * lat_h * lat_w, "y")
    source = reader(data, "y", model.y_table)
    y = np.zeros((lat_h, lat_w, m), np.int16)
    source.joint_rows(model, params, 0, y, 0, 0, lat_h)
    source.finish()
    return np.ascontiguousarray(y.transpose(2, 0, 1))
