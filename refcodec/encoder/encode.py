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
from refcodec.decoder.bitstream import MAGIC, STRIDE
from refcodec.decoder.decoding import gained, kernels, synthesis
from refcodec.decoder.errors import InputError, ModelError
from refcodec.decoder.layers import ACT_MAX, ACT_MIN
from refcodec.decoder.model import Model, model_by_name, model_from_file
from refcodec.encoder import floatnet, rans
from refcodec.encoder import latents as encoder_latents
from refcodec.image import psnr, to_rgb_array


def write_stream(model_id: bytes, architecture: int, width: int, height: int, y_data: bytes,
                 z_data: bytes | None = None, quality: int | None = None) -> bytes:
    """The encoder's side of spec §7.1: z_data is given exactly when architecture != 0; a stream with a
    ``quality`` (0 .. 255) is of version 2, one without of version 1."""
    if (z_data is None) != (architecture == 0):
        raise ValueError("a z sub-stream is written exactly for architectures other than 0")
    z_part = b"" if z_data is None else len(z_data).to_bytes(4, "little") + z_data
    head = bytes([1, architecture]) if quality is None else bytes([2, architecture, quality])
    return (MAGIC + head + model_id + width.to_bytes(2, "little") + height.to_bytes(2, "little") + z_part
            + len(y_data).to_bytes(4, "little") + y_data)


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
    for k, (cout, cin) in zip((0, 2, 4, 6), ((n, 3), (n, n), (n, n), (m, n)), strict=True):
        shapes.update({f"analysis.{k}.weight": (cout, cin, 5, 5), f"analysis.{k}.bias": (cout,)})
        if k < 6:
            shapes.update({f"analysis.{k + 1}.beta": (cout,), f"analysis.{k + 1}.gamma": (cout, cout)})
    if model.architecture != "factorized":
        first = model.encoder.get("hyper_analysis.0.weight")
        on_y = model.architecture != "hyperprior" and first is not None and first.shape[1] == m  # CompressAI's
        for j, (cout, cin, k) in enumerate(floatnet.hyper_analysis_kernels(model.architecture, n, m,
                                                                           m if on_y else None)):
            shapes.update({f"hyper_analysis.{j}.weight": (cout, cin, k, k), f"hyper_analysis.{j}.bias": (cout,)})
    if model.levels:  # the encoder-side gains of every quality level (Annex A.1.6)
        shapes["quality.y_gain"] = (model.levels, m)
        if model.architecture != "factorized":
            shapes["quality.z_gain"] = (model.levels, n)
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
        if name.startswith("quality.") and t.min() <= 0:
            raise ModelError(f"gain tensor encoder.{name} must be positive", "A.1.6")


def quantize(v: np.ndarray) -> np.ndarray:
    """Round to the nearest integer and clamp to the activation range (Annex A.1.3)."""
    if not np.all(np.isfinite(v)):
        raise ModelError("the model's analysis transform overflows on this image", "A.1.3")
    return np.clip(np.rint(v), ACT_MIN, ACT_MAX).astype(np.int64)


def analyse(pixels: np.ndarray, model: Model, level: int | None = None) -> np.ndarray:
    """y: the float analysis g_a as integers in the unit of y_hat (Annex A.1.3)."""
    return analyse_all(pixels, model, level)[0]


def encoder_gain(model: Model, name: str, level: int | None) -> np.ndarray | float:
    """The encoder-side gain ``name`` (y or z) of quality ``level`` per channel, shaped (C, 1, 1); 1 without a
    level (Annex A.1.6)."""
    return 1.0 if level is None else model.encoder[f"quality.{name}_gain"][level].astype(np.float32)[:, None, None]


def analyse_all(pixels: np.ndarray, model: Model, level: int | None = None, progress=None) -> tuple:
    """(y, z): g_a (times the gain of quality ``level``) times 2^F (F the model's mean_shift, spec §8.3,
    §8.8) rounded to integers, and h_a of the float latent (times the z gain) times 2^Fz rounded; z is
    None for factorized (Annex A.1.3, A.1.6). Both are in the units of the latents; the values coded are
    chosen from them (``per_channel_values``). ``progress(latent rows done, latent rows)`` follows g_a."""
    check_encoder(model)
    x = pad_to_stride(pixels).transpose(2, 0, 1).astype(np.float32) / 255.0
    with np.errstate(over="ignore", invalid="ignore"):
        y = floatnet.analysis(x, model.encoder, progress) * encoder_gain(model, "y", level)
        z = None
        if model.architecture != "factorized":
            z = floatnet.hyper_analysis(y, model.encoder, model.architecture) * encoder_gain(model, "z", level)
            z = z * np.float32(1 << model.z_shift)
        y = y * np.float32(1 << model.mean_shift)
    return quantize(y), None if z is None else quantize(z)


def encoder_kernels(impl: str) -> tuple:
    """(encode_values, code_joint) of an implementation: the rANS encoder (Annex A.2) and the
    encoder's run of the loop of spec §8.10 (Annex A.1.4)."""
    kernels(impl)  # a known implementation
    if impl == "reference":
        return rans.encode_values, encoder_latents.code_joint
    from refcodec.fast import joint as fast_joint
    from refcodec.fast import rans as fast_rans

    return fast_rans.encode_values, fast_joint.code_joint


def per_channel_values(x: np.ndarray, median: np.ndarray, shift: int) -> tuple:
    """(latents, values) of latents coded with one table row per channel (spec §8.3): the value v of each
    chosen for x with ``choose_value`` around the channel's median, and the latent v * 2^shift + median
    the decoder rebuilds from it. Without medians and fractional bits both are x, coded as given (the
    conformance vectors code latents outside the activation range that way)."""
    if shift == 0 and not median.any():
        return x, x
    median = median.astype(np.int64)[:, None, None]
    values = encoder_latents.choose_value(x, median, shift)
    return latents.latent_values(values, median, shift), values


def y_symbols(y: np.ndarray, model: Model, z_hat, impl: str, level: int | None = None) -> tuple:
    """(y_hat, values, table rows): the latents the decoder rebuilds from the coded values, and the
    values and rows of the y sub-stream in coding order (spec §8.3, §8.8-§8.11, Annex A.1.4)."""
    if model.architecture == "factorized":
        y_hat, values = per_channel_values(y, model.y_median, model.mean_shift)
        return y_hat, values.reshape(-1), latents.channel_rows(*y.shape)
    params = latents.hyper_synthesis(gained(z_hat, model.z_gain, level), model, *y.shape[1:], kernels(impl).layers)
    if model.architecture == "joint":  # position by position, the M channels of each (spec §8.10)
        y_hat, values, rows = encoder_kernels(impl)[1](y, model, params)
        return y_hat, values.transpose(1, 2, 0).reshape(-1), rows.transpose(1, 2, 0).reshape(-1)
    rows, means = latents.gaussian_params(params, model)
    values = encoder_latents.choose_value(y, means, model.mean_shift)
    return latents.latent_values(values, means, model.mean_shift), values.reshape(-1), rows.reshape(-1)


def code_latents(y: np.ndarray, model: Model, width: int, height: int, impl: str = "fast",
                 z_hat: np.ndarray | None = None, level: int | None = None) -> tuple:
    """(stream, y_hat): integer latents y (and hyper-latents) coded into a complete stream (spec §7,
    Annex A.1.4) of quality ``level`` (a version-2 stream; None: version 1), and the latents y_hat a
    decoder rebuilds from it (y itself when F = 0)."""
    encode_values = encoder_kernels(impl)[0]
    z_data = None
    if z_hat is not None:  # every architecture but factorized
        z_hat, z_values = per_channel_values(z_hat, model.z_median, model.z_shift)
        z_data = encode_values(z_values.reshape(-1), latents.channel_rows(*z_hat.shape), model.z_table)
    y_hat, values, rows = y_symbols(y, model, z_hat, impl, level)
    y_data = encode_values(values, rows, model.y_table)
    return write_stream(model.model_id, model.code, width, height, y_data, z_data, level), y_hat


def encode_latents(y: np.ndarray, model: Model, width: int, height: int, impl: str = "fast",
                   z_hat: np.ndarray | None = None, level: int | None = None) -> bytes:
    """The stream of ``code_latents``."""
    return code_latents(y, model, width, height, impl, z_hat, level)[0]


def quality_level(model: Model, quality: int | None) -> int | None:
    """The stream's quality level (0 .. L-1) of a user's ``quality`` 1 .. L (None: the middle one), or None
    for a model without quality levels; raises InputError for a quality the model does not have."""
    if not model.levels:
        if quality is not None:
            raise InputError(f"model {model.name!r} has a single rate: it takes no quality", "A.1.6")
        return None
    if quality is None:
        return (model.levels + 1) // 2 - 1
    if not (isinstance(quality, int) and 1 <= quality <= model.levels):
        raise InputError(f"quality {quality!r} is outside 1..{model.levels} of model {model.name!r}", "A.1.6")
    return quality - 1


def encode(image, model="factorized", impl: str = "fast", return_reconstruction: bool = False,
           quality: int | None = None, progress=None):
    """Encode an RGB or grayscale image (path, PIL image or array) to a refcodec stream.

    ``quality`` 1 .. L chooses a level of a model with quality levels (default: the middle one);
    a model without levels takes none. With ``return_reconstruction=True`` also returns the
    decoder's output for the stream, computed by the decoder's integer synthesis.
    ``progress(rows done, rows in all)``, if given, is called as the analysis and then the
    reconstruction complete picture rows (the picture's height each).
    """
    model = resolve_model(model)
    level = quality_level(model, quality)
    pixels = to_rgb_array(image)
    h, w, _ = pixels.shape
    total = 2 * h if return_reconstruction else h

    def analysed(done: int, rows: int) -> None:
        if progress is not None:
            progress(min(h, done * STRIDE), total)

    def reconstructed(done: int, rows: int) -> None:
        if progress is not None:
            progress(h + done, total)

    y, z_hat = analyse_all(pixels, model, level, analysed)
    stream, y_hat = code_latents(y, model, w, h, impl, z_hat, level)
    if not return_reconstruction:
        return stream
    return stream, synthesis(gained(y_hat, model.y_gain, level), model.synthesis, h, w, impl, progress=reconstructed)


def search_quality(image, model, target: float, measure: str, impl: str = "fast") -> int:
    """The quality 1 .. L whose stream's ``measure`` ("bpp" or "psnr") is nearest to ``target``, as cwebp's
    -size and -psnr: a binary search over the levels (both grow with the level), then the nearer of the two
    levels around the target. Raises InputError for a model without quality levels."""
    model = resolve_model(model)
    if not model.levels:
        raise InputError(f"model {model.name!r} has a single rate: there is no quality to search", "A.1.6")
    pixels = to_rgb_array(image)
    h, w, _ = pixels.shape
    cache: dict = {}

    def value(q: int) -> float:
        if q not in cache:
            stream, recon = encode(pixels, model, impl, return_reconstruction=True, quality=q)
            cache[q] = 8 * len(stream) / (w * h) if measure == "bpp" else psnr(pixels, recon)
        return cache[q]

    lo, hi = 1, model.levels
    while hi - lo > 1:  # value(lo) <= target <= value(hi), or the target is outside the ladder
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if value(mid) <= target else (lo, mid)
    return min((lo, hi), key=lambda q: (abs(value(q) - target), q))
