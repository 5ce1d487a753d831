"""Export a float model to an integer model file (informative, Annex A.1.5).

    python -m refcodec.encoder.export training/factorized.safetensors refcodec/models/factorized.safetensors \
        --calibration ../shared/data/train

NumPy only (no torch): reads the half-precision training checkpoint written by
refcodec.encoder.train, calibrates activation ranges on a few images, and writes the
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

from refcodec.decoder.decoding import GAIN_SHIFT
from refcodec.decoder.layers import ACT_MAX, ACT_MIN, LEAKY_BITS
from refcodec.decoder.model import (
    ACC_BOUND,
    ACT_ABS_MAX,
    DTYPES,
    MAX_GAIN,
    MAX_SHIFT,
    MEAN_ARCHITECTURES,
    NORM_BOUND,
    layer_plan,
    parse_container,
)
from refcodec.encoder import floatnet
from refcodec.encoder.cdf import build_table
from refcodec.encoder.encode import pad_to_stride
from refcodec.image import to_rgb_array, write_atomic

HEADROOM_BITS = 2  # calibrated maximum maps to 2^(15 - HEADROOM_BITS)
MAX_TABLE_SYMBOLS = 2000  # cap on a CDF row's symbol range (spec §4 allows up to 4094)
SCALE_BITS = 8  # predicted scales are integers in units of 2^-8 (spec §8.8 compares them with scale_bound)
SCALE_MIN, SCALE_MAX, SCALE_LEVELS = 0.11, 64.0, 64  # the y tables' standard deviations
GAUSSIAN_WIDTH = 6.1  # a row covers +-ceil(6.1 sigma): tail mass about 1e-9, as CompressAI
PEDESTAL = 2.0**-36  # GDN reparametrisation (refcodec.encoder.train.NonNegative)


# ---------------------------------------------------------------------------
# Float parameters from a training checkpoint


def save_safetensors(tensors: dict, metadata: dict) -> bytes:
    """Serialise tensors (name -> ndarray) and string metadata in safetensors layout (spec §6.1)."""
    names = {np.dtype(v).name: k for k, v in DTYPES.items()}
    header, chunks, offset = {"__metadata__": dict(metadata)}, [], 0
    for name in sorted(tensors):
        arr = np.ascontiguousarray(tensors[name])
        raw = arr.astype(arr.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": names[arr.dtype.name], "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # align the data buffer to 8 bytes
    return len(text).to_bytes(8, "little") + text + b"".join(chunks)


def _nonneg(p: np.ndarray, minimum: float) -> np.ndarray:
    return np.maximum(p, math.sqrt(minimum + PEDESTAL)) ** 2 - PEDESTAL


TRAIN_GROUPS = {"h_a": "hyper_analysis", "h_s": "hyper_synthesis", "entropy_parameters": "entropy_parameters"}


def float_params(checkpoint: bytes) -> tuple[dict, dict]:
    """(float64 parameters named as in floatnet, checkpoint metadata) from refcodec.encoder.train's file.

    The metadata's ``record.arch`` names the architecture (absent: factorized).
    """
    meta, t = parse_container(checkpoint)
    t = {k: v.astype(np.float64) for k, v in t.items()}
    p = {}
    for src, dst in (("g_a", "analysis"), ("g_s", "synthesis")):
        for k in range(7):
            if k % 2 == 0:
                p[f"{dst}.{k}.weight"], p[f"{dst}.{k}.bias"] = t[f"{src}.{k}.weight"], t[f"{src}.{k}.bias"]
            else:
                p[f"{dst}.{k}.beta"] = _nonneg(t[f"{src}.{k}.beta.p"], 1e-6)
                p[f"{dst}.{k}.gamma"] = _nonneg(t[f"{src}.{k}.gamma.p"], 0.0)
    for src, dst in TRAIN_GROUPS.items():  # nn.Sequential: layers at 0, 2, 4, activations between
        for j in range(3):
            if f"{src}.{2 * j}.weight" in t:
                p[f"{dst}.{j}.weight"], p[f"{dst}.{j}.bias"] = t[f"{src}.{2 * j}.weight"], t[f"{src}.{2 * j}.bias"]
    if "context.weight" in t:
        p["context.0.weight"], p["context.0.bias"] = t["context.weight"] * t["context.mask"], t["context.bias"]
    p.update({k: v for k, v in t.items() if k.startswith("density.")})
    for name in ("y", "z"):  # a variable-rate model's gains (refcodec.encoder.train.Gains), stored as logarithms
        if f"gains.{name}" in t:
            p[f"quality.{name}_gain"] = np.exp(t[f"gains.{name}"])  # the encoder's, Annex A.1.6
            p[f"quality.{name}_inverse"] = np.exp(t[f"gains.{name}_inv"])  # the decoder's, spec §8.11
    meta = {k: json.loads(v) for k, v in meta.items()}
    return p, meta


def levels_of(p: dict) -> list:
    """The quality levels of float parameters ``p``: [0 .. L-1], or [None] for a single-rate model."""
    return list(range(p["quality.y_gain"].shape[0])) if "quality.y_gain" in p else [None]


def float_gain(p: dict, name: str, level: int | None) -> np.ndarray | float:
    """The float gain ``name`` (quality.y_gain, quality.z_inverse, ...) of ``level`` as (C, 1, 1); 1 without."""
    return 1.0 if level is None else p[name][level][:, None, None]


MAX_GAIN_BITS = 8  # at most 2^-8 of the input's unit for the gained values (Annex A.1.6)


def gain_bits(p: dict, name: str, maxima: dict, unit: float) -> np.ndarray:
    """k per channel (Annex A.1.6): the gained values of ``name`` (y or z) are exported in units of
    ``unit`` * 2^-k, k the largest integer <= MAX_GAIN_BITS for which every level's gain stays within
    MAX_GAIN and the calibrated largest gained value within 2^(15 - HEADROOM_BITS); 0 without levels."""
    if "quality.y_gain" not in p:
        return np.zeros(1, np.int64)
    inverse = p[f"quality.{name}_inverse"].max(axis=0)
    by_gain = np.floor(np.log2(MAX_GAIN / (inverse * 2.0**GAIN_SHIFT)))
    by_range = np.floor(np.log2(2.0 ** (15 - HEADROOM_BITS) * unit / maxima[f"gained.{name}"][0]))
    return np.clip(np.minimum(by_gain, by_range), 0, MAX_GAIN_BITS).astype(np.int64)


def gain_tensors(p: dict, architecture: str, bits: dict) -> dict:
    """quality.y_gain and quality.z_gain of spec §6.3: the decoder's inverse gains in units of
    2^-(GAIN_SHIFT + k) (spec §8.11, Annex A.1.6, k = ``bits[name]`` per channel), and the encoder's float
    gains as encoder.quality.*; {} for a single-rate model."""
    if "quality.y_gain" not in p:
        return {}
    out = {}
    for name in ("y", "z") if architecture != "factorized" else ("y",):
        inverse = np.rint(p[f"quality.{name}_inverse"] * 2.0 ** (GAIN_SHIFT + bits[name][None, :]))
        out[f"quality.{name}_gain"] = np.clip(inverse, 1, MAX_GAIN).astype(np.int32)
        out[f"encoder.quality.{name}_gain"] = p[f"quality.{name}_gain"].astype(np.float32)
        out[f"encoder.quality.{name}_inverse"] = p[f"quality.{name}_inverse"].astype(np.float32)  # the float twin's
    return out


def architecture_of(meta: dict) -> str:
    """The architecture a training checkpoint's metadata records (refcodec.encoder.train --arch)."""
    return meta.get("record", {}).get("arch", "factorized")


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


def gaussian_scales(levels: int = SCALE_LEVELS) -> np.ndarray:
    """The standard deviations of the y tables: ``levels`` values spaced exponentially (Annex A.1.5)."""
    return np.exp(np.linspace(math.log(SCALE_MIN), math.log(SCALE_MAX), levels))


def _normal_cdf(x: np.ndarray) -> np.ndarray:
    return 0.5 * np.array([math.erfc(-v / math.sqrt(2)) for v in np.ravel(x)]).reshape(np.shape(x))


def gaussian_tables(scales: np.ndarray):
    """One row per scale: the zero-mean Gaussian, integrated over unit bins, over +-ceil(6.1 sigma) (Annex A.2)."""
    pmfs, tails, offsets = [], [], []
    for sigma in scales:
        w = math.ceil(sigma * GAUSSIAN_WIDTH)
        v = np.arange(-w, w + 1, dtype=np.float64)
        pmfs.append(_normal_cdf((v + 0.5) / sigma) - _normal_cdf((v - 0.5) / sigma))
        tails.append(2 * _normal_cdf(-(w + 0.5) / sigma))
        offsets.append(-w)
    return build_table(pmfs, tails, offsets)


def scale_thresholds(p: dict) -> np.ndarray:
    """The real scales between the y tables' rows: the geometric midpoints of neighbouring scales (refcodec's),
    or a CompressAI model's own rule, the smallest table at least as wide (Annex A.3.3)."""
    if "gaussian.thresholds" in p:
        return p["gaussian.thresholds"]
    scales = p.get("gaussian.scales", gaussian_scales())
    return np.sqrt(scales[:-1] * scales[1:])


def scale_bits(p: dict) -> int:
    """Predicted scales are integers in units of 2^-scale_bits (spec §8.8): SCALE_BITS, or fewer if the largest
    threshold would not fit the activation range."""
    return min(SCALE_BITS, math.floor(math.log2(ACT_MAX / scale_thresholds(p).max())))


def scale_bounds(p: dict) -> np.ndarray:
    """entropy.y.scale_bound: the thresholds of the y tables, in units of 2^-scale_bits(p) (§8.8)."""
    return np.floor(scale_thresholds(p) * 2.0 ** scale_bits(p)).astype(np.int32)


# ---------------------------------------------------------------------------
# Integer synthesis from float synthesis + calibration


def calibrate(p: dict, images: list, architecture: str) -> dict:
    """group -> per layer, per channel: the largest |output| of the float layers on ``images``."""
    m, n = p["synthesis.0.weight"].shape[:2]
    plan = layer_plan(architecture, n, m)
    p32 = {k: v.astype(np.float32) if isinstance(v, np.ndarray) else v for k, v in p.items()}
    maxima: dict = {}
    for img, level in ((img, level) for img in images for level in levels_of(p)):
        x = pad_to_stride(to_rgb_array(img)).transpose(2, 0, 1).astype(np.float32) / 255.0
        y = floatnet.analysis(x, p32) * float_gain(p32, "quality.y_gain", level)
        y_hat = coded(y, medians(p, mean_shift(architecture, p)) if architecture == "factorized" else None,
                      mean_shift(architecture, p))
        traces: dict = {group: [] for group in plan}
        y_in = y_hat * float_gain(p, "quality.y_inverse", level)
        traces["gained.y"] = [y_in]
        floatnet.run(y_in, p, "synthesis", plan["synthesis"], traces["synthesis"])
        if architecture != "factorized":
            z = floatnet.hyper_analysis(y, p32, architecture) * float_gain(p32, "quality.z_gain", level)
            z_in = coded(z, medians(p, z_shift(architecture, p)), z_shift(architecture, p)) \
                * float_gain(p, "quality.z_inverse", level)
            traces["gained.z"] = [z_in]
            h = floatnet.run(z_in, p, "hyper_synthesis", plan["hyper_synthesis"], traces["hyper_synthesis"])
            h = h[:, : y.shape[1], : y.shape[2]]
        if architecture == "joint":
            ctx = floatnet.run(y_hat, p, "context", plan["context"], traces["context"])
            floatnet.run(np.concatenate([ctx, h]), p, "entropy_parameters", plan["entropy_parameters"],
                         traces["entropy_parameters"])
        for group, trace in traces.items():
            m_ = [np.abs(a).reshape(a.shape[0], -1).max(axis=1) for a in trace]
            if group in maxima:
                m_ = [np.maximum(a, b) for a, b in zip(maxima[group], m_, strict=True)]
            maxima[group] = m_
    return {group: [np.maximum(v, 1e-3) for v in layers] for group, layers in maxima.items()}


def _integer_conv(w, b, s_in, s_out, name: str = "a layer"):
    """Integer weight/bias/shift for real weights w (Cin, Cout, K, K): q_out = Round2(sum W q_in + B, shift).
    Raises ValueError when even shift 0 leaves a weight beyond 16 bits or the sum beyond the bound of §6.4."""
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
            if abs(bo) + ACT_ABS_MAX * int(np.abs(wo).sum()) <= ACC_BOUND:
                break
            if shift == 0:
                raise ValueError(f"{name}: channel {o} exceeds the accumulator bound of spec §6.4 at shift 0")
            shift -= 1
        if shift == 0 and np.abs(np.rint(real_w[:, o])).max() > 32767:
            raise ValueError(f"{name}: a weight of channel {o} exceeds 16 bits (I16, spec §6.3) at shift 0")
        W[:, o], B[o], S[o] = wo, bo, shift
    return W, B, S


def _igdn(beta, gamma, s_in, s_target, name: str = "an IGDN"):
    """Integer gamma/beta/shift and the resulting output scale (Annex A.1.5); ValueError when the norm
    cannot be brought within the bound of §6.4."""
    c = beta.shape[0]
    g_real = gamma * (s_in**2)[None, :]
    G = np.zeros((c, c), np.int32)
    B = np.zeros(c, np.int64)
    S = np.zeros(c, np.uint8)
    s_out = np.zeros(c)
    for i in range(c):
        total = beta[i] + (1 << 30) * g_real[i].sum()
        T = math.floor(math.log2((NORM_BOUND >> 1) / total))
        if T < 0:
            raise ValueError(f"{name}: channel {i}'s norm exceeds the bound of spec §6.4")
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


def latent_unit(architecture: str, p: dict) -> float:
    """The real value of one unit of y_hat: 2^-F (spec §8.3, §8.8)."""
    return 2.0 ** -mean_shift(architecture, p)


def mean_shift(architecture: str, p: dict) -> int:
    """The entropy.y.mean_shift the exporter writes (spec §6.3): floatnet.MEAN_SHIFT where there are means,
    or medians (a factorized model imported from CompressAI, Annex A.3.3), else 0."""
    medians = architecture == "factorized" and "density.medians" in p
    return floatnet.MEAN_SHIFT if architecture in MEAN_ARCHITECTURES or medians else 0


def z_shift(architecture: str, p: dict) -> int:
    """The entropy.z.mean_shift the exporter writes: floatnet.MEAN_SHIFT where z has medians, else 0."""
    return floatnet.MEAN_SHIFT if architecture != "factorized" and "density.medians" in p else 0


def medians(p: dict, shift: int) -> np.ndarray | None:
    """The per-channel medians of the factorized density in units of 2^-shift (entropy.T.median, spec
    §6.3), None for a model without them."""
    if "density.medians" not in p:
        return None
    return np.clip(np.rint(p["density.medians"] * 2.0**shift), ACT_MIN, ACT_MAX).astype(np.int16)


def coded(x: np.ndarray, median: np.ndarray | None, shift: int) -> np.ndarray:
    """What a decoder rebuilds of float latents x coded with per-channel ``median`` (Annex A.1.4): the
    integer steps round(x - median) plus the median (in units of 1); x rounded without medians."""
    if median is None:
        return np.rint(x)
    m = median.astype(np.float64)[:, None, None] * 2.0**-shift
    return np.rint(x - m) + m


def output_scale(architecture: str, group: str, k: int, plan: list, maxima: dict, m: int, p: dict,
                 weight: np.ndarray, s_in: np.ndarray) -> np.ndarray:
    """The real value of one integer unit of each output channel of layer k of ``group`` (Annex A.1.5).

    Pixels: 1/255. Scales (spec §8.8): 2^-scale_bits(p). Means: 2^-MEAN_SHIFT, the unit
    of y_hat (spec §8.8). Hidden layers: the calibrated maximum at 2^13, or coarser where
    that is needed for the channel's real weights ``weight`` (Cin, Cout, K, K) on inputs of
    scale ``s_in`` to fit 16 bits at shift 0 (a channel the calibration barely saw).
    """
    last = k == len(plan) - 1
    if group == "synthesis" and last:
        return np.full(3, 1 / 255)
    if last and (group == "entropy_parameters" or (group == "hyper_synthesis" and architecture != "joint")):
        scales = np.full(plan[k][2], 2.0 ** -scale_bits(p))
        scales[m:] = latent_unit(architecture, p)
        return scales
    floor = (np.abs(weight) * s_in[:, None, None, None]).max(axis=(0, 2, 3)) / (ACT_ABS_MAX - 1)
    return np.maximum(maxima[group][k] / 2.0 ** (15 - HEADROOM_BITS), floor)


def integer_layers(p: dict, architecture: str, maxima: dict, bits: dict) -> dict:
    """Tensors GROUP.k.* of spec §6.3 for the float layers ``p`` of ``architecture``; the synthesis and
    hyper-synthesis inputs of a model with quality levels are in units 2^-k finer (``bits``, Annex A.1.6)."""
    m, n = p["synthesis.0.weight"].shape[:2]
    plan = layer_plan(architecture, n, m)
    out: dict = {}
    final: dict = {}
    unit = latent_unit(architecture, p)  # of y_hat
    z_unit = 2.0 ** -z_shift(architecture, p)  # of z_hat
    inputs = {"synthesis": unit * 2.0 ** -bits["y"], "hyper_synthesis": z_unit * 2.0 ** -bits["z"] * np.ones(n),
              "context": np.full(m, unit)}
    for group, layers in plan.items():
        if group == "entropy_parameters":
            s = np.concatenate([final["context"], final["hyper_synthesis"]])
        else:
            s = inputs[group]
        for k, (kind, _, _, _, _) in enumerate(layers):
            name = f"{group}.{k}"
            if kind == "igdn":
                G, B, S, s = _igdn(p[f"{name}.beta"], p[f"{name}.gamma"], s,
                                   maxima[group][k] / 2.0 ** (15 - HEADROOM_BITS), name)
                out.update({f"{name}.gamma": G, f"{name}.beta": B, f"{name}.shift": S})
                continue
            w = p[f"{name}.weight"]
            w_io = w if kind == "deconv" else w.transpose(1, 0, 2, 3)  # (Cin, Cout, K, K)
            s_out = output_scale(architecture, group, k, layers, maxima, m, p, w_io, s)
            W, B, S = _integer_conv(w_io, p[f"{name}.bias"], s, s_out, name)
            out.update({f"{name}.weight": W if kind == "deconv" else W.transpose(1, 0, 2, 3),
                        f"{name}.bias": B, f"{name}.shift": S})
            s = s_out
        final[group] = s
    return out


def export(p: dict, images: list, name: str, info: dict | None = None, architecture: str = "factorized") -> bytes:
    """A complete model file (spec §6) from float parameters and calibration images."""
    m, n = p["synthesis.0.weight"].shape[:2]
    maxima = calibrate(p, images, architecture)
    unit, z_unit = latent_unit(architecture, p), 2.0 ** -z_shift(architecture, p)
    bits = {"y": gain_bits(p, "y", maxima, unit) * np.ones(m, np.int64),
            "z": gain_bits(p, "z", maxima, z_unit) * np.ones(n, np.int64) if architecture != "factorized" else 0}
    tensors = integer_layers(p, architecture, maxima, bits)
    density = p["tables.density"] if "tables.density" in p else density_tables(p)
    per_channel = "entropy.y" if architecture == "factorized" else "entropy.z"  # coded with a row per channel
    tables = {per_channel: density}
    if architecture != "factorized":
        tables["entropy.y"] = p["tables.gaussian"] if "tables.gaussian" in p else gaussian_tables(gaussian_scales())
        tensors["entropy.y.scale_bound"] = scale_bounds(p)
    if mean_shift(architecture, p):
        tensors["entropy.y.mean_shift"] = np.array([mean_shift(architecture, p)], np.uint8)
    shift = z_shift(architecture, p) if architecture != "factorized" else mean_shift(architecture, p)
    if medians(p, shift) is not None:
        tensors[f"{per_channel}.median"] = medians(p, shift)
        if architecture != "factorized":
            tensors["entropy.z.mean_shift"] = np.array([shift], np.uint8)
    if "leaky_slope" in p and architecture in MEAN_ARCHITECTURES:  # CompressAI's 0.01 (spec §5.6, Annex A.3.3)
        tensors["leaky_slope"] = np.array([round(p["leaky_slope"] * 2**LEAKY_BITS)], np.int16)
        tensors["encoder.leaky_slope"] = np.array([p["leaky_slope"]], np.float32)
    for label, table in tables.items():
        tensors.update({f"{label}.cdf": table.cdf, f"{label}.cdf_length": table.cdf_length,
                        f"{label}.offset": table.offset})
    tensors.update(gain_tensors(p, architecture, bits))
    for k, v in p.items():  # float analysis (the encoder) and float synthesis (the float twin)
        if k.startswith(("analysis.", "hyper_analysis.", "synthesis.")):
            exact16 = k.endswith((".weight", ".bias"))  # trained in half precision: exact in F16
            tensors[f"encoder.{k}"] = v.astype(np.float16 if exact16 else np.float32)
    metadata = {"format": "refcodec", "format_version": "1", "architecture": architecture,
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
    ap.add_argument("--name", help="the model's name (default: its architecture)")
    args = ap.parse_args(argv)
    p, meta = float_params(args.checkpoint.read_bytes())
    architecture = architecture_of(meta)
    files = sorted(args.calibration.glob("*.png"))
    files = files[:: max(1, len(files) // args.images)][: args.images]
    info = {k: meta[k] for k in ("iteration", "wall_seconds", "record", "warm_start") if k in meta}
    if meta.get("history"):
        info["last_eval"] = meta["history"][-1]
    write_atomic(args.output, export(p, files, args.name or architecture, info, architecture))
    print(f"wrote {args.output} ({args.output.stat().st_size} bytes) from {len(files)} calibration images")


if __name__ == "__main__":
    main()
