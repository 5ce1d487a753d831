"""Picture limits and levels (spec §7.3, edition 5): MAX_DIMENSION 16384, the three levels and StreamLevel,
the spec's figures (level table, largest stream, the informative memory table) against the code that
computes them, and headers above the limit refused before anything they would size is allocated."""

import itertools
import re
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import refcodec
from refcodec import decode
from refcodec.conformance.vectors import level_model
from refcodec.decoder.bitstream import (
    LEVELS,
    MAX_DIMENSION,
    MAX_STREAM_BYTES,
    banded_memory,
    hyper_size,
    largest_stream,
    latent_size,
    parse_stream,
    stream_level,
)
from refcodec.decoder.errors import StreamError
from refcodec.decoder.model import load_model
from refcodec.encoder.encode import encode_latents

SPEC_7 = (Path(__file__).resolve().parent.parent / "spec" / "07-bitstream.md").read_text(encoding="utf-8")


def test_levels_table():
    """Level 1 is the limit of editions 1 to 4, the highest level is MAX_DIMENSION on each side, the levels grow,
    and each level's area is the square of its side (spec §7.3)."""
    assert MAX_DIMENSION == 16384
    assert LEVELS[0] == (1, 4096, 4096, 1 << 24) and LEVELS[-1] == (3, MAX_DIMENSION, MAX_DIMENSION, 1 << 28)
    assert [level for level, *_ in LEVELS] == [1, 2, 3]
    for (_, w0, h0, a0), (_, w1, h1, a1) in itertools.pairwise(LEVELS):
        assert w0 < w1 and h0 < h1 and a0 < a1
    assert all(area == width * height for _, width, height, area in LEVELS)


def test_api_max_pixels_is_the_top_level():
    """refcodec.decode's default max_pixels (2^28) refuses no picture the spec allows, and nothing smaller."""
    assert refcodec.DEFAULT_MAX_PIXELS == LEVELS[-1][3] == MAX_DIMENSION * MAX_DIMENSION


@pytest.mark.parametrize("width, height, level", [
    (1, 1, 1), (4096, 4096, 1), (4097, 1, 2), (1, 4097, 2), (4112, 16, 2), (8192, 8192, 2), (8193, 16, 3),
    (16, 8193, 3), (16384, 16, 3), (16, 16384, 3), (16384, 16384, 3),
])
def test_stream_level(width, height, level, spec):
    assert stream_level(width, height) == level == spec["StreamLevel"](width, height)


def test_stream_level_agrees_with_the_spec_on_a_grid(spec):
    sides = [1, 15, 16, 17, 4095, 4096, 4097, 8191, 8192, 8193, 16383, 16384]
    for w in sides:
        for h in sides:
            assert stream_level(w, h) == spec["StreamLevel"](w, h), (w, h)
    with pytest.raises(ValueError):
        stream_level(MAX_DIMENSION + 1, 1)
    assert spec["StreamLevel"](MAX_DIMENSION + 1, 1) is None  # ParseStream has rejected such a size before


def test_parse_stream_gives_the_level(tiny_model, spec):
    """ParseStream returns the level (spec §7.2); the code's header has it as ``level``."""
    _, model = tiny_model
    for width, height, level in ((37, 21, 1), (4112, 16, 2), (16, 16384, 3)):
        lat = latent_size(height, width)
        stream = encode_latents(np.zeros((model.m, *lat), np.int64), model, width, height, "reference")
        assert parse_stream(stream).level == level == spec["ParseStream"](stream)["level"]


def test_a_wide_picture_decodes_and_round_trips(tmp_path):
    """A picture wider than 4096 (level 2): decoded by both decoders alike, with the latents put in the right
    columns (a latent at latent column 256, sample columns 4096 .. 4111, changes the picture there only)."""
    data = level_model("factorized")
    path = tmp_path / "model.safetensors"
    path.write_bytes(data)
    model = load_model(data)
    width, height = 4112, 16
    y = np.zeros((model.m, 1, 257), np.int64)
    plain = encode_latents(y, model, width, height, "reference")
    y[:, 0, 256] = 9
    spot = encode_latents(y, model, width, height, "reference")
    a, b = decode(plain, [path], impl="reference"), decode(spot, [path], impl="reference")
    assert a.shape == (16, 4112, 3) and np.array_equal(b, decode(spot, [path], impl="fast"))
    changed = np.nonzero(np.any(a != b, axis=(0, 2)))[0]
    assert changed.size and changed.min() >= 4096 - 3 * 16


def test_spec_level_table_matches_the_levels():
    """The table of §7.3: each level's bounds, and the largest LatH · LatW and ZH · ZW its pictures have."""
    rows = re.findall(r"^\| (\d) \| (\d+) \| (\d+) \| 2\^(\d+) \(\d+ · \d+\) \| 2\^(\d+) \| 2\^(\d+) \|$", SPEC_7, re.M)
    assert len(rows) == len(LEVELS)
    for (level, width, height, area), row in zip(LEVELS, rows, strict=True):
        lat = latent_size(height, width)
        z = hyper_size(*lat)
        assert [int(v) for v in row] == [level, width, height, area.bit_length() - 1,
                                         (lat[0] * lat[1]).bit_length() - 1, (z[0] * z[1]).bit_length() - 1]


def test_spec_stream_length_figures():
    """§7.3: the largest valid stream (5,637,144,634 bytes; 1,426,063,427 at level 1), the sub-stream bound
    passing 2^32 - 1 from 209,716 positions on, and the 35 bits of its product at 16384 x 16384."""
    assert MAX_STREAM_BYTES == 43 + 4 + (8 + 40 * 512 * 256 * 256) + 4 + ((1 << 32) - 1) == 5_637_144_634
    assert largest_stream(2, 1, 4096, 4096) == 1_426_063_427
    assert f"{MAX_STREAM_BYTES:,}" in SPEC_7 and "1,426,063,427" in SPEC_7
    assert 8 + 40 * 512 * 209_715 <= (1 << 32) - 1 < 8 + 40 * 512 * 209_716
    assert (8 + 40 * 512 * (1 << 20)).bit_length() == 35


def test_spec_memory_table_matches_the_formula():
    """The informative table of §7.3: MiB a banded decoder holds at the bounds of each level (version 2, bands of
    16 rows) for N = M = 512 and for the shipped models (N = 64, M = 96), from ``banded_memory``."""
    rows = re.findall(r"^\| (\d) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \|$",
                      SPEC_7, re.M)
    assert len(rows) == len(LEVELS)
    for (level, width, height, _), row in zip(LEVELS, rows, strict=True):
        want = [str(level)]
        for n, m in ((512, 512), (64, 96)):
            for architecture in (0, 1, 2):  # the column "mean-scale, joint": the two need the same
                mib = sum(banded_memory(width, height, n, m, architecture).values()) / (1 << 20)
                want.append(f"{mib:.1f}")
            assert banded_memory(width, height, n, m, 2) == banded_memory(width, height, n, m, 3)
        assert list(row) == want


def test_banded_memory_terms():
    """The formula's terms at level 3 with N = M = 512: ŷ 1 GiB, params 2 GiB (mean-scale), ẑ and its gained copy
    128 MiB, the synthesis rows of a 16-row band 472 · N · LatW bytes plus the pixel rows and sums."""
    terms = banded_memory(16384, 16384, 512, 512, 2)
    assert terms["y_hat"] == 1 << 30 and terms["params"] == 2 << 30 and terms["z_hat"] == 128 << 20
    assert terms["synthesis_band"] == 472 * 512 * 1024 + 176 * 16 * 1024
    assert "params" in banded_memory(16, 16, 2, 2, 0) and banded_memory(16, 16, 2, 2, 0)["params"] == 0
    assert "z_hat" not in banded_memory(16, 16, 2, 2, 0)


def _header(width: int, height: int, y_data: bytes = (1 << 31).to_bytes(8, "little")) -> bytes:
    """A version-1 factorized stream of ``width`` x ``height`` whose y sub-stream is ``y_data``."""
    return (b"RCDC\x01\x00" + bytes(32) + width.to_bytes(2, "little") + height.to_bytes(2, "little")
            + len(y_data).to_bytes(4, "little") + y_data)


@pytest.mark.parametrize("width, height", [(MAX_DIMENSION + 1, 16), (16, MAX_DIMENSION + 1), (65535, 65535)])
def test_header_above_the_limit_is_refused_before_any_allocation(width, height):
    """A header above MAX_DIMENSION is a StreamError of §7.3 raised while the header is read: decoding it
    allocates nothing sized by the picture (a 65535 x 65535 picture would be 12 GiB, its latents far more)."""
    stream = _header(width, height)
    tracemalloc.start()
    try:
        with pytest.raises(StreamError) as e:
            decode(stream, impl="reference")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert e.value.clause == "7.3" and "outside 1..16384" in str(e.value)
    assert peak < 1 << 20


def test_edition_4_limit_no_longer_applies(tiny_model):
    """A height of 4097 was a StreamError of §7.3 in editions 1 to 4; in edition 5 the header is valid, and a
    stream whose y sub-stream cannot hold the latents of 4097 rows fails in its y sub-stream instead."""
    path, model = tiny_model
    stream = encode_latents(np.zeros((model.m, 1, 1), np.int64), model, 16, 16, "reference")
    taller = stream[:40] + (4097).to_bytes(2, "little") + stream[42:]
    assert parse_stream(taller).level == 2
    with pytest.raises(StreamError) as e:
        decode(taller, [path], impl="reference")
    assert e.value.clause.startswith("3.")
