"""Dataset evaluation (``refcodec eval``), as CompressAI users know it from ``compressai.utils.eval_model``.

For every picture of a dataset and every quality: bits per pixel, PSNR and MS-SSIM of the decoded picture
against the original (RGB, 8 bits), and the wall time of encoding and of decoding; then the mean over
the pictures per quality. The JSON file has CompressAI's layout (``name``, ``description``, ``results``
with lists ``bpp``, ``psnr-rgb``, ``ms-ssim-rgb``, ``encoding_time``, ``decoding_time``, one entry per
quality), so ``compressai.utils.plot`` and its users' scripts read it, plus ``per_image``.

MS-SSIM is the 5-scale measure of Wang, Simoncelli and Bovik (2003), computed as pytorch-msssim and
CompressAI compute it: an 11-tap Gaussian window of sigma 1.5 applied without padding, K1 = 0.01,
K2 = 0.03, 2x2 average pooling between scales (a zero row or column added on each side of an odd
size), contrast-structure terms at the first four scales and the SSIM at the fifth, clamped at 0 and
weighted (0.0448, 0.2856, 0.3001, 0.2363, 0.1333), the mean over the R, G and B channels. It needs at
least 161 samples on each side (as pytorch-msssim); smaller pictures get ``None``.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
WINDOW, SIGMA, K1, K2 = 11, 1.5, 0.01, 0.03
MS_SSIM_MIN_SIDE = (WINDOW - 1) * 2 ** (len(MS_SSIM_WEIGHTS) - 1) + 1  # 161


def gaussian_window(size: int = WINDOW, sigma: float = SIGMA) -> np.ndarray:
    """The normalised 1-D Gaussian exp(-x^2 / 2 sigma^2), x = -size//2 .. size//2, with float32 taps as
    pytorch-msssim makes it (then used in float64)."""
    x = np.arange(size, dtype=np.float64) - size // 2
    g = np.exp(-(x**2) / (2 * sigma**2)).astype(np.float32)
    return (g / np.float32(g.astype(np.float64).sum())).astype(np.float64)


def _filter(x: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Separable 'valid' filtering of (C, H, W) by ``g`` along H, then W."""
    k = len(g)
    h, w = x.shape[1] - k + 1, x.shape[2] - k + 1
    rows = sum(g[i] * x[:, i : i + h, :] for i in range(k))
    return sum(g[i] * rows[:, :, i : i + w] for i in range(k))


def _ssim(x: np.ndarray, y: np.ndarray, data_range: float) -> tuple:
    """(SSIM, contrast-structure) per channel of (C, H, W) float64 pictures."""
    g = gaussian_window()
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    mu_x, mu_y = _filter(x, g), _filter(y, g)
    sxx = _filter(x * x, g) - mu_x**2
    syy = _filter(y * y, g) - mu_y**2
    sxy = _filter(x * y, g) - mu_x * mu_y
    cs_map = (2 * sxy + c2) / (sxx + syy + c2)
    ssim_map = (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1) * cs_map
    return ssim_map.mean(axis=(1, 2)), cs_map.mean(axis=(1, 2))


def _pool(x: np.ndarray) -> np.ndarray:
    """2x2 average pooling of stride 2 with a zero row (column) on each side of an odd height (width), as
    torch's avg_pool2d(kernel_size=2, padding=size % 2) counting the padding."""
    ph, pw = x.shape[1] % 2, x.shape[2] % 2
    x = np.pad(x, ((0, 0), (ph, ph), (pw, pw)))
    h, w = x.shape[1] // 2, x.shape[2] // 2
    x = x[:, : 2 * h, : 2 * w]
    return (x[:, 0::2, 0::2] + x[:, 1::2, 0::2] + x[:, 0::2, 1::2] + x[:, 1::2, 1::2]) / 4


def ms_ssim(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> float | None:
    """MS-SSIM of two (H, W, 3) (or (H, W)) pictures; 1.0 for identical ones; None if a side is below 161."""
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch {a.shape} vs {b.shape}")
    if min(a.shape[:2]) < MS_SSIM_MIN_SIDE:
        return None
    x = np.atleast_3d(a).transpose(2, 0, 1).astype(np.float64)
    y = np.atleast_3d(b).transpose(2, 0, 1).astype(np.float64)
    terms = []
    for level in range(len(MS_SSIM_WEIGHTS)):
        ssim, cs = _ssim(x, y, data_range)
        if level < len(MS_SSIM_WEIGHTS) - 1:
            terms.append(np.maximum(cs, 0))
            x, y = _pool(x), _pool(y)
    terms.append(np.maximum(ssim, 0))
    weights = np.array(MS_SSIM_WEIGHTS)[:, None]
    return float(np.prod(np.stack(terms) ** weights, axis=0).mean())


# --- one picture ------------------------------------------------------------------------------------------

_warm: set = set()


def warm_up(model, quality: int | None, impl: str, model_files=()) -> None:
    """Encode and decode a 16x16 picture once per process, model, quality and implementation, so that the
    times measured are those of coding, not of loading or compiling the kernels."""
    from refcodec.decoder.decoding import decode_stream
    from refcodec.encoder.encode import encode

    key = (model.model_id, quality, impl)
    if key not in _warm:
        tiny = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
        decode_stream(encode(tiny, model, impl, quality=quality), list(model_files), impl)
        _warm.add(key)


def evaluate_picture(path, model, quality: int | None, impl: str = "fast", model_files=()) -> dict:
    """The measures of one picture at one quality: a dict of CompressAI's names (bpp, psnr-rgb,
    ms-ssim-rgb, encoding_time, decoding_time in seconds) plus image, width, height, quality, bytes and
    notes (what reading the picture changed, refcodec.image). ``model``: a shipped model's name or a model
    file, which the decoder is given too."""
    from refcodec.decoder.decoding import decode_stream
    from refcodec.decoder.model import Model
    from refcodec.encoder.encode import encode, resolve_model
    from refcodec.image import psnr, to_rgb_array

    model_files = list(model_files)
    if not isinstance(model, Model) and Path(model).is_file():
        model_files.append(model)
    model = resolve_model(model)
    notes: list = []
    pixels = to_rgb_array(path, notes.append)
    warm_up(model, quality, impl, model_files)
    start = time.perf_counter()
    stream = encode(pixels, model, impl, quality=quality)
    encoded = time.perf_counter()
    decoded = decode_stream(stream, model_files, impl)
    end = time.perf_counter()
    h, w, _ = pixels.shape
    quality_db = psnr(pixels, decoded)
    return {"image": str(path), "width": w, "height": h, "quality": quality, "bytes": len(stream),
            "bpp": 8 * len(stream) / (w * h), "psnr-rgb": None if math.isinf(quality_db) else quality_db,
            "ms-ssim-rgb": ms_ssim(pixels, decoded), "encoding_time": encoded - start,
            "decoding_time": end - encoded, "notes": notes}


# --- a dataset ----------------------------------------------------------------------------------------------

MEASURES = ("bpp", "psnr-rgb", "ms-ssim-rgb", "encoding_time", "decoding_time")


def summarise(rows: list, qualities: list, model, description: str, label: str | None = None) -> dict:
    """The JSON document of a run: CompressAI's ``results`` (means per quality, in the order of
    ``qualities``) and every picture's measures in ``per_image``; named refcodec-<label> (default: the
    model's name)."""
    results: dict = {"quality": qualities, **{m: [] for m in MEASURES}}
    for q in qualities:
        mine = [r for r in rows if r["quality"] == q]
        for m in MEASURES:
            values = [r[m] for r in mine if r[m] is not None]
            results[m].append(float(np.mean(values)) if values else None)
    rows = sorted(rows, key=lambda r: (r["image"], -1 if r["quality"] is None else r["quality"]))
    return {"name": f"refcodec-{label or model.name}", "description": description,
            "model": {"name": model.name, "architecture": model.architecture, "model_id": model.model_id.hex(),
                      "levels": model.levels},
            "images": len({r["image"] for r in rows}), "results": results, "per_image": rows}


def table(document: dict) -> str:
    """The means per quality as a text table."""
    r = document["results"]
    lines = [f"{'quality':>7} {'bpp':>8} {'PSNR dB':>8} {'MS-SSIM':>8} {'enc s':>7} {'dec s':>7}"]

    def fmt(v, spec):
        return format(v, spec) if v is not None else format("-", f">{spec.split('.')[0]}")

    for i, q in enumerate(r["quality"]):
        lines.append(f"{'-' if q is None else q:>7} {fmt(r['bpp'][i], '8.4f')} {fmt(r['psnr-rgb'][i], '8.2f')} "
                     f"{fmt(r['ms-ssim-rgb'][i], '8.4f')} {fmt(r['encoding_time'][i], '7.3f')} "
                     f"{fmt(r['decoding_time'][i], '7.3f')}")
    return "\n".join(lines)


def plot(document: dict, path) -> None:
    """PSNR and MS-SSIM (in dB, -10 log10(1 - MS-SSIM)) against bpp, one point per quality, as a picture
    (the format from the extension). Needs matplotlib (the bench extra)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    r = document["results"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    points = [(b, p, s) for b, p, s in zip(r["bpp"], r["psnr-rgb"], r["ms-ssim-rgb"], strict=True) if b is not None]
    bpp = [b for b, _, _ in points]
    axes[0].plot(bpp, [p if p is not None else np.nan for _, p, _ in points], "o-", label=document["name"])
    axes[0].set(xlabel="bits per pixel", ylabel="PSNR RGB (dB)", title="PSNR")
    ms_db = [-10 * math.log10(1 - s) if s is not None and s < 1 else np.nan for _, _, s in points]
    axes[1].plot(bpp, ms_db, "o-", label=document["name"])
    axes[1].set(xlabel="bits per pixel", ylabel="MS-SSIM RGB (dB)", title="MS-SSIM")
    for ax in axes:
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.suptitle(f"{document['name']}: {document['images']} pictures")
    fig.savefig(Path(path))
    plt.close(fig)
