"""Hostile streams (spec §2.6, §3, §7, §8): every defect is a StreamError or ModelError, never a crash."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from refcodec import decode
from refcodec.decoder.bitstream import HEADER_BYTES, MAX_DIMENSION, parse_stream
from refcodec.decoder.errors import ModelError, RefcodecError, StreamError


def _decode(stream, model_path, impl="reference"):
    return decode(stream, [model_path], impl=impl)


def test_valid_stream_decodes(tiny_model, tiny_stream):
    path, _ = tiny_model
    out = _decode(tiny_stream, path)
    assert out.shape == (21, 37, 3) and out.dtype == np.uint8
    assert np.array_equal(out, _decode(tiny_stream, path, "fast"))


@pytest.mark.parametrize("impl", ["reference", "fast"])
def test_every_truncation_is_a_stream_error(tiny_model, tiny_stream, impl):
    path, _ = tiny_model
    for n in range(len(tiny_stream)):
        with pytest.raises(StreamError):
            _decode(tiny_stream[:n], path, impl)


def _patched(stream: bytes, pos: int, value: bytes) -> bytes:
    return stream[:pos] + value + stream[pos + len(value):]


@pytest.mark.parametrize("pos, value, clause", [
    (0, b"RIFF", "7.2"),  # wrong magic
    (4, b"\x03", "7.2"),  # unknown version
    (5, b"\x04", "7.2"),  # reserved architecture
    (5, b"\xff", "7.2"),  # reserved architecture
    (38, (0).to_bytes(2, "little"), "7.3"),  # width 0
    (40, (MAX_DIMENSION + 1).to_bytes(2, "little"), "7.3"),  # height above the limit (16385, edition 5)
    (38, (MAX_DIMENSION + 1).to_bytes(2, "little"), "7.3"),  # width above the limit
    (38, b"\xff\xff", "7.3"),  # absurd width
])
def test_header_defects(tiny_model, tiny_stream, pos, value, clause):
    path, _ = tiny_model
    with pytest.raises(StreamError) as e:
        _decode(_patched(tiny_stream, pos, value), path)
    assert e.value.clause == clause and f"§{clause}" in str(e.value)


def test_y_length_defects(tiny_model, tiny_stream):
    path, _ = tiny_model
    y_len = len(tiny_stream) - HEADER_BYTES
    with pytest.raises(StreamError, match="runs past the end"):
        _decode(_patched(tiny_stream, 42, (y_len + 4).to_bytes(4, "little")), path)
    with pytest.raises(StreamError, match="bytes follow"):
        _decode(tiny_stream + b"\0\0\0\0", path)
    with pytest.raises(StreamError, match="longer than any model's y latents can use") as e:  # before the model
        _decode(_patched(tiny_stream, 42, b"\xff\xff\xff\xff"), path)
    assert e.value.clause == "7.3"
    limit = 8 + 40 * 512 * 2 * 3  # 37x21: 2 x 3 latent positions of up to 512 channels (spec §7.3)
    with pytest.raises(StreamError, match="runs past the end"):
        _decode(_patched(tiny_stream, 42, limit.to_bytes(4, "little")), path)
    with pytest.raises(StreamError, match="longer than any model"):
        _decode(_patched(tiny_stream, 42, (limit + 1).to_bytes(4, "little")), path)


def test_unknown_model(tiny_model, tiny_stream):
    path, _ = tiny_model
    with pytest.raises(ModelError, match="not available") as e:
        _decode(_patched(tiny_stream, 6, bytes(32)), path)
    assert e.value.clause == "6.5"


def test_size_mismatch_is_caught_by_the_entropy_decoder(tiny_model, tiny_stream):
    """A larger picture needs more latents than the y sub-stream holds."""
    path, _ = tiny_model
    with pytest.raises(StreamError):
        _decode(_patched(tiny_stream, 38, (200).to_bytes(2, "little")), path)


def test_y_data_longer_than_the_latents_can_use(tiny_model):
    """More than 8 + 40 bytes per latent is rejected before decoding (spec §8.3)."""
    from refcodec.encoder.encode import write_stream

    path, model = tiny_model
    stream = write_stream(model.model_id, 0, 16, 16, bytes(8 + 40 * model.m + 4))
    with pytest.raises(StreamError) as e:
        _decode(stream, path)
    assert e.value.clause == "8.3"


def test_garbage_and_empty(tiny_model):
    path, _ = tiny_model
    for data in (b"", b"R", b"RCDC", bytes(1000), np.random.default_rng(0).bytes(5000)):
        with pytest.raises(StreamError):
            _decode(data, path)


def test_latent_out_of_range(tiny_model):
    """An escape can code values beyond the activation range; the decoder rejects them (spec §8.3)."""
    from refcodec.encoder.encode import encode_latents

    path, model = tiny_model
    y = np.zeros((model.m, 1, 1), dtype=np.int64)
    y[2, 0, 0] = 40000
    with pytest.raises(StreamError) as e:
        _decode(encode_latents(y, model, 16, 16, impl="reference"), path)
    assert e.value.clause == "8.3"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_mutated_streams_decode_or_raise_refcodec_errors(tiny_model, tiny_stream, data):
    """Random byte edits anywhere: the result is pixels or a RefcodecError; reference and fast agree."""
    path, _ = tiny_model
    stream = bytearray(tiny_stream)
    for _ in range(data.draw(st.integers(1, 4))):
        stream[data.draw(st.integers(HEADER_BYTES - 8, len(stream) - 1))] = data.draw(st.integers(0, 255))
    results = []
    for impl in ("reference", "fast"):
        try:
            results.append(_decode(bytes(stream), path, impl).tobytes())
        except RefcodecError as e:
            results.append(type(e))
    assert results[0] == results[1]


def test_model_without_encoder_cannot_encode(tiny_model):
    import refcodec

    path, _ = tiny_model
    with pytest.raises(ModelError, match="can decode but not encode"):
        refcodec.encode(np.zeros((8, 8, 3), np.uint8), model=path)


def test_parse_stream_fields(tiny_stream, tiny_model):
    _, model = tiny_model
    h = parse_stream(tiny_stream)
    assert (h.width, h.height, h.architecture, h.model_id) == (37, 21, 0, model.model_id)
    assert h.latent_shape == (2, 3)
