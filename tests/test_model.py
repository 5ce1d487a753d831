"""Model files (spec §6): container rules, inventory, bounds; the spec's LoadModel agrees."""

import contextlib
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refcodec.conformance.models import random_model
from refcodec.decoder.errors import ModelError
from refcodec.decoder.model import load_model, model_by_name, parse_container
from refcodec.encoder.export import save_safetensors

GOOD = random_model(np.random.default_rng(3), 3, 2)
GOOD_JOINT = random_model(np.random.default_rng(4), 3, 2, architecture="joint", levels=4)


def _rebuild(mutate, base=GOOD):
    """Re-serialise ``base`` after ``mutate(tensors, metadata)`` edits its content."""
    meta, tensors = parse_container(base)
    tensors = {k: np.array(v) for k, v in tensors.items()}
    mutate(tensors, meta)
    return save_safetensors(tensors, meta)


def _header(data: bytes) -> dict:
    n = int.from_bytes(data[:8], "little")
    return json.loads(data[8 : 8 + n])


def _with_header(header: dict, buffer: bytes) -> bytes:
    text = json.dumps(header).encode()
    return len(text).to_bytes(8, "little") + text + buffer


def _buffer(data: bytes) -> bytes:
    return data[8 + int.from_bytes(data[:8], "little"):]


def test_good_model_loads(spec):
    m = load_model(GOOD)
    assert (m.n, m.m, m.architecture, len(m.synthesis)) == (3, 2, "factorized", 7)
    assert spec["LoadModel"](GOOD)["model_id"] == m.model_id


def test_shipped_model_loads():
    m = model_by_name("factorized")
    assert m.architecture == "factorized" and m.encoder and len(m.model_id) == 32


def _set(name, value):
    def mutate(t, meta):
        t[name] = value(t[name]) if callable(value) else value
    return mutate


def _meta(key, value):
    def mutate(t, meta):
        if value is None:
            meta.pop(key)
        else:
            meta[key] = value
    return mutate


BAD_CONTENT = {
    "wrong format": _meta("format", "other"),
    "wrong format_version": _meta("format_version", "2"),
    "unknown architecture": _meta("architecture", "joint-2"),
    "factorized tensors, joint architecture": _meta("architecture", "joint"),
    "missing N": _meta("N", None),
    "N not digits": _meta("N", "3.0"),
    "N too large": _meta("N", "513"),
    "N unicode digit": _meta("N", "\u00b3"),
    "N leading zero": _meta("N", "03"),
    "N thousands of digits": _meta("N", "0" * 5000 + "3"),
    "missing tensor": lambda t, m: t.pop("synthesis.3.beta"),
    "wrong dtype": _set("synthesis.0.bias", lambda v: v.astype(np.int32)),
    "wrong shape": _set("synthesis.1.gamma", lambda v: v[:, :1].copy()),
    "unexpected tensor": lambda t, m: t.update({"extra": np.zeros(1, np.uint8)}),
    "shift too large": _set("synthesis.2.shift", lambda v: np.full_like(v, 48)),
    "accumulator bound": _set("synthesis.0.bias", lambda v: np.full_like(v, 1 << 47)),
    "bias at int64 minimum": _set("synthesis.0.bias", lambda v: np.full_like(v, -(1 << 63))),
    "negative gamma": _set("synthesis.1.gamma", lambda v: -np.ones_like(v)),
    "beta zero": _set("synthesis.3.beta", lambda v: np.zeros_like(v)),
    "norm bound": _set("synthesis.5.gamma", lambda v: np.full_like(v, (1 << 31) - 1)),
    "cdf not increasing": _set("entropy.y.cdf", lambda v: np.where(np.arange(v.shape[1]) == 1, 0, v).astype(np.int32)),
    "cdf_length too long": _set("entropy.y.cdf_length", lambda v: v + 1000),
    "offset out of range": _set("entropy.y.offset", lambda v: np.full_like(v, 1 << 20)),
}


@pytest.mark.parametrize("name", sorted(BAD_CONTENT))
def test_bad_content_is_rejected(name, spec):
    data = _rebuild(BAD_CONTENT[name])
    with pytest.raises(ModelError) as e:
        load_model(data)
    with pytest.raises(spec["ConformanceError"]) as s:
        spec["LoadModel"](data)
    assert s.value.error_class == "ModelError"
    assert e.value.clause.split(".")[0] in ("4", "6")


BAD_HYPER = {
    "context tap at the centre": _set("context.0.weight", lambda v: np.where(
        (np.arange(5)[:, None] == 2) & (np.arange(5)[None, :] == 2), 1, v).astype(np.int16)),
    "context tap below": _set("context.0.weight",
                              lambda v: np.where(np.arange(5)[:, None] == 4, 1, v).astype(np.int16)),
    "scale_bound not increasing": _set("entropy.y.scale_bound", lambda v: v[::-1].copy()),
    "scale_bound repeated": _set("entropy.y.scale_bound", lambda v: np.full_like(v, 7)),
    "scale_bound wrong length": _set("entropy.y.scale_bound", lambda v: np.append(v, v[-1] + 1).astype(np.int32)),
    "missing scale_bound": lambda t, m: t.pop("entropy.y.scale_bound"),
    "missing z table": lambda t, m: t.pop("entropy.z.cdf"),
    "z table rows": _set("entropy.z.offset", lambda v: v[:2].copy()),
    "too many scale levels": lambda t, m: t.update({
        "entropy.y.cdf": np.tile(t["entropy.y.cdf"][:1], (257, 1)),
        "entropy.y.cdf_length": np.tile(t["entropy.y.cdf_length"][:1], 257),
        "entropy.y.offset": np.tile(t["entropy.y.offset"][:1], 257),
        "entropy.y.scale_bound": np.arange(256, dtype=np.int32)}),
    "missing entropy_parameters": lambda t, m: t.pop("entropy_parameters.1.weight"),
    "hyper_synthesis accumulator bound": _set("hyper_synthesis.2.bias", lambda v: np.full_like(v, 1 << 47)),
    "entropy_parameters shift": _set("entropy_parameters.0.shift", lambda v: np.full_like(v, 48)),
    "context weight layout": _set("context.0.weight", lambda v: np.ascontiguousarray(v.transpose(1, 0, 2, 3))),
    "hyper conv kernel size": _set("hyper_synthesis.2.weight", lambda v: np.zeros(v.shape[:2] + (5, 5), np.int16)),
    "joint tensors, mean-scale architecture": _meta("architecture", "mean-scale"),
    "mean_shift above 8": _set("entropy.y.mean_shift", np.array([9], np.uint8)),
    "mean_shift not U8": _set("entropy.y.mean_shift", np.array([4], np.int32)),
    "mean_shift not one value": _set("entropy.y.mean_shift", np.array([4, 4], np.uint8)),
}


def test_mean_shift(spec):
    """entropy.y.mean_shift (spec §6.3): absent means 0; 0..8 accepted for the architectures with means."""
    assert load_model(GOOD_JOINT).mean_shift == 0 and spec["LoadModel"](GOOD_JOINT)["mean_shift"] == 0
    for f in (0, 3, 8):
        data = _rebuild(_set("entropy.y.mean_shift", np.array([f], np.uint8)), GOOD_JOINT)
        assert load_model(data).mean_shift == f == spec["LoadModel"](data)["mean_shift"]


def test_mean_shift_only_with_means(spec):
    """A hyperprior model (it has no means) must not carry entropy.y.mean_shift (spec §6.3)."""
    base = random_model(np.random.default_rng(4), 3, 2, architecture="hyperprior", levels=4)
    data = _rebuild(_set("entropy.y.mean_shift", np.array([0], np.uint8)), base)
    with pytest.raises(ModelError) as e:
        load_model(data)
    assert e.value.clause == "6.3"
    with pytest.raises(spec["ConformanceError"]):
        spec["LoadModel"](data)


def test_good_joint_model_loads(spec):
    m = load_model(GOOD_JOINT)
    assert (m.architecture, m.code, len(m.hyper_synthesis), len(m.context), len(m.entropy_parameters)) == (
        "joint", 3, 3, 1, 3)
    assert m.y_table.rows == 4 and m.z_table.rows == 3 and m.scale_bound.shape == (3,)
    assert spec["LoadModel"](GOOD_JOINT)["architecture"] == 3


@pytest.mark.parametrize("name", sorted(BAD_HYPER))
def test_bad_hyperprior_content_is_rejected(name, spec):
    data = _rebuild(BAD_HYPER[name], GOOD_JOINT)
    with pytest.raises(ModelError) as e:
        load_model(data)
    with pytest.raises(spec["ConformanceError"]) as s:
        spec["LoadModel"](data)
    assert s.value.error_class == "ModelError"
    assert e.value.clause.split(".")[0] in ("4", "6")


def _bad_containers():
    h, buf = _header(GOOD), _buffer(GOOD)
    name = next(k for k in h if k != "__metadata__")
    first = min((k for k in h if k != "__metadata__"), key=lambda k: h[k]["data_offsets"][0])
    yield "empty", b""
    yield "short", GOOD[:7]
    yield "header length huge", (1 << 62).to_bytes(8, "little") + GOOD[8:]
    yield "header length past end", (len(GOOD)).to_bytes(8, "little") + GOOD[8:]
    yield "not json", (4).to_bytes(8, "little") + b"{{{{" + buf
    yield "not utf-8", (2).to_bytes(8, "little") + b"\xff\xfe" + buf
    yield "json array", _with_header([], buf)  # type: ignore[arg-type]
    yield "truncated buffer", GOOD[:-1]
    yield "trailing bytes", GOOD + b"\0"
    yield "dtype unknown", _with_header({**h, name: {**h[name], "dtype": "F64"}}, buf)
    yield "shape negative", _with_header({**h, name: {**h[name], "shape": [-1]}}, buf)
    yield "shape too many dims", _with_header({**h, name: {**h[name], "shape": [1, 1, 1, 1, 1]}}, buf)
    yield "offsets reversed", _with_header({**h, name: {**h[name], "data_offsets": h[name]["data_offsets"][::-1]}}, buf)
    overlap = {**h[first], "data_offsets": [1, 1 + h[first]["data_offsets"][1]]}
    yield "offsets overlap", _with_header({**h, first: overlap}, buf)
    yield "extra member", _with_header({**h, name: {**h[name], "x": 1}}, buf)
    yield "metadata not strings", _with_header({**h, "__metadata__": {"N": 3}}, buf)
    yield "dtype not a string", _with_header({**h, name: {**h[name], "dtype": ["F32"]}}, buf)
    yield "offsets not integers", _with_header({**h, name: {**h[name], "data_offsets": [0.0, 1.0]}}, buf)
    text = json.dumps(h)
    dup = text[:-1] + ', "__metadata__": {}}'
    yield "duplicate key", len(dup).to_bytes(8, "little") + dup.encode() + buf
    escaped = text[:-1] + ', "\\u005f_metadata__": {}}'  # the same name, escaped
    yield "duplicate key after unescaping", len(escaped).to_bytes(8, "little") + escaped.encode() + buf
    deep = "[" * 100_000 + "]" * 100_000
    yield "deeply nested", len(deep).to_bytes(8, "little") + deep.encode() + buf
    nan = text[:-1] + ', "x": NaN}'
    yield "NaN literal", len(nan).to_bytes(8, "little") + nan.encode() + buf


@pytest.mark.parametrize("name, data", list(_bad_containers()), ids=[n for n, _ in _bad_containers()])
def test_bad_container_is_rejected(name, data, spec):
    with pytest.raises(ModelError):
        load_model(data)
    with pytest.raises(spec["ConformanceError"]) as s:
        spec["LoadModel"](data)
    assert s.value.error_class == "ModelError"


@settings(max_examples=60, deadline=None)
@given(st.integers(0, len(GOOD) - 1), st.integers(0, 255))
def test_byte_edits_never_crash(pos, value):
    data = bytearray(GOOD)
    data[pos] = value
    with contextlib.suppress(ModelError):
        load_model(bytes(data))


def test_stress_model_is_valid():
    load_model(random_model(np.random.default_rng(4), 3, 2, stress=True))


def test_loaded_models_are_bounded_and_released(tmp_path):
    """Decoding with many model files keeps at most a few models loaded (an LRU), and an evicted model,
    with the kernel layouts the fast path packed into its layers, is freed: no cache outlives it."""
    import gc
    import weakref

    from refcodec import decode
    from refcodec.decoder import model as models
    from refcodec.encoder.encode import encode_latents

    first = None
    for i in range(3 * models._loaded.size):
        data = random_model(np.random.default_rng(100 + i), 2, 2, architecture="joint", levels=2)
        path = tmp_path / f"m{i}.safetensors"
        path.write_bytes(data)
        model = models.model_from_bytes(data)
        stream = encode_latents(np.zeros((2, 1, 2), np.int64), model, 20, 10, z_hat=np.zeros((2, 1, 1), np.int64))
        decode(stream, [path], impl="fast")
        assert model.context[0].packed  # the fast path's joint layout, kept in the layer
        first = first or weakref.ref(model)
        del model
    gc.collect()
    assert len(models._loaded.items) == models._loaded.size
    assert first() is None
