"""Shared test fixtures.

``spec`` executes every ```python block of spec/*.md, in file order, in one
namespace (spec §2.1) and hands that namespace to tests, which compare the
spec's own pseudocode with the decoder's functions.
"""

import functools
import re
from pathlib import Path

import pytest

SPEC_DIR = Path(__file__).resolve().parent.parent / "spec"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def spec_blocks():
    """(file name, code) for every executable block, in execution order."""
    for path in sorted(SPEC_DIR.glob("*.md")):
        for code in BLOCK.findall(path.read_text(encoding="utf-8")):
            yield path.name, code


@functools.cache
def spec_namespace() -> dict:
    ns: dict = {"__name__": "refcodec_spec"}
    for name, code in spec_blocks():
        exec(compile(code, f"spec/{name}", "exec"), ns)
    return ns


@pytest.fixture(scope="session")
def spec() -> dict:
    return spec_namespace()


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """(path, Model) of a small random integer model (N=4, M=3), no encoder tensors."""
    import numpy as np

    from refcodec.conformance.models import random_model
    from refcodec.decoder.model import load_model

    data = random_model(np.random.default_rng(1), 4, 3)
    path = tmp_path_factory.mktemp("models") / "tiny.safetensors"
    path.write_bytes(data)
    return path, load_model(data)


@pytest.fixture(scope="session")
def tiny_stream(tiny_model):
    """A valid 37x21 stream for ``tiny_model`` with latents that include escapes."""
    import numpy as np

    from refcodec.encoder.encode import encode_latents

    _, model = tiny_model
    y = np.random.default_rng(2).integers(-40, 40, size=(model.m, 2, 3))
    y[0, 0, 0], y[1, 0, 0] = 30000, -30000
    return encode_latents(y, model, 37, 21, impl="reference")
