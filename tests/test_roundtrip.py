"""Image round trips with the shipped model (spec §8, Annex A).

decode(encode(x)) equals the encoder's own integer reconstruction, byte for
byte, for every size from 1x1 up; the reference and fast paths agree; the
output does not depend on the number of threads or on the JIT.
"""

import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

import refcodec
from refcodec.decoder.errors import InputError
from refcodec.decoder.model import shipped_model_paths


def _image(seed, w, h):
    """A smooth random picture (noise would be an untypically hard input)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(max(1, h // 8), max(1, w // 8), 3), dtype=np.uint8)
    img = Image.fromarray(small).resize((w, h), Image.BILINEAR)
    return np.asarray(img)


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 300), st.integers(1, 300))
def test_round_trip_fast(seed, w, h):
    pixels = _image(seed, w, h)
    stream, recon = refcodec.encode(pixels, return_reconstruction=True)
    assert recon.shape == (h, w, 3) and recon.dtype == np.uint8
    assert np.array_equal(refcodec.decode(stream), recon)


SHIPPED = sorted(shipped_model_paths())


@pytest.mark.parametrize("model", SHIPPED)
@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), w=st.integers(1, 200), h=st.integers(1, 200))
def test_round_trip_every_shipped_model(model, seed, w, h):
    """Every architecture: sizes from 1x1, most not multiples of 16 or 64."""
    pixels = _image(seed, w, h)
    stream, recon = refcodec.encode(pixels, model=model, return_reconstruction=True)
    assert np.array_equal(refcodec.decode(stream), recon)


@pytest.mark.parametrize("model", SHIPPED)
@settings(max_examples=4, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), w=st.integers(1, 100), h=st.integers(1, 100))
def test_reference_and_fast_identical(model, seed, w, h):
    pixels = _image(seed, w, h)
    fast_stream, recon = refcodec.encode(pixels, model=model, return_reconstruction=True)
    ref_stream, ref_recon = refcodec.encode(pixels, model=model, impl="reference", return_reconstruction=True)
    assert fast_stream == ref_stream
    assert np.array_equal(ref_recon, recon)
    assert np.array_equal(refcodec.decode(fast_stream, impl="reference"), recon)


@pytest.mark.parametrize("w, h", [(1, 1), (1, 17), (17, 1), (16, 16), (33, 2)])
def test_edge_sizes(w, h):
    pixels = _image(w * 100 + h, w, h)
    stream, recon = refcodec.encode(pixels, return_reconstruction=True)
    assert np.array_equal(refcodec.decode(stream, impl="reference"), recon)


@pytest.mark.parametrize("model", SHIPPED)
def test_quality_is_sane(model):
    """Every shipped model codes its sample photo far better than noise (guards against a broken export)."""
    from refcodec.image import psnr

    path = os.path.join(os.path.dirname(refcodec.__file__), "data", "sample.png")
    stream, recon = refcodec.encode(path, model=model, return_reconstruction=True)
    original = np.asarray(Image.open(path).convert("RGB"))
    assert psnr(original, recon) > 22 and 8 * len(stream) / original[:, :, 0].size < 3


def test_grayscale_accepted_alpha_refused(tmp_path):
    gray = Image.fromarray(_image(1, 40, 30)[:, :, 0], "L")
    _, recon = refcodec.encode(gray, return_reconstruction=True)
    assert recon.shape == (30, 40, 3)
    rgba = Image.fromarray(_image(1, 40, 30)).convert("RGBA")
    with pytest.raises(InputError, match="alpha"):
        refcodec.encode(rgba)
    rgba.save(tmp_path / "a.png")
    with pytest.raises(InputError, match="alpha"):
        refcodec.encode(tmp_path / "a.png")
    with pytest.raises(InputError):
        refcodec.encode(np.zeros((5, 5, 3), np.float32))


DIGEST_SCRIPT = """
import hashlib, sys, numpy as np, refcodec
from PIL import Image
img = np.asarray(Image.fromarray(np.random.default_rng(7).integers(0, 256, (6, 5, 3), dtype=np.uint8)).resize((50, 40)))
s = refcodec.encode(img)
print(hashlib.sha256(s + refcodec.decode(s).tobytes()).hexdigest())
"""


@pytest.mark.parametrize("env", [
    {"OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2", "MKL_NUM_THREADS": "2", "NUMBA_NUM_THREADS": "2"},
    {"NUMBA_DISABLE_JIT": "1"},
], ids=["two-threads", "jit-off"])
def test_output_independent_of_threads_and_jit(env):
    """The same stream and pixels with one thread, two threads, and the JIT switched off."""
    one = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}
    digests = set()
    for extra in (one, env):
        out = subprocess.run([sys.executable, "-c", DIGEST_SCRIPT], env=dict(os.environ, **extra),
                             capture_output=True, text=True, check=True)
        digests.add(out.stdout.strip())
    assert len(digests) == 1
