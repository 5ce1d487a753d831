"""Bitstream syntax (spec §7): parse the stream header and sub-streams (refcodec.encoder.encode writes them)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from refcodec.decoder.conventions import clause, read_at_most, read_le
from refcodec.decoder.errors import StreamError

MAGIC = b"RCDC"  # spec §7.1
VERSIONS = (1, 2)  # spec §7.2: version 2 (edition 4) adds the quality field
ARCHITECTURE_CODES = (0, 1, 2, 3)  # factorized, hyperprior, mean-scale, joint (spec §7.2)
MAX_DIMENSION = 4096  # spec §7.3
STRIDE = 16  # total stride of the synthesis transform (spec §8.2)
HYPER_STRIDE = 4  # total stride of the hyper-synthesis transform (spec §8.2)
FIXED_BYTES = 42  # magic .. height of a version-1 stream (spec §7.1); version 2 has one byte more
HEADER_BYTES = 46  # the whole header of a factorized stream: magic .. y_length
MAX_CHANNELS = 512  # spec §6.2: no model has more channels
MAX_WORDS_PER_VALUE = 10  # symbol, nibble count, 8 raw nibbles: one word each at most (spec §8.3)


@clause("8.2")
def latent_size(height: int, width: int) -> tuple:
    """LatentSize (spec §8.2): (LatH, LatW), the latent rows and columns of a height x width picture."""
    return (height + STRIDE - 1) // STRIDE, (width + STRIDE - 1) // STRIDE


@clause("8.2")
def hyper_size(lat_h: int, lat_w: int) -> tuple:
    """HyperSize (spec §8.2): (ZH, ZW), the hyper-latent rows and columns."""
    return (lat_h + HYPER_STRIDE - 1) // HYPER_STRIDE, (lat_w + HYPER_STRIDE - 1) // HYPER_STRIDE


@dataclass(frozen=True)
class StreamHeader:
    """The fields of spec §7.1, plus the sub-streams; ``z_data`` is None for architecture 0,
    ``quality`` for version 1."""

    version: int
    architecture: int
    quality: int | None
    model_id: bytes
    width: int
    height: int
    z_data: bytes | None
    y_data: bytes

    @property
    def latent_shape(self) -> tuple:
        """(LatH, LatW) of spec §8.2."""
        return latent_size(self.height, self.width)

    @property
    def hyper_shape(self) -> tuple:
        """(ZH, ZW) of spec §8.2: the hyper-latent size."""
        return hyper_size(*self.latent_shape)


@clause("7.2")
def read_sub_stream(data: bytes, pos: int, name: str, last: bool, values: int) -> tuple:
    """ReadSubStream (spec §7.2): (sub-stream, position after it) for a length field at ``pos``, the sub-stream
    of ``values`` positions of up to MAX_CHANNELS channels each (spec §7.3)."""
    if pos + 4 > len(data):
        raise StreamError(f"stream ends inside the {name}_length field", "7.1")
    length = int.from_bytes(data[pos : pos + 4], "little")
    if length > 8 + 4 * MAX_WORDS_PER_VALUE * MAX_CHANNELS * values:
        raise StreamError(f"{name}_length {length} is longer than any model's {name} latents can use", "7.3")
    end = pos + 4 + length
    if end > len(data):
        raise StreamError(f"{name}_length {length} runs past the end of the stream", "7.2")
    if last and end < len(data):
        raise StreamError(f"{len(data) - end} bytes follow the y sub-stream", "7.2")
    return bytes(data[pos + 4 : end]), end


@clause("7.2")
def parse_stream(data: bytes) -> StreamHeader:
    """ParseStream (spec §7.2): read the syntax of spec §7.1, checking the rules of §7.2 and §7.3 as it is read."""
    if len(data) < FIXED_BYTES:
        raise StreamError(f"stream of {len(data)} bytes is shorter than its {FIXED_BYTES}-byte header", "7.1")
    if data[:4] != MAGIC:
        raise StreamError(f"not a refcodec stream: magic is {bytes(data[:4])!r}, expected {MAGIC!r}", "7.2")
    version, architecture = data[4], data[5]
    if version not in VERSIONS:
        raise StreamError(f"stream version {version} is not supported (this decoder reads {VERSIONS})", "7.2")
    if architecture not in ARCHITECTURE_CODES:
        raise StreamError(f"architecture code {architecture} is reserved", "7.2")
    pos, quality = 6, None
    if version == 2:
        if len(data) < FIXED_BYTES + 1:
            raise StreamError(f"stream of {len(data)} bytes is shorter than its {FIXED_BYTES + 1}-byte header", "7.1")
        pos, quality = 7, data[6]
    model_id = bytes(data[pos : pos + 32])
    width, height = read_le(data, pos + 32, 2), read_le(data, pos + 34, 2)
    for name, value in (("width", width), ("height", height)):
        if not 1 <= value <= MAX_DIMENSION:
            raise StreamError(f"{name} {value} is outside 1..{MAX_DIMENSION}", "7.3")
    (lat_h, lat_w) = latent_size(height, width)
    z_h, z_w = hyper_size(lat_h, lat_w)
    z_data, pos = None, pos + 36
    if architecture != 0:
        z_data, pos = read_sub_stream(data, pos, "z", False, z_h * z_w)
    y_data, _ = read_sub_stream(data, pos, "y", True, lat_h * lat_w)
    return StreamHeader(version, architecture, quality, model_id, width, height, z_data, y_data)


# The length of the largest valid stream (spec §7.3): a version-2 header, both length fields, and the longest
# z and y sub-streams §7.3 allows at MAX_DIMENSION x MAX_DIMENSION with MAX_CHANNELS channels: 1,426,063,427
# bytes ("about 1.43 · 10^9").
_LAT = latent_size(MAX_DIMENSION, MAX_DIMENSION)  # (256, 256)
_HYPER = hyper_size(*_LAT)  # (64, 64)
MAX_STREAM_BYTES = (FIXED_BYTES + 1 + 2 * 4 + 2 * 8
                    + 4 * MAX_WORDS_PER_VALUE * MAX_CHANNELS * (_HYPER[0] * _HYPER[1] + _LAT[0] * _LAT[1]))


def read_stream_file(source) -> bytes:
    """The bytes of a stream file (a path, or a binary file object such as ``sys.stdin.buffer``), read in
    chunks and never more than MAX_STREAM_BYTES + 1 bytes, whatever the file claims to be: a longer file
    (``/dev/zero``, an endless FIFO) is a StreamError (spec §7.3) once that many bytes have been read.
    A file that cannot be opened or read raises OSError (spec §2.6: outside both error classes)."""
    if isinstance(source, (str, bytes)) or hasattr(source, "__fspath__"):
        with open(source, "rb") as f:
            return read_stream_file(f)
    limit = MAX_STREAM_BYTES  # looked up at each call (tests lower it)
    name = getattr(source, "name", "stream")
    try:
        size = os.fstat(source.fileno()).st_size  # a regular file that says it is longer: refused before reading
    except (AttributeError, OSError, ValueError):
        size = 0
    if size > limit:
        raise StreamError(f"{name} is longer than the largest valid stream ({limit} bytes)", "7.3")
    data = read_at_most(source, limit)
    if data is None:
        raise StreamError(f"{name} is longer than the largest valid stream ({limit} bytes)", "7.3")
    return data
