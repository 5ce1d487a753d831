"""refcodec: reference implementation of an integer-only learned image codec
(factorized prior, scale hyperprior, mean-scale hyperprior, joint context model).

    import refcodec
    stream = refcodec.encode("photo.png")          # bytes (spec §7); the default model is "factorized"
    pixels = refcodec.decode(stream)               # (H, W, 3) uint8 (spec §8)

The written specification in spec/ is normative; this package is its reference implementation.
``import refcodec.pillow`` lets Pillow open and save ``.rcdc`` files.

Importing the package is cheap: Numba, Pillow and the encoder load on first use. Numba's compiled
kernels are cached in a per-user folder ($NUMBA_CACHE_DIR if set, else $XDG_CACHE_HOME/refcodec/numba
or ~/.cache/refcodec/numba), never inside the installed package.
"""

from __future__ import annotations

import os
import sys


def numba_cache_dir() -> str:
    """The per-user folder of Numba's compiled kernels: $NUMBA_CACHE_DIR if the user set it, else
    $XDG_CACHE_HOME/refcodec/numba (%LOCALAPPDATA% on Windows), else ~/.cache/refcodec/numba."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return os.environ["NUMBA_CACHE_DIR"]
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):
        base = os.environ.get("LOCALAPPDATA", "") if os.name == "nt" else ""
    if not os.path.isabs(base):
        base = os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "refcodec", "numba")


def _use_user_cache() -> None:
    """Point Numba's cache at numba_cache_dir() before any kernel is defined, unless the user chose a folder:
    a cache inside site-packages outlives ``pip uninstall`` and shadows a later editable install."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return
    os.environ["NUMBA_CACHE_DIR"] = numba_cache_dir()  # read when numba is imported; children inherit it
    config = sys.modules.get("numba.core.config")
    if config is not None and not getattr(config, "CACHE_DIR", ""):  # numba imported before refcodec
        config.CACHE_DIR = os.environ["NUMBA_CACHE_DIR"]  # type: ignore[attr-defined]


_use_user_cache()

# Optional dependencies -> the extra that installs them (pyproject.toml).
EXTRAS = {"torch": "train", "safetensors": "train", "matplotlib": "bench", "pillow_heif": "bench",
          "imagecodecs": "bench", "pytest": "test", "hypothesis": "test", "coverage": "test"}


def missing_extra(error: BaseException) -> str | None:
    """One line naming the extra to install, for a ModuleNotFoundError of an optional dependency; else None."""
    if isinstance(error, ModuleNotFoundError):
        extra = EXTRAS.get((error.name or "").split(".")[0])
        if extra:
            return f"needs the {extra} extra: pip install 'refcodec[{extra}]' (no module named {error.name!r})"
    return None


def _run_as_program() -> bool:
    """True when a refcodec module is the program (``python -m refcodec.encoder.train`` ...)."""
    argv = getattr(sys, "orig_argv", [])
    return any(a == "-m" and i + 1 < len(argv) and argv[i + 1].split(".")[0] == "refcodec"
               for i, a in enumerate(argv))


if _run_as_program():  # a missing extra ends such a program in one line, not a traceback
    _previous_hook = sys.excepthook

    def _one_line_for_missing_extra(kind, error, traceback):
        line = missing_extra(error)
        if line is None:
            _previous_hook(kind, error, traceback)
        else:
            print(f"refcodec: {line}", file=sys.stderr)

    sys.excepthook = _one_line_for_missing_extra

class _RegisterFast:
    """A meta path finder: once ``refcodec.decoder.decoding`` has been imported, by any route, ``refcodec.fast``
    is imported too, which registers ``impl="fast"`` in its table (Numba itself loads on first use). So
    ``import refcodec`` imports neither NumPy nor Numba, and impl="fast" is there whenever a decoder is."""

    def find_spec(self, name, path=None, target=None):
        if name != "refcodec.decoder.decoding":
            return None
        import importlib.machinery

        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _ThenFast(spec.loader)
        return spec


class _ThenFast:
    """The loader of refcodec.decoder.decoding, importing refcodec.fast after it."""

    def __init__(self, loader):
        self.loader = loader

    def __getattr__(self, name):  # get_source, get_filename, ... of the real loader
        return getattr(self.loader, name)

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        self.loader.exec_module(module)
        import importlib

        importlib.import_module("refcodec.fast")


if not any(isinstance(f, _RegisterFast) for f in sys.meta_path):
    sys.meta_path.insert(0, _RegisterFast())

DEFAULT_MODEL = "factorized"  # the shipped model encode() uses by default (refcodec.decoder.model.DEFAULT_MODEL)
_ERRORS = ("InputError", "LimitError", "ModelError", "RefcodecError", "StreamError")


def encode(image, model=DEFAULT_MODEL, impl: str = "fast", return_reconstruction: bool = False,
           quality: int | None = None):
    """Encode a picture to a refcodec stream (spec §7; the encoder of Annex A.1).

    ``image``: a path (str or os.PathLike) or the bytes of an encoded picture (PNG, JPEG, WebP, TIFF, ...
    anything Pillow reads), a PIL image, or an (H, W, 3) or (H, W) uint8 array; at most 16384 on a side.
    Its EXIF orientation is applied, a non-sRGB ICC profile converted to sRGB and 16-bit samples rounded
    to 8 bits; grayscale is coded as RGB; alpha is refused (flatten it first).
    ``model``: a shipped model's name (``refcodec models``; default ``"factorized"``) or a model file path.
    ``quality``: 1 .. L for a model with L quality levels (default: the middle one); None for the others.
    ``impl``: ``"fast"`` (Numba, the default) or ``"reference"`` (NumPy); both give the same bytes.

    Returns the stream (bytes), or (stream, reconstruction) with ``return_reconstruction=True``, the
    reconstruction being the (H, W, 3) uint8 picture every conforming decoder outputs for the stream.

    Raises InputError (a picture it cannot take, a quality the model does not have) and ModelError (an
    unknown or malformed model), both RefcodecError, with a message naming the clause.

    >>> stream = refcodec.encode("photo.png")                                # doctest: +SKIP
    >>> stream, recon = refcodec.encode(png_bytes, model="joint", return_reconstruction=True)  # doctest: +SKIP
    """
    from refcodec.encoder.encode import encode as encode_picture

    return encode_picture(image, model=model, impl=impl, return_reconstruction=return_reconstruction,
                          quality=quality)


DEFAULT_MAX_PIXELS = 1 << 28  # decode()'s max_pixels: 16384 x 16384, the largest picture spec §7.3 allows


def decode(data, model_files=(), impl: str = "fast", max_pixels: int | None = DEFAULT_MAX_PIXELS):
    """Decode a refcodec stream to its picture (the decoding process of spec §8.6).

    ``data``: the stream as bytes, bytearray or memoryview, or a stream file as a path (str or os.PathLike)
    or a binary file object; a file is read up to the largest valid stream (spec §7.3), never further.
    ``model_files``: model file paths to look in for the stream's model, before the shipped ones (spec §6.5).
    ``impl``: ``"fast"`` (the default) or ``"reference"``; both give the same pixels.
    ``max_pixels``: a service decoding untrusted streams sets it lower; a larger picture is refused with a
    LimitError before anything is decoded (None: no limit but the spec's).

    Returns the picture, a (H, W, 3) uint8 NumPy array (R, G, B).

    Raises StreamError (a malformed stream) and ModelError (its model unavailable or malformed), both
    RefcodecError naming the violated clause; LimitError (a picture larger than ``max_pixels``); OSError
    for a file that cannot be read; TypeError for ``data`` of another type.

    >>> pixels = refcodec.decode(open("photo.rcdc", "rb").read())           # doctest: +SKIP
    >>> pixels = refcodec.decode("photo.rcdc", model_files=["my.safetensors"])   # doctest: +SKIP
    """
    from refcodec.decoder.bitstream import read_stream_file
    from refcodec.decoder.decoding import decode_stream  # registers impl="fast" too

    if isinstance(data, (bytearray, memoryview)):
        data = bytes(data)
    elif isinstance(data, (str, os.PathLike)) or hasattr(data, "read"):
        data = read_stream_file(data)
    if not isinstance(data, bytes):
        raise TypeError(f"decode() takes a stream as bytes, bytearray or memoryview, or a path (str or "
                        f"os.PathLike) or binary file to read it from, not {type(data).__name__}")
    if isinstance(model_files, (str, os.PathLike)):
        model_files = [model_files]
    return decode_stream(data, model_files, impl, max_pixels=max_pixels)


def __getattr__(name: str):
    """Lazy attributes: the error classes, ``decode_stream``, and ``__version__`` (from the package metadata)."""
    if name in _ERRORS:
        from refcodec.decoder import errors

        return getattr(errors, name)
    if name == "decode_stream":
        from refcodec.decoder.decoding import decode_stream

        return decode_stream
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            value = version("refcodec")  # the one version source: pyproject.toml
        except PackageNotFoundError:  # a source tree that was never installed
            value = "0+unknown"
        globals()["__version__"] = value
        return value
    raise AttributeError(f"module 'refcodec' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | {*_ERRORS, "decode_stream", "__version__"})


__all__ = ["DEFAULT_MAX_PIXELS", "DEFAULT_MODEL", "InputError", "LimitError", "ModelError", "RefcodecError",
           "StreamError", "__version__", "decode", "encode"]
