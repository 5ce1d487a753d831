"""The float transforms, in NumPy (informative; Annex A.1).

The encoder's analysis transforms g_a and h_a, and the float synthesis the
exporter uses to calibrate the integer model and the benchmark uses as the
float twin (all stored in the model file as ``encoder.*`` tensors), plus the
float hyper-synthesis, context and entropy-parameter networks the exporter
calibrates. Nothing here is on the decoding path (spec §8 uses only
refcodec.decoder.layers).
"""

import numpy as np

from refcodec.decoder.layers import DEFAULT_LEAKY_SLOPE, LEAKY_BITS, conv_transpose
from refcodec.decoder.model import layer_plan

LEAKY_SLOPE = DEFAULT_LEAKY_SLOPE / 2**LEAKY_BITS  # 2^-6: the float leaky ReLU of refcodec's models (spec §5.6)
MEAN_SHIFT = 4  # the mean-scale and joint models predict means in units of 2^-4 (spec §8.8 mean_shift)
HYPER_ANALYSIS_STRIDES = (1, 2, 2)


def conv(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, stride: int = 2, rows: tuple | None = None) -> np.ndarray:
    """KxK convolution, padding K // 2 (PyTorch Conv2d layout (Cout, Cin, K, K)); (C,H,W) -> (Cout,H/s,W/s).

    ``rows`` = (top, bottom): the zero rows padded above and below instead of K // 2 each, for a band of
    a bigger input (``analysis_rows``).
    """
    c, h, w = x.shape
    k = weight.shape[2]
    pad = k // 2
    top, bottom = rows or (pad, pad)
    ho, wo = (h + top + bottom - k) // stride + 1, (w + 2 * pad - k) // stride + 1
    xp = np.pad(x, ((0, 0), (top, bottom), (pad, pad)))
    cols = np.empty((c, k, k, ho, wo), dtype=x.dtype)
    for ky in range(k):
        for kx in range(k):
            cols[:, ky, kx] = xp[:, ky : ky + stride * ho : stride, kx : kx + stride * wo : stride]
    out = weight.reshape(weight.shape[0], -1).astype(x.dtype) @ cols.reshape(c * k * k, -1)
    return out.reshape(-1, ho, wo) + bias.astype(x.dtype)[:, None, None]


def gdn(x: np.ndarray, beta: np.ndarray, gamma: np.ndarray, inverse: bool = False) -> np.ndarray:
    """x_i / sqrt(beta_i + sum_j gamma_ij x_j^2) (GDN), or times the root (IGDN)."""
    norm = beta.astype(x.dtype)[:, None, None] + np.tensordot(gamma.astype(x.dtype), x * x, axes=([1], [0]))
    return x * np.sqrt(norm) if inverse else x / np.sqrt(norm)


def nonlinearity(x: np.ndarray, activation: str, slope: float = LEAKY_SLOPE) -> np.ndarray:
    """The float counterparts of spec §5.6: none, relu, leaky (negative slope ``slope``)."""
    if activation == "relu":
        return np.maximum(x, 0)
    if activation == "leaky":
        return np.where(x < 0, x * slope, x)
    return x


def leaky_slope(p: dict) -> float:
    """The float leaky slope of parameters ``p``: 0.01 for a CompressAI model (Annex A.3.3), else 2^-6."""
    return float(np.reshape(p.get("leaky_slope", LEAKY_SLOPE), -1)[0])  # a number, or encoder.leaky_slope


ANALYSIS_BAND = 8  # output rows of a band of the encoder's analysis transforms (Annex A.1.3): bounded memory


def analysis(x: np.ndarray, p: dict, progress=None) -> np.ndarray:
    """g_a: (3, H, W) float in [0, 1], H a multiple of 16 -> (M, H/16, W/16) float latent; ``progress`` as
    ``in_bands``."""
    layers = [(p[f"analysis.{k}.weight"], p[f"analysis.{k}.bias"], 2,
               (lambda v, k=k: gdn(v, p[f"analysis.{k + 1}.beta"], p[f"analysis.{k + 1}.gamma"])) if k < 6 else None)
              for k in (0, 2, 4, 6)]
    return in_bands(x, layers, progress)


def hyper_analysis(y: np.ndarray, p: dict, architecture: str) -> np.ndarray:
    """h_a: latent (M, h, w) -> hyper-latent (N, h/4, w/4) (Annex A.1.3): with ReLU on |y| (hyperprior) or
    on (|y|, y) (refcodec's mean-scale and joint), or, when its first layer takes M channels in those two
    architectures, mbt2018's h_a of a CompressAI model: leaky ReLU on y (Annex A.3.3)."""
    activation = "relu"
    if architecture == "hyperprior":
        x = np.abs(y)
    elif p["hyper_analysis.0.weight"].shape[1] == y.shape[0]:
        x, activation = y, "leaky"
    else:
        x = np.concatenate([np.abs(y), y])
    slope = leaky_slope(p)
    then = lambda v: nonlinearity(v, activation, slope)  # noqa: E731
    layers = [(p[f"hyper_analysis.{j}.weight"], p[f"hyper_analysis.{j}.bias"], stride, then if j < 2 else None)
              for j, stride in enumerate(HYPER_ANALYSIS_STRIDES)]
    return in_bands(x, layers)


def in_bands(x: np.ndarray, layers: list, progress=None) -> np.ndarray:
    """Convolutions ``layers`` [(weight, bias, stride, then)] applied to x, in bands of ANALYSIS_BAND output
    rows (``stack_rows``): the same numbers as the whole-picture computation, in bounded memory.
    ``progress(output rows done, output rows)``, if given, is called after each band."""
    height = x.shape[1]
    for _, _, stride, _ in layers:
        height = -(-height // stride)
    bands = []
    for a in range(0, height, ANALYSIS_BAND):
        bands.append(stack_rows(x, layers, a, min(a + ANALYSIS_BAND, height)))
        if progress is not None:
            progress(min(a + ANALYSIS_BAND, height), height)
    return np.concatenate(bands, axis=1)


def stack_rows(x: np.ndarray, layers: list, a: int, b: int) -> np.ndarray:
    """Output rows [a, b) of the convolutions ``layers`` applied to x, from the input rows they depend on only.

    Going backwards, output rows [lo, hi) of a KxK stride-s convolution (padding P = K // 2) need input rows
    [s lo - P, s (hi - 1) + P + 1) (the pointwise ``then`` works row by row), of which those inside the input
    are computed; going forwards, each convolution pads with zeros exactly the needed rows that lie outside
    its input, as the whole-picture one does (Annex A.1.3).
    """
    heights = [x.shape[1]]
    for _, _, stride, _ in layers:
        heights.append(-(-heights[-1] // stride))
    want = [(a, b)]  # the rows computed of each layer's output, from the last back to the input
    needed = []  # the rows each layer needs of its input, before clamping
    for k in range(len(layers) - 1, -1, -1):
        weight, _, stride, _ = layers[k]
        pad, (lo, hi) = weight.shape[2] // 2, want[-1]
        needed.append((stride * lo - pad, stride * (hi - 1) + pad + 1))
        want.append((max(needed[-1][0], 0), min(needed[-1][1], heights[k])))
    want.reverse()
    needed.reverse()
    band = x[:, want[0][0] : want[0][1]]
    for k, (weight, bias, stride, then) in enumerate(layers):
        (lo, hi), (need_lo, need_hi) = want[k], needed[k]
        band = conv(band, weight, bias, stride, rows=(lo - need_lo, need_hi - hi))
        if then is not None:
            band = then(band)
    return band


def hyper_analysis_inputs(architecture: str, m: int) -> int:
    """The channels refcodec's h_a sees: |y| (M) for hyperprior, (|y|, y) (2M) for the architectures with
    means (a CompressAI model's h_a of those sees y, M channels: ``hyper_analysis``)."""
    return m if architecture == "hyperprior" else 2 * m


def hyper_analysis_kernels(architecture: str, n: int, m: int, cin: int | None = None) -> list:
    """(Cout, Cin, K) of h_a's three convolutions (strides HYPER_ANALYSIS_STRIDES); ``cin`` the first
    layer's inputs if not refcodec's own (``hyper_analysis_inputs``)."""
    return [(n, cin or hyper_analysis_inputs(architecture, m), 3), (n, n, 5), (n, n, 5)]


def run(x: np.ndarray, p: dict, group: str, plan: list, trace: list | None = None) -> np.ndarray:
    """The float layers of ``group`` (refcodec.decoder.model.layer_plan) in order; ``trace`` collects layer outputs."""
    slope = leaky_slope(p)
    for k, (kind, _, _, _, activation) in enumerate(plan):
        name = f"{group}.{k}"
        if kind == "igdn":
            x = gdn(x, p[f"{name}.beta"], p[f"{name}.gamma"], inverse=True)
        elif kind == "deconv":
            x = nonlinearity(conv_transpose(x, p[f"{name}.weight"], p[f"{name}.bias"]), activation, slope)
        else:
            x = nonlinearity(conv(x, p[f"{name}.weight"], p[f"{name}.bias"], stride=1), activation, slope)
        if trace is not None:
            trace.append(x)
    return x


def synthesis(y: np.ndarray, p: dict, trace: list | None = None) -> np.ndarray:
    """g_s: latent -> (3, 16h, 16w) float image in [0, 1] (unclipped); ``trace`` collects layer outputs."""
    m, n = p["synthesis.0.weight"].shape[:2]
    return run(y, p, "synthesis", layer_plan("factorized", n, m)["synthesis"], trace)
