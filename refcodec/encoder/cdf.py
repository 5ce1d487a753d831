"""Building CDF tables from probabilities (informative, Annex A.2); the result is checked as spec §4 requires."""

from __future__ import annotations

import numpy as np

from refcodec.decoder.cdf import MAX_CDF_LENGTH, PRECISION, CdfTable, cdf_table_check


def quantize_pmf(pmf: np.ndarray, tail_mass: float) -> np.ndarray:
    """Quantised CDF (length len(pmf) + 2) of ``pmf`` followed by the tail mass as escape bin (Annex A.2)."""
    p = np.append(np.asarray(pmf, dtype=np.float64), float(tail_mass))
    if not (np.isfinite(p).all() and (p >= 0).all()):
        raise ValueError("pmf and tail mass must be finite and non-negative")
    if p.size + 1 > MAX_CDF_LENGTH:
        raise ValueError(f"pmf of {p.size - 1} values gives a row longer than {MAX_CDF_LENGTH}")
    freq = np.floor(p * (1 << PRECISION) + 0.5).astype(np.int64)  # round half away from zero
    total = int(freq.sum())
    if total == 0:
        raise ValueError("pmf rounds to zero everywhere")
    freq = (freq << PRECISION) // total  # rescale: sum <= 2^16
    cdf = np.concatenate(([0], np.cumsum(freq)))
    cdf[-1] = 1 << PRECISION
    for i in range(p.size):  # give every empty bin 1, taken from the smallest frequency above 1
        if cdf[i] == cdf[i + 1]:
            f = np.diff(cdf)
            j = int(np.argmin(np.where(f > 1, f, np.iinfo(np.int64).max)))
            if j < i:
                cdf[j + 1:i + 1] -= 1
            else:
                cdf[i + 1:j + 1] += 1
    return cdf.astype(np.int32)


def build_table(pmfs: list, tails: list, offsets: list) -> CdfTable:
    """Table with one row per pmf, rows padded with zeros (Annex A.2); checked as a decoder would."""
    rows = [quantize_pmf(p, t) for p, t in zip(pmfs, tails, strict=True)]
    cdf = np.zeros((len(rows), max((r.size for r in rows), default=2)), np.int32)
    for r, row in enumerate(rows):
        cdf[r, :row.size] = row
    cdf_length = np.array([r.size for r in rows], np.int32)
    return cdf_table_check(cdf, cdf_length, np.asarray(offsets, np.int32), "being built")
