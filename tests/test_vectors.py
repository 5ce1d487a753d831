"""Golden vectors (vectors/): both decoders reproduce every vector's pixels exactly,
and report the required error class for every negative vector."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from refcodec import decode
from refcodec.errors import RefcodecError

VECTORS = Path(__file__).resolve().parent.parent / "vectors"
INDEX = json.loads((VECTORS / "index.json").read_text())["vectors"]


def test_suite_is_not_empty():
    negative = [e for e in INDEX if e["name"].startswith("neg-")]
    assert len(INDEX) - len(negative) >= 5 and len(negative) >= 10


@pytest.mark.parametrize("entry", INDEX, ids=[e["name"] for e in INDEX])
@pytest.mark.parametrize("impl", ["reference", "fast"])
def test_vector(entry, impl):
    manifest = json.loads((VECTORS / entry["manifest"]).read_text())
    folder = (VECTORS / entry["manifest"]).parent
    stream = (folder / "stream.rcdc").read_bytes()
    model = VECTORS / manifest["model"]
    assert hashlib.sha256(stream).hexdigest() == manifest["stream_sha256"]
    if "expected_error" in manifest:
        with pytest.raises(RefcodecError) as e:
            decode(stream, [model], impl=impl)
        assert type(e.value).__name__ == manifest["expected_error"]
        return
    assert hashlib.sha256(model.read_bytes()).hexdigest() == manifest["model_id"]
    pixels = decode(stream, [model], impl=impl)
    assert hashlib.sha256(pixels.tobytes()).hexdigest() == manifest["pixels_sha256"]
    assert np.array_equal(np.asarray(Image.open(folder / "expected.png").convert("RGB")), pixels)
