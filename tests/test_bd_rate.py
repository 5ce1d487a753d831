"""The Bjøntegaard BD-rate of benchmarks/rd_kodak.py (PCHIP of log-rate over PSNR) on synthetic curves.

benchmarks/ is not a package: the script is loaded from its path. No Kodak, no codec is needed.
"""

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "rd_kodak.py"


@pytest.fixture(scope="module")
def rd():
    spec = importlib.util.spec_from_file_location("rd_kodak", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while it runs
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


BPP = [0.12, 0.25, 0.5, 1.0, 2.0]
PSNR = [26.0, 28.5, 31.5, 35.0, 39.0]


def curve(bpp, psnr):
    return [{"bpp": b, "psnr": p} for b, p in zip(bpp, psnr, strict=True)]


@pytest.mark.parametrize("use_scipy", [True, False])
def test_scaled_rates(rd, use_scipy):
    """The same curve at 0.8 times the rate needs 20 % less rate; at 1.25 times, 25 % more."""
    fewer = rd.bd_rate(BPP, PSNR, [0.8 * b for b in BPP], PSNR, use_scipy=use_scipy)
    more = rd.bd_rate(BPP, PSNR, [1.25 * b for b in BPP], PSNR, use_scipy=use_scipy)
    assert fewer == pytest.approx(-20.0, abs=1e-9)
    assert more == pytest.approx(25.0, abs=1e-9)


@pytest.mark.parametrize("use_scipy", [True, False])
def test_identical_curves(rd, use_scipy):
    assert rd.bd_rate(BPP, PSNR, BPP, PSNR, use_scipy=use_scipy) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("use_scipy", [True, False])
def test_no_overlap(rd, use_scipy):
    """Disjoint PSNR ranges, and ranges that only touch, have no BD-rate."""
    assert rd.bd_rate(BPP, PSNR, BPP, [p + 20.0 for p in PSNR], use_scipy=use_scipy) is None
    assert rd.bd_rate(BPP, PSNR, BPP, [p + 13.0 for p in PSNR], use_scipy=use_scipy) is None  # 39 = 26 + 13


def test_order_and_overlap_only(rd):
    """Points in any order give the same value; only the shared PSNR range counts: a test curve at half the
    rate of a straight-line anchor, measured at other PSNRs and only over 32.5..38.5 dB, gives -50 %."""
    order = [3, 0, 4, 2, 1]
    assert rd.bd_rate([BPP[i] for i in order], [PSNR[i] for i in order], [0.8 * b for b in BPP], PSNR) \
        == pytest.approx(-20.0, abs=1e-9)
    # A straight line log10(bpp) = a + b * PSNR: PCHIP reproduces it exactly, so the shift is exact.
    psnr = np.array([26.0, 29.0, 32.0, 35.0, 38.0])
    line = 10 ** (-2.0 + 0.06 * psnr)
    upper = np.array([32.5, 35.5, 38.5, 37.0])  # unsorted, not the anchor's PSNRs
    assert rd.bd_rate(line, psnr, 0.5 * 10 ** (-2.0 + 0.06 * upper), upper) == pytest.approx(-50.0, abs=1e-9)


def test_known_value_of_a_shifted_line(rd):
    """Two straight lines in (PSNR, log10 bpp) 0.1 apart: BD-rate = 10^0.1 - 1 exactly."""
    psnr = np.array([30.0, 32.0, 34.0, 36.0])
    anchor = 10 ** (0.05 * psnr - 1.8)
    test = 10 ** (0.05 * psnr - 1.7)
    assert rd.bd_rate(anchor, psnr, test, psnr) == pytest.approx((10**0.1 - 1) * 100, abs=1e-9)
    assert rd.bd_rate(test, psnr, anchor, psnr) == pytest.approx((10**-0.1 - 1) * 100, abs=1e-9)


def test_numpy_pchip_matches_scipy(rd):
    """The NumPy fallback is scipy's PchipInterpolator: values and integrals on a curve with a flat part, a
    turn and uneven spacing, and the BD-rate of two realistic curves."""
    interpolate = pytest.importorskip("scipy.interpolate")
    x = np.array([25.0, 26.5, 27.0, 29.0, 33.0, 34.0, 38.5])
    y = np.array([-0.9, -0.7, -0.7, -0.4, 0.1, 0.05, 0.4])
    ours, theirs = rd.Pchip(x, y), interpolate.PchipInterpolator(x, y)
    grid = np.linspace(25.0, 38.5, 55)
    np.testing.assert_allclose(ours(grid), theirs(grid), rtol=0, atol=1e-12)
    for a, b in [(25.0, 38.5), (25.3, 26.9), (27.5, 36.0), (33.0, 34.0)]:
        assert ours.integrate(a, b) == pytest.approx(float(theirs.integrate(a, b)), abs=1e-12)
    test_psnr = [27.2, 29.9, 32.8, 35.1, 37.7, 39.9]
    test_bpp = [0.15, 0.3, 0.55, 0.9, 1.4, 2.1]
    with_scipy = rd.bd_rate(BPP, PSNR, test_bpp, test_psnr, use_scipy=True)
    assert rd.bd_rate(BPP, PSNR, test_bpp, test_psnr, use_scipy=False) == pytest.approx(with_scipy, abs=1e-9)
    assert math.isfinite(with_scipy)


def test_too_few_points(rd):
    with pytest.raises(ValueError, match="at least 4 points"):
        rd.bd_rate(BPP, PSNR, [0.5], [31.0])
    with pytest.raises(ValueError, match="same PSNR"):
        rd.bd_rate(BPP, PSNR, [0.1, 0.2, 0.3, 0.4], [30.0, 31.0, 31.0, 32.0])


def test_table_entries(rd):
    """The table's cells: a value, n/a for a single-rate curve (with the reason) and for no overlap."""
    anchor = curve(BPP, PSNR)
    assert rd.bd_rate_entry(curve([0.8 * b for b in BPP], PSNR), anchor)["text"] == "-20.0 %"
    single = rd.bd_rate_entry(curve([0.5], [31.0]), anchor)
    assert single["bd_rate_percent"] is None and single["text"] == "n/a (row single-rate: 1 point < 4)"
    assert rd.bd_rate_entry(anchor, curve([0.5], [31.0]))["text"] == "n/a (column single-rate: 1 point < 4)"
    apart = rd.bd_rate_entry(curve(BPP, [p + 20 for p in PSNR]), anchor)
    assert apart == {"bd_rate_percent": None, "psnr_range": None, "text": "n/a (no overlap)"}


def test_rate_at_psnr(rd):
    """Read off a curve by the same interpolation: exact at a point, None outside or for a single rate."""
    assert rd.rate_at_psnr(curve(BPP, PSNR), 31.5) == pytest.approx(0.5, rel=1e-12)
    assert rd.rate_at_psnr(curve(BPP, PSNR), 40.0) is None
    assert rd.rate_at_psnr(curve([0.5], [31.0]), 31.0) is None
