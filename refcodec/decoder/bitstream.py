"""Bitstream syntax (spec §7): parse the stream header and sub-streams (refcodec.encoder.encode writes them)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from refcodec.decoder.conventions import clause, read_at_most, read_le
from refcodec.decoder.errors import StreamError

MAGIC = b"RCDC"  # spec §7.1
VERSIONS = (1, 2)  # spec §7.2: version 2 (edition 4) adds the quality field
ARCHITECTURE_CODES = (0, 1, 2, 3)  # factorized, hyperprior, mean-scale, joint (spec §7.2)
MAX_DIMENSION = 16384  # spec §7.3 (edition 5; 4096 in editions 1 to 4)
# spec §7.3: (level, max width, max height, max picture area) of each level, lowest first; a stream's level is
# the first that contains its picture (StreamLevel), derived from the header, never signalled. Level 1 is the
# limit of editions 1 to 4; the highest level is MAX_DIMENSION x MAX_DIMENSION.
LEVELS = (
    (1, 4096, 4096, 1 << 24),
    (2, 8192, 8192, 1 << 26),
    (3, 16384, 16384, 1 << 28),
)
STRIDE = 16  # total stride of the synthesis transform (spec §8.2)
HYPER_STRIDE = 4  # total stride of the hyper-synthesis transform (spec §8.2)
FIXED_BYTES = 42  # magic .. height of a version-1 stream (spec §7.1); version 2 has one byte more
HEADER_BYTES = 46  # the whole header of a factorized stream: magic .. y_length
MAX_CHANNELS = 512  # spec §6.2: no model has more channels
MAX_WORDS_PER_VALUE = 10  # symbol, nibble count, 8 raw nibbles: one word each at most (spec §8.3)
MAX_LENGTH_FIELD = (1 << 32) - 1  # z_length and y_length are u(32) (spec §7.1)


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
    level: int = 0  # StreamLevel (spec §7.3), which parse_stream sets; 0 for a header not made by it

    @property
    def latent_shape(self) -> tuple:
        """(LatH, LatW) of spec §8.2."""
        return latent_size(self.height, self.width)

    @property
    def hyper_shape(self) -> tuple:
        """(ZH, ZW) of spec §8.2: the hyper-latent size."""
        return hyper_size(*self.latent_shape)


@clause("7.3")
def stream_level(width: int, height: int) -> int:
    """StreamLevel (spec §7.3): the lowest level of LEVELS whose width, height and area bound the picture.
    ParseStream has checked 1 <= width, height <= MAX_DIMENSION, which the highest level contains."""
    for level, max_width, max_height, max_area in LEVELS:
        if width <= max_width and height <= max_height and width * height <= max_area:
            return level
    raise ValueError(f"{width}x{height} is above every level: not a size parse_stream accepts")


def sub_stream_bound(values: int) -> int:
    """The longest sub-stream of ``values`` positions that spec §7.3 lets ParseStream accept: 8 + 40 bytes per
    value of up to MAX_CHANNELS channels, and never more than a u(32) length field holds."""
    return min(MAX_LENGTH_FIELD, 8 + 4 * MAX_WORDS_PER_VALUE * MAX_CHANNELS * values)


def largest_stream(version: int, architecture: int, width: int, height: int) -> int:
    """The length of the longest stream that can be valid with these header fields (spec §7.3): the fixed
    header, the length fields and the longest sub-streams ParseStream accepts."""
    lat_h, lat_w = latent_size(height, width)
    z_h, z_w = hyper_size(lat_h, lat_w)
    z_part = 4 + sub_stream_bound(z_h * z_w) if architecture != 0 else 0
    return FIXED_BYTES + (1 if version == 2 else 0) + z_part + 4 + sub_stream_bound(lat_h * lat_w)


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


def fixed_header(data: bytes) -> tuple:
    """(version, architecture, quality, model_id, width, height): the fixed part of the header (spec §7.1,
    magic .. height), checked against the rules of §7.2 and §7.3 as it is read; the first steps of
    ParseStream, which ``read_stream_file`` also takes to bound what it reads."""
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
    return version, architecture, quality, model_id, width, height


@clause("7.2")
def parse_stream(data: bytes) -> StreamHeader:
    """ParseStream (spec §7.2): read the syntax of spec §7.1, checking the rules of §7.2 and §7.3 as it is read;
    the header's ``level`` is the stream's level (spec §7.3)."""
    version, architecture, quality, model_id, width, height = fixed_header(data)
    (lat_h, lat_w) = latent_size(height, width)
    z_h, z_w = hyper_size(lat_h, lat_w)
    z_data, pos = None, FIXED_BYTES + (1 if version == 2 else 0)
    if architecture != 0:
        z_data, pos = read_sub_stream(data, pos, "z", False, z_h * z_w)
    y_data, _ = read_sub_stream(data, pos, "y", True, lat_h * lat_w)
    return StreamHeader(version, architecture, quality, model_id, width, height, z_data, y_data,
                        stream_level(width, height))


# The length of the largest valid stream (spec §7.3): a version-2 header, both length fields, the longest z
# sub-stream §7.3 allows at MAX_DIMENSION x MAX_DIMENSION with MAX_CHANNELS channels (8 + 40 * 512 * 256 * 256
# bytes) and a y sub-stream as long as its u(32) length field holds (8 + 40 * 512 * 1024 * 1024 is larger):
# 5,637,144,634 bytes ("about 5.64 · 10^9").
MAX_STREAM_BYTES = largest_stream(2, 1, MAX_DIMENSION, MAX_DIMENSION)
HEAD_BYTES = FIXED_BYTES + 1  # the fixed header of a version-2 stream: enough to bound the rest


def read_stream_file(source) -> bytes:
    """The bytes of a stream file (a path, or a binary file object such as ``sys.stdin.buffer``), read in
    chunks and never more than one byte beyond the largest valid stream, whatever the file claims to be.
    Once the fixed header (43 bytes) has been read and found valid, that is the largest stream its fields
    allow (``largest_stream``: a version-1 factorized stream of 16 x 16 is at most 20,534 bytes); a header
    found invalid is its own StreamError at once, with nothing more read (``/dev/zero``: its magic, §7.2) —
    ParseStream would name the same fault first. A longer file (an endless FIFO after a valid header, a
    regular file whose size says so) is a StreamError (spec §7.3) once that many bytes have been read. A
    file that cannot be opened or read raises OSError (spec §2.6: outside both error classes)."""
    if isinstance(source, (str, bytes)) or hasattr(source, "__fspath__"):
        with open(source, "rb") as f:
            return read_stream_file(f)
    limit = MAX_STREAM_BYTES  # looked up at each call (tests lower it)
    name = getattr(source, "name", "stream")
    try:
        size = os.fstat(source.fileno()).st_size  # a regular file that says it is longer: refused unread
    except (AttributeError, OSError, ValueError):
        size = 0
    head = _read_up_to(source, min(HEAD_BYTES, limit + 1)) if size <= limit else b""
    if len(head) == HEAD_BYTES:
        limit = min(limit, largest_stream(*_fields(fixed_header(head))))  # a broken header raises here
    which = "valid stream" if limit == MAX_STREAM_BYTES else "valid stream with its header"
    if max(size, len(head)) > limit:
        raise StreamError(f"{name} is longer than the largest {which} ({limit} bytes)", "7.3")
    if len(head) < HEAD_BYTES:
        return head  # the whole file, shorter than a version-2 header: parse_stream judges it
    rest = read_at_most(source, limit - len(head))
    if rest is None:
        raise StreamError(f"{name} is longer than the largest {which} ({limit} bytes)", "7.3")
    return head + rest


def _read_up_to(f, n: int) -> bytes:
    """The first ``n`` bytes of binary file ``f``, or all of it if it is shorter."""
    data = bytearray()
    while len(data) < n:
        chunk = f.read(n - len(data))
        if not chunk:
            break
        data += chunk
    return bytes(data)


def _fields(header: tuple) -> tuple:
    """(version, architecture, width, height) of a ``fixed_header`` result."""
    version, architecture, _, _, width, height = header
    return version, architecture, width, height


def banded_memory(width: int, height: int, n: int, m: int, architecture: int, version: int = 2,
                  band: int = 16) -> dict:
    """Bytes of each array a banded decoder holds for a ``width`` x ``height`` stream of a model with N = ``n``,
    M = ``m`` (spec §7.3, informative, the table of "Memory"): ŷ and ``params`` whole, ẑ (and, for version 2,
    its gained copy), the hyper-synthesis in bands of 4 rows of ``params``, the synthesis in bands of ``band``
    picture rows (a multiple of 16) with every layer's rows of a band held at once, and the 48-bit sums of
    one output channel of one layer at a time as s64. Values are s16 (2 bytes), picture rows u8; the model,
    the stream and the picture are not counted."""
    lat_h, lat_w = latent_size(height, width)
    z_h, z_w = hyper_size(lat_h, lat_w)
    params = (0, m, 2 * m, 2 * m)[architecture]  # channels of params (spec §8.7)
    memory = {"y_hat": 2 * m * lat_h * lat_w, "params": 2 * params * lat_h * lat_w}
    if architecture != 0:
        c0, c1 = (n, n) if architecture == 1 else (m, (3 * m) >> 1)  # hyper_synthesis.0 and .1 (spec §6.3)
        memory["z_hat"] = 2 * n * z_h * z_w * (2 if version == 2 else 1)
        memory["hyper_synthesis_band"] = 2 * (10 * c0 + 24 * c1) * z_w + 192 * z_w
    if version == 2:
        memory["y_gain_band"] = 2 * m * (band // 16 + 3) * lat_w
    memory["synthesis_band"] = n * lat_w * (21 * band + 136) + 48 * band * lat_w + 128 * band * lat_w
    return memory
