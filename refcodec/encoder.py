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
from .decoder import kernels, latent_indexes, reconstruct
from .errors import ModelError
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


def analysis_shapes(n: int, m: int) -> dict:
    """name -> shape of the float analysis tensors a model needs to encode (Annex A.1.3)."""
    shapes = {}
    for k, (cout, cin) in zip((0, 2, 4, 6), ((n, 3), (n, n), (n, n), (m, n))):
        shapes.update({f"analysis.{k}.weight": (cout, cin, 5, 5), f"analysis.{k}.bias": (cout,)})
        if k < 6:
            shapes.update({f"analysis.{k + 1}.beta": (cout,), f"analysis.{k + 1}.gamma": (cout, cout)})
    return shapes


def check_encoder(model: Model) -> None:
    """The model's encoder.analysis.* tensors exist, are float, finite and of the right shapes."""
    for name, shape in analysis_shapes(model.n, model.m).items():
        t = model.encoder.get(name)
        if t is None:
            raise ModelError(f"model has no tensor encoder.{name}: it can decode but not encode", "A.1.3")
        if t.dtype.kind != "f" or t.shape != shape or not np.all(np.isfinite(t)):
            raise ModelError(f"tensor encoder.{name} must be finite float {list(shape)}", "A.1.3")
        if name.endswith((".beta", ".gamma")) and (t.min() < 0 or (name.endswith(".beta") and t.min() <= 0)):
            raise ModelError(f"GDN tensor encoder.{name} must be positive (beta) or non-negative (gamma)", "A.1.3")


def analyse(pixels: np.ndarray, model: Model) -> np.ndarray:
    """Float analysis and rounding to integer latents (Annex A.1.3)."""
    check_encoder(model)
    x = pad_to_stride(pixels).transpose(2, 0, 1).astype(np.float32) / 255.0
    with np.errstate(over="ignore", invalid="ignore"):
        y = floatnet.analysis(x, model.encoder)
    if not np.all(np.isfinite(y)):
        raise ModelError("the model's analysis transform overflows on this image", "A.1.3")
    return np.clip(np.rint(y), ACT_MIN, ACT_MAX).astype(np.int64)


def encode_latents(y_hat: np.ndarray, model: Model, width: int, height: int, impl: str = "fast") -> bytes:
    """Entropy-code integer latents into a complete stream (spec §7, Annex A.1.4)."""
    indexes = latent_indexes(*y_hat.shape)
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
