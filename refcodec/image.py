"""Reading and writing images with Pillow (the CLI's and API's edges; Annex A.1.1).

Pictures are (H, W, 3) uint8 arrays, R, G, B (spec §2.5), at most
MAX_DIMENSION on each side (spec §7.3).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from refcodec.decoder.bitstream import MAX_DIMENSION
from refcodec.decoder.errors import InputError

ACCEPTED_MODES = {"RGB", "L", "1", "P"}


def to_rgb_array(image) -> np.ndarray:
    """An (H, W, 3) uint8 array from a path, a PIL image or an array; alpha is refused (Annex A.1.1)."""
    if isinstance(image, (str, os.PathLike)):
        try:
            with Image.open(image) as im:
                _check_size(*im.size)  # before decoding any pixel
                im.load()
                return to_rgb_array(im)
        except (OSError, Image.DecompressionBombError) as e:
            raise InputError(f"cannot read image {image}: {e}", "A.1.1") from None
    if isinstance(image, Image.Image):
        if image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in image.info:
            raise InputError(f"image has an alpha channel (mode {image.mode}); refcodec codes RGB only", "A.1.1")
        if image.mode not in ACCEPTED_MODES:
            raise InputError(f"image mode {image.mode} is not 8-bit RGB or grayscale", "A.1.1")
        return to_rgb_array(np.asarray(image.convert("RGB")))
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        raise InputError(f"image array must be uint8, is {arr.dtype}", "A.1.1")
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise InputError(f"image array must be (H, W, 3) or (H, W), is {arr.shape}", "A.1.1")
    _check_size(arr.shape[1], arr.shape[0])
    return np.ascontiguousarray(arr)


def _check_size(w: int, h: int) -> None:
    if not (1 <= h <= MAX_DIMENSION and 1 <= w <= MAX_DIMENSION):
        raise InputError(f"image is {w}x{h}; each side must be 1..{MAX_DIMENSION}", "A.1.1")


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """RGB 8-bit PSNR in dB, MSE over all samples; inf for identical pictures."""
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch {a.shape} vs {b.shape}")
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def write_atomic(path, data: bytes) -> None:
    """Write a file so that it either appears complete or not at all."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or ".")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # the permissions a plain open() would give, not mkstemp's 0600
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def png_bytes(pixels: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buf, format="PNG")
    return buf.getvalue()
