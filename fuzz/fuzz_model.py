"""Fuzz harness (b): model-file loading (spec §6), refcodec.decoder.model.load_model.

Every input is a model file. ``load_model`` must return a Model or raise a ModelError, within the
memory bound (fuzzlib.memory_bound of the file's size). A model that loads is then used: a small
picture's random latents (drawn from the input's hash) are encoded for it by refcodec's encoder and
the stream is decoded by the reference decoder and the fast path, which must agree (pixels and the
intermediate stages of spec §9.4, or error class and clause) -- so mutated weights, shifts, gains and
CDF tables that pass the checks of spec §6.4 are decoded too. An input the encoder cannot encode for
is only loaded.

The custom mutator parses the safetensors container (spec §6.1) leniently and mostly produces valid
containers: one tensor's elements set to interesting values, a CDF row rebuilt (valid) or bent, a
tensor's dtype or shape changed, a tensor dropped, renamed or added (quality gains), metadata values
changed; then the header JSON is re-serialised and every offset and the header length fixed up.
Now and then it mutates the header text or the raw bytes instead.

    python fuzz/fuzz_model.py -dict=fuzz/refcodec.dict -max_len=131072 CORPUS_DIR [libFuzzer flags]
"""

from __future__ import annotations

import itertools
import json
import os
import struct
import sys
import tempfile
from pathlib import Path

import fuzzlib
import numpy as np

with fuzzlib.instrumented(__name__ == "__main__"):
    import refcodec  # noqa: F401 -- registers impl="fast"
    from refcodec.decoder.bitstream import latent_size, parse_stream
    from refcodec.decoder.conventions import sha256
    from refcodec.decoder.decoding import decode_stream
    from refcodec.decoder.errors import ModelError
    from refcodec.decoder.model import load_model
    from refcodec.encoder.encode import encode_latents

MAX_SIDE = 40  # pictures decoded with a fuzzed model: 1..40 samples a side
_tmp: list = []
_names = itertools.count()


def model_path(data: bytes) -> Path:
    """A fresh file holding ``data`` (a new name each time: identities are cached per path, size and mtime)."""
    if not _tmp:
        _tmp.append(tempfile.TemporaryDirectory(prefix="refcodec-fuzz-model-"))
        fuzzlib.hide_shipped_models()
    path = Path(_tmp[0].name) / f"m{next(_names)}.safetensors"
    path.write_bytes(data)
    return path


def latents(rng, shape: tuple) -> np.ndarray:
    spread = int(rng.choice([0, 1, 2, 5, 40]))
    values = rng.integers(-spread, spread + 1, size=shape)
    if rng.random() < 0.3:
        values.flat[int(rng.integers(values.size))] = int(rng.choice([-32768, 32767, 300, -300]))
    return values.astype(np.int64)


def stream_for(model, data: bytes) -> bytes | None:
    """A stream for ``model`` of random latents (drawn from the hash of ``data``); None if the encoder refuses."""
    rng = np.random.default_rng(list(sha256(data)[:8]))
    width, height = (int(s) for s in rng.integers(1, MAX_SIDE + 1, size=2))
    lat_h, lat_w = latent_size(height, width)
    y = latents(rng, (model.m, lat_h, lat_w))
    z = None if model.architecture == "factorized" else latents(rng, (model.n, (lat_h + 3) // 4, (lat_w + 3) // 4))
    level = int(rng.integers(model.levels)) if model.levels else None
    try:
        return encode_latents(y, model, width, height, impl="fast", z_hat=z, level=level)
    except Exception:  # the (informative) encoder is not under test here
        return None


def decode(stream: bytes, path: Path, impl: str) -> tuple:
    result = fuzzlib.outcome(lambda: decode_stream(stream, [path], impl))
    return ("ok", result[1].tobytes()) if result[0] == "ok" else result


def test_one_input(data: bytes) -> None:
    data = bytes(data)
    with fuzzlib.traced_peak(data) as peak:
        try:
            model = load_model(data)
        except ModelError:
            model = None
    if peak[0]:
        fuzzlib.check_memory(peak[0], fuzzlib.memory_bound(0, model_bytes=len(data)), "model loading")
    if model is None:
        return
    stream = stream_for(model, data)
    if stream is None:
        return
    path = model_path(data)
    try:
        with fuzzlib.traced_peak(data) as peak:  # the reference decoder's: the fast path's has Numba's compiler in it
            reference = decode(stream, path, "reference")
        fast = decode(stream, path, "fast")
        if reference != fast:
            raise fuzzlib.Finding(f"decoders disagree on a stream for this model: {reference[:3]} vs {fast[:3]}"
                                  if reference[0] == "error" or fast[0] == "error" else
                                  "decoders disagree on the pixels of a stream for this model")
        if reference[0] == "ok":
            fuzzlib.compare_stages(stream, [path])
    finally:
        os.unlink(path)
    if peak[0]:
        lat_h, lat_w = parse_stream(stream).latent_shape
        fuzzlib.check_memory(peak[0], fuzzlib.memory_bound(len(stream), max(model.n, model.m), lat_h, lat_w,
                                                           len(data)), "decoding with a fuzzed model")


# --- the structure-aware mutator ------------------------------------------------------

DTYPES = {"U8": "u1", "I16": "<i2", "I32": "<i4", "I64": "<i8", "F16": "<f2", "F32": "<f4"}
INTERESTING = {
    "U8": [0, 1, 8, 9, 15, 16, 30, 31, 32, 46, 47, 48, 255],
    "I16": [0, 1, -1, 2, -2, 127, -128, 255, 256, 32767, -32768, -32767],
    "I32": [0, 1, -1, 2, 16, 4095, 4096, 32767, 32768, -32768, -32769, 65535, 65536, 65537, 1 << 24,
            (1 << 24) + 1, (1 << 30), 2**31 - 1, -(2**31)],
    "I64": [0, 1, -1, 2, 1 << 30, (1 << 47) - 1, 1 << 47, -(1 << 47), (1 << 53) - 1, 1 << 53, 2**63 - 1, -(2**63)],
}


def split(data: bytes) -> tuple | None:
    """(metadata or None, [[name, dtype, shape, raw bytes]]) of a container, read leniently; None if its
    header is not a JSON object of well-formed entries."""
    if len(data) < 8:
        return None
    n = int.from_bytes(data[:8], "little")
    if n > len(data) - 8:
        return None
    try:
        header = json.loads(data[8 : 8 + n].decode("utf-8"))
    except (ValueError, RecursionError):
        return None
    if not isinstance(header, dict):
        return None
    metadata = header.pop("__metadata__", None)
    body, tensors = data[8 + n :], []
    for name, entry in header.items():
        try:
            begin, end = entry["data_offsets"]
            tensors.append([name, entry["dtype"], list(entry["shape"]), body[begin:end]])
        except (KeyError, TypeError, ValueError):
            return None
    return metadata, tensors


def join(metadata, tensors: list, rng=None) -> bytes:
    """A container of ``tensors`` laid out in order, offsets and header length computed."""
    header, body, pos = {}, bytearray(), 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [pos, pos + len(raw)]}
        body += raw
        pos += len(raw)
    compact = rng is None or rng.random() < 0.8
    text = json.dumps(header, separators=(",", ":") if compact else (", ", ": "),
                      ensure_ascii=bool(rng is None or rng.random() < 0.95)).encode("utf-8", "surrogatepass")
    return struct.pack("<Q", len(text)) + text + bytes(body)


def _array(dtype: str, shape: list, raw: bytes):
    if dtype not in DTYPES or not isinstance(shape, list) or len(raw) % np.dtype(DTYPES[dtype]).itemsize:
        return None
    a = np.frombuffer(raw, DTYPES[dtype])
    return a.copy() if a.size == int(np.prod(shape, dtype=np.int64)) else None


def _pick(tensors: list, rng, suffix: str = ""):
    pool = [t for t in tensors if t[0].endswith(suffix) and not t[0].startswith("encoder.")] or tensors
    return pool[int(rng.integers(len(pool)))] if pool else None


def mutate_element(tensors, rng) -> None:
    t = _pick(tensors, rng)
    a = None if t is None else _array(t[1], t[2], t[3])
    if a is None or a.size == 0:
        return
    i = int(rng.integers(a.size))
    if t[1] in INTERESTING and rng.random() < 0.6:
        a[i] = np.array(int(rng.choice(INTERESTING[t[1]]))).astype(a.dtype, casting="unsafe")
    elif t[1] in ("F16", "F32"):
        a[i] = rng.choice([0.0, -0.0, np.inf, -np.inf, np.nan, 1e30, -1.0])
    else:
        a[i] = (a[i].astype(np.int64) + int(rng.choice([-1, 1, -2, 2, 100]))).astype(a.dtype)
    t[3] = a.tobytes()


def mutate_cdf(tensors, rng) -> None:
    """A row of a CDF table rebuilt (valid, random length), or its length or one entry bent."""
    t = _pick(tensors, rng, ".cdf")
    if t is None or t[1] != "I32" or len(t[2]) != 2:
        return mutate_element(tensors, rng)
    cdf = _array("I32", t[2], t[3])
    rows, width = t[2]
    if cdf is None or rows == 0 or width < 2:
        return None
    cdf = cdf.reshape(rows, width)
    lengths_t = next((u for u in tensors if u[0] == t[0] + "_length"), None)
    lengths = None if lengths_t is None else _array(lengths_t[1], lengths_t[2], lengths_t[3])
    r = int(rng.integers(rows))
    length = int(rng.integers(2, width + 1))
    if rng.random() < 0.7:  # valid: a random strictly increasing row from 0 to 2^16
        inner: list = sorted(rng.choice(np.arange(1, 1 << 16), size=length - 2, replace=False).tolist())
        cdf[r] = 0
        cdf[r, :length] = [0, *inner, 1 << 16]
        if lengths is not None and lengths.size == rows:
            lengths[r] = length
            lengths_t[3] = lengths.astype("<i4").tobytes()  # type: ignore[index]
    else:
        cdf[r, int(rng.integers(width))] += int(rng.choice([-1, 1, 1 << 16]))
    t[3] = cdf.astype("<i4").tobytes()
    return None


def mutate_layout(tensors, rng) -> None:
    """A tensor's dtype or shape changed (its data re-laid), or a tensor dropped, renamed or duplicated."""
    t = _pick(tensors, rng)
    if t is None:
        return
    choice = int(rng.integers(6))
    if choice == 0:  # another dtype, the values converted
        a = _array(t[1], t[2], t[3])
        new = str(rng.choice([*DTYPES, "F64", "BOOL"]))
        if a is not None and new in DTYPES:
            t[1], t[3] = new, a.astype(DTYPES[new], casting="unsafe").tobytes()
        else:
            t[1] = new
    elif choice == 1:  # one dimension changed, the data cut or padded with zeros
        if t[2] and t[1] in DTYPES:
            d = int(rng.integers(len(t[2])))
            t[2][d] = max(0, t[2][d] + int(rng.choice([-1, 1, 2])))
            size = int(np.prod(t[2], dtype=np.int64)) * np.dtype(DTYPES[t[1]]).itemsize
            t[3] = t[3][:size].ljust(size, b"\0")
    elif choice == 2:
        t[2] = [*t[2], 1] if rng.random() < 0.5 else t[2][1:]  # same data, a dimension more or less
    elif choice == 3:
        tensors.remove(t)
    elif choice == 4:
        tensors.append([t[0] + str(rng.choice(["x", ".extra", "_"])), t[1], list(t[2]), t[3]])
    else:
        tensors.append([str(rng.choice(["encoder.extra", "quality.y_gain", "quality.z_gain", "entropy.y.mean_shift"])),
                        t[1], list(t[2]), t[3]])


def add_gains(tensors, metadata, rng) -> None:
    """quality.y_gain (and z_gain) of L random levels, as an edition-4 model has them."""
    if not isinstance(metadata, dict):
        return
    try:
        n, m = int(metadata["N"]), int(metadata["M"])
    except (KeyError, ValueError, TypeError):
        return
    levels = int(rng.integers(1, 5))
    for name, c in (("quality.y_gain", m), ("quality.z_gain", n)):
        tensors[:] = [t for t in tensors if t[0] != name]
        gains = rng.integers(1, 1 << int(rng.choice([17, 20, 25])), size=(levels, c)).astype("<i4")
        tensors.append([name, "I32", [levels, c], gains.tobytes()])


def mutate_metadata(metadata, rng):
    if not isinstance(metadata, dict):
        return {"format": "refcodec", "format_version": "1"}
    key = str(rng.choice(["N", "M", "architecture", "format", "format_version", "name", "extra"]))
    value = rng.choice(["0", "1", "2", "3", "4", "7", "64", "512", "513", "01", " 2", "２", "joint", "factorized",
                        "hyperprior", "mean-scale", "refcodec", "2", ""])
    if rng.random() < 0.1:
        metadata.pop(key, None)
    elif rng.random() < 0.05:
        metadata[key] = int(rng.integers(5))  # not a string
    else:
        metadata[key] = str(value)
    return metadata


def custom_mutator(data: bytes, max_size: int, seed: int) -> bytes:
    try:
        return structured_mutation(data, max_size, seed)
    except Exception:  # a container too odd for the mutator's lenient reading: plain bytes then
        return fuzzlib.byte_mutate(data, max_size)


def structured_mutation(data: bytes, max_size: int, seed: int) -> bytes:
    rng = fuzzlib.rng_for(data, seed)
    parsed = split(data)
    roll = rng.random()
    if parsed is None or roll < 0.05:
        return fuzzlib.byte_mutate(data, max_size)
    if roll < 0.08:  # the header text itself, its length fixed up
        n = int.from_bytes(data[:8], "little")
        text = fuzzlib.byte_mutate(data[8 : 8 + n], max(1, max_size - len(data) + n))
        return struct.pack("<Q", len(text)) + text + data[8 + n :]
    metadata, tensors = parsed
    for _ in range(1 + int(rng.random() < 0.3)):
        choice = int(rng.integers(20))
        if choice < 10:
            mutate_element(tensors, rng)
        elif choice < 15:
            mutate_cdf(tensors, rng)
        elif choice < 17:
            mutate_layout(tensors, rng)
        elif choice < 19:
            add_gains(tensors, metadata, rng)
        else:
            metadata = mutate_metadata(metadata, rng)
    if rng.random() < 0.2:
        tensors = [tensors[i] for i in rng.permutation(len(tensors))]
    out = join(metadata, tensors, rng)
    return out if len(out) <= max_size else fuzzlib.byte_mutate(data, max_size)


if __name__ == "__main__":
    fuzzlib.main(test_one_input, custom_mutator, seeds="models")
    sys.exit(0)
