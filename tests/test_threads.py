"""Thread safety of impl="fast" under every Numba threading layer (issue 15; refcodec/fast/threads.py).

For each of Numba's threading layers (workqueue, omp, tbb) a subprocess is forced onto it with
NUMBA_THREADING_LAYER and decodes, from a ThreadPoolExecutor of 4 threads, the same stream many times
and different streams (every architecture, pictures large enough for the parallel kernels to split
work) at once, on the integer-SIMD path and on the float64 path; every output must equal the serial
decode, which must equal the reference decoder's. Before refcodec.fast.threads the workqueue layer
aborted the process ("Concurrent access has been detected"). A layer that cannot be loaded here (no
TBB, no OpenMP runtime) is skipped with a reason naming it. The three subprocesses run at once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("workqueue", "omp", "tbb")
UNAVAILABLE = 3  # the subprocess's exit status when its layer cannot be loaded

SCRIPT = textwrap.dedent("""
    import json, sys, tempfile
    from concurrent.futures import ThreadPoolExecutor
    from pathlib import Path

    import numba
    import numpy as np

    import refcodec.fast.layers as fast_layers
    from refcodec.conformance.models import bound_model, random_model
    from refcodec.decoder.decoding import decode_stream
    from refcodec.decoder.model import model_from_bytes
    from refcodec.encoder.encode import encode_latents
    from refcodec.fast import threads

    folder = Path(tempfile.mkdtemp())
    rng = np.random.default_rng(15)
    cases = []
    for i, arch in enumerate(("factorized", "hyperprior", "mean-scale", "joint")):
        data = bound_model(arch, 3, 4) if i % 2 else random_model(rng, 4, 3, architecture=arch,
                                                                  levels=None if arch == "factorized" else 4)
        path = folder / f"{arch}.safetensors"
        path.write_bytes(data)
        model = model_from_bytes(data)
        width, height = 96 + 16 * i, 80
        lat = ((height + 15) // 16, (width + 15) // 16)
        y = rng.integers(-3, 4, size=(model.m, *lat))
        z = None if arch == "factorized" else rng.integers(-2, 3, size=(model.n, (lat[0] + 3) // 4, (lat[1] + 3) // 4))
        cases.append((encode_latents(y, model, width, height, impl="reference", z_hat=z), [path]))

    try:
        serial = [decode_stream(s, p, "fast").tobytes() for s, p in cases]
    except ValueError as e:  # "No threading layer could be loaded." and the like
        print(json.dumps({"unavailable": str(e).splitlines()[0]}))
        sys.exit(3)
    reference = [decode_stream(s, p, "reference").tobytes() for s, p in cases]
    assert serial == reference, "serial fast decoding differs from the reference decoder"
    report = {"layer": numba.threading_layer(), **threads.status()}
    with ThreadPoolExecutor(4) as pool:
        for simd in (fast_layers.INTEGER_SIMD, False):
            fast_layers.INTEGER_SIMD = simd
            for _ in range(3):
                same = list(pool.map(lambda c: decode_stream(c[0], c[1], "fast").tobytes(), [cases[3]] * 8))
                assert same == [serial[3]] * 8, "the same stream from 4 threads differs from serial decoding"
                mixed = list(pool.map(lambda c: decode_stream(c[0], c[1], "fast").tobytes(), cases * 3))
                assert mixed == serial * 3, "different streams from 4 threads differ from serial decoding"
    print(json.dumps(report))
""")


@pytest.fixture(scope="module")
def runs() -> dict:
    """layer -> (exit status, stdout, stderr) of the script forced onto that layer; all three run at once."""
    procs = {}
    for layer in LAYERS:
        env = {**os.environ, "NUMBA_THREADING_LAYER": layer, "PYTHONPATH": str(ROOT)}
        procs[layer] = subprocess.Popen([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, text=True,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = {}
    for layer, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=600)
        out[layer] = (proc.returncode, stdout, stderr)
    return out


@pytest.mark.parametrize("layer", LAYERS)
def test_threads_decode_as_serial(runs, layer):
    status, stdout, stderr = runs[layer]
    lines = stdout.strip().splitlines()
    if status == UNAVAILABLE:
        pytest.skip(f"Numba threading layer {layer!r} is not installed here: {json.loads(lines[-1])['unavailable']}")
    assert status == 0, f"{layer}: exit status {status}\n{stderr[-3000:]}"
    report = json.loads(lines[-1])
    assert report["layer"] == layer
    assert report["serialised"] == (layer == "workqueue")


def test_lock_taken_only_where_needed():
    """refcodec.fast.threads: the implementation table runs its layers; a thread-safe layer is not locked."""
    from refcodec.decoder.decoding import kernels
    from refcodec.fast import threads

    assert kernels("fast").layers is threads
    assert {"tbb", "omp"} == threads.THREAD_SAFE_LAYERS
