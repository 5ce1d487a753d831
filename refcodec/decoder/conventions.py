"""Conventions (spec §2): the exact integer helpers, vectorised over NumPy int64 arrays; byte order;
and ``clause``, the mark of every function that implements a procedure of the spec."""

from __future__ import annotations

import hashlib

import numpy as np


def clause(number: str):
    """Mark a function as the implementation of the spec procedure of the same name (in CamelCase:
    ``rans_decode_symbol`` is RansDecodeSymbol) defined in clause ``number``. tests/test_spec_names.py
    checks that every procedure of the spec has exactly one such function in refcodec.decoder."""

    def mark(fn):
        fn.spec_clause = number
        return fn

    return mark


@clause("2.4")
def round2(x: np.ndarray, n) -> np.ndarray:
    """Round2(x, n) of spec §2.4, element-wise: (x + 2^(n-1)) >> n, and x for n = 0.

    ``n`` (0 .. 63) may be an array broadcasting against ``x`` (per-channel shifts).
    The half, 2^(n-1), is shifted from 1 by n - 1 (2^63 itself would not fit int64);
    NumPy's ``>>`` on signed integers is arithmetic (floor).
    """
    n = np.asarray(n, dtype=np.int64)
    half = np.where(n > 0, np.int64(1) << np.maximum(n - 1, 0), np.int64(0))
    return (x + half) >> n


@clause("2.4")
def clip3(lo: int, hi: int, x: np.ndarray) -> np.ndarray:
    """Clip3(lo, hi, x) of spec §2.4, element-wise."""
    return np.minimum(np.maximum(x, lo), hi)


@clause("2.4")
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


@clause("2.4")
def sha256(data: bytes) -> bytes:
    """Sha256(data) of spec §2.4: the 32-byte SHA-256 digest (FIPS 180-4)."""
    return hashlib.sha256(data).digest()


@clause("2.5")
def read_le(data: bytes, pos: int, n: int) -> int:
    """ReadLE(data, pos, n) of spec §2.5: the unsigned little-endian integer in bytes pos .. pos + n - 1."""
    return int.from_bytes(data[pos : pos + n], "little")


READ_CHUNK = 1 << 20


def read_at_most(f, limit: int) -> bytes | None:
    """The bytes of binary file ``f`` if there are at most ``limit``, else None once ``limit + 1`` have been
    read: read in chunks, whatever size the file claims (a FIFO, ``/dev/zero``), so that no allocation is
    sized by anything unchecked (spec §2.6)."""
    data = bytearray()
    while len(data) <= limit:
        chunk = f.read(min(READ_CHUNK, limit + 1 - len(data)))
        if not chunk:
            return bytes(data)
        data += chunk
    return None
