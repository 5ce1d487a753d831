"""Generative conformance (spec §9.3): ``refcodec conform --random N --seed S``.

Stream i of seed S has a random architecture, a small random valid model
(``refcodec.conformance.models.random_model``: N and M 1..4, some at the bounds of spec §6.4,
any mean shift of §6.3; some with 1..8 quality levels of random gains, §6.3, §6.4, and then a
version-2 stream at a random level, §7.1, §8.11), a random size (1..96 each side) and random
latents (mostly small, some escapes and ``s16`` extremes), encoded by refcodec's encoder and
decoded by its reference decoder for the expected picture. The same seed gives the same
streams (with the same refcodec version), and stream i does not depend on N. A stream a
decoder fails is shrunk: smaller pictures, a version-1 stream of the model without its gains,
zeroed parts of the latents, smaller values are tried greedily, at most
``--shrink-runs`` decoder runs per failing stream, keeping a change when the decoder still
fails in the same way; the smallest failing stream is saved under ``--save-dir`` as a vector
folder in the golden-vector format (refcodec.conformance.suite), with an ``index.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import secrets
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from refcodec import __version__
from refcodec.conformance import UsageError
from refcodec.conformance.harness import Config, Decoders, run_parallel
from refcodec.conformance.judge import Result, check_all, check_vector
from refcodec.conformance.models import random_model, with_gains
from refcodec.conformance.suite import (
    Vector,
    index_entry,
    positive_manifest,
    store_model,
    write_json,
    write_vector_folder,
)
from refcodec.decoder.bitstream import hyper_size, latent_size
from refcodec.decoder.decoding import decode_stream
from refcodec.decoder.layers import ACT_MAX, ACT_MIN
from refcodec.decoder.model import ARCHITECTURES, MAX_MEAN_SHIFT, model_from_bytes, parse_container
from refcodec.encoder.encode import encode_latents
from refcodec.encoder.export import save_safetensors

DEFAULT_SAVE_DIR = Path("conform-failures")
MAX_SHRINK_RUNS = 60  # decoder runs spent shrinking one failing random stream
MAX_RANDOM_SIDE = 96  # random pictures are 1..96 samples on each side
MAX_RANDOM_CHANNELS = 4  # random models have N, M in 1..4
MAX_RANDOM_LEVELS = 8  # rows of the y table of random hyperprior-family models
STRESS_CHANCE = 0.25  # share of random models at the bounds of spec §6.4
QUALITY_CHANCE = 0.4  # share of random models with quality levels (and version-2 streams)
MAX_RANDOM_QUALITY_LEVELS = 8  # random models with quality levels have 1..8


@dataclass(frozen=True, eq=False)
class Case:
    """The ingredients of one random stream, what the shrinker changes: a model file,
    a picture size, latents y (M, LatH, LatW) and, except for factorized, z (N, ZH, ZW)."""

    seed: int
    index: int
    architecture: str
    n: int
    m: int
    stress: bool
    model: bytes
    width: int
    height: int
    y: np.ndarray
    z: np.ndarray | None
    levels: int = 0  # L, the model's quality levels (spec §6.3); 0: none
    level: int | None = None  # the stream's quality (a version-2 stream, spec §7.1); None: version 1

    @property
    def name(self) -> str:
        return f"random-{self.seed}-{self.index}"

    def summary(self) -> str:
        bounds = ", at the bounds of §6.4" if self.stress else ""
        quality = ""
        if self.levels:
            at = "a version-1 stream" if self.level is None else f"quality {self.level}"
            quality = f", {self.levels} quality level{'s' if self.levels > 1 else ''}, {at}"
        return f"{self.architecture} {self.width}x{self.height}, N={self.n} M={self.m}{bounds}{quality}"


def run_random(args: argparse.Namespace, config: Config, decoders: Decoders) -> tuple[list[Result], dict]:
    """Decode ``args.random`` random streams of ``args.seed``, shrink and save the ones
    the decoder fails; (results, the JSON report's description of the source)."""
    seed = secrets.randbelow(1 << 32) if args.seed is None else args.seed
    save_dir = args.save_dir or DEFAULT_SAVE_DIR
    budget = MAX_SHRINK_RUNS if args.shrink_runs is None else args.shrink_runs
    print(f"{args.random} random streams, seed {seed} (refcodec {__version__})")
    with tempfile.TemporaryDirectory(prefix="refcodec-random-") as tmp:
        cases = [random_case(seed, i) for i in range(args.random)]
        vectors = [write_vector(Path(tmp) / "streams", case, describe_case(case)) for case in cases]
        results = check_all(vectors, config, decoders, args.jobs)
        for case, result in zip(cases, results, strict=True):
            result.note = case.summary()
        failed = [(case, result) for case, result in zip(cases, results, strict=True) if not result.passed]
        scratch = dataclasses.replace(config, diff_dir=Path(tmp) / "diffs")
        def shrink_one(failure: tuple[Case, Result]) -> None:
            case, result = failure
            shrink_and_save(case, result, scratch, decoders, budget, save_dir, Path(tmp) / case.name)

        run_parallel(shrink_one, failed, [case.name for case, _ in failed], args.jobs, decoders)
    return results, {"random": args.random, "seed": seed, "save_dir": str(save_dir.resolve())}


def random_case(seed: int, index: int) -> Case:
    """Stream ``index`` of ``seed``: drawn from a generator of its own, so it does not depend
    on how many streams are drawn (spec-valid by construction: every latent is an s16)."""
    rng = np.random.default_rng([seed, index])
    architecture = list(ARCHITECTURES)[int(rng.integers(len(ARCHITECTURES)))]
    n, m = (int(c) for c in rng.integers(1, MAX_RANDOM_CHANNELS + 1, size=2))
    stress = bool(rng.random() < STRESS_CHANCE)
    levels = None if architecture == "factorized" else int(rng.integers(1, MAX_RANDOM_LEVELS + 1))
    # -1: no entropy.y.mean_shift tensor; a generator of its own keeps the other draws those of edition 2
    mean_shift = int(np.random.default_rng([seed, index, 1]).integers(-1, MAX_MEAN_SHIFT + 1))
    model = random_model(rng, n, m, stress=stress, name=f"random-{seed}-{index}", architecture=architecture,
                         levels=levels, mean_shift=None if mean_shift < 0 else mean_shift)
    # quality levels (edition 4), from a generator of their own too: the other draws stay those of edition 3
    quality_rng = np.random.default_rng([seed, index, 2])
    quality_levels, level = 0, None
    if quality_rng.random() < QUALITY_CHANCE:
        quality_levels = int(quality_rng.integers(1, MAX_RANDOM_QUALITY_LEVELS + 1))
        model = with_gains(model, quality_rng, quality_levels)
        level = int(quality_rng.integers(quality_levels))
    width, height = (int(s) for s in rng.integers(1, MAX_RANDOM_SIDE + 1, size=2))
    lat_h, lat_w = latent_size(height, width)
    y = random_latents(rng, (m, lat_h, lat_w))
    z = None if architecture == "factorized" else random_latents(rng, (n, *hyper_size(lat_h, lat_w)))
    return Case(seed, index, architecture, n, m, stress, model, width, height, y, z, quality_levels, level)


def random_latents(rng: np.random.Generator, shape: tuple) -> np.ndarray:
    """Mostly small values (inside the tables), sometimes a few escape-sized ones and the s16 extremes."""
    spread = int(rng.choice([0, 1, 3, 10, 100]))
    values = rng.integers(-spread, spread + 1, size=shape)
    if rng.random() < 0.4:  # escapes of 2 to 4 raw nibbles
        k = int(rng.integers(1, 4))
        magnitudes = np.exp2(rng.uniform(5, 15, size=k)).astype(np.int64)
        values.flat[rng.integers(0, values.size, size=k)] = magnitudes * rng.choice([-1, 1], size=k)
    if rng.random() < 0.25:
        k = int(rng.integers(1, 3))
        values.flat[rng.integers(0, values.size, size=k)] = rng.choice([ACT_MIN, ACT_MAX], size=k)
    return values.astype(np.int64)


def describe_case(case: Case, shrunk_from: Case | None = None, runs: int = 0) -> str:
    """A saved vector's description: where it comes from and how it was shrunk."""
    text = f"Random stream {case.index} of seed {case.seed} (refcodec conform --random, refcodec {__version__})"
    if shrunk_from is None:
        return f"{text}: {case.summary()}."
    return f"{text}, {shrunk_from.summary()}, shrunk in {runs} decoder runs to {case.width}x{case.height}."


def write_vector(root: Path, case: Case, description: str) -> Vector:
    """``case`` as a positive vector in ``root``: the stream encoded by refcodec, the picture
    and stages of its reference decoder, the model in models/."""
    model_path = store_model(root, case.model)
    model = model_from_bytes(case.model)
    stream = encode_latents(case.y, model, case.width, case.height, impl="reference", z_hat=case.z,
                            level=case.level)
    pixels = decode_stream(stream, [model_path], impl="reference")
    manifest = positive_manifest(case.name, description, [], stream, pixels, model_path, model)
    return Vector(case.name, write_vector_folder(root, manifest, stream, pixels), model_path, manifest)


# --- shrinking ----------------------------------------------------------------


def shrink_and_save(case: Case, result: Result, config: Config, decoders: Decoders, budget: int,
                    save_dir: Path, scratch: Path) -> None:
    """Shrink a failing random stream with the decoder, save the smallest failing one
    under ``save_dir`` and record it in ``result``."""
    def fails_alike(candidate: Case) -> bool:
        return check_vector(write_vector(scratch, candidate, ""), config, decoders).reason == result.reason

    smallest, runs = shrink(case, fails_alike, budget)
    vector = write_vector(scratch, smallest, describe_case(smallest, case, runs))
    saved = save_vector(vector, save_dir)
    result.saved_vector, result.shrink_runs = str(saved), runs
    result.detail += f"; shrunk in {runs} runs to {smallest.summary()}, saved as {saved}"


def shrink(case: Case, still_fails, budget: int) -> tuple[Case, int]:
    """The smallest case found greedily for which ``still_fails(case)`` is true, trying at most
    ``budget`` candidates; (that case, how many were tried). After each success the candidates
    are tried again from the most aggressive."""
    runs, progress = 0, True
    while progress and runs < budget:
        progress = False
        for candidate in shrink_candidates(case):
            if runs == budget:
                break
            runs += 1
            if still_fails(candidate):
                case, progress = candidate, True
                break
    return case, runs


def shrink_candidates(case: Case):
    """Smaller variants of ``case``, most aggressive first: a smaller picture (latents cropped
    to it), no quality levels (a version-1 stream of the model without its gains), zeroed latents
    (all, halves, quarters), s16 extremes set to 0, halved values."""
    for width, height in ((1, case.height), (case.width, 1), (case.width // 2, case.height),
                          (case.width, case.height // 2)):
        if width >= 1 and height >= 1 and (width, height) != (case.width, case.height):
            yield cropped(case, width, height)
    if case.levels:
        yield without_quality(case)
    for field in ("y", "z"):
        values = getattr(case, field)
        if values is None:
            continue
        for smaller in smaller_latents(values):
            yield dataclasses.replace(case, **{field: smaller})


def cropped(case: Case, width: int, height: int) -> Case:
    """``case`` for a smaller picture, with the latents of its top-left corner (sizes of spec §8.2)."""
    lat_h, lat_w = latent_size(height, width)
    z_h, z_w = hyper_size(lat_h, lat_w)
    z = None if case.z is None else case.z[:, :z_h, :z_w]
    return dataclasses.replace(case, width=width, height=height, y=case.y[:, :lat_h, :lat_w], z=z)


def without_quality(case: Case) -> Case:
    """``case`` with a model without quality tensors (spec §6.3) and a version-1 stream: no gain applied."""
    meta, tensors = parse_container(case.model)
    plain = {name: tensor for name, tensor in tensors.items() if not name.startswith("quality.")}
    return dataclasses.replace(case, model=save_safetensors(plain, meta), levels=0, level=None)


def smaller_latents(values: np.ndarray):
    """Variants of a latent array that differ from it: all zero, each half and quarter (in
    channel, row, column order) zero, the s16 extremes zero, every value halved toward 0."""
    flat = values.reshape(-1)
    variants = [np.zeros_like(flat)]
    for parts in (2, 4):
        for part in np.array_split(np.arange(flat.size), parts):
            v = flat.copy()
            v[part] = 0
            variants.append(v)
    variants.append(np.where((flat == ACT_MIN) | (flat == ACT_MAX), 0, flat))
    variants.append(np.sign(flat) * (np.abs(flat) // 2))
    seen = {flat.tobytes()}
    for v in variants:
        if v.tobytes() not in seen:
            seen.add(v.tobytes())
            yield v.reshape(values.shape)


# --- saving the smallest failing streams --------------------------------------


def save_vector(vector: Vector, save_dir: Path) -> Path:
    """Copy ``vector`` (with its model) into ``save_dir`` and list it in its index.json
    (replacing an entry of the same name); returns the vector's folder there."""
    target = save_dir / vector.name
    try:
        with _save_lock:  # failures are shrunk in parallel
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(vector.folder, target)
            (save_dir / "models").mkdir(exist_ok=True)
            shutil.copyfile(vector.model, save_dir / vector.manifest["model"])
            add_to_index(save_dir, vector.name)
    except OSError as e:
        raise UsageError(f"cannot save a failing stream in {save_dir}: {e}") from None
    return target


_save_lock = threading.Lock()


def add_to_index(folder: Path, name: str) -> None:
    """List the vector ``name`` in ``folder``/index.json, creating it if need be."""
    path = folder / "index.json"
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        index = {"suite": "refcodec conform --random failures", "version": 1, "vectors": []}
    entries = [e for e in index["vectors"] if e.get("name") != name]
    entries.append(index_entry(name))
    index["vectors"] = sorted(entries, key=lambda e: natural_order(e["name"]))
    write_json(path, index)


def natural_order(name: str) -> list:
    """A sort key that puts random-1-9 before random-1-10."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", name)]
