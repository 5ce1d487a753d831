"""The float transforms, in NumPy (informative; Annex A.1).

The encoder's analysis transform, and the float synthesis the exporter uses to
calibrate the integer model and the benchmark uses as the float twin (both are
stored in the model file as ``encoder.*`` tensors). Nothing here is on the
decoding path (spec §8 uses only refcodec.layers).
"""

import numpy as np

from .layers import KERNEL, PAD, STRIDE, conv_transpose


def conv(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """5x5 stride-2 convolution, padding 2 (PyTorch Conv2d layout (Cout, Cin, 5, 5)); (C,H,W) -> (Cout,H/2,W/2)."""
    c, h, w = x.shape
    ho, wo = (h + 2 * PAD - KERNEL) // STRIDE + 1, (w + 2 * PAD - KERNEL) // STRIDE + 1
    xp = np.pad(x, ((0, 0), (PAD, PAD), (PAD, PAD)))
    cols = np.empty((c, KERNEL, KERNEL, ho, wo), dtype=x.dtype)
    for ky in range(KERNEL):
        for kx in range(KERNEL):
            cols[:, ky, kx] = xp[:, ky : ky + STRIDE * ho : STRIDE, kx : kx + STRIDE * wo : STRIDE]
    out = weight.reshape(weight.shape[0], -1).astype(x.dtype) @ cols.reshape(c * KERNEL * KERNEL, -1)
    return out.reshape(-1, ho, wo) + bias.astype(x.dtype)[:, None, None]


def gdn(x: np.ndarray, beta: np.ndarray, gamma: np.ndarray, inverse: bool = False) -> np.ndarray:
    """x_i / sqrt(beta_i + sum_j gamma_ij x_j^2) (GDN), or times the root (IGDN)."""
    norm = beta.astype(x.dtype)[:, None, None] + np.tensordot(gamma.astype(x.dtype), x * x, axes=([1], [0]))
    return x * np.sqrt(norm) if inverse else x / np.sqrt(norm)


def analysis(x: np.ndarray, p: dict) -> np.ndarray:
    """g_a: (3, H, W) float in [0, 1] -> (M, H/16, W/16) float latent."""
    for k in (0, 2, 4, 6):
        x = conv(x, p[f"analysis.{k}.weight"], p[f"analysis.{k}.bias"])
        if k < 6:
            x = gdn(x, p[f"analysis.{k + 1}.beta"], p[f"analysis.{k + 1}.gamma"])
    return x


def synthesis(y: np.ndarray, p: dict, trace: list | None = None) -> np.ndarray:
    """g_s: latent -> (3, 16h, 16w) float image in [0, 1] (unclipped); ``trace`` collects layer outputs."""
    x = y
    for k in range(7):
        if k % 2 == 0:
            x = conv_transpose(x, p[f"synthesis.{k}.weight"], p[f"synthesis.{k}.bias"])
        else:
            x = gdn(x, p[f"synthesis.{k}.beta"], p[f"synthesis.{k}.gamma"], inverse=True)
        if trace is not None:
            trace.append(x)
    return x
