"""Generate the golden vectors in vectors/ (run by hand; tests only verify).

    python vectors/generate.py [--model refcodec/models/factorized.safetensors]

Each vector is a folder with the stream, the expected decoded picture as PNG,
and manifest.json (description, size, model identity, the spec clauses it
exercises, SHA-256 of the decoded pixels as raw RGB bytes in row-major order).
Models are stored once, in vectors/models/, named by their identity.
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
from refcodec.encoder import encode_latents  # noqa: E402
from refcodec.image import png_bytes  # noqa: E402
from refcodec.model import load_model  # noqa: E402


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


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=ROOT.parent / "refcodec" / "models" / "factorized.safetensors")
    args = ap.parse_args(argv)
    data = args.model.read_bytes()
    model_id = hashlib.sha256(data).hexdigest()
    models = ROOT / "models"
    models.mkdir(exist_ok=True)
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
    (ROOT / "index.json").write_text(json.dumps({"suite": "refcodec golden vectors", "version": 1,
                                                 "vectors": index}, indent=2) + "\n")


if __name__ == "__main__":
    main()
