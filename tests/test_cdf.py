"""CDF tables (spec §4, Annex A.2): load-time checks, spec agreement, quantisation."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_rans import annex_namespace, random_table

from refcodec.decoder.cdf import MAX_CDF_LENGTH, CdfTable, cdf_table_check
from refcodec.decoder.errors import ModelError
from refcodec.encoder.cdf import build_table, quantize_pmf


def spec_check(spec, cdf, cdf_length, offset):
    """None if the spec's CdfTableCheck accepts, else (error class, clause)."""
    try:
        spec["CdfTableCheck"](cdf.tolist(), cdf_length.tolist(), offset.tolist())
    except spec["ConformanceError"] as e:
        return e.error_class, e.clause
    return None


def ref_check(cdf, cdf_length, offset):
    try:
        cdf_table_check(cdf, cdf_length, offset, "t")
    except ModelError as e:
        return "ModelError", e.clause
    return None


def valid():
    t = random_table(np.random.default_rng(0), 3, min_length=3, max_length=12)
    return t.cdf.copy(), t.cdf_length.copy(), t.offset.copy()


def test_valid_table_accepted(spec):
    cdf, cdf_length, offset = valid()
    table = cdf_table_check(cdf, cdf_length, offset, "t")
    assert isinstance(table, CdfTable) and table.rows == 3
    assert spec_check(spec, cdf, cdf_length, offset) is None
    one = np.array([[0, 1 << 16]], np.int32), np.array([2], np.int32), np.array([32767], np.int32)
    assert ref_check(*one) is None and spec_check(spec, *one) is None


def _set(a, index, v):
    a = a.copy()
    a[index] = v
    return a


INVALID = {  # name: mutation of a valid (cdf, cdf_length, offset)
    "no rows": lambda c, n, o: (c[:0], n[:0], o[:0]),
    "rows disagree": lambda c, n, o: (c, n[:2], o),
    "too long": lambda c, n, o: (np.pad(c, ((0, 0), (0, MAX_CDF_LENGTH + 1 - c.shape[1]))), n, o),
    "length 1": lambda c, n, o: (c, _set(n, 1, 1), o),
    "length > MaxLength": lambda c, n, o: (c, _set(n, 2, c.shape[1] + 1), o),
    "first not 0": lambda c, n, o: (_set(c, (1, 0), 1), n, o),
    "not increasing": lambda c, n, o: (_set(c, (0, 2), c[0, 1]), n, o),
    "last not 2^16": lambda c, n, o: (_set(c, (1, n[1] - 1), 65535), n, o),
    "last above 2^16": lambda c, n, o: (_set(c, (2, n[2] - 1), 65537), n, o),
    "padding": lambda c, n, o: (_set(np.pad(c, ((0, 0), (0, 1))), (0, c.shape[1]), 5), n, o),
    "offset low": lambda c, n, o: (c, n, _set(o, 1, -32769)),
    "offset high": lambda c, n, o: (c, n, _set(o, 2, 32768)),
}


@pytest.mark.parametrize("kind", INVALID)
def test_invalid_table_rejected(spec, kind):
    cdf, cdf_length, offset = INVALID[kind](*valid())
    assert ref_check(cdf, cdf_length, offset) is not None, kind
    assert spec_check(spec, cdf, cdf_length, offset) == ref_check(cdf, cdf_length, offset)


def test_wrong_dtype_or_rank_rejected():
    cdf, cdf_length, offset = valid()
    for bad in ((cdf.astype(np.int64), cdf_length, offset), (cdf, cdf_length.astype(np.uint32), offset),
                (cdf.tolist(), cdf_length, offset), (cdf[0], cdf_length, offset),
                (cdf, cdf_length[:, None], offset)):
        with pytest.raises(ModelError, match=r"§4\.1"):
            cdf_table_check(*bad, "t")


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), row=st.integers(0, 2), col=st.integers(0, 12),
       value=st.sampled_from([-1, 0, 1, 2, 65535, 65536, 65537, 1 << 30]),
       field=st.sampled_from(["cdf", "length", "offset"]))
def test_spec_check_agrees_on_mutations(spec, seed, row, col, value, field):
    t = random_table(np.random.default_rng(seed), 3, max_length=12)
    cdf, cdf_length, offset = t.cdf.copy(), t.cdf_length.copy(), t.offset.copy()
    if field == "cdf":
        cdf[row, min(col, cdf.shape[1] - 1)] = value
    elif field == "length":
        cdf_length[row] = min(col, value)
    else:
        offset[row] += value
    assert spec_check(spec, cdf, cdf_length, offset) == ref_check(cdf, cdf_length, offset)


pmfs = st.lists(st.one_of(st.just(0.0), st.floats(0, 1), st.floats(0, 1e-6)), min_size=0, max_size=300)
tails = st.one_of(st.just(0.0), st.floats(1e-12, 1e-6), st.floats(0, 1))


@settings(max_examples=200, deadline=None)
@given(pmf=pmfs, tail=tails)
def test_quantize_pmf_gives_valid_rows(spec, pmf, tail):
    p = np.asarray(pmf, dtype=np.float64)
    if np.floor((np.append(p, tail)) * 65536 + 0.5).sum() == 0:
        with pytest.raises(ValueError):
            quantize_pmf(p, tail)
        return
    row = quantize_pmf(p, tail)
    assert row.dtype == np.int32 and row.size == p.size + 2
    table = (row[None, :], np.array([row.size], np.int32), np.array([0], np.int32))
    assert ref_check(*table) is None and spec_check(spec, *table) is None
    assert row.tolist() == annex_namespace()["QuantizeCdf"](np.append(p, tail).tolist())


def test_quantize_pmf_examples():
    assert quantize_pmf(np.array([0.5, 0.0, 0.5]), 1e-9).tolist() == [0, 32766, 32767, 65535, 65536]
    assert quantize_pmf(np.zeros(0), 1.0).tolist() == [0, 65536]
    for bad in ([0.5, -0.1], [np.nan], [0.0] * (MAX_CDF_LENGTH - 1)):
        with pytest.raises(ValueError):
            quantize_pmf(np.array(bad), 0.5)
    with pytest.raises(ValueError):
        quantize_pmf(np.zeros(3), 0.0)


def test_build_table_pads_rows():
    pmfs = [np.array([0.25, 0.75]), np.array([1.0]), np.ones(5) / 5]
    table = build_table(pmfs, [1e-3, 0.5, 0.0], [-1, 0, 3])
    assert table.cdf.shape == (3, 7) and table.cdf_length.tolist() == [4, 3, 7]
    assert table.cdf[1, 3:].tolist() == [0] * 4 and table.offset.tolist() == [-1, 0, 3]
    assert table.cdf.dtype == table.cdf_length.dtype == table.offset.dtype == np.int32
