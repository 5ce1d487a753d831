"""Peak memory (RSS of the whole process) and time of encoding and decoding big pictures.

    python benchmarks/memory.py                       # 1024 and 4096 square, every shipped model, fast path
    python benchmarks/memory.py --sizes 4096 --model joint --impl reference

Each measurement runs in a fresh Python process (``--one``), so the peak is that of one encode or one
decode and nothing else: ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` at its end. The picture is a
mosaic of the Kodak photos (``--kodak``), resized to fill the requested square: a photo-like signal, not a
flat one. Results go to benchmarks/memory.json (``--json``).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def mosaic(kodak: Path, size: int) -> np.ndarray:
    """A size x size RGB picture tiled from the Kodak photos (each 768x512, landscape ones only), resized."""
    photos = [Image.open(p).convert("RGB") for p in sorted(kodak.glob("*.png"))]
    photos = [p for p in photos if p.size == (768, 512)]
    tile = Image.new("RGB", (768 * 4, 512 * 4))
    for k in range(16):
        tile.paste(photos[k % len(photos)], (768 * (k % 4), 512 * (k // 4)))
    return np.asarray(tile.resize((size, size), Image.Resampling.LANCZOS))


def one(job: dict) -> dict:
    """Run one encode or decode in this process; its wall time and the process's peak RSS."""
    import refcodec

    t = time.perf_counter()
    if job["what"] == "encode":
        pixels = np.asarray(Image.open(job["picture"]).convert("RGB"))
        Path(job["stream"]).write_bytes(refcodec.encode(pixels, model=job["model"], impl=job["impl"]))
    else:
        refcodec.decode(Path(job["stream"]).read_bytes(), impl=job["impl"])
    seconds = time.perf_counter() - t
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"seconds": round(seconds, 2), "peak_rss_mib": round(peak_kib / 1024)}


def measure(job: dict) -> dict:
    """``one(job)`` in a fresh process."""
    out = subprocess.run([sys.executable, __file__, "--one", json.dumps(job)], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--one", help=argparse.SUPPRESS)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1024, 4096])
    ap.add_argument("--model", action="append", help="shipped model (repeatable; default: all)")
    ap.add_argument("--impl", default="fast")
    ap.add_argument("--kodak", type=Path, default=REPO.parent / "shared" / "data" / "kodak")
    ap.add_argument("--json", type=Path, default=REPO / "benchmarks" / "memory.json")
    args = ap.parse_args(argv)
    if args.one:
        print(json.dumps(one(json.loads(args.one))))
        return
    from refcodec.decoder.model import shipped_model_paths

    models = args.model or list(shipped_model_paths())
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            picture = Path(tmp) / f"{size}.png"
            Image.fromarray(mosaic(args.kodak, size)).save(picture)
            for model in models:
                stream = Path(tmp) / f"{size}-{model}.rcdc"
                base = {"picture": str(picture), "stream": str(stream), "model": model, "impl": args.impl}
                enc = measure({**base, "what": "encode"})
                dec = measure({**base, "what": "decode"})
                row = {"size": size, "model": model, "impl": args.impl, "bytes": stream.stat().st_size,
                       "encode": enc, "decode": dec,
                       "decode_ns_per_pixel": round(dec["seconds"] * 1e9 / size**2, 1)}
                results.append(row)
                print(json.dumps(row), flush=True)
    args.json.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
