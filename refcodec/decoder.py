"""The decoding process (spec §8): from the first byte of a stream to pixels.

    header  = parse_stream(data)                      spec §7
    model   = find_model(header.model_id)             spec §6.5
    y_hat   = decode_latents(header, model)           spec §8.3 (rANS, spec §3)
    layers  = synthesis(y_hat, model.synthesis)       spec §8.4 (layers, spec §5)
    pixels  = crop(layers[-1])                        spec §8.5

``impl="reference"`` runs the NumPy code that mirrors the spec line by line;
``impl="fast"`` runs the Numba/BLAS kernels of refcodec.fast. Both give the same
bytes for every stream (tests/test_roundtrip.py, tests/test_spec_decoder.py).
"""

from __future__ import annotations

import numpy as np

from . import layers, rans
from .bitstream import StreamHeader, parse_stream
from .errors import StreamError
from .fast import layers as fast_layers, rans as fast_rans
from .layers import ACT_MAX, ACT_MIN
from .model import ARCHITECTURES, Model, find_model

KERNELS = {"reference": (rans, layers), "fast": (fast_rans, fast_layers)}  # (entropy coder, layers)
IMPLS = tuple(KERNELS)
MAX_WORDS_PER_VALUE = 10  # symbol, nibble count, 8 raw nibbles: one word each at most (spec §8.3)


def kernels(impl: str):
    """The (rANS module, layers module) of an implementation."""
    if impl not in KERNELS:
        raise ValueError(f"impl must be one of {IMPLS}, not {impl!r}")
    return KERNELS[impl]


def check_architecture(header: StreamHeader, model: Model) -> None:
    """The stream's architecture code must be the model's (spec §8.1)."""
    if ARCHITECTURES[model.architecture] != header.architecture:
        raise StreamError(f"stream architecture {header.architecture} does not match model "
                          f"architecture {model.architecture!r}", "8.1")


def latent_indexes(m: int, lat_h: int, lat_w: int) -> np.ndarray:
    """The table row of every latent in coding order: channel c uses row c (spec §8.3)."""
    return np.repeat(np.arange(m, dtype=np.int32), lat_h * lat_w)


def decode_latents(header: StreamHeader, model: Model, impl: str = "reference") -> np.ndarray:
    """y_hat (M, LatH, LatW): values in channel, row, column order, row c of the table for channel c (spec §8.3)."""
    lat_h, lat_w = header.latent_shape
    count = model.m * lat_h * lat_w
    if len(header.y_data) > 8 + MAX_WORDS_PER_VALUE * 4 * count:
        raise StreamError(f"y sub-stream of {len(header.y_data)} bytes is longer than {count} latents can use", "8.3")
    values = kernels(impl)[0].decode_values(header.y_data, latent_indexes(model.m, lat_h, lat_w), model.y_table,
                                            name="y")
    if values.size and (values.min() < ACT_MIN or values.max() > ACT_MAX):
        raise StreamError(f"a latent value lies outside {ACT_MIN}..{ACT_MAX}", "8.3")
    return values.reshape(model.m, lat_h, lat_w)


def reconstruct(y_hat: np.ndarray, model: Model, width: int, height: int, impl: str = "reference") -> np.ndarray:
    """Synthesis (spec §8.4) and crop to the picture (spec §8.5): (H, W, 3) uint8."""
    out = kernels(impl)[1].synthesis(y_hat, model.synthesis)[-1]
    return np.ascontiguousarray(out[:, :height, :width].transpose(1, 2, 0)).astype(np.uint8)


def decode(data: bytes, model_files=(), impl: str = "fast") -> np.ndarray:
    """Decode a refcodec stream to an (H, W, 3) uint8 array (spec §8)."""
    kernels(impl)
    header = parse_stream(bytes(data))
    model = find_model(header.model_id, model_files)
    check_architecture(header, model)
    y_hat = decode_latents(header, model, impl)
    return reconstruct(y_hat, model, header.width, header.height, impl)
