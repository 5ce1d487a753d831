"""Reading and writing pictures with Pillow (the CLI's and API's edges; Annex A.1.1, encoder side only).

Pictures are (H, W, 3) uint8 arrays, R, G, B (spec §2.5), at most MAX_DIMENSION on each side (spec §7.3).
What the encoder does to a picture it reads, before coding (nothing of it is in the stream):

- EXIF orientation is applied (as ``PIL.ImageOps.exif_transpose``), so a portrait photo stays upright;
- an embedded ICC profile other than sRGB is converted to sRGB (``PIL.ImageCms``), because a stream
  carries no colour profile and decoded pictures are taken as sRGB;
- 16-bit RGB and 16-bit grayscale are both rounded to 8 bits, round(v / 257);
- grayscale, bilevel and palette pictures become RGB with equal components;
- alpha (an alpha channel or palette transparency) is refused: flatten the picture first.

Each change that alters sample values (ICC conversion, 16-bit rounding) is reported through ``note``
(the CLI prints it on stderr). Decoded pictures are written only in lossless formats (``OUTPUT_FORMATS``).
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import sys
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import numpy as np
from PIL import Image

from refcodec.decoder.bitstream import MAX_DIMENSION
from refcodec.decoder.errors import InputError

ACCEPTED_MODES = {"RGB", "L", "1", "P"}
ALPHA_MODES = {"RGBA", "LA", "PA", "La", "RGBa", "RGBX"}
GRAY16_MODES = {"I;16", "I;16B", "I;16L", "I;16N", "I"}
SWAPPED_16 = {"RGB;16B": "RGB;16L", "RGB;16L": "RGB;16B"}  # the rawmodes of 16-bit RGB, high byte <-> low byte
ORIENTATION_TAG = 0x0112  # EXIF Orientation -> the transposition of PIL.ImageOps.exif_transpose
TRANSPOSE = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
             5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
             8: Image.Transpose.ROTATE_90}
FLATTEN_HINT = ("flatten it onto a background first (Pillow: Image.alpha_composite(Image.new('RGBA', im.size, "
                "'white'), im.convert('RGBA')).convert('RGB'); ImageMagick: -background white -alpha remove)")

# Output formats of decoded pictures: every one lossless. Extension -> Pillow format ("RGB": raw bytes).
OUTPUT_FORMATS = {".png": "PNG", ".ppm": "PPM", ".pnm": "PPM", ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF",
                  ".webp": "WEBP", ".rgb": "RGB", ".raw": "RGB"}
FORMAT_NAMES = {"png": "PNG", "ppm": "PPM", "pnm": "PPM", "bmp": "BMP", "tiff": "TIFF", "webp": "WEBP",
                "rgb": "RGB"}  # --format NAME
FORMAT_EXTENSIONS = {"PNG": ".png", "PPM": ".ppm", "BMP": ".bmp", "TIFF": ".tif", "WEBP": ".webp", "RGB": ".rgb"}
LOSSY_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".jpe": "JPEG", ".jfif": "JPEG", ".jp2": "JPEG 2000",
                 ".j2k": "JPEG 2000", ".jpx": "JPEG 2000", ".heic": "HEIC", ".heif": "HEIF", ".avif": "AVIF",
                 ".gif": "GIF (256 colours)", ".jxl": "JPEG XL"}
# What a folder given as input holds: the files with these extensions are read as pictures.
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".jpe", ".jfif", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pnm",
                    ".pgm", ".pbm", ".gif", ".tga", ".heic", ".heif", ".avif", ".jxl")

Note = Callable[[str], None]
SPOOL_BYTES = 64 << 20  # a picture for stdout is kept in memory up to this size, then in a temporary file


class OutputFormatError(ValueError):
    """A decoded picture cannot be written in the format asked for (lossy or unknown)."""


def _silent(_: str) -> None:
    pass


def to_rgb_array(image, note: Note | None = None) -> np.ndarray:
    """An (H, W, 3) uint8 array of a picture: a path (str or os.PathLike), the bytes of an encoded picture
    (PNG, JPEG, ... as bytes, bytearray or memoryview), a PIL image, or an (H, W, 3) / (H, W) uint8 array.

    Files and encoded bytes have their EXIF orientation applied, a non-sRGB ICC profile converted to sRGB
    and 16-bit samples rounded to 8 bits; ``note(text)`` is told of each change of sample values. Raises
    InputError (Annex A.1.1) for a picture that cannot be read, has alpha, is of another mode, or is larger
    than MAX_DIMENSION on a side.
    """
    note = note or _silent
    if isinstance(image, (bytes, bytearray, memoryview)):
        return _read_picture(lambda: io.BytesIO(bytes(image)), "the image bytes", note)
    if isinstance(image, (str, os.PathLike)):
        return _read_picture(lambda: image, str(image), note)
    if isinstance(image, Image.Image):
        return picture_array(image, note)
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        kind = "bytes (an encoded picture) or " if arr.dtype.kind == "S" else ""
        raise InputError(f"an image array must be uint8, is {arr.dtype}; pass {kind}a path, PIL image or uint8 "
                         "array", "A.1.1")
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise InputError(f"image array must be (H, W, 3) or (H, W), is {arr.shape}", "A.1.1")
    _check_size(arr.shape[1], arr.shape[0])
    return np.ascontiguousarray(arr)


_PILLOW_LIMIT = threading.Lock()


@contextlib.contextmanager
def _pillow_limit_at_ours() -> Iterator[None]:
    """Pillow refuses a picture above 2 x Image.MAX_IMAGE_PIXELS (about 179 million pixels by default) as a
    decompression bomb when it opens it; refcodec's own limit, MAX_DIMENSION on a side (2^28 pixels, spec
    §7.3), checked right after the opening and before any pixel is decoded, is the one that applies, so
    Pillow's is raised to it while a picture is opened (and put back, under a lock, for other users)."""
    with _PILLOW_LIMIT:
        old = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None if old is None else max(old, MAX_DIMENSION * MAX_DIMENSION)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                yield
        finally:
            Image.MAX_IMAGE_PIXELS = old


def _open(source: Callable) -> Image.Image:
    with _pillow_limit_at_ours():
        return Image.open(source())


def _read_picture(source: Callable, label: str, note: Note) -> np.ndarray:
    """Open ``source()`` (a path or a file object) with Pillow and make it a picture."""
    try:
        with _open(source) as im:
            _check_size(*im.size)  # before decoding any pixel
            return picture_array(im, note, source)
    except (OSError, Image.DecompressionBombError) as e:
        raise InputError(f"cannot read image {label}: {e}", "A.1.1") from None


def picture_array(im: Image.Image, note: Note | None = None, reopen: Callable | None = None) -> np.ndarray:
    """The (H, W, 3) uint8 picture of a PIL image, with the changes of ``to_rgb_array``. ``reopen()``, when
    given, opens the same file again (to read the low bytes of 16-bit RGB); without it 16-bit RGB that Pillow
    has already cut to 8 bits is taken as it is."""
    note = note or _silent
    if im.mode in ALPHA_MODES or "transparency" in im.info:
        what = f"mode {im.mode}" if im.mode in ALPHA_MODES else f"mode {im.mode} with a transparent colour"
        raise InputError(f"image has an alpha channel ({what}); refcodec codes RGB only: {FLATTEN_HINT}", "A.1.1")
    rgb16 = _rgb16(im, reopen)  # first: PNG's getexif() loads the picture (its eXIf chunk may follow the data)
    orientation = im.getexif().get(ORIENTATION_TAG, 1)
    icc = im.info.get("icc_profile")
    if rgb16 is not None:
        out = Image.fromarray(_round16(rgb16), "RGB")
        note("16-bit RGB rounded to 8 bits per sample (refcodec codes 8-bit pictures)")
    elif im.mode in GRAY16_MODES:
        values = np.asarray(im)
        if values.size and (values.min() < 0 or values.max() > 65535):
            raise InputError(f"image mode {im.mode} has samples outside 0..65535; refcodec codes 8-bit pictures",
                             "A.1.1")
        out = Image.fromarray(_round16(values), "L")
        note("16-bit grayscale rounded to 8 bits per sample (refcodec codes 8-bit pictures)")
    elif im.mode in ACCEPTED_MODES:
        im.load()
        out = im if im.mode in ("RGB", "L") else im.convert("RGB")
    else:
        raise InputError(f"image mode {im.mode} is not 8- or 16-bit RGB or grayscale; convert it to RGB first",
                         "A.1.1")
    if icc:
        out = _to_srgb(out, icc, note)
    if orientation in TRANSPOSE:
        out = out.transpose(TRANSPOSE[orientation])
    return to_rgb_array(np.asarray(out.convert("RGB") if out.mode != "RGB" else out))


def _rawmode(tile) -> str:
    args = tile[3]
    return args if isinstance(args, str) else args[0] if isinstance(args, tuple) and args else ""


def _rgb16(im: Image.Image, reopen: Callable | None) -> np.ndarray | None:
    """The (H, W, 3) uint16 samples of a 16-bit RGB file Pillow would cut to 8 bits (PNG, PPM, TIFF), or None
    for any other picture. Pillow has no 16-bit RGB mode, so the file is decoded twice, once keeping the
    high byte of each sample (Pillow's own decoding) and once the low byte (the byte-swapped rawmode)."""
    if im.mode != "RGB" or not getattr(im, "tile", None) or reopen is None:
        return None
    modes = {_rawmode(t) for t in getattr(im, "tile", ())}
    if not modes & set(SWAPPED_16):
        return None
    if not modes <= set(SWAPPED_16):
        raise InputError(f"16-bit RGB stored as {sorted(modes)} cannot be read exactly; convert it to 8 bits "
                         "first", "A.1.1")
    with _open(reopen) as low:
        swapped = []
        for t in low.tile:
            args = t[3]
            args = SWAPPED_16[args] if isinstance(args, str) else (SWAPPED_16[args[0]], *args[1:])
            swapped.append(t._replace(args=args) if hasattr(t, "_replace") else (t[0], t[1], t[2], args))
        low.tile = swapped
        low.load()
        lo = np.asarray(low)
    im.load()
    return (np.asarray(im).astype(np.uint16) << 8) | lo


def _round16(values: np.ndarray) -> np.ndarray:
    """8-bit samples of 16-bit ones: round(v / 257), exact (257 is odd: no ties)."""
    return ((values.astype(np.int64) + 128) // 257).astype(np.uint8)


def _to_srgb(im: Image.Image, icc: bytes, note: Note) -> Image.Image:
    """``im`` (mode RGB or L) converted from its ICC profile to sRGB; unchanged if the profile is sRGB."""
    try:
        from PIL import ImageCms
    except ImportError:
        raise InputError("image has an ICC profile and this Pillow has no colour management (ImageCms): convert "
                         "it to sRGB first", "A.1.1") from None
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        name = (ImageCms.getProfileDescription(profile) or "").strip()
        space = profile.profile.xcolor_space.strip()
    except (OSError, ImageCms.PyCMSError) as e:
        raise InputError(f"image has an ICC profile that cannot be read ({e}); convert it to sRGB first",
                         "A.1.1") from None
    if "srgb" in name.lower().replace(" ", "").replace("-", ""):
        return im
    wanted = {"RGB": "RGB", "GRAY": "L"}.get(space)
    if wanted != im.mode:
        note(f"ignored an ICC profile of colour space {space or '?'} ({name!r}) on a {im.mode} picture")
        return im
    try:
        srgb = ImageCms.createProfile("sRGB")
        out = ImageCms.profileToProfile(im, profile, srgb, renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC,
                                        outputMode="RGB")
    except ImageCms.PyCMSError as e:
        raise InputError(f"cannot convert the image's ICC profile {name!r} to sRGB ({e})", "A.1.1") from None
    note(f"converted from its ICC profile {name!r} to sRGB (streams carry no colour profile; decoded pictures "
         "are sRGB)")
    return out if out is not None else im


def _check_size(w: int, h: int) -> None:
    if not (1 <= h <= MAX_DIMENSION and 1 <= w <= MAX_DIMENSION):
        raise InputError(f"image is {w}x{h}; each side must be 1..{MAX_DIMENSION}", "A.1.1")


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """RGB 8-bit PSNR in dB, MSE over all samples; inf for identical pictures."""
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch {a.shape} vs {b.shape}")
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def output_format(path, fmt: str | None = None) -> str:
    """The Pillow format ("RGB": raw bytes) a decoded picture is written in: ``fmt`` (a name of FORMAT_NAMES)
    if given, else the one of the path's extension, PNG for "-" (stdout). Raises OutputFormatError for a lossy or
    unknown extension, before any decoding."""
    if fmt is not None:
        if fmt.lower() not in FORMAT_NAMES:
            raise OutputFormatError(f"unknown output format {fmt!r}; choose one of {', '.join(FORMAT_NAMES)}")
        return FORMAT_NAMES[fmt.lower()]
    if str(path) == "-":
        return "PNG"
    ext = Path(path).suffix.lower()
    if ext in OUTPUT_FORMATS:
        return OUTPUT_FORMATS[ext]
    known = ", ".join(OUTPUT_FORMATS)
    if ext in LOSSY_FORMATS:
        raise OutputFormatError(f"{path}: {LOSSY_FORMATS[ext]} would change the decoded picture; refcodec writes "
                                f"it only in lossless formats ({known}): write a .png and convert that if you "
                                f"need {LOSSY_FORMATS[ext]}")
    raise OutputFormatError(f"{path}: unknown output format {ext or '(no extension)'!r}; name it with one of "
                            f"{known} or --format")


def picture_bytes(pixels: np.ndarray, fmt: str = "PNG") -> bytes:
    """The file of a decoded picture in a lossless format of ``output_format`` ("RGB": raw bytes, row-major)."""
    if fmt == "RGB":
        return np.ascontiguousarray(pixels).tobytes()
    options = {"WEBP": {"lossless": True, "quality": 100, "exact": True}}.get(fmt, {})
    buf = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buf, format=fmt, **options)
    return buf.getvalue()


def png_bytes(pixels: np.ndarray) -> bytes:
    return picture_bytes(pixels, "PNG")


def check_output_path(path) -> None:
    """Raise OSError naming ``path`` if a file cannot be written there: its folder is missing or not writable,
    it is a folder, or its name is too long. Checked before any work; "-" (stdout) always passes."""
    if str(path) == "-":
        return
    path = Path(path)
    folder = path.parent
    if path.is_dir():
        raise OSError(21, "is a directory", str(path))
    if not folder.is_dir():
        raise OSError(2, f"no such directory {str(folder)!r}", str(path))
    try:
        name_max = os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):
        name_max = 255
    if len(os.fsencode(path.name)) > name_max:
        raise OSError(36, f"file name longer than {name_max} bytes", str(path))
    try:
        fd, probe = tempfile.mkstemp(prefix=".refcodec-", suffix=".tmp", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise OSError(e.errno, f"cannot write in {str(folder)!r}: {e.strerror}", str(path)) from None


@contextlib.contextmanager
def atomic_file(path) -> Iterator[IO[bytes]]:
    """A binary file that becomes ``path`` only if the block ends without an error: a temporary file next to
    it, renamed over it at the end, and removed on any error, so that ``path`` either appears complete or not
    at all and a file already there stays as it was (spec §2.6). An error names ``path``, not the temporary
    file."""
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=".refcodec-", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise OSError(e.errno, e.strerror, str(path)) from None
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # the permissions a plain open() would give, not mkstemp's 0600
        with os.fdopen(fd, "wb") as f:
            yield f
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise OSError(e.errno, e.strerror, str(path)) from None
        raise


def write_atomic(path, data: bytes) -> None:
    """Write a file so that it either appears complete or not at all (``atomic_file``)."""
    with atomic_file(path) as f:
        f.write(data)


@contextlib.contextmanager
def output_file(path) -> Iterator[IO[bytes]]:
    """A binary file for an output that appears only if the block ends without an error: ``atomic_file`` for a
    path; for "-" (stdout) a temporary file (in memory up to SPOOL_BYTES) copied to stdout at the end."""
    if str(path) != "-":
        with atomic_file(path) as f:
            yield f
        return
    with tempfile.SpooledTemporaryFile(SPOOL_BYTES) as f:
        yield f
        f.seek(0)
        shutil.copyfileobj(f, sys.stdout.buffer)
        sys.stdout.buffer.flush()


class RowWriter:
    """A picture file that is a header and then the raw RGB rows (PPM, raw .rgb): written as the rows come."""

    def __init__(self, f: IO[bytes], header: bytes, width: int, height: int):
        self.f, self.width, self.height, self.rows = f, width, height, 0
        f.write(header)

    def write(self, band: np.ndarray) -> None:
        """The next rows of the picture, (rows, width, 3) uint8."""
        self.f.write(np.ascontiguousarray(band).tobytes())
        self.rows += band.shape[0]

    def close(self) -> None:
        """Check that every row was written (the file is complete)."""
        if self.rows != self.height:
            raise ValueError(f"{self.rows} rows written of a picture of {self.height}")


class WholeWriter:
    """A picture file Pillow writes from the whole picture (BMP, TIFF, WebP): the rows are held until ``close``."""

    def __init__(self, f: IO[bytes], fmt: str, width: int, height: int):
        self.f, self.fmt = f, fmt
        self.pixels = np.empty((height, width, 3), np.uint8)
        self.rows = 0

    def write(self, band: np.ndarray) -> None:
        """The next rows of the picture, (rows, width, 3) uint8."""
        self.pixels[self.rows : self.rows + band.shape[0]] = band
        self.rows += band.shape[0]

    def close(self) -> None:
        """Write the file of the whole picture, every row of which must have been written."""
        if self.rows != self.pixels.shape[0]:
            raise ValueError(f"{self.rows} rows written of a picture of {self.pixels.shape[0]}")
        self.f.write(picture_bytes(self.pixels, self.fmt))


def picture_writer(f: IO[bytes], fmt: str, width: int, height: int):
    """A writer of a decoded picture of ``width`` x ``height`` in the format ``fmt`` of ``output_format`` to the
    binary file ``f``: ``write(band)`` takes its rows top to bottom, (rows, width, 3) uint8, and ``close()``
    ends the file. PNG (refcodec.png), PPM and raw RGB are written as the rows come, in bounded memory; BMP,
    TIFF and WebP, which Pillow writes from a whole picture, hold it until ``close``."""
    from refcodec.png import PngWriter

    if fmt == "PNG":
        return PngWriter(f, width, height)
    if fmt in ("PPM", "RGB"):
        return RowWriter(f, b"P6\n%d %d\n255\n" % (width, height) if fmt == "PPM" else b"", width, height)
    return WholeWriter(f, fmt, width, height)


def write_picture(path, fmt: str, width: int, height: int, bands) -> None:
    """Write a decoded picture of ``width`` x ``height``, given as bands (first row, (rows, width, 3) uint8) top
    to bottom, to ``path`` ("-": stdout) in the format ``fmt`` of ``output_format``, each band as it comes
    (``picture_writer``); the file appears only once the last band is in and nothing failed (``output_file``:
    spec §2.6)."""
    with output_file(path) as f:
        writer = picture_writer(f, fmt, width, height)
        for _, rows in bands:
            writer.write(rows)
        writer.close()
