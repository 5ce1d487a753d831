"""Memory of a process that decodes with many different model files (one stream per model).

    python benchmarks/model_churn.py                  # 1,000 models of about 2 MiB, ~4 min on 2 cores
    python benchmarks/model_churn.py --models 40 --n 64 --m 96

Each model is a random valid hyperprior-family model (refcodec.conformance.models.random_model) written
to a temporary file; a small stream naming it is decoded with ``refcodec.decode(stream, [path])`` on the
fast path, so the model is loaded, checked and its kernel layouts packed. The resident set size (RSS,
/proc/self/status) is printed every ``--every`` models: refcodec keeps at most a few loaded models (an
LRU, refcodec.decoder.model), so it stays flat however many model files a process sees.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import refcodec
from refcodec.conformance.models import random_model
from refcodec.decoder.model import model_from_bytes
from refcodec.encoder.encode import encode_latents


def rss_mib() -> float:
    """The resident set size of this process in MiB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=int, default=1000)
    ap.add_argument("--n", type=int, default=64, help="N of the random models")
    ap.add_argument("--m", type=int, default=96, help="M of the random models")
    ap.add_argument("--architecture", default="mean-scale")
    ap.add_argument("--every", type=int, default=100)
    args = ap.parse_args(argv)
    start, t0 = rss_mib(), time.perf_counter()
    print(f"start: RSS {start:.0f} MiB", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(1, args.models + 1):
            data = random_model(np.random.default_rng(i), args.n, args.m, architecture=args.architecture, levels=8)
            path = Path(tmp) / "model.safetensors"  # each model replaces the last: the disk stays small
            path.write_bytes(data)
            model = model_from_bytes(data)
            y = np.zeros((args.m, 2, 3), np.int64)
            stream = encode_latents(y, model, 48, 32, z_hat=np.zeros((args.n, 1, 1), np.int64))
            refcodec.decode(stream, [path])
            if i % args.every == 0 or i == args.models:
                print(f"{i} models ({len(data) / 2**20:.1f} MiB each): RSS {rss_mib():.0f} MiB, "
                      f"{time.perf_counter() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
