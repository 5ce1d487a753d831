"""Golden vectors (vectors/): both decoders reproduce every vector's pixels exactly, and report
the required error class for every negative vector; refcodec's command-line decoder, run in this
process, passes every vector as the conformance runner judges a decoder (spec §9.1, §9.4).
tests/test_conform.py runs a sample of the vectors through the runner, decoder in a subprocess."""

import contextlib
import hashlib
import io
import json
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from refcodec import decode
from refcodec.cli import main as refcodec_main
from refcodec.conformance.harness import Config, Outcome, last_line
from refcodec.conformance.judge import judge
from refcodec.conformance.suite import STAGE_SUFFIX, load_vectors
from refcodec.decoder.bitstream import parse_stream
from refcodec.decoder.errors import RefcodecError

VECTORS = Path(__file__).resolve().parent.parent / "vectors"
INDEX = json.loads((VECTORS / "index.json").read_text())["vectors"]


def test_suite_is_not_empty():
    negative = [e for e in INDEX if e["name"].startswith("neg-")]
    assert len(INDEX) - len(negative) >= 5 and len(negative) >= 10


def manifest_of(name: str) -> dict:
    return json.loads((VECTORS / name / "manifest.json").read_text())


def test_quality_vectors_of_spec_9_3():
    """The vectors of edition 4 that spec §9.3 lists: version-2 streams at the lowest and highest level of each
    architecture with stages z_gain (not factorized) and y_gain, a version-1 stream of a model with quality levels
    without them, and the negative vectors of §7.2, §8.1, §6.3 and §6.4; version 2 is no longer a negative vector."""
    names = {e["name"] for e in INDEX}
    for arch in ("factorized", "hyperprior", "mean-scale", "joint"):
        for which in ("lowest", "highest"):
            name = f"quality-{arch}-{which}"
            stream = (VECTORS / name / "stream.rcdc").read_bytes()
            stages = [stage["name"] for stage in manifest_of(name)["stages"]]
            gained = ["y_gain"] if arch == "factorized" else ["z_gain", "y_gain"]
            assert stream[4] == 2 and [s for s in stages if s.endswith("_gain")] == gained, name
            assert stages.index("y_gain") == stages.index("y_hat") + 1
            assert "8.11" in manifest_of(name)["clauses"]
    assert (VECTORS / "quality-version-1" / "stream.rcdc").read_bytes()[4] == 1
    assert not [s for s in manifest_of("quality-version-1")["stages"] if s["name"].endswith("_gain")]
    errors = {"neg-quality-no-levels": "StreamError", "neg-quality-level-L": "StreamError",
              "neg-version-3": "StreamError", "neg-model-quality-y-only": "ModelError",
              "neg-model-quality-z-only": "ModelError", "neg-model-quality-gain-0": "ModelError",
              "neg-model-quality-gain-over": "ModelError", "neg-bad-magic-unknown-model": "StreamError"}
    assert {name: manifest_of(name)["expected_error"] for name in errors} == errors
    assert "neg-version-2" not in names and not (VECTORS / "neg-version-2").exists()


def test_level_vectors_of_spec_9_3():
    """The vectors of edition 5 that spec §9.3 lists: pictures wider or taller than 4096 (levels 2 and 3, spec
    §7.3), a few kB each, and the headers above MAX_DIMENSION; neg-height-4097 (a height edition 5 allows) is
    gone. Every other vector whose header is valid is of level 1."""
    names = {e["name"] for e in INDEX}
    levels = {"size-4112x16": (2, 4112, 16), "size-16384x16": (3, 16384, 16), "joint-size-16x16384": (3, 16, 16384)}
    for name, (level, width, height) in levels.items():
        folder = VECTORS / name
        header = parse_stream((folder / "stream.rcdc").read_bytes())
        assert (header.level, header.width, header.height) == (level, width, height), name
        assert (manifest_of(name)["width"], manifest_of(name)["height"]) == (width, height)
        assert "7.3" in manifest_of(name)["clauses"]
        assert sum(f.stat().st_size for f in folder.iterdir()) < 20_000  # a few kB: stream, picture, manifest
    for name in ("neg-width-16385", "neg-height-16385", "neg-size-65535x65535"):
        assert manifest_of(name)["expected_error"] == "StreamError" and "7.3" in manifest_of(name)["clauses"]
    assert "neg-height-4097" not in names and not (VECTORS / "neg-height-4097").exists()
    suite = load_vectors(VECTORS, [])
    assert {v.name: v.level for v in suite if (v.level or 1) > 1} == {name: v[0] for name, v in levels.items()}
    assert {v.name for v in suite if v.level is None} >= {"neg-width-16385", "neg-size-65535x65535", "neg-bad-magic"}


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


@pytest.fixture(scope="module")
def suite() -> dict:
    """name -> Vector, as the runner loads them: every stream and model checked against its manifest."""
    return {vector.name: vector for vector in load_vectors(VECTORS, [])}


@pytest.mark.parametrize("entry", INDEX, ids=[e["name"] for e in INDEX])
def test_own_decoder_passes_as_the_runner_judges(entry, suite, tmp_path):
    """`refcodec decode` in this process (with ``--dump-stages`` for a positive vector), judged as
    `refcodec conform` judges a decoder: exit status, the SHA-256 of the raw RGB output, and every
    stage of spec §9.4; for a negative vector the error class on stderr and no output file."""
    vector = suite[entry["name"]]
    output, dump = tmp_path / "output.rgb", tmp_path / "stages"
    stages = [] if vector.negative else ["--dump-stages", str(dump)]
    stderr, start = io.StringIO(), time.monotonic()
    with contextlib.redirect_stderr(stderr):
        status = refcodec_main(["decode", *stages, "--model-file", str(vector.model), str(vector.stream),
                                str(output)])
    outcome = Outcome(status, last_line(stderr.getvalue().encode()), time.monotonic() - start)
    result = judge(vector, outcome, output, dump, Config([], "rgb", tmp_path / "diffs", dump=not vector.negative))
    assert result.passed, result.detail
    if vector.negative:
        assert result.note == f"reported {vector.manifest['expected_error']} as expected"
    else:
        assert result.detail == f"pixels match; all {len(vector.manifest['stages'])} stages match"
        names = sorted(stage["name"] + STAGE_SUFFIX for stage in vector.manifest["stages"])
        assert sorted(path.name for path in dump.iterdir()) == names
