"""refcodec: reference implementation of an integer-only learned image codec
(factorized prior, scale hyperprior, mean-scale hyperprior, joint context model).

    import refcodec
    stream = refcodec.encode("photo.png")          # bytes (spec §7)
    pixels = refcodec.decode(stream)               # (H, W, 3) uint8 (spec §8)

The written specification in spec/ is normative; this package is its
reference implementation.
"""

from importlib.metadata import PackageNotFoundError, version

from refcodec import fast  # noqa: F401 -- registers impl="fast" (built on first use)
from refcodec.decoder.decoding import decode_stream
from refcodec.decoder.errors import InputError, ModelError, RefcodecError, StreamError
from refcodec.encoder.encode import encode

try:
    __version__ = version("refcodec")  # the one version source: pyproject.toml
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"



def decode(data: bytes, model_files=(), impl: str = "fast"):
    """Decode a refcodec stream to an (H, W, 3) uint8 array (spec §8.6), with the fast path by default."""
    return decode_stream(data, model_files, impl)


__all__ = ["InputError", "ModelError", "RefcodecError", "StreamError", "__version__", "decode", "encode"]
