"""The golden-vector format (spec §9.3, vectors/README.md), read by the runner and written by the generators.

A suite is a folder: ``index.json`` lists the vectors; each vector is a folder with ``stream.rcdc``,
``manifest.json`` and, for a positive vector, ``expected.png``; the models are stored once, in
``models/``, each named by its identity (the SHA-256 of the file, spec §6.5). A positive vector's
manifest gives the SHA-256 of the decoded pixels (raw RGB bytes, row-major, spec §2.5) and the
checksums of the intermediate stages (spec §9.4); a negative vector's gives ``expected_error``, the
error class a decoder must report (spec §2.6).
"""

from __future__ import annotations

import json
import math
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from refcodec.conformance import UsageError
from refcodec.decoder.bitstream import HEAD_BYTES, fixed_header, stream_level
from refcodec.decoder.conventions import sha256
from refcodec.decoder.decoding import stage_bytes, stages
from refcodec.decoder.errors import StreamError
from refcodec.decoder.model import Model
from refcodec.image import png_bytes

DEFAULT_VECTORS = Path(__file__).resolve().parents[2] / "vectors"  # the repository's golden vectors
STAGE_NAME = re.compile(r"[a-z_]+(\.[0-9]+)?")  # z_hat, synthesis.3, ... (spec §9.4)
STAGE_SUFFIX = ".i32"
STAGE_VALUE_BYTES = 4  # s32 (spec §9.4)


@dataclass(frozen=True)
class Vector:
    name: str
    folder: Path
    model: Path
    manifest: dict

    @property
    def negative(self) -> bool:
        return "expected_error" in self.manifest

    @property
    def stream(self) -> Path:
        return self.folder / "stream.rcdc"

    @property
    def expected(self) -> Path:
        return self.folder / "expected.png"

    @property
    def level(self) -> int | None:
        """The level of the vector's stream (spec §7.3), or None when its fixed header (magic .. height)
        is broken: such a stream is a StreamError for a decoder of every level."""
        with open(self.stream, "rb") as f:
            head = f.read(HEAD_BYTES)
        try:
            width, height = fixed_header(head)[4:]
        except StreamError:
            return None
        return stream_level(width, height)


def within_level(vectors: list[Vector], level: int) -> tuple:
    """(the vectors a decoder that conforms at ``level`` is judged on, the names of the others): a decoder
    may decline a stream of a higher level that passes ParseStream (spec §7.3, §9.1), so the vectors whose
    stream is of a higher level are not run."""
    above = [v.name for v in vectors if (v.level or 0) > level]
    return [v for v in vectors if v.name not in above], above


# --- reading (the runner) ----------------------------------------------------


def load_vectors(folder: Path, filters: list[str]) -> list[Vector]:
    """The vectors of ``folder``/index.json whose name contains any of ``filters`` (all if none)."""
    folder = folder.resolve()
    if not (folder / "index.json").is_file():
        raise UsageError(f"no golden vectors in {folder} (no index.json); pass --vectors DIR")
    try:
        entries = json.loads((folder / "index.json").read_text(encoding="utf-8"))["vectors"]
        vectors = [load_vector(folder, e) for e in entries if any(s in e["name"] for s in filters or [""])]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UsageError(f"cannot read the golden vectors in {folder}: {type(e).__name__}: {e}") from None
    if not vectors:
        raise UsageError(f"no vector's name contains {' or '.join(map(repr, filters))}")
    return vectors


def load_vector(folder: Path, entry: dict) -> Vector:
    """One vector, after checking its stream and model against the manifest's hashes
    (so that a damaged checkout is not blamed on the decoder, spec §9.3) and its stage list."""
    manifest_path = folder / entry["manifest"]
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    vector = Vector(entry["name"], manifest_path.parent, folder / manifest["model"], manifest)
    require_sha256(vector.stream, manifest["stream_sha256"])
    if "model_id" in manifest:
        require_sha256(vector.model, manifest["model_id"])
    for stage in manifest.get("stages", []):
        stage_file_size(stage)
    return vector


def stage_file_size(stage: dict) -> int:
    """The size of a manifest stage's file (spec §9.4); ValueError for a name that is not a plain
    stage name (it becomes a file name) or a shape that is not a list of sizes."""
    shape = stage["shape"]
    if not (isinstance(stage["name"], str) and STAGE_NAME.fullmatch(stage["name"]) and isinstance(shape, list)
            and all(type(s) is int and s >= 0 for s in shape) and isinstance(stage["sha256"], str)):
        raise ValueError(f"malformed stage entry {stage!r}")
    return STAGE_VALUE_BYTES * math.prod(shape)


def require_sha256(path: Path, expected: str) -> None:
    if sha256(path.read_bytes()).hex() != expected:
        raise UsageError(f"{path} is damaged: its SHA-256 differs from the manifest's")


# --- writing (the golden vectors, the random streams) --------------------------


def store_model(root: Path, data: bytes) -> Path:
    """The model file ``data`` in ``root``/models/, named by its identity (spec §6.5)."""
    path = root / "models" / f"{sha256(data).hex()}.safetensors"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_bytes(data)
    return path


def positive_manifest(name: str, description: str, clauses: list, stream: bytes, pixels: np.ndarray,
                      model_path: Path, model: Model) -> dict:
    """The manifest of a positive vector whose model is stored at ``model_path``: ``pixels`` is
    the picture of refcodec's reference decoder, the stages (spec §9.4) are its stages."""
    return {"name": name, "description": description, "architecture": model.architecture,
            "width": int(pixels.shape[1]), "height": int(pixels.shape[0]),
            "model": f"models/{model_path.name}", "model_id": model.model_id.hex(), "clauses": clauses,
            "stream_sha256": sha256(stream).hex(), "pixels_sha256": sha256(pixels.tobytes()).hex(),
            "stages": [{"name": stage, "shape": list(array.shape), "sha256": sha256(stage_bytes(array)).hex()}
                       for stage, array in stages(stream, [model_path], impl="reference").items()]}


def write_vector_folder(root: Path, manifest: dict, stream: bytes, pixels: np.ndarray | None = None) -> Path:
    """The folder ``root``/<name> of a vector, replaced: its stream, its manifest and, for a
    positive vector, the expected picture."""
    folder = root / manifest["name"]
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    (folder / "stream.rcdc").write_bytes(stream)
    if pixels is not None:
        (folder / "expected.png").write_bytes(png_bytes(pixels))
    write_json(folder / "manifest.json", manifest)
    return folder


def index_entry(name: str) -> dict:
    """A vector's entry in index.json."""
    return {"name": name, "manifest": f"{name}/manifest.json"}


def write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
