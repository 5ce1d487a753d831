"""rANS entropy coder: reference decoder (spec §3) and encoder (Annex A.2).

Read me first
-------------
* 64-bit rANS after ryg_rans (rans64.h), stream-compatible with CompressAI's coder: state x
  with RANS_L = 2^31 <= x < 2^63, 32-bit words, 16-bit CDF precision.
* The ENCODER RUNS IN REVERSE: it codes the last value first, starting from x = RANS_L, and
  emits words back to front; the decoder then reads forwards and ends at x = RANS_L.
* Stream = final encoder state as two words (low first), then the renormalisation words in
  decode order. Every word is 4 bytes, little-endian (spec §3.1), so lengths are 8 + 4k.
* Symbol s of a table row has start cdf[s] and frequency f = cdf[s+1] - cdf[s].
  Encode: x <- (x // f) * 2^16 + x % f + cdf[s], after emitting the low word if x >= f * 2^47.
  Decode: cf = x mod 2^16, find s, x <- f * (x >> 16) + cf - cdf[s], refill if x < 2^31.
* The last symbol of a row (cdf_length - 2) is an escape: the value follows as bypass nibbles
  (4 bits each, coded like symbols of frequency 1 at precision 4), count first.
* Unlike CompressAI, every read is bounds-checked and the end of the stream is checked.

This module is the plain, slow reference; :mod:`refcodec.fast.rans` is the same in Numba.
"""

from __future__ import annotations

import numpy as np

from refcodec.decoder.cdf import CdfTable
from refcodec.decoder.errors import StreamError

RANS_L = 1 << 31  # spec §3.1: lower bound of the state
STATE_END = 1 << 63  # exclusive upper bound of the state
PRECISION = 16  # CDF precision
BYPASS_BITS = 4  # bypass chunk: one nibble
MAX_BYPASS_NIBBLES = 8  # spec §3.5: raw < 2^32


class RansDecoder:
    """The decoder state machine of spec §3.2–§3.6 over one sub-stream called ``name``."""

    def __init__(self, data: bytes, name: str = "y"):
        """RansInit (spec §3.2): check the length, read the initial state."""
        self.name, self.data = name, bytes(data)
        if len(self.data) % 4:
            self._fail(f"length {len(self.data)} is not a multiple of 4", "3.2")
        if len(self.data) < 8:
            self._fail(f"is {len(self.data)} bytes, shorter than its 8-byte initial state", "3.2")
        self.x = int.from_bytes(self.data[:8], "little")
        if not RANS_L <= self.x < STATE_END:
            self._fail(f"initial state {self.x:#x} is outside [2^31, 2^63)", "3.2")
        self.pos = 8

    def _fail(self, what: str, clause: str):
        raise StreamError(f"{self.name} sub-stream {what}", clause)

    def _renormalize(self):
        """Refill with the next word if x < RANS_L; one word always suffices (spec §3.3, §3.7)."""
        if self.x < RANS_L:
            if self.pos + 4 > len(self.data):
                self._fail("ends before its last symbol", "3.3")
            self.x = (self.x << 32) | int.from_bytes(self.data[self.pos:self.pos + 4], "little")
            self.pos += 4

    def decode_symbol(self, cdf, cdf_length: int) -> int:
        """RansDecodeSymbol (spec §3.3): the s with cdf[s] <= x mod 2^16 < cdf[s+1], by binary search."""
        cf = self.x & 0xFFFF
        lo, hi = 0, cdf_length - 1  # cdf[lo] <= cf < cdf[hi]
        while hi - lo > 1:
            mid = (lo + hi) >> 1
            if cdf[mid] <= cf:
                lo = mid
            else:
                hi = mid
        start = int(cdf[lo])
        self.x = (int(cdf[lo + 1]) - start) * (self.x >> PRECISION) + cf - start
        self._renormalize()
        return lo

    def decode_bypass(self) -> int:
        """RansDecodeBypass (spec §3.4): the next nibble."""
        nibble = self.x & 15
        self.x >>= BYPASS_BITS
        self._renormalize()
        return nibble

    def decode_value(self, cdf, cdf_length: int, offset: int) -> int:
        """RansDecodeValue (spec §3.5): a symbol, or after the escape a bypass-coded value."""
        max_value = cdf_length - 2
        s = self.decode_symbol(cdf, cdf_length)
        if s < max_value:
            return s + offset
        n = self.decode_bypass()
        if n > MAX_BYPASS_NIBBLES:
            self._fail(f"escape has {n} raw nibbles, more than {MAX_BYPASS_NIBBLES}", "3.5")
        raw = 0
        for j in range(n):
            raw |= self.decode_bypass() << (BYPASS_BITS * j)
        v = -(raw >> 1) - 1 if raw & 1 else (raw >> 1) + max_value
        return v + offset

    def finish(self):
        """RansExit (spec §3.6): every word consumed and the state back at RANS_L."""
        if self.pos != len(self.data):
            self._fail(f"has {len(self.data) - self.pos} bytes left over after its last symbol", "3.6")
        if self.x != RANS_L:
            self._fail(f"ends in state {self.x:#x}, not 2^31: the stream is corrupt", "3.6")


def check_indexes(indexes, table: CdfTable) -> np.ndarray:
    """Table-row indexes as a flat int64 array, each a row of ``table`` (a caller's bug otherwise)."""
    indexes = np.asarray(indexes, dtype=np.int64).reshape(-1)
    if indexes.size and not (0 <= indexes.min() and indexes.max() < table.rows):
        raise ValueError(f"table-row index outside 0 .. {table.rows - 1}")
    return indexes


def decode_values(data: bytes, indexes, table: CdfTable, name: str = "y") -> np.ndarray:
    """Decode len(indexes) values, value i with table row indexes[i], in order; then RansExit."""
    indexes = check_indexes(indexes, table)
    cdf, cdf_length, offset = table.cdf.tolist(), table.cdf_length.tolist(), table.offset.tolist()
    dec = RansDecoder(data, name)
    out = np.array([dec.decode_value(cdf[r], cdf_length[r], offset[r]) for r in indexes.tolist()],
                   dtype=np.int64)
    dec.finish()
    return out
