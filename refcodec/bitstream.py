"""Bitstream syntax (spec §7): parse and write the stream header and sub-streams."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import StreamError

MAGIC = b"RCDC"  # spec §7.1
VERSION = 1
MAX_DIMENSION = 4096  # spec §7.3
STRIDE = 16  # total stride of the synthesis transform (spec §8.2)
HEADER_BYTES = 46  # magic .. y_length (spec §7.1)


@dataclass(frozen=True)
class StreamHeader:
    """The fields of spec §7.1, plus where the y sub-stream lies in the stream."""

    version: int
    architecture: int
    model_id: bytes
    width: int
    height: int
    y_data: bytes

    @property
    def latent_shape(self) -> tuple:
        """(LatH, LatW) of spec §8.2."""
        return (self.height + STRIDE - 1) // STRIDE, (self.width + STRIDE - 1) // STRIDE


def parse_stream(data: bytes) -> StreamHeader:
    """Read the syntax of spec §7.1, checking every rule of spec §7.2 and §7.3 as it is read."""
    if len(data) < HEADER_BYTES:
        raise StreamError(f"stream of {len(data)} bytes is shorter than its {HEADER_BYTES}-byte header", "7.1")
    if data[:4] != MAGIC:
        raise StreamError(f"not a refcodec stream: magic is {bytes(data[:4])!r}, expected {MAGIC!r}", "7.2")
    version, architecture = data[4], data[5]
    if version != VERSION:
        raise StreamError(f"stream version {version} is not supported (this decoder reads {VERSION})", "7.2")
    if architecture != 0:
        raise StreamError(f"architecture code {architecture} is reserved", "7.2")
    model_id = bytes(data[6:38])
    width, height = int.from_bytes(data[38:40], "little"), int.from_bytes(data[40:42], "little")
    for name, value in (("width", width), ("height", height)):
        if not 1 <= value <= MAX_DIMENSION:
            raise StreamError(f"{name} {value} is outside 1..{MAX_DIMENSION}", "7.3")
    y_length = int.from_bytes(data[42:46], "little")
    if HEADER_BYTES + y_length > len(data):
        raise StreamError(f"y_length {y_length} runs past the end of the stream", "7.2")
    if HEADER_BYTES + y_length < len(data):
        raise StreamError(f"{len(data) - HEADER_BYTES - y_length} bytes follow the y sub-stream", "7.2")
    return StreamHeader(version, architecture, model_id, width, height, bytes(data[HEADER_BYTES:]))


def write_stream(model_id: bytes, architecture: int, width: int, height: int, y_data: bytes) -> bytes:
    """The encoder's side of spec §7.1."""
    return (MAGIC + bytes([VERSION, architecture]) + model_id + width.to_bytes(2, "little")
            + height.to_bytes(2, "little") + len(y_data).to_bytes(4, "little") + y_data)
