"""Train small CompressAI models of its four classic classes, with CompressAI itself.

These checkpoints are what ``refcodec import compressai`` is tested with (tests/data/compressai/):
real CompressAI state dicts, saved as its training example saves them (``{"state_dict": ...}``
after ``net.update()``, so with the entropy models' quantised CDF buffers), from a recipe that
follows CompressAI's ``examples/train.py``: loss λ·255²·MSE + bpp, Adam on every parameter but
the quantiles, a second Adam on the auxiliary loss, gradients clipped at norm 1.

    python training/compressai/train.py --out tests/data/compressai --iters 4000

Needs torch and CompressAI (``pip install torch==2.13.0 && pip install --no-deps compressai==1.2.8
scipy``); never run by the test suite.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
from decode_speed import import_compressai_google  # noqa: E402

from refcodec.encoder.train import batch, load_crops  # noqa: E402

CLASSES = {  # CompressAI zoo name -> class in compressai.models.google
    "bmshj2018-factorized": "FactorizedPrior",
    "bmshj2018-hyperprior": "ScaleHyperprior",
    "mbt2018-mean": "MeanScaleHyperprior",
    "mbt2018": "JointAutoregressiveHierarchicalPriors",
}


def train(google, zoo_name: str, args) -> dict:
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    net = getattr(google, CLASSES[zoo_name])(args.N, args.M)
    params = [p for n, p in net.named_parameters() if not n.endswith(".quantiles")]
    aux_params = [p for n, p in net.named_parameters() if n.endswith(".quantiles")]
    opt = torch.optim.Adam(params, lr=args.lr)
    aux_opt = torch.optim.Adam(aux_params, lr=1e-3)
    data = load_crops(args.data)
    t0 = time.time()
    for it in range(args.iters):
        lr = args.lr if it < args.iters // 2 else args.lr * 0.5 * (1 + math.cos(math.pi * (2 * it / args.iters - 1)))
        for g in opt.param_groups:
            g["lr"] = lr
        x = batch(data, 8, 128, gen)
        out = net(x)
        bpp = sum(-torch.log2(lik).sum() for lik in out["likelihoods"].values()) / (x.shape[0] * 128 * 128)
        mse = torch.mean((out["x_hat"] - x) ** 2)
        loss = args.lmbda * 255**2 * mse + bpp
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        aux = net.aux_loss()
        aux_opt.zero_grad()
        aux.backward()
        aux_opt.step()
        if (it + 1) % 500 == 0:
            print(f"{zoo_name} it {it + 1} loss {loss.item():.3f} bpp {bpp.item():.3f} "
                  f"psnr {10 * math.log10(1 / mse.item()):.2f} aux {aux.item():.1f}", flush=True)
    net.update(force=True)
    path = args.out / f"{zoo_name}.pth.tar"
    torch.save({"state_dict": net.state_dict()}, path)
    return {"zoo_name": zoo_name, "class": CLASSES[zoo_name], "N": args.N, "M": args.M, "lambda": args.lmbda,
            "iterations": args.iters, "batch": "8 x 128^2", "lr": args.lr, "seed": args.seed,
            "data": str(args.data), "threads": args.threads, "wall_seconds": round(time.time() - t0),
            "file": path.name, "bytes": path.stat().st_size}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "tests" / "data" / "compressai")
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "train")
    ap.add_argument("--arch", nargs="*", default=list(CLASSES), choices=list(CLASSES))
    ap.add_argument("--N", type=int, default=16)
    ap.add_argument("--M", type=int, default=24)
    ap.add_argument("--lmbda", type=float, default=0.013)
    ap.add_argument("--iters", type=int, default=4000)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    google, how = import_compressai_google()
    record_path = args.out / "training.json"
    records = json.loads(record_path.read_text()) if record_path.exists() else {}
    for zoo_name in args.arch:
        records[zoo_name] = train(google, zoo_name, args) | {"compressai_import": how, "torch": torch.__version__}
        record_path.write_text(json.dumps(records, indent=1) + "\n")
        print(json.dumps(records[zoo_name]), flush=True)


if __name__ == "__main__":
    main()
