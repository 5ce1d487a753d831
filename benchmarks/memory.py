"""Peak memory (RSS of the whole process) and time of encoding and decoding big pictures, against issue 13's targets.

    python benchmarks/memory.py                             # everything below; results in benchmarks/memory.json
    python benchmarks/memory.py --sizes 4096 --model joint --impl reference --big
    python benchmarks/memory.py --baseline /work/tmp/old    # also 768x512 decode time of another checkout
    python benchmarks/memory.py --code /work/tmp/old --big  # the figures of another checkout

Every measurement runs in a fresh Python process (``--one``), so its peak is that of one encode or one decode
and nothing else: the process's VmHWM (/proc/self/status) at its end. (Not ``ru_maxrss``: Linux carries it
over from the forked parent across exec, so a child of a parent holding a big picture would report the
parent's size.) Before the timed work the process
decodes a 16 x 16 stream of the same model and implementation (the kernels load from Numba's cache, run
``--warm`` once to fill it), so times exclude compilation; the peak includes the interpreter, NumPy, Numba
and the model. The pictures are mosaics of the Kodak photos (``--kodak``) resized to fill the square: a
photo-like signal, not a flat one; without the Kodak folder, a synthetic smooth picture. Parts:

- ``--sizes`` (default 1024 4096): for every model (``--model``, default all shipped), encoding (fast path)
  and decoding with ``refcodec.decode`` (the whole picture in memory, as the API returns it) on every path of
  ``--impl`` (default fast and reference), and ``refcodec decode`` to a PNG file (fast path: rows written as
  they are made);
- ``--big`` N... (default 16384; none: ``--big`` alone): pictures of N x N encoded (fast path,
  ``--big-model``, default every model) and decoded with ``refcodec decode`` to a PNG file;
- ``--baseline DIR``: the decode time of ``refcodec.decode`` at 768 x 512 (kodim01 or the synthetic picture)
  for every model, of this checkout and of the checkout DIR (``git worktree add DIR <commit>``), in
  alternating processes, ``--repeat`` decodes each after a warm-up: the median of the medians.

The targets of issue 13 are checked at the end: decoding 4096^2 within 512 MiB (fast path) and 1 GiB
(reference), encoding 4096^2 within 1 GiB, decoding N^2 to a file within 1 GiB, the time per pixel at 4096^2
within 1.15 times that at 1024^2, and decoding 768x512 at most 5 % slower than the baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
MIB = 1 << 20
TARGETS_MIB = {("decode", "fast"): 512, ("decode", "reference"): 1024, ("encode", "fast"): 1024,
               ("decode_png", "fast"): 1024}
TIME_PER_PIXEL_RATIO = 1.15  # 4096^2 against 1024^2
BASELINE_RATIO = 1.05  # 768x512 against the baseline checkout


def mosaic(kodak: Path, size: int) -> np.ndarray:
    """A size x size RGB picture tiled from the Kodak photos (each 768x512, landscape ones only), resized; a
    smooth synthetic picture if there are none."""
    photos = [Image.open(p).convert("RGB") for p in sorted(kodak.glob("*.png"))] if kodak.is_dir() else []
    photos = [p for p in photos if p.size == (768, 512)]
    if not photos:
        return smooth(size, size)
    tile = Image.new("RGB", (768 * 4, 512 * 4))
    for k in range(16):
        tile.paste(photos[k % len(photos)], (768 * (k % 4), 512 * (k // 4)))
    return np.asarray(tile.resize((size, size), Image.Resampling.LANCZOS))


def smooth(width: int, height: int) -> np.ndarray:
    """A smooth synthetic RGB picture: sums of a few sinusoids per colour."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    channels = [np.sin(x / (37 + 11 * c)) * np.cos(y / (53 - 7 * c)) + 0.5 * np.sin((x + y) / (97 + c))
                for c in range(3)]
    return np.clip(np.stack(channels, -1) * 80 + 128, 0, 255).astype(np.uint8)


def kodak_photo(kodak: Path) -> np.ndarray:
    """kodim01 (768x512), or the synthetic picture of that size."""
    path = kodak / "kodim01.png"
    return np.asarray(Image.open(path).convert("RGB")) if path.is_file() else smooth(768, 512)


def warm_up(model: str, impl: str) -> None:
    """Decode a 16 x 16 stream of ``model`` once: Numba's kernels load (or compile) before anything is timed."""
    import refcodec

    refcodec.decode(refcodec.encode(np.zeros((16, 16, 3), np.uint8), model=model), impl=impl)


def run_encode(job: dict) -> dict:
    import refcodec

    pixels = np.asarray(np.load(job["picture"], mmap_mode="r"))
    Path(job["stream"]).write_bytes(refcodec.encode(pixels, model=job["model"], impl=job["impl"]))
    return {}


def run_decode(job: dict) -> dict:
    import refcodec

    refcodec.decode(Path(job["stream"]).read_bytes(), impl=job["impl"])
    return {}


def run_decode_png(job: dict) -> dict:
    """``refcodec decode`` of the stream to a PNG file."""
    from refcodec.cli import main

    if main(["decode", "-q", "--impl", job["impl"], job["stream"], job["output"]]) != 0:
        raise SystemExit("refcodec decode failed")
    size = Path(job["output"]).stat().st_size
    Path(job["output"]).unlink()
    return {"png_bytes": size}


def run_time(job: dict) -> dict:
    """``repeat`` decodes of the stream: the median time."""
    import refcodec

    data = Path(job["stream"]).read_bytes()
    times = []
    for _ in range(job["repeat"]):
        start = time.perf_counter()
        refcodec.decode(data, impl=job["impl"])
        times.append(time.perf_counter() - start)
    return {"median": statistics.median(times)}


JOBS = {"encode": run_encode, "decode": run_decode, "decode_png": run_decode_png, "time": run_time,
        "warm": lambda job: {}}


def one(job: dict) -> dict:
    """Run one job in this process, after ``warm_up``: its wall time and the process's peak RSS."""
    warm_up(job["model"], job["impl"])
    t = time.perf_counter()
    extra = JOBS[job["what"]](job)
    seconds = time.perf_counter() - t
    return {"seconds": round(seconds, 3), "peak_rss_mib": round(peak_rss() / MIB), **extra}


def peak_rss() -> int:
    """Bytes: the peak resident set of this process since it started (VmHWM), or ru_maxrss where there is no
    /proc (which may include the parent's, see above)."""
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def measure(job: dict, code: Path = REPO) -> dict:
    """``one(job)`` in a fresh process that imports refcodec from the checkout ``code``."""
    env = {**os.environ, "PYTHONPATH": str(code)}
    out = subprocess.run([sys.executable, __file__, "--one", json.dumps(job)], capture_output=True, text=True,
                         env=env)
    if out.returncode:
        return {"error": (out.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def report(results: list, row: dict) -> None:
    results.append(row)
    print(json.dumps(row), flush=True)


def sizes_part(args, models: list, tmp: Path, results: list) -> None:
    """Encode and decode of every size and model (``--sizes``)."""
    for size in args.sizes:
        picture = tmp / f"{size}.npy"
        np.save(picture, mosaic(args.kodak, size))
        for model in models:
            stream = tmp / f"{size}-{model}.rcdc"
            base = {"picture": str(picture), "stream": str(stream), "model": model, "size": size}
            report(results, {**base, "what": "encode", "impl": "fast",
                             **measure({**base, "what": "encode", "impl": "fast"}, args.code)})
            for impl in args.impl:
                row = measure({**base, "what": "decode", "impl": impl}, args.code)
                if "seconds" in row:
                    row["ns_per_pixel"] = round(row["seconds"] * 1e9 / size**2, 1)
                report(results, {**base, "what": "decode", "impl": impl, **row})
            job = {**base, "what": "decode_png", "impl": "fast", "output": str(tmp / "out.png")}
            report(results, {**job, **measure(job, args.code)})
            stream.unlink()
        picture.unlink()


def big_part(args, size: int, tmp: Path, results: list) -> None:
    """Encode a ``size`` x ``size`` picture and decode it to a PNG file (``--big``)."""
    picture = tmp / "big.npy"
    np.save(picture, mosaic(args.kodak, size))
    for model in args.big_model:
        stream = tmp / f"big-{model}.rcdc"
        base = {"picture": str(picture), "stream": str(stream), "model": model, "size": size, "impl": "fast"}
        report(results, {**base, "what": "encode", **measure({**base, "what": "encode"}, args.code)})
        if stream.is_file():
            job = {**base, "what": "decode_png", "output": str(tmp / "big.png")}
            report(results, {**job, **measure(job, args.code)})
            stream.unlink()
    picture.unlink()


def baseline_part(args, models: list, tmp: Path, results: list) -> None:
    """768x512 decode times of this checkout and of ``--baseline``, in alternating processes."""
    sys.path.insert(0, str(REPO))
    import refcodec

    pixels = kodak_photo(args.kodak)
    for model in models:
        stream = tmp / f"768-{model}.rcdc"
        stream.write_bytes(refcodec.encode(pixels, model=model))
        for impl in args.impl:
            job = {"what": "time", "stream": str(stream), "model": model, "impl": impl,
                   "repeat": args.repeat if impl == "fast" else 1}
            medians: dict = {"new": [], "old": []}
            for _ in range(args.rounds):
                for name, code in (("old", args.baseline), ("new", REPO)):
                    medians[name].append(measure(job, code).get("median", float("nan")))
            new, old = statistics.median(medians["new"]), statistics.median(medians["old"])
            report(results, {"what": "baseline", "model": model, "impl": impl, "size": "768x512",
                             "seconds": round(new, 4), "baseline_seconds": round(old, 4),
                             "ratio": round(new / old, 3), "runs": medians})


def check_targets(results: list, big: list) -> list:
    """Lines saying whether each target of issue 13 is met."""
    lines = []
    for row in results:
        target = TARGETS_MIB.get((row["what"], row.get("impl")))
        if target and "peak_rss_mib" in row and (row["size"] == 4096 or row["size"] in big):
            ok = row["peak_rss_mib"] <= target
            lines.append(f"{row['what']} {row['size']}^2 {row['model']} {row['impl']}: {row['peak_rss_mib']} MiB "
                         f"(target {target}): {'met' if ok else 'NOT met'}")
    per_pixel = {(r["model"], r["impl"], r["size"]): r["ns_per_pixel"] for r in results if "ns_per_pixel" in r}
    for (model, impl, size), value in per_pixel.items():
        small = per_pixel.get((model, impl, 1024))
        if size == 4096 and small:
            ratio = value / small
            lines.append(f"time per pixel {model} {impl}: 4096^2 / 1024^2 = {ratio:.2f} (target "
                         f"{TIME_PER_PIXEL_RATIO}): {'met' if ratio <= TIME_PER_PIXEL_RATIO else 'NOT met'}")
    lines += [f"768x512 {r['model']} {r['impl']}: {r['ratio']:.3f} of the baseline (target {BASELINE_RATIO}): "
              f"{'met' if r['ratio'] <= BASELINE_RATIO else 'NOT met'}" for r in results if r["what"] == "baseline"]
    return lines


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--one", help=argparse.SUPPRESS)
    ap.add_argument("--sizes", type=int, nargs="*", default=[1024, 4096])
    ap.add_argument("--model", action="append", help="shipped model (repeatable; default: all)")
    ap.add_argument("--impl", nargs="+", default=["fast", "reference"])
    ap.add_argument("--big", type=int, nargs="*", default=[16384], help="sides of pictures decoded to files")
    ap.add_argument("--big-model", action="append", help="models of --big (default: every model)")
    ap.add_argument("--code", type=Path, default=REPO, help="the checkout measured by --sizes and --big")
    ap.add_argument("--baseline", type=Path, help="a checkout to compare 768x512 decode times with")
    ap.add_argument("--repeat", type=int, default=5, help="decodes per process of --baseline")
    ap.add_argument("--rounds", type=int, default=3, help="processes per checkout of --baseline")
    ap.add_argument("--warm", action="store_true", help="fill Numba's cache of both checkouts first")
    ap.add_argument("--kodak", type=Path, default=REPO.parent / "shared" / "data" / "kodak")
    ap.add_argument("--json", type=Path, default=REPO / "benchmarks" / "memory.json")
    args = ap.parse_args(argv)
    if args.one:
        print(json.dumps(one(json.loads(args.one))))
        return
    sys.path.insert(0, str(REPO))
    from refcodec.decoder.model import shipped_model_paths

    models = args.model or list(shipped_model_paths())
    args.big_model = args.big_model or models
    results: list = []
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        if args.warm:
            for code in (REPO, args.baseline) if args.baseline else (REPO,):
                for model in models:
                    for impl in args.impl:
                        measure({"what": "warm", "model": model, "impl": impl}, code)
        if args.baseline:
            baseline_part(args, models, tmp, results)
        sizes_part(args, models, tmp, results)
        for size in args.big:
            big_part(args, size, tmp, results)
    lines = check_targets(results, args.big)
    print("\n".join(lines))
    args.json.write_text(json.dumps({"results": results, "targets": lines}, indent=1) + "\n")


if __name__ == "__main__":
    main()
