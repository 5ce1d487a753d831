"""The synthesis in horizontal bands (how a decoder may bound its memory; the integers are those of spec §8.4).

Every layer of the synthesis is local: a transposed convolution (§5.2, stride 2, K = 5, padding 2) makes
output row oy from input rows ceil((oy - 2) / 2) .. floor((oy + 2) / 2), a convolution (§5.7) from
oy - K//2 .. oy + K//2, and IGDN (§5.4) from row oy alone. So the output rows [a, b) of the last layer
need a range of rows of each layer before it, which ``band_rows`` finds going backwards; running the
layers forwards on just those rows, each layer's output cropped to the rows the next layer needs, gives
exactly the integers of the whole-picture synthesis: every row kept has all its inputs (rows outside the
picture count as 0 in both). Only one band's activations exist at a time, so memory grows with the band
height and the width, not with the picture's height.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from refcodec.decoder.layers import Layer

DEFAULT_BAND_BYTES = 64 << 20  # the largest activation of a band, when no band height is given
BAND_ALIGN = 16  # band heights are multiples of the synthesis' stride (spec §8.2)


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


def run_band(x: np.ndarray, layers: list, a: int, b: int, run_layers) -> np.ndarray:
    """Output rows [a, b) of ``layers`` applied to ``x`` (C, H, W), computed from the rows they need only;
    ``run_layers`` is an implementation's (spec §5.7 RunLayers)."""
    ranges = band_rows(layers, a, b, x.shape[1])
    lo, hi = ranges[0]
    band = x[:, lo:hi]
    for k, layer in enumerate(layers):
        start = lo * scale_of(layer)  # the global row of the band's first output row
        lo, hi = ranges[k + 1] if k + 1 < len(layers) else (a, b)
        band = run_layers(band, [layer])[-1][:, lo - start : hi - start]
    return band


def default_band_height(layers: list, width: int) -> int:
    """Output rows per band such that the largest activation of a band (as float64) stays within
    DEFAULT_BAND_BYTES, a multiple of BAND_ALIGN."""
    per_row, scale = 0.0, 1 / 16  # bytes per output row of each layer's output, relative to the picture
    for layer in layers:
        scale *= scale_of(layer)
        channels = (layer.gamma if layer.kind == "igdn" else layer.bias).shape[0]
        per_row = max(per_row, channels * width * scale * scale * 8)
    return max(BAND_ALIGN, int(DEFAULT_BAND_BYTES // per_row) // BAND_ALIGN * BAND_ALIGN)


def synthesis_bands(y_hat: np.ndarray, layers: list, run_layers, height: int, width: int,
                    band_height: int | None = None) -> Iterator[tuple]:
    """(first row, rows): the picture (spec §8.4, §8.5) in bands of ``band_height`` rows (a multiple of
    BAND_ALIGN; None: ``default_band_height``), top to bottom, each (rows, width, 3) uint8."""
    band_height = band_height or default_band_height(layers, width)
    if band_height % BAND_ALIGN or band_height <= 0:
        raise ValueError(f"band height {band_height} is not a positive multiple of {BAND_ALIGN}")
    for a in range(0, height, band_height):
        b = min(a + band_height, height)
        out = run_band(y_hat, layers, a, b, run_layers)
        yield a, np.ascontiguousarray(out[:, :, :width].transpose(1, 2, 0)).astype(np.uint8)
