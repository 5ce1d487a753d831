"""Golden vectors (vectors/): both decoders reproduce every vector's pixels exactly."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from refcodec import decode

VECTORS = Path(__file__).resolve().parent.parent / "vectors"
INDEX = json.loads((VECTORS / "index.json").read_text())["vectors"]


def test_suite_is_not_empty():
    assert len(INDEX) >= 5


@pytest.mark.parametrize("entry", INDEX, ids=[e["name"] for e in INDEX])
@pytest.mark.parametrize("impl", ["reference", "fast"])
def test_vector(entry, impl):
    manifest = json.loads((VECTORS / entry["manifest"]).read_text())
    folder = (VECTORS / entry["manifest"]).parent
    stream = (folder / "stream.rcdc").read_bytes()
    model = VECTORS / manifest["model"]
    assert hashlib.sha256(stream).hexdigest() == manifest["stream_sha256"]
    assert hashlib.sha256(model.read_bytes()).hexdigest() == manifest["model_id"]
    pixels = decode(stream, [model], impl=impl)
    assert hashlib.sha256(pixels.tobytes()).hexdigest() == manifest["pixels_sha256"]
    assert np.array_equal(np.asarray(Image.open(folder / "expected.png").convert("RGB")), pixels)
