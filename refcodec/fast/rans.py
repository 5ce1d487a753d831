"""rANS coder, fast path: the reference of :mod:`refcodec.decoder.rans` as Numba kernels.

Same signatures, byte-identical streams, identical values and identical errors (class and
clause). Single-threaded by nature (rANS is sequential), so results never depend on the
thread count. The state x < 2^63 always fits int64, so the kernels use int64 throughout;
the encoder tests x >= f * 2^47 as (x >> 47) >= f, which cannot overflow. The symbol search
starts from a table of each row's symbols at every multiple of 2^LUT_SHIFT (``symbol_lut``:
LUT_SIZE + 1 entries a row, 33 KB for 64 rows, where the rows themselves may take 800 KB and
each step of a search over a whole row is a cache miss): the symbol of cf lies between the
entries of cf >> LUT_SHIFT and the next, and a branchless binary search finds it there
(usually none or one step).

Kernels return (code, where) instead of raising; the wrappers raise what the reference raises.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from refcodec.decoder.cdf import CdfTable
from refcodec.decoder.errors import StreamError
from refcodec.decoder.layers import ACT_MAX, ACT_MIN
from refcodec.decoder.rans import BYPASS_BITS, MAX_BYPASS_NIBBLES, PRECISION, RANS_L, check_indexes, rans_init

OK, ENDS_EARLY, TOO_MANY_NIBBLES, LEFT_OVER, BAD_FINAL_STATE, NEEDS_TOO_MANY_NIBBLES = range(6)
OUT_OF_RANGE = 100  # a decoded latent outside ACT_MIN..ACT_MAX (spec §8.3, §8.8)
MASK32 = (1 << 32) - 1
VALUE_LIMIT = 1 << 40  # |value| beyond this is certainly unencodable; keeps value - offset exact
LUT_SHIFT = 8  # symbol_lut: one entry per 2^8 values of cf
LUT_SIZE = 1 << (PRECISION - LUT_SHIFT)


@njit(cache=True, nogil=True)
def _renormalize(x, words, p):
    """spec §3.3: refill once if x < RANS_L; p = -1 when the stream ends early."""
    if x < RANS_L:
        if p == words.shape[0]:
            return x, -1
        return (x << 32) | np.int64(words[p]), p + 1
    return x, p


@njit(cache=True, nogil=True)
def symbol_lut(cdf, cdf_length):
    """lut[r, j] = the symbol s of row r whose interval [cdf[r, s], cdf[r, s + 1]) holds j * 2^LUT_SHIFT, for
    j < LUT_SIZE, and lut[r, LUT_SIZE] = the last symbol, cdf_length[r] - 2 (rows strictly increasing from 0
    to 2^16, spec §4.2)."""
    lut = np.empty((cdf.shape[0], LUT_SIZE + 1), np.int32)
    for r in range(cdf.shape[0]):
        s, last = 0, cdf_length[r] - 2
        for j in range(LUT_SIZE):
            while s < last and cdf[r, s + 1] <= j << LUT_SHIFT:
                s += 1
            lut[r, j] = s
        lut[r, LUT_SIZE] = last
    return lut


@njit(cache=True, nogil=True)
def decode_value(x, p, words, cdf, cdf_length, offset, lut, r):
    """RansDecodeValue (spec §3.3-§3.5) with row r: (code, x, p, value); code != OK on an error. ``lut``:
    symbol_lut of the table."""
    cf = x & 0xFFFF
    # spec §3.3: the symbol is the largest s <= cdf_length[r] - 2 with cdf[r, s] <= cf; it lies in lo .. lo + n - 1
    lo = lut[r, cf >> LUT_SHIFT]
    n = lut[r, (cf >> LUT_SHIFT) + 1] - lo + 1
    while n > 1:  # branchless
        half = n >> 1
        lo = lo + half if cdf[r, lo + half] <= cf else lo
        n -= half
    start = np.int64(cdf[r, lo])
    x, p = _renormalize((np.int64(cdf[r, lo + 1]) - start) * (x >> PRECISION) + cf - start, words, p)
    if p < 0:
        return ENDS_EARLY, x, p, np.int64(0)
    max_value = cdf_length[r] - 2
    if lo < max_value:
        return OK, x, p, np.int64(lo + offset[r])
    count = x & 15  # spec §3.4, §3.5: nibble count, then the raw nibbles
    x, p = _renormalize(x >> BYPASS_BITS, words, p)
    if p < 0:
        return ENDS_EARLY, x, p, np.int64(0)
    if count > MAX_BYPASS_NIBBLES:
        return TOO_MANY_NIBBLES, x, p, count
    raw = np.int64(0)
    for j in range(count):
        raw |= (x & 15) << (BYPASS_BITS * j)
        x, p = _renormalize(x >> BYPASS_BITS, words, p)
        if p < 0:
            return ENDS_EARLY, x, p, np.int64(0)
    return OK, x, p, (-(raw >> 1) - 1 if raw & 1 else (raw >> 1) + max_value) + offset[r]


@njit(cache=True, nogil=True)
def initial_state(words):
    """x from the first two words (spec §3.2, already checked); the next word is words[2]."""
    return np.int64(words[0]) | (np.int64(words[1]) << 32), 2


@njit(cache=True, nogil=True)
def exit_check(x, p, words):
    """RansExit (spec §3.6): (code, aux)."""
    if p != words.shape[0]:
        return LEFT_OVER, 4 * (words.shape[0] - p)
    if x != RANS_L:
        return BAD_FINAL_STATE, x
    return OK, 0


@njit(cache=True, nogil=True)
def _decode(words, indexes, cdf, cdf_length, offset, out):
    """Decode out[i] with row indexes[i]; words[0:2] is the checked initial state. (code, aux)."""
    x, p = initial_state(words)
    lut = symbol_lut(cdf, cdf_length)
    for i in range(indexes.shape[0]):
        code, x, p, value = decode_value(x, p, words, cdf, cdf_length, offset, lut, indexes[i])
        if code != OK:
            return code, (i if code == ENDS_EARLY else value)
        out[i] = value
    return exit_check(x, p, words)


@njit(cache=True, nogil=True)
def _decode_latents(words, x, p, rows, row, means, mean, mean_shift, cdf, cdf_length, offset, lut, out):
    """out[i] = the value decoded with row rows[i] (``row`` if rows is empty) times 2^mean_shift plus means[i]
    (``mean`` if means is empty), checked to lie in ACT_MIN .. ACT_MAX (spec §8.3, §8.8); the state (x, p)
    carried in and out: (code, aux, x, p). ``means`` may be ``out`` itself."""
    for i in range(out.shape[0]):
        r = rows[i] if rows.shape[0] else row
        code, x, p, value = decode_value(x, p, words, cdf, cdf_length, offset, lut, r)
        if code != OK:
            return code, (np.int64(i) if code == ENDS_EARLY else value), x, p
        value = value * (1 << mean_shift) + (means[i] if means.shape[0] else mean)
        if value < ACT_MIN or value > ACT_MAX:
            return OUT_OF_RANGE, value, x, p
        out[i] = value
    return OK, np.int64(0), x, p


@njit(cache=True, nogil=True)
def _put(x, out, p, start, f, bits):
    """Annex A.2: emit the low word if x >= f * 2^(63 - bits), then code [start, start + f)."""
    if (x >> (63 - bits)) >= f:
        p -= 1
        out[p] = x & MASK32
        x >>= 32
    return ((x // f) << bits) + x % f + start, p


@njit(cache=True, nogil=True)
def _encode(values, indexes, cdf, cdf_length, offset, out):
    """Encode in reverse into the tail of ``out``; (OK, first word) or (error code, position)."""
    x = np.int64(RANS_L)
    p = out.shape[0]
    for i in range(values.shape[0] - 1, -1, -1):
        r = indexes[i]
        max_value = np.int64(cdf_length[r] - 2)
        value = values[i]
        if value < -VALUE_LIMIT or value > VALUE_LIMIT:
            return NEEDS_TOO_MANY_NIBBLES, i
        v = value - offset[r]
        s = v
        if v < 0 or v >= max_value:
            raw = -2 * v - 1 if v < 0 else 2 * (v - max_value)
            if raw >> (BYPASS_BITS * MAX_BYPASS_NIBBLES):
                return NEEDS_TOO_MANY_NIBBLES, i
            n = 0
            while raw >> (BYPASS_BITS * n):
                n += 1
            for j in range(n - 1, -1, -1):
                x, p = _put(x, out, p, (raw >> (BYPASS_BITS * j)) & 15, 1, BYPASS_BITS)
            x, p = _put(x, out, p, n, 1, BYPASS_BITS)
            s = max_value
        start = np.int64(cdf[r, s])
        x, p = _put(x, out, p, start, np.int64(cdf[r, s + 1]) - start, PRECISION)
    out[p - 2] = x & MASK32
    out[p - 1] = x >> 32
    return OK, p - 2


def stream_words(data: bytes, name: str) -> np.ndarray:
    """The 32-bit words of a sub-stream after the checks of spec §3.2, as in the reference."""
    data = rans_init(data, name).data
    return np.frombuffer(data, dtype="<u4").astype(np.uint32, copy=False)  # native order for Numba


def raise_for(code: int, aux: int, name: str) -> None:
    """Raise what the reference decoder raises for a kernel's (code, aux)."""
    if code == ENDS_EARLY:
        raise StreamError(f"{name} sub-stream ends before its last symbol", "3.3")
    if code == TOO_MANY_NIBBLES:
        raise StreamError(f"{name} sub-stream escape has {aux} raw nibbles, more than {MAX_BYPASS_NIBBLES}", "3.5")
    if code == LEFT_OVER:
        raise StreamError(f"{name} sub-stream has {aux} bytes left over after its last symbol", "3.6")
    if code == BAD_FINAL_STATE:
        raise StreamError(f"{name} sub-stream ends in state {aux:#x}, not 2^31: the stream is corrupt", "3.6")


NO_ROWS, NO_MEANS = np.zeros(0, np.uint8), np.zeros(0, np.int16)


class ValueReader:
    """A sub-stream ``name`` being decoded with ``table`` (spec §3.2-§3.6), value by value in the order of spec
    §8.3 or §8.9: the fast path's refcodec.decoder.latents.LatentReader (same values, same errors)."""

    def __init__(self, data: bytes, name: str, table: CdfTable):
        self.words = stream_words(data, name)
        self.x, self.p = initial_state(self.words)
        self.name, self.table = name, table
        self.lut = symbol_lut(table.cdf, table.cdf_length)

    def values(self, out: np.ndarray, rows, means, mean_shift: int, number: str) -> None:
        """As refcodec.decoder.latents.LatentReader.values; ``out`` is C-contiguous s16, ``rows`` an int or a
        u8 array, ``means`` an int or an s16 array."""
        if not out.flags.c_contiguous:
            raise ValueError("values are decoded into a C-contiguous array")
        row, row_array = (0, rows.reshape(-1)) if isinstance(rows, np.ndarray) else (int(rows), NO_ROWS)
        mean, mean_array = (0, means.reshape(-1)) if isinstance(means, np.ndarray) else (int(means), NO_MEANS)
        table = self.table
        code, aux, self.x, self.p = _decode_latents(self.words, self.x, self.p, row_array, row, mean_array, mean,
                                                    mean_shift, table.cdf, table.cdf_length, table.offset,
                                                    self.lut, out.reshape(-1))
        self.check(code, aux, number)

    def check(self, code: int, aux: int, number: str) -> None:
        """Raise what the reference raises for a kernel's (code, aux); ``number``: the clause of a latent
        out of range."""
        if code == OUT_OF_RANGE:
            raise StreamError(f"a {self.name} latent lies outside {ACT_MIN}..{ACT_MAX}", number)
        raise_for(code, aux, self.name)

    def finish(self) -> None:
        """RansExit (spec §3.6) after the last value."""
        code, aux = exit_check(self.x, self.p, self.words)
        self.check(code, aux, "3.6")


def decode_values(data: bytes, indexes, table: CdfTable, name: str = "y") -> np.ndarray:
    """As :func:`refcodec.decoder.rans.decode_values` (spec §3)."""
    indexes = check_indexes(indexes, table)
    words = stream_words(data, name)
    out = np.empty(indexes.size, np.int64)
    code, aux = _decode(words, indexes, table.cdf, table.cdf_length, table.offset, out)
    raise_for(code, aux, name)
    return out


def encode_values(values, indexes, table: CdfTable) -> bytes:
    """As :func:`refcodec.encoder.rans.encode_values` (Annex A.2)."""
    values = np.ascontiguousarray(values, dtype=np.int64).reshape(-1)
    indexes = check_indexes(indexes, table)
    if indexes.size != values.size:
        raise ValueError(f"{indexes.size} indexes for {values.size} values")
    # at most one word per coded symbol: 1 symbol + 1 count + 8 raw nibbles per value, + state
    out = np.empty(2 + (2 + MAX_BYPASS_NIBBLES) * values.size, np.uint32)
    code, p = _encode(values, indexes, table.cdf, table.cdf_length, table.offset, out)
    if code != OK:
        r = indexes[p]
        raise ValueError(f"value {values[p]} (position {p}, row {r}) needs more than "
                         f"{MAX_BYPASS_NIBBLES} raw nibbles")
    return out[p:].astype("<u4", copy=False).tobytes()
