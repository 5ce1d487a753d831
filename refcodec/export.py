"""Export a float model to an integer model file (informative, Annex A.1.5).

    python -m refcodec.export training/factorized.safetensors refcodec/models/factorized.safetensors \
        --calibration ../shared/data/train

NumPy only (no torch): reads the half-precision training checkpoint written by
refcodec.train, calibrates activation ranges on a few images, and writes the
integer synthesis, the quantised CDF tables (spec §4), the float analysis
weights (for the encoder) and the float synthesis (the integer model's float
twin, for evaluation) in the model-file layout of spec §6. Float is used
freely here; the decoder only ever sees the integers this writes.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

from . import floatnet
from .cdf import build_table
from .encoder import pad_to_stride
from .image import to_rgb_array, write_atomic
from .model import ACC_BOUND, ACT_ABS_MAX, MAX_SHIFT, NORM_BOUND, parse_safetensors, save_safetensors

HEADROOM_BITS = 2  # calibrated maximum maps to 2^(15 - HEADROOM_BITS)
MAX_TABLE_SYMBOLS = 2000  # cap on a CDF row's symbol range (spec §4 allows up to 4094)
PEDESTAL = 2.0**-36  # GDN reparametrisation (refcodec.train.NonNegative)


# ---------------------------------------------------------------------------
# Float parameters from a training checkpoint


def _nonneg(p: np.ndarray, minimum: float) -> np.ndarray:
    return np.maximum(p, math.sqrt(minimum + PEDESTAL)) ** 2 - PEDESTAL


def float_params(checkpoint: bytes) -> tuple[dict, dict]:
    """(float64 parameters named as in floatnet, checkpoint metadata) from refcodec.train's file."""
    meta, t = parse_safetensors(checkpoint)
    t = {k: v.astype(np.float64) for k, v in t.items()}
    p = {}
    for src, dst in (("g_a", "analysis"), ("g_s", "synthesis")):
        for k in range(7):
            if k % 2 == 0:
                p[f"{dst}.{k}.weight"], p[f"{dst}.{k}.bias"] = t[f"{src}.{k}.weight"], t[f"{src}.{k}.bias"]
            else:
                p[f"{dst}.{k}.beta"] = _nonneg(t[f"{src}.{k}.beta.p"], 1e-6)
                p[f"{dst}.{k}.gamma"] = _nonneg(t[f"{src}.{k}.gamma.p"], 0.0)
    for k, v in t.items():
        if k.startswith("density."):
            p[k] = v
    return p, {k: json.loads(v) for k, v in meta.items()}


# ---------------------------------------------------------------------------
# Entropy tables from the factorized density (Ballé et al. 2018)


def _softplus(x):
    return np.logaddexp(0.0, x)


def _logits_cdf(p: dict, x: np.ndarray) -> np.ndarray:
    """Cumulative logits of the per-channel density at x (C, 1, K)."""
    depth = sum(1 for k in p if k.startswith("density.matrices."))
    for i in range(depth):
        x = _softplus(p[f"density.matrices.{i}"]) @ x + p[f"density.biases.{i}"]
        if i < depth - 1:
            x = x + np.tanh(p[f"density.factors.{i}"]) * np.tanh(x)
    return x


def _sigmoid(x):
    return 0.5 * (1 + np.tanh(0.5 * x))


def density_tables(p: dict):
    """Quantised CDF table per channel over [floor(q_low), ceil(q_high)] plus escape (spec §4, Annex A.2)."""
    q = p["density.quantiles"]  # (C, 1, 3)
    lo = np.floor(q[:, 0, 0]).astype(np.int64)
    hi = np.ceil(q[:, 0, 2]).astype(np.int64)
    mid = np.rint(q[:, 0, 1]).astype(np.int64)
    half = MAX_TABLE_SYMBOLS // 2
    lo, hi = np.maximum(lo, mid - half), np.minimum(np.maximum(hi, lo), mid + half)
    v = np.arange(lo.min(), hi.max() + 1, dtype=np.float64)
    grid = np.broadcast_to(v, (q.shape[0], 1, v.size))
    lower, upper = _logits_cdf(p, grid - 0.5)[:, 0], _logits_cdf(p, grid + 0.5)[:, 0]
    sign = -np.sign(lower + upper)
    pmf = np.abs(_sigmoid(sign * upper) - _sigmoid(sign * lower))
    first, last = lo - lo.min(), hi - lo.min()
    pmfs = [pmf[c, first[c] : last[c] + 1] for c in range(q.shape[0])]
    tails = [_sigmoid(lower[c, first[c]]) + _sigmoid(-upper[c, last[c]]) for c in range(q.shape[0])]
    return build_table(pmfs, tails, lo)


# ---------------------------------------------------------------------------
# Integer synthesis from float synthesis + calibration


def calibrate(p: dict, images: list) -> list:
    """Per layer, per channel: the largest |activation| of the float synthesis on ``images``."""
    maxima = None
    for img in images:
        x = pad_to_stride(to_rgb_array(img)).transpose(2, 0, 1).astype(np.float32) / 255.0
        y_hat = np.rint(floatnet.analysis(x, {k: v.astype(np.float32) for k, v in p.items()}))
        trace: list = []
        floatnet.synthesis(y_hat.astype(np.float64), p, trace)
        m = [np.abs(a).reshape(a.shape[0], -1).max(axis=1) for a in trace]
        maxima = m if maxima is None else [np.maximum(a, b) for a, b in zip(maxima, m)]
    return [np.maximum(m, 1e-3) for m in maxima]


def _deconv(w, b, s_in, s_out):
    """Integer weight/bias/shift for real weights w (Cin, Cout, 5, 5): q_out = Round2(sum W q_in + B, shift)."""
    real_w = w * (s_in[:, None, None, None] / s_out[None, :, None, None])
    real_b = b / s_out
    cout = w.shape[1]
    W = np.zeros(w.shape, np.int16)
    B = np.zeros(cout, np.int64)
    S = np.zeros(cout, np.uint8)
    for o in range(cout):
        peak = max(np.abs(real_w[:, o]).max(), 1e-30)
        shift = min(MAX_SHIFT, max(0, math.floor(math.log2((ACT_ABS_MAX - 1) / peak))))
        while True:
            wo = np.clip(np.rint(real_w[:, o] * 2.0**shift), -32767, 32767).astype(np.int64)
            bo = int(np.rint(real_b[o] * 2.0**shift))
            if abs(bo) + ACT_ABS_MAX * int(np.abs(wo).sum()) <= ACC_BOUND or shift == 0:
                break
            shift -= 1
        W[:, o], B[o], S[o] = wo, bo, shift
    return W, B, S


def _igdn(beta, gamma, s_in, s_target):
    """Integer gamma/beta/shift and the resulting output scale (Annex A.1.5)."""
    c = beta.shape[0]
    g_real = gamma * (s_in**2)[None, :]
    G = np.zeros((c, c), np.int32)
    B = np.zeros(c, np.int64)
    S = np.zeros(c, np.uint8)
    s_out = np.zeros(c)
    for i in range(c):
        total = beta[i] + (1 << 30) * g_real[i].sum()
        T = math.floor(math.log2((NORM_BOUND >> 1) / total))
        T -= T % 2
        while True:
            gi = np.rint(g_real[i] * 2.0**T).astype(np.int64)
            bi = max(1, int(np.rint(beta[i] * 2.0**T)))
            if bi + (1 << 30) * int(gi.sum()) <= NORM_BOUND:
                break
            T -= 2
        shift = int(np.clip(round(math.log2(s_target[i] / s_in[i]) + T / 2), 0, MAX_SHIFT))
        G[i], B[i], S[i] = gi, bi, shift
        s_out[i] = s_in[i] * 2.0 ** (shift - T / 2)
    return G, B, S, s_out


def integer_synthesis(p: dict, maxima: list) -> dict:
    """Tensors synthesis.{k}.* of spec §6.3 for the float synthesis ``p``."""
    out, s = {}, np.ones(p["synthesis.0.weight"].shape[0])  # y_hat is in units of 1
    for k in range(7):
        if k % 2 == 0:
            last = k == 6
            s_out = np.full(3, 1 / 255) if last else maxima[k] / 2.0 ** (15 - HEADROOM_BITS)
            bias = p[f"synthesis.{k}.bias"]
            W, B, S = _deconv(p[f"synthesis.{k}.weight"], bias, s, s_out)
            out.update({f"synthesis.{k}.weight": W, f"synthesis.{k}.bias": B, f"synthesis.{k}.shift": S})
            s = s_out
        else:
            G, B, S, s = _igdn(p[f"synthesis.{k}.beta"], p[f"synthesis.{k}.gamma"], s,
                               maxima[k] / 2.0 ** (15 - HEADROOM_BITS))
            out.update({f"synthesis.{k}.gamma": G, f"synthesis.{k}.beta": B, f"synthesis.{k}.shift": S})
    return out


def export(p: dict, images: list, name: str, info: dict | None = None) -> bytes:
    """A complete model file (spec §6) from float parameters and calibration images."""
    n, m = p["synthesis.0.weight"].shape[1], p["synthesis.0.weight"].shape[0]
    tensors = integer_synthesis(p, calibrate(p, images))
    table = density_tables(p)
    tensors.update({"entropy.y.cdf": table.cdf, "entropy.y.cdf_length": table.cdf_length,
                    "entropy.y.offset": table.offset})
    for k, v in p.items():  # float analysis (the encoder) and float synthesis (the float twin)
        if k.startswith(("analysis.", "synthesis.")):
            exact16 = k.endswith((".weight", ".bias"))  # trained in half precision: exact in F16
            tensors[f"encoder.{k}"] = v.astype(np.float16 if exact16 else np.float32)
    metadata = {"format": "refcodec", "format_version": "1", "architecture": "factorized",
                "N": str(n), "M": str(m), "name": name}
    if info:
        metadata["training"] = json.dumps(info, sort_keys=True)
    return save_safetensors(tensors, metadata)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description="Export a float checkpoint to an integer refcodec model file")
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("output", type=Path)
    ap.add_argument("--calibration", type=Path, default=Path("../shared/data/train"))
    ap.add_argument("--images", type=int, default=24, help="calibration images (every k-th file)")
    ap.add_argument("--name", default="factorized")
    args = ap.parse_args(argv)
    p, meta = float_params(args.checkpoint.read_bytes())
    files = sorted(args.calibration.glob("*.png"))
    files = files[:: max(1, len(files) // args.images)][: args.images]
    info = {k: meta[k] for k in ("iteration", "wall_seconds", "record") if k in meta}
    if meta.get("history"):
        info["last_eval"] = meta["history"][-1]
    write_atomic(args.output, export(p, files, args.name, info))
    print(f"wrote {args.output} ({args.output.stat().st_size} bytes) from {len(files)} calibration images")


if __name__ == "__main__":
    main()
