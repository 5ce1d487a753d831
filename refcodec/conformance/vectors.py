"""Generation of the golden vectors (spec §9.3; run by hand: the tests only verify them).

    python vectors/generate.py [--models refcodec/models] [--out vectors]

Each vector is a folder with the stream, the expected decoded picture as PNG, and manifest.json
(description, size, model identity, the spec clauses it exercises, SHA-256 of the decoded pixels
as raw RGB bytes in row-major order, the checksums of the stages of §9.4): the format of
refcodec.conformance.suite. A negative vector has no picture; its manifest names the error class
a decoder must report ("expected_error", spec §2.6). Models are stored once, in models/, named by
their identity (spec §6.5). Every positive vector is decoded by both of refcodec's decoders,
which must agree; every negative vector must make both report its class for the clause listed.
The same refcodec writes the same bytes: vectors/ is regenerated only when the format changes.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from refcodec import decode, encode
from refcodec.conformance.models import bound_model, random_model, ties_model
from refcodec.conformance.suite import (DEFAULT_VECTORS, index_entry, positive_manifest, store_model, write_json,
                                        write_vector_folder)
from refcodec.decoder.bitstream import (FIXED_BYTES, HEADER_BYTES, MAX_CHANNELS, MAX_WORDS_PER_VALUE,
                                        hyper_size)
from refcodec.decoder.conventions import read_le, sha256
from refcodec.decoder.errors import RefcodecError
from refcodec.decoder.model import ARCHITECTURES, MODELS_DIR, load_model, parse_container
from refcodec.encoder import encode as encoder, rans
from refcodec.encoder.encode import encode_latents
from refcodec.encoder.export import save_safetensors

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample.png"


def smooth_image(seed: int, w: int, h: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(max(1, h // 8), max(1, w // 8), 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize((w, h), Image.BILINEAR))


CLAUSES = {"factorized": ["8.3"], "hyperprior": ["8.3", "8.7", "8.8", "8.9", "5.6", "5.7"],
           "mean-scale": ["8.3", "8.7", "8.8", "8.9", "5.6", "5.7"],
           "joint": ["8.3", "8.7", "8.8", "8.10", "5.6", "5.7", "5.8"]}


EVERY_DECODE = ["2.1", "2.2", "2.3", "2.4", "2.5", "3.1", "3.2", "3.3", "3.6", "4.1", "4.2", "5.1", "6.1",
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


def escaped_names_vector():
    """A model whose JSON header spells its tensor names with escapes ("synthesis\\u002e0.weight"): the names
    are compared after unescaping (spec §2.4), so it is the same valid model under another identity."""
    data = random_model(np.random.default_rng(9), 2, 2, name="escaped")
    escaped = _header_edit(data, lambda h: h.replace(b'"synthesis.', b'"synthesis\\u002e'))
    stream = encode_latents(np.array([[[3]], [[-2]]]), load_model(escaped), 16, 16)
    return ("model-escaped-names", "A model whose header writes every synthesis tensor name with a JSON escape "
            "for the first dot.", ["2.4", "6.1", "6.3"], stream, escaped)


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
    yield "neg-version-2", "Stream version 2.", ["7.2"], _patch(good, 4, b"\x02"), "StreamError", None
    yield ("neg-architecture-4", "Architecture code 4, reserved.", ["7.2"], _patch(good, 5, b"\x04"),
           "StreamError", None)
    empty = (1 << 31).to_bytes(8, "little")  # a valid sub-stream of no values (spec §3.8)
    yield ("neg-architecture-mismatch", "A stream of architecture 1 (with a z sub-stream) that names the "
           "factorized model.", ["8.1"], good[:5] + b"\x01" + good[6:FIXED_BYTES] + len(empty).to_bytes(4, "little")
           + empty + good[FIXED_BYTES:], "StreamError", None)
    yield "neg-width-0", "Width 0.", ["7.3"], _patch(good, 38, b"\x00\x00"), "StreamError", None
    yield ("neg-height-4097", "Height one above MAX_DIMENSION.", ["7.3"],
           _patch(good, 40, (4097).to_bytes(2, "little")), "StreamError", None)
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
    small = random_model(np.random.default_rng(9), 2, 2, name="broken")  # N=2, M=2: a few kB
    small_stream = encode_latents(np.zeros((2, 1, 1), np.int64), load_model(small), 16, 16)
    for name, description, clause, edit in [
        ("neg-model-bias-bound", "A model whose transposed-convolution bias exceeds the 48-bit bound.", "6.4",
         lambda t: t.update({"synthesis.0.bias": np.full_like(t["synthesis.0.bias"], 1 << 47)})),
        ("neg-model-cdf-not-increasing", "A model whose CDF row is not strictly increasing.", "4.2",
         lambda t: t["entropy.y.cdf"].__setitem__((0, 1), 0)),
        ("neg-model-missing-tensor", "A model without synthesis.3.beta.", "6.3",
         lambda t: t.pop("synthesis.3.beta")),
        ("neg-model-cdf-padding", "A model whose CDF row has a non-zero entry after its cdf_length.", "4.2",
         lambda t: t["entropy.y.cdf"].__setitem__((0, -1), 7) if t["entropy.y.cdf_length"][0] < t["entropy.y.cdf"].shape[1]
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
        yield name, description, [clause], stream, "ModelError", broken
    for name, description, clause, broken in [
        ("neg-model-duplicate-key", "A model header in which a tensor name occurs twice.", "2.4",
         _header_edit(small, lambda h: h.replace(b'{"__metadata__"', b'{"synthesis.0.bias":{},"__metadata__"', 1))),
        ("neg-model-metadata-N", "A model whose N is written '02' (a leading zero).", "6.2",
         _header_edit(small, lambda h: h.replace(b'"N":"2"', b'"N":"02"', 1))),
        ("neg-model-tensor-gap", "A model whose tensor data leave a gap (one more byte in the buffer).", "6.1",
         small + b"\0"),
        ("neg-model-shape-float", "A model with a shape entry written 2.0.", "6.1",
         _header_edit(small, lambda h: h.replace(b'"shape":[2]', b'"shape":[2.0]', 1))),
    ]:
        stream = _patch(small_stream, 6, sha256(broken))
        yield name, description, [clause], stream, "ModelError", broken
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
        yield name, description, [clause], _with_y(stream, y_data), "StreamError", small
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
    header = lambda edit: _header_edit(small, edit)  # noqa: E731
    for name, description, clause, broken in [
        ("neg-model-json-nan", "A model header with the non-JSON literal NaN.", "2.4",
         header(lambda h: h.replace(b'"name":"broken"', b'"name":NaN', 1))),
        ("neg-model-5-bytes", "A model file of 5 bytes.", "6.1", small[:5]),
        ("neg-model-header-length-1", "A model whose header_length is 1.", "6.1",
         (1).to_bytes(8, "little") + small[8:]),
        ("neg-model-header-past-end", "A model whose header_length runs past the end of the file.", "6.1",
         (len(small)).to_bytes(8, "little") + small[8:]),
        ("neg-model-not-json", "A model header that is not JSON.", "6.1", header(lambda h: b"{{" + h[2:])),
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
        yield name, description, [clause], _patch(small_stream, 6, sha256(broken)), "ModelError", \
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
        yield name, description, [clause], _patch(small_stream, 6, sha256(broken)), "ModelError", \
            broken


def _overlap(model: bytes) -> bytes:
    """The model with the data_offsets of its first two tensors (by offset) shifted to overlap by 4 bytes."""
    n = read_le(model, 0, 8)  # header_length (spec §6.1)
    header = json.loads(model[8:8 + n])
    first, second = sorted((k for k in header if k != "__metadata__"), key=lambda k: header[k]["data_offsets"][0])[:2]
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
        yield name, description, [clause], _patch(good, 6, sha256(broken)), "ModelError", broken


def write_negative(root: Path, index: list, model_file: Path) -> None:
    """The negative vectors, after checking that both decoders report their class for the clause listed."""
    for name, description, clauses, stream, error, broken in [*negative_vectors(model_file),
                                                                *hyper_negative_vectors()]:
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
    index = []
    files = {arch: store_model(root, (models / f"{arch}.safetensors").read_bytes()) for arch in ARCHITECTURES
             if (models / f"{arch}.safetensors").exists()}
    for model_file in files.values():
        for name, description, clauses, stream in model_vectors(model_file):
            write_vector(root, index, name, description, clauses, stream, model_file)
    for name, description, clauses, stream, data in [*stress_vectors(), *bound_vectors(), *ties_vectors(),
                                                      *mean_shift_vectors(), escaped_names_vector()]:
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
