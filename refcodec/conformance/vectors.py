"""Generation of the golden vectors (spec §9.3; run by hand: the tests only verify them).

    python -m refcodec.conformance.vectors [--models refcodec/models] [--out DIR]
    python vectors/generate.py [--models refcodec/models] [--out DIR]     (the same; DIR defaults to vectors/)

Each vector is a folder with the stream, the expected decoded picture as PNG, and manifest.json
(description, size, model identity, the spec clauses it exercises, SHA-256 of the decoded pixels
as raw RGB bytes in row-major order, the checksums of the stages of §9.4): the format of
refcodec.conformance.suite. A negative vector has no picture; its manifest names the error class
a decoder must report ("expected_error", spec §2.6). Models are stored once, in models/, named by
their identity (spec §6.5). Every positive vector is decoded by both of refcodec's decoders,
which must agree, and its stages include z_gain and y_gain exactly for a version-2 stream
(§9.4); every negative vector must make both report its class for a clause its manifest lists.
The vectors of the quality levels of edition 4 (§6.3, §6.4, §7.1, §8.1, §8.11) are checked as
they are made: their gains and latents make ApplyGain clip both ways and meet exact ties of
both signs. The same refcodec writes the same bytes: vectors/ is regenerated only when the
format changes, and a vector once published keeps its stream, model and picture.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from refcodec import decode, encode
from refcodec.conformance.models import (
    IDENTITY_GAIN,
    bound_model,
    random_model,
    ties_model,
    with_edition5,
    with_gains,
)
from refcodec.conformance.suite import (
    DEFAULT_VECTORS,
    index_entry,
    positive_manifest,
    store_model,
    write_json,
    write_vector_folder,
)
from refcodec.decoder import decoding
from refcodec.decoder.bitstream import (
    FIXED_BYTES,
    HEADER_BYTES,
    LEVELS,
    MAX_CHANNELS,
    MAX_DIMENSION,
    MAX_WORDS_PER_VALUE,
    hyper_size,
    latent_size,
    parse_stream,
)
from refcodec.decoder.conventions import clip3, read_le, round2, sha256
from refcodec.decoder.decoding import GAIN_SHIFT
from refcodec.decoder.errors import RefcodecError
from refcodec.decoder.json_text import MAX_JSON_DEPTH, parse_json
from refcodec.decoder.latents import channel_rows
from refcodec.decoder.layers import ACT_MAX, ACT_MIN
from refcodec.decoder.model import (
    ARCHITECTURES,
    MAX_GAIN,
    MAX_HEADER_BYTES,
    MAX_QUALITY_LEVELS,
    MODELS_DIR,
    load_model,
    model_from_file,
    parse_container,
)
from refcodec.encoder import encode as encoder
from refcodec.encoder import rans
from refcodec.encoder.encode import code_latents, encode_latents
from refcodec.encoder.export import save_safetensors

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample.png"


def smooth_image(seed: int, w: int, h: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(max(1, h // 8), max(1, w // 8), 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize((w, h), Image.Resampling.BILINEAR))


CLAUSES = {"factorized": ["8.3"], "hyperprior": ["8.3", "8.7", "8.8", "8.9", "5.6", "5.7"],
           "mean-scale": ["8.3", "8.7", "8.8", "8.9", "5.6", "5.7"],
           "joint": ["8.3", "8.7", "8.8", "8.10", "5.6", "5.7", "5.8"]}


EVERY_DECODE = ["2.1", "2.2", "2.3", "2.4", "2.5", "2.7", "3.1", "3.2", "3.3", "3.6", "4.1", "4.2", "5.1", "6.1",
                "6.2", "6.3", "6.4", "6.5", "7.1", "7.2", "7.3", "8.1", "8.2", "8.4", "8.5", "8.6", "9.1", "9.2",
                "9.3", "9.4"]  # what decoding any valid stream exercises, with its stage checksums


def _clause_order(clause: str) -> tuple:
    return tuple(int(part) if part.isdigit() else 0 for part in clause.split("."))


def hyper_shape(model, lat: tuple) -> tuple:
    """(N, ZH, ZW): the shape of ẑ for latents of size ``lat`` (spec §8.2)."""
    return (model.n, *hyper_size(*lat))


def extreme_latents(model, lat: tuple, seed: int) -> tuple:
    """(y, z) far outside every table: multi-nibble escapes and the s16 extremes, in y and (hyperprior family) z."""
    rng = np.random.default_rng(seed)
    y = rng.integers(-3, 4, size=(model.m, *lat))
    y[0, 0, 0], y[1 % model.m, 0, 1], y[2 % model.m, 1, 2] = 32767, -32768, 1000
    y[3 % model.m] = rng.integers(-200, 200, size=lat)
    if model.architecture == "factorized":
        return y, None
    z = rng.integers(-3, 4, size=hyper_shape(model, lat))
    z[0, 0, 0], z[1 % model.n, 0, -1] = 32767, -32768
    return y, z


def model_vectors(model_path: Path):
    """(name, description, clauses, stream) for every vector of one model (a shipped model)."""
    model = load_model(model_path.read_bytes())
    arch = model.architecture
    prefix = "" if arch == "factorized" else f"{arch}-"  # the factorized names of edition 1 stay as they were
    common = CLAUSES[arch]
    yield (f"{prefix}photo-200x200", f"The package's sample photo through the whole {arch} pipeline.",
           sorted({"7.1", "8.2", "8.4", "8.5", "3.3", "5.2", "5.3", "5.4", "5.5", *common}),
           encode(SAMPLE, model=model))
    yield (f"{prefix}size-1x1", "A 1x1 picture: one latent position, 15 of 16 rows and columns cropped.",
           ["8.2", "8.5", *common], encode(smooth_image(1, 1, 1), model=model))
    if arch == "factorized":
        yield ("size-33x17", "Odd size one above a multiple of the stride (33 = 2*16 + 1) by 17.",
               ["8.2", "8.5"], encode(smooth_image(2, 33, 17), model=model))
        yield "size-1x40", "A single column, 40 rows.", ["8.2", "8.5"], encode(smooth_image(3, 1, 40), model=model)
    else:
        yield (f"{prefix}size-65x17", "Width one above a multiple of 64: 5 latent columns, 2 hyper-latent columns "
               "whose hyper-synthesis output (8 columns) is cropped to 5.", ["8.2", "8.5", "8.7", *common],
               encode(smooth_image(2, 65, 17), model=model))
        yield (f"{prefix}size-40x1", "A single row, 40 columns.", ["8.2", "8.5", *common],
               encode(smooth_image(3, 40, 1), model=model))
    zero_z = None if arch == "factorized" else np.zeros(hyper_shape(model, (2, 2)), np.int64)
    yield (f"{prefix}latents-zero", "All latents (and hyper-latents) zero (32x32): the model's bias response only.",
           ["8.4", *common], encode_latents(np.zeros((model.m, 2, 2), np.int64), model, 32, 32, z_hat=zero_z))
    y, z = extreme_latents(model, (2, 3), 4)
    yield (f"{prefix}latents-escapes", "Latents far outside every table: escapes with 3 and 4 raw nibbles, "
           "the extreme values -32768 and 32767 (in z too, driving the hyper-synthesis to its limits), hidden "
           "activations clamped at the s16 limits, pixels clamped at 0 and 255.",
           ["3.4", "3.5", "5.3", "5.5", *common], encode_latents(y, model, 40, 30, z_hat=z))


def stress_vectors():
    """(name, description, clauses, stream, model bytes): valid models with every weight, bias and shift at
    the limits of spec §6.4 (refcodec.conformance.models.random_model stress=True), one per architecture."""
    for k, arch in enumerate(ARCHITECTURES):
        data = random_model(np.random.default_rng(20 + k), 2, 3, stress=True, name=f"stress-{arch}",
                            architecture=arch, levels=None if arch == "factorized" else 6)
        model = load_model(data)
        y, z = extreme_latents(model, (3, 5), 30 + k)
        yield (f"stress-{arch}", f"A {arch} model (N=2, M=3) whose weights, biases and shifts sit at the bounds "
               "of spec §6.4 (48-bit accumulators, 53-bit IGDN norms), with extreme latents: outputs clamp at "
               "their limits.", ["3.7", "6.4", "5.2", "5.4", "5.6", *CLAUSES[arch]],
               encode_latents(y, model, 70, 40, z_hat=z), data)


def bound_vectors():
    """(name, description, clauses, stream, model bytes): refcodec.conformance.models.bound_model with every latent
    and hyper-latent -32768, so every accumulator and IGDN norm reaches its bound of spec §5 exactly."""
    for arch in ARCHITECTURES:
        data = bound_model(arch, 2, 3, name=f"bounds-{arch}")
        model = load_model(data)
        y = np.full((model.m, 9, 9), -32768)
        z = None if arch == "factorized" else np.full(hyper_shape(model, (9, 9)), -32768)
        relu = " (the ReLU layers of h_s: +(2^47 - 1) in the first, within sum|weight| of it after)" \
            if arch == "hyperprior" else ""
        yield (f"bounds-{arch}", f"Every latent and hyper-latent -32768 through a {arch} model built so that every "
               f"convolution accumulator reaches -(2^47 - 1) exactly{relu}, every IGDN norm 2^53 - 1 "
               "exactly (Isqrt 94906265, x * Isqrt -2^15 * 94906265), activations clamp at -32768, the table "
               "selection and the means at their limits, pixels at 0.",
               ["2.4", "3.7", "5.2", "5.3", "5.4", "5.5", "5.6", "6.4", *CLAUSES[arch]],
               encode_latents(y, model, 144, 144, z_hat=z), data)


def ties_vectors():
    """(name, description, clauses, stream, model bytes): refcodec.conformance.models.ties_model, whose small shifts
    make exact rounding ties frequent in every layer (refcodec.conformance.coverage --ties checks each)."""
    for k, arch in enumerate(ARCHITECTURES):  # seeds for which every layer's ties show (coverage --ties)
        data = ties_model(arch, 3, 3, seed=6 if arch == "joint" else 5, name=f"ties-{arch}")
        model = load_model(data)
        rng = np.random.default_rng(50 + k)
        y = rng.integers(-12, 13, size=(3, 4, 5))
        z = None if arch == "factorized" else rng.integers(-6, 7, size=hyper_shape(model, (4, 5)))
        yield (f"ties-{arch}", f"A {arch} model with shifts of 1 and 2 and small weights: activations far from "
               "the clamps and many exact ties of Round2 in every layer, so rounding a tie the wrong way "
               "anywhere changes the output.", ["2.4", "5.3", "5.4", "5.6", *CLAUSES[arch]],
               encode_latents(y, model, 70, 50, z_hat=z), data)


def mean_shift_vectors():
    """(name, description, clauses, stream, model bytes): mean-scale and joint models with a mean shift
    (spec §6.3, §8.8), small means off the integer grid, and latents spread over the s16 range."""
    for k, (arch, shift) in enumerate((("mean-scale", 3), ("joint", 8))):
        data = ties_model(arch, 3, 3, seed=7 + k, name=f"mean-shift-{arch}", mean_shift=shift)
        model = load_model(data)
        rng = np.random.default_rng(60 + k)
        y = rng.integers(-32768, 32768, size=(3, 4, 5))
        y[0, 0, :2] = -32768, 32767  # the value nearest the s16 limits (Annex A.1.4)
        z = rng.integers(-6, 7, size=hyper_shape(model, (4, 5)))
        yield (f"mean-shift-{arch}", f"A {arch} model with mean shift F = {shift}: every latent is v * 2^{shift} + "
               "mean, the means (small, of either sign) are not multiples of 2^F, and the latents range over the "
               "whole s16 range, up to its limits.", ["5.6", "6.3", *CLAUSES[arch]],
               encode_latents(y, model, 70, 50, z_hat=z), data)


# --- picture sizes and levels (edition 5: spec §7.3) --------------------------------------------------------

# name, architecture, width, height, the picture rows (tall) or columns of the latents that are not 0: on both
# sides of 4096 and 8192 samples (latent 256 and 512), and the last
LEVEL_VECTORS = (("size-4112x16", "factorized", 4112, 16, (0, 1, 255, 256)),
                 ("size-16384x16", "factorized", MAX_DIMENSION, 16, (0, 255, 256, 511, 512, 1023)),
                 ("joint-size-16x16384", "joint", 16, MAX_DIMENSION, (0, 255, 256, 511, 512, 1023)))


def level_model(arch: str) -> bytes:
    """A small model (N = 2, M = 2 or 3) with the layers of ``ties_model`` (weights -1, 0, 1, shifts 1 and 2),
    so that a single latent reaches the picture, unlike the large shifts of a random model."""
    return ties_model(arch, 2, 2 if arch == "factorized" else 3, seed=5 if arch == "factorized" else 6,
                      name=f"levels-{arch}")


def level_vectors():
    """(name, description, clauses, stream, model bytes): pictures larger than 4096 on a side (levels 2 and 3,
    spec §7.3) of small models, their latents 0 but at a few positions on both sides of 4096 and 8192 samples
    and at the last, so that a decoder that puts a latent in the wrong column or row, or stops at 4096, fails."""
    for name, arch, width, height, spots in LEVEL_VECTORS:
        data = level_model(arch)
        model = load_model(data)
        lat = latent_size(height, width)
        tall = height > width
        y = np.zeros((model.m, *lat), np.int64)
        z = None if arch == "factorized" else np.zeros(hyper_shape(model, lat), np.int64)
        for k, pos in enumerate(spots):
            for c in range(model.m):
                y[(c, pos, 0) if tall else (c, 0, pos)] = (-1) ** (k + c) * (5 + 7 * k + 3 * c)
            if z is not None:
                for c in range(model.n):
                    z[(c, pos // 4, 0) if tall else (c, 0, pos // 4)] = (-1) ** (k + c) * (3 + 2 * k + c)
        stream = encode_latents(y, model, width, height, "reference", z)
        level = parse_stream(stream).level
        assert level == (2 if max(width, height) <= LEVELS[1][1] else 3), name
        side, cells = ("rows", "latent rows") if tall else ("columns", "latent columns")
        around = " and ".join(str(b) for b in (4096, 8192) if b < max(width, height))
        yield (name, f"A {width}x{height} picture (level {level}, spec §7.3) of a small {arch} model "
               f"(N = {model.n}, M = {model.m}): latents 0 but in the {cells} {', '.join(map(str, spots))} "
               f"(of {max(lat)}){'' if z is None else ', and hyper-latents in the rows holding them'}, so "
               f"that the picture differs from the model's bias response around sample {side} {around} and "
               "at the last. A decoder of edition 4 rejects it (a side above 4096).",
               ["7.1", "7.2", "7.3", "8.2", "8.5", *CLAUSES[arch]], stream, data)


# --- models trained with CompressAI (edition 5: spec §5.6, §6.3, §8.3) -------------------------------------

EDITION5_TENSORS = ("leaky_slope", "entropy.y.median", "entropy.y.mean_shift", "entropy.z.median",
                    "entropy.z.mean_shift")


def edition5_model(arch: str, seed: int, slope: int = 655, shift: int = 4) -> bytes:
    """A ``ties_model`` (activations far from the clamps, many negative pre-activations) with the tensors of
    edition 5: CompressAI's leaky slope 0.01 (655) or ``slope``, and medians with ``shift`` fractional bits."""
    rng = np.random.default_rng(seed)
    return with_edition5(ties_model(arch, 3, 3, seed=seed, name=f"edition5-{arch}"), rng, slope, shift)


def without(data: bytes, names: tuple) -> bytes:
    """The model file ``data`` without the tensors ``names`` it has."""
    return _broken_model(data, lambda t: [t.pop(k) for k in names if k in t])


def same_picture(pixels: np.ndarray, stream: bytes, model: bytes) -> bool:
    """Whether ``stream`` decodes with ``model`` to ``pixels`` (False if it fails to decode)."""
    try:
        return np.array_equal(pixels, decode(stream, [store_model(Path(tempfile.mkdtemp()), model)]))
    except RefcodecError:
        return False


def edition5_vectors():
    """(name, description, clauses, stream, model bytes): a model of each architecture with the tensors of
    edition 5, latents spread over the range and at its limits. Each is checked as it is made: a decoder that
    ignores the medians, or the slope, gives another picture."""
    for k, arch in enumerate(ARCHITECTURES):
        data = edition5_model(arch, 70 + k, slope=655 if arch != "joint" else 32767, shift=4 if k % 2 else 8)
        model = load_model(data)
        rng = np.random.default_rng(80 + k)
        y = rng.integers(-40 << model.mean_shift, 40 << model.mean_shift, size=(3, 4, 5))
        y[0, 0, :2] = -32768, 32767  # to the nearest latent the medians allow (Annex A.1.3)
        z = None if arch == "factorized" else rng.integers(-5 << model.z_shift, 6 << model.z_shift,
                                                           size=hyper_shape(model, (4, 5)))
        stream = encode_latents(y, model, 70, 50, "reference", z)
        pixels = decode(stream, [store_model(Path(tempfile.mkdtemp()), data)])
        dropped = [("entropy.y.median", "entropy.z.median")]
        if arch in ("mean-scale", "joint"):
            dropped.append(("leaky_slope",))
        for names in dropped:  # a decoder that ignores them decodes another picture, or fails
            other = without(data, names)
            assert not same_picture(pixels, _named(stream, other), other), (arch, names)
        slope = "" if arch == "factorized" or arch == "hyperprior" else \
            f", leaky_slope {int(model.hyper_synthesis[0].slope)} in every leaky layer (spec §5.6)"
        which = "ŷ" if arch == "factorized" else "ẑ"
        shift = model.mean_shift if arch == "factorized" else model.z_shift
        yield (f"edition5-{arch}", f"A {arch} model with the tensors of edition 5: medians of {which} with "
               f"{shift} fractional bits (spec §8.3){slope}. Latents over the range and at its limits; "
               "dropping the medians (or the slope) changes the picture.",
               ["5.6", "6.3", "6.4", "8.3", *CLAUSES[arch]], stream, data)
    data = _broken_model(bound_model("joint", 2, 3, name="edition5-bounds-joint"),
                         lambda t: t.update({"leaky_slope": np.array([32767], np.int16)}))
    model = load_model(data)
    y = np.full((model.m, 9, 9), -32768)
    z = np.full(hyper_shape(model, (9, 9)), -32768)
    yield ("edition5-bounds-joint", "The joint model of bounds-joint (every accumulator at -(2^47 - 1)) with "
           "leaky_slope 32767, the largest: the negative products a * slope reach -(2^47 - 1) * 32767, just "
           "above -2^62 (spec §5.6).", ["5.6", "6.4", *CLAUSES["joint"]],
           encode_latents(y, model, 144, 144, "reference", z), data)


def edition5_negative_vectors():
    """(name, description, clauses, stream, error class, model bytes): broken tensors of edition 5 (spec §6.3,
    §6.4) on a stream of zero latents, and a hyper-latent that only its median puts out of range (§8.3)."""
    data = edition5_model("mean-scale", 90)
    model = load_model(data)
    zeros = encode_latents(np.zeros((model.m, 1, 1), np.int64), model, 16, 16, "reference",
                           np.zeros((model.n, 1, 1), np.int64))
    for name, description, clause, edit in [
        ("neg-model-leaky-slope-0", "A mean-scale model whose leaky_slope is 0 (at least 1).", "6.4",
         lambda t: t["leaky_slope"].__setitem__(0, 0)),
        ("neg-model-leaky-slope-negative", "A mean-scale model whose leaky_slope is -655.", "6.4",
         lambda t: t["leaky_slope"].__setitem__(0, -655)),
        ("neg-model-z-mean-shift-9", "A mean-scale model whose entropy.z.mean_shift is 9 (at most 8).", "6.4",
         lambda t: t["entropy.z.mean_shift"].__setitem__(0, 9)),
        ("neg-model-z-median-shape", f"A mean-scale model whose entropy.z.median has {model.n + 1} entries "
         f"(N = {model.n}).", "6.3",
         lambda t: t.update({"entropy.z.median": np.append(t["entropy.z.median"], np.int16(0))})),
        ("neg-model-z-median-i32", "A mean-scale model whose entropy.z.median is I32 instead of I16.", "6.3",
         lambda t: t.update({"entropy.z.median": t["entropy.z.median"].astype(np.int32)})),
        ("neg-model-y-median-not-factorized", "A mean-scale model with entropy.y.median, which only the factorized "
         "architecture has (its latents are offset by their means).", "6.3",
         lambda t: t.update({"entropy.y.median": np.zeros(model.m, np.int16)})),
    ]:
        broken = _broken_model(data, edit)
        yield name, description, [clause], _named(zeros, broken), "ModelError", broken
    hp = _broken_model(edition5_model("hyperprior", 91), lambda t: t.update(
        {"leaky_slope": np.array([655], np.int16)}))
    hp_model = load_model(without(hp, ("leaky_slope",)))
    stream = encode_latents(np.zeros((hp_model.m, 1, 1), np.int64), hp_model, 16, 16, "reference",
                            np.zeros((hp_model.n, 1, 1), np.int64))
    yield ("neg-model-leaky-slope-hyperprior", "A hyperprior model (no leaky layers) with leaky_slope.", ["6.3"],
           _named(stream, hp), "ModelError", hp)
    shifted = _broken_model(data, lambda t: (t["entropy.z.mean_shift"].__setitem__(0, 4),
                                             t["entropy.z.median"].__setitem__(0, 32)))
    sm = load_model(shifted)
    values = np.zeros((sm.n, 1, 1), np.int64)
    values[0, 0, 0] = 2046  # 2046 * 2^4 = 32736 is in range; plus the median 32 it is 32768
    z_data = rans.encode_values(values.reshape(-1), channel_rows(sm.n, 1, 1), sm.z_table)
    head = encoder.write_stream(sm.model_id, sm.code, 16, 16, EMPTY_SUB_STREAM, z_data)
    yield ("neg-z-latent-out-of-range-by-median", "A hyper-latent value 2046 with mean shift 4 and median 32: "
           "2046 * 16 = 32736 is in the activation range, the latent 32736 + 32 = 32768 is not (spec §8.3).",
           ["8.3"], head, "StreamError", shifted)


EMPTY_SUB_STREAM = (1 << 31).to_bytes(8, "little")  # a valid sub-stream of no values (spec §3.8)


def small_model(name: str = "broken") -> bytes:
    """The small factorized model (N = M = 2, a few kB) that the negative vectors of model files edit."""
    return random_model(np.random.default_rng(9), 2, 2, name=name)


def small_model_stream(model: bytes) -> bytes:
    """A 16x16 stream of zero latents for the small factorized model ``model`` (or any of its edits)."""
    return encode_latents(np.zeros((2, 1, 1), np.int64), load_model(model), 16, 16)


def json_variants_model() -> bytes:
    """The small model with its header written in the less common forms of spec §2.7 that a decoder must
    accept: whitespace (tab, LF, CR, space) after the first '{', escapes in the metadata name (\\u006f, a
    surrogate pair, \\/, \\u0000), unpaired surrogates in four different member names ("x\\ud800",
    "x\\udbff", "x\\udc00\\ud800", "x\\ud800\\u0041"), a tensor name with an escape ("entropy.y.\\u0063df") and the
    integer -0 as its first data offset."""
    def edit(h: bytes) -> bytes:
        for old, new in [
            (b'"name":"broken"', b'"name":"br\\u006fken \\ud83d\\ude00 \\/ \\u0000","x\\ud800":"a","x\\udbff":"b",'
                                 b'"x\\udc00\\ud800":"c","x\\ud800\\u0041":"d"'),
            (b'"entropy.y.cdf":', b'"entropy.y.\\u0063df":'),
            (b'"data_offsets":[0,', b'"data_offsets":[-0,'),
            (b"{", b"{\t\n\r "),
        ]:
            assert h.count(old) >= 1, old
            h = h.replace(old, new, 1)
        return h

    return _header_edit(small_model(), edit)


def json_variants_vector():
    """(name, description, clauses, stream, model bytes): ``json_variants_model``, a valid model."""
    data = json_variants_model()
    meta, tensors = parse_container(data)
    plain_meta, plain = parse_container(small_model())
    high, last_high, low = chr(0xD800), chr(0xDBFF), chr(0xDC00)  # unpaired surrogates, kept as they are
    expected = {**plain_meta, "name": "broken \U0001f600 / \0", "x" + high: "a", "x" + last_high: "b",
                "x" + low + high: "c", "x" + high + "A": "d"}
    assert set(tensors) == set(plain) and meta == expected and len(expected) == len(plain_meta) + 4
    return ("model-json-variants", "A valid model whose JSON header has whitespace (tab, LF, CR, space) after its "
            "first '{', the metadata name \"br\\u006fken \\ud83d\\ude00 \\/ \\u0000\" (escapes of a letter, a "
            "surrogate pair, '/' and U+0000), four informative metadata members with unpaired surrogates in "
            "their names (\"x\\ud800\", \"x\\udbff\", \"x\\udc00\\ud800\" and \"x\\ud800\\u0041\", a high surrogate "
            "followed by an escape that is not a low one: four different names), the tensor "
            "name \"entropy.y.\\u0063df\" and the data offset -0 (which is 0).", ["2.7", "6.1", "6.2", "6.3"],
            small_model_stream(data), data)


def json_negative_vectors(small: bytes, small_stream: bytes):
    """(name, description, clauses, stream, error class, model bytes): model headers that break spec §2.7
    (each an edit of the small model's header), and a stream whose model is not the file given (§6.5)."""
    deep = 100_000  # opening brackets: far more than MAX_JSON_DEPTH, the header far below 2^20 bytes
    assert 2 * deep + len(small) < MAX_HEADER_BYTES

    def nested(levels: int):  # the metadata name a JSON array nested ``levels`` deep
        return lambda h: h.replace(b'"name":"broken"', b'"name":' + b"[" * levels + b"]" * levels, 1)

    def after_name(members: bytes):
        return lambda h: h.replace(b'"name":"broken"', b'"name":"broken"' + members, 1)

    def first_offsets(written):  # the data_offsets [0, end] of the first tensor, as written(end digits)
        return lambda h: re.sub(rb'"data_offsets":\[0,([0-9]+)\]',
                                lambda m: b'"data_offsets":' + written(m.group(1)), h, count=1)

    def exponent(digits: bytes) -> bytes:  # 288 -> 2.88e2
        return digits[:1] + b"." + digits[1:] + b"e" + str(len(digits) - 1).encode()

    assert b'"data_offsets":[0,288]' in small  # the end offset the descriptions quote
    # the header object has depth 1 and __metadata__ depth 2 (spec §2.7), so 63 nested arrays reach 65
    depth_64 = _header_edit(small, nested(MAX_JSON_DEPTH - 2))
    parse_json(depth_64[8:8 + read_le(depth_64, 0, 8)])  # §2.7 accepts it (§6.1 then rejects a non-string name)
    header = lambda edit: _header_edit(small, edit)  # noqa: E731
    for name, description, clauses, broken in [
        ("neg-model-json-deep", f"A model whose metadata name is an array nested {deep} levels deep "
         f"([[[...]]], {2 * deep} bytes): a decoder that parses it by recursion without the depth limit of 64 "
         "exhausts its stack.", ["2.7"], header(nested(deep))),
        ("neg-model-json-depth-65", "A model header nested 65 levels deep at its deepest point (the header "
         "object, __metadata__, and 63 arrays as the metadata name): one level more than MAX_JSON_DEPTH = 64, "
         "which a JSON parser accepts (the model would then be a ModelError of §6.1).", ["2.7"],
         header(nested(MAX_JSON_DEPTH - 1))),
        ("neg-model-duplicate-escaped", "A __metadata__ with the member names \"name\" and \"n\\u0061me\", "
         "equal after unescaping.", ["2.7"], header(after_name(b',"n\\u0061me":"x"'))),
        ("neg-model-duplicate-surrogate", "A __metadata__ with the member names \"x\\ud800\" and \"x\\uD800\": "
         "the same unpaired surrogate, in hex digits of either case.", ["2.7"],
         header(after_name(b',"x\\ud800":"a","x\\uD800":"b"'))),
        ("neg-model-duplicate-pair", "A __metadata__ with the member names \"\\ud83d\\ude00\" (a surrogate pair) "
         "and U+1F600 written as its UTF-8 bytes F0 9F 98 80: the same code point.", ["2.7"],
         header(after_name(b',"\\ud83d\\ude00":"a","' + "\U0001f600".encode() + b'":"b"'))),
        ("neg-model-json-bom", "A model header that begins with the byte-order mark EF BB BF (header_length "
         "counts it).", ["2.7"], header(lambda h: b"\xef\xbb\xbf" + h)),
        ("neg-model-json-minus-infinity", "A model header with the non-JSON literal -Infinity.", ["2.7"],
         header(lambda h: h.replace(b'"name":"broken"', b'"name":-Infinity', 1))),
        ("neg-model-offset-2-64", "A tensor whose end data offset is 18446744073709551616 (2^64), outside s64: "
         "a decoder that reads it into 64 bits without a check sees 0.", ["2.7", "6.1"],
         header(first_offsets(lambda end: b"[0,18446744073709551616]"))),
        ("neg-model-json-raw-tab", "A model header with a raw tab (0x09) inside a string.", ["2.7"],
         header(lambda h: h.replace(b'"name":"broken"', b'"name":"bro\tken"', 1))),
        ("neg-model-json-utf8-surrogate", "A model header with the UTF-8 encoding of a surrogate (ED A0 80) inside "
         "a string: not UTF-8.", ["2.7"],
         header(lambda h: h.replace(b'"name":"broken"', b'"name":"bro\xed\xa0\x80ken"', 1))),
        ("neg-model-json-trailing-comma", "A tensor's data_offsets written with a comma before the closing "
         "bracket.", ["2.7"], header(first_offsets(lambda end: b"[0," + end + b",]"))),
        ("neg-model-json-leading-zero", "A tensor's first data offset written 00 (a leading zero).", ["2.7"],
         header(first_offsets(lambda end: b"[00," + end + b"]"))),
        ("neg-model-json-exponent", "A tensor's end data offset written with a fraction and an exponent "
         "(2.88e2 for 288).", ["2.7"], header(first_offsets(lambda end: b"[0," + exponent(end) + b"]"))),
    ]:
        yield name, description, clauses, _named(small_stream, broken), "ModelError", broken
    yield ("neg-model-file-mismatch", "A valid stream of the small factorized model, given another model file "
           "(valid, with the same tensors, not shipped): the stream's model is not available.", ["6.5", "8.1"],
           small_stream, "ModelError", json_variants_model())


def escaped_names_vector():
    """A model whose JSON header spells its tensor names with escapes ("synthesis\\u002e0.weight"): the names
    are compared after unescaping (spec §2.7), so it is the same valid model under another identity."""
    data = random_model(np.random.default_rng(9), 2, 2, name="escaped")
    escaped = _header_edit(data, lambda h: h.replace(b'"synthesis.', b'"synthesis\\u002e'))
    stream = encode_latents(np.array([[[3]], [[-2]]]), load_model(escaped), 16, 16)
    return ("model-escaped-names", "A model whose header writes every synthesis tensor name with a JSON escape "
            "for the first dot.", ["2.7", "6.1", "6.3"], stream, escaped)


def _listed(clause: str | Sequence[str]) -> list[str]:
    """The clauses of a vector written as one clause or a list of them."""
    return [clause] if isinstance(clause, str) else list(clause)


def _named(stream: bytes, model: bytes) -> bytes:
    """``stream`` naming the model file ``model`` (its model_id, spec §7.1, replaced)."""
    return _patch(stream, 7 if stream[4] == 2 else 6, sha256(model))


def _patch(stream: bytes, pos: int, value: bytes) -> bytes:
    return stream[:pos] + value + stream[pos + len(value):]


def _with_y(stream: bytes, y_data: bytes) -> bytes:
    """The stream with another y sub-stream and a y_length that matches it."""
    return stream[: HEADER_BYTES - 4] + len(y_data).to_bytes(4, "little") + y_data


def _broken_model(valid: bytes, edit) -> bytes:
    """The model file ``valid`` with its tensors changed by ``edit(tensors)``."""
    meta, tensors = parse_container(valid)
    tensors = {k: np.array(v) for k, v in tensors.items()}
    edit(tensors)
    return save_safetensors(tensors, meta)


def negative_vectors(model_path: Path):
    """(name, description, clauses, stream, error class, model bytes or None for the suite's factorized model)."""
    model = load_model(model_path.read_bytes())
    good = encode(smooth_image(5, 40, 24), model=model)
    y = good[HEADER_BYTES:]
    yield "neg-bad-magic", "Magic 'RIFF' instead of 'RCDC'.", ["7.2"], _patch(good, 0, b"RIFF"), "StreamError", None
    yield ("neg-version-3", "Stream version 3, reserved (versions 1 and 2 are defined).", ["7.2"],
           _patch(good, 4, b"\x03"), "StreamError", None)
    yield ("neg-architecture-4", "Architecture code 4, reserved.", ["7.2"], _patch(good, 5, b"\x04"),
           "StreamError", None)
    empty = (1 << 31).to_bytes(8, "little")  # a valid sub-stream of no values (spec §3.8)
    yield ("neg-architecture-mismatch", "A stream of architecture 1 (with a z sub-stream) that names the "
           "factorized model.", ["8.1"], good[:5] + b"\x01" + good[6:FIXED_BYTES] + len(empty).to_bytes(4, "little")
           + empty + good[FIXED_BYTES:], "StreamError", None)
    yield "neg-width-0", "Width 0.", ["7.3"], _patch(good, 38, b"\x00\x00"), "StreamError", None
    yield ("neg-height-16385", "Height one above MAX_DIMENSION (16384 from edition 5): above every level.",
           ["7.3"], _patch(good, 40, (MAX_DIMENSION + 1).to_bytes(2, "little")), "StreamError", None)
    yield ("neg-width-16385", "Width one above MAX_DIMENSION (16384 from edition 5): above every level.",
           ["7.3"], _patch(good, 38, (MAX_DIMENSION + 1).to_bytes(2, "little")), "StreamError", None)
    yield "neg-header-only", "The 46-byte header alone is cut short.", ["7.1"], good[:45], "StreamError", None
    yield ("neg-y-length-past-end", "y_length four bytes more than the stream holds.", ["7.2"],
           good[:-4], "StreamError", None)
    yield "neg-trailing-bytes", "Four bytes after y_data.", ["7.2"], good + bytes(4), "StreamError", None
    yield ("neg-y-truncated", "The y sub-stream loses its last word (y_length adjusted): it ends early.",
           ["3.3", "3.6"], _with_y(good, y[:-4]), "StreamError", None)
    yield ("neg-y-left-over", "A word after the last symbol of the y sub-stream (y_length adjusted).",
           ["3.6"], _with_y(good, y + bytes(4)), "StreamError", None)
    yield ("neg-y-length-odd", "A y sub-stream whose length is not a multiple of 4.", ["3.2"],
           _with_y(good, y + bytes(1)), "StreamError", None)
    big = np.zeros((model.m, 1, 1), dtype=np.int64)
    big[0, 0, 0] = 40000
    yield ("neg-latent-out-of-range", "An escape codes the latent 40000, outside the s16 activation range.",
           ["8.3"], encode_latents(big, model, 16, 16), "StreamError", None)
    yield ("neg-unknown-model", "A model_id no model file has.", ["6.5"], _patch(good, 6, bytes(range(32))),
           "ModelError", None)
    yield ("neg-bad-magic-unknown-model", "Magic 'RIFF' and a model_id no model file has (00 01 .. 1F): the header "
           "is checked before any model is looked up, so the error is the StreamError of the magic.",
           ["6.5", "7.2", "8.1"], _patch(_patch(good, 0, b"RIFF"), 6, bytes(range(32))), "StreamError", None)
    small = small_model()  # N=2, M=2: a few kB
    small_stream = small_model_stream(small)
    for name, description, clause, edit in [
        ("neg-model-bias-bound", "A model whose transposed-convolution bias exceeds the 48-bit bound.", "6.4",
         lambda t: t.update({"synthesis.0.bias": np.full_like(t["synthesis.0.bias"], 1 << 47)})),
        ("neg-model-cdf-not-increasing", "A model whose CDF row is not strictly increasing.", "4.2",
         lambda t: t["entropy.y.cdf"].__setitem__((0, 1), 0)),
        ("neg-model-missing-tensor", "A model without synthesis.3.beta.", "6.3",
         lambda t: t.pop("synthesis.3.beta")),
        ("neg-model-cdf-padding", "A model whose CDF row has a non-zero entry after its cdf_length.", "4.2",
         lambda t: t["entropy.y.cdf"].__setitem__((0, -1), 7)
         if t["entropy.y.cdf_length"][0] < t["entropy.y.cdf"].shape[1]
         else t["entropy.y.cdf_length"].__setitem__(0, t["entropy.y.cdf_length"][0] - 1)),
        ("neg-model-cdf-length-1", "A model whose CDF row has cdf_length 1.", "4.2",
         lambda t: t["entropy.y.cdf_length"].__setitem__(0, 1)),
        ("neg-model-offset-range", "A model whose CDF row offset is 40000, outside -32768 .. 32767.", "4.2",
         lambda t: t["entropy.y.offset"].__setitem__(0, 40000)),
        ("neg-model-shift-48", "A model with a requantisation shift of 48.", "6.4",
         lambda t: t["synthesis.2.shift"].__setitem__(0, 48)),
        ("neg-model-igdn-norm", "A model whose IGDN gamma makes the norm exceed 2^53 - 1.", "6.4",
         lambda t: t["synthesis.3.gamma"].__setitem__((0, 0), (1 << 23) + 1)),
        ("neg-model-igdn-beta-0", "A model whose IGDN beta is 0.", "6.4",
         lambda t: t["synthesis.5.beta"].__setitem__(0, 0)),
        ("neg-model-unexpected-tensor", "A model with a tensor the inventory does not name.", "6.3",
         lambda t: t.update({"synthesis.7.weight": np.zeros(1, np.int16)})),
        ("neg-model-wrong-dtype", "A model whose synthesis.0.bias is I32 instead of I64.", "6.3",
         lambda t: t.update({"synthesis.0.bias": t["synthesis.0.bias"].astype(np.int32)})),
    ]:
        broken = _broken_model(small, edit)
        stream = _patch(small_stream, 6, sha256(broken))
        yield name, description, _listed(clause), stream, "ModelError", broken
    for name, description, cited, broken in [
        ("neg-model-duplicate-key", "A model header in which a tensor name occurs twice.", "2.7",
         _header_edit(small, lambda h: h.replace(b'{"__metadata__"', b'{"synthesis.0.bias":{},"__metadata__"', 1))),
        ("neg-model-metadata-N", "A model whose N is written '02' (a leading zero).", "6.2",
         _header_edit(small, lambda h: h.replace(b'"N":"2"', b'"N":"02"', 1))),
        ("neg-model-tensor-gap", "A model whose tensor data leave a gap (one more byte in the buffer).", "6.1",
         small + b"\0"),
        ("neg-model-shape-float", "A model with a shape entry written 2.0.", ["2.7", "6.1"],
         _header_edit(small, lambda h: h.replace(b'"shape":[2]', b'"shape":[2.0]', 1))),
    ]:
        stream = _patch(small_stream, 6, sha256(broken))
        yield name, description, _listed(cited), stream, "ModelError", broken
    # the rANS decoder's own checks (spec §3), on a one-value sub-stream of the small model
    one = load_model(small)
    table = one.y_table
    steps = rans.value_steps(0, table.cdf[0], int(table.cdf_length[0]), int(table.offset[0]))
    steps += rans.value_steps(0, table.cdf[1], int(table.cdf_length[1]), int(table.offset[1]))
    escape = rans.value_steps(table.cdf_length[0] - 2 + int(table.offset[0]), table.cdf[0],
                              int(table.cdf_length[0]), int(table.offset[0]))[:1]
    for name, description, clause, y_data in [
        ("neg-initial-state", "A y sub-stream whose initial state is 2^31 - 1, below RANS_L.", "3.2",
         ((1 << 31) - 1).to_bytes(8, "little") + rans.encode_steps(steps)[8:]),
        ("neg-final-state", "A y sub-stream that reads every word but ends in state 2^31 + 1.", "3.6",
         rans.encode_steps(steps, (1 << 31) + 1)),
        ("neg-nibble-count-9", "An escape whose nibble count is 9 (at most 8).", "3.5",
         rans.encode_steps(escape + [(9, 1, 4)] + [(1, 1, 4)] * 9 + steps[1:])),
        ("neg-y-longer-than-values", "A y sub-stream longer than 8 + 40 bytes per latent (spec §8.3).", "8.3",
         rans.encode_steps(steps) + bytes(4 * 10 * 2 + 4)),
    ]:
        stream = _patch(small_stream, 6, sha256(small))
        yield name, description, _listed(clause), _with_y(stream, y_data), "StreamError", small
    raw_big = np.zeros((2, 1, 1), np.int64)
    raw_big[0, 0, 0] = 1 << 30  # raw = 2^31 + ...: 8 raw nibbles
    yield ("neg-escape-8-nibbles", "An escape with 8 raw nibbles (raw above 2^31) codes the latent 2^30, outside "
           "the s16 range.", ["3.5", "8.3"], encode_latents(raw_big, one, 16, 16), "StreamError", small)
    named = _patch(small_stream, 6, sha256(small))
    yield "neg-stream-41-bytes", "A stream shorter than the 42 fixed header bytes.", ["7.1"], named[:41], \
        "StreamError", small
    yield "neg-y-length-4", "A y sub-stream of 4 bytes, shorter than the initial state.", ["3.2"], \
        _with_y(named, bytes(4)), "StreamError", small
    limit = 8 + 4 * MAX_WORDS_PER_VALUE * MAX_CHANNELS  # for one latent position (spec §7.3)
    yield ("neg-y-length-over-limit", f"A 1x1 picture whose y sub-stream has {limit + 4} bytes, more than any model's "
           "latents can use (spec §7.3), rejected before the model is looked up.", ["7.3"],
           _with_y(named, rans.encode_steps(steps) + bytes(limit - 8 + 4)), "StreamError", small)
    yield ("neg-size-65535x65535", "Width and height 65535, the largest the u(16) fields hold, with the y "
           "sub-stream of a 16x16 picture: a decoder that sizes ŷ (2 x 4096 x 4096 latents) or the picture by the "
           "header before checking it against MAX_DIMENSION allocates gigabytes.", ["7.3"],
           _patch(named, 38, (0xFFFF).to_bytes(2, "little") * 2), "StreamError", small)
    header = lambda edit: _header_edit(small, edit)  # noqa: E731
    for name, description, cited, broken in [
        ("neg-model-json-nan", "A model header with the non-JSON literal NaN.", "2.7",
         header(lambda h: h.replace(b'"name":"broken"', b'"name":NaN', 1))),
        ("neg-model-5-bytes", "A model file of 5 bytes.", "6.1", small[:5]),
        ("neg-model-header-length-1", "A model whose header_length is 1.", "6.1",
         (1).to_bytes(8, "little") + small[8:]),
        ("neg-model-header-past-end", "A model whose header_length runs past the end of the file.", "6.1",
         (len(small)).to_bytes(8, "little") + small[8:]),
        ("neg-model-not-json", "A model header that is not JSON.", ["2.7", "6.1"],
         header(lambda h: b"{{" + h[2:])),
        ("neg-model-header-array", "A model header that is a JSON array.", "6.1",
         header(lambda h: b"[" + h + b"]")),
        ("neg-model-metadata-number", "A model whose __metadata__ holds a number.", "6.1",
         header(lambda h: h.replace(b'"name":"broken"', b'"name":7', 1))),
        ("neg-model-entry-extra-key", "A tensor entry with a fourth member.", "6.1",
         header(lambda h: h.replace(b'"dtype":"I32"', b'"extra":0,"dtype":"I32"', 1))),
        ("neg-model-dtype-f64", "A tensor of dtype F64.", "6.1",
         header(lambda h: h.replace(b'"dtype":"I32"', b'"dtype":"F64"', 1))),
        ("neg-model-three-offsets", "A tensor with three data_offsets.", "6.1",
         header(lambda h: h.replace(b'"data_offsets":[0,', b'"data_offsets":[0,0,', 1))),
        ("neg-model-offsets-shape", "A tensor whose data_offsets do not match its shape.", "6.1",
         header(lambda h: h.replace(b'"shape":[2,', b'"shape":[1,', 1))),
        ("neg-model-tensor-overlap", "Two tensors whose data overlap (and leave a gap).", "6.1",
         _overlap(small)),
        ("neg-model-format-version", "A model whose format_version is 2.", "6.2",
         header(lambda h: h.replace(b'"format_version":"1"', b'"format_version":"2"', 1))),
        ("neg-model-architecture", "A model whose architecture is 'joint-2', unknown.", "6.2",
         header(lambda h: h.replace(b'"architecture":"factorized"', b'"architecture":"joint-2"', 1))),
    ]:
        yield name, description, _listed(cited), _patch(small_stream, 6, sha256(broken)), "ModelError", \
            broken
    for name, description, clause, edit in [
        ("neg-model-igdn-shift-48", "A model whose IGDN shift is 48.", "6.4",
         lambda t: t["synthesis.1.shift"].__setitem__(0, 48)),
        ("neg-model-cdf-start", "A model whose CDF row starts at 1.", "4.2",
         lambda t: t["entropy.y.cdf"].__setitem__((0, 0), 1)),
        ("neg-model-cdf-end", "A model whose CDF row ends at 2^16 - 1.", "4.2",
         lambda t: t["entropy.y.cdf"].__setitem__((0, t["entropy.y.cdf_length"][0] - 1), 65535)),
        ("neg-model-cdf-one-column", "A model whose CDF table rows have 1 entry.", "4.2",
         lambda t: t.update({"entropy.y.cdf": np.ascontiguousarray(t["entropy.y.cdf"][:, :1])})),
    ]:
        broken = _broken_model(small, edit)
        yield name, description, _listed(clause), _patch(small_stream, 6, sha256(broken)), "ModelError", \
            broken
    yield from json_negative_vectors(small, small_stream)


def _overlap(model: bytes) -> bytes:
    """The model with the data_offsets of its first two tensors (by offset) shifted to overlap by 4 bytes."""
    n = read_le(model, 0, 8)  # header_length (spec §6.1)
    header = json.loads(model[8:8 + n])
    second = sorted((k for k in header if k != "__metadata__"), key=lambda k: header[k]["data_offsets"][0])[1]
    begin, end = header[second]["data_offsets"]
    header[second]["data_offsets"] = [begin - 4, end - 4]
    text = json.dumps(header, separators=(",", ":")).encode()
    return len(text).to_bytes(8, "little") + text + model[8 + n:]


def _header_edit(model: bytes, edit) -> bytes:
    """The model file with its JSON header text changed by ``edit(bytes) -> bytes``, header_length updated."""
    n = read_le(model, 0, 8)  # header_length (spec §6.1)
    header = edit(model[8:8 + n])
    return len(header).to_bytes(8, "little") + header + model[8 + n:]


def _hyper_parts(stream: bytes) -> tuple:
    """(the fixed header, z_data, y_data) of a stream with a z sub-stream (spec §7.1)."""
    z_length = read_le(stream, FIXED_BYTES, 4)
    z_end = FIXED_BYTES + 4 + z_length
    return stream[:FIXED_BYTES], stream[FIXED_BYTES + 4:z_end], stream[z_end + 4:]


def _hyper_join(head: bytes, z: bytes, y: bytes) -> bytes:
    return head + len(z).to_bytes(4, "little") + z + len(y).to_bytes(4, "little") + y


def hyper_negative_vectors():
    """Negative vectors of the hyperprior syntax, with a small joint model (stored in the suite)."""
    data = random_model(np.random.default_rng(40), 2, 3, name="small-joint", architecture="joint", levels=4)
    model = load_model(data)
    y, z = extreme_latents(model, (2, 3), 41)
    good = encode_latents(y, model, 40, 20, z_hat=z)
    head, zd, yd = _hyper_parts(good)
    yield "neg-z-truncated", "The z sub-stream loses its last word: it ends early.", ["3.3"], \
        _hyper_join(head, zd[:-4], yd), "StreamError", data
    yield "neg-z-left-over", "A word after the last symbol of the z sub-stream.", ["3.6"], \
        _hyper_join(head, zd + bytes(4), yd), "StreamError", data
    yield "neg-z-length-past-end", "z_length runs past the end of the stream.", ["7.2"], \
        head + (len(zd) + len(yd) + 9).to_bytes(4, "little") + zd, "StreamError", data
    yield "neg-joint-y-truncated", "The joint y sub-stream loses its last word: it ends early.", ["3.3", "8.10"], \
        _hyper_join(head, zd, yd[:-4]), "StreamError", data
    _, values, rows = encoder.y_symbols(y, model, z, "reference")
    values = values.copy()
    values[1] = 32767 + 40000  # latent 1 (channel 1 of the first position) = value + mean: beyond s16
    yield ("neg-mean-out-of-range", "A y value whose latent (value + predicted mean) lies outside the s16 range.",
           ["8.8"], _hyper_join(head, zd, rans.encode_values(values, rows, model.y_table)), "StreamError", data)
    small_ms = random_model(np.random.default_rng(42), 2, 3, name="small-mean-scale", architecture="mean-scale",
                            levels=4)
    ms = load_model(small_ms)
    ms_stream = encode_latents(y, ms, 40, 20, z_hat=z)
    _, values, rows = encoder.y_symbols(y, ms, z, "reference")
    values = values.copy()
    values[0] = -32768 - 40000  # latent 0 (channel 0, first position) = value + mean: below s16
    head, zd, _ = _hyper_parts(ms_stream)
    yield ("neg-mean-scale-out-of-range", "A mean-scale y value whose latent (value + mean) lies outside the s16 "
           "range.", ["8.8"], _hyper_join(head, zd, rans.encode_values(values, rows, ms.y_table)), "StreamError",
           small_ms)
    shifted = ties_model("mean-scale", 2, 3, seed=8, name="small-mean-shift", mean_shift=8)
    sm = load_model(shifted)
    sm_stream = encode_latents(np.zeros((3, 2, 3), np.int64), sm, 40, 20, z_hat=np.zeros((2, 1, 1), np.int64))
    _, values, rows = encoder.y_symbols(np.zeros((3, 2, 3), np.int64), sm, np.zeros((2, 1, 1), np.int64),
                                        "reference")
    values = values.copy()
    values[0] = 200  # 200 * 2^8 + mean is beyond s16, though 200 + mean is not
    head, zd, _ = _hyper_parts(sm_stream)
    yield ("neg-mean-shift-out-of-range", "A mean-scale model with mean shift 8 and a y value of 200: the value "
           "plus the mean lies in the s16 range, the latent 200 * 2^8 + mean does not.", ["8.8"],
           _hyper_join(head, zd, rans.encode_values(values, rows, sm.y_table)), "StreamError", shifted)
    bad_shift = _broken_model(shifted, lambda t: t["entropy.y.mean_shift"].__setitem__(0, 9))
    yield ("neg-model-mean-shift", "A mean-scale model whose mean_shift is 9 (at most 8).", ["6.4"],
           _patch(sm_stream, 6, sha256(bad_shift)), "ModelError", bad_shift)
    hyper = random_model(np.random.default_rng(43), 2, 3, name="small-hyperprior", architecture="hyperprior", levels=4)
    hyper_stream = encode_latents(np.zeros((3, 2, 3), np.int64), load_model(hyper), 40, 20,
                                  z_hat=np.zeros((2, 1, 1), np.int64))
    hyper_shift = _broken_model(hyper, lambda t: t.update({"entropy.y.mean_shift": np.zeros(1, np.uint8)}))
    yield ("neg-model-hyperprior-mean-shift", "A hyperprior model (it has no means) with the tensor "
           "entropy.y.mean_shift, which only mean-scale and joint models may have.", ["6.3"],
           _patch(hyper_stream, 6, sha256(hyper_shift)), "ModelError", hyper_shift)
    for name, description, clause, edit in [
        ("neg-model-scale-levels", "A joint model whose y table has 257 rows (at most 256 scale levels).", "6.3",
         lambda t: t.update({"entropy.y.cdf": np.repeat(t["entropy.y.cdf"][:1], 257, axis=0),
                             "entropy.y.cdf_length": np.repeat(t["entropy.y.cdf_length"][:1], 257),
                             "entropy.y.offset": np.repeat(t["entropy.y.offset"][:1], 257),
                             "entropy.y.scale_bound": np.arange(256, dtype=np.int32)})),
        ("neg-model-context-mask", "A joint model whose context convolution has a non-zero centre tap.", "6.4",
         lambda t: t["context.0.weight"].__setitem__((0, 0, 2, 2), 1)),
        ("neg-model-scale-bound", "A joint model whose scale_bound is not strictly increasing.", "6.4",
         lambda t: t["entropy.y.scale_bound"].__setitem__(slice(None), 5)),
    ]:
        broken = _broken_model(data, edit)
        yield name, description, _listed(clause), _patch(good, 6, sha256(broken)), "ModelError", broken


# --- quality levels (edition 4: spec §6.3, §6.4, §7.1, §7.2, §8.1, §8.11) --------------------------------

QUALITY_N, QUALITY_M = 2, 4  # the channels of the quality models
QUALITY_SIZE = (130, 66)  # width, height of the quality vectors: latents 5 x 9, hyper-latents 2 x 3
# the gains of the lowest and the highest level (the levels between are random_gains): 1, the identity 2^16 and
# MAX_GAIN = 2^24 in each, and gains of odd * 2^15 and 5 * 2^14 whose products with odd latents, and with
# latents of 2 modulo 4, are exact ties of Round2 in ApplyGain (spec §8.11)
QUALITY_GAINS = {"lowest": {"y": [1, 1 << 15, MAX_GAIN, IDENTITY_GAIN], "z": [MAX_GAIN, 3 << 15]},
                 "highest": {"y": [MAX_GAIN, IDENTITY_GAIN, 5 << 14, 1], "z": [5 << 14, MAX_GAIN]}}
GAIN_CASES = {"clip-high", "clip-low", "tie-negative", "tie-positive"}


def quality_model(arch: str) -> bytes:
    """A small model of ``arch`` with 3 or 4 quality levels: the layers of ``ties_model`` (weights -1, 0, 1,
    shifts 1 and 2), so that a gained latent changed by 1 (a tie of ApplyGain rounded the wrong way) changes
    the picture, unlike the large shifts of a random model, and random gains (``with_gains``) whose lowest
    and highest levels are set to QUALITY_GAINS."""
    k = list(ARCHITECTURES).index(arch)
    levels = 3 + k % 2

    def edit(tensors: dict) -> None:
        for name in ("y", "z") if arch != "factorized" else ("y",):
            gain = tensors[f"quality.{name}_gain"]
            gain[0], gain[-1] = QUALITY_GAINS["lowest"][name], QUALITY_GAINS["highest"][name]

    data = ties_model(arch, QUALITY_N, QUALITY_M, seed=70 + k, name=f"quality-{arch}")
    return with_gains(data, np.random.default_rng(70 + k), levels, edit)


def gained_variant(target, variant: str):
    """refcodec.decoder.decoding.gained with ApplyGain (spec §8.11) done wrongly for the gain tensor ``target``
    (a model's y_gain or z_gain): "ties-down" rounds exact ties of Round2 down, "no-clip" leaves out the Clip3
    (what a decoder with either bug computes, for checking that a vector catches it)."""
    gained = decoding.gained

    def wrapped(x, gain, quality):
        if gain is not target or quality is None:
            return gained(x, gain, quality)
        product = x * gain[quality].astype(np.int64)[:, None, None]
        if variant == "no-clip":
            return round2(product, GAIN_SHIFT)
        return clip3(ACT_MIN, ACT_MAX, (product + (1 << (GAIN_SHIFT - 1)) - 1) >> GAIN_SHIFT)

    return wrapped


def caught_gain_bugs(stream: bytes, model_file: Path) -> set:
    """The wrong ApplyGains of ``gained_variant`` ("<variant> <y_gain|z_gain>") that change the picture of
    ``stream`` (or make its decoding fail), so that a decoder with that bug fails the vector."""
    expected = decode(stream, [model_file], impl="reference")
    model = model_from_file(model_file)  # the decoder's own (cached) model: its gain tensors are the ones used
    caught = set()
    gained = decoding.gained
    for name in ("z_gain", "y_gain"):
        target = getattr(model, name)
        for variant in ("ties-down", "no-clip"):
            if target is None:
                continue
            decoding.gained = gained_variant(target, variant)
            try:
                differ = not np.array_equal(decoding.decode_stream(stream, [model_file], impl="reference"),
                                            expected)
            except RefcodecError:
                differ = True
            finally:
                decoding.gained = gained
            if differ:
                caught.add(f"{variant} {name}")
    return caught


def quality_latents(model, seed: int) -> tuple:
    """(y, z) for QUALITY_SIZE: small random latents, and in every channel -32768 and 32767, so that a gain
    above 2^16 clips both ways; in z also 2, -3 and -6, odd and 2 modulo 4 (ties with the gains above)."""
    rng = np.random.default_rng(seed)
    lat = latent_size(QUALITY_SIZE[1], QUALITY_SIZE[0])
    y = rng.integers(-300, 301, size=(model.m, *lat))
    y[:, 0, 0], y[:, 0, 1] = ACT_MIN, ACT_MAX
    if model.architecture == "factorized":
        return y, None
    z = rng.integers(-20, 21, size=hyper_shape(model, lat))
    z[:, 0, 0], z[:, 0, 1], z[:, 0, 2], z[:, 1, 0], z[:, 1, 1] = ACT_MIN, ACT_MAX, 2, -3, -6
    return y, z


def gain_cases(x: np.ndarray, gain_row: np.ndarray) -> set:
    """What ApplyGain(x, gain_row) (spec §8.11) meets: Round2 results above ACT_MAX or below ACT_MIN (the
    clip), exact ties of Round2 (x * G = 2^15 modulo 2^16) for negative and for positive x."""
    product = x * gain_row.astype(np.int64)[:, None, None]
    rounded = (product + (1 << 15)) >> GAIN_SHIFT
    tie = product % (1 << GAIN_SHIFT) == 1 << 15
    found = {"clip-high": rounded.max() > ACT_MAX, "clip-low": rounded.min() < ACT_MIN,
             "tie-negative": np.any(tie & (x < 0)), "tie-positive": np.any(tie & (x > 0))}
    return {case for case, present in found.items() if present}


def quality_vectors():
    """(name, description, clauses, stream, model bytes): version-2 streams at the lowest and the highest
    quality level of a model of each architecture, and a version-1 stream of a joint model with quality
    levels (no gain applied, spec §8.1)."""
    width, height = QUALITY_SIZE
    for k, arch in enumerate(ARCHITECTURES):
        data = quality_model(arch)
        model = load_model(data)
        bugs = {f"{variant} {name}" for variant in ("ties-down", "no-clip")
                for name in (("y_gain",) if arch == "factorized" else ("z_gain", "y_gain"))}
        caught = set()  # the wrong ApplyGains the two vectors of this architecture catch: all of them
        for which, level in (("lowest", 0), ("highest", model.levels - 1)):
            y, z = quality_latents(model, 80 + 2 * k + level % 2)
            stream, y_hat = code_latents(y, model, width, height, "reference", z, level)
            with tempfile.TemporaryDirectory() as tmp:
                model_file = Path(tmp) / "model.safetensors"
                model_file.write_bytes(data)
                caught |= caught_gain_bugs(stream, model_file)
            if which == "highest":
                assert caught == bugs, (arch, bugs - caught)
            assert np.array_equal(y_hat, y) and stream[4:7] == bytes([2, model.code, level])
            gains = set(model.y_gain[level].tolist()) | set([] if z is None else model.z_gain[level].tolist())
            assert gain_cases(y, model.y_gain[level]) == GAIN_CASES, (arch, which)
            if z is not None:
                assert gain_cases(z, model.z_gain[level]) == GAIN_CASES, (arch, which)
            assert {1, IDENTITY_GAIN, MAX_GAIN} <= gains
            z_text = "" if z is None else (f"; z_gain {QUALITY_GAINS[which]['z']} on hyper-latents with the same "
                                           "extremes and with values that make ties of both signs")
            yield (f"quality-{arch}-{which}", f"A version-2 stream at the {which} quality level (quality {level}, of "
                   f"levels 0 .. {model.levels - 1}) of a small {arch} model: y_gain {QUALITY_GAINS[which]['y']} (1, "
                   "the identity 2^16, 2^24 and a gain whose Round2 meets exact ties of both signs) on latents with "
                   f"-32768 and 32767 in every channel, so that ApplyGain clips both ways{z_text}. The model has "
                   f"the small weights and shifts of ties-{arch}, so the ties and the clip reach the picture: a "
                   "decoder that rounds the ties down, or does not clip, fails this vector or the one at the other "
                   f"level. Its stages include {'' if z is None else 'z_gain and '}y_gain.",
                   ["2.4", "3.4", "3.5", "5.1", "6.3", "6.4", "7.1", "7.2", "8.1", "8.11", "9.4", *CLAUSES[arch]],
                   stream, data)
    data = quality_model("joint")
    model = load_model(data)
    y, z = quality_latents(model, 90)
    stream = encode_latents(y, model, width, height, "reference", z)
    plain = _broken_model(data, lambda t: [t.pop(name) for name in ("quality.y_gain", "quality.z_gain")])
    with tempfile.TemporaryDirectory() as tmp:
        files = [Path(tmp) / "gains.safetensors", Path(tmp) / "plain.safetensors"]
        files[0].write_bytes(data)
        files[1].write_bytes(plain)
        plain_stream = encode_latents(y, load_model(plain), width, height, "reference", z)
        assert plain_stream == _named(stream, plain)
        assert np.array_equal(decode(stream, files[:1]), decode(plain_stream, files[1:]))
    yield ("quality-version-1", f"A version-1 stream of the joint model of quality-joint-* ({model.levels} quality "
           "levels): no gain is applied, so the picture is that of the same stream with the quality tensors "
           "removed from the model, and there are no stages z_gain and y_gain.",
           ["6.3", "7.1", "7.2", "8.1", "8.11", "9.4", *CLAUSES["joint"]], stream, data)


def quality_negative_vectors():
    """(name, description, clauses, stream, error class, model bytes): the stream's quality level against the
    model's (spec §8.1), and broken quality tensors (§6.3, §6.4), on 16x16 streams of zero latents."""
    data = quality_model("hyperprior")
    model = load_model(data)
    levels = model.levels
    zeros_y, zeros_z = np.zeros((model.m, 1, 1), np.int64), np.zeros((model.n, 1, 1), np.int64)
    top = encode_latents(zeros_y, model, 16, 16, "reference", zeros_z, levels - 1)
    yield ("neg-quality-level-L", f"A version-2 stream whose quality is {levels}, the number of levels of its "
           f"hyperprior model (levels 0 .. {levels - 1}).", ["7.2", "8.1"], _patch(top, 6, bytes([levels])),
           "StreamError", data)
    yield ("neg-stream-42-bytes-version-2", f"A version-2 stream cut to {FIXED_BYTES} bytes: the fixed header of "
           f"version 1, one byte short of the {FIXED_BYTES + 1} of version 2.", ["7.1"], top[:FIXED_BYTES],
           "StreamError", data)
    small = small_model()
    yield ("neg-quality-no-levels", "A version-2 stream (quality 0) of the small factorized model, which has no "
           "quality tensors.", ["7.2", "8.1"], encode_latents(np.zeros((2, 1, 1), np.int64), load_model(small),
                                                             16, 16, "reference", level=0), "StreamError", small)
    gain_names = ("quality.y_gain", "quality.z_gain")
    for name, description, clause, edit in [
        ("neg-model-quality-y-only", "A hyperprior model with quality.y_gain but without quality.z_gain.", "6.3",
         lambda t: t.pop("quality.z_gain")),
        ("neg-model-quality-z-only", "A hyperprior model with quality.z_gain but without quality.y_gain.", "6.3",
         lambda t: t.pop("quality.y_gain")),
        ("neg-model-quality-gain-0", f"A hyperprior model with a y gain of 0 at level 0 (the stream uses level "
         f"{levels - 1}: every gain is checked).", "6.4", lambda t: t["quality.y_gain"].__setitem__((0, 1), 0)),
        ("neg-model-quality-gain-over", "A hyperprior model with a z gain of 2^24 + 1 at the stream's level.", "6.4",
         lambda t: t["quality.z_gain"].__setitem__((levels - 1, 0), MAX_GAIN + 1)),
        ("neg-model-quality-levels-differ", f"A hyperprior model with {levels} rows of quality.y_gain and "
         f"{levels + 1} of quality.z_gain.", "6.3",
         lambda t: t.update({"quality.z_gain": np.concatenate([t["quality.z_gain"], t["quality.z_gain"][:1]])})),
        ("neg-model-quality-levels-65", "A hyperprior model with 65 quality levels (at most 64).", "6.3",
         lambda t: t.update({k: np.repeat(t[k][:1], MAX_QUALITY_LEVELS + 1, axis=0) for k in gain_names})),
        ("neg-model-quality-y-gain-1d", "A hyperprior model whose quality.y_gain is one-dimensional (its L * M "
         "gains in a row).", "6.3", lambda t: t.update({"quality.y_gain": t["quality.y_gain"].reshape(-1)})),
    ]:
        broken = _broken_model(data, edit)
        yield name, description, [clause], _named(top, broken), "ModelError", broken
    factorized = quality_model("factorized")
    fm = load_model(factorized)
    broken = _broken_model(factorized, lambda t: t.update(
        {"quality.z_gain": np.full((fm.levels, fm.n), IDENTITY_GAIN, np.int32)}))
    stream = encode_latents(np.zeros((fm.m, 1, 1), np.int64), fm, 16, 16, "reference", level=0)
    yield ("neg-model-factorized-z-gain", "A factorized model with quality levels and a quality.z_gain, which only "
           "the architectures with a hyperprior have.", ["6.3"], _named(stream, broken), "ModelError", broken)


def write_negative(root: Path, index: list, model_file: Path) -> None:
    """The negative vectors, after checking that both decoders report their class for the clause listed."""
    for name, description, clauses, stream, error, broken in [*negative_vectors(model_file),
                                                                *hyper_negative_vectors(),
                                                                *quality_negative_vectors(),
                                                                *edition5_negative_vectors()]:
        model = model_file if broken is None else store_model(root, broken)
        for impl in ("reference", "fast"):
            try:
                decode(stream, [model], impl=impl)
                raise AssertionError(f"{name}: {impl} decoder accepted a negative vector")
            except RefcodecError as e:
                assert type(e).__name__ == error and e.clause in clauses, (name, impl, e)
        manifest = {"name": name, "description": description, "model": f"models/{model.name}",
                    "clauses": sorted({*clauses, "2.6", "9.1"}, key=_clause_order),
                    "stream_sha256": sha256(stream).hex(), "expected_error": error}
        write_vector_folder(root, manifest, stream)
        index.append(index_entry(name))
        print(f"{name}: {error}")


def write_vector(root: Path, index: list, name: str, description: str, clauses: list, stream: bytes,
                 model_file: Path) -> None:
    """A positive vector: decoded by both decoders (which must agree), stored with its manifest."""
    pixels = decode(stream, [model_file], impl="reference")
    assert np.array_equal(pixels, decode(stream, [model_file], impl="fast")), name
    model = load_model(model_file.read_bytes())
    manifest = positive_manifest(name, description, sorted(set(clauses) | set(EVERY_DECODE), key=_clause_order),
                                 stream, pixels, model_file, model)
    gained = {"y_gain"} | ({"z_gain"} if model.architecture != "factorized" else set())
    named = {stage["name"] for stage in manifest["stages"]}  # z_gain, y_gain: stages of version 2 only (§9.4)
    assert named & gained == (gained if stream[4] == 2 else set()), (name, named)
    write_vector_folder(root, manifest, stream, pixels)
    index.append(index_entry(name))
    print(f"{name}: {len(stream)} bytes, {pixels.shape[1]}x{pixels.shape[0]}")


def generate(root: Path, models: Path) -> None:
    """Every vector into ``root``, replacing what was there: those of each shipped model in
    ``models`` (ARCH.safetensors), the models at the bounds and with ties, the negative vectors."""
    for old in root.glob("*/manifest.json"):  # vectors this run no longer writes go too
        shutil.rmtree(old.parent)
    shutil.rmtree(root / "models", ignore_errors=True)
    (root / "models").mkdir(parents=True)
    index: list[dict] = []
    files = {arch: store_model(root, (models / f"{arch}.safetensors").read_bytes()) for arch in ARCHITECTURES
             if (models / f"{arch}.safetensors").exists()}
    for model_file in files.values():
        for name, description, clauses, stream in model_vectors(model_file):
            write_vector(root, index, name, description, clauses, stream, model_file)
    for name, description, clauses, stream, data in [*stress_vectors(), *bound_vectors(), *ties_vectors(),
                                                      *mean_shift_vectors(), escaped_names_vector(),
                                                      json_variants_vector(), *quality_vectors(),
                                                      *level_vectors(), *edition5_vectors()]:
        write_vector(root, index, name, description, clauses, stream, store_model(root, data))
    write_negative(root, index, files["factorized"])
    write_json(root / "index.json", {"suite": "refcodec golden vectors", "version": 1, "vectors": index})


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=Path, default=MODELS_DIR,
                    help="folder of the shipped models (ARCH.safetensors for each architecture)")
    ap.add_argument("--out", type=Path, default=DEFAULT_VECTORS,
                    help="where the vectors go (default: the repository's vectors/)")
    args = ap.parse_args(argv)
    generate(args.out, args.models)


if __name__ == "__main__":
    main()
