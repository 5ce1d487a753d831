"""Golden vectors (vectors/): both decoders reproduce every vector's pixels exactly,
and report the required error class for every negative vector."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from refcodec import decode
from refcodec.decoder.errors import RefcodecError

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


POSITIVE = [e for e in INDEX if not e["name"].startswith("neg-")]


@pytest.mark.parametrize("entry", POSITIVE, ids=[e["name"] for e in POSITIVE])
def test_dumped_stages_match_the_manifest(entry, tmp_path):
    """`refcodec decode --dump-stages` writes every stage of spec §9.4 with the manifest's checksums."""
    from refcodec.cli import main

    manifest = json.loads((VECTORS / entry["manifest"]).read_text())
    folder = (VECTORS / entry["manifest"]).parent
    dump = tmp_path / "stages"
    assert main(["decode", "--dump-stages", str(dump), "--model-file", str(VECTORS / manifest["model"]),
                 str(folder / "stream.rcdc"), str(tmp_path / "out.png")]) == 0
    for stage in manifest["stages"]:
        data = (dump / f"{stage['name']}.i32").read_bytes()
        assert len(data) == 4 * int(np.prod(stage["shape"])) and hashlib.sha256(data).hexdigest() == stage["sha256"]
    assert sorted(p.stem for p in dump.iterdir()) == sorted(s["name"] for s in manifest["stages"])
