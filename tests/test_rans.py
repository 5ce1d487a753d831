"""rANS coder (spec §3, Annex A.2): reference, fast path, spec pseudocode and annex agree.

Every stream is checked three ways (refcodec.decoder.rans, refcodec.fast.rans, the spec's own
RansInit/RansDecodeValue/RansExit): same values, or the same error class and clause.
"""

import math
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refcodec.decoder import rans
from refcodec.decoder.errors import StreamError
from refcodec.encoder import rans as rans_encoder
from refcodec.encoder.cdf import build_table
from refcodec.fast import rans as fast_rans

ANNEX = Path(__file__).resolve().parent.parent / "spec" / "A2-entropy-encoding.md"
EMPTY = (1 << 31).to_bytes(8, "little")


def annex_namespace() -> dict:
    """The ```text functions of Annex A.2, executed (they are valid Python)."""
    ns = {"RANS_L": 1 << 31, "floor": math.floor}
    for code in re.findall(r"^```text\n(.*?)^```", ANNEX.read_text(encoding="utf-8"), re.S | re.M):
        if code.startswith("def "):
            exec(code, ns)
    return ns


def random_table(rng, rows, min_length=2, max_length=300):
    """Rows of cdf_length min_length .. max_length from random pmfs (with zeros), tails, offsets."""
    pmfs, tails = [], []
    for _ in range(rows):
        n = int(rng.integers(min_length - 2, max_length - 1))  # pmf length: cdf_length = n + 2
        p = rng.dirichlet(np.full(n, rng.choice([0.05, 1.0, 20.0]))) if n else np.zeros(0)
        p[rng.random(n) < 0.1] = 0.0
        pmfs.append(p)
        tails.append(1.0 if p.sum() < 0.5 else float(rng.choice([1e-9, 1e-4, 0.05])))
    extreme = rng.random(rows) < 0.2
    offsets = np.where(extreme, rng.integers(-32768, 32768, rows), rng.integers(-100, 10, rows))
    return build_table(pmfs, tails, offsets)


def random_values(rng, table, count, raw_limit=1 << 32, escapes=0.2):
    """Values for random rows: mostly direct symbols, else escapes of 0 .. 8 raw nibbles (raw < raw_limit)."""
    idx = rng.integers(0, table.rows, count)
    max_value = table.cdf_length[idx].astype(np.int64) - 2
    direct = rng.integers(0, np.maximum(max_value, 1))
    nibbles = rng.integers(0, 9, count)
    raw = np.array([int(rng.integers(0, min(16 ** int(n), raw_limit))) for n in nibbles], dtype=np.int64)
    escaped = np.where(raw & 1, -(raw >> 1) - 1, (raw >> 1) + max_value)
    v = np.where((rng.random(count) < escapes) | (max_value == 0), escaped, direct)
    return v + table.offset[idx], idx


def spec_decode(spec, data, indexes, table):
    state = spec["RansInit"](data)
    cdf, length, offset = table.cdf.tolist(), table.cdf_length.tolist(), table.offset.tolist()
    values = [spec["RansDecodeValue"](state, cdf[r], length[r], offset[r]) for r in list(indexes)]
    spec["RansExit"](state)
    return values


def outcomes(spec, data, indexes, table):
    """(reference, fast, spec) outcomes: ("ok", values) or (error class, clause)."""
    result = []
    for decode in (rans.decode_values, fast_rans.decode_values, lambda *a: spec_decode(spec, *a)):
        try:
            result.append(("ok", [int(v) for v in decode(data, indexes, table)]))
        except StreamError as e:
            result.append(("StreamError", e.clause))
        except spec["ConformanceError"] as e:
            result.append((e.error_class, e.clause))
    return result


def assert_error(spec, data, indexes, table, clause):
    assert outcomes(spec, data, indexes, table) == [("StreamError", clause)] * 3


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), rows=st.integers(1, 4), count=st.integers(0, 80))
def test_round_trip(spec, seed, rows, count):
    rng = np.random.default_rng(seed)
    table = random_table(rng, rows)
    values, idx = random_values(rng, table, count)
    data = rans_encoder.encode_values(values, idx, table)
    assert fast_rans.encode_values(values, idx, table) == data
    assert len(data) % 4 == 0 and len(data) >= 8
    assert outcomes(spec, data, idx, table) == [("ok", values.tolist())] * 3


def test_empty_and_single(spec):
    table = random_table(np.random.default_rng(0), 2)
    for encode in (rans_encoder.encode_values, fast_rans.encode_values):
        assert encode([], [], table) == EMPTY
        for value in (table.offset[1], table.offset[1] - 7, 1 << 30):
            data = encode([value], [1], table)
            assert outcomes(spec, data, [1], table) == [("ok", [value])] * 3
    assert outcomes(spec, EMPTY, [], table) == [("ok", [])] * 3


def test_multi_chunk_bypass_extremes(spec):
    """Largest escapes: raw = 2^32 - 1 and 2^32 - 2 (8 nibbles) round-trip; one more does not encode."""
    table = random_table(np.random.default_rng(1), 1, min_length=10, max_length=10)
    lowest, highest = -(1 << 31) + int(table.offset[0]), (1 << 31) - 1 + 8 + int(table.offset[0])
    data = rans_encoder.encode_values([lowest, highest, 0], [0, 0, 0], table)
    assert fast_rans.encode_values([lowest, highest, 0], [0, 0, 0], table) == data
    assert outcomes(spec, data, [0, 0, 0], table) == [("ok", [lowest, highest, 0])] * 3
    for encode in (rans_encoder.encode_values, fast_rans.encode_values):
        for value in (lowest - 1, highest + 1, 1 << 62, -(1 << 62)):
            with pytest.raises(ValueError, match="more than 8 raw nibbles"):
                encode([0, value], [0, 0], table)


def test_every_truncation_is_an_error(spec):
    rng = np.random.default_rng(2)
    table = random_table(rng, 3)
    values, idx = random_values(rng, table, 40, escapes=0.3)
    data = rans_encoder.encode_values(values, idx, table)
    assert len(data) > 16
    for end in range(len(data)):
        clause = "3.2" if end % 4 or end < 8 else "3.3"
        assert_error(spec, data[:end], idx, table, clause)


def test_left_over_and_final_state(spec):
    rng = np.random.default_rng(3)
    table = random_table(rng, 2)
    values, idx = random_values(rng, table, 30)
    data = rans_encoder.encode_values(values, idx, table)
    assert_error(spec, data + bytes(4), idx, table, "3.6")  # bytes left over
    assert_error(spec, data, idx[:-1], table, "3.6")  # a value not decoded
    assert_error(spec, ((1 << 31) + 1).to_bytes(8, "little"), [], table, "3.6")  # wrong final state


def test_bad_length_and_initial_state(spec):
    table = random_table(np.random.default_rng(4), 1)
    for data in (b"", bytes(4), EMPTY + b"\0", EMPTY[:7]):
        assert_error(spec, data, [], table, "3.2")
    for x in (0, (1 << 31) - 1, 1 << 63, (1 << 64) - 1):
        assert_error(spec, x.to_bytes(8, "little"), [], table, "3.2")
    for encode in (rans_encoder.encode_values, fast_rans.encode_values):
        with pytest.raises(ValueError):
            encode([0, 1], [0], table)


def crafted_stream(puts):
    """Stream whose decoder reads the (start, f, bits) symbols ``puts`` in order (Annex A.2 encoder)."""
    ns = annex_namespace()
    enc = {"x": 1 << 31, "words": []}
    for start, f, bits in reversed(puts):
        ns["RansEncPut"](enc, start, f, bits)
    words = [enc["x"] & 0xFFFFFFFF, enc["x"] >> 32] + enc["words"][::-1]
    return b"".join(w.to_bytes(4, "little") for w in words)


@pytest.mark.parametrize("count", [8, 9, 15])
def test_bypass_nibble_limit(spec, count):
    table = random_table(np.random.default_rng(5), 1, min_length=3, max_length=3)
    cdf, escape = table.cdf[0].tolist(), 1
    puts = [(cdf[escape], cdf[escape + 1] - cdf[escape], 16), (count, 1, 4)] + [(15, 1, 4)] * count
    if count == 8:
        assert outcomes(spec, crafted_stream(puts), [0], table)[0][0] == "ok"
    else:
        assert_error(spec, crafted_stream(puts), [0], table, "3.5")


def test_error_names_the_sub_stream():
    table = random_table(np.random.default_rng(6), 1)
    for decode in (rans.decode_values, fast_rans.decode_values):
        with pytest.raises(StreamError, match=r"^z sub-stream ends before its last symbol \(spec §3.3\)$"):
            decode(EMPTY, [0, 0, 0], table, name="z")


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), op=st.sampled_from(["flip", "cut", "append", "random", "indexes"]))
def test_damaged_streams_agree(spec, seed, op):
    """Reference, fast path and spec agree on damaged streams: same values or same error."""
    rng = np.random.default_rng(seed)
    table = random_table(rng, 2, max_length=40)
    values, idx = random_values(rng, table, int(rng.integers(0, 30)))
    data = bytearray(rans_encoder.encode_values(values, idx, table))
    if op == "flip":
        data[int(rng.integers(len(data)))] ^= 1 << int(rng.integers(8))
    elif op == "cut":
        data = data[: int(rng.integers(0, len(data)))]
    elif op == "append":
        data += rng.bytes(4 * int(rng.integers(1, 3)))
    elif op == "random":
        data = bytearray(rng.bytes(4 * int(rng.integers(2, 12))))
    else:
        idx = rng.integers(0, table.rows, max(0, idx.size + int(rng.integers(-2, 3))))
    result = outcomes(spec, bytes(data), idx, table)
    assert result[0] == result[1] == result[2]


def test_annex_encoder_is_the_reference(spec):
    rng = np.random.default_rng(7)
    table = random_table(rng, 3)
    values, idx = random_values(rng, table, 200, escapes=0.3)
    ns = annex_namespace()
    data = ns["RansEncodeValues"](values.tolist(), idx.tolist(), table.cdf.tolist(),
                                  table.cdf_length.tolist(), table.offset.tolist())
    assert data == rans_encoder.encode_values(values, idx, table)
