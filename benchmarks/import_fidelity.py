"""Fidelity of imported CompressAI models: refcodec's integer decoder against CompressAI's own float codec.

For each CompressAI checkpoint (default: the four small models of tests/data/compressai, trained with
CompressAI by training/compressai/train.py), on the Kodak images:

1. CompressAI: ``net.compress(x)`` then ``net.decompress(...)`` of the checkpoint itself (float, its own
   entropy coder); bpp from the bytes of its strings, PSNR of the decompressed picture rounded to 8 bits.
2. refcodec: ``refcodec import compressai`` of the same checkpoint (refcodec.encoder.compressai.import_model,
   calibrated on --calibrate DIR or on synthetic pictures), then ``refcodec.encode`` and the integer decoder;
   bpp from the stream's bytes (its header included), PSNR of the decoded picture.

Targets (issue 12): PSNR within 0.05 dB and bpp within 1 % for every architecture.

    python benchmarks/import_fidelity.py [--kodak DIR] [--limit N] [--calibrate DIR] [CHECKPOINT:ARCH ...]

Needs torch and CompressAI (``pip install --no-deps compressai==1.2.8 scipy``), loaded as
benchmarks/decode_speed.py loads it. Kodak images are 768x512 or 512x768: multiples of 64, so neither
side pads. Never run by the test suite.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from decode_speed import import_compressai_google

import refcodec
from refcodec.encoder.compressai import ARCHITECTURES, import_model, read_state_dict

CLASSES = {"bmshj2018-factorized": "FactorizedPrior", "bmshj2018-hyperprior": "ScaleHyperprior",
           "mbt2018-mean": "MeanScaleHyperprior", "mbt2018": "JointAutoregressiveHierarchicalPriors"}
TEST_CHECKPOINTS = REPO / "tests" / "data" / "compressai"


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * math.log10(255**2 / mse) if mse else math.inf


def compressai_net(google, checkpoint: Path, zoo: str):
    """The checkpoint as CompressAI's own model (its entropy tables updated as CompressAI's eval does)."""
    import torch

    state = {k: torch.from_numpy(np.asarray(v)) for k, v in read_state_dict(checkpoint).items()}
    net = getattr(google, CLASSES[zoo]).from_state_dict(state).eval()
    net.update(force=False)
    return net


def run_compressai(net, pixels: np.ndarray) -> tuple:
    """(bpp, PSNR, seconds) of CompressAI's compress + decompress of one picture."""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1))).float().div(255.0)[None]
    t = time.perf_counter()
    with torch.no_grad():
        enc = net.compress(x)
        out = net.decompress(enc["strings"], enc["shape"])["x_hat"]
    seconds = time.perf_counter() - t
    n_bytes = sum(len(s) for strings in enc["strings"] for s in strings)
    rec = (out[0].clamp(0, 1).mul(255).round().byte().numpy().transpose(1, 2, 0))
    return 8 * n_bytes / (pixels.shape[0] * pixels.shape[1]), psnr(pixels, rec), seconds


def run_refcodec(model_file: Path, pixels: np.ndarray) -> tuple:
    """(bpp, PSNR, seconds) of refcodec's encode + integer decode of one picture."""
    t = time.perf_counter()
    stream = refcodec.encode(pixels, model=str(model_file))
    rec = refcodec.decode(stream, [model_file])
    seconds = time.perf_counter() - t
    return 8 * len(stream) / (pixels.shape[0] * pixels.shape[1]), psnr(pixels, rec), seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoints", nargs="*", help="CHECKPOINT:ARCH pairs (default: tests/data/compressai/*)")
    ap.add_argument("--kodak", type=Path, default=REPO.parent / "shared" / "data" / "kodak")
    ap.add_argument("--limit", type=int, default=24)
    ap.add_argument("--calibrate", type=Path, help="calibration photos for the import (default: synthetic)")
    ap.add_argument("--json", type=Path, default=REPO / "benchmarks" / "import_fidelity.json")
    args = ap.parse_args()
    pairs = [tuple(c.rsplit(":", 1)) for c in args.checkpoints] or \
        [(str(TEST_CHECKPOINTS / f"{zoo}.pth.tar"), zoo) for zoo in ARCHITECTURES]
    google, how = import_compressai_google()
    images = sorted(args.kodak.glob("*.png"))[: args.limit]
    if not images:
        raise SystemExit(f"no Kodak images in {args.kodak}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for checkpoint, zoo in pairs:
            model_file = Path(tmp) / f"{zoo}.safetensors"
            model_file.write_bytes(import_model(Path(checkpoint), zoo, args.calibrate))
            net = compressai_net(google, Path(checkpoint), zoo)
            per_image = []
            for path in images:
                pixels = np.asarray(Image.open(path).convert("RGB"))
                per_image.append((*run_compressai(net, pixels), *run_refcodec(model_file, pixels)))
            a = np.array(per_image)
            row = {"architecture": zoo, "checkpoint": str(checkpoint), "images": len(images),
                   "compressai_bpp": a[:, 0].mean(), "compressai_psnr": a[:, 1].mean(),
                   "refcodec_bpp": a[:, 3].mean(), "refcodec_psnr": a[:, 4].mean(),
                   "compressai_seconds": a[:, 2].sum(), "refcodec_seconds": a[:, 5].sum(),
                   "max_image_psnr_gap": float(np.abs(a[:, 4] - a[:, 1]).max())}
            row["bpp_ratio"] = row["refcodec_bpp"] / row["compressai_bpp"]
            row["psnr_gap"] = row["refcodec_psnr"] - row["compressai_psnr"]
            row["meets_targets"] = bool(abs(row["psnr_gap"]) <= 0.05 and abs(row["bpp_ratio"] - 1) <= 0.01)
            rows.append(row)
            print(json.dumps(row), flush=True)
    print("\n| architecture | CompressAI bpp / dB | refcodec bpp / dB | bpp ratio | PSNR gap (dB) | targets |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['architecture']} | {r['compressai_bpp']:.4f} / {r['compressai_psnr']:.3f} | "
              f"{r['refcodec_bpp']:.4f} / {r['refcodec_psnr']:.3f} | {r['bpp_ratio']:.4f} | {r['psnr_gap']:+.3f} | "
              f"{'met' if r['meets_targets'] else 'MISSED'} |")
    args.json.write_text(json.dumps({"compressai_import": how, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
