"""Stream and model files are read within the spec's limits whatever the file claims (issue 14): a FIFO or
/dev/zero stops at the largest valid stream (spec §7.3) or model file (spec §6.1), plus one byte."""

import os
import threading

import pytest

from refcodec.decoder import bitstream, model
from refcodec.decoder.bitstream import read_stream_file
from refcodec.decoder.errors import ModelError, StreamError
from refcodec.decoder.model import read_model_file


def test_largest_stream_from_the_constants_of_section_7_3():
    """A version-2 header (43 bytes), two length fields, 8 + 40 * 512 * values bytes for the z sub-stream at
    16384 x 16384 (256 x 256 hyper-latents) and for the y sub-stream (1024 x 1024 latents) the most its u(32)
    length field holds, which is less: "about 5.64 · 10^9 bytes"; at level 1 (4096 x 4096) "1.43 · 10^9"."""
    assert 8 + 40 * 512 * 1024 * 1024 > (1 << 32) - 1
    assert bitstream.MAX_STREAM_BYTES == 43 + 8 + (8 + 40 * 512 * 256 * 256) + ((1 << 32) - 1)
    assert round(bitstream.MAX_STREAM_BYTES / 1e9, 2) == 5.64
    level_1 = bitstream.largest_stream(2, 1, 4096, 4096)
    assert level_1 == 43 + 8 + (8 + 40 * 512 * 64 * 64) + (8 + 40 * 512 * 256 * 256)
    assert round(level_1 / 1e9, 2) == 1.43


def valid_head(width: int = 16, height: int = 16, architecture: int = 0) -> bytes:
    """The fixed header of a version-1 stream (42 bytes) and the first byte of its first length field."""
    return (b"RCDC\x01" + bytes([architecture]) + bytes(32) + width.to_bytes(2, "little")
            + height.to_bytes(2, "little") + b"\x00")


def test_a_valid_header_bounds_the_read(tmp_path):
    """Once the fixed header is read and valid, the file is read to the largest stream its fields allow
    (spec §7.3), not to MAX_STREAM_BYTES: a 16 x 16 factorized stream is at most 42 + 4 + 8 + 40 * 512 bytes,
    so an endless FIFO behind such a header stops after 20,535 bytes."""
    limit = 42 + 4 + 8 + 40 * 512
    assert bitstream.largest_stream(1, 0, 16, 16) == limit
    ok = tmp_path / "ok"
    ok.write_bytes(valid_head() + bytes(limit - 43))
    assert len(read_stream_file(ok)) == limit
    ok.write_bytes(valid_head() + bytes(limit - 42))  # one byte more: refused before it is read (its size)
    with pytest.raises(StreamError, match=f"with its header \\({limit} bytes\\)") as e:
        read_stream_file(ok)
    assert e.value.clause == "7.3"
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)

    def feed():
        try:
            with open(fifo, "wb") as f:
                f.write(valid_head() + bytes(1 << 20))
        except BrokenPipeError:
            pass

    thread = threading.Thread(target=feed, daemon=True)
    thread.start()
    with pytest.raises(StreamError, match=f"with its header \\({limit} bytes\\)"):
        read_stream_file(fifo)
    thread.join(10)
    big = bitstream.largest_stream(1, 1, 16384, 16384)  # a hyperprior header: both sub-streams
    assert big == 42 + 4 + (8 + 40 * 512 * 256 * 256) + 4 + ((1 << 32) - 1)


def test_a_broken_header_is_refused_unread(tmp_path, monkeypatch):
    """A file whose fixed header is broken (here: a width above MAX_DIMENSION) is its header's StreamError as soon
    as the header is read, the error ParseStream names first; nothing after the header is read."""
    bad = tmp_path / "bad"
    bad.write_bytes(valid_head(width=16385) + bytes(500))
    with pytest.raises(StreamError, match=r"width 16385 is outside 1\.\.16384") as e:
        read_stream_file(bad)
    assert e.value.clause == "7.3"
    with pytest.raises(StreamError, match=r"width 16385 is outside 1\.\.16384"):
        bitstream.parse_stream(bad.read_bytes())
    read = []
    with open(bad, "rb") as f:
        monkeypatch.setattr(f, "read", lambda n=-1, real=f.read: read.append(n) or real(n), raising=False)
        with pytest.raises(StreamError):
            read_stream_file(f)
    assert sum(read) <= 43


VALID_HEAD = b"RCDC" + bytes([1, 0]) + bytes(32) + bytes([16, 0, 16, 0, 0])  # a valid fixed header (spec §7.1)


def endless_fifo(tmp_path, size: int):
    """A FIFO fed ``size`` bytes by a thread (more than the limit: the reader stops first)."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)

    def feed():
        try:
            with open(fifo, "wb") as f:
                f.write(VALID_HEAD + bytes(size - len(VALID_HEAD)))
        except BrokenPipeError:
            pass

    thread = threading.Thread(target=feed, daemon=True)
    thread.start()
    return fifo, thread


def test_stream_file_read_up_to_the_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(bitstream, "MAX_STREAM_BYTES", 1000)
    ok = tmp_path / "ok"
    ok.write_bytes(VALID_HEAD + bytes(1000 - len(VALID_HEAD)))
    assert read_stream_file(ok) == VALID_HEAD + bytes(1000 - len(VALID_HEAD))
    ok.write_bytes(bytes(1001))  # a regular file that says it is longer: refused before it is read
    with pytest.raises(StreamError, match="1000 bytes") as e:
        read_stream_file(ok)
    assert e.value.clause == "7.3"
    with pytest.raises(StreamError, match="magic") as e:  # the header's own fault, nothing more read
        read_stream_file("/dev/zero")
    assert e.value.clause == "7.2"
    fifo, thread = endless_fifo(tmp_path, 1 << 20)
    with pytest.raises(StreamError) as e:
        read_stream_file(fifo)
    thread.join(10)
    assert e.value.clause == "7.3"


def test_stream_file_from_a_file_object(tmp_path, monkeypatch):
    import io

    assert read_stream_file(io.BytesIO(b"RCDC1234")) == b"RCDC1234"
    monkeypatch.setattr(bitstream, "MAX_STREAM_BYTES", 4)
    with pytest.raises(StreamError):
        read_stream_file(io.BytesIO(b"RCDC1234"))


def test_model_file_read_up_to_the_limit(tmp_path, monkeypatch):
    """A FIFO: its st_size is 0, so the old size check let it be read to its end."""
    monkeypatch.setattr(model, "MAX_MODEL_BYTES", 1000)
    fifo, thread = endless_fifo(tmp_path, 1 << 20)
    with pytest.raises(ModelError, match="longer than 1000 bytes") as e:
        read_model_file(fifo)
    thread.join(10)
    assert e.value.clause == "6.1"
    with pytest.raises(ModelError) as e:
        read_model_file("/dev/zero")
    assert e.value.clause == "6.1"
    small = tmp_path / "m"
    small.write_bytes(bytes(1000))
    assert read_model_file(small) == bytes(1000)
    with pytest.raises(ModelError) as e:
        read_model_file(tmp_path / "missing")
    assert e.value.clause == "6.5"
