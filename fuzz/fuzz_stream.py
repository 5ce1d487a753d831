"""Fuzz harness (a): stream decoding, the reference decoder against the fast path.

Every input is a stream (spec §7) decoded by ``decode_stream(impl="reference")`` and
``decode_stream(impl="fast")`` with the small test models of vectors/models/ (the shipped photo
models are hidden: they cost seconds per input). Both must give the same pixels, or both the same
error class and clause (spec §2.6), and a stream both decode has the same intermediate stages
(spec §9.4) in both; the peak memory of the input must stay under
``fuzzlib.memory_bound`` of its validated sizes. A picture above ``MAX_PIXELS`` is only parsed
(its decoding is the same code, slower).

The custom mutator knows the syntax of spec §7.1: it parses the fields leniently, mutates one
(a header field, the model identity -- often swapped for another small model's --, or a sub-stream
through libFuzzer's own mutation or word-level edits) and writes the stream back with its length
fields fixed up; now and then it mutates the raw bytes, lengths included.

    python fuzz/fuzz_stream.py -dict=fuzz/refcodec.dict CORPUS_DIR [libFuzzer flags]
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

import fuzzlib

with fuzzlib.instrumented(__name__ == "__main__"):
    import refcodec  # noqa: F401 -- registers impl="fast"
    from refcodec.decoder.bitstream import MAGIC, latent_size, parse_stream
    from refcodec.decoder.conventions import sha256
    from refcodec.decoder.decoding import decode_stream
    from refcodec.decoder.errors import RefcodecError
    from refcodec.decoder.model import model_from_bytes

MAX_PIXELS = 256 * 256
MODEL_FILES: list[Path] = []
MODELS: dict[bytes, tuple[Path, int, str]] = {}  # identity -> (path, size, architecture or "" if invalid)
ARCH_CODES = {"factorized": 0, "hyperprior": 1, "mean-scale": 2, "joint": 3}


def setup() -> None:
    """The small models, once per process; the shipped ones hidden."""
    if MODEL_FILES:
        return
    fuzzlib.hide_shipped_models()
    MODEL_FILES.extend(fuzzlib.small_model_files())
    for path in MODEL_FILES:
        data = path.read_bytes()
        try:
            arch = model_from_bytes(data).architecture
        except RefcodecError:
            arch = ""
        MODELS[sha256(data)] = (path, len(data), arch)


def bound_for(data: bytes) -> int:
    """fuzzlib.memory_bound for this stream: from its validated header and the model it names."""
    lat_h = lat_w = channels = model_bytes = 0
    try:
        header = parse_stream(data)
    except RefcodecError:
        return fuzzlib.memory_bound(len(data))
    lat_h, lat_w = latent_size(header.height, header.width)
    if header.model_id in MODELS:
        path, model_bytes, arch = MODELS[header.model_id]
        if arch:
            model = model_from_bytes(path.read_bytes())
            channels = max(model.n, model.m)
    return fuzzlib.memory_bound(len(data), channels, lat_h, lat_w, model_bytes)


def model_files(data: bytes) -> list[Path]:
    """The small model the stream names, if there is one: the one file of MODEL_FILES that decode_stream
    would pick (spec §6.5, selection by identity), without it checking the identity of every other one."""
    entry = MODELS.get(bytes(data[7:39] if len(data) > 4 and data[4] == 2 else data[6:38]))
    return [entry[0]] if entry else []


def decode(data: bytes, impl: str) -> tuple:
    """("ok", pixel bytes, shape) or ("error", class, clause)."""
    result = fuzzlib.outcome(lambda: decode_stream(data, model_files(data), impl))
    if result[0] == "ok":
        return ("ok", result[1].tobytes(), result[1].shape)
    return result


def too_large(data: bytes) -> bool:
    try:
        header = parse_stream(data)
    except RefcodecError:
        return False
    return header.width * header.height > MAX_PIXELS


def test_one_input(data: bytes) -> None:
    setup()
    data = bytes(data)
    if too_large(data):
        return
    with fuzzlib.traced_peak(data) as peak:  # the reference decoder's: the fast path's has Numba's compiler in it
        reference = decode(data, "reference")
    fast = decode(data, "fast")
    if reference != fast:
        raise fuzzlib.Finding(f"decoders disagree: reference {summary(reference)}, fast {summary(fast)}")
    if reference[0] == "ok":
        fuzzlib.compare_stages(data, model_files(data))
    if peak[0]:
        fuzzlib.check_memory(peak[0], bound_for(data), "stream")


def summary(result: tuple) -> str:
    if result[0] == "ok":
        return f"pixels {result[2]} sha256 {sha256(result[1]).hex()[:16]}"
    return f"{result[1]} (spec §{result[2]})"


# --- the structure-aware mutator ------------------------------------------------------


def split(data: bytes) -> dict | None:
    """The fields of spec §7.1, read leniently (None if the fixed part is missing): lengths are not
    kept, they are written back from the sub-streams by :func:`join`."""
    if len(data) < 42 or data[:4] != MAGIC:
        return None
    version, arch = data[4], data[5]
    pos = 7 if version == 2 else 6
    if len(data) < pos + 36:
        return None
    fields = {"version": version, "arch": arch, "quality": data[6] if version == 2 else None,
              "model_id": data[pos : pos + 32], "width": int.from_bytes(data[pos + 32 : pos + 34], "little"),
              "height": int.from_bytes(data[pos + 34 : pos + 36], "little"), "z": None, "y": b""}
    pos += 36
    if arch != 0:
        n = int.from_bytes(data[pos : pos + 4], "little")
        fields["z"] = data[pos + 4 : pos + 4 + n]
        pos += 4 + n
    n = int.from_bytes(data[pos : pos + 4], "little")
    fields["y"] = data[pos + 4 : pos + 4 + n]
    return fields


def join(f: dict) -> bytes:
    """A stream from :func:`split`'s fields, each length field the length of its sub-stream."""
    out = bytearray(MAGIC) + bytes([f["version"] & 255, f["arch"] & 255])
    if f["version"] == 2:
        out.append((f["quality"] or 0) & 255)
    out += bytes(f["model_id"][:32]).ljust(32, b"\0") + struct.pack("<HH", f["width"] & 0xFFFF, f["height"] & 0xFFFF)
    if f["arch"] != 0:
        out += struct.pack("<I", len(f["z"] or b"")) + (f["z"] or b"")
    out += struct.pack("<I", len(f["y"])) + f["y"]
    return bytes(out)


def mutate_sub_stream(s: bytes, rng, max_size: int) -> bytes:
    """A sub-stream mutated: libFuzzer's mutation, or an edit of whole 32-bit words (length kept a multiple of 4)."""
    choice = int(rng.integers(6))
    if choice <= 1 or len(s) < 4:
        return fuzzlib.byte_mutate(s, max_size)
    words = bytearray(s[: len(s) // 4 * 4])
    k = 4 * int(rng.integers(len(words) // 4))
    if choice == 2:  # one word set to an interesting value
        words[k : k + 4] = struct.pack("<I", int(rng.choice(fuzzlib.INTERESTING_32)))
    elif choice == 3:  # a word dropped or duplicated
        words[k : k + 4] = b"" if rng.random() < 0.5 else words[k : k + 4] * 2
    elif choice == 4:  # one bit of one word
        words[k + int(rng.integers(4))] ^= 1 << int(rng.integers(8))
    else:  # cut after a word, or a word appended
        words = words[:k] if rng.random() < 0.5 else words + bytes(rng.integers(0, 256, 4, dtype="u1"))
    return bytes(words)


def custom_mutator(data: bytes, max_size: int, seed: int) -> bytes:
    try:
        return structured_mutation(data, max_size, seed)
    except Exception:  # the mutator's own bug must not stop a campaign: plain bytes then
        return fuzzlib.byte_mutate(data, max_size)


def structured_mutation(data: bytes, max_size: int, seed: int) -> bytes:
    rng = fuzzlib.rng_for(data, seed)
    f = split(data)
    if f is None or rng.random() < 0.1:
        return fuzzlib.byte_mutate(data, max_size)
    choice = int(rng.integers(10))
    if choice == 0:
        f["version"] = int(rng.choice([1, 2, 0, 3, 255]))
        if f["version"] == 2 and f["quality"] is None:
            f["quality"] = int(rng.integers(0, 4))
    elif choice == 1:
        f["arch"] = int(rng.choice([0, 1, 2, 3, 4, 255]))
        if f["arch"] != 0 and f["z"] is None:
            f["z"] = b""
    elif choice == 2:
        f["quality"] = int(rng.choice([0, 1, 2, 7, 63, 64, 255]))
    elif choice == 3:  # another small model, mostly of the stream's architecture
        same = [k for k, (_, _, a) in MODELS.items() if ARCH_CODES.get(a) == f["arch"]]
        pool = same if same and rng.random() < 0.8 else list(MODELS)
        if pool:
            f["model_id"] = pool[int(rng.integers(len(pool)))]
    elif choice == 4:
        key = "width" if rng.random() < 0.5 else "height"
        f[key] = int(rng.choice(fuzzlib.INTERESTING_16)) if rng.random() < 0.3 else \
            max(0, f[key] + int(rng.integers(-17, 18)))
    elif choice <= 6 and f["z"] is not None:
        f["z"] = mutate_sub_stream(f["z"], rng, max_size)
    else:
        f["y"] = mutate_sub_stream(f["y"], rng, max_size)
    out = join(f)
    return out if len(out) <= max_size else fuzzlib.byte_mutate(data, max_size)


if __name__ == "__main__":
    fuzzlib.main(test_one_input, custom_mutator, setup, seeds="stream")
    sys.exit(0)
