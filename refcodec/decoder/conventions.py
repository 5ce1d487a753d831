"""Conventions (spec §2): the exact integer helpers, vectorised over NumPy int64 arrays."""

import numpy as np


def round2(x: np.ndarray, n) -> np.ndarray:
    """Round2(x, n) of spec §2.4, element-wise: (x + 2^(n-1)) >> n, and x for n = 0.

    ``n`` may be an array broadcasting against ``x`` (per-channel shifts).
    ``(1 << n) >> 1`` is 2^(n-1) for n > 0 and 0 for n = 0, so one expression
    covers both cases. NumPy's ``>>`` on signed integers is arithmetic (floor).
    """
    n = np.asarray(n, dtype=np.int64)
    return (x + ((np.int64(1) << n) >> 1)) >> n


def clip3(lo: int, hi: int, x: np.ndarray) -> np.ndarray:
    """Clip3(lo, hi, x) of spec §2.4, element-wise."""
    return np.minimum(np.maximum(x, lo), hi)


def isqrt(t: np.ndarray) -> np.ndarray:
    """Isqrt(t) of spec §2.4, element-wise, for 0 <= t < 2^53 (int64).

    The digit-by-digit procedure of the spec, run on every element at once.
    Starting every element at bit = 2^52 instead of the largest power of four
    <= t changes nothing: while r = 0 and bit > t the step leaves r at 0.
    """
    t = np.array(t, dtype=np.int64)
    r = np.zeros_like(t)
    bit = np.int64(1) << 52
    while bit:
        take = t >= r + bit
        t = np.where(take, t - (r + bit), t)
        r = np.where(take, (r >> 1) + bit, r >> 1)
        bit >>= 2
    return r
