"""Model files (spec §6): safetensors container, tensor inventory, load-time bounds.

A model file is read in full, hashed (its SHA-256 is the model's identity,
spec §6.5), parsed with every offset checked before use (spec §6.1), and its
tensors are checked against the inventory of spec §6.3 and the bounds of
spec §6.4. Nothing is allocated from an unchecked size field.
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from refcodec.decoder.bitstream import MAX_CHANNELS  # spec §6.2
from refcodec.decoder.cdf import MAX_CDF_LENGTH, CdfTable, cdf_table_check
from refcodec.decoder.conventions import clause, read_at_most, read_le, sha256
from refcodec.decoder.errors import ModelError
from refcodec.decoder.json_text import parse_json
from refcodec.decoder.layers import CONTEXT_TAPS, DEFAULT_LEAKY_SLOPE, Layer

MAX_HEADER_BYTES = 1 << 20  # spec §6.1
MAX_MODEL_BYTES = 1 << 28  # spec §6.1
ACC_BOUND = (1 << 47) - 1  # spec §6.4
NORM_BOUND = (1 << 53) - 1  # spec §6.4
MAX_SHIFT = 47  # spec §6.4
ACT_ABS_MAX = 1 << 15  # largest |activation| (spec §5.1)

# safetensors dtype name -> little-endian NumPy dtype (spec §6.1)
DTYPES: dict[str, np.dtype] = {
    "U8": np.dtype("u1"),
    "I16": np.dtype("<i2"),
    "I32": np.dtype("<i4"),
    "I64": np.dtype("<i8"),
    "F16": np.dtype("<f2"),
    "F32": np.dtype("<f4"),
}
ARCHITECTURES = {"factorized": 0, "hyperprior": 1, "mean-scale": 2, "joint": 3}  # spec §6.2 -> stream code §7.2
MAX_SCALE_LEVELS = 256  # spec §6.3: rows of the y table of the hyperprior architectures
MAX_MEAN_SHIFT = 8  # spec §6.3: largest entropy.y.mean_shift
MAX_QUALITY_LEVELS = 64  # spec §6.3: rows of quality.y_gain
MAX_GAIN = 1 << 24  # spec §6.4: largest quality gain, in units of 2^-GAIN_SHIFT
MEAN_ARCHITECTURES = ("mean-scale", "joint")  # spec §6.3, §8.8: h_s predicts means; entropy.y.mean_shift allowed
ENCODER_PREFIX = "encoder."


@dataclass(frozen=True)
class Model:
    """A checked model: identity, shape parameters, layers, entropy tables (spec §6.3).

    ``synthesis`` (g_s), ``hyper_synthesis`` (h_s), ``context`` and
    ``entropy_parameters`` are lists of layers (refcodec.decoder.layers); those an
    architecture does not have are empty, as are ``z_table`` (None) and
    ``scale_bound`` of the factorized architecture. ``mean_shift`` F: a latent is
    v * 2^F + mean (spec §8.8), or v * 2^F + y_median[c] for factorized (§8.3);
    ``z_shift`` and ``z_median`` the same for the hyper-latents (edition 5). The layers
    carry the model's leaky slope (§5.6).
    """

    model_id: bytes
    name: str
    architecture: str
    n: int
    m: int
    synthesis: list
    y_table: CdfTable
    hyper_synthesis: list
    context: list
    entropy_parameters: list
    z_table: CdfTable | None
    scale_bound: np.ndarray
    mean_shift: int
    y_median: np.ndarray  # (M,) offsets of ŷ's channels (spec §8.3): zeros unless a factorized model has them
    z_shift: int  # Fz of ẑ (spec §8.3)
    z_median: Any  # (N,) offsets of ẑ's channels; None for factorized
    y_gain: Any  # quality.y_gain [L, M] (spec §6.3, §8.11), None without quality levels
    z_gain: Any  # quality.z_gain [L, N], None also for factorized
    encoder: dict = field(repr=False)  # float tensors for the (informative) encoder
    metadata: dict = field(repr=False)

    @property
    def levels(self) -> int:
        """L, the number of quality levels (spec §6.3); 0 for a model without them."""
        return 0 if self.y_gain is None else self.y_gain.shape[0]

    @property
    def code(self) -> int:
        """The architecture's stream code (spec §7.2)."""
        return ARCHITECTURES[self.architecture]


def _fail(what: str, clause: str):
    raise ModelError(what, clause)


@clause("6.1")
def product(shape) -> int:
    """Product (spec §6.1): the number of elements of a tensor of ``shape``."""
    p = 1
    for s in shape:
        p *= s
    return p


@clause("6.1")
def is_int(v) -> bool:
    """IsInt (spec §6.1): an integer of the header, never true or false."""
    return type(v) is int


@clause("6.1")
def parse_container(data: bytes) -> tuple[dict, dict]:
    """ParseContainer (spec §6.1): split a safetensors file into (metadata, name -> tensor), every field checked."""
    if len(data) > MAX_MODEL_BYTES:
        _fail(f"model file is {len(data)} bytes, more than {MAX_MODEL_BYTES}", "6.1")
    if len(data) < 8:
        _fail("model file is shorter than its 8-byte header length", "6.1")
    header_len = read_le(data, 0, 8)
    if not 2 <= header_len <= MAX_HEADER_BYTES or 8 + header_len > len(data):
        _fail(f"model header length {header_len} is out of range", "6.1")
    header = parse_json(data[8 : 8 + header_len])
    if not isinstance(header, dict):
        _fail("model header is not a JSON object", "6.1")
    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        _fail("model __metadata__ is not a map of strings", "6.1")
    start, length = 8 + header_len, len(data) - 8 - header_len
    spans, tensors = [], {}
    for name, entry in header.items():
        if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
            _fail(f"tensor entry {name!r} is malformed", "6.1")
        dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if not isinstance(dtype, str) or dtype not in DTYPES:
            _fail(f"tensor {name!r} has unsupported dtype {dtype!r}", "6.1")
        if not isinstance(shape, list) or len(shape) > 4 or not all(is_int(s) and 0 <= s <= MAX_MODEL_BYTES
                                                                     for s in shape):
            _fail(f"tensor {name!r} has an invalid shape", "6.1")
        if not isinstance(offsets, list) or len(offsets) != 2 or not all(is_int(o) for o in offsets):
            _fail(f"tensor {name!r} has invalid data_offsets", "6.1")
        begin, end = offsets
        if not 0 <= begin <= end <= length or end - begin != product(shape) * DTYPES[dtype].itemsize:
            _fail(f"tensor {name!r} data_offsets do not match its shape or the file", "6.1")
        spans.append((begin, end))
        tensors[name] = tensor_values(data, dtype, shape, start + begin)
    position = 0
    for begin, end in sorted(spans):
        if begin != position:
            _fail("tensor data overlaps or leaves gaps", "6.1")
        position = end
    if position != length:
        _fail("bytes after the last tensor's data", "6.1")
    return metadata, tensors


@clause("6.1")
def tensor_values(data: bytes, dtype: str, shape: list, start: int) -> np.ndarray:
    """TensorValues (spec §6.1): the little-endian elements of a tensor at byte ``start``, row-major, as an
    array of ``shape`` (a read-only view of ``data``)."""
    return np.frombuffer(data, dtype=DTYPES[dtype], count=product(shape), offset=start).reshape(shape)


@clause("6.3")
def get_tensor(tensors: dict, name: str, dtype: str, shape: tuple) -> np.ndarray:
    """GetTensor (spec §6.3): a required tensor, its dtype and shape checked."""
    if name not in tensors:
        _fail(f"model has no tensor {name!r}", "6.3")
    t = tensors[name]
    if t.dtype != DTYPES[dtype] or t.shape != shape:
        _fail(f"tensor {name!r} must be {dtype} {list(shape)}, is {t.dtype} {list(t.shape)}", "6.3")
    return t


@clause("6.3")
def channel_count(metadata: dict, key: str) -> int:
    """ChannelCount (spec §6.2): N or M, 1 .. MAX_CHANNELS in ASCII digits without a leading zero."""
    value = metadata.get(key, "")
    if not (1 <= len(value) <= 3 and value.isascii() and value.isdigit() and value[0] != "0"
            and int(value) <= MAX_CHANNELS):
        _fail(f"metadata {key!r} must be an integer 1..{MAX_CHANNELS} written without leading zeros", "6.2")
    return int(value)


@clause("6.3")
def layer_plan(arch: str, n: int, m: int) -> dict:
    """group -> [(kind, Cin, Cout, K, activation)] of an architecture, in order (spec §6.3)."""
    plan = {"synthesis": [("deconv", m, n, 5, "none"), ("igdn", n, n, 0, ""), ("deconv", n, n, 5, "none"),
                          ("igdn", n, n, 0, ""), ("deconv", n, n, 5, "none"), ("igdn", n, n, 0, ""),
                          ("deconv", n, 3, 5, "pixels")]}
    m3, e1, e2 = 3 * m // 2, 10 * m // 3, 8 * m // 3
    if arch == "hyperprior":
        plan["hyper_synthesis"] = [("deconv", n, n, 5, "relu"), ("deconv", n, n, 5, "relu"),
                                   ("conv", n, m, 3, "relu")]
    elif arch in MEAN_ARCHITECTURES:
        plan["hyper_synthesis"] = [("deconv", n, m, 5, "leaky"), ("deconv", m, m3, 5, "leaky"),
                                   ("conv", m3, 2 * m, 3, "none")]
    if arch == "joint":
        plan["context"] = [("conv", m, 2 * m, 5, "none")]
        plan["entropy_parameters"] = [("conv", 4 * m, e1, 1, "leaky"), ("conv", e1, e2, 1, "leaky"),
                                      ("conv", e2, 2 * m, 1, "none")]
    return plan


@clause("6.3")
def load_gains(tensors: dict, arch: str, n: int, m: int) -> tuple:
    """LoadGains (spec §6.3): (quality.y_gain, quality.z_gain) of a model with quality levels, checked (§6.4);
    (None, None) without. Both or neither, z only for the architectures with a hyperprior, the same L rows."""
    if "quality.y_gain" not in tensors and "quality.z_gain" not in tensors:
        return None, None
    if "quality.y_gain" not in tensors:
        _fail("quality.z_gain without quality.y_gain", "6.3")
    y = tensors["quality.y_gain"]
    if y.ndim != 2:
        _fail(f"tensor 'quality.y_gain' must be I32 [L, {m}]", "6.3")
    levels = y.shape[0]
    if not 1 <= levels <= MAX_QUALITY_LEVELS:
        _fail(f"quality.y_gain has {levels} rows (quality levels), outside 1..{MAX_QUALITY_LEVELS}", "6.3")
    y_gain = get_tensor(tensors, "quality.y_gain", "I32", (levels, m))
    z_gain = None if arch == "factorized" else get_tensor(tensors, "quality.z_gain", "I32", (levels, n))
    check_gains(y_gain, z_gain)
    return y_gain, z_gain


@clause("6.4")
def check_gains(y_gain: np.ndarray, z_gain: np.ndarray | None) -> None:
    """CheckGains (spec §6.4): every quality gain lies in 1 .. MAX_GAIN."""
    for name, gain in (("quality.y_gain", y_gain), ("quality.z_gain", z_gain)):
        if gain is not None and (np.any(gain < 1) or np.any(gain > MAX_GAIN)):
            _fail(f"{name} has a gain outside 1..{MAX_GAIN}", "6.4")


@clause("6.4")
def check_layer_bounds(layer: Layer, name: str) -> None:
    """CheckLayerBounds (spec §6.4). Convolutions: |bias| + 2^15 * sum|weight| <= 2^47 - 1 per output
    channel; IGDN: gamma >= 0, beta >= 1, beta + 2^30 * sum_j gamma <= 2^53 - 1; shifts at most 47."""
    if np.any(layer.shift > MAX_SHIFT):
        _fail(f"{name}.shift exceeds {MAX_SHIFT}", "6.4")
    if layer.kind == "igdn":
        gamma, beta = layer.gamma, layer.beta
        if np.any(gamma < 0) or np.any(beta < 1) or np.any(beta > NORM_BOUND):
            _fail(f"{name} needs gamma >= 0 and beta >= 1", "6.4")
        if np.any(gamma.astype(np.int64).sum(axis=1) > (NORM_BOUND - beta) >> 30):  # no int64 overflow
            _fail(f"{name} can overflow its 53-bit norm", "6.4")
        return
    bias = layer.bias
    w = np.abs(layer.weight.astype(np.int64)).sum(axis=(0, 2, 3) if layer.kind == "deconv" else (1, 2, 3))
    if np.any(bias < -ACC_BOUND) or np.any(bias > ACC_BOUND) or np.any(np.abs(bias) + ACT_ABS_MAX * w > ACC_BOUND):
        _fail(f"{name} can overflow its 48-bit accumulator", "6.4")


@clause("6.4")
def check_context_mask(layer: Layer) -> None:
    """CheckContextMask (spec §6.4, §5.8): the context convolution's taps at and after the centre are 0."""
    allowed = np.zeros((5, 5), bool)
    for ky, kx in CONTEXT_TAPS:
        allowed[ky, kx] = True
    if np.any(layer.weight[:, :, ~allowed]):
        _fail("context.0.weight has a non-zero tap at or after the centre (mask type A)", "6.4")


@clause("6.4")
def check_scale_bound(scale_bound: np.ndarray) -> None:
    """CheckScaleBound (spec §6.4): entropy.y.scale_bound is strictly increasing."""
    if np.any(np.diff(scale_bound.astype(np.int64)) <= 0):
        _fail("entropy.y.scale_bound is not strictly increasing", "6.4")


@clause("6.3")
def load_layer(tensors: dict, name: str, kind: str, cin: int, cout: int, k: int, activation: str,
               slope: int) -> Layer:
    """LoadLayer (spec §6.3): one layer, its tensors checked against the bounds of spec §6.4."""
    shift = get_tensor(tensors, f"{name}.shift", "U8", (cout,))
    if kind == "igdn":
        layer = Layer(kind, shift, gamma=get_tensor(tensors, f"{name}.gamma", "I32", (cout, cin)),
                      beta=get_tensor(tensors, f"{name}.beta", "I64", (cout,)))
    else:
        shape = (cin, cout, k, k) if kind == "deconv" else (cout, cin, k, k)
        layer = Layer(kind, shift, activation, get_tensor(tensors, f"{name}.weight", "I16", shape),
                      get_tensor(tensors, f"{name}.bias", "I64", (cout,)), slope=slope)
    check_layer_bounds(layer, name)
    return layer


@clause("6.3")
def load_optional(tensors: dict, name: str, dtype: str, shape: tuple, default: np.ndarray,
                  used: set) -> np.ndarray:
    """LoadOptional (spec §6.3): the tensor ``name`` if the model has it (checked like any), else ``default``."""
    if name not in tensors:
        return default
    used.add(name)
    return get_tensor(tensors, name, dtype, shape)


def load_shift(tensors: dict, name: str, used: set) -> int:
    """An optional mean shift (entropy.y.mean_shift, entropy.z.mean_shift): 0 .. MAX_MEAN_SHIFT (spec §6.4)."""
    shift = int(load_optional(tensors, name, "U8", (1,), np.zeros(1, np.uint8), used)[0])
    if shift > MAX_MEAN_SHIFT:
        _fail(f"{name} is {shift}, more than {MAX_MEAN_SHIFT}", "6.4")
    return shift


@clause("6.3")
def load_table(tensors: dict, name: str, rows: int | None) -> CdfTable:
    """LoadTable (spec §6.3): the CDF table ``name`` (spec §4.1) with ``rows`` rows (None: 1 ..
    MAX_SCALE_LEVELS), checked (§4.2)."""
    cdf = tensors.get(f"{name}.cdf")
    shape = cdf.shape if cdf is not None and cdf.ndim == 2 else (0, 0)
    if cdf is not None and not 2 <= shape[1] <= MAX_CDF_LENGTH:  # before reading any row (spec §4.2)
        _fail(f"{name}.cdf rows have {shape[1]} entries, outside 2..{MAX_CDF_LENGTH}", "4.2")
    if rows is None:
        rows = shape[0]
        if cdf is not None and not 1 <= rows <= MAX_SCALE_LEVELS:
            _fail(f"{name}.cdf has {rows} rows, outside 1..{MAX_SCALE_LEVELS}", "6.3")
    return cdf_table_check(get_tensor(tensors, f"{name}.cdf", "I32", (rows, shape[1])),
                           get_tensor(tensors, f"{name}.cdf_length", "I32", (rows,)),
                           get_tensor(tensors, f"{name}.offset", "I32", (rows,)), name)


@clause("6.3")
def load_model(data: bytes) -> Model:
    """LoadModel (spec §6.3): parse and check a model file (spec §6); raises ModelError naming the clause."""
    model_id = sha256(data)
    metadata, tensors = parse_container(data)
    if metadata.get("format") != "refcodec" or metadata.get("format_version") != "1":
        _fail("not a refcodec model file (format/format_version metadata)", "6.2")
    arch = metadata.get("architecture")
    if arch not in ARCHITECTURES:
        _fail(f"unknown architecture {arch!r}", "6.2")
    n, m = channel_count(metadata, "N"), channel_count(metadata, "M")
    used: set = set()
    slope = DEFAULT_LEAKY_SLOPE
    if arch in MEAN_ARCHITECTURES:
        slope = int(load_optional(tensors, "leaky_slope", "I16", (1,), np.array([slope]), used)[0])
        if slope < 1:
            _fail(f"leaky_slope is {slope}, below 1", "6.4")
    groups = {group: [load_layer(tensors, f"{group}.{k}", *spec, slope) for k, spec in enumerate(plan)]
              for group, plan in layer_plan(arch, n, m).items()}
    if "context" in groups:
        check_context_mask(groups["context"][0])
    known = {f"{g}.{k}.{p}" for g, ls in groups.items() for k, layer in enumerate(ls) for p in layer.tensors()}
    z_table, scale_bound, z_median, z_shift = None, np.zeros(0, np.int32), None, 0
    y_median = np.zeros(m, np.int16)
    if arch == "factorized":
        y_table = load_table(tensors, "entropy.y", m)
        y_median = load_optional(tensors, "entropy.y.median", "I16", (m,), y_median, used)
    else:
        z_table = load_table(tensors, "entropy.z", n)
        z_median = load_optional(tensors, "entropy.z.median", "I16", (n,), np.zeros(n, np.int16), used)
        z_shift = load_shift(tensors, "entropy.z.mean_shift", used)
        y_table = load_table(tensors, "entropy.y", None)
        scale_bound = get_tensor(tensors, "entropy.y.scale_bound", "I32", (y_table.rows - 1,))
        check_scale_bound(scale_bound)
        known |= {"entropy.y.scale_bound"} | {f"entropy.z.{p}" for p in ("cdf", "cdf_length", "offset")}
    mean_shift = 0 if arch == "hyperprior" else load_shift(tensors, "entropy.y.mean_shift", used)
    known |= used
    y_gain, z_gain = load_gains(tensors, arch, n, m)
    known |= {name for name, gain in (("quality.y_gain", y_gain), ("quality.z_gain", z_gain)) if gain is not None}
    known |= {f"entropy.y.{p}" for p in ("cdf", "cdf_length", "offset")}
    for name in tensors:
        if name not in known and not name.startswith(ENCODER_PREFIX):
            _fail(f"unexpected tensor {name!r}", "6.3")
    encoder = {k[len(ENCODER_PREFIX):]: v for k, v in tensors.items() if k.startswith(ENCODER_PREFIX)}
    return Model(model_id, metadata.get("name", ""), arch, n, m, groups["synthesis"], y_table,
                 groups.get("hyper_synthesis", []), groups.get("context", []), groups.get("entropy_parameters", []),
                 z_table, scale_bound, mean_shift, y_median, z_shift, z_median, y_gain, z_gain, encoder, metadata)


# ---------------------------------------------------------------------------
# Shipped models and lookup by identity (spec §6.5)

MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
DEFAULT_MODEL = "factorized"
KODAK_FIGURES = "kodak.json"  # model_id (hex) -> {"name", "bpp", "psnr"}, written by benchmarks/rd_kodak.py


def shipped_model_paths() -> dict:
    """name -> path of every model shipped in the package."""
    return {p.stem: p for p in sorted(MODELS_DIR.glob("*.safetensors"))}


def read_model_file(path) -> bytes:
    """Read a model file, never more than MAX_MODEL_BYTES + 1 bytes whatever its size claims (a FIFO,
    ``/dev/zero``): a longer file is a ModelError (spec §6.1) once that many bytes have been read."""
    path = Path(path)
    limit = MAX_MODEL_BYTES  # looked up at each call (tests lower it)
    try:
        with path.open("rb") as f:
            if os.fstat(f.fileno()).st_size > limit:  # a regular file that says so: refused before reading
                _fail(f"model file {path} is longer than {limit} bytes", "6.1")
            data = read_at_most(f, limit)
            if data is not None:
                return data
    except OSError as e:
        raise ModelError(f"cannot read model file {path}: {e.strerror}", "6.5") from None
    raise ModelError(f"model file {path} is longer than {limit} bytes", "6.1")


class Lru:
    """A bounded cache: the ``size`` most recently used values, dropping the least recently used."""

    def __init__(self, size: int):
        self.size = size
        self.items: OrderedDict = OrderedDict()

    def get(self, key, make: Callable):
        """The value of ``key``, made by ``make()`` if it is not held."""
        if key in self.items:
            self.items.move_to_end(key)
            return self.items[key]
        value = self.items[key] = make()
        if len(self.items) > self.size:
            self.items.popitem(last=False)
        return value


# model_id -> Model: a model's identity is its content, so an entry never goes stale; bounded, so that
# a process decoding with many model files stays flat in memory.
_loaded = Lru(8)


def model_from_bytes(data: bytes) -> Model:
    """The checked model of a model file's bytes, loaded once while it is among the recently used."""
    return _loaded.get(sha256(data), lambda: load_model(data))


def model_from_file(path) -> Model:
    return model_from_bytes(read_model_file(path))


def model_by_name(name: str) -> Model:
    paths = shipped_model_paths()
    if name not in paths:
        raise ModelError(f"no shipped model named {name!r} (have: {', '.join(paths) or 'none'})", "6.5")
    return model_from_file(paths[name])


def shipped_models() -> dict:
    """name -> Model of every shipped model."""
    return {name: model_from_file(path) for name, path in shipped_model_paths().items()}


def kodak_figures(model: Model) -> dict | None:
    """{"bpp", "psnr"}: the model's mean on the 24 Kodak images, as benchmarks/rd_kodak.py measured it
    and recorded in refcodec/models/kodak.json -- only if recorded for this very model (its identity)."""
    try:
        entry = json.loads((MODELS_DIR / KODAK_FIGURES).read_text(encoding="utf-8")).get(model.model_id.hex())
    except (OSError, ValueError):
        return None
    return entry if isinstance(entry, dict) and {"bpp", "psnr"} <= set(entry) else None


_identities = Lru(1024)  # (path, size, mtime) -> SHA-256 of the file, so that unchanged files are hashed once


def file_identity(path) -> bytes | None:
    """The identity of a model file (spec §6.5), computed once per unchanged file; None if it is unreadable."""
    try:
        st = Path(path).stat()
    except OSError:
        return None
    key = (str(Path(path).resolve()), st.st_size, st.st_mtime_ns)
    return _identities.get(key, lambda: sha256(read_model_file(path)))


def find_model(model_id: bytes, model_files=()) -> Model:
    """The model whose SHA-256 is ``model_id``: among ``model_files``, then the shipped ones (spec §6.5).

    Only the file whose (cached) identity matches is read, and its bytes are hashed again before use.
    """
    for path in list(model_files) + list(shipped_model_paths().values()):
        if file_identity(path) in (model_id, None):
            data = read_model_file(path)
            if sha256(data) == model_id:
                return model_from_bytes(data)
    raise ModelError(f"the stream needs model {model_id.hex()}, which is not available", "6.5")
