"""Decoding in horizontal bands: how a decoder may bound its memory (informative; the integers are those of spec §8).

Every layer of the synthesis (spec §8.4) and of the hyper-synthesis (§8.7) is local: a transposed convolution
(§5.2, stride 2, K = 5, padding 2) makes output row oy from input rows ceil((oy - 2) / 2) .. floor((oy + 2) / 2),
a convolution (§5.7) from oy - K//2 .. oy + K//2, and IGDN (§5.4) from row oy alone. So the output rows [a, b)
of the last layer need a range of rows of each layer before it, which ``band_rows`` finds going backwards;
running the layers forwards on just those rows, each layer's output cropped to the rows the next layer needs,
gives exactly the integers of the whole-picture transform: every row kept has all its inputs (rows outside the
picture count as 0 in both). Only one band's activations exist at a time, so memory grows with the band height
and the width, not with the picture's height.

The latents the synthesis reads come in two orders. The factorized, hyperprior and mean-scale architectures
code ŷ channel by channel (§8.3, §8.9), so the whole of it is decoded before the synthesis starts; it is held
as s16, its range (``WholeLatents``), and the hyper parameters are computed in bands and kept only as table
rows and means (refcodec.decoder.latents.gaussian_tables). The joint architecture codes ŷ position by position
in raster order (§8.10): ``JointLatents`` decodes latent rows just ahead of the synthesis band that needs them,
with the hyper parameters of those rows only, and keeps a row of ŷ only while the context (two rows above,
§5.8) or the synthesis still needs it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from refcodec.decoder.layers import Layer

DEFAULT_BAND_BYTES = 64 << 20  # the largest activation of a band, when no band height is given
BAND_ALIGN = 16  # synthesis band heights are multiples of its stride (spec §8.2)
CONTEXT_ROWS = 2  # the masked context of a latent reads the two rows above it (spec §5.8)


def input_rows(layer: Layer, a: int, b: int, height_in: int) -> tuple:
    """(lo, hi): the rows of ``layer``'s input (of ``height_in`` rows) that its output rows [a, b) depend on."""
    if layer.kind == "deconv":
        lo, hi = (a - 1) // 2, (b + 1) // 2 + 1
    elif layer.kind == "conv":
        pad = layer.weight.shape[2] // 2
        lo, hi = a - pad, b + pad
    else:  # igdn: row by row
        lo, hi = a, b
    return max(lo, 0), min(hi, height_in)


def scale_of(layer: Layer) -> int:
    """Output rows per input row: 2 for a transposed convolution, 1 otherwise."""
    return 2 if layer.kind == "deconv" else 1


def total_scale(layers: list) -> int:
    """Output rows per input row of ``layers`` together: 16 for the synthesis, 4 for the hyper-synthesis."""
    return int(np.prod([scale_of(layer) for layer in layers]))


def band_rows(layers: list, a: int, b: int, height_in: int) -> list:
    """[(lo, hi)] per layer: the input rows each layer needs for output rows [a, b) of the last layer."""
    heights = [height_in]
    for layer in layers[:-1]:
        heights.append(heights[-1] * scale_of(layer))
    ranges = []
    for layer, height in zip(reversed(layers), reversed(heights), strict=True):
        a, b = input_rows(layer, a, b, height)
        ranges.append((a, b))
    return ranges[::-1]


def run_band(fetch: Callable, height_in: int, layers: list, a: int, b: int, run_layers) -> np.ndarray:
    """Output rows [a, b) of ``layers`` applied to an input of ``height_in`` rows, computed from the rows they
    need only, which ``fetch(lo, hi)`` gives (C, hi - lo, W); ``run_layers`` is an implementation's (spec §5.7)."""
    ranges = band_rows(layers, a, b, height_in)
    lo, hi = ranges[0]
    band = fetch(lo, hi)
    for k, layer in enumerate(layers):
        start = lo * scale_of(layer)  # the global row of the band's first output row
        lo, hi = ranges[k + 1] if k + 1 < len(layers) else (a, b)
        band = run_layers(band, [layer])[-1][:, lo - start : hi - start]
    return band


def default_band_height(layers: list, width: int, align: int = BAND_ALIGN) -> int:
    """Output rows per band of ``layers`` (whose output is ``width`` wide) such that the largest activation of a
    band (as float64) stays within DEFAULT_BAND_BYTES, a multiple of ``align``."""
    per_row, scale = 0.0, 1 / total_scale(layers)  # bytes per output row of each layer's output
    for layer in layers:
        scale *= scale_of(layer)
        channels = (layer.gamma if layer.kind == "igdn" else layer.bias).shape[0]
        per_row = max(per_row, channels * width * scale * scale * 8)
    return max(align, int(DEFAULT_BAND_BYTES // per_row) // align * align)


def bands(height: int, band_height: int) -> Iterator[tuple]:
    """(a, b): the row ranges of bands of ``band_height`` rows covering ``height`` rows, top to bottom."""
    for a in range(0, height, band_height):
        yield a, min(a + band_height, height)


def synthesis_bands(rows: Callable, layers: list, run_layers, height: int, width: int,
                    band_height: int | None = None) -> Iterator[tuple]:
    """(first row, pixels): the picture (spec §8.4, §8.5) in bands of ``band_height`` rows (a multiple of
    BAND_ALIGN; None: ``default_band_height``), top to bottom, each (rows, width, 3) uint8. ``rows(lo, hi)``
    gives the synthesis input's rows [lo, hi), (M, hi - lo, LatW), for ranges that never move up."""
    band_height = band_height or default_band_height(layers, width)
    if band_height % BAND_ALIGN or band_height <= 0:
        raise ValueError(f"band height {band_height} is not a positive multiple of {BAND_ALIGN}")
    height_in = -(-height // total_scale(layers))
    for a, b in bands(height, band_height):
        out = run_band(rows, height_in, layers, a, b, run_layers)
        yield a, np.ascontiguousarray(out[:, :, :width].transpose(1, 2, 0)).astype(np.uint8)


def hyper_band(z_in: np.ndarray, model, a: int, b: int, lat_w: int, run_layers) -> np.ndarray:
    """The hyper parameters (spec §8.7) of latent rows [a, b): rows [a, b) of the hyper-synthesis of ``z_in``
    (ẑ, or the gained ẑ of §8.11) cropped to ``lat_w`` columns, as s16 (their range, §5.6)."""
    out = run_band(lambda lo, hi: z_in[:, lo:hi], z_in.shape[1], model.hyper_synthesis, a, b, run_layers)
    return np.ascontiguousarray(out[:, :, :lat_w], np.int16)


def hyper_band_height(model, lat_w: int) -> int:
    """Latent rows per band of the hyper-synthesis: its largest activation within DEFAULT_BAND_BYTES."""
    return default_band_height(model.hyper_synthesis, lat_w, align=1)


class WholeLatents:
    """ŷ decoded in full (spec §8.3, §8.9), (M, LatH, LatW) s16, as the synthesis reads it."""

    def __init__(self, y_hat: np.ndarray):
        self.y_hat = y_hat

    def rows(self, lo: int, hi: int) -> np.ndarray:
        """Rows [lo, hi) of ŷ, (M, hi - lo, LatW)."""
        return self.y_hat[:, lo:hi]

    def close(self) -> None:
        """Nothing is left to decode or check."""


class JointLatents:
    """ŷ of the joint architecture (spec §8.10), decoded row by row as the synthesis asks for rows.

    ``reader`` (an implementation's LatentReader of the y sub-stream) decodes latent rows in raster order
    into a window (rows, LatW, M) of s16 holding the rows from ``base`` to ``top`` (exclusive), ``top``
    being the next row to decode; the hyper parameters of the rows being decoded come from ``hyper_band``
    in bands of ``hyper_rows`` latent rows (None: ``hyper_band_height``). A request for rows [lo, hi)
    decodes up to hi and forgets the rows below both lo and the context of the next row: requests never
    move up (the bands of ``synthesis_bands``). The end-of-stream checks of §3.6 run as soon as the last
    row is decoded.
    """

    def __init__(self, reader, model, z_in: np.ndarray, lat_h: int, lat_w: int, run_layers,
                 hyper_rows: int | None = None):
        self.reader, self.model, self.z_in, self.run_layers = reader, model, z_in, run_layers
        self.lat_h, self.lat_w = lat_h, lat_w
        self.hyper_rows = hyper_rows or hyper_band_height(model, lat_w)
        self.window = np.zeros((0, lat_w, model.m), np.int16)
        self.base = self.top = 0
        self.params = np.zeros((0, 0, lat_w), np.int16)  # the hyper parameters of latent rows params_lo ..
        self.params_lo = 0

    def rows(self, lo: int, hi: int) -> np.ndarray:
        """Rows [lo, hi) of ŷ, (M, hi - lo, LatW), decoded first if need be; rows below lo are never asked
        for again."""
        self.keep(max(0, min(lo, self.top - CONTEXT_ROWS)), hi)
        while self.top < hi:
            self.decode_rows(hi)
        return self.window[lo - self.base : hi - self.base].transpose(2, 0, 1)

    def keep(self, base: int, hi: int) -> None:
        """Make the window hold rows base .. hi - 1: the decoded rows from ``base`` on are kept."""
        if base == self.base and hi <= self.base + self.window.shape[0]:
            return
        window = np.zeros((max(hi, self.top) - base, self.lat_w, self.model.m), np.int16)
        window[: self.top - base] = self.window[base - self.base : self.top - self.base]
        self.window, self.base = window, base

    def decode_rows(self, hi: int) -> None:
        """Decode rows from ``top`` up to ``hi`` or the end of the current band of hyper parameters."""
        params_hi = self.params_lo + self.params.shape[1]
        if self.top >= params_hi:
            self.params_lo, params_hi = self.top, min(self.lat_h, self.top + self.hyper_rows)
            self.params = hyper_band(self.z_in, self.model, self.top, params_hi, self.lat_w, self.run_layers)
        stop = min(hi, params_hi)
        self.reader.joint_rows(self.model, self.params, self.params_lo, self.window, self.base, self.top, stop)
        self.top = stop
        if self.top == self.lat_h:
            self.reader.finish()

    def close(self) -> None:
        """Decode whatever rows are left, a band of the hyper-synthesis at a time, so that the checks of spec
        §3.6 have run."""
        while self.top < self.lat_h:
            self.rows(self.top, min(self.lat_h, self.top + self.hyper_rows))
