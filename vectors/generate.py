"""Generate the golden vectors in vectors/ (run by hand; tests only verify).

    python vectors/generate.py [--model refcodec/models/factorized.safetensors]

Each vector is a folder with the stream, the expected decoded picture as PNG,
and manifest.json (description, size, model identity, the spec clauses it
exercises, SHA-256 of the decoded pixels as raw RGB bytes in row-major order).
A negative vector has no picture; its manifest names the error class a decoder
must report ("expected_error"). Models are stored once, in vectors/models/,
named by their identity.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))

from refcodec import decode, encode  # noqa: E402
from refcodec.bitstream import HEADER_BYTES  # noqa: E402
from refcodec.encoder import encode_latents  # noqa: E402
from refcodec.errors import RefcodecError  # noqa: E402
from refcodec.image import png_bytes  # noqa: E402
from refcodec.model import load_model, parse_safetensors, save_safetensors  # noqa: E402
from refcodec.testing import random_model  # noqa: E402


def smooth_image(seed: int, w: int, h: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(max(1, h // 8), max(1, w // 8), 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize((w, h), Image.BILINEAR))


def vectors(model_path: Path):
    """(name, description, clauses, stream) for every vector."""
    model = load_model(model_path.read_bytes())
    sample = ROOT.parent / "refcodec" / "data" / "sample.png"
    yield ("photo-200x200", "The package's sample photo: a natural image through the whole pipeline.",
           ["7.1", "8.2", "8.3", "8.4", "8.5", "3.3", "5.2", "5.3", "5.4", "5.5"], encode(sample, model=model))
    yield ("size-1x1", "A 1x1 picture: one latent position, 15 of 16 rows and columns cropped.",
           ["8.2", "8.5"], encode(smooth_image(1, 1, 1), model=model))
    yield ("size-33x17", "Odd size one above a multiple of the stride (33 = 2*16 + 1) by 17.",
           ["8.2", "8.5"], encode(smooth_image(2, 33, 17), model=model))
    yield ("size-1x40", "A single column, 40 rows.", ["8.2", "8.5"], encode(smooth_image(3, 1, 40), model=model))
    zeros = np.zeros((model.m, 2, 2), dtype=np.int64)
    yield ("latents-zero", "All latents zero (32x32): the model's bias response only.",
           ["8.3", "8.4"], encode_latents(zeros, model, 32, 32))
    rng = np.random.default_rng(4)
    y = rng.integers(-3, 4, size=(model.m, 2, 3))
    y[0, 0, 0], y[1, 0, 1], y[2, 1, 2] = 32767, -32768, 1000
    y[3] = rng.integers(-200, 200, size=(2, 3))
    yield ("latents-escapes", "Latents far outside every table: escapes with 3 and 4 raw nibbles, "
           "the extreme values -32768 and 32767, hidden activations clamped at the s16 limits, "
           "pixels clamped at 0 and 255.",
           ["3.4", "3.5", "8.3", "5.3", "5.5"], encode_latents(y, model, 40, 30))


def _patch(stream: bytes, pos: int, value: bytes) -> bytes:
    return stream[:pos] + value + stream[pos + len(value):]


def _with_y(stream: bytes, y_data: bytes) -> bytes:
    """The stream with another y sub-stream and a y_length that matches it."""
    return stream[: HEADER_BYTES - 4] + len(y_data).to_bytes(4, "little") + y_data


def _broken_model(valid: bytes, edit) -> bytes:
    """The model file ``valid`` with its tensors changed by ``edit(tensors)``."""
    meta, tensors = parse_safetensors(valid)
    tensors = {k: np.array(v) for k, v in tensors.items()}
    edit(tensors)
    return save_safetensors(tensors, meta)


def negative_vectors(model_path: Path):
    """(name, description, clauses, stream, error class, model bytes or None for the suite's model)."""
    model = load_model(model_path.read_bytes())
    good = encode(smooth_image(5, 40, 24), model=model)
    y = good[HEADER_BYTES:]
    yield "neg-bad-magic", "Magic 'RIFF' instead of 'RCDC'.", ["7.2"], _patch(good, 0, b"RIFF"), "StreamError", None
    yield "neg-version-2", "Stream version 2.", ["7.2"], _patch(good, 4, b"\x02"), "StreamError", None
    yield ("neg-architecture-1", "Architecture code 1 (hyperprior), reserved in version 1.", ["7.2"],
           _patch(good, 5, b"\x01"), "StreamError", None)
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
    ]:
        broken = _broken_model(small, edit)
        stream = _patch(small_stream, 6, hashlib.sha256(broken).digest())
        yield name, description, [clause], stream, "ModelError", broken


def write_negative(index: list, model_file: Path) -> None:
    for name, description, clauses, stream, error, broken in negative_vectors(model_file):
        folder = ROOT / name
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        model = model_file
        if broken is not None:
            model = ROOT / "models" / f"{hashlib.sha256(broken).hexdigest()}.safetensors"
            model.write_bytes(broken)
        for impl in ("reference", "fast"):
            try:
                decode(stream, [model], impl=impl)
                raise AssertionError(f"{name}: {impl} decoder accepted a negative vector")
            except RefcodecError as e:
                assert type(e).__name__ == error, (name, impl, e)
        (folder / "stream.rcdc").write_bytes(stream)
        manifest = {"name": name, "description": description, "model": f"models/{model.name}",
                    "clauses": clauses, "stream_sha256": hashlib.sha256(stream).hexdigest(),
                    "expected_error": error}
        (folder / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        index.append({"name": name, "manifest": f"{name}/manifest.json"})
        print(f"{name}: {error}")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=ROOT.parent / "refcodec" / "models" / "factorized.safetensors")
    args = ap.parse_args(argv)
    data = args.model.read_bytes()
    model_id = hashlib.sha256(data).hexdigest()
    models = ROOT / "models"
    shutil.rmtree(models, ignore_errors=True)
    models.mkdir()
    model_file = models / f"{model_id}.safetensors"
    model_file.write_bytes(data)
    index = []
    for name, description, clauses, stream in vectors(model_file):
        folder = ROOT / name
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        pixels = decode(stream, [model_file], impl="reference")
        assert np.array_equal(pixels, decode(stream, [model_file], impl="fast"))
        (folder / "stream.rcdc").write_bytes(stream)
        (folder / "expected.png").write_bytes(png_bytes(pixels))
        manifest = {"name": name, "description": description, "architecture": "factorized",
                    "width": int(pixels.shape[1]), "height": int(pixels.shape[0]),
                    "model": f"models/{model_file.name}", "model_id": model_id, "clauses": clauses,
                    "stream_sha256": hashlib.sha256(stream).hexdigest(),
                    "pixels_sha256": hashlib.sha256(pixels.tobytes()).hexdigest()}
        (folder / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        index.append({"name": name, "manifest": f"{name}/manifest.json"})
        print(f"{name}: {len(stream)} bytes, {pixels.shape[1]}x{pixels.shape[0]}")
    write_negative(index, model_file)
    (ROOT / "index.json").write_text(json.dumps({"suite": "refcodec golden vectors", "version": 1,
                                                 "vectors": index}, indent=2) + "\n")


if __name__ == "__main__":
    main()
