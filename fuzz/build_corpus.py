"""Build the seed corpus of every harness from vectors/ (and refcodec's encoder), outside the repository
or in the git-ignored fuzz/corpus/.

    python fuzz/build_corpus.py [--out DIR]      # default: fuzz/corpus (ignored by fuzz/.gitignore)
    python fuzz/build_corpus.py --seeds          # rewrite the small committed seed set fuzz/seeds/

DIR/<harness>/ gets, per harness:

    stream  every stream of vectors/ whose model is a small test model (positive and negative vectors),
            and valid streams of random latents encoded for each small model (several sizes, every
            quality level a model has)
    model   every small model file of vectors/models/ and fuzz/seeds/models/, and random models of
            refcodec.conformance.models (quality levels, mean shifts, models at the bounds of spec §6.4)
    json    the header of every model file (shipped ones included), and texts at the limits of §2.7
    rans    fuzz_rans inputs: tables of every shape class, values with and without escapes, raw streams
    judge   fuzz_judge inputs: every vector, right and wrong outputs and stages, odd statuses

``--seeds`` writes a few of each (under ~100 KB in all) to fuzz/seeds/, which is committed, together with
fuzz/seeds/models/: one small model per architecture, the models the committed stream seeds name.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import shutil
import sys
from pathlib import Path

import fuzz_judge
import fuzz_rans
import fuzzlib
import numpy as np

from refcodec.conformance.models import random_model
from refcodec.decoder.bitstream import hyper_size, latent_size
from refcodec.decoder.errors import RefcodecError
from refcodec.decoder.model import model_from_bytes
from refcodec.encoder.encode import encode_latents

SEED_MODEL_VECTORS = ("stress-factorized", "stress-hyperprior", "stress-mean-scale", "stress-joint")
SIZES = ((1, 1), (17, 9), (40, 33), (3, 70))


def put(folder: Path, data: bytes) -> None:
    """Store ``data`` under its SHA-1, as libFuzzer names corpus files."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / hashlib.sha1(data).hexdigest()).write_bytes(data)


def vector_entries() -> list[dict]:
    index = json.loads((fuzzlib.VECTORS / "index.json").read_text(encoding="utf-8"))
    entries = []
    for e in index["vectors"]:
        try:
            manifest = json.loads((fuzzlib.VECTORS / e["manifest"]).read_text(encoding="utf-8"))
        except OSError:
            continue
        entries.append({"name": e["name"], "folder": fuzzlib.VECTORS / e["name"], **manifest})
    return entries


def latents(rng, shape: tuple) -> np.ndarray:
    spread = int(rng.choice([0, 1, 3, 20]))
    values = rng.integers(-spread, spread + 1, size=shape)
    if rng.random() < 0.4:
        values.flat[int(rng.integers(values.size))] = int(rng.choice([-32768, 32767, 500, -500]))
    return values.astype(np.int64)


def encoded_streams(model_files: list[Path], per_model: int) -> list[bytes]:
    """Valid streams of random latents for every valid model among ``model_files``."""
    out = []
    for path in model_files:
        try:
            model = model_from_bytes(path.read_bytes())
        except RefcodecError:
            continue
        rng = np.random.default_rng(list(model.model_id[:8]))
        for width, height in SIZES[:per_model]:
            lat_h, lat_w = latent_size(height, width)
            y = latents(rng, (model.m, lat_h, lat_w))
            z = None if model.architecture == "factorized" else latents(rng, (model.n, *hyper_size(lat_h, lat_w)))
            for level in (range(model.levels) if model.levels else [None])[:3]:
                with contextlib.suppress(ValueError, RefcodecError):
                    out.append(encode_latents(y, model, width, height, impl="reference", z_hat=z, level=level))
    return out


def stream_seeds(full: bool) -> list[bytes]:
    models = fuzzlib.small_model_files() if full else sorted(fuzzlib.SEED_MODELS.glob("*.safetensors"))
    small = {p.name for p in fuzzlib.small_model_files()}
    vector_streams = [(e["folder"] / "stream.rcdc").read_bytes() for e in vector_entries()
                      if Path(e["model"]).name in small and (e["folder"] / "stream.rcdc").exists()]
    return (vector_streams if full else []) + encoded_streams(models, len(SIZES) if full else 2)


def model_seeds(full: bool) -> list[bytes]:
    if not full:
        return []  # fuzz/seeds/models/ is the model harness's committed seed folder
    out = [p.read_bytes() for p in fuzzlib.small_model_files()]
    rng = np.random.default_rng(15)
    for i, arch in enumerate(("factorized", "hyperprior", "mean-scale", "joint") * 3):
        n, m = (int(c) for c in rng.integers(1, 5, size=2))
        out.append(random_model(rng, n, m, stress=i >= 8, name=f"fuzz-{i}", architecture=arch,
                                levels=None if arch == "factorized" else int(rng.integers(1, 9)),
                                mean_shift=int(rng.integers(0, 9)) if arch in ("mean-scale", "joint") else None,
                                quality_levels=int(rng.integers(1, 5)) if i % 2 else None))
    return out


def json_seeds(full: bool) -> list[bytes]:
    paths = sorted((fuzzlib.VECTORS / "models").glob("*.safetensors")) if full else \
        sorted(fuzzlib.SEED_MODELS.glob("*.safetensors"))[:2]
    out = []
    for path in paths:
        data = path.read_bytes()
        n = int.from_bytes(data[:8], "little")
        if len(data) >= 8 and n <= min(len(data) - 8, 1 << 20):
            out.append(data[8 : 8 + n])
    depth = 64
    out += [b"[" * depth + b"]" * depth, b"[" * (depth + 1) + b"]" * (depth + 1), b'{"a":9223372036854775807}',
            b'{"a":-9223372036854775808,"b":[true,false,null,"\\ud83d\\ude00"]}', b'{"a":1.0}', b'"\\u00e9\\/"',
            b'{"__metadata__":{"N":"2","M":"3"},"x":{"dtype":"I16","shape":[1,2],"data_offsets":[0,4]}}']
    return out


def rans_seeds(full: bool) -> list[bytes]:
    out = [fuzz_rans.make_input(values=[0, 1, -1, 3, 7, -4]),
           fuzz_rans.make_input(values=[5000, -70000, 2, 1 << 19]),
           fuzz_rans.make_input(rows=[(2, b"", 0)], values=[0, 0, 0, 1, -1]),
           fuzz_rans.make_input(rows=[(40, bytes(range(39)), -20), (3, b"\xff\x00", 7)], values=list(range(-5, 30))),
           fuzz_rans.make_input(raw=b"\x00\x00\x00\x80\x00\x00\x00\x00"),
           fuzz_rans.make_input(raw=b"\xff\xff\xff\xff\xff\xff\xff\x7f" + b"\x12\x34\x56\x78" * 4)]
    if full:
        rng = np.random.default_rng(3)
        for _ in range(40):
            rows = [(int(rng.integers(2, 42)), bytes(rng.integers(0, 256, 41, dtype="u1")), int(rng.integers(-30, 30)))
                    for _ in range(int(rng.integers(1, 5)))]
            out.append(fuzz_rans.make_input(rows=rows, values=[int(v) for v in rng.integers(-40, 40, 60)]))
    return out


def judge_seeds(full: bool) -> list[bytes]:
    right = b"\x01" * 20
    out = [fuzz_judge.make_input(v, 1, 1, right, png=png) for v in range(4) for png in (True, False)]
    out += [fuzz_judge.make_input(0, 1, 2, b"\x01\x02\x03\x04\x05", stderr=b"StreamError: x (spec \xc2\xa77.2)"),
            fuzz_judge.make_input(2, 2, 0, stderr=b"ModelError: nope\n\x1b[31mred\x00"),
            fuzz_judge.make_input(1, 0, 6, b"\x06\x08\x09\x05\x03"), fuzz_judge.make_input(3, 4, 4, b"", dump=False)]
    if full:
        rng = np.random.default_rng(5)
        out += [bytes(rng.integers(0, 256, int(rng.integers(8, 64)), dtype="u1")) for _ in range(30)]
    return out


BUILDERS = {"stream": stream_seeds, "model": model_seeds, "json": json_seeds, "rans": rans_seeds,
            "judge": judge_seeds}


def write_seed_models() -> None:
    """fuzz/seeds/models/: the models of the stress vectors, one per architecture."""
    fuzzlib.SEED_MODELS.mkdir(parents=True, exist_ok=True)
    for e in vector_entries():
        if e["name"] in SEED_MODEL_VECTORS:
            shutil.copyfile(fuzzlib.VECTORS / e["model"], fuzzlib.SEED_MODELS / Path(e["model"]).name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=fuzzlib.FUZZ_DIR / "corpus", help="corpus folder")
    parser.add_argument("--seeds", action="store_true", help="rewrite the committed seed set fuzz/seeds/")
    args = parser.parse_args(argv)
    fuzz_judge.setup()
    if args.seeds:
        write_seed_models()
    out = fuzzlib.SEEDS if args.seeds else args.out
    for name, build in BUILDERS.items():
        folder = out / name
        if args.seeds:
            shutil.rmtree(folder, ignore_errors=True)
        for data in build(not args.seeds):
            put(folder, data)
        print(f"{folder}: {len(list(folder.glob('*')))} inputs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
