"""Rate-distortion of refcodec's shipped models on the 24 Kodak images, against their float twins
and traditional codecs (JPEG, WebP, HEIC, AVIF, JPEG XL).

Run from anywhere (defaults are relative to the repository root):

    python benchmarks/rd_kodak.py

Options: --kodak DIR (default <repo>/../shared/data/kodak), --model NAME (repeatable; a shipped
model's name or a model file; default: every shipped model), --codecs LIST (comma-separated
subset of jpeg,webp,heic,avif,jxl; default all), --plot PNG, --json FILE, --limit N (first N
images only, for a quick look), --verify-all (decode every stream and check every float
twin's latents, not only the first image's).

Rows, for each refcodec model:

1. refcodec (integer): ``refcodec.encoder.encode(path, model, return_reconstruction=True)``;
   bpp = 8 * len(stream) / (H * W); the reconstruction is the decoder's exact output
   (checked against ``refcodec.decode(stream)`` on the first image, or all with --verify-all).
2. refcodec float twin: the stream's latents y_hat, entropy-decoded from it
   (``refcodec.decoder.decode_y``), in real units (y_hat * 2^-F, F the model's mean
   shift, spec §8.8), through the float synthesis the integer model was exported from
   (stored in the model file as ``encoder.synthesis.*``), rounded to 8 bits. Same stream, so same bpp as row 1. That
   they are the stream's latents is checked on the first image (all with --verify-all):
   their integer synthesis reproduces row 1's reconstruction exactly.
3. Each traditional codec at matching bpp: per image, the codec setting whose bpp is closest
   to the model's bpp on that image, searched over the codec's whole range (quality 1..95;
   JPEG XL distance 25..0.25 in 81 log steps plus the curve's distances).

4. At equal PSNR: each model's bpp carried along the tangent of slope -lambda (the lambda it
   was trained for, from its training record) to 31 dB, which to first order orders the
   models by bpp at equal PSNR (``equal_psnr_table``).

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

Never run by the test suite; importable (``main(argv)``) for smoke tests.
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


def kodak_images(directory: Path, limit: int | None = None) -> list:
    files = sorted(Path(directory).glob("kodim*.png"))
    if not files:
        raise SystemExit(f"no kodim*.png in {directory} (set --kodak)")
    if limit is None and len(files) != 24:
        print(f"warning: {len(files)} Kodak images in {directory}, expected 24", file=sys.stderr)
    return files[:limit] if limit else files


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
    """Library versions behind the selected codecs."""
    import PIL.features

    keys = {c.key for c in codecs}
    out = {"pillow": Image.__version__}
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
# refcodec: the integer model and its float twin


def model_key(arg: str) -> str:
    """JSON key of a --model argument: the shipped name as given, or a model file's stem."""
    return Path(arg).stem if arg.endswith(".safetensors") or "/" in arg else arg


def eval_refcodec(files: list, model, verify_all: bool = False, model_files=()) -> tuple:
    """(records, reconstructions, streams) of the integer codec on every image.

    ``model``: the Model resolved once, so a model file re-exported mid-run is not picked up;
    ``model_files``: where the decoder finds it if it is not a shipped model.
    """
    records, recons, streams = [], [], []
    for i, path in enumerate(files):
        stream, recon = refcodec.encoder.encode(path, model=model, return_reconstruction=True)
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


def eval_float_twin(images: list, names: list, model, int_records: list, int_recons: list, streams: list,
                    model_files=(), verify_all: bool = False) -> list:
    """The float synthesis of each stream's latents (entropy-decoded, ``decode_y``), per image.

    That they are the stream's latents is checked on the first image (every image with
    ``verify_all``): their integer synthesis must give row 1's reconstruction exactly.
    """
    records = []
    rows = zip(images, names, int_records, int_recons, streams, strict=True)
    for i, (pixels, name, ref, recon, stream) in enumerate(rows):
        h, w, _ = pixels.shape
        decoding = refcodec.decoder.decoding
        y_hat = decoding.decode_y(*decoding.open_stream(stream, model_files), "fast")["y_hat"]
        same = None
        if i == 0 or verify_all:
            same = bool(np.array_equal(decoding.synthesis(y_hat, model.synthesis, h, w, "fast"), recon))
        p = psnr(pixels, float_reconstruction(y_hat * 2.0**-model.mean_shift, model.encoder, h, w))
        records.append({"image": name, "bpp": ref["bpp"], "psnr": p, "same_latents": same,
                        "int_minus_float_db": ref["psnr"] - p})
    return records


def eval_model(arg: str, files: list, images: list, verify_all: bool) -> dict:
    """Integer and float-twin records, summary and timings of one model."""
    model = refcodec.encoder.resolve_model(arg)
    names = [f.name for f in files]
    timings = {}
    t = time.perf_counter()
    model_files = [arg] if model_key(arg) != arg else []  # a model file, not a shipped name
    int_records, recons, streams = eval_refcodec(files, model, verify_all, model_files)
    timings["int_encode_decode"] = time.perf_counter() - t
    t = time.perf_counter()
    float_records = eval_float_twin(images, names, model, int_records, recons, streams, model_files, verify_all)
    timings["float_twin"] = time.perf_counter() - t
    if any(r["same_latents"] is False for r in float_records):
        print(f"WARNING [{arg}]: the decoded latents do not reproduce the stream's reconstruction", file=sys.stderr)
    print(f"refcodec {arg}: integer {timings['int_encode_decode']:.1f} s, float twin {timings['float_twin']:.1f} s",
          flush=True)
    gaps = [r["int_minus_float_db"] for r in float_records]
    summary = {"refcodec_int": {"bpp": mean_of(int_records, "bpp"), "psnr": mean_of(int_records, "psnr")},
               "refcodec_float": {"bpp": mean_of(float_records, "bpp"), "psnr": mean_of(float_records, "psnr"),
                                  "note": "same stream as refcodec_int, hence same bpp"},
               "int_minus_float_db": float(np.mean(gaps)), "int_minus_float_min_db": float(min(gaps)),
               "int_minus_float_max_db": float(max(gaps)), "matched": {}}
    return {"name": arg, "model_id": model.model_id.hex(), "architecture": model.architecture, "n": model.n,
            "m": model.m, "training": training_info(model), "summary": summary, "refcodec_int": int_records,
            "refcodec_float": float_records, "matched": {}, "timings_s": timings}


# ---------------------------------------------------------------------------
# Output

MODEL_COLOURS = ("crimson", "darkgreen", "purple", "saddlebrown", "black", "teal")


def plot(path: Path, results: dict) -> None:
    """PSNR vs bpp: every codec curve, and each model's integer point and float-twin point."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=120)
    markers = "osv^Dph"
    for k, c in enumerate(results["codecs"].values()):
        ax.plot([r["bpp"] for r in c["curve"]], [r["psnr"] for r in c["curve"]], markers[k % len(markers)] + "-",
                ms=3, lw=1, label=c["label"])
    visible = []
    for k, (key, m) in enumerate(results["models"].items()):
        s, colour = m["summary"], MODEL_COLOURS[k % len(MODEL_COLOURS)]
        name = key if key == m["architecture"] else f"{key} ({m['architecture']})"
        ax.plot(s["refcodec_int"]["bpp"], s["refcodec_int"]["psnr"], "*", ms=14, color=colour,
                label=f"refcodec {name}, integer decoder")
        ax.plot(s["refcodec_float"]["bpp"], s["refcodec_float"]["psnr"], "D", ms=8, mfc="none", mec=colour,
                mew=1.5, label=f"refcodec {key}, float twin (same latents)")
        visible += [s["refcodec_int"]["psnr"], s["refcodec_float"]["psnr"]]
    ax.set_title(f"Kodak ({results['n_images']} images): refcodec vs traditional codecs", fontsize=10)
    ax.set_xlabel("bits per pixel (mean over images)")
    ax.set_ylabel("RGB PSNR, dB (mean of per-image)")
    # Zoom on the rates where refcodec sits; the curves continue beyond the frame.
    x_max = max([2.0] + [2.5 * m["summary"]["refcodec_int"]["bpp"] for m in results["models"].values()])
    visible += [r["psnr"] for c in results["codecs"].values() for r in c["curve"] if r["bpp"] <= x_max]
    ax.set_xlim(0, x_max)
    ax.set_ylim(min(visible) - 1, max(visible) + 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def model_description(m: dict) -> str:
    """"factorized N=64 M=96, iteration 18000"; a warm-started run: "..., iteration 54414 (hyperprior) + 16000"."""
    it = m["training"].get("iteration")
    source = m["training"].get("warm_start", {}).get("source", {})
    if it is not None and "iteration" in source:
        it = f"{source['iteration']} ({source.get('record', {}).get('arch', '?')}) + {it}"
    return f"{m['architecture']} N={m['n']} M={m['m']}" + (f", iteration {it}" if it is not None else "")


def models_table(results: dict) -> list:
    """Markdown lines: each model's bpp, integer and float-twin PSNR."""
    lines = ["| model | architecture | mean bpp | PSNR integer | PSNR float twin | int - float, dB (per image) |",
             "|---|---|---:|---:|---:|---|"]
    for key, m in results["models"].items():
        s = m["summary"]
        lines.append(f"| {key} | {model_description(m)} | {s['refcodec_int']['bpp']:.4f} | "
                     f"{s['refcodec_int']['psnr']:.3f} | {s['refcodec_float']['psnr']:.3f} | "
                     f"{s['int_minus_float_db']:+.4f} ({s['int_minus_float_min_db']:+.4f}.."
                     f"{s['int_minus_float_max_db']:+.4f}) |")
    return lines


EQUAL_PSNR_DB = 31.0  # the common PSNR of the equal-quality comparison


def equal_psnr_table(results: dict) -> list:
    """Markdown lines: each model's bpp carried to EQUAL_PSNR_DB along its tangent, best first.

    A model trained for loss = bpp + lambda * MSE (8-bit MSE; refcodec.encoder.train) sits, once
    converged, where its rate-distortion curve has slope -lambda; so to first order its bpp at
    another MSE is bpp + lambda * (MSE - MSE_ref), MSE being that of its mean PSNR here (the
    table's PSNR is the mean of per-image values). An estimate, exact only as the points
    approach each other; the models' PSNRs differ by a few tenths of a dB.
    """
    mse_ref = 255.0**2 * 10 ** (-EQUAL_PSNR_DB / 10)
    lines = [f"| model | lambda | bpp | PSNR (dB) | bpp at {EQUAL_PSNR_DB:g} dB (tangent) |",
             "|---|---:|---:|---:|---:|"]
    rows = []
    for key, m in results["models"].items():
        lmbda = m["training"].get("record", {}).get("lambda")
        if lmbda is None:
            continue
        s = m["summary"]["refcodec_int"]
        mse = 255.0**2 * 10 ** (-s["psnr"] / 10)
        rows.append((s["bpp"] + lmbda * (mse - mse_ref), key, lmbda, s["bpp"], s["psnr"]))
    for at_ref, key, lmbda, bpp, db in sorted(rows):
        lines.append(f"| {key} | {lmbda:g} | {bpp:.4f} | {db:.3f} | {at_ref:.4f} |")
    return lines


def matched_table(results: dict) -> list:
    """Markdown lines: each model next to every codec at matching bpp."""
    codecs = results["codecs"]
    lines = ["| model | refcodec | " + " | ".join(c["label"] for c in codecs.values()) + " |",
             "|---|---|" + "---|" * len(codecs)]
    for key, m in results["models"].items():
        s = m["summary"]
        cells = [f"{s['refcodec_int']['bpp']:.4f} / {s['refcodec_int']['psnr']:.3f}"]
        for ck, c in codecs.items():
            r, name = s["matched"][ck], c["setting"]
            cells.append(f"{r['bpp']:.4f} / {r['psnr']:.3f} ({r['refcodec_minus_codec_db']:+.2f} dB; "
                         f"{name} {r[name + '_min']:g}..{r[name + '_max']:g})")
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    return lines


def curves_table(results: dict) -> list:
    """Markdown lines: every point of every codec curve."""
    lines = ["| codec | setting | mean bpp | mean PSNR (dB) |", "|---|---|---:|---:|"]
    for c in results["codecs"].values():
        lines += [f"| {c['label']} | {c['setting']} {r[c['setting']]:g} | {r['bpp']:.4f} | {r['psnr']:.3f} |"
                  for r in c["curve"]]
    return lines


def table(results: dict) -> str:
    """The markdown tables: models (integer vs float twin), codecs at matching bpp, codec curves."""
    lines = [f"Kodak, {results['n_images']} images; mean bpp and mean of per-image RGB PSNR (dB)", "",
             "refcodec models: integer = the decoder's exact output; float twin = the same latents through "
             "the float synthesis (same stream, same bpp)", ""]
    lines += models_table(results)
    equal = equal_psnr_table(results)
    if len(equal) > 2:
        lines += ["", f"At equal PSNR ({EQUAL_PSNR_DB:g} dB), to first order: each model's bpp moved along "
                  "the tangent of slope -lambda it was trained for; best first", ""] + equal
    if results["codecs"]:
        lines += ["", "At matching bpp: per image, the codec setting whose bpp is closest to the model's; "
                  "mean bpp / mean PSNR (refcodec integer - codec; settings used)", ""]
        lines += matched_table(results)
        lines += ["", "Codec curves", ""] + curves_table(results)
    return "\n".join(lines)


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kodak", type=Path, default=DEFAULT_KODAK, help="directory of kodim01..24.png")
    ap.add_argument("--model", action="append", default=None,
                    help="shipped refcodec model name or model file (repeatable; default: every shipped model)")
    ap.add_argument("--codecs", default=",".join(CODECS), help=f"comma-separated subset of {','.join(CODECS)}")
    ap.add_argument("--plot", type=Path, default=DEFAULT_PLOT)
    ap.add_argument("--json", type=Path, default=DEFAULT_JSON)
    ap.add_argument("--limit", type=int, default=None, help="only the first N images")
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


def main(argv=None) -> dict:
    args = parse_args(argv)
    t_all = time.perf_counter()
    files = kodak_images(args.kodak, args.limit)
    images = [refcodec.image.to_rgb_array(f) for f in files]
    names = [f.name for f in files]
    codecs = [CODECS[k]() for k in args.codecs]
    points = Points(images)
    timings = {}

    models = {model_key(arg): eval_model(arg, files, images, args.verify_all) for arg in args.model}

    codec_results = {}
    for c in codecs:
        t0 = t = time.perf_counter()
        codec_results[c.key] = {"label": c.label, "setting": c.setting, "curve": codec_curve(points, c)}
        timings[f"{c.key}_curve"] = time.perf_counter() - t
        for m in models.values():
            t = time.perf_counter()
            records = eval_matched(points, c, names, m["refcodec_int"])
            m["matched"][c.key] = records
            m["summary"]["matched"][c.key] = matched_summary(c, records, m["summary"]["refcodec_int"]["psnr"])
            m["timings_s"][f"{c.key}_matched"] = time.perf_counter() - t
        print(f"{c.key}: curve and matching {time.perf_counter() - t0:.1f} s", flush=True)

    results = {"n_images": len(files), "kodak": str(args.kodak), "versions": codec_versions(codecs),
               "models": models, "codecs": codec_results, "timings_s": timings}

    t = time.perf_counter()
    plot(args.plot, results)
    timings["plot"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t_all

    print()
    print(table(results))
    print()
    for key, m in models.items():
        if abs(m["summary"]["int_minus_float_db"]) > 0.1:
            print(f"NOTE [{key}]: |int - float| = {abs(m['summary']['int_minus_float_db']):.3f} dB exceeds 0.1 dB")
    print("wall time: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {args.plot} and {args.json}")
    if args.record and args.limit is None:
        record_figures(models)
    return results


def record_figures(models: dict) -> None:
    """Store each model's mean bpp/PSNR on all of Kodak in refcodec/models/kodak.json, keyed by its
    identity, for ``refcodec models`` (entries of other models are kept)."""
    path = refcodec.decoder.model.MODELS_DIR / refcodec.decoder.model.KODAK_FIGURES
    figures = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    for m in models.values():
        s = m["summary"]["refcodec_int"]
        figures[m["model_id"]] = {"name": m["name"], "bpp": round(s["bpp"], 4), "psnr": round(s["psnr"], 3),
                                  "images": 24}
    path.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    print(f"recorded the Kodak figures of {', '.join(models)} in {path}")


if __name__ == "__main__":
    main()
