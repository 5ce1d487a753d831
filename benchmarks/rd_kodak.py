"""Rate-distortion of refcodec on the 24 Kodak images, against its float twin, JPEG and WebP.

Run from anywhere (defaults are relative to the repository root):

    python benchmarks/rd_kodak.py

Options: --kodak DIR (default <repo>/../shared/data/kodak), --model NAME (shipped
model, default "factorized"), --plot PNG, --json FILE, --limit N (first N images
only, for a quick look), --verify-all (decode every stream, not only the first).

Rows:

1. refcodec (integer): ``refcodec.encoder.encode(path, model, return_reconstruction=True)``;
   bpp = 8 * len(stream) / (H * W); the reconstruction is the decoder's exact output
   (checked against ``refcodec.decode(stream)`` on the first image, or all with --verify-all).
2. refcodec float twin: the same quantised latents (re-encoding them gives the same
   stream, checked per image) through the float synthesis the integer model was
   exported from (stored in the model file as ``encoder.synthesis.*``), rounded to
   8 bits. Same bpp as row 1 by construction.
3. Pillow JPEG (libjpeg-turbo, default 4:2:0 subsampling) at qualities 5..95 step 5,
   plus "JPEG at matching bpp": per image the integer quality 1..95 whose bpp is
   closest to refcodec's for that image. Pillow WebP at qualities 5..95 step 10.

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
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]

try:
    import refcodec  # noqa: F401
except ImportError:
    sys.path.insert(0, str(REPO))
import refcodec  # noqa: E402
import refcodec.encoder  # noqa: E402
import refcodec.floatnet  # noqa: E402
import refcodec.image  # noqa: E402
from refcodec.image import psnr  # noqa: E402

DEFAULT_KODAK = REPO.parent / "shared" / "data" / "kodak"
DEFAULT_PLOT = REPO / "benchmarks" / "rd_kodak.png"
DEFAULT_JSON = REPO / "benchmarks" / "rd_kodak.json"
JPEG_QUALITIES = tuple(range(5, 100, 5))
WEBP_QUALITIES = tuple(range(5, 100, 10))
JPEG_SEARCH_RANGE = (1, 95)


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
    """The shipped model's ``training`` metadata (a JSON string written by refcodec.export), or {}."""
    raw = model.metadata.get("training")
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except ValueError:
        return {"unparsed": raw}


# ---------------------------------------------------------------------------
# Row 1: the integer model


def eval_refcodec(files: list, model, verify_all: bool = False) -> list:
    """``model``: a name, or (better) the Model resolved once, so a model file re-exported mid-run is not picked up."""
    records = []
    for i, path in enumerate(files):
        stream, recon = refcodec.encoder.encode(path, model=model, return_reconstruction=True)
        pixels = refcodec.image.to_rgb_array(path)
        h, w, _ = pixels.shape
        assert recon.dtype == np.uint8 and recon.shape == (h, w, 3), (recon.dtype, recon.shape)
        if i == 0 or verify_all:
            decoded = refcodec.decode(stream)
            assert np.array_equal(decoded, recon), f"{path.name}: decode(stream) != encoder's reconstruction"
        records.append({"image": path.name, "height": h, "width": w, "bytes": len(stream),
                        "stream_sha256": hashlib.sha256(stream).hexdigest(),
                        "bpp": bits_per_pixel(len(stream), h, w), "psnr": psnr(pixels, recon),
                        "decode_verified": i == 0 or verify_all})
    return records


# ---------------------------------------------------------------------------
# Row 2: the float twin


def float_reconstruction(y_hat: np.ndarray, params: dict, height: int, width: int) -> np.ndarray:
    x = refcodec.floatnet.synthesis(y_hat.astype(np.float64), params)
    out = np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(out[:, :height, :width].transpose(1, 2, 0))


def eval_float_twin(files: list, model, int_records: list) -> list:
    records = []
    for path, ref in zip(files, int_records):
        pixels = refcodec.image.to_rgb_array(path)
        h, w, _ = pixels.shape
        y_hat = refcodec.encoder.analyse(pixels, model)
        # Same latents as row 1? Re-encoding them must give the very same stream.
        stream = refcodec.encoder.encode_latents(y_hat, model, w, h)
        same_stream = hashlib.sha256(stream).hexdigest() == ref["stream_sha256"]
        recon = float_reconstruction(y_hat, model.encoder, h, w)
        p = psnr(pixels, recon)
        records.append({"image": path.name, "bpp": ref["bpp"], "psnr": p, "same_stream": same_stream,
                        "int_minus_float_db": ref["psnr"] - p})
    return records


# ---------------------------------------------------------------------------
# Row 3: JPEG and WebP


def pillow_point(pixels: np.ndarray, fmt: str, quality: int) -> tuple:
    """(bytes, PSNR) of one Pillow encode/decode round trip."""
    buf = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buf, format=fmt, quality=quality)
    n = buf.tell()
    buf.seek(0)
    with Image.open(buf) as im:
        decoded = np.asarray(im.convert("RGB"))
    return n, psnr(pixels, decoded)


def pillow_curve(images: list, fmt: str, qualities) -> list:
    """Mean bpp / mean PSNR over ``images`` at each quality."""
    curve = []
    for q in qualities:
        pts = [pillow_point(px, fmt, q) for px in images]
        curve.append({"quality": q,
                      "bpp": float(np.mean([bits_per_pixel(n, *px.shape[:2]) for (n, _), px in zip(pts, images)])),
                      "psnr": float(np.mean([p for _, p in pts]))})
    return curve


def jpeg_at_bpp(pixels: np.ndarray, target_bpp: float, lo: int = JPEG_SEARCH_RANGE[0],
                hi: int = JPEG_SEARCH_RANGE[1]) -> dict:
    """The integer JPEG quality in lo..hi whose bpp is closest to ``target_bpp`` (binary search + neighbours)."""
    h, w, _ = pixels.shape
    cache = {}

    def point(q):
        if q not in cache:
            n, p = pillow_point(pixels, "JPEG", q)
            cache[q] = (bits_per_pixel(n, h, w), p)
        return cache[q]

    a, b = lo, hi  # smallest q with bpp >= target (bpp is nearly monotonic in quality)
    while a < b:
        mid = (a + b) // 2
        if point(mid)[0] >= target_bpp:
            b = mid
        else:
            a = mid + 1
    candidates = [q for q in (a - 2, a - 1, a, a + 1, a + 2) if lo <= q <= hi]
    q = min(candidates, key=lambda q: (abs(point(q)[0] - target_bpp), -q))
    return {"quality": q, "bpp": point(q)[0], "psnr": point(q)[1]}


def eval_jpeg_matched(images: list, names: list, int_records: list) -> list:
    return [{"image": name, "target_bpp": ref["bpp"], **jpeg_at_bpp(px, ref["bpp"])}
            for px, name, ref in zip(images, names, int_records)]


# ---------------------------------------------------------------------------
# Output


def plot(path: Path, results: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5), dpi=120)
    for name, key, style in (("JPEG (Pillow, 4:2:0)", "jpeg_curve", "o-"), ("WebP (Pillow)", "webp_curve", "s-")):
        c = results[key]
        ax.plot([r["bpp"] for r in c], [r["psnr"] for r in c], style, ms=3, lw=1, label=name)
    s = results["summary"]
    ax.plot(s["refcodec_int"]["bpp"], s["refcodec_int"]["psnr"], "*", ms=14, color="crimson",
            label="refcodec integer (decoder output)")
    if s.get("refcodec_float"):
        ax.plot(s["refcodec_float"]["bpp"], s["refcodec_float"]["psnr"], "D", ms=7, mfc="none",
                mec="black", mew=1.5, label="refcodec float twin (same latents)")
    ax.plot(s["jpeg_matched"]["bpp"], s["jpeg_matched"]["psnr"], "x", ms=9, color="tab:blue",
            label="JPEG at matching bpp (per image)")
    it = results["model"]["training"].get("iteration")
    title = f"Kodak ({results['n_images']} images): refcodec model {results['model']['name']!r}"
    title += f", training iteration {it}" if it is not None else ""
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("bits per pixel (mean over images)")
    ax.set_ylabel("RGB PSNR, dB (mean of per-image)")
    # Zoom on the low-rate region where refcodec sits; the curves continue beyond the frame.
    x_max = max(2.0, 2.5 * s["refcodec_int"]["bpp"])
    visible = [r["psnr"] for key in ("jpeg_curve", "webp_curve") for r in results[key] if r["bpp"] <= x_max]
    visible += [s[k]["psnr"] for k in ("refcodec_int", "refcodec_float", "jpeg_matched") if s.get(k)]
    ax.set_xlim(0, x_max)
    ax.set_ylim(min(visible) - 1, max(visible) + 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def table(results: dict) -> str:
    s, rows = results["summary"], []
    n = results["n_images"]
    rows.append(("refcodec integer", s["refcodec_int"], f"model {results['model']['name']!r}, decoder's exact output"))
    rows.append(("refcodec float twin", s["refcodec_float"],
                 f"same stream, so same bpp; int - float = {s['int_minus_float_db']:+.4f} dB "
                 f"(per image {s['int_minus_float_min_db']:+.4f}..{s['int_minus_float_max_db']:+.4f})"))
    jm = s["jpeg_matched"]
    rows.append(("JPEG at matching bpp", jm, f"per-image quality {jm['quality_min']}..{jm['quality_max']}; "
                 f"refcodec - JPEG = {s['refcodec_minus_jpeg_matched_db']:+.2f} dB"))
    rows += [(f"JPEG q={r['quality']}", r, "") for r in results["jpeg_curve"]]
    rows += [(f"WebP q={r['quality']}", r, "") for r in results["webp_curve"]]
    lines = [f"Kodak, {n} images; mean bpp and mean of per-image RGB PSNR", "",
             "| codec | mean bpp | mean PSNR (dB) | note |", "|---|---:|---:|---|"]
    for name, r, note in rows:
        if r is None:
            lines.append(f"| {name} | - | - | {note} |")
        else:
            lines.append(f"| {name} | {r['bpp']:.4f} | {r['psnr']:.3f} | {note} |")
    return "\n".join(lines)


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kodak", type=Path, default=DEFAULT_KODAK, help="directory of kodim01..24.png")
    ap.add_argument("--model", default="factorized", help="shipped refcodec model name (or model file)")
    ap.add_argument("--plot", type=Path, default=DEFAULT_PLOT)
    ap.add_argument("--json", type=Path, default=DEFAULT_JSON)
    ap.add_argument("--limit", type=int, default=None, help="only the first N images")
    ap.add_argument("--verify-all", action="store_true", help="decode every stream, not only the first")
    return ap.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    t_all = time.perf_counter()
    files = kodak_images(args.kodak, args.limit)
    model = refcodec.encoder.resolve_model(args.model)
    images = [refcodec.image.to_rgb_array(f) for f in files]
    names = [f.name for f in files]
    timings = {}

    t = time.perf_counter()
    int_records = eval_refcodec(files, model, args.verify_all)
    timings["refcodec_int_encode_decode"] = time.perf_counter() - t
    print(f"refcodec integer: {len(files)} images in {timings['refcodec_int_encode_decode']:.1f} s", flush=True)

    t = time.perf_counter()
    float_records = eval_float_twin(files, model, int_records)
    if not all(r["same_stream"] for r in float_records):
        print("WARNING: re-encoding analyse()'s latents did not reproduce the stream of row 1", file=sys.stderr)
    timings["refcodec_float_twin"] = time.perf_counter() - t
    print(f"float twin: {timings['refcodec_float_twin']:.1f} s", flush=True)

    t = time.perf_counter()
    jpeg_curve = pillow_curve(images, "JPEG", JPEG_QUALITIES)
    timings["jpeg_curve"] = time.perf_counter() - t
    t = time.perf_counter()
    jpeg_matched = eval_jpeg_matched(images, names, int_records)
    timings["jpeg_matched"] = time.perf_counter() - t
    t = time.perf_counter()
    webp_curve = pillow_curve(images, "WEBP", WEBP_QUALITIES)
    timings["webp_curve"] = time.perf_counter() - t

    summary = {"refcodec_int": {"bpp": mean_of(int_records, "bpp"), "psnr": mean_of(int_records, "psnr")},
               "jpeg_matched": {"bpp": mean_of(jpeg_matched, "bpp"), "psnr": mean_of(jpeg_matched, "psnr"),
                                "quality_min": min(r["quality"] for r in jpeg_matched),
                                "quality_max": max(r["quality"] for r in jpeg_matched)}}
    summary["refcodec_minus_jpeg_matched_db"] = summary["refcodec_int"]["psnr"] - summary["jpeg_matched"]["psnr"]
    gaps = [r["int_minus_float_db"] for r in float_records]
    summary["refcodec_float"] = {"bpp": mean_of(float_records, "bpp"), "psnr": mean_of(float_records, "psnr"),
                                 "note": "same stream as refcodec_int, hence same bpp"}
    summary.update(int_minus_float_db=float(np.mean(gaps)), int_minus_float_min_db=float(min(gaps)),
                   int_minus_float_max_db=float(max(gaps)))

    import PIL.features

    results = {
        "n_images": len(files), "kodak": str(args.kodak),
        "model": {"name": args.model, "model_id": model.model_id.hex(), "training": training_info(model)},
        "pillow": {"version": Image.__version__, "libjpeg_turbo": PIL.features.version("libjpeg_turbo"),
                   "webp": PIL.features.version("webp")},
        "summary": summary, "refcodec_int": int_records, "refcodec_float": float_records,
        "jpeg_curve": jpeg_curve, "jpeg_matched": jpeg_matched, "webp_curve": webp_curve, "timings_s": timings,
    }

    t = time.perf_counter()
    plot(args.plot, results)
    timings["plot"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t_all

    print()
    print(table(results))
    print()
    if abs(summary["int_minus_float_db"]) > 0.1:
        print(f"NOTE: |int - float| = {abs(summary['int_minus_float_db']):.3f} dB exceeds 0.1 dB")
    print("wall time: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {args.plot} and {args.json}")
    return results


if __name__ == "__main__":
    main()
