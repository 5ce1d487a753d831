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
    """A version-2 header (43 bytes), two length fields, and 8 + 40 * 512 * values bytes per sub-stream at
    4096 x 4096 (256 x 256 latents, 64 x 64 hyper-latents): "about 1.43 · 10^9 bytes"."""
    assert bitstream.MAX_STREAM_BYTES == 43 + 8 + (8 + 40 * 512 * 64 * 64) + (8 + 40 * 512 * 256 * 256)
    assert round(bitstream.MAX_STREAM_BYTES / 1e9, 2) == 1.43


def endless_fifo(tmp_path, size: int):
    """A FIFO fed ``size`` bytes by a thread (more than the limit: the reader stops first)."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)

    def feed():
        try:
            with open(fifo, "wb") as f:
                f.write(b"RCDC" + bytes(size - 4))
        except BrokenPipeError:
            pass

    thread = threading.Thread(target=feed, daemon=True)
    thread.start()
    return fifo, thread


def test_stream_file_read_up_to_the_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(bitstream, "MAX_STREAM_BYTES", 1000)
    ok = tmp_path / "ok"
    ok.write_bytes(bytes(1000))
    assert read_stream_file(ok) == bytes(1000)
    ok.write_bytes(bytes(1001))  # a regular file that says it is longer: refused before it is read
    with pytest.raises(StreamError, match="1000 bytes") as e:
        read_stream_file(ok)
    assert e.value.clause == "7.3"
    with pytest.raises(StreamError, match="longer than the largest valid stream"):
        read_stream_file("/dev/zero")
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
