"""Choosing the coded values (informative, Annex A.1.4): the encoder's side of spec §8.8-§8.10."""

from __future__ import annotations

import numpy as np

from refcodec.decoder.latents import entropy_parameters_at, latent_values, scale_index
from refcodec.decoder.layers import ACT_MAX, ACT_MIN


def choose_value(y, mean, mean_shift: int):
    """The encoder's inverse of ``latent_values`` (Annex A.1.4): the v whose latent v * 2^F + mean is
    nearest to y within ACT_MIN..ACT_MAX; for F = 0 and y in range, v = y - mean. Ints or arrays."""
    v = (y - mean + ((1 << mean_shift) >> 1)) >> mean_shift
    return np.minimum(np.maximum(v, -((mean - ACT_MIN) >> mean_shift)), (ACT_MAX - mean) >> mean_shift)


def code_joint(y: np.ndarray, model, params: np.ndarray) -> tuple:
    """The encoder's run of the loop of spec §8.10 (Annex A.1.4): (y_hat, values, table rows), each
    (M, LatH, LatW), the value at each position chosen with ``choose_value`` from the latents y, given
    the entropy parameters that the decoder will compute there from the latents before it."""
    m, lat_h, lat_w = y.shape
    y_hat, values, rows = np.zeros_like(y), np.zeros_like(y), np.zeros_like(y)
    for ly in range(lat_h):
        for lx in range(lat_w):
            e = entropy_parameters_at(y_hat, params, ly, lx, model)
            rows[:, ly, lx] = scale_index(e[:m], model.scale_bound)
            values[:, ly, lx] = choose_value(y[:, ly, lx], e[m:], model.mean_shift)
            y_hat[:, ly, lx] = latent_values(values[:, ly, lx], e[m:], model.mean_shift)
    return y_hat, values, rows
