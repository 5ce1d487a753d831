"""The encoder (informative, Annex A.1).

The analysis transforms g_a (and h_a) run in float (their result is whatever
it is; the stream defines decoding). The quantised latents are coded with the
decoder's own tables; the hyper-synthesis, context and entropy-parameter
layers that choose the tables and means are the decoder's own integer code;
and the reconstruction the encoder reports is computed by the decoder's own
integer synthesis, so it equals what every decoder outputs.
"""

from __future__ import annotations

import numpy as np

from refcodec.decoder import latents
from refcodec.decoder.bitstream import MAGIC, STRIDE, VERSION
from refcodec.decoder.decoding import crop, kernels, synthesis
from refcodec.decoder.errors import ModelError
from refcodec.decoder.layers import ACT_MAX, ACT_MIN
from refcodec.decoder.model import Model, model_by_name, model_from_file
from refcodec.encoder import floatnet, latents as encoder_latents, rans
from refcodec.image import to_rgb_array


def write_stream(model_id: bytes, architecture: int, width: int, height: int, y_data: bytes,
                 z_data: bytes | None = None) -> bytes:
    """The encoder's side of spec §7.1: z_data is given exactly when architecture != 0."""
    if (z_data is None) != (architecture == 0):
        raise ValueError("a z sub-stream is written exactly for architectures other than 0")
    z_part = b"" if z_data is None else len(z_data).to_bytes(4, "little") + z_data
    return (MAGIC + bytes([VERSION, architecture]) + model_id + width.to_bytes(2, "little")
            + height.to_bytes(2, "little") + z_part + len(y_data).to_bytes(4, "little") + y_data)


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


def analysis_shapes(model: Model) -> dict:
    """name -> shape of the float tensors a model needs to encode (Annex A.1.3)."""
    n, m = model.n, model.m
    shapes = {}
    for k, (cout, cin) in zip((0, 2, 4, 6), ((n, 3), (n, n), (n, n), (m, n))):
        shapes.update({f"analysis.{k}.weight": (cout, cin, 5, 5), f"analysis.{k}.bias": (cout,)})
        if k < 6:
            shapes.update({f"analysis.{k + 1}.beta": (cout,), f"analysis.{k + 1}.gamma": (cout, cout)})
    if model.architecture != "factorized":
        for j, (cout, cin, k) in enumerate(floatnet.hyper_analysis_kernels(model.architecture, n, m)):
            shapes.update({f"hyper_analysis.{j}.weight": (cout, cin, k, k), f"hyper_analysis.{j}.bias": (cout,)})
    return shapes


def check_encoder(model: Model) -> None:
    """The model's encoder.* analysis tensors exist, are float, finite and of the right shapes."""
    for name, shape in analysis_shapes(model).items():
        t = model.encoder.get(name)
        if t is None:
            raise ModelError(f"model has no tensor encoder.{name}: it can decode but not encode", "A.1.3")
        if t.dtype.kind != "f" or t.shape != shape or not np.all(np.isfinite(t)):
            raise ModelError(f"tensor encoder.{name} must be finite float {list(shape)}", "A.1.3")
        if name.endswith((".beta", ".gamma")) and (t.min() < 0 or (name.endswith(".beta") and t.min() <= 0)):
            raise ModelError(f"GDN tensor encoder.{name} must be positive (beta) or non-negative (gamma)", "A.1.3")


def quantize(v: np.ndarray) -> np.ndarray:
    """Round to the nearest integer and clamp to the activation range (Annex A.1.3)."""
    if not np.all(np.isfinite(v)):
        raise ModelError("the model's analysis transform overflows on this image", "A.1.3")
    return np.clip(np.rint(v), ACT_MIN, ACT_MAX).astype(np.int64)


def analyse(pixels: np.ndarray, model: Model) -> np.ndarray:
    """y: the float analysis g_a as integers in the unit of y_hat (Annex A.1.3)."""
    return analyse_all(pixels, model)[0]


def analyse_all(pixels: np.ndarray, model: Model) -> tuple:
    """(y, z_hat): g_a times 2^F (F the model's mean_shift, spec §8.8) rounded to integers, and
    h_a of the float latent rounded; z_hat is None for factorized (Annex A.1.3)."""
    check_encoder(model)
    x = pad_to_stride(pixels).transpose(2, 0, 1).astype(np.float32) / 255.0
    with np.errstate(over="ignore", invalid="ignore"):
        y = floatnet.analysis(x, model.encoder)
        z = None if model.architecture == "factorized" else floatnet.hyper_analysis(y, model.encoder,
                                                                                    model.architecture)
        y = y * np.float32(1 << model.mean_shift)
    return quantize(y), None if z is None else quantize(z)


def encoder_kernels(impl: str) -> tuple:
    """(encode_values, code_joint) of an implementation: the rANS encoder (Annex A.2) and the
    encoder's run of the loop of spec §8.10 (Annex A.1.4)."""
    kernels(impl)  # a known implementation
    if impl == "reference":
        return rans.encode_values, encoder_latents.code_joint
    from refcodec.fast import joint as fast_joint, rans as fast_rans

    return fast_rans.encode_values, fast_joint.code_joint


def y_symbols(y: np.ndarray, model: Model, z_hat, impl: str) -> tuple:
    """(y_hat, values, table rows): the latents the decoder rebuilds from the coded values, and the
    values and rows of the y sub-stream in coding order (spec §8.3, §8.8-§8.10, Annex A.1.4)."""
    if model.architecture == "factorized":
        return y, y.reshape(-1), latents.channel_rows(*y.shape)
    params = latents.hyper_synthesis(z_hat, model, *y.shape[1:], kernels(impl).layers)
    if model.architecture == "joint":  # position by position, the M channels of each (spec §8.10)
        y_hat, values, rows = encoder_kernels(impl)[1](y, model, params)
        return y_hat, values.transpose(1, 2, 0).reshape(-1), rows.transpose(1, 2, 0).reshape(-1)
    rows, means = latents.gaussian_params(params, model)
    values = encoder_latents.choose_value(y, means, model.mean_shift)
    return latents.latent_values(values, means, model.mean_shift), values.reshape(-1), rows.reshape(-1)


def code_latents(y: np.ndarray, model: Model, width: int, height: int, impl: str = "fast",
                 z_hat: np.ndarray | None = None) -> tuple:
    """(stream, y_hat): integer latents y (and hyper-latents) coded into a complete stream (spec §7,
    Annex A.1.4), and the latents y_hat a decoder rebuilds from it (y itself when F = 0)."""
    encode_values = encoder_kernels(impl)[0]
    z_data = None
    if model.architecture != "factorized":
        z_data = encode_values(z_hat.reshape(-1), latents.channel_rows(*z_hat.shape), model.z_table)
    y_hat, values, rows = y_symbols(y, model, z_hat, impl)
    y_data = encode_values(values, rows, model.y_table)
    return write_stream(model.model_id, model.code, width, height, y_data, z_data), y_hat


def encode_latents(y: np.ndarray, model: Model, width: int, height: int, impl: str = "fast",
                   z_hat: np.ndarray | None = None) -> bytes:
    """The stream of ``code_latents``."""
    return code_latents(y, model, width, height, impl, z_hat)[0]


def encode(image, model="factorized", impl: str = "fast", return_reconstruction: bool = False):
    """Encode an RGB or grayscale image (path, PIL image or array) to a refcodec stream.

    With ``return_reconstruction=True`` also returns the decoder's output for the
    stream, computed by the decoder's integer synthesis.
    """
    model = resolve_model(model)
    pixels = to_rgb_array(image)
    h, w, _ = pixels.shape
    y, z_hat = analyse_all(pixels, model)
    stream, y_hat = code_latents(y, model, w, h, impl, z_hat)
    if not return_reconstruction:
        return stream
    return stream, crop(synthesis(y_hat, model.synthesis, impl), w, h)
