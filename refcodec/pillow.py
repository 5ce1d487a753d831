"""A Pillow plugin for refcodec streams, as pillow-heif, pillow-avif-plugin and pillow-jxl-plugin are for theirs.

    import refcodec.pillow                      # registers the format "RCDC" and the extension .rcdc
    from PIL import Image

    im = Image.open("photo.rcdc")                # decodes (spec §8) when the pixels are first needed
    im.save("copy.rcdc", model="joint")          # encodes (Annex A.1); options: model=, quality=, impl=

Saving takes ``model`` (a shipped model's name or a model file; default "factorized"), ``quality`` (a level
1 .. L of a model with quality levels, default the middle one; not JPEG's 0-100) and ``impl``. Opening
looks for the stream's model among the shipped ones and the files given to ``register(model_files=...)``.
A malformed stream raises refcodec.StreamError or ModelError when the picture is loaded.
"""

from __future__ import annotations

from typing import Any

from PIL import Image, ImageFile

FORMAT = "RCDC"
EXTENSION = ".rcdc"
MIME = "image/x-refcodec"
MAGIC = b"RCDC"  # spec §7.1 (refcodec.decoder.bitstream.MAGIC)
_options: dict = {"model_files": (), "impl": "fast"}
_TILE: Any = getattr(ImageFile, "_Tile", None)  # Pillow's tile entries are named tuples from Pillow 11 on


def _accept(prefix: bytes) -> bool:
    return prefix[:4] == MAGIC


class RcdcImageFile(ImageFile.ImageFile):
    """A refcodec stream opened by Pillow: the size from its header (spec §7.1), the pixels decoded on load."""

    format = FORMAT
    format_description = "refcodec learned image stream"

    def _open(self) -> None:
        assert self.fp is not None
        head = self.fp.read(43)  # magic .. height of a version-2 header (spec §7.1)
        if not _accept(head) or len(head) < 42 or head[4] not in (1, 2):
            raise SyntaxError("not a refcodec stream")
        pos = 38 if head[4] == 1 else 39  # width, then height, u(16) each
        width, height = int.from_bytes(head[pos : pos + 2], "little"), int.from_bytes(head[pos + 2 : pos + 4], "little")
        if not (width and height):
            raise SyntaxError("refcodec stream with an empty picture")
        self._mode = "RGB"
        self._size = (width, height)
        entry: Any = ("refcodec", (0, 0, width, height), 0, None)
        self.tile = [_TILE(*entry) if _TILE else entry]


class RcdcDecoder(ImageFile.PyDecoder):
    """Reads the whole stream (never more than the largest valid one, spec §7.3) and decodes it."""

    _pulls_fd = True

    def decode(self, buffer) -> tuple[int, int]:
        from refcodec.decoder.bitstream import read_stream_file
        from refcodec.decoder.decoding import decode_stream

        assert self.fd is not None
        pixels = decode_stream(read_stream_file(self.fd), list(_options["model_files"]), _options["impl"])
        self.set_as_raw(pixels.tobytes())
        return -1, 0


def _save(im: Image.Image, fp, filename) -> None:
    from refcodec import DEFAULT_MODEL
    from refcodec.encoder.encode import encode

    info = getattr(im, "encoderinfo", {})
    fp.write(encode(im, model=info.get("model", DEFAULT_MODEL), impl=info.get("impl", "fast"),
                    quality=info.get("quality")))


def register(model_files=(), impl: str = "fast") -> None:
    """Register the plugin (done on import); ``model_files`` are looked in for the models of streams that are
    opened, ``impl`` decodes them ("fast" or "reference")."""
    _options.update(model_files=tuple(model_files), impl=impl)
    Image.register_open(FORMAT, RcdcImageFile, _accept)
    Image.register_decoder("refcodec", RcdcDecoder)
    Image.register_save(FORMAT, _save)
    Image.register_extension(FORMAT, EXTENSION)
    Image.register_mime(FORMAT, MIME)


register()
