"""The ``refcodec`` command line: encode, decode, info, models, demo, eval, conform, import, vectors.

    refcodec encode photo.png photo.rcdc            refcodec decode photo.rcdc out.png
    refcodec encode -o streams/ photos/ -j 4        refcodec decode -o pictures/ streams/*.rcdc
    cat photo.png | refcodec encode - - > p.rcdc    refcodec decode p.rcdc - | display

Conventions of cjpeg, cwebp, avifenc and cjxl: ``-`` is stdin or stdout; several inputs, or a folder, go
with ``-o DIR`` (``-j N`` worker processes); ``--quiet``, ``--verbose``, ``--threads N``, ``--version``.
Every output path is checked before any work. A picture is written in the lossless format of its
extension (png, ppm/pnm, bmp, tif/tiff, webp, raw .rgb), PNG on stdout unless ``--format`` names another;
a lossy extension is refused before decoding.

Errors (spec §2.6 StreamError and ModelError, the encoder's InputError, a file that cannot be read or
written) become one line on stderr per file and exit status 1; Ctrl-C exits 130 with one line; an output
file is written atomically, so a failed run never leaves a partial or overwritten file. A decoded picture
is written as its rows are made (PNG, PPM and raw RGB; the other formats hold the picture), into a
temporary file next to the output that replaces it only once the whole stream has decoded (spec §2.6).
On a terminal, an encode or decode of one picture that runs longer than 2 s shows its progress in rows
(refcodec.progress; not with --quiet).

Startup is kept light (``--help``, ``--version`` and ``models`` import neither Numba nor the encoder):
everything heavy is imported where it is used.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from refcodec import DEFAULT_MAX_PIXELS, DEFAULT_MODEL

SAMPLE = "sample.png"  # a small photo shipped in refcodec/data (see refcodec/data/README.md)
STREAM_EXTENSION = ".rcdc"
MAX_PICTURE_INPUT = 1 << 30  # bytes of an encoded picture read from stdin
IMPLEMENTATIONS = ("fast", "reference")  # refcodec.decoder.decoding.implementations(), without importing it
COMPILE_NOTE = "compiling the fast kernels, once for this installation (10-20 s)..."


class CliError(Exception):
    """A usage or path error: one line on stderr, exit status 1."""


@dataclass(frozen=True)
class Settings:
    """What a command's jobs need, picklable for worker processes."""

    quiet: bool = False
    verbose: bool = False
    threads: int | None = None
    impl: str = "fast"
    model: str = DEFAULT_MODEL
    quality: int | None = None
    target: tuple | None = None  # ("bpp" | "psnr", value)
    model_files: tuple = ()
    format: str | None = None
    dump_stages: str | None = None
    band_height: int | None = None
    max_pixels: int | None = None
    progress: bool = False  # a bar of the picture's rows (one picture in this process, stderr a terminal)


@dataclass
class Outcome:
    """What a job reports: lines for stdout and stderr, and whether it failed."""

    out: list = field(default_factory=list)
    err: list = field(default_factory=list)
    failed: bool = False


# --- small helpers ----------------------------------------------------------------------------------------


def version_text() -> str:
    import platform

    import refcodec

    return f"refcodec {refcodec.__version__} (Python {platform.python_version()})"


class VersionAction(argparse.Action):
    """``--version``, computed only when asked for."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help="print the version and exit")

    def __call__(self, parser, namespace, values, option_string=None):
        print(version_text())
        parser.exit()


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {text}")
    return value


def band_height(text: str) -> int:
    """A band height in pixel rows: a positive multiple of 16 (refcodec.decoder.bands)."""
    value = positive_int(text)
    if value % 16:
        raise argparse.ArgumentTypeError(f"must be a multiple of 16, not {value}")
    return value


def set_threads(n: int) -> None:
    """Let the fast kernels use ``n`` threads (numba.set_num_threads)."""
    import numba

    most = numba.config.NUMBA_NUM_THREADS
    if n > most:
        raise CliError(f"--threads {n}: at most {most} (NUMBA_NUM_THREADS, the number of cores by default)")
    numba.set_num_threads(n)


def kernels_cold() -> bool:
    """True when Numba's cache holds no compiled kernels of this installation's fast path (the first run
    compiles them). Numba names a source folder's cache ``<folder name>_<sha1 of its absolute path>``."""
    cache = os.environ.get("NUMBA_CACHE_DIR")
    if not cache:
        return False
    import refcodec.fast

    folder = os.path.dirname(os.path.abspath(refcodec.fast.__file__))
    sub = Path(cache) / f"{os.path.basename(folder)}_{hashlib.sha1(folder.encode()).hexdigest()}"
    return not (any(sub.glob("rans.*.nbi")) and any(sub.glob("layers.*.nbi")))


def announce_compiling(settings: Settings) -> None:
    if settings.impl == "fast" and not settings.quiet and kernels_cold():
        print(f"refcodec: {COMPILE_NOTE}", file=sys.stderr, flush=True)


def read_limited(f, limit: int, what: str) -> bytes:
    """At most ``limit`` bytes of ``f``; more is an error naming ``what``."""
    from refcodec.decoder.conventions import read_at_most

    data = read_at_most(f, limit)
    if data is None:
        raise CliError(f"{what} is longer than {limit} bytes")
    return data


def read_stream(src: str) -> bytes:
    """A stream from a file or stdin ("-"), never more than the largest valid stream (spec §7.3)."""
    from refcodec.decoder.bitstream import read_stream_file

    return read_stream_file(sys.stdin.buffer if src == "-" else src)


def write_output(dst: str, data: bytes) -> None:
    """Write ``data`` to ``dst`` atomically, or to stdout for "-"."""
    if dst == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        from refcodec.image import write_atomic

        write_atomic(dst, data)


def is_refcodec_error(e: BaseException) -> bool:
    """A RefcodecError (StreamError, ModelError, InputError); its module is loaded if one was raised."""
    errors = sys.modules.get("refcodec.decoder.errors")
    return errors is not None and isinstance(e, errors.RefcodecError)


def expected_error(e: BaseException) -> bool:
    """An error that becomes one line: a RefcodecError, an OSError, a CliError or an unwritable format."""
    image = sys.modules.get("refcodec.image")
    return (isinstance(e, (OSError, CliError)) or is_refcodec_error(e)
            or (image is not None and isinstance(e, image.OutputFormatError)))


def error_line(e: BaseException, src: str | None = None) -> str:
    """The one line an error becomes."""
    where = f"{src}: " if src else ""
    if is_refcodec_error(e):
        return f"refcodec: {where}{type(e).__name__}: {e}"
    if isinstance(e, OSError):
        name = e.filename if e.filename is not None else src
        return f"refcodec: {name + ': ' if name else ''}{e.strerror or e}"
    return f"refcodec: {where}{e}"


# --- jobs (run here or in worker processes) ------------------------------------------------------------------


def encode_job(src: str, dst: str, s: Settings) -> Outcome:
    from refcodec.encoder import encode as encoder
    from refcodec.image import psnr, to_rgb_array
    from refcodec.progress import row_progress

    result = Outcome()
    data = read_limited(sys.stdin.buffer, MAX_PICTURE_INPUT, "the picture on stdin") if src == "-" else src
    pixels = to_rgb_array(data, lambda text: result.err.append(f"refcodec: note: {src}: {text}"))
    quality = s.quality
    if s.target is not None:
        quality = encoder.search_quality(pixels, s.model, s.target[1], s.target[0], s.impl)
    start = time.perf_counter()
    with row_progress(2 * pixels.shape[0], f"encoding {Path(src).name}", s.quiet or not s.progress) as bar:
        stream, recon = encoder.encode(pixels, model=s.model, impl=s.impl, return_reconstruction=True,
                                       quality=quality, progress=bar)
    seconds = time.perf_counter() - start
    write_output(dst, stream)
    h, w, _ = recon.shape
    line = (f"{dst if dst != '-' else '(stdout)'}: {len(stream)} bytes, {8 * len(stream) / (w * h):.4f} bpp, "
            f"PSNR {psnr(pixels, recon):.2f} dB ({w}x{h})")
    if s.verbose:
        line += f"; model {s.model}{f', quality {quality}' if quality else ''}, {s.impl}, {seconds:.2f} s"
    (result.err if dst == "-" else result.out).append(line)
    return result


def decode_job(src: str, dst: str, s: Settings) -> Outcome:
    from refcodec.image import output_format, picture_bytes

    result = Outcome()
    fmt = output_format(dst, s.format)
    data = read_stream(src)
    start = time.perf_counter()
    if s.dump_stages:
        pixels = dump_stages(data, s)
        write_output(dst, picture_bytes(pixels, fmt))
        h, w, _ = pixels.shape
    else:
        w, h = decode_to_file(data, src, dst, fmt, s)
    seconds = time.perf_counter() - start
    if s.verbose:
        result.err.append(f"{dst if dst != '-' else '(stdout)'}: {w}x{h} {fmt} from {src} ({len(data)} bytes), "
                          f"{s.impl}, {seconds:.2f} s")
    return result


def decode_to_file(data: bytes, src: str, dst: str, fmt: str, s: Settings) -> tuple:
    """Decode a stream and write its picture to ``dst`` as the bands of rows come (spec §8.6; the file appears
    only once the whole stream has decoded without an error, spec §2.6); returns (width, height)."""
    from refcodec.decoder import decoding as decoder
    from refcodec.image import write_picture
    from refcodec.progress import row_progress

    header, model = decoder.open_stream(data, list(s.model_files), s.impl, s.max_pixels)
    with row_progress(header.height, f"decoding {Path(src).name}", s.quiet or not s.progress) as bar:
        bands = decoder.picture_bands(header, model, s.impl, s.band_height, bar)
        write_picture(dst, fmt, header.width, header.height, bands)
    return header.width, header.height


def dump_stages(data: bytes, s: Settings):
    """Decode once, writing every intermediate stage as DIR/<stage>.i32 (spec §9.4); returns the picture."""
    from refcodec.decoder import decoding as decoder
    from refcodec.decoder.bitstream import parse_stream
    from refcodec.image import write_atomic

    stages = decoder.stages(data, list(s.model_files), s.impl)
    folder = Path(s.dump_stages or ".")
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in stages.items():
        write_atomic(folder / f"{name}.i32", decoder.stage_bytes(array))
    header = parse_stream(data)
    return decoder.crop(stages["synthesis.6"], header.width, header.height)


JOBS = {"encode": encode_job, "decode": decode_job}


def run_job(job: tuple) -> Outcome:
    """Run one (kind, src, dst, settings) job; any expected error becomes its one line."""
    kind, src, dst, settings = job
    try:
        return JOBS[kind](src, dst, settings)
    except Exception as e:
        if not expected_error(e):
            raise
        return Outcome(err=[error_line(e, src if not isinstance(e, OSError) else None)], failed=True)


def worker_init(threads: int | None) -> None:
    """A worker process: Ctrl-C is the parent's to handle; the threads of its share of the cores."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if threads:
        set_threads(threads)


def progress(items, total: int, s: Settings, unit: str):
    """``items`` with a tqdm progress bar on stderr when it is a terminal, not --quiet and not a single item."""
    from refcodec.progress import wanted

    if total < 2 or not wanted(s.quiet):
        return items
    from tqdm import tqdm

    return tqdm(items, total=total, unit=unit, file=sys.stderr, leave=False)


def in_processes(func, jobs: list, s: Settings, jobs_n: int, unit: str):
    """func(job) for every job, in order: here (-j 1) or in ``jobs_n`` spawned worker processes, each with its
    share of the cores unless --threads says otherwise; with a progress bar. Interrupted, the workers end."""
    if jobs_n <= 1 or len(jobs) <= 1:
        if s.threads:
            set_threads(s.threads)
        yield from progress(map(func, jobs), len(jobs), s, unit)
        return
    import multiprocessing

    threads = s.threads or max(1, (os.cpu_count() or 1) // jobs_n)
    pool = multiprocessing.get_context("spawn").Pool(min(jobs_n, len(jobs)), worker_init, (threads,))
    finished = False
    try:
        yield from progress(pool.imap(func, jobs), len(jobs), s, unit)
        finished = True
    finally:
        if finished:
            pool.close()
        else:
            pool.terminate()
        pool.join()


def run_jobs(jobs: list, s: Settings, jobs_n: int, unit: str = "file") -> int:
    """Run ``jobs``; prints what each reports, in order; returns the exit status (1 if any failed)."""
    announce_compiling(s)
    failed = False
    for outcome in in_processes(run_job, jobs, s, jobs_n, unit):
        failed |= outcome.failed
        for line in outcome.out:
            if not s.quiet:
                print(line, flush=True)
        for line in outcome.err:
            if outcome.failed or not s.quiet:
                print(line, file=sys.stderr, flush=True)
    return 1 if failed else 0


# --- planning: inputs, outputs, checks before any work --------------------------------------------------------


def expand_inputs(paths: list, extensions: tuple) -> list:
    """Files of ``paths``: a folder stands for its files with one of ``extensions`` (sorted, not recursive)."""
    files = []
    for p in paths:
        if p != "-" and Path(p).is_dir():
            found = sorted(str(f) for f in Path(p).iterdir() if f.is_file() and f.suffix.lower() in extensions)
            if not found:
                raise CliError(f"{p}: no {' / '.join(extensions[:6])} files in this folder")
            files += found
        else:
            files.append(p)
    return files


def plan(args, extensions: tuple, out_extension: str) -> list:
    """(input, output) pairs: ``IN OUT``, or ``IN... -o DIR`` (DIR/<stem><out_extension>); outputs checked."""
    from refcodec.image import check_output_path

    if args.output_dir is None:
        if len(args.paths) != 2:
            raise CliError(f"{args.command} takes INPUT OUTPUT, or several inputs (files or folders) with -o DIR")
        if args.paths[0] != "-" and Path(args.paths[0]).is_dir():
            raise CliError(f"{args.paths[0]}: is a folder: name an output folder with -o DIR")
        pairs = [(args.paths[0], args.paths[1])]
    else:
        out = Path(args.output_dir)
        if out.exists() and not out.is_dir():
            raise CliError(f"-o {out}: is not a folder")
        if "-" in args.paths:
            raise CliError("-o DIR names outputs after their inputs: stdin ('-') has no name")
        out.mkdir(parents=True, exist_ok=True)
        pairs, seen = [], {}  # type: ignore[var-annotated]
        for src in expand_inputs(args.paths, extensions):
            dst = str(out / (Path(src).stem + out_extension))
            if dst in seen:
                raise CliError(f"{src} and {seen[dst]} would both be written to {dst}")
            seen[dst] = src
            pairs.append((src, dst))
    for src, dst in pairs:
        if src != "-" and not Path(src).exists():
            raise OSError(2, "No such file or directory", src)
        check_output_path(dst)
    return pairs


def common_settings(args) -> Settings:
    return Settings(quiet=getattr(args, "quiet", False), verbose=getattr(args, "verbose", False),
                    threads=getattr(args, "threads", None), impl=getattr(args, "impl", "fast"))


# --- commands -----------------------------------------------------------------------------------------------


def cmd_encode(args) -> int:
    from refcodec.decoder.errors import InputError
    from refcodec.encoder import encode as encoder
    from refcodec.image import IMAGE_EXTENSIONS

    target = next(((m, t) for m, t in (("bpp", args.target_bpp), ("psnr", args.target_psnr)) if t is not None), None)
    s = replace(common_settings(args), model=args.model, quality=args.quality, target=target)
    pairs = plan(args, IMAGE_EXTENSIONS, STREAM_EXTENSION)
    model = encoder.resolve_model(args.model)  # an unknown model or quality fails before any picture is read
    if target is None:
        encoder.quality_level(model, args.quality)
    elif not model.levels:
        raise InputError(f"model {model.name!r} has a single rate: there is no quality to search", "A.1.6")
    s = replace(s, progress=len(pairs) == 1)
    return run_jobs([("encode", src, dst, s) for src, dst in pairs], s, args.jobs)


def cmd_decode(args) -> int:
    from refcodec.image import FORMAT_EXTENSIONS, output_format

    s = replace(common_settings(args), model_files=tuple(args.model_file), format=args.format,
                dump_stages=args.dump_stages, band_height=args.band_height, max_pixels=args.max_pixels)
    extension = FORMAT_EXTENSIONS[output_format("-", args.format)]
    pairs = plan(args, (STREAM_EXTENSION,), extension)
    for _, dst in pairs:
        output_format(dst, args.format)  # a lossy or unknown extension is refused before decoding
    if args.dump_stages and len(pairs) > 1:
        raise CliError("--dump-stages takes a single stream")
    s = replace(s, progress=len(pairs) == 1)
    return run_jobs([("decode", src, dst, s) for src, dst in pairs], s, args.jobs)


def cmd_info(args) -> int:
    status = 0
    for k, src in enumerate(args.paths):
        if len(args.paths) > 1:
            print(f"{'' if k == 0 else chr(10)}{src}")
        try:
            print_info(read_stream(src), args.model_file)
        except Exception as e:
            if not expected_error(e):
                raise
            print(error_line(e, src if not isinstance(e, OSError) else None), file=sys.stderr)
            status = 1
    return status


def print_info(data: bytes, model_files) -> None:
    from refcodec.decoder.bitstream import parse_stream
    from refcodec.decoder.errors import RefcodecError
    from refcodec.decoder.model import ARCHITECTURES, find_model

    h = parse_stream(data)
    lat_h, lat_w = h.latent_shape
    arch = {code: name for name, code in ARCHITECTURES.items()}[h.architecture]
    print(f"version       {h.version}\narchitecture  {h.architecture} ({arch})\nmodel_id      {h.model_id.hex()}")
    if h.quality is not None:
        print(f"quality       {h.quality + 1} (level {h.quality})")
    try:
        m = find_model(h.model_id, model_files)
        print(f"model         {m.name} ({m.architecture}, N={m.n} M={m.m})")
    except RefcodecError:
        print("model         not available")
    print(f"size          {h.width}x{h.height} (latent {lat_w}x{lat_h})")
    if h.z_data is not None:
        z_h, z_w = h.hyper_shape
        print(f"z stream      {len(h.z_data)} bytes (hyper-latent {z_w}x{z_h})")
    print(f"y stream      {len(h.y_data)} bytes\ntotal         {len(data)} bytes, "
          f"{8 * len(data) / (h.width * h.height):.4f} bpp")


MODELS_DIR = Path(__file__).resolve().parent / "models"  # refcodec.decoder.model.MODELS_DIR, without NumPy
KODAK_FIGURES = "kodak.json"  # refcodec.decoder.model.KODAK_FIGURES


def model_summary(path: Path) -> dict:
    """A shipped model's architecture, N, M, levels and identity (SHA-256, spec §6.5) from its header alone,
    without loading or checking its tensors, and without NumPy: what ``refcodec models`` lists."""
    import hashlib
    import json

    data = path.read_bytes()  # a file of the package, not a user's
    header = json.loads(data[8 : 8 + int.from_bytes(data[:8], "little")])
    meta = header.get("__metadata__", {})
    gains = header.get("quality.y_gain")
    return {"architecture": meta.get("architecture", "?"), "n": meta.get("N", "?"), "m": meta.get("M", "?"),
            "levels": gains["shape"][0] if isinstance(gains, dict) else 0,
            "model_id": hashlib.sha256(data).hexdigest()}


def cmd_models(args) -> int:
    """One line per shipped model: name, architecture, channels, Kodak figures (refcodec/models/kodak.json)."""
    import json

    try:
        kodak = json.loads((MODELS_DIR / KODAK_FIGURES).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        kodak = {}
    for path in sorted(MODELS_DIR.glob("*.safetensors")):
        m = model_summary(path)
        figures = kodak.get(m["model_id"]) if isinstance(kodak, dict) else None
        rd = (f"{figures['bpp']:.4f} bpp {figures['psnr']:.2f} dB on Kodak"
              if isinstance(figures, dict) and {"bpp", "psnr"} <= set(figures) else "not measured on Kodak")
        levels = f"qualities 1-{m['levels']}" if m["levels"] else "single rate"
        print(f"{path.stem:<12} {m['architecture']:<11} N={m['n']} M={m['m']}  {levels:<14} {rd}")
    return 0


def cmd_demo(args) -> int:
    from importlib import resources

    import numpy as np

    from refcodec.decoder import decoding as decoder
    from refcodec.encoder import encode as encoder
    from refcodec.image import psnr, to_rgb_array

    s = common_settings(args)
    if s.threads:
        set_threads(s.threads)
    with resources.as_file(resources.files("refcodec") / "data" / SAMPLE) as path:
        pixels = to_rgb_array(path)
    announce_compiling(s)
    stream, recon = encoder.encode(pixels, model=args.model, return_reconstruction=True)
    model_files = [args.model] if Path(args.model).is_file() else []  # a model file, not a shipped name
    if not np.array_equal(decoder.decode_stream(stream, model_files, impl="fast"), recon):
        raise RuntimeError("decoded picture differs from the encoder's reconstruction")
    h, w, _ = pixels.shape
    if not s.quiet:
        print(f"{SAMPLE} {w}x{h}, model {args.model}: {len(stream)} bytes, "
              f"{8 * len(stream) / (w * h):.4f} bpp, PSNR {psnr(pixels, recon):.2f} dB; decoded bit-exactly")
    return 0


def eval_job(job: tuple) -> tuple:
    """One (picture, quality) of ``refcodec eval``: (row, error line)."""
    from refcodec.evaluate import evaluate_picture

    path, model, quality, impl = job
    try:
        return evaluate_picture(path, model, quality, impl), None
    except Exception as e:
        if not expected_error(e):
            raise
        return None, error_line(e, path if not isinstance(e, OSError) else None)


def cmd_eval(args) -> int:
    import json

    import refcodec
    from refcodec import evaluate
    from refcodec.encoder import encode as encoder
    from refcodec.image import IMAGE_EXTENSIONS, check_output_path

    s = common_settings(args)
    files = expand_inputs(args.paths, IMAGE_EXTENSIONS)
    for f in files:
        if not Path(f).is_file():
            raise OSError(2, "No such file or directory", f)
    for out in (args.json, args.plot):
        if out is not None:
            check_output_path(out)
    if args.plot is not None:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise CliError("--plot needs matplotlib: pip install 'refcodec[bench]'") from None
    model = encoder.resolve_model(args.model)
    qualities = args.quality or ([q + 1 for q in range(model.levels)] if model.levels else [None])
    for q in qualities:
        encoder.quality_level(model, q)
    announce_compiling(s)
    jobs = [(f, args.model, q, s.impl) for q in qualities for f in files]
    rows, failed = [], False
    for row, error in in_processes(eval_job, jobs, s, args.jobs, "picture"):
        if error:
            print(error, file=sys.stderr)
            failed = True
            continue
        for note in row.pop("notes"):
            if not s.quiet:
                print(f"refcodec: note: {row['image']}: {note}", file=sys.stderr)
        rows.append(row)
        if s.verbose:
            print(f"{row['image']} q={row['quality']}: {row['bpp']:.4f} bpp, PSNR {row['psnr-rgb']} dB, "
                  f"MS-SSIM {row['ms-ssim-rgb']}, {row['encoding_time']:.3f} s + {row['decoding_time']:.3f} s",
                  file=sys.stderr)
    label = model.name if args.model == model.name else Path(args.model).stem
    description = (f"refcodec {refcodec.__version__}, model {args.model} ({model.architecture}), impl {s.impl}, "
                   f"{len(files)} pictures of {', '.join(args.paths)}, {args.jobs} process(es)")
    document = evaluate.summarise(rows, qualities, model, description, label)
    if args.json is not None:
        from refcodec.image import write_atomic

        write_atomic(args.json, (json.dumps(document, indent=2) + "\n").encode())
    if args.plot is not None:
        evaluate.plot(document, args.plot)
    if not s.quiet:
        print(evaluate.table(document))
    return 1 if failed else 0


def cmd_conform(args) -> int:
    from refcodec.conformance import cli as conform
    from refcodec.conformance import suite

    if not args.random and args.vectors is None and not (suite.DEFAULT_VECTORS / "index.json").is_file():
        print("refcodec conform: no golden vectors: they are not in the installed package but in the vectors/ "
              "folder of refcodec's source repository; run from a checkout, or pass --vectors DIR",
              file=sys.stderr)
        return 2
    return conform.run(args)


def cmd_import(args) -> int:
    """A CompressAI checkpoint as a refcodec model file (Annex A.3.3), written only when it is complete."""
    from refcodec.encoder.compressai import import_model
    from refcodec.image import write_atomic

    out = Path(args.output)
    if out.is_dir():
        raise CliError(f"{out} is a folder: name the model file to write")
    data = import_model(Path(args.checkpoint), args.arch, Path(args.calibrate) if args.calibrate else None,
                        args.name)
    write_atomic(out, data)
    if not getattr(args, "quiet", False):
        print(f"wrote {out} ({len(data)} bytes): a {args.arch} model of refcodec; "
              f"'refcodec vectors --model {out} DIR' makes its conformance suite")
    return 0


def cmd_vectors(args) -> int:
    """The conformance suite of one model file (spec §9.3; refcodec.conformance.model_suite)."""
    from refcodec.conformance.model_suite import generate

    out = Path(args.outdir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise CliError(f"{out} exists and is not an empty folder")
    count = generate(Path(args.model), out)
    if not getattr(args, "quiet", False):
        print(f"wrote {count} vectors to {out}; 'refcodec conform --vectors {out} --decoder ...' runs them")
    return 0


COMMANDS = {"encode": cmd_encode, "decode": cmd_decode, "info": cmd_info, "models": cmd_models, "demo": cmd_demo,
            "eval": cmd_eval, "conform": cmd_conform, "import": cmd_import, "vectors": cmd_vectors}


# --- the parser ---------------------------------------------------------------------------------------------


def build_parser(with_conform: bool = True) -> argparse.ArgumentParser:
    """The parser; the conformance runner's options (which import its package) only ``with_conform``."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                        help="print nothing but errors")
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="also print models, qualities, times and notes")
    common.add_argument("--threads", type=positive_int, metavar="N", default=argparse.SUPPRESS,
                        help="threads of the fast kernels (numba.set_num_threads; default: every core)")
    ap = argparse.ArgumentParser(prog="refcodec", parents=[common],
                                 description="Integer-only learned image codec (reference implementation).",
                                 epilog="'refcodec COMMAND --help' describes a command. Files: '-' is stdin or "
                                        "stdout.")
    ap.add_argument("--version", action=VersionAction)
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def jobs_option(p):
        p.add_argument("-j", "--jobs", type=positive_int, default=1, metavar="N",
                       help="worker processes for several inputs (default 1)")

    e = sub.add_parser("encode", parents=[common], help="picture(s) (PNG, JPEG, ...) -> refcodec stream(s)",
                       description="Encode pictures: 'encode IN OUT' or 'encode IN... -o DIR' (a folder stands for "
                                   "its pictures); '-' is stdin or stdout.")
    e.add_argument("paths", nargs="+", metavar="PATH", help="INPUT OUTPUT, or the inputs with -o DIR")
    e.add_argument("-o", "--output-dir", metavar="DIR", help="write DIR/<name>.rcdc for every input")
    e.add_argument("--model", default=DEFAULT_MODEL,
                   help=f"shipped model name (see 'refcodec models'; default {DEFAULT_MODEL}) or model file path")
    rate = e.add_mutually_exclusive_group()
    rate.add_argument("--quality", type=int, metavar="Q",
                      help="quality level 1..L of a model with levels (default: the middle one)")
    rate.add_argument("--target-bpp", type=float, metavar="B", help="the quality whose bpp is nearest to B")
    rate.add_argument("--target-psnr", type=float, metavar="P", help="the quality whose PSNR is nearest to P dB")
    d = sub.add_parser("decode", parents=[common], help="refcodec stream(s) -> picture(s) in a lossless format",
                       description="Decode streams: 'decode IN OUT' or 'decode IN... -o DIR'. The format comes from "
                                   "OUT's extension: .png, .ppm/.pnm, .bmp, .tif/.tiff, .webp (lossless) or .rgb/.raw "
                                   "(raw RGB bytes); PNG on stdout ('-') unless --format names another.")
    d.add_argument("paths", nargs="+", metavar="PATH", help="INPUT OUTPUT, or the inputs with -o DIR")
    d.add_argument("-o", "--output-dir", metavar="DIR", help="write DIR/<name>.png (or --format) for every input")
    d.add_argument("--format", choices=("png", "ppm", "pnm", "bmp", "tiff", "webp", "rgb"),
                   help="the output format, whatever the extension (default: from the extension; PNG on stdout)")
    d.add_argument("--max-pixels", type=positive_int, default=DEFAULT_MAX_PIXELS, metavar="N",
                   help=f"refuse a picture of more than N pixels before decoding it (default {DEFAULT_MAX_PIXELS}, "
                        f"above every picture the spec allows): for services that decode untrusted streams")
    d.add_argument("--band-height", type=band_height, metavar="H",
                   help="decode in bands of H pixel rows, a multiple of 16: the synthesis H rows at a time and the "
                        "hyper-synthesis H/16 latent rows at a time (default: heights that keep a band's activations "
                        "within 64 MiB); the pixels are the same")
    d.add_argument("--dump-stages", metavar="DIR",
                   help="also write every intermediate stage to DIR as <stage>.i32 (spec §9.4)")
    for p in (e, d):
        p.add_argument("--impl", choices=IMPLEMENTATIONS, default="fast",
                       help="fast (Numba, default) or reference (NumPy): the same bytes")
        jobs_option(p)
    i = sub.add_parser("info", parents=[common], help="print a stream's header fields and sizes")
    i.add_argument("paths", nargs="+", metavar="STREAM", help="stream file(s), or '-' for stdin")
    for p in (d, i):
        p.add_argument("--model-file", action="append", default=[], help="model file to look in (repeatable)")
    sub.add_parser("models", parents=[common], help="list the shipped models")
    m = sub.add_parser("demo", parents=[common], help="encode and decode the sample photo shipped in the package")
    m.add_argument("--model", default=DEFAULT_MODEL)
    v = sub.add_parser("eval", parents=[common], help="rate and distortion over a folder of pictures",
                       description="Evaluate a model on a dataset, as compressai.utils.eval_model: bpp, PSNR, "
                                   "MS-SSIM, encoding and decoding time per picture and their means per quality.")
    v.add_argument("paths", nargs="+", metavar="DIR", help="folder(s) of pictures, or picture files")
    v.add_argument("--model", default=DEFAULT_MODEL, help=f"shipped model name or file (default {DEFAULT_MODEL})")
    v.add_argument("--quality", type=positive_int, nargs="+", metavar="Q",
                   help="quality levels to evaluate (default: every level of a model with levels)")
    v.add_argument("--impl", choices=IMPLEMENTATIONS, default="fast")
    v.add_argument("--json", metavar="FILE", help="write the results as JSON (CompressAI's layout)")
    v.add_argument("--plot", metavar="FILE", help="plot rate-distortion curves (needs matplotlib: the bench extra)")
    jobs_option(v)
    imp = sub.add_parser("import", parents=[common], help="a model trained elsewhere -> a refcodec model file",
                         description="Import a CompressAI checkpoint (a state dict saved with torch.save, bare or "
                                     "as 'state_dict', with or without its CDF buffers) as an integer refcodec "
                                     "model that decodes bit-exactly everywhere and encodes (spec Annex A.3.3). "
                                     "Needs torch (pip install 'refcodec[train]'), not CompressAI.")
    imp.add_argument("source", choices=("compressai",), help="where the checkpoint comes from")
    imp.add_argument("checkpoint", metavar="CHECKPOINT", help="the checkpoint (.pth.tar)")
    imp.add_argument("output", metavar="OUT", help="the model file to write (.safetensors)")
    imp.add_argument("--arch", required=True,
                     choices=("bmshj2018-factorized", "bmshj2018-hyperprior", "mbt2018-mean", "mbt2018"),
                     help="the checkpoint's CompressAI model (its zoo name)")
    imp.add_argument("--calibrate", metavar="DIR",
                     help="photos to calibrate the integer ranges on (default: synthetic pictures; real photos "
                          "like those the model will code are better)")
    imp.add_argument("--name", help="the model's name (default: the architecture)")
    vec = sub.add_parser("vectors", parents=[common], help="write a conformance suite for one model file",
                         description="Write the conformance vectors of one model (spec §9.3) into an empty or new "
                                     "folder, in the format of the repository's vectors/: run them with "
                                     "'refcodec conform --vectors OUTDIR'.")
    vec.add_argument("--model", required=True, metavar="FILE", help="the model file")
    vec.add_argument("outdir", metavar="OUTDIR", help="the folder to write (new or empty)")
    c = sub.add_parser("conform", parents=[common], help="run a decoder on the conformance vectors")
    if with_conform:
        from refcodec.conformance import cli as conform

        conform.add_arguments(c)
    return ap


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    try:
        args = build_parser(with_conform="conform" in argv).parse_args(argv)
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print("refcodec: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # stdout closed early (| head): no traceback, no second error at exit
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Exception as e:
        if not expected_error(e):
            raise
        print(error_line(e), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
