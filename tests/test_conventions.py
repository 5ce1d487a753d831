"""Spec §2: the integer helpers, exact values and NumPy vs spec pseudocode."""

import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from refcodec.decoder.conventions import clip3, isqrt, round2


def test_round2_examples(spec):
    for x, n, expected in [(5, 1, 3), (-5, 1, -2), (-6, 2, -1), (-7, 2, -2), (7, 0, 7), (-7, 0, -7), (1, 1, 1)]:
        assert spec["Round2"](x, n) == expected
        assert round2(np.int64(x), n) == expected


def test_clip3_argument_order(spec):
    assert spec["Clip3"](0, 255, 300) == 255 and spec["Clip3"](0, 255, -1) == 0 and spec["Clip3"](0, 255, 7) == 7
    assert clip3(0, 255, np.array([300, -1, 7])).tolist() == [255, 0, 7]


@given(st.lists(st.integers(-(1 << 50), 1 << 50), min_size=1, max_size=50), st.integers(0, 47))
def test_round2_matches_spec(xs, n):
    from conftest import spec_namespace

    ns = spec_namespace()
    assert round2(np.array(xs, dtype=np.int64), n).tolist() == [ns["Round2"](x, n) for x in xs]


@given(st.lists(st.integers(0, (1 << 53) - 1), min_size=1, max_size=50))
def test_isqrt_exact(ts):
    from conftest import spec_namespace

    ns = spec_namespace()
    got = isqrt(np.array(ts, dtype=np.int64)).tolist()
    assert got == [math.isqrt(t) for t in ts] == [ns["Isqrt"](t) for t in ts]


def test_isqrt_edges():
    ts = [0, 1, 2, 3, 4, 15, 16, 17, (1 << 52) - 1, 1 << 52, (1 << 53) - 1]
    ts += [k * k for k in (94906265, 67108864)] + [k * k - 1 for k in (94906265, 67108864)]
    assert isqrt(np.array(ts, dtype=np.int64)).tolist() == [math.isqrt(t) for t in ts]
