"""refcodec: reference implementation of an integer-only learned image codec
(factorized prior, scale hyperprior, mean-scale hyperprior, joint context model).

    import refcodec
    stream = refcodec.encode("photo.png")          # bytes (spec §7)
    pixels = refcodec.decode(stream)               # (H, W, 3) uint8 (spec §8)

The written specification in spec/ is normative; this package is its
reference implementation.
"""

from .decoder import decode
from .encoder import encode
from .errors import InputError, ModelError, RefcodecError, StreamError

__all__ = ["encode", "decode", "RefcodecError", "StreamError", "ModelError", "InputError"]
__version__ = "0.3.0"
