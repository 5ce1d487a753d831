"""Errors a decoder reports (spec §2.6), and ``require``, the spec's Require.

Every malformed stream or model file raises a subclass of :class:`RefcodecError`
whose message names the violated clause, e.g.
``StreamError: y sub-stream ends before its last symbol (spec §3.3)``.
"""

from refcodec.decoder.conventions import clause


class RefcodecError(Exception):
    """Base class of every error refcodec raises on purpose."""

    def __init__(self, message: str, clause: str):
        self.message = message
        self.clause = clause
        super().__init__(f"{message} (spec §{clause})")


class StreamError(RefcodecError):
    """The bitstream violates the syntax or a conformance requirement (spec §3, §7, §8)."""


class ModelError(RefcodecError):
    """The model file is malformed, violates a limit, or is not the one the stream names (spec §4, §6)."""


class InputError(RefcodecError):
    """The encoder cannot take this image (Annex A)."""


class LimitError(RefcodecError):
    """A valid stream whose picture is larger than the caller allows (``max_pixels``): not a violation of
    the spec, a decoding refused before any of it is done, as Pillow's decompression-bomb check does."""


@clause("2.6")
def require(condition: bool, error_class: type[RefcodecError], clause: str, what: str) -> None:
    """Require (spec §2.6): raise ``error_class`` (StreamError or ModelError) naming ``clause`` unless
    ``condition`` holds."""
    if not condition:
        raise error_class(what, clause)
