"""The encoder (informative, Annex A.1).

The analysis transform runs in float (its result is whatever it is; the
stream defines decoding). The quantised latents are coded with the decoder's
own tables, and the reconstruction the encoder reports is computed by the
decoder's own integer synthesis, so it equals what every decoder outputs.
"""

from __future__ import annotations

import numpy as np

from . import floatnet
from .bitstream import STRIDE, write_stream
from .decoder import kernels, reconstruct
from .image import to_rgb_array
from .layers import ACT_MAX, ACT_MIN
from .model import ARCHITECTURES, Model, model_by_name, model_from_file


def resolve_model(model) -> Model:
    """A Model from a Model, a shipped model's name, or a model file path."""
    if isinstance(model, Model):
        return model
    if isinstance(model, str) and "/" not in model and not model.endswith(".safetensors"):
        return model_by_name(model)
    return model_from_file(model)


def pad_to_stride(pixels: np.ndarray) -> np.ndarray:
    """Replicate the last row and column up to a multiple of 16 (Annex A.1.2)."""
    h, w, _ = pixels.shape
    return np.pad(pixels, ((0, -h % STRIDE), (0, -w % STRIDE), (0, 0)), mode="edge")


def analyse(pixels: np.ndarray, model: Model) -> np.ndarray:
    """Float analysis and rounding to integer latents (Annex A.1.3)."""
    x = pad_to_stride(pixels).transpose(2, 0, 1).astype(np.float32) / 255.0
    y = floatnet.analysis(x, model.encoder)
    return np.clip(np.rint(y), ACT_MIN, ACT_MAX).astype(np.int64)


def encode_latents(y_hat: np.ndarray, model: Model, width: int, height: int, impl: str = "fast") -> bytes:
    """Entropy-code integer latents into a complete stream (spec §7, Annex A.1.4)."""
    indexes = np.repeat(np.arange(model.m, dtype=np.int32), y_hat.shape[1] * y_hat.shape[2])
    y_data = kernels(impl)[0].encode_values(y_hat.reshape(-1), indexes, model.y_table)
    return write_stream(model.model_id, ARCHITECTURES[model.architecture], width, height, y_data)


def encode(image, model="factorized", impl: str = "fast", return_reconstruction: bool = False):
    """Encode an RGB or grayscale image (path, PIL image or array) to a refcodec stream.

    With ``return_reconstruction=True`` also returns the decoder's output for the
    stream, computed by the decoder's integer synthesis.
    """
    model = resolve_model(model)
    pixels = to_rgb_array(image)
    h, w, _ = pixels.shape
    y_hat = analyse(pixels, model)
    stream = encode_latents(y_hat, model, w, h, impl)
    if not return_reconstruction:
        return stream
    return stream, reconstruct(y_hat, model, w, h, impl)
