"""Stream compatibility with CompressAI's rANS coder and CDF quantiser (spec §3.8, Annex A.2).

CompressAI's extension modules are loaded straight from their files: importing the
``compressai`` package would need torch. Skipped when CompressAI is not installed, unless
REFCODEC_REQUIRE_COMPRESSAI=1 (CI), which turns the skip into a failure.

Kept inside CompressAI's working domain. Its encoder: rows with cdf_length >= 3, raw escapes
below 2^28, and streams of at most one word per coded symbol (table symbols plus bypass
nibbles) -- its output buffer has that size and it writes past its start otherwise, which
always happens for 0 or 1 values. Its decoder: raw escapes below 2^31.
"""

import importlib.machinery
import importlib.metadata
import importlib.util
import os

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from test_rans import random_table, random_values

from refcodec.decoder import rans
from refcodec.encoder import rans as rans_encoder
from refcodec.encoder.cdf import quantize_pmf
from refcodec.fast import rans as fast_rans


def load_extension(name: str):
    """compressai.<name> from its shared library; skip if absent (fail if REFCODEC_REQUIRE_COMPRESSAI=1)."""
    try:
        package = importlib.metadata.distribution("compressai").locate_file("compressai")
        path = next(package / (name + suffix) for suffix in importlib.machinery.EXTENSION_SUFFIXES
                    if (package / (name + suffix)).exists())
    except (importlib.metadata.PackageNotFoundError, StopIteration):
        if os.environ.get("REFCODEC_REQUIRE_COMPRESSAI") == "1":
            pytest.fail(f"compressai.{name} not found but REFCODEC_REQUIRE_COMPRESSAI=1")
        pytest.skip(f"compressai.{name} not installed")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def ans():
    return load_extension("ans")


@pytest.fixture(scope="module")
def cxx():
    return load_extension("_CXX")


def table_lists(table):
    return table.cdf.tolist(), table.cdf_length.tolist(), table.offset.tolist()


def coded_symbols(values, idx, table):
    """Table symbols plus bypass nibbles the encoder codes: the size of CompressAI's word buffer."""
    v = values - table.offset[idx]
    max_value = table.cdf_length[idx].astype(np.int64) - 2
    raw = np.where(v < 0, -2 * v - 1, 2 * (v - max_value))
    nibbles = [(int(r).bit_length() + 3) // 4 for r in raw]
    return v.size + sum(1 + n for n, e in zip(nibbles, (v < 0) | (v >= max_value), strict=True) if e)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), rows=st.integers(1, 4), count=st.integers(0, 200))
def test_compressai_decodes_our_streams(ans, seed, rows, count):
    rng = np.random.default_rng(seed)
    table = random_table(rng, rows)
    values, idx = random_values(rng, table, count, raw_limit=1 << 31, escapes=0.3)
    data = rans_encoder.encode_values(values, idx, table)
    decoded = ans.RansDecoder().decode_with_indexes(data, idx.tolist(), *table_lists(table))
    assert decoded == values.tolist()


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), rows=st.integers(1, 4), count=st.integers(2, 200))
def test_compressai_streams_are_ours(ans, seed, rows, count):
    rng = np.random.default_rng(seed)
    table = random_table(rng, rows, min_length=3)
    values, idx = random_values(rng, table, count, raw_limit=1 << 28, escapes=0.3)
    ours = rans_encoder.encode_values(values, idx, table)
    assume(len(ours) // 4 <= coded_symbols(values, idx, table))
    data = ans.RansEncoder().encode_with_indexes(values.tolist(), idx.tolist(), *table_lists(table))
    assert ours == data
    assert fast_rans.encode_values(values, idx, table) == data
    assert rans.decode_values(data, idx, table).tolist() == values.tolist()
    assert fast_rans.decode_values(data, idx, table).tolist() == values.tolist()


@settings(max_examples=100, deadline=None)
@given(pmf=st.lists(st.one_of(st.just(0.0), st.floats(0, 1, width=32), st.floats(0, 2.0**-20, width=32)),
                    min_size=0, max_size=300),
       tail=st.one_of(st.just(0.0), st.floats(0, 2.0**-20, width=32), st.floats(0, 1, width=32)))
def test_quantiser_matches_compressai(cxx, pmf, tail):
    """pmf_to_quantized_cdf on float32 input (exact in float64 too) gives our rows, or both refuse."""
    p = np.asarray(pmf, dtype=np.float64)
    try:
        ours = quantize_pmf(p, tail).tolist()
    except ValueError:
        with pytest.raises(ValueError):
            cxx.pmf_to_quantized_cdf(p.tolist() + [tail], 16)
        return
    assert cxx.pmf_to_quantized_cdf(p.tolist() + [tail], 16) == ours


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), architecture=st.sampled_from(["hyperprior", "mean-scale", "joint"]))
def test_compressai_decodes_our_hyperprior_sub_streams(ans, seed, architecture):
    """CompressAI's decoder, given our tables and the table rows our decoder selects (spec §8.8),
    reads our z sub-stream back as z_hat and our y sub-stream as y_hat minus the means."""
    from refcodec.conformance.models import random_model
    from refcodec.decoder.bitstream import parse_stream
    from refcodec.decoder.latents import channel_rows
    from refcodec.decoder.model import load_model
    from refcodec.encoder.encode import encode_latents, y_symbols

    rng = np.random.default_rng(seed)
    model = load_model(random_model(rng, 3, 4, architecture=architecture, levels=int(rng.integers(2, 7))))
    y = rng.integers(-300, 300, size=(4, 3, 5))
    z = rng.integers(-300, 300, size=(3, 1, 2))
    header = parse_stream(encode_latents(y, model, 80, 48, z_hat=z))
    z_rows = channel_rows(*z.shape)
    assert ans.RansDecoder().decode_with_indexes(header.z_data, z_rows.tolist(),
                                                  *table_lists(model.z_table)) == z.reshape(-1).tolist()
    _, values, rows = y_symbols(y, model, z, "reference")
    assert ans.RansDecoder().decode_with_indexes(header.y_data, rows.tolist(),
                                                  *table_lists(model.y_table)) == values.tolist()
