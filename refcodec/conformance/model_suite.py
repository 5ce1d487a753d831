"""A conformance suite for any one model (spec §9.3): ``refcodec vectors --model FILE OUTDIR``.

Someone who deploys their own model (trained with refcodec, or imported from CompressAI, Annex
A.3.3) needs vectors for it, not only for the models refcodec ships. This writes, in the format of
vectors/ (refcodec.conformance.suite), for the model in FILE:

- the sample photo through the whole pipeline, at every quality level of a model that has them;
- pictures of awkward sizes (1x1, one row, one column, one above a multiple of 64);
- all latents zero (the model's bias response), and latents far outside every table (escapes with
  several raw nibbles, the s16 extremes in ŷ and ẑ);
- the model's own bounds: every latent and hyper-latent at -32768, then at 32767, which drives every
  layer of this model to whatever its weights make of the extremes (clamps, the largest sums);
- small latents, where exact ties of Round2 are frequent in every layer;
- negative vectors that apply to every model: a truncated y sub-stream, a word left over after it,
  a latent outside the activation range, a stream that names another model.

Both of refcodec's decoders decode every positive vector (and must agree) and reject every negative
one with the class its manifest names, before it is written. Then
``refcodec conform --vectors OUTDIR --decoder ...`` checks any decoder against the suite.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from refcodec.conformance.suite import index_entry, store_model, write_json, write_vector_folder
from refcodec.conformance.vectors import (
    CLAUSES,
    EMPTY_SUB_STREAM,
    SAMPLE,
    _clause_order,
    _patch,
    hyper_shape,
    model_vectors,
    smooth_image,
    write_vector,
)
from refcodec.decoder.bitstream import FIXED_BYTES
from refcodec.decoder.conventions import read_le, sha256
from refcodec.decoder.errors import RefcodecError
from refcodec.decoder.latents import channel_rows
from refcodec.decoder.model import load_model
from refcodec.encoder.encode import encode, encode_latents, encoder_kernels, write_stream


def latents(model, lat: tuple, fill) -> tuple:
    """(y, z) of the given latent size, every value from ``fill(shape)``; z None for factorized."""
    z = None if model.architecture == "factorized" else fill(hyper_shape(model, lat))
    return fill((model.m, *lat)), z


def own_vectors(model_file: Path):
    """(name, description, clauses, stream) of the vectors specific to this suite (beyond model_vectors)."""
    model = load_model(model_file.read_bytes())
    common = CLAUSES[model.architecture]
    for q in range(model.levels):
        yield (f"photo-quality-{q + 1}", f"The sample photo at quality level {q} of {model.levels} (a version-2 "
               "stream: the gains of spec §8.11).", ["7.1", "8.1", "8.11", *common],
               encode(SAMPLE, model, quality=q + 1))
    if model.architecture != "factorized":  # model_vectors has it for factorized
        yield ("size-1x40", "A single column, 40 rows.", ["8.2", "8.5", *common],
               encode(smooth_image(3, 1, 40), model))
    for value in (-32768, 32767):
        y, z = latents(model, (3, 4), lambda shape, v=value: np.full(shape, v))
        yield (f"bounds-{'min' if value < 0 else 'max'}", f"Every latent and hyper-latent {value}: every layer of "
               "this model at what its weights make of the extremes of the activation range (sums at their largest "
               "for this model, clamps).", ["5.2", "5.3", "5.4", "5.5", "5.6", *common],
               encode_latents(y, model, 60, 40, z_hat=z))
    rng = np.random.default_rng(7)
    y, z = latents(model, (4, 5), lambda shape: rng.integers(-2, 3, size=shape))
    yield ("latents-small", "Small latents (-2 .. 2): many exact ties of Round2 in the layers of this model, so a "
           "decoder that rounds a tie the wrong way anywhere is likely to differ.", ["2.4", "5.3", "5.6", *common],
           encode_latents(y, model, 70, 50, z_hat=z))


def negative_vectors(model_file: Path):
    """(name, description, clauses, stream, error class) that apply to any model."""
    model = load_model(model_file.read_bytes())
    good = encode(SAMPLE, model)
    at = y_length_at(good)
    y = good[at + 4 :]
    short = ["3.2"] if len(y) <= 8 else []  # a model that codes the photo in the initial state alone
    yield ("neg-y-truncated", "The y sub-stream loses its last word (y_length adjusted): it ends early.",
           ["3.3", "3.6", *short], with_y(good, y[:-4]), "StreamError")
    yield ("neg-y-left-over", "A word after the last symbol of the y sub-stream (y_length adjusted).",
           ["3.6"], with_y(good, y + bytes(4)), "StreamError")
    yield "neg-trailing-bytes", "Four bytes after y_data.", ["7.2"], good + bytes(4), "StreamError"
    yield ("neg-unknown-model", "A model_id no model file has.", ["6.5"],
           _patch(good, MODEL_ID_AT + (1 if good[4] == 2 else 0), bytes(range(32))), "ModelError")
    which = "latent" if model.z_table is None else "hyper-latent"
    yield ("neg-latent-out-of-range", f"An escape codes the value 40000 for the first {which}, which puts it "
           "outside the s16 activation range.", ["8.3"], out_of_range_stream(model), "StreamError")


def out_of_range_stream(model) -> bytes:
    """A 16x16 stream whose first value coded with one table row per channel (ŷ of factorized, else ẑ,
    spec §8.3) is 40000: the latent 40000 * 2^F + median is outside the activation range whatever the
    model's F and medians. (For the other architectures y_data is an empty sub-stream: decoding fails
    in z_data first.)"""
    encode_values = encoder_kernels("reference")[0]
    table = model.y_table if model.z_table is None else model.z_table
    shape = (model.m, 1, 1) if model.z_table is None else (model.n, 1, 1)
    values = np.zeros(shape, np.int64)
    values[0, 0, 0] = 40000
    data = encode_values(values.reshape(-1), channel_rows(*shape), table)
    if model.z_table is None:
        return write_stream(model.model_id, model.code, 16, 16, data)
    return write_stream(model.model_id, model.code, 16, 16, EMPTY_SUB_STREAM, data)



MODEL_ID_AT = 6  # spec §7.1: magic (4), version, architecture, then model_id (after quality in version 2)


def y_length_at(stream: bytes) -> int:
    """Where y_length starts (spec §7.1): after the fixed header, and after z_length and z_data if any."""
    at = FIXED_BYTES + (1 if stream[4] == 2 else 0)
    if stream[5] != 0:  # every architecture but factorized has a z sub-stream
        at += 4 + read_le(stream, at, 4)
    return at


def with_y(stream: bytes, y_data: bytes) -> bytes:
    """``stream`` with another y sub-stream and a y_length that matches it."""
    at = y_length_at(stream)
    return stream[:at] + len(y_data).to_bytes(4, "little") + y_data


def write_negative(root: Path, index: list, model_file: Path) -> None:
    """The negative vectors, after checking that both decoders report their class for a clause listed."""
    from refcodec import decode

    for name, description, clauses, stream, error in negative_vectors(model_file):
        for impl in ("reference", "fast"):
            try:
                decode(stream, [model_file], impl=impl)
                raise AssertionError(f"{name}: {impl} decoder accepted a negative vector")
            except RefcodecError as e:
                assert type(e).__name__ == error and e.clause in clauses, (name, impl, e)
        manifest = {"name": name, "description": description, "model": f"models/{model_file.name}",
                    "clauses": sorted({*clauses, "2.6", "9.1"}, key=_clause_order),
                    "stream_sha256": sha256(stream).hex(), "expected_error": error}
        write_vector_folder(root, manifest, stream)
        index.append(index_entry(name))


def generate(model_path: Path, root: Path) -> int:
    """The suite of the model file ``model_path`` into ``root`` (created; it must not hold anything else);
    returns the number of vectors."""
    data = Path(model_path).read_bytes()
    load_model(data)  # a ModelError before anything is written
    if root.exists() and any(root.iterdir()):
        raise FileExistsError(f"{root} is not empty")
    work = root.with_name(root.name + ".partial")
    shutil.rmtree(work, ignore_errors=True)
    (work / "models").mkdir(parents=True)
    index: list[dict] = []
    model_file = store_model(work, data)
    for name, description, clauses, stream in [*model_vectors(model_file), *own_vectors(model_file)]:
        write_vector(work, index, name, description, clauses, stream, model_file)
    write_negative(work, index, model_file)
    write_json(work / "index.json", {"suite": f"refcodec vectors of model {sha256(data).hex()}", "version": 1,
                                     "vectors": index})
    if root.exists():
        root.rmdir()
    work.rename(root)
    return len(index)
