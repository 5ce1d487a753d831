"""Rate-distortion of refcodec's models on the 24 Kodak images and on photos no model trained on,
against their float twins and traditional codecs (JPEG, WebP, HEIC, AVIF, JPEG XL), with
Bjøntegaard BD-rates.

Run from anywhere (defaults are relative to the repository root):

    python benchmarks/rd_kodak.py

Options: --kodak DIR (default <repo>/../shared/data/kodak), --set kodak|skimage|both (default both
when scikit-image is installed, else kodak), --model NAME (repeatable; a shipped model's name or a
model file; default: every shipped model), --codecs LIST (comma-separated subset of
jpeg,webp,heic,avif,jxl; default all), --plot PNG, --json FILE, --limit N (first N images of each
set only, for a quick look), --verify-all (decode every stream and check every float twin's
latents, not only the first image's).

Image sets (``--set``):

- kodak: the 24 Kodak images (``kodim*.png`` in --kodak).
- skimage: the five colour photographs shipped inside the scikit-image wheel (``skimage/data``,
  read from the installed package with Pillow; nothing is downloaded), listed with their sizes,
  sources and licences in ``SKIMAGE_PHOTOS``. None of them is in Kodak or in the training crops
  (../shared/data/train: CQ100, Urban100, Sun-Hays 80).

Points, for each refcodec model: a model with quality levels (``Model.levels`` = L > 0, a model file
with ``quality.y_gain``) is coded at every quality 1..L (``refcodec.encode(..., quality=q)``), and
these points are its rate-distortion curve; a single-rate model is one point. At each point:

1. refcodec (integer): ``refcodec.encode(path, model, return_reconstruction=True, quality=q)``;
   bpp = 8 * len(stream) / (H * W); the reconstruction is the decoder's exact output
   (checked against ``refcodec.decode(stream)`` on the first image, or all with --verify-all).
2. refcodec float twin: the stream's latents y_hat, entropy-decoded from it
   (``refcodec.decoder.decoding.decode_y``), in real units (y_hat * 2^-F, F the model's mean
   shift, spec §8.8; at quality q times the float inverse gain ``encoder.quality.y_inverse[q-1]``
   the integer gains were exported from), through the float synthesis the integer model was
   exported from (stored in the model file as ``encoder.synthesis.*``), rounded to 8 bits. Same
   stream, so same bpp as row 1. That they are the stream's latents is checked on the first image
   (all with --verify-all): their integer synthesis (after the gain of spec §8.11) reproduces row
   1's reconstruction exactly.

Per model, at its reference point (a single-rate model's only point; for a model with levels the
default quality (L + 1) // 2 that ``refcodec.encode`` uses without ``quality``):

3. Each traditional codec at matching bpp: per image, the codec setting whose bpp is closest
   to the model's bpp on that image, searched over the codec's whole range (quality 1..95;
   JPEG XL distance 25..0.25 in 81 log steps plus the curve's distances).
4. At equal PSNR: a single-rate model's bpp carried along the tangent of slope -lambda (the
   lambda it was trained for, from its training record) to 31 dB, which to first order orders the
   models by bpp at equal PSNR (``equal_psnr_table``); a model with levels is read off its curve
   (the same PCHIP interpolation of log-rate as BD-rate), when 31 dB lies within it.

5. BD-rate (Bjøntegaard, the JVET/VCEG "BD-rate with PCHIP" method, ``bd_rate``): each model's
   curve against every codec curve and every other model's curve: log10(bpp) as a piecewise cubic
   Hermite (PCHIP, Fritsch-Carlson) function of PSNR for each curve, both integrated over the PSNR
   range the two curves share; BD-rate = 10^(mean difference) - 1, in percent (negative: the model
   needs that much less rate at equal PSNR). scipy.interpolate.PchipInterpolator when scipy is
   installed (the output says which was used), else the same algorithm in NumPy (``Pchip``). A
   curve of fewer than 4 points (a single-rate model) gets "n/a" and why; curves that share no
   PSNR range get "n/a (no overlap)".

Curves (mean over the images at each setting):

- JPEG: Pillow (libjpeg-turbo), default 4:2:0 subsampling, quality 5..95 step 5.
- WebP: Pillow (libwebp, lossy, 4:2:0), quality 5..95 step 10.
- HEIC: pillow-heif (libheif + x265), 4:4:4 (``chroma=444``), quality 10..60.
- AVIF: imagecodecs (libavif + aom), speed 6, 4:4:4, quality (``level``) 10..80.
- JPEG XL: imagecodecs (libjxl), effort 7, distance 16..1.
Every encode is decoded by the same library and checked to be (H, W, 3) uint8; bpp is
8 * len(encoded bytes) / (H * W), container included.

PSNR is RGB, 8-bit: 10 log10(255^2 / MSE) with the MSE over all three channels,
computed per image; "mean PSNR" is the mean of the per-image values (not the PSNR
of the mean MSE). Mean bpp is the mean of per-image bpp.

Never run by the test suite; importable (``main(argv)``; ``bd_rate`` is tested by
tests/test_bd_rate.py).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]

try:
    import refcodec
except ImportError:
    sys.path.insert(0, str(REPO))
import refcodec
import refcodec.decoder.decoding
import refcodec.decoder.model
import refcodec.encoder.encode
import refcodec.encoder.floatnet
import refcodec.image
from refcodec.image import psnr

DEFAULT_KODAK = REPO.parent / "shared" / "data" / "kodak"
DEFAULT_PLOT = REPO / "benchmarks" / "rd_kodak.png"
DEFAULT_JSON = REPO / "benchmarks" / "rd_kodak.json"
QUALITY_SEARCH = tuple(range(1, 96))  # settings searched for "at matching bpp", increasing bpp
JXL_DISTANCES = (16.0, 10.0, 6.0, 4.0, 2.5, 1.6, 1.0)
JXL_DISTANCE_SEARCH = tuple(sorted({float(d) for d in np.round(np.geomspace(25.0, 0.25, 81), 4)}
                                   | set(JXL_DISTANCES), reverse=True))  # decreasing distance: increasing bpp


# ---------------------------------------------------------------------------
# Measures


def bits_per_pixel(n_bytes: int, height: int, width: int) -> float:
    return 8.0 * n_bytes / (height * width)


def mean_of(records: list, key: str) -> float:
    return float(np.mean([r[key] for r in records]))


def training_info(model) -> dict:
    """The model's ``training`` metadata (a JSON string written by refcodec.encoder.export), or {}."""
    raw = model.metadata.get("training")
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except ValueError:
        return {"unparsed": raw}


# ---------------------------------------------------------------------------
# Image sets


@dataclass(frozen=True)
class ImageSet:
    """A set of test pictures: its key (``--set``, JSON), a title, the files, and where they come from."""

    key: str
    title: str
    files: tuple
    source: str


# The colour photographs inside the scikit-image wheel (skimage/data; no download): file, what it shows
# (width x height), and source and licence as scikit-image's docstrings (skimage.data.<function>) state
# them. Left out: the grayscale pictures (camera, brick, grass, gravel, ...), microscopy (cell, ihc),
# the retina fundus and Hubble deep field (mostly black), drawings and synthetic images.
SKIMAGE_PHOTOS = (
    ("astronaut.png", "astronaut Eileen Collins, 512x512",
     "NASA Great Images (flic.kr/p/r9qvLn); public domain, no known copyright restrictions"),
    ("chelsea.png", "Chelsea the cat, 451x300", "CC0, photographer Stefan van der Walt"),
    ("coffee.png", "coffee cup (Pikolo Espresso Bar), 600x400", "CC0, photographer Rachel Michetti"),
    ("motorcycle_left.png", "Middlebury 2014 stereo 'Motorcycle', left view, downscaled 4x, 741x500",
     "Middlebury stereo benchmark (Scharstein et al., GCPR 2014); scikit-image states no licence"),
    ("rocket.jpg", "DSCOVR launch on a Falcon 9, 640x427 (a JPEG: decoded by Pillow)",
     "SpaceX Photos on Flickr; released into the public domain by SpaceX"),
)


def kodak_images(directory: Path, limit: int | None = None) -> list:
    """The Kodak files kodim*.png of ``directory`` in name order (the first ``limit`` only)."""
    files = sorted(Path(directory).glob("kodim*.png"))
    if not files:
        raise SystemExit(f"no kodim*.png in {directory} (set --kodak)")
    if limit is None and len(files) != 24:
        print(f"warning: {len(files)} Kodak images in {directory}, expected 24", file=sys.stderr)
    return files[:limit] if limit else files


def skimage_data_dir() -> Path | None:
    """skimage/data of the installed scikit-image, or None without scikit-image."""
    try:
        import skimage
    except ImportError:
        return None
    return Path(skimage.__file__).parent / "data"


def kodak_set(directory: Path, limit: int | None = None) -> ImageSet:
    """The Kodak set (the first ``limit`` images)."""
    return ImageSet("kodak", "Kodak", tuple(kodak_images(directory, limit)), str(directory))


def skimage_set(limit: int | None = None) -> ImageSet:
    """The photographs of SKIMAGE_PHOTOS, read from the installed scikit-image wheel (the first ``limit``)."""
    directory = skimage_data_dir()
    if directory is None:
        raise SystemExit("--set skimage needs scikit-image (a benchmark-only package): pip install scikit-image")
    files = tuple(directory / name for name, _, _ in SKIMAGE_PHOTOS)
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise SystemExit(f"{', '.join(missing)} not in {directory}: this scikit-image wheel does not ship them")
    import skimage

    return ImageSet("skimage", "scikit-image photos (unseen)", files[:limit] if limit else files,
                    f"scikit-image {skimage.__version__} wheel, {directory}")


def image_sets(choice: str | None, kodak_dir: Path, limit: int | None) -> list:
    """The ImageSets of ``--set`` (kodak, skimage or both); None: both if scikit-image is installed."""
    if choice is None:
        choice = "both" if skimage_data_dir() is not None else "kodak"
        if choice == "kodak":
            print("note: scikit-image is not installed, so only Kodak is evaluated "
                  "(pip install scikit-image for the unseen set)", file=sys.stderr)
    sets = []
    if choice in ("kodak", "both"):
        sets.append(kodak_set(kodak_dir, limit))
    if choice in ("skimage", "both"):
        sets.append(skimage_set(limit))
    return sets


def set_images(image_set: ImageSet) -> list:
    """Name, size and SHA-256 of each file of the set (and, for SKIMAGE_PHOTOS, what it shows and its
    source and licence), for the JSON output."""
    known = {name: {"shows": shows, "source_licence": licence} for name, shows, licence in SKIMAGE_PHOTOS}
    out = []
    for f in image_set.files:
        with Image.open(f) as im:
            width, height = im.size
        out.append({"image": f.name, "width": width, "height": height,
                    "file_sha256": hashlib.sha256(f.read_bytes()).hexdigest(),
                    **(known.get(f.name, {}) if image_set.key == "skimage" else {})})
    return out


# ---------------------------------------------------------------------------
# Traditional codecs


@dataclass(frozen=True)
class Codec:
    """A traditional codec: how to encode/decode at one setting, which settings to sweep and to search."""

    key: str  # JSON key and --codecs name
    label: str  # plot and table label
    setting: str  # name of the swept parameter ("quality" or "distance")
    curve: tuple  # settings of the RD curve
    search: tuple  # settings tried for "at matching bpp", in order of increasing bpp
    encode: Callable[[np.ndarray, float], bytes]
    decode: Callable[[bytes], np.ndarray]


def pillow_encoder(fmt: str, **options) -> Callable:
    """encode(pixels, quality) through Pillow's ``save(format=fmt, quality=q, **options)``."""

    def encode(pixels: np.ndarray, quality) -> bytes:
        buf = io.BytesIO()
        Image.fromarray(pixels, "RGB").save(buf, format=fmt, quality=int(quality), **options)
        return buf.getvalue()

    return encode


def pillow_decode(data: bytes) -> np.ndarray:
    """Decode any format Pillow (or a registered plug-in) reads, as RGB."""
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


def jpeg_codec() -> Codec:
    """Pillow JPEG (libjpeg-turbo), Pillow's default 4:2:0."""
    return Codec("jpeg", "JPEG (Pillow, 4:2:0)", "quality", tuple(range(5, 100, 5)), QUALITY_SEARCH,
                 pillow_encoder("JPEG"), pillow_decode)


def webp_codec() -> Codec:
    """Pillow WebP, lossy (always 4:2:0)."""
    return Codec("webp", "WebP (Pillow)", "quality", tuple(range(5, 100, 10)), QUALITY_SEARCH,
                 pillow_encoder("WEBP"), pillow_decode)


def heic_codec() -> Codec:
    """HEIC through pillow-heif's Pillow plug-in (libheif + x265), 4:4:4."""
    import pillow_heif

    pillow_heif.register_heif_opener()
    return Codec("heic", "HEIC (pillow-heif, x265, 4:4:4)", "quality", (10, 20, 30, 40, 50, 60), QUALITY_SEARCH,
                 pillow_encoder("HEIF", chroma=444), pillow_decode)


def avif_codec() -> Codec:
    """AVIF through imagecodecs (libavif + aom), speed 6, 4:4:4; ``level`` is the 0..100 quality."""
    import imagecodecs

    def encode(pixels, quality):
        return bytes(imagecodecs.avif_encode(pixels, level=int(quality), speed=6, pixelformat="444", codec="aom"))

    return Codec("avif", "AVIF (libavif/aom, speed 6, 4:4:4)", "quality", (10, 20, 30, 40, 50, 60, 70, 80),
                 QUALITY_SEARCH, encode, imagecodecs.avif_decode)


def jxl_codec() -> Codec:
    """JPEG XL through imagecodecs (libjxl), effort 7, swept by Butteraugli distance."""
    import imagecodecs

    def encode(pixels, distance):
        return bytes(imagecodecs.jpegxl_encode(pixels, distance=float(distance), effort=7))

    return Codec("jxl", "JPEG XL (libjxl, effort 7)", "distance", JXL_DISTANCES, JXL_DISTANCE_SEARCH, encode,
                 imagecodecs.jpegxl_decode)


CODECS = {"jpeg": jpeg_codec, "webp": webp_codec, "heic": heic_codec, "avif": avif_codec, "jxl": jxl_codec}


def codec_versions(codecs: list) -> dict:
    """Library versions behind the selected codecs, refcodec, scipy (BD-rate) and scikit-image (the unseen set)."""
    import PIL.features

    keys = {c.key for c in codecs}
    out = {"refcodec": refcodec.__version__, "numpy": np.__version__, "pillow": Image.__version__}
    for name in ("scipy", "skimage"):  # BD-rate's interpolator; the unseen set's wheel
        try:
            out[name] = __import__(name).__version__
        except ImportError:
            out[name] = None
    if "jpeg" in keys:
        out["libjpeg_turbo"] = PIL.features.version("libjpeg_turbo")
    if "webp" in keys:
        out["libwebp"] = PIL.features.version("webp")
    if "heic" in keys:
        import pillow_heif

        info = pillow_heif.libheif_info()
        out.update(pillow_heif=pillow_heif.__version__, libheif=info.get("libheif"), heic_encoder=info.get("HEIF"))
    if keys & {"avif", "jxl"}:
        import imagecodecs

        out.update(imagecodecs=imagecodecs.__version__, libavif=imagecodecs.avif_version(),
                   libjxl=imagecodecs.jpegxl_version())
    return out


class Points:
    """(bpp, PSNR) of a codec setting on an image; each (codec, image, setting) is encoded once per run."""

    def __init__(self, images: list):
        self.images = images
        self._cache: dict = {}

    def __call__(self, codec: Codec, i: int, setting) -> tuple:
        key = (codec.key, i, setting)
        if key not in self._cache:
            pixels = self.images[i]
            data = codec.encode(pixels, setting)
            decoded = codec.decode(data)
            if decoded.dtype != np.uint8 or decoded.shape != pixels.shape:
                raise RuntimeError(f"{codec.key} at {codec.setting} {setting} decoded to "
                                   f"{decoded.dtype} {decoded.shape}, expected uint8 {pixels.shape}")
            self._cache[key] = (bits_per_pixel(len(data), *pixels.shape[:2]), psnr(pixels, decoded))
        return self._cache[key]


def codec_curve(points: Points, codec: Codec) -> list:
    """Mean bpp / mean PSNR over all images at each of the codec's curve settings."""
    curve = []
    for s in codec.curve:
        pts = [points(codec, i, s) for i in range(len(points.images))]
        curve.append({codec.setting: s, "bpp": float(np.mean([b for b, _ in pts])),
                      "psnr": float(np.mean([p for _, p in pts]))})
    return curve


def closest_setting(bpp_at: Callable[[int], float], n: int, target_bpp: float, known=()) -> int:
    """Index in 0..n-1 (settings in order of increasing bpp) whose bpp is closest to ``target_bpp``.

    Binary search for the first index with bpp >= target (bpp is nearly monotonic in the
    setting), starting from the bracket that the ``known`` (already measured) indices give,
    then the best of its two neighbours either side; ties go to the higher index.
    """
    a, b = 0, n - 1
    for k in known:
        if bpp_at(k) >= target_bpp:
            b = min(b, k)
        else:
            a = max(a, k + 1)
    a = min(a, b)
    while a < b:
        mid = (a + b) // 2
        if bpp_at(mid) >= target_bpp:
            b = mid
        else:
            a = mid + 1
    candidates = [k for k in range(a - 2, a + 3) if 0 <= k < n]
    return min(candidates, key=lambda k: (abs(bpp_at(k) - target_bpp), -k))


def eval_matched(points: Points, codec: Codec, names: list, int_records: list) -> list:
    """Per image, the codec setting whose bpp is closest to refcodec's bpp on that image."""
    known = [codec.search.index(s) for s in codec.curve if s in codec.search]  # measured by codec_curve
    records = []
    for i, (name, ref) in enumerate(zip(names, int_records, strict=True)):
        k = closest_setting(lambda j, i=i: points(codec, i, codec.search[j])[0], len(codec.search), ref["bpp"], known)
        setting = codec.search[k]
        bpp, p = points(codec, i, setting)
        records.append({"image": name, "target_bpp": ref["bpp"], codec.setting: setting, "bpp": bpp, "psnr": p})
    return records


def matched_summary(codec: Codec, records: list, int_psnr: float) -> dict:
    """Mean bpp / PSNR of the matched records, the settings' range, and refcodec - codec in dB."""
    settings = [r[codec.setting] for r in records]
    out = {"bpp": mean_of(records, "bpp"), "psnr": mean_of(records, "psnr"),
           f"{codec.setting}_min": min(settings), f"{codec.setting}_max": max(settings)}
    out["refcodec_minus_codec_db"] = int_psnr - out["psnr"]
    return out


# ---------------------------------------------------------------------------
# refcodec: the integer model and its float twin, at each quality level


def model_key(arg: str) -> str:
    """JSON key of a --model argument: the shipped name as given, or a model file's stem."""
    return Path(arg).stem if arg.endswith(".safetensors") or "/" in arg else arg


def model_files_of(arg: str) -> list:
    """Where the decoder finds the model of a --model argument: [] for a shipped name, else [the file]."""
    return [arg] if model_key(arg) != arg else []


def qualities(model) -> list:
    """The points of a model's curve: [1, ..., L] for a model with L quality levels, [None] for a single rate."""
    return list(range(1, model.levels + 1)) if model.levels else [None]


def default_quality(model) -> int | None:
    """The quality refcodec.encode uses without one: (L + 1) // 2 of L levels; None for a single rate."""
    return (model.levels + 1) // 2 if model.levels else None


def eval_refcodec(files: list, model, verify_all: bool = False, model_files=(), quality: int | None = None) -> tuple:
    """(records, reconstructions, streams) of the integer codec at ``quality`` on every image.

    ``model``: the Model resolved once, so a model file re-exported mid-run is not picked up;
    ``model_files``: where the decoder finds it if it is not a shipped model.
    """
    records, recons, streams = [], [], []
    for i, path in enumerate(files):
        stream, recon = refcodec.encode(path, model=model, return_reconstruction=True, quality=quality)
        pixels = refcodec.image.to_rgb_array(path)
        h, w, _ = pixels.shape
        assert recon.dtype == np.uint8 and recon.shape == (h, w, 3), (recon.dtype, recon.shape)
        if i == 0 or verify_all:
            decoded = refcodec.decode(stream, model_files)
            assert np.array_equal(decoded, recon), f"{path.name}: decode(stream) != encoder's reconstruction"
        records.append({"image": path.name, "height": h, "width": w, "bytes": len(stream),
                        "stream_sha256": hashlib.sha256(stream).hexdigest(),
                        "bpp": bits_per_pixel(len(stream), h, w), "psnr": psnr(pixels, recon),
                        "decode_verified": i == 0 or verify_all})
        recons.append(recon)
        streams.append(stream)
    return records, recons, streams


def float_reconstruction(y_hat: np.ndarray, params: dict, height: int, width: int) -> np.ndarray:
    """The float synthesis of latents in real units, rounded to 8 bits and cropped: (H, W, 3) uint8."""
    x = refcodec.encoder.floatnet.synthesis(np.asarray(y_hat, np.float64), params)
    out = np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(out[:, :height, :width].transpose(1, 2, 0))


def float_twin_input(model, y_hat: np.ndarray, quality: int | None) -> np.ndarray | None:
    """The float synthesis' input for the stream's latents: y_hat * 2^-F, at a quality level also times the
    float inverse gain the integer one was exported from (encoder.quality.y_inverse); None if the model
    file lacks that gain."""
    y = y_hat * 2.0**-model.mean_shift
    if quality is None:
        return y
    inverse = model.encoder.get("quality.y_inverse")
    return None if inverse is None else y * inverse[quality - 1].astype(np.float64)[:, None, None]


def eval_float_twin(images: list, names: list, model, int_records: list, int_recons: list, streams: list,
                    model_files=(), verify_all: bool = False, quality: int | None = None) -> list:
    """The float synthesis of each stream's latents (entropy-decoded, ``decode_y``), per image; [] for a model
    with levels whose file lacks the float inverse gains.

    That they are the stream's latents is checked on the first image (every image with
    ``verify_all``): their integer synthesis (after the gain of spec §8.11) must give row 1's
    reconstruction exactly.
    """
    records = []
    decoding = refcodec.decoder.decoding
    rows = zip(images, names, int_records, int_recons, streams, strict=True)
    for i, (pixels, name, ref, recon, stream) in enumerate(rows):
        h, w, _ = pixels.shape
        header, _ = decoding.open_stream(stream, model_files)
        y_hat = decoding.decode_y(header, model, "fast")["y_hat"]
        y_float = float_twin_input(model, y_hat, quality)
        if y_float is None:
            return []
        same = None
        if i == 0 or verify_all:
            y_in = decoding.gained(y_hat, model.y_gain, header.quality)
            same = bool(np.array_equal(decoding.synthesis(y_in, model.synthesis, h, w, "fast"), recon))
        p = psnr(pixels, float_reconstruction(y_float, model.encoder, h, w))
        records.append({"image": name, "bpp": ref["bpp"], "psnr": p, "same_latents": same,
                        "int_minus_float_db": ref["psnr"] - p})
    return records


def point_summary(int_records: list, float_records: list) -> dict:
    """Means of one point: integer bpp / PSNR, float twin PSNR and the int - float gap (None without a twin)."""
    summary = {"refcodec_int": {"bpp": mean_of(int_records, "bpp"), "psnr": mean_of(int_records, "psnr")},
               "refcodec_float": None, "int_minus_float_db": None, "int_minus_float_min_db": None,
               "int_minus_float_max_db": None, "matched": {}}
    if float_records:
        gaps = [r["int_minus_float_db"] for r in float_records]
        summary.update(refcodec_float={"bpp": mean_of(float_records, "bpp"), "psnr": mean_of(float_records, "psnr"),
                                       "note": "same stream as refcodec_int, hence same bpp"},
                       int_minus_float_db=float(np.mean(gaps)), int_minus_float_min_db=float(min(gaps)),
                       int_minus_float_max_db=float(max(gaps)))
    return summary


def eval_point(arg: str, model, files: list, images: list, verify_all: bool, quality: int | None) -> dict:
    """Integer and float-twin records, summary and timings of one model at one quality (None: single rate)."""
    names = [f.name for f in files]
    model_files = model_files_of(arg)
    timings = {}
    t = time.perf_counter()
    int_records, recons, streams = eval_refcodec(files, model, verify_all, model_files, quality)
    timings["int_encode_decode"] = time.perf_counter() - t
    t = time.perf_counter()
    float_records = eval_float_twin(images, names, model, int_records, recons, streams, model_files, verify_all,
                                    quality)
    timings["float_twin"] = time.perf_counter() - t
    label = arg if quality is None else f"{arg} q{quality}"
    if any(r["same_latents"] is False for r in float_records):
        print(f"WARNING [{label}]: the decoded latents do not reproduce the stream's reconstruction", file=sys.stderr)
    if not float_records:
        print(f"note [{label}]: no float twin (the model file has no encoder.quality.y_inverse)", file=sys.stderr)
    print(f"refcodec {label}: integer {timings['int_encode_decode']:.1f} s, float twin {timings['float_twin']:.1f} s",
          flush=True)
    return {"quality": quality, "summary": point_summary(int_records, float_records), "refcodec_int": int_records,
            "refcodec_float": float_records, "matched": {}, "timings_s": timings}


def eval_model(arg: str, model, files: list, images: list, verify_all: bool) -> dict:
    """Every point of one model (each quality level, or its single rate), its curve and identity.

    ``reference`` indexes the point of the matching-bpp and equal-PSNR comparisons: the single point,
    or the default quality of a model with levels.
    """
    points = [eval_point(arg, model, files, images, verify_all, q) for q in qualities(model)]
    curve = [{"quality": p["quality"], "bpp": p["summary"]["refcodec_int"]["bpp"],
              "psnr": p["summary"]["refcodec_int"]["psnr"],
              "float_psnr": (p["summary"]["refcodec_float"] or {}).get("psnr")} for p in points]
    return {"name": arg, "model_id": model.model_id.hex(), "architecture": model.architecture, "n": model.n,
            "m": model.m, "levels": model.levels, "training": training_info(model),
            "reference": qualities(model).index(default_quality(model)), "curve": curve, "points": points}


def reference_point(m: dict) -> dict:
    """The point of a model result used for the matching-bpp and equal-PSNR comparisons."""
    return m["points"][m["reference"]]


def point_label(key: str, point: dict) -> str:
    """A table row's name: the model's key, with " q<quality>" for a point of a model with levels."""
    return key if point["quality"] is None else f"{key} q{point['quality']}"


# ---------------------------------------------------------------------------
# Bjøntegaard BD-rate with PCHIP

MIN_BD_POINTS = 4  # points a curve needs for a BD-rate (the VCEG/JVET method: at least four rates)


class Pchip:
    """The monotone piecewise cubic Hermite interpolant of scipy.interpolate.PchipInterpolator (Fritsch and
    Carlson's slopes: weighted harmonic means inside, the shape-preserving three-point estimate at the two
    ends), in NumPy: used when scipy is not installed; ``__call__`` and ``integrate`` as scipy's within
    the knots."""

    def __init__(self, x, y):
        self.x, self.y = np.asarray(x, np.float64), np.asarray(y, np.float64)
        self.d = self.slopes(self.x, self.y)

    @staticmethod
    def end_slope(h0: float, h1: float, m0: float, m1: float) -> float:
        """The slope at an end knot (one-sided three-point estimate, kept shape-preserving)."""
        d = ((2 * h0 + h1) * m0 - h0 * m1) / (h0 + h1)
        if np.sign(d) != np.sign(m0):
            return 0.0
        if np.sign(m0) != np.sign(m1) and abs(d) > 3 * abs(m0):
            return 3 * m0
        return d

    @classmethod
    def slopes(cls, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """The derivative at each knot."""
        h = np.diff(x)
        m = np.diff(y) / h
        if len(x) == 2:
            return np.array([m[0], m[0]])
        flat = (np.sign(m[1:]) != np.sign(m[:-1])) | (m[1:] == 0) | (m[:-1] == 0)
        w1, w2 = 2 * h[1:] + h[:-1], h[1:] + 2 * h[:-1]
        with np.errstate(divide="ignore", invalid="ignore"):
            inner = (w1 + w2) / (w1 / m[:-1] + w2 / m[1:])
        d = np.empty_like(y)
        d[1:-1] = np.where(flat, 0.0, inner)
        d[0] = cls.end_slope(h[0], h[1], m[0], m[1])
        d[-1] = cls.end_slope(h[-1], h[-2], m[-1], m[-2])
        return d

    def _segment(self, k: int, t: np.ndarray, integral: bool) -> np.ndarray:
        """The cubic of segment k at t = (x - x_k) / h in [0, 1], or its integral from x_k."""
        h = self.x[k + 1] - self.x[k]
        y0, y1, d0, d1 = self.y[k], self.y[k + 1], h * self.d[k], h * self.d[k + 1]
        if integral:  # the Hermite basis functions integrated over [0, t], times h
            return h * (y0 * (t**4 / 2 - t**3 + t) + d0 * (t**4 / 4 - 2 * t**3 / 3 + t**2 / 2)
                        + y1 * (-(t**4) / 2 + t**3) + d1 * (t**4 / 4 - t**3 / 3))
        return y0 * (2 * t**3 - 3 * t**2 + 1) + d0 * (t**3 - 2 * t**2 + t) + y1 * (-2 * t**3 + 3 * t**2) \
            + d1 * (t**3 - t**2)

    def __call__(self, x) -> np.ndarray:
        x = np.asarray(x, np.float64)
        k = np.clip(np.searchsorted(self.x, x, side="right") - 1, 0, len(self.x) - 2)
        t = (x - self.x[k]) / (self.x[k + 1] - self.x[k])
        return np.vectorize(lambda kk, tt: self._segment(int(kk), tt, False))(k, t)

    def integrate(self, a: float, b: float) -> float:
        """The integral from a to b (a <= b, both within the knots)."""
        total = 0.0
        for k in range(len(self.x) - 1):
            lo, hi = max(a, self.x[k]), min(b, self.x[k + 1])
            if lo < hi:
                h = self.x[k + 1] - self.x[k]
                total += self._segment(k, (hi - self.x[k]) / h, True) - self._segment(k, (lo - self.x[k]) / h, True)
        return float(total)


def pchip(x, y, use_scipy: bool = True):
    """The PCHIP interpolant of y(x) (x strictly increasing): scipy's PchipInterpolator if scipy is
    installed (and ``use_scipy``), else ``Pchip``; both take ``(x)`` and ``.integrate(a, b)``."""
    if use_scipy:
        try:
            from scipy.interpolate import PchipInterpolator
        except ImportError:
            pass
        else:
            return PchipInterpolator(x, y)
    return Pchip(x, y)


def pchip_backend() -> str:
    """Which interpolator ``pchip`` uses, for the output."""
    try:
        import scipy
        from scipy.interpolate import PchipInterpolator  # noqa: F401
    except ImportError:
        return "NumPy PCHIP (rd_kodak.Pchip, the algorithm of scipy's PchipInterpolator; scipy is not installed)"
    return f"scipy.interpolate.PchipInterpolator (scipy {scipy.__version__})"


def log_rate_curve(bpp, psnr_db) -> tuple:
    """(PSNR increasing, log10 bpp) of a curve, checked: >= MIN_BD_POINTS points, positive rates, and no two
    points of the same PSNR. Raises ValueError otherwise."""
    bpp, psnr_db = np.asarray(bpp, np.float64), np.asarray(psnr_db, np.float64)
    if bpp.shape != psnr_db.shape or bpp.ndim != 1:
        raise ValueError("a curve is two 1-D sequences of the same length (bpp, PSNR)")
    if len(bpp) < MIN_BD_POINTS:
        raise ValueError(f"a BD-rate curve needs at least {MIN_BD_POINTS} points, got {len(bpp)}")
    if not np.all(bpp > 0) or not np.all(np.isfinite(psnr_db)):
        raise ValueError("rates must be positive and PSNRs finite")
    order = np.argsort(psnr_db, kind="stable")
    if np.any(np.diff(psnr_db[order]) <= 0):
        raise ValueError("two points of a curve have the same PSNR")
    return psnr_db[order], np.log10(bpp[order])


def bd_rate(anchor_bpp, anchor_psnr, test_bpp, test_psnr, use_scipy: bool = True) -> float | None:
    """Bjøntegaard delta rate of the test curve against the anchor curve, in percent (negative: the test
    needs less rate at equal PSNR); None if their PSNR ranges do not overlap.

    The "BD-rate with PCHIP" method of VCEG/JVET: for each curve, log10(rate) as a PCHIP function of PSNR;
    both integrated over the PSNR interval the two curves share; BD-rate = 10^((I_test - I_anchor) /
    (interval length)) - 1. Each curve needs at least MIN_BD_POINTS points (ValueError otherwise).
    """
    pa, ra = log_rate_curve(anchor_bpp, anchor_psnr)
    pt, rt = log_rate_curve(test_bpp, test_psnr)
    lo, hi = max(pa[0], pt[0]), min(pa[-1], pt[-1])
    if not lo < hi:
        return None
    anchor, test = pchip(pa, ra, use_scipy), pchip(pt, rt, use_scipy)
    mean_diff = (float(test.integrate(lo, hi)) - float(anchor.integrate(lo, hi))) / (hi - lo)
    return float((10.0**mean_diff - 1.0) * 100.0)


def bd_rate_entry(test: list, anchor: list) -> dict:
    """The BD-rate of curve ``test`` against ``anchor`` (each a list of {"bpp", "psnr"}) as a table entry:
    {"bd_rate_percent": float or None, "text": the markdown cell, "psnr_range": [lo, hi] or None}."""
    for which, curve in (("row", test), ("column", anchor)):
        if len(curve) < MIN_BD_POINTS:
            why = "single-rate: 1 point" if len(curve) == 1 else f"{len(curve)} points"
            return {"bd_rate_percent": None, "psnr_range": None,
                    "text": f"n/a ({which} {why} < {MIN_BD_POINTS})"}
    args = [[r[k] for r in c] for c in (anchor, test) for k in ("bpp", "psnr")]
    value = bd_rate(*args)
    if value is None:
        return {"bd_rate_percent": None, "psnr_range": None, "text": "n/a (no overlap)"}
    lo = max(min(args[1]), min(args[3]))
    hi = min(max(args[1]), max(args[3]))
    return {"bd_rate_percent": value, "psnr_range": [lo, hi], "text": f"{value:+.1f} %"}


def bd_rate_table(set_results: dict) -> dict:
    """{model key: {anchor key: bd_rate_entry}}: each model's curve against every codec curve and every
    other model's curve of one image set."""
    anchors = {key: c["curve"] for key, c in set_results["codecs"].items()}
    anchors.update({key: m["curve"] for key, m in set_results["models"].items()})
    return {key: {anchor: bd_rate_entry(m["curve"], curve) for anchor, curve in anchors.items() if anchor != key}
            for key, m in set_results["models"].items()}


def rate_at_psnr(curve: list, psnr_db: float) -> float | None:
    """The bpp of a curve at ``psnr_db`` by the PCHIP interpolation of log10(bpp) that BD-rate uses; None if
    the curve has fewer than MIN_BD_POINTS points or does not reach ``psnr_db``."""
    if len(curve) < MIN_BD_POINTS:
        return None
    p, r = log_rate_curve([c["bpp"] for c in curve], [c["psnr"] for c in curve])
    if not p[0] <= psnr_db <= p[-1]:
        return None
    return float(10.0 ** float(pchip(p, r)(psnr_db)))


# ---------------------------------------------------------------------------
# Output

MODEL_COLOURS = ("black", "magenta", "saddlebrown", "teal", "olive", "navy")  # apart from the codecs' colours


def plot_set(ax, set_results: dict) -> None:
    """One panel: every codec curve, and each model's integer curve (stars; one star for a single rate) and
    float-twin points (hollow diamonds, same colour)."""
    markers = "osv^Dph"
    for k, c in enumerate(set_results["codecs"].values()):
        ax.plot([r["bpp"] for r in c["curve"]], [r["psnr"] for r in c["curve"]], markers[k % len(markers)] + "-",
                ms=3, lw=1, label=c["label"])
    visible, rates, widest = [], [], 2.5  # widest: the frame's bpp over the highest model point
    for k, (key, m) in enumerate(set_results["models"].items()):
        colour, curve = MODEL_COLOURS[k % len(MODEL_COLOURS)], m["curve"]
        name = key if key == m["architecture"] else f"{key} ({m['architecture']})"
        levels = f", q1..{m['levels']}" if m["levels"] else ""
        ax.plot([r["bpp"] for r in curve], [r["psnr"] for r in curve], "*-" if len(curve) > 1 else "*",
                ms=14 if len(curve) == 1 else 8, lw=1.5, color=colour, label=f"refcodec {name}{levels}, integer")
        twin = [r for r in curve if r["float_psnr"] is not None]
        if twin:
            ax.plot([r["bpp"] for r in twin], [r["float_psnr"] for r in twin], "D", ms=8 if len(curve) == 1 else 5,
                    mfc="none", mec=colour, mew=1.2, label=f"refcodec {key}, float twin (same latents)")
        visible += [r["psnr"] for r in curve] + [r["float_psnr"] for r in twin]
        rates += [r["bpp"] for r in curve]
        widest = min(widest, 1.15 if len(curve) > 1 else 2.5)
    ax.set_title(f"{set_results['title']} ({set_results['n_images']} images)", fontsize=10)
    ax.set_xlabel("bits per pixel (mean over images)")
    ax.set_ylabel("RGB PSNR, dB (mean of per-image)")
    # Zoom on the rates where refcodec sits; the curves continue beyond the frame.
    x_max = max(2.0, widest * max(rates)) if rates else 2.0
    visible += [r["psnr"] for c in set_results["codecs"].values() for r in c["curve"] if r["bpp"] <= x_max]
    ax.set_xlim(0, x_max)
    if visible:
        ax.set_ylim(min(visible) - 1, max(visible) + 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, loc="lower right")


def plot(path: Path, results: dict) -> None:
    """PSNR vs bpp, one panel per image set (``plot_set``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sets = list(results["sets"].values())
    fig, axes = plt.subplots(1, len(sets), figsize=(8 * len(sets), 5.5), dpi=120, squeeze=False)
    for ax, set_results in zip(axes[0], sets, strict=True):
        plot_set(ax, set_results)
    fig.suptitle("refcodec vs traditional codecs", fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def model_description(m: dict) -> str:
    """"factorized N=64 M=96, iteration 18000"; a warm-started run: "..., iteration 54414 (hyperprior) + 16000";
    a model with levels adds ", L levels"."""
    it = m["training"].get("iteration")
    source = m["training"].get("warm_start", {}).get("source", {})
    if it is not None and "iteration" in source:
        it = f"{source['iteration']} ({source.get('record', {}).get('arch', '?')}) + {it}"
    levels = f", {m['levels']} levels" if m.get("levels") else ""
    return f"{m['architecture']} N={m['n']} M={m['m']}" + (f", iteration {it}" if it is not None else "") + levels


def models_table(set_results: dict) -> list:
    """Markdown lines: each model point's bpp, integer and float-twin PSNR."""
    lines = ["| model | architecture | mean bpp | PSNR integer | PSNR float twin | int - float, dB (per image) |",
             "|---|---|---:|---:|---:|---|"]
    for key, m in set_results["models"].items():
        for point in m["points"]:
            s = point["summary"]
            twin, gap = "–", "no float twin"
            if s["refcodec_float"] is not None:
                twin = f"{s['refcodec_float']['psnr']:.3f}"
                gap = (f"{s['int_minus_float_db']:+.4f} ({s['int_minus_float_min_db']:+.4f}.."
                       f"{s['int_minus_float_max_db']:+.4f})")
            lines.append(f"| {point_label(key, point)} | {model_description(m)} | {s['refcodec_int']['bpp']:.4f} | "
                         f"{s['refcodec_int']['psnr']:.3f} | {twin} | {gap} |")
    return lines


EQUAL_PSNR_DB = 31.0  # the common PSNR of the equal-quality comparison


def equal_psnr_table(set_results: dict) -> list:
    """Markdown lines: each model's bpp at EQUAL_PSNR_DB, best first.

    A single-rate model trained for loss = bpp + lambda * MSE (8-bit MSE; refcodec.encoder.train) sits,
    once converged, where its rate-distortion curve has slope -lambda; so to first order its bpp at
    another MSE is bpp + lambda * (MSE - MSE_ref), MSE being that of its mean PSNR here (the
    table's PSNR is the mean of per-image values). An estimate, exact only as the points
    approach each other; the models' PSNRs differ by a few tenths of a dB. A model with levels is read
    off its curve (``rate_at_psnr``), when the curve reaches EQUAL_PSNR_DB.
    """
    mse_ref = 255.0**2 * 10 ** (-EQUAL_PSNR_DB / 10)
    lines = [f"| model | method | bpp | PSNR (dB) | bpp at {EQUAL_PSNR_DB:g} dB |", "|---|---|---:|---:|---:|"]
    rows = []
    for key, m in set_results["models"].items():
        if m["levels"]:
            at_ref = rate_at_psnr(m["curve"], EQUAL_PSNR_DB)
            if at_ref is not None:
                lo, hi = min(r["psnr"] for r in m["curve"]), max(r["psnr"] for r in m["curve"])
                rows.append((at_ref, key, f"curve, PCHIP of q1..q{m['levels']}", "–", f"{lo:.2f}..{hi:.2f}"))
            continue
        lmbda = m["training"].get("record", {}).get("lambda")
        if lmbda is None:
            continue
        s = reference_point(m)["summary"]["refcodec_int"]
        mse = 255.0**2 * 10 ** (-s["psnr"] / 10)
        rows.append((s["bpp"] + lmbda * (mse - mse_ref), key, f"tangent, lambda {lmbda:g}", f"{s['bpp']:.4f}",
                     f"{s['psnr']:.3f}"))
    for at_ref, key, method, bpp, db in sorted(rows):
        lines.append(f"| {key} | {method} | {bpp} | {db} | {at_ref:.4f} |")
    return lines


def matched_table(set_results: dict) -> list:
    """Markdown lines: each model (at its reference point) next to every codec at matching bpp."""
    codecs = set_results["codecs"]
    lines = ["| model | refcodec | " + " | ".join(c["label"] for c in codecs.values()) + " |",
             "|---|---|" + "---|" * len(codecs)]
    for key, m in set_results["models"].items():
        point = reference_point(m)
        s = point["summary"]
        cells = [f"{s['refcodec_int']['bpp']:.4f} / {s['refcodec_int']['psnr']:.3f}"]
        for ck, c in codecs.items():
            r, name = s["matched"][ck], c["setting"]
            cells.append(f"{r['bpp']:.4f} / {r['psnr']:.3f} ({r['refcodec_minus_codec_db']:+.2f} dB; "
                         f"{name} {r[name + '_min']:g}..{r[name + '_max']:g})")
        lines.append(f"| {point_label(key, point)} | " + " | ".join(cells) + " |")
    return lines


def bd_rate_markdown(set_results: dict) -> list:
    """Markdown lines: the BD-rate table of one set (rows: models; columns: codecs, then models)."""
    table_ = set_results["bd_rate"]
    columns = [(k, c["label"].split(" (")[0]) for k, c in set_results["codecs"].items()]
    columns += [(k, k) for k in set_results["models"]]
    lines = ["| model (PSNR range) | " + " | ".join(label for _, label in columns) + " |",
             "|---|" + "---:|" * len(columns)]
    for key, m in set_results["models"].items():
        psnrs = [r["psnr"] for r in m["curve"]]
        span = f"{min(psnrs):.2f}..{max(psnrs):.2f} dB" if len(psnrs) > 1 else f"{psnrs[0]:.2f} dB, 1 point"
        cells = ["—" if k == key else table_[key][k]["text"] for k, _ in columns]
        lines.append(f"| {key} ({span}) | " + " | ".join(cells) + " |")
    return lines


def curves_table(set_results: dict) -> list:
    """Markdown lines: every point of every codec curve."""
    lines = ["| codec | setting | mean bpp | mean PSNR (dB) |", "|---|---|---:|---:|"]
    for c in set_results["codecs"].values():
        lines += [f"| {c['label']} | {c['setting']} {r[c['setting']]:g} | {r['bpp']:.4f} | {r['psnr']:.3f} |"
                  for r in c["curve"]]
    return lines


def set_table(set_results: dict, interpolator: str) -> str:
    """The markdown tables of one image set: model points (integer vs float twin), equal PSNR, codecs at
    matching bpp, BD-rates, codec curves."""
    lines = [f"## {set_results['title']}: {set_results['n_images']} images; mean bpp and mean of per-image "
             "RGB PSNR (dB)", "",
             "refcodec models: integer = the decoder's exact output; float twin = the same latents through "
             "the float synthesis (same stream, same bpp); a model with levels has a row per quality q", ""]
    lines += models_table(set_results)
    equal = equal_psnr_table(set_results)
    if len(equal) > 2:
        lines += ["", f"At equal PSNR ({EQUAL_PSNR_DB:g} dB): a single-rate model's bpp moved along the tangent "
                  "of slope -lambda it was trained for (first order); a model with levels read off its curve; "
                  "best first", ""] + equal
    if set_results["codecs"]:
        lines += ["", "At matching bpp: per image, the codec setting whose bpp is closest to the model's (a model "
                  "with levels at its default quality); mean bpp / mean PSNR (refcodec integer - codec; settings "
                  "used)", ""]
        lines += matched_table(set_results)
    lines += ["", "BD-rate (%) of each row's curve against each column's curve: negative = the row needs that "
              "much less rate at equal PSNR; log10(bpp) as a PCHIP function of PSNR, integrated over the PSNR "
              f"range both curves share ({interpolator}); a curve needs >= {MIN_BD_POINTS} points", ""]
    lines += bd_rate_markdown(set_results)
    if set_results["codecs"]:
        lines += ["", "Codec curves", ""] + curves_table(set_results)
    return "\n".join(lines)


def table(results: dict) -> str:
    """The markdown tables of every image set."""
    return "\n\n".join(set_table(s, results["bd_rate_interpolator"]) for s in results["sets"].values())


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kodak", type=Path, default=DEFAULT_KODAK, help="directory of kodim01..24.png")
    ap.add_argument("--set", dest="image_set", choices=("kodak", "skimage", "both"), default=None,
                    help="image sets: Kodak, the scikit-image photos no model trained on, or both "
                         "(default: both when scikit-image is installed, else kodak)")
    ap.add_argument("--model", action="append", default=None,
                    help="shipped refcodec model name or model file (repeatable; default: every shipped model)")
    ap.add_argument("--codecs", default=",".join(CODECS), help=f"comma-separated subset of {','.join(CODECS)}")
    ap.add_argument("--plot", type=Path, default=DEFAULT_PLOT)
    ap.add_argument("--json", type=Path, default=DEFAULT_JSON)
    ap.add_argument("--limit", type=int, default=None, help="only the first N images of each set")
    ap.add_argument("--no-record", dest="record", action="store_false",
                    help="do not write the models' figures to refcodec/models/kodak.json (never written with --limit)")
    ap.add_argument("--verify-all", action="store_true",
                    help="decode every stream and check every float twin's latents, not only the first image's")
    args = ap.parse_args(argv)
    args.codecs = [c for c in args.codecs.split(",") if c]
    unknown = set(args.codecs) - set(CODECS)
    if unknown:
        ap.error(f"unknown codec(s) {', '.join(sorted(unknown))}; choose from {', '.join(CODECS)}")
    args.model = args.model or list(refcodec.decoder.model.shipped_model_paths())
    if not args.model:
        ap.error("no shipped model found; pass --model FILE")
    return args


def evaluate_set(image_set: ImageSet, models: dict, codecs: list, verify_all: bool) -> dict:
    """Every model's points and every codec's curve and matching-bpp records on one image set, and the
    BD-rate table. ``models``: model key -> (--model argument, resolved Model)."""
    files = list(image_set.files)
    images = [refcodec.image.to_rgb_array(f) for f in files]
    names = [f.name for f in files]
    points = Points(images)
    timings = {}
    print(f"== {image_set.title}: {len(files)} images", flush=True)
    t = time.perf_counter()
    model_results = {key: eval_model(arg, model, files, images, verify_all) for key, (arg, model) in models.items()}
    timings["refcodec"] = time.perf_counter() - t

    codec_results = {}
    for c in codecs:
        t0 = t = time.perf_counter()
        codec_results[c.key] = {"label": c.label, "setting": c.setting, "curve": codec_curve(points, c)}
        timings[f"{c.key}_curve"] = time.perf_counter() - t
        for m in model_results.values():
            t = time.perf_counter()
            point = reference_point(m)
            records = eval_matched(points, c, names, point["refcodec_int"])
            point["matched"][c.key] = records
            point["summary"]["matched"][c.key] = matched_summary(c, records, point["summary"]["refcodec_int"]["psnr"])
            point["timings_s"][f"{c.key}_matched"] = time.perf_counter() - t
        print(f"{c.key}: curve and matching {time.perf_counter() - t0:.1f} s", flush=True)
    results = {"key": image_set.key, "title": image_set.title, "source": image_set.source, "n_images": len(files),
               "images": set_images(image_set), "models": model_results, "codecs": codec_results,
               "timings_s": timings}
    results["bd_rate"] = bd_rate_table(results)
    return results


def main(argv=None) -> dict:
    args = parse_args(argv)
    t_all = time.perf_counter()
    sets = image_sets(args.image_set, args.kodak, args.limit)
    codecs = [CODECS[k]() for k in args.codecs]
    # Each model resolved once, so a model file re-exported mid-run is not picked up.
    models = {model_key(arg): (arg, refcodec.encoder.encode.resolve_model(arg)) for arg in args.model}
    results = {"versions": codec_versions(codecs), "bd_rate_interpolator": pchip_backend(), "sets": {},
               "timings_s": {}}
    timings = results["timings_s"]
    for image_set in sets:
        t = time.perf_counter()
        results["sets"][image_set.key] = evaluate_set(image_set, models, codecs, args.verify_all)
        timings[image_set.key] = time.perf_counter() - t

    t = time.perf_counter()
    plot(args.plot, results)
    timings["plot"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t_all

    print()
    print(table(results))
    print()
    for set_results in results["sets"].values():
        for key, m in set_results["models"].items():
            for point in m["points"]:
                gap = point["summary"]["int_minus_float_db"]
                if gap is not None and abs(gap) > 0.1:
                    print(f"NOTE [{set_results['key']}, {point_label(key, point)}]: |int - float| = {abs(gap):.3f} dB "
                          "exceeds 0.1 dB")
    print("wall time: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {args.plot} and {args.json}")
    if args.record and args.limit is None and "kodak" in results["sets"]:
        record_figures(results["sets"]["kodak"]["models"])
    return results


def record_figures(models: dict) -> None:
    """Store each model's mean bpp/PSNR on all of Kodak (a model with levels: at its default quality, which
    is recorded too) in refcodec/models/kodak.json, keyed by its identity, for ``refcodec models``
    (entries of other models are kept)."""
    path = refcodec.decoder.model.MODELS_DIR / refcodec.decoder.model.KODAK_FIGURES
    figures = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    for m in models.values():
        point = reference_point(m)
        s = point["summary"]["refcodec_int"]
        figures[m["model_id"]] = {"name": m["name"], "bpp": round(s["bpp"], 4), "psnr": round(s["psnr"], 3),
                                  "images": 24}
        if point["quality"] is not None:
            figures[m["model_id"]]["quality"] = point["quality"]
    path.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    print(f"recorded the Kodak figures of {', '.join(models)} in {path}")


if __name__ == "__main__":
    main()
