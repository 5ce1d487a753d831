"""The decoding process (spec §8): from the first byte of a stream to pixels.

    header  = parse_stream(data)                          spec §7
    model   = find_model(header.model_id)                 spec §6.5, §8.1
    z_hat   = decode_latents(z_data, z table)             spec §8.3   (not for factorized)
    params  = hyper_synthesis(z_hat)                      spec §8.7   (h_s, cropped)
    y_hat   = factorized:  decode_latents(y_data)         spec §8.3
              hyperprior, mean-scale: decode_gaussian     spec §8.8, §8.9
              joint:       decode_joint (sequential)      spec §8.10
    pixels  = synthesis(y_hat, model.synthesis)           spec §8.4, §8.5 (layers, spec §5)

``decode_stream`` runs these steps in bounded memory (``picture_bands``, refcodec.decoder.bands): the
latents held as s16, the hyper-synthesis and the synthesis in horizontal bands, and the joint
architecture's ŷ decoded row by row just ahead of the synthesis band that needs it. ``decode_y`` and
``stages`` compute the whole arrays (the stages of §9.4).

``impl="reference"`` runs the NumPy code of this package, which mirrors the
spec line by line. Other implementations register themselves in the table of
``register`` (``refcodec.fast`` adds ``impl="fast"``: Numba, integer SIMD);
every implementation gives the same bytes for every stream
(tests/test_roundtrip.py, tests/test_spec_decoder.py). This package imports
nothing from refcodec.fast, refcodec.encoder or refcodec.conformance.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from refcodec.decoder import latents, layers
from refcodec.decoder.bands import JointLatents, WholeLatents, synthesis_bands
from refcodec.decoder.bitstream import STRIDE, StreamHeader, parse_stream
from refcodec.decoder.conventions import clause, clip3, round2
from refcodec.decoder.errors import LimitError, StreamError
from refcodec.decoder.layers import ACT_MAX, ACT_MIN
from refcodec.decoder.model import Model, find_model

GAIN_SHIFT = 16  # spec §8.11: quality gains are in units of 2^-16
Progress = Callable[[int, int], None]  # progress(rows done, rows in all), called as picture rows are completed


@dataclass(frozen=True)
class Implementation:
    """The kernels of one implementation of the decoding process.

    ``layers.run_layers`` runs a group of layers (spec §5.7); ``reader(data, name, table)`` decodes a
    sub-stream value by value (spec §3) in the orders of §8.3, §8.9 and §8.10
    (refcodec.decoder.latents.LatentReader).
    """

    layers: ModuleType
    reader: type


_TABLE: dict = {"reference": Implementation(layers, latents.LatentReader)}


def register(name: str, build: Callable[[], Implementation]) -> None:
    """Add an implementation, built by ``build()`` on its first use (its kernels compile then)."""
    _TABLE[name] = build


def implementations() -> tuple:
    """The names of the registered implementations."""
    return tuple(_TABLE)


def kernels(impl: str) -> Implementation:
    """The registered implementation ``impl``, built on first use."""
    entry = _TABLE.get(impl)
    if entry is None:
        raise ValueError(f"impl must be one of {implementations()}, not {impl!r}")
    if not isinstance(entry, Implementation):
        entry = _TABLE[impl] = entry()
    return entry


def check_architecture(header: StreamHeader, model: Model) -> None:
    """The stream's architecture code must be the model's, and its quality one of the model's levels (spec §8.1)."""
    if model.code != header.architecture:
        raise StreamError(f"stream architecture {header.architecture} does not match model "
                          f"architecture {model.architecture!r} ({model.code})", "8.1")
    if header.quality is not None and header.quality >= model.levels:
        raise StreamError(f"stream quality {header.quality} is not a level of the model, which has {model.levels}",
                          "8.1")


@clause("8.11")
def apply_gain(x: np.ndarray, gain_row: np.ndarray) -> np.ndarray:
    """ApplyGain (spec §8.11): Clip3(ACT_MIN, ACT_MAX, Round2(x[c] * gain_row[c], GAIN_SHIFT)) per channel c."""
    return clip3(ACT_MIN, ACT_MAX, round2(x * gain_row.astype(np.int64)[:, None, None], GAIN_SHIFT))


def gained(x: np.ndarray, gain: Any, quality: int | None) -> np.ndarray:
    """The input of the next transform: x with the gains of level ``quality`` (spec §8.11), x itself for a
    stream without a quality (version 1)."""
    return x if quality is None else apply_gain(x, gain[quality])


def decode_z(header: StreamHeader, model: Model, kit: Implementation) -> np.ndarray:
    """ẑ (spec §8.3), (N, ZH, ZW) s16."""
    return latents.decode_latents(header.z_data, model.z_table, (model.n, *header.hyper_shape), "z", kit.reader,
                                  model.z_median, model.z_shift)


def decode_factorized(header: StreamHeader, model: Model, kit: Implementation) -> np.ndarray:
    """ŷ of the factorized architecture (spec §8.3), (M, LatH, LatW) s16."""
    return latents.decode_latents(header.y_data, model.y_table, (model.m, *header.latent_shape), "y", kit.reader,
                                  model.y_median, model.mean_shift)


@clause("8.6")
def decode_y(header: StreamHeader, model: Model, impl: str = "reference") -> dict:
    """DecodeY (spec §8.6): the decoded latents: {"y_hat"} and, except for factorized, {"z_hat", "params"}
    (spec §8.3, §8.7-§8.11), each whole (the stages of §9.4); decode_stream bounds its memory instead."""
    kit = kernels(impl)
    lat_h, lat_w = header.latent_shape
    if model.architecture == "factorized":
        return {"y_hat": decode_factorized(header, model, kit)}
    z_hat = decode_z(header, model, kit)
    params = latents.hyper_synthesis(gained(z_hat, model.z_gain, header.quality), model, lat_h, lat_w, kit.layers)
    if model.architecture == "joint":
        y_hat = latents.decode_joint(header.y_data, model, params, kit.reader)
    else:
        rows, means = latents.gaussian_params(params, model)
        means = None if model.architecture == "hyperprior" else means.astype(np.int16)
        y_hat = latents.decode_gaussian(header.y_data, model, rows.astype(np.uint8), means, kit.reader)
    return {"z_hat": z_hat, "params": params, "y_hat": y_hat}


def synthesis_latents(header: StreamHeader, model: Model, impl: str,
                      hyper_rows: int | None = None) -> WholeLatents | JointLatents:
    """ŷ as the synthesis reads it, in bounded memory (refcodec.decoder.bands): for factorized, hyperprior and
    mean-scale decoded whole as s16 (spec §8.3, §8.9; the hyper parameters computed in bands and kept as
    table rows and means); for joint decoded row by row as the synthesis asks for rows (§8.10). The
    hyper-synthesis runs in bands of ``hyper_rows`` latent rows (None: a height for bounded memory)."""
    kit = kernels(impl)
    lat_h, lat_w = header.latent_shape
    if model.architecture == "factorized":
        return WholeLatents(decode_factorized(header, model, kit))
    z_in = gained(decode_z(header, model, kit), model.z_gain, header.quality)
    if model.architecture == "joint":
        latents.check_sub_stream_length(header.y_data, model.m * lat_h * lat_w, "y")
        return JointLatents(kit.reader(header.y_data, "y", model.y_table), model, z_in, lat_h, lat_w,
                            kit.layers.run_layers, hyper_rows)
    rows, means = latents.gaussian_tables(z_in, model, lat_h, lat_w, kit.layers.run_layers, hyper_rows)
    return WholeLatents(latents.decode_gaussian(header.y_data, model, rows, means, kit.reader))


def stages(data: bytes, model_files=(), impl: str = "reference") -> dict:
    """Every intermediate stage of spec §9.4, in decoding order: name -> int64 array (C, H, W).

    z_hat, z_gain, hyper_synthesis, table_index, mean (not for factorized; z_gain only with a
    quality, mean only with means), y_hat, y_gain (only with a quality), synthesis.0 .. synthesis.6
    (the last before cropping). For joint, the table rows and means are those of §8.10 step 4,
    computed here from the decoded y_hat at once (§5.8).
    """
    header, model = open_stream(data, model_files, impl)
    decoded = decode_y(header, model, impl)
    layer_impl = kernels(impl).layers
    out = {}
    if model.architecture != "factorized":
        params = decoded["params"]
        if model.architecture == "joint":
            params = latents.joint_params(decoded["y_hat"], params, model, layer_impl)
        rows, means = latents.gaussian_params(params, model)
        out["z_hat"] = decoded["z_hat"].astype(np.int64)
        if header.quality is not None:
            out["z_gain"] = gained(decoded["z_hat"], model.z_gain, header.quality)
        out.update({"hyper_synthesis": decoded["params"], "table_index": rows})
        if model.architecture != "hyperprior":
            out["mean"] = means
    out["y_hat"] = decoded["y_hat"].astype(np.int64)
    y_in = gained(decoded["y_hat"], model.y_gain, header.quality)
    if header.quality is not None:
        out["y_gain"] = y_in
    for k, x in enumerate(layer_impl.run_layers(y_in, model.synthesis)):
        out[f"synthesis.{k}"] = x.astype(np.int64)
    return out


def stage_bytes(array: np.ndarray) -> bytes:
    """A stage as spec §9.4 stores it: little-endian s32, row-major."""
    return np.ascontiguousarray(array, dtype="<i4").tobytes()


def crop(out: np.ndarray, width: int, height: int) -> np.ndarray:
    """The picture: the top-left height x width of the synthesis output (spec §8.5), (H, W, 3) uint8."""
    return np.ascontiguousarray(out[:, :height, :width].transpose(1, 2, 0)).astype(np.uint8)


@clause("8.4")
def synthesis(y_hat: np.ndarray, layers: list, height: int, width: int, impl: str = "reference",
              band_height: int | None = None, progress: Progress | None = None) -> np.ndarray:
    """Synthesis (spec §8.4) and the crop of §8.5: the (height, width, 3) uint8 picture, the layers run in
    bands of ``band_height`` pixel rows (refcodec.decoder.bands; None: a height for bounded memory);
    ``progress(rows done, height)`` is called after each band."""
    out = np.empty((height, width, 3), np.uint8)
    run_layers = kernels(impl).layers.run_layers
    for row, rows in synthesis_bands(lambda lo, hi: y_hat[:, lo:hi], layers, run_layers, height, width,
                                     band_height):
        out[row : row + rows.shape[0]] = rows
        if progress is not None:
            progress(row + rows.shape[0], height)
    return out


def open_stream(data: bytes, model_files=(), impl: str = "reference", max_pixels: int | None = None) -> tuple:
    """(header, model): the stream's header (spec §7) and the model it names, checked (spec §8.1). A picture
    of more than ``max_pixels`` pixels is refused (LimitError) before the model is looked up."""
    kernels(impl)
    header = parse_stream(bytes(data))
    if max_pixels is not None and header.width * header.height > max_pixels:
        raise LimitError(f"the picture is {header.width}x{header.height} = {header.width * header.height} pixels, "
                         f"more than max_pixels = {max_pixels}", "7.3")
    model = find_model(header.model_id, model_files)
    check_architecture(header, model)
    return header, model


def picture_bands(header: StreamHeader, model: Model, impl: str = "reference", band_height: int | None = None,
                  progress: Progress | None = None) -> Iterator[tuple]:
    """(first row, pixels): the picture of a stream (spec §8.6) in bands of ``band_height`` rows (None: a
    height for bounded memory), top to bottom, each (rows, width, 3) uint8, in bounded memory
    (refcodec.decoder.bands; the hyper-synthesis in bands of band_height / 16 latent rows);
    ``progress(rows done, height)`` is called after each band. An error of the stream can be raised after
    some bands (joint: ŷ is decoded as the bands need it), so that a writer of the bands must not let them
    become output before the last (spec §2.6)."""
    source = synthesis_latents(header, model, impl, band_height and band_height // STRIDE)
    run_layers = kernels(impl).layers.run_layers

    def synthesis_input(lo: int, hi: int) -> np.ndarray:  # spec §8.11: the gain applies row by row
        return gained(source.rows(lo, hi), model.y_gain, header.quality)

    for row, rows in synthesis_bands(synthesis_input, model.synthesis, run_layers, header.height, header.width,
                                     band_height):
        if row + rows.shape[0] == header.height:
            source.close()
        yield row, rows
        if progress is not None:
            progress(row + rows.shape[0], header.height)


@clause("8.6")
def decode_stream(data: bytes, model_files=(), impl: str = "reference", band_height: int | None = None,
                  max_pixels: int | None = None, progress: Progress | None = None) -> np.ndarray:
    """DecodeStream (spec §8.6): a refcodec stream decoded to an (H, W, 3) uint8 array; the synthesis runs in
    bands of ``band_height`` pixel rows (None: a height for bounded memory), with the same result; a picture
    of more than ``max_pixels`` pixels is refused before decoding (LimitError); ``progress(rows done, height)``
    is called after each band."""
    header, model = open_stream(data, model_files, impl, max_pixels)
    out = np.empty((header.height, header.width, 3), np.uint8)
    for row, rows in picture_bands(header, model, impl, band_height, progress):
        out[row : row + rows.shape[0]] = rows
    return out
