"""The rANS decoder (spec §3), NumPy reference; its encoder is refcodec.encoder.rans (Annex A.2).

Read me first
-------------
* 64-bit rANS after ryg_rans (rans64.h), stream-compatible with CompressAI's coder: state x
  with RANS_L = 2^31 <= x < 2^63, 32-bit words, 16-bit CDF precision.
* The encoder runs in reverse: it codes the last value first, starting from x = RANS_L, and
  emits words back to front; the decoder then reads forwards and ends at x = RANS_L.
* Stream = final encoder state as two words (low first), then the renormalisation words in
  decode order. Every word is 4 bytes, little-endian (spec §3.1), so lengths are 8 + 4k.
* Symbol s of a table row has start cdf[s] and frequency f = cdf[s+1] - cdf[s].
  Decode: cf = x mod 2^16, find s, x <- f * (x >> 16) + cf - cdf[s], refill if x < 2^31.
* The last symbol of a row (cdf_length - 2) is an escape: the value follows as bypass nibbles
  (4 bits each, coded like symbols of frequency 1 at precision 4), count first.
* Unlike CompressAI, every read is bounds-checked and the end of the stream is checked.

The decoder state is the spec's: the sub-stream, the position of the next word and x
(``RansState``, with the sub-stream's name for messages). This module is the plain, slow
reference; :mod:`refcodec.fast.rans` is the same in Numba.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from refcodec.decoder.cdf import CdfTable
from refcodec.decoder.conventions import clause, read_le
from refcodec.decoder.errors import StreamError, require

RANS_L = 1 << 31  # spec §3.1: lower bound of the state
STATE_END = 1 << 63  # RANS_STATE_END: exclusive upper bound of the state
PRECISION = 16  # RANS_PRECISION: CDF precision
BYPASS_BITS = 4  # bypass chunk: one nibble
MAX_BYPASS_NIBBLES = 8  # spec §3.5: raw < 2^32


@dataclass
class RansState:
    """The decoder state of spec §3.1: ``data`` (a sub-stream called ``name``), ``pos``, ``x``."""

    data: bytes
    pos: int
    x: int
    name: str


@clause("3.2")
def rans_init(data: bytes, name: str = "y") -> RansState:
    """RansInit (spec §3.2): check the length, read the initial state."""
    data = bytes(data)
    require(len(data) % 4 == 0, StreamError, "3.2", f"{name} sub-stream length {len(data)} is not a multiple of 4")
    require(len(data) >= 8, StreamError, "3.2",
            f"{name} sub-stream is {len(data)} bytes, shorter than its 8-byte initial state")
    x = read_le(data, 0, 8)
    require(RANS_L <= x < STATE_END, StreamError, "3.2",
            f"{name} sub-stream initial state {x:#x} is outside [2^31, 2^63)")
    return RansState(data, 8, x, name)


@clause("3.3")
def rans_renormalize(state: RansState) -> None:
    """RansRenormalize (spec §3.3): refill with the next word if x < RANS_L; one word always suffices (§3.7)."""
    if state.x < RANS_L:
        require(state.pos + 4 <= len(state.data), StreamError, "3.3",
                f"{state.name} sub-stream ends before its last symbol")
        state.x = (state.x << 32) | read_le(state.data, state.pos, 4)
        state.pos += 4


@clause("3.3")
def rans_decode_symbol(state: RansState, cdf, cdf_length: int) -> int:
    """RansDecodeSymbol (spec §3.3): the s with cdf[s] <= x mod 2^16 < cdf[s+1], by binary search."""
    x = state.x
    cf = x & 0xFFFF
    lo, hi = 0, cdf_length - 1  # cdf[lo] <= cf < cdf[hi]
    while hi - lo > 1:
        mid = (lo + hi) >> 1
        if cdf[mid] <= cf:
            lo = mid
        else:
            hi = mid
    s = lo
    state.x = (cdf[s + 1] - cdf[s]) * (x >> PRECISION) + cf - cdf[s]
    rans_renormalize(state)
    return s


@clause("3.4")
def rans_decode_bypass(state: RansState) -> int:
    """RansDecodeBypass (spec §3.4): the next nibble."""
    nibble = state.x & 15
    state.x >>= BYPASS_BITS
    rans_renormalize(state)
    return nibble


@clause("3.5")
def rans_decode_value(state: RansState, cdf, cdf_length: int, offset: int) -> int:
    """RansDecodeValue (spec §3.5): a symbol, or after the escape a bypass-coded value."""
    max_value = cdf_length - 2
    s = rans_decode_symbol(state, cdf, cdf_length)
    if s < max_value:
        return s + offset
    n = rans_decode_bypass(state)
    require(n <= MAX_BYPASS_NIBBLES, StreamError, "3.5",
            f"{state.name} sub-stream escape has {n} raw nibbles, more than {MAX_BYPASS_NIBBLES}")
    raw = 0
    for j in range(n):
        raw |= rans_decode_bypass(state) << (BYPASS_BITS * j)
    v = -(raw >> 1) - 1 if raw & 1 else (raw >> 1) + max_value
    return v + offset


@clause("3.6")
def rans_exit(state: RansState) -> None:
    """RansExit (spec §3.6): every word consumed and the state back at RANS_L."""
    require(state.pos == len(state.data), StreamError, "3.6",
            f"{state.name} sub-stream has {len(state.data) - state.pos} bytes left over after its last symbol")
    require(state.x == RANS_L, StreamError, "3.6",
            f"{state.name} sub-stream ends in state {state.x:#x}, not 2^31: the stream is corrupt")


def check_indexes(indexes, table: CdfTable) -> np.ndarray:
    """Table-row indexes as a flat int64 array, each a row of ``table`` (a caller's bug otherwise)."""
    indexes = np.asarray(indexes, dtype=np.int64).reshape(-1)
    if indexes.size and not (indexes.min() >= 0 and indexes.max() < table.rows):
        raise ValueError(f"table-row index outside 0 .. {table.rows - 1}")
    return indexes


def decode_values(data: bytes, indexes, table: CdfTable, name: str = "y") -> np.ndarray:
    """Decode len(indexes) values, value i with table row indexes[i], in order; then RansExit."""
    indexes = check_indexes(indexes, table)
    cdf, cdf_length, offset = table.cdf.tolist(), table.cdf_length.tolist(), table.offset.tolist()
    state = rans_init(data, name)
    out = np.array([rans_decode_value(state, cdf[r], cdf_length[r], offset[r]) for r in indexes.tolist()],
                   dtype=np.int64)
    rans_exit(state)
    return out
