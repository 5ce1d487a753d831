"""The rANS encoder (informative, Annex A.2): the inverse of the decoder of spec §3.

The encoder runs in reverse: it codes the last value first, starting from the state
RANS_L the decoder must end in (spec §3.6), and emits words back to front; the
decoder (refcodec.decoder.rans) then reads them forwards.
"""

from __future__ import annotations

import numpy as np

from refcodec.decoder.cdf import CdfTable
from refcodec.decoder.rans import BYPASS_BITS, MAX_BYPASS_NIBBLES, PRECISION, RANS_L, check_indexes

MASK32 = (1 << 32) - 1


def value_steps(value: int, cdf, cdf_length: int, offset: int) -> list:
    """The coding steps (start, frequency, precision bits) of one value, in decoding order (Annex A.2):
    its symbol, and after an escape the nibble count and the raw nibbles, least significant first.

    Raises ValueError for a value whose escape would need more than 8 raw nibbles.
    """
    max_value = int(cdf_length) - 2
    v = int(value) - int(offset)
    if 0 <= v < max_value:
        return [(int(cdf[v]), int(cdf[v + 1] - cdf[v]), PRECISION)]
    raw = -2 * v - 1 if v < 0 else 2 * (v - max_value)
    if raw >> (BYPASS_BITS * MAX_BYPASS_NIBBLES):
        raise ValueError(f"value {value} needs more than {MAX_BYPASS_NIBBLES} raw nibbles")
    n = (raw.bit_length() + BYPASS_BITS - 1) // BYPASS_BITS
    nibbles = [(raw >> (BYPASS_BITS * j)) & 15 for j in range(n)]
    escape = (int(cdf[max_value]), int(cdf[max_value + 1] - cdf[max_value]), PRECISION)
    return [escape] + [(nibble, 1, BYPASS_BITS) for nibble in [n] + nibbles]


def encode_steps(steps: list, final_state: int = RANS_L) -> bytes:
    """Encode coding steps (start, frequency, bits), given in decoding order, into a sub-stream
    (Annex A.2): in reverse, from the state ``final_state`` the decoder must end in (spec §3.6)."""
    words = []  # in emission order; the stream is their reverse
    x = final_state
    for start, f, bits in reversed(steps):
        if x >> (63 - bits) >= f:  # Annex A.2: x_max = f * 2^(63 - bits)
            words.append(x & MASK32)
            x >>= 32
        x = ((x // f) << bits) + x % f + start
    words += [x >> 32, x & MASK32]  # flush: the stream starts with the low word
    return b"".join(w.to_bytes(4, "little") for w in reversed(words))


def encode_values(values, indexes, table: CdfTable) -> bytes:
    """Encode values[i] with table row indexes[i] (Annex A.2); any count, including 0 and 1.

    Raises ValueError for a value whose escape would need more than 8 raw nibbles.
    """
    values = [int(v) for v in np.asarray(values).reshape(-1)]
    indexes = check_indexes(indexes, table).tolist()
    if len(indexes) != len(values):
        raise ValueError(f"{len(indexes)} indexes for {len(values)} values")
    steps = []
    for i, (value, r) in enumerate(zip(values, indexes, strict=True)):
        try:
            steps += value_steps(value, table.cdf[r], int(table.cdf_length[r]), int(table.offset[r]))
        except ValueError:
            raise ValueError(f"value {value} (position {i}, row {r}) needs more than "
                             f"{MAX_BYPASS_NIBBLES} raw nibbles") from None
    return encode_steps(steps)
