"""Fuzz harness (d): the rANS decoder alone (spec §3), refcodec.decoder.rans against refcodec.fast.rans.

An input describes a valid CDF table (spec §4.2: 1-4 rows, each from weights in the input), a list
of table-row indexes and a sub-stream: either the rest of the input as it is, or values from the
input encoded by refcodec's encoder (Annex A.2) and then edited at a few input-chosen bytes, so that
most inputs get past RansInit and many reach RansExit. Both decoders' ``decode_values`` must return
the same values or raise the same error class and clause, and an unedited encoded stream must decode
to the values encoded.

Input layout (fuzzlib.Reader; missing bytes read as 0):

    mode      1 byte   bit 0: encode values (else the stream is the rest of the input);
                       bit 1: rows of up to 4096 entries (else up to 41)
    rows      1 byte   1 + b % 4
    per row   length 1 or 2 bytes, weights (length - 1 bytes), offset 2 bytes (s16)
    count     2 bytes  values to decode: u16 % 129
    indexes   count bytes, each b % rows
    mode 0:   the sub-stream: the rest of the input
    mode 1:   count values (1 byte each: b - 128, or 0x80 then 4 bytes s32 % 2^20 for an escape),
              edits 1 byte (b % 4), each 2 bytes position + 1 byte xor
"""

from __future__ import annotations

import struct
import sys

import fuzzlib
import numpy as np

with fuzzlib.instrumented(__name__ == "__main__"):
    from refcodec.decoder import rans as reference
    from refcodec.decoder.cdf import CdfTable, cdf_table_check
    from refcodec.encoder.rans import encode_values

MAX_VALUES = 128


def fast():
    from refcodec.fast import rans

    return rans


def weights_to_cdf(weights: bytes, length: int) -> list[int]:
    """A strictly increasing CDF of ``length`` entries from 0 to 2^16, its steps proportional to weights + 1."""
    symbols = length - 1
    w = [b + 1 for b in weights[:symbols]] + [1] * (symbols - len(weights[:symbols]))
    spare = (1 << 16) - symbols
    total = sum(w)
    freq = [1 + spare * x // total for x in w]
    freq[int(np.argmax(freq))] += (1 << 16) - sum(freq)
    cdf = [0]
    for f in freq:
        cdf.append(cdf[-1] + f)
    return cdf


def read_case(data: bytes) -> tuple:
    """(table, indexes, sub-stream, values) of an input (the layout above); values are those encoded when
    the sub-stream is the encoder's, unedited (the decoders must return them), else None."""
    r = fuzzlib.Reader(data)
    mode = r.byte()
    rows = 1 + r.byte() % 4
    lengths, cdfs, offsets = [], [], []
    for _ in range(rows):
        length = 2 + (r.uint(2) % 4095 if mode & 2 else r.byte() % 40)
        lengths.append(length)
        cdfs.append(weights_to_cdf(r.take(length - 1), length))
        offsets.append(struct.unpack("<h", r.uint(2).to_bytes(2, "little"))[0])
    width = max(lengths)
    cdf = np.zeros((rows, width), np.int32)
    for i, row in enumerate(cdfs):
        cdf[i, : len(row)] = row
    table = cdf_table_check(cdf, np.array(lengths, np.int32), np.array(offsets, np.int32), "fuzz")
    count = r.uint(2) % (MAX_VALUES + 1)
    indexes = np.array([r.byte() % rows for _ in range(count)], np.int64)
    if not mode & 1:
        return table, indexes, r.rest(), None
    values = []
    for _ in range(count):
        b = r.byte()
        if b == 0x80:
            v = struct.unpack("<i", r.uint(4).to_bytes(4, "little"))[0]
            values.append(int(np.sign(v)) * (abs(v) % (1 << 20)))
        else:
            values.append(b - 128)
    values_array = np.array(values, np.int64)
    stream = bytearray(encode_values(values_array, indexes, table))
    edited = False
    for _ in range(r.byte() % 4):
        pos, flip = r.uint(2), r.byte()
        if stream and flip:
            stream[pos % len(stream)] ^= flip
            edited = True
    return table, indexes, bytes(stream), None if edited else values_array


def test_one_input(data: bytes) -> None:
    table, indexes, stream, values = read_case(bytes(data))
    expected = fuzzlib.outcome(lambda: reference.decode_values(stream, indexes, table, name="y"))
    got = fuzzlib.outcome(lambda: fast().decode_values(stream, indexes, table, name="y"))
    if values is not None and (expected[0] != "ok" or not np.array_equal(expected[1], values)):
        raise fuzzlib.Finding(f"the reference decoder does not return the values encoded: {expected[:3]}")
    if expected[0] == "ok" and got[0] == "ok":
        if not np.array_equal(expected[1], got[1]):
            raise fuzzlib.Finding(f"decoders disagree on values: {expected[1][:20]} vs {got[1][:20]}")
    elif expected != got:
        raise fuzzlib.Finding(f"decoders disagree: reference {expected[:3]}, fast {got[:3]}")


def make_input(table: CdfTable | None = None, values=(), rows=(), raw: bytes | None = None) -> bytes:
    """An input of this harness's layout for the corpus: a one-row table of 9 even symbols unless given
    lengths and weights are wanted (rows: [(length, weights, offset)]); values encoded, or ``raw``."""
    rows = rows or [(9, b"\x10" * 8, -4)]
    out = bytearray([0 if raw is not None else 1, len(rows) - 1])
    for length, weights, offset in rows:
        out.append(length - 2)
        out += weights.ljust(length - 1, b"\0")[: length - 1] + struct.pack("<h", offset)
    count = len(values) if raw is None else len(rows) * 4
    out += struct.pack("<H", count) + bytes(i % len(rows) for i in range(count))
    if raw is not None:
        return bytes(out + raw)
    for v in values:
        out += bytes([v + 128]) if -128 <= v < 128 and v != 0 else b"\x80" + struct.pack("<i", v)
    return bytes(out + b"\0")


if __name__ == "__main__":
    fuzzlib.main(test_one_input, seeds="rans")
    sys.exit(0)
