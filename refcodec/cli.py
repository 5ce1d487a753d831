"""The ``refcodec`` command line: encode, decode, info, models, demo, conform.

Errors (spec §2.6 StreamError and ModelError, and the encoder's InputError)
become one line on stderr and exit status 1; an output file is written
atomically, so a failed run never leaves a partial or overwritten file.
"""

from __future__ import annotations

import argparse
import sys
from importlib import resources
from pathlib import Path

import numpy as np

from refcodec.conformance import cli as conform
from refcodec.decoder import decoding as decoder
from refcodec.decoder.bitstream import parse_stream
from refcodec.decoder.errors import RefcodecError
from refcodec.decoder.model import ARCHITECTURES, DEFAULT_MODEL, find_model, kodak_figures, shipped_models
from refcodec.encoder import encode as encoder
from refcodec.image import png_bytes, psnr, to_rgb_array, write_atomic

SAMPLE = "sample.png"  # a small photo shipped in refcodec/data (see refcodec/data/README.md)


def cmd_encode(args) -> None:
    original = to_rgb_array(args.input)
    quality = args.quality
    for measure, target in (("bpp", args.target_bpp), ("psnr", args.target_psnr)):
        if target is not None:
            quality = encoder.search_quality(original, args.model, target, measure, args.impl)
    stream, recon = encoder.encode(original, model=args.model, impl=args.impl, return_reconstruction=True,
                                   quality=quality)
    write_atomic(args.output, stream)
    h, w, _ = recon.shape
    print(f"{args.output}: {len(stream)} bytes, {8 * len(stream) / (w * h):.4f} bpp, "
          f"PSNR {psnr(original, recon):.2f} dB ({w}x{h})")


def cmd_decode(args) -> None:
    data = Path(args.input).read_bytes()
    if args.dump_stages:
        pixels = dump_stages(data, args)
    else:
        pixels = decoder.decode_stream(data, model_files=args.model_file, impl=args.impl)
    out = Path(args.output)
    if out.suffix.lower() in (".rgb", ".raw"):
        write_atomic(out, pixels.tobytes())
    else:
        write_atomic(out, png_bytes(pixels))


def dump_stages(data: bytes, args) -> np.ndarray:
    """Decode once, writing every intermediate stage as DIR/<stage>.i32 (spec §9.4); returns the picture."""
    stages = decoder.stages(data, args.model_file, args.impl)
    folder = Path(args.dump_stages)
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in stages.items():
        write_atomic(folder / f"{name}.i32", decoder.stage_bytes(array))
    header = parse_stream(data)
    return decoder.crop(stages["synthesis.6"], header.width, header.height)


def cmd_info(args) -> None:
    data = Path(args.input).read_bytes()
    h = parse_stream(data)
    lat_h, lat_w = h.latent_shape
    arch = {code: name for name, code in ARCHITECTURES.items()}[h.architecture]
    print(f"version       {h.version}\narchitecture  {h.architecture} ({arch})\nmodel_id      {h.model_id.hex()}")
    if h.quality is not None:
        print(f"quality       {h.quality + 1} (level {h.quality})")
    try:
        m = find_model(h.model_id, args.model_file)
        print(f"model         {m.name} ({m.architecture}, N={m.n} M={m.m})")
    except RefcodecError:
        print("model         not available")
    print(f"size          {h.width}x{h.height} (latent {lat_w}x{lat_h})")
    if h.z_data is not None:
        z_h, z_w = h.hyper_shape
        print(f"z stream      {len(h.z_data)} bytes (hyper-latent {z_w}x{z_h})")
    print(f"y stream      {len(h.y_data)} bytes\ntotal         {len(data)} bytes, "
          f"{8 * len(data) / (h.width * h.height):.4f} bpp")


def cmd_models(args) -> None:
    """One line per shipped model: name, architecture, channels, Kodak figures (refcodec/models/kodak.json)."""
    for name, m in shipped_models().items():
        figures = kodak_figures(m)
        rd = f"{figures['bpp']:.4f} bpp {figures['psnr']:.2f} dB on Kodak" if figures else "not measured on Kodak"
        levels = f"qualities 1-{m.levels}" if m.levels else "single rate"
        print(f"{name:<12} {m.architecture:<11} N={m.n} M={m.m}  {levels:<14} {rd}")


def cmd_demo(args) -> None:
    with resources.as_file(resources.files("refcodec") / "data" / SAMPLE) as path:
        pixels = to_rgb_array(path)
    stream, recon = encoder.encode(pixels, model=args.model, return_reconstruction=True)
    if not np.array_equal(decoder.decode_stream(stream, impl="fast"), recon):
        raise RuntimeError("decoded picture differs from the encoder's reconstruction")
    h, w, _ = pixels.shape
    print(f"{SAMPLE} {w}x{h}, model {args.model}: {len(stream)} bytes, "
          f"{8 * len(stream) / (w * h):.4f} bpp, PSNR {psnr(pixels, recon):.2f} dB; decoded bit-exactly")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="refcodec", description="Integer-only learned image codec (reference).")
    sub = ap.add_subparsers(dest="command", required=True)
    e = sub.add_parser("encode", help="image (PNG, JPEG, ...) -> refcodec stream")
    e.add_argument("input")
    e.add_argument("output")
    e.add_argument("--model", default=DEFAULT_MODEL,
                   help="shipped model name (see 'refcodec models') or model file path")
    rate = e.add_mutually_exclusive_group()
    rate.add_argument("--quality", type=int, metavar="Q",
                      help="quality level 1..L of a model with levels (default: the middle one)")
    rate.add_argument("--target-bpp", type=float, metavar="B", help="the quality whose bpp is nearest to B")
    rate.add_argument("--target-psnr", type=float, metavar="P", help="the quality whose PSNR is nearest to P dB")
    d = sub.add_parser("decode", help="refcodec stream -> PNG (or raw RGB for .rgb/.raw)")
    d.add_argument("input")
    d.add_argument("output")
    d.add_argument("--dump-stages", metavar="DIR",
                   help="also write every intermediate stage to DIR as <stage>.i32 (spec §9.4)")
    for p in (e, d):
        p.add_argument("--impl", choices=decoder.implementations(), default="fast")
    i = sub.add_parser("info", help="print a stream's header fields and sizes")
    i.add_argument("input")
    for p in (d, i):
        p.add_argument("--model-file", action="append", default=[], help="model file to look in (repeatable)")
    sub.add_parser("models", help="list the shipped models")
    m = sub.add_parser("demo", help="encode and decode the sample photo shipped in the package")
    m.add_argument("--model", default=DEFAULT_MODEL)
    conform.add_arguments(sub.add_parser("conform", help="run a decoder on the conformance vectors"))
    return ap


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "conform":
        return conform.run(args)
    try:
        {"encode": cmd_encode, "decode": cmd_decode, "info": cmd_info, "models": cmd_models,
         "demo": cmd_demo}[args.command](args)
    except RefcodecError as e:
        print(f"refcodec: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"refcodec: {e.strerror or e}: {e.filename or ''}".rstrip(": "), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
