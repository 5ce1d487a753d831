"""The spec's own pseudocode, run as a decoder (spec §2.1), against refcodec's decoders.

The executable blocks of spec/*.md form a complete decoder (DecodeStream,
spec §8.6). On random small models and random latents it must produce the
same pixels as the reference decoder, and reject the same broken streams
with the same error class. This is what keeps the spec and the code from
drifting apart.
"""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from refcodec import decode
from refcodec.conformance.models import random_model, with_edition5
from refcodec.decoder.errors import RefcodecError
from refcodec.decoder.model import load_model
from refcodec.encoder.encode import encode_latents


def _spec_result(spec, stream, files):
    try:
        return np.array(spec["DecodeStream"](stream, files), dtype=np.uint8)
    except spec["ConformanceError"] as e:
        return e.error_class


def _ours(stream, path, impl):
    try:
        return decode(stream, [path], impl=impl)
    except RefcodecError as e:
        return type(e).__name__


def _same(a, b):
    return a == b if isinstance(a, str) or isinstance(b, str) else np.array_equal(a, b)


@settings(max_examples=24, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 3), st.integers(1, 3), st.integers(1, 80), st.integers(1, 80),
       st.booleans(), st.sampled_from(["factorized", "hyperprior", "mean-scale", "joint"]))
def test_spec_decoder_matches_reference(tmp_path_factory, seed, n, m, width, height, stress, architecture):
    from conftest import spec_namespace

    spec = spec_namespace()
    rng = np.random.default_rng(seed)
    data = random_model(rng, n, m, stress=stress, architecture=architecture,
                        mean_shift=[None, 0, 1, 4, 8][int(rng.integers(5))])
    if rng.random() < 0.4:  # edition 5: a leaky slope and medians (spec §5.6, §6.3, §8.3)
        data = with_edition5(data, rng, shift=int(rng.choice([0, 1, 4, 8])))
    path = tmp_path_factory.mktemp("m") / "model.safetensors"
    path.write_bytes(data)
    model = load_model(data)
    lat = ((height + 15) // 16, (width + 15) // 16)
    y = rng.integers(-60, 60, size=(m, *lat))
    if rng.random() < 0.5:
        y.flat[rng.integers(y.size)] = rng.choice([-32768, 32767])
    z = None if architecture == "factorized" else rng.integers(-60, 60, size=(n, (lat[0] + 3) // 4, (lat[1] + 3) // 4))
    stream = encode_latents(y, model, width, height, impl="reference", z_hat=z)
    want = _spec_result(spec, stream, [data])
    assert isinstance(want, np.ndarray) and want.shape == (height, width, 3)
    for impl in ("reference", "fast"):
        assert np.array_equal(_ours(stream, path, impl), want)
    # one random corruption: both agree on pixels or on the error class
    broken = bytearray(stream)
    broken[rng.integers(38, len(broken))] ^= 1 << int(rng.integers(8))
    assert _same(_spec_result(spec, bytes(broken), [data]), _ours(bytes(broken), path, "reference"))
    assert _same(_spec_result(spec, stream[:-4], [data]), "StreamError")
