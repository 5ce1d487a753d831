"""Latent decoding (spec §8.3, §8.7-§8.10), NumPy reference: z_hat and y_hat from their sub-streams.

    factorized   y_hat: one table row per channel                         spec §8.3
    hyperprior   z_hat as above; h_s(z_hat) -> scales -> table rows       spec §8.7, §8.8, §8.9
    mean-scale   as hyperprior, and y_hat = v * 2^F + mean from the        spec §8.8, §8.9
                 decoded value v (F = the model's mean_shift)
    joint        per latent position, in raster order: masked context     spec §8.10
                 of the y_hat decoded so far + h_s(z_hat) -> entropy
                 parameters -> scales, means -> the M values there

Given y_hat, the scales and means of the joint model follow from the whole
array at once (``joint_params``), because the context only sees earlier
positions (spec §5.8).
"""

from __future__ import annotations

import numpy as np

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


def check_range(values: np.ndarray, name: str, number: str) -> None:
    """Every decoded latent lies in ACT_MIN .. ACT_MAX (spec §8.3, §8.9, §8.10); else a StreamError of ``number``."""
    if values.size and (values.min() < ACT_MIN or values.max() > ACT_MAX):
        raise StreamError(f"a {name} latent lies outside {ACT_MIN}..{ACT_MAX}", number)


def channel_rows(c: int, h: int, w: int) -> np.ndarray:
    """The table row of every value in channel, row, column order: channel c uses row c (spec §8.3)."""
    return np.repeat(np.arange(c, dtype=np.int32), h * w)


@clause("8.3")
def decode_latents(data: bytes, table, shape: tuple, name: str, rans, median: np.ndarray,
                   shift: int) -> np.ndarray:
    """DecodeLatents (spec §8.3): latents of ``shape`` (C, H, W), row c of ``table`` for channel c, each
    d * 2^shift + median[c] of the value d decoded; ``rans`` (an implementation's rANS module) decodes."""
    check_sub_stream_length(data, int(np.prod(shape)), name)
    values = rans.decode_values(data, channel_rows(*shape), table, name=name).reshape(shape)
    out = latent_values(values, median.astype(np.int64)[:, None, None], shift)
    check_range(out, name, "8.3")
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


def latent_values(v, means, mean_shift: int):
    """y_hat = v * 2^F + mean (spec §8.8), F = ``mean_shift``; ints or arrays."""
    return v * (1 << mean_shift) + means


@clause("8.9")
def decode_gaussian(data: bytes, model, params: np.ndarray, rans) -> np.ndarray:
    """DecodeGaussian (spec §8.9): y_hat of the hyperprior and mean-scale architectures, channel by channel."""
    rows, means = gaussian_params(params, model)
    check_sub_stream_length(data, rows.size, "y")
    v = rans.decode_values(data, rows.reshape(-1), model.y_table, name="y").reshape(rows.shape)
    y_hat = latent_values(v, means, model.mean_shift)
    check_range(y_hat, "y", "8.8")
    return y_hat


def joint_params(y_hat: np.ndarray, params: np.ndarray, model, layers) -> np.ndarray:
    """Spec §8.10 steps 1-3 at every position at once, given the whole of ``y_hat``.

    The context convolution over the whole of ``y_hat`` (its masked taps are 0,
    spec §6.4) and the 1x1 entropy-parameter layers over every position.
    """
    x = np.concatenate([layers.run_layers(y_hat, model.context)[-1], params])
    return layers.run_layers(x, model.entropy_parameters)[-1].astype(np.int64)


def entropy_parameters_at(y_hat: np.ndarray, params: np.ndarray, ly: int, lx: int, model) -> np.ndarray:
    """Spec §8.10 steps 1-3 at one position: the 2M entropy parameters e from the context of the
    latents decoded before (ly, lx) and the hyper parameters there."""
    e = np.concatenate([context_at(y_hat, ly, lx, model.context[0]), params[:, ly, lx]])
    for layer in model.entropy_parameters:
        e = pointwise_at(e, layer)
    return e


@clause("8.10")
def decode_joint(data: bytes, model, params: np.ndarray) -> np.ndarray:
    """DecodeJoint (spec §8.10): y_hat of the joint architecture, position by position in raster order (spec §8.10)."""
    m, lat_h, lat_w = model.m, params.shape[1], params.shape[2]
    check_sub_stream_length(data, m * lat_h * lat_w, "y")
    table = model.y_table
    cdf, cdf_length, offset = table.cdf.tolist(), table.cdf_length.tolist(), table.offset.tolist()
    state = rans_init(data, "y")
    y_hat = np.zeros((m, lat_h, lat_w), np.int64)
    for ly in range(lat_h):
        for lx in range(lat_w):
            e = entropy_parameters_at(y_hat, params, ly, lx, model)
            rows = scale_index(e[:m], model.scale_bound)
            for c in range(m):
                r, mean = int(rows[c]), int(e[m + c])
                v = rans_decode_value(state, cdf[r], cdf_length[r], offset[r])
                latent = latent_values(v, mean, model.mean_shift)
                check_range(np.array([latent]), "y", "8.8")
                y_hat[c, ly, lx] = latent
    rans_exit(state)
    return y_hat
