"""A PNG writer that takes a picture band by band (PNG, ISO/IEC 15948 / W3C PNG specification).

Pillow writes a PNG from a whole picture only; this writer holds one band of rows at a time, so a decoder can
write a picture bigger than its memory as it makes the rows (refcodec decode, refcodec.image.picture_writer).
The file is an 8-bit RGB PNG without interlacing: the signature, IHDR, the zlib stream of the filtered rows
split into IDAT chunks of at most IDAT_BYTES, IEND; every chunk has its CRC-32. Each row is filtered with
the filter type (None, Sub, Up, Average or Paeth) whose output has the least sum of absolute values taken as
signed bytes, the heuristic of libpng and Pillow, so files are about as small as Pillow's.
"""

from __future__ import annotations

import struct
import zlib
from typing import IO

import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"
IDAT_BYTES = 1 << 20  # compressed bytes per IDAT chunk
FILTER_BYTES = 1 << 19  # raw bytes filtered at a time (bounds the filter's temporaries, about 30 times that)
COMPRESS_LEVEL = 6  # zlib's default, as Pillow's
BYTES_PER_PIXEL = 3


def chunk(kind: bytes, data: bytes) -> bytes:
    """A PNG chunk: length, type, data, CRC-32 of type and data."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(kind)))


def paeth(left: np.ndarray, up: np.ndarray, up_left: np.ndarray) -> np.ndarray:
    """The Paeth predictor of every byte (int16 arrays): the neighbour nearest to left + up - up_left."""
    p = left + up - up_left
    pa, pb, pc = np.abs(p - left), np.abs(p - up), np.abs(p - up_left)
    return np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, up_left))


def filter_rows(rows: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """Rows (n, L) of uint8 bytes, each filtered as it compresses best and preceded by its filter type byte,
    (n, L + 1); ``prior`` is the row above the first (zeros above the picture)."""
    x = rows.astype(np.int16)
    up = np.concatenate([prior[None].astype(np.int16), x[:-1]])
    left, up_left = np.zeros_like(x), np.zeros_like(x)
    left[:, BYTES_PER_PIXEL:], up_left[:, BYTES_PER_PIXEL:] = x[:, :-BYTES_PER_PIXEL], up[:, :-BYTES_PER_PIXEL]
    filtered = np.stack([x, x - left, x - up, x - ((left + up) >> 1), x - paeth(left, up, up_left)])
    filtered = (filtered & 0xFF).astype(np.uint8)  # (5, n, L): filter types 0 .. 4
    cost = np.abs(filtered.view(np.int8).astype(np.int16)).sum(axis=2)
    best = np.argmin(cost, axis=0)
    out = np.empty((rows.shape[0], rows.shape[1] + 1), np.uint8)
    out[:, 0] = best
    out[:, 1:] = filtered[best, np.arange(rows.shape[0])]
    return out


class PngWriter:
    """Writes an RGB picture of ``width`` x ``height`` as PNG to the binary file ``f``: ``write`` takes bands of
    rows top to bottom, (rows, width, 3) uint8, and ``close`` ends the file once all ``height`` rows are in."""

    def __init__(self, f: IO[bytes], width: int, height: int, level: int = COMPRESS_LEVEL):
        self.f, self.width, self.height = f, width, height
        self.rows = 0
        self.prior = np.zeros(width * BYTES_PER_PIXEL, np.uint8)
        self.compressor = zlib.compressobj(level)
        self.pending = bytearray()
        f.write(SIGNATURE + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)))

    def write(self, band: np.ndarray) -> None:
        """The next rows of the picture, (rows, width, 3) uint8."""
        if band.shape[1:] != (self.width, BYTES_PER_PIXEL) or self.rows + band.shape[0] > self.height:
            raise ValueError(f"a band of shape {band.shape} does not continue a {self.width}x{self.height} picture "
                             f"after {self.rows} rows")
        flat = band.reshape(band.shape[0], -1)
        step = max(1, FILTER_BYTES // max(1, flat.shape[1]))
        for a in range(0, flat.shape[0], step):
            rows = flat[a : a + step]
            self.pending += self.compressor.compress(filter_rows(rows, self.prior).tobytes())
            self.prior = rows[-1]
            self.flush_idat(IDAT_BYTES)
        self.rows += band.shape[0]

    def flush_idat(self, at_least: int) -> None:
        """Write the pending compressed bytes as IDAT chunks of IDAT_BYTES while ``at_least`` are pending."""
        while self.pending and len(self.pending) >= at_least:
            data = bytes(self.pending[:IDAT_BYTES])
            del self.pending[:IDAT_BYTES]
            self.f.write(chunk(b"IDAT", data))

    def close(self) -> None:
        """End the file: the rest of the zlib stream, IEND. Every row must have been written."""
        if self.rows != self.height:
            raise ValueError(f"{self.rows} rows written of a picture of {self.height}")
        self.pending += self.compressor.flush()
        self.flush_idat(1)
        self.f.write(chunk(b"IEND", b""))
