"""Conformance runner: decode every golden vector (vectors/) with any decoder and check the result.

The runner of spec §9.3. A decoder proves itself conforming (spec §9.1) by passing every vector::

    refcodec conform --decoder './mydec --model {model} {stream} {output}'
    refcodec conform --decoder 'mydec {stream} {model} {output}' --output-format png \\
        --json results.json --junit results.xml --filter neg- --jobs 4
    refcodec conform --decoder 'mydec {stream} {model} {output}' --level 1    # a decoder of level 1

``python -m refcodec.conformance`` takes the same options. ``{stream}``, ``{model}`` and
``{output}`` become the paths of the vector's stream, its model file and the file the decoder
shall write, ``{dump}`` a directory for its intermediate stages (spec §9.4) and ``{python}`` the
running interpreter (refcodec.conformance.harness). The output is raw RGB bytes, row-major
(H, W, 3) (``--output-format rgb``, the default; the path ends in ``.rgb``) or a PNG file
(``--output-format png``; ``.png``). refcodec's own decoder passes with::

    refcodec conform --decoder '{python} -m refcodec.cli decode --model-file {model} {stream} {output}'

and, naming the first stage where a decoder departs from the specification::

    refcodec conform --decoder '{python} -m refcodec.cli decode --dump-stages {dump} \\
        --model-file {model} {stream} {output}'

How a vector passes or fails, and how stages are compared: refcodec.conformance.judge.
``--random N`` replaces the golden vectors with N fresh valid streams, shrunk and saved
when the decoder fails one (refcodec.conformance.random_streams); without ``--seed`` a seed is
drawn and printed. Reports: refcodec.conformance.reports.

Exit status: 0 when every vector passes, 1 when any fails, 2 on a usage error
(a bad ``--decoder`` template, no vectors, a decoder that cannot be started).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from refcodec.conformance import UsageError
from refcodec.conformance.harness import Config, Decoders, parse_template, placeholders
from refcodec.conformance.judge import check_all
from refcodec.conformance.random_streams import DEFAULT_SAVE_DIR, MAX_SHRINK_RUNS, run_random
from refcodec.conformance.reports import print_summary, write_reports
from refcodec.conformance.suite import DEFAULT_VECTORS, load_vectors, within_level
from refcodec.decoder.bitstream import LEVELS


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {text}")
    return value


def natural_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, not {text}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, not {text}")
    return value


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the conformance runner's options to ``p`` (the ``conform`` subcommand)."""
    p.add_argument("--decoder", required=True, metavar="CMD",
                   help="decoder command line; {stream}, {model} and {output} become paths, {dump} a "
                        "directory for intermediate stages, {python} this Python interpreter")
    p.add_argument("--output-format", choices=("rgb", "png"), default="rgb",
                   help="what the decoder writes: raw RGB bytes (default) or PNG")
    p.add_argument("--vectors", type=Path, metavar="DIR",
                   help="golden vectors folder (default: the repository's vectors/)")
    p.add_argument("--filter", action="append", default=[], metavar="SUBSTR",
                   help="run only vectors whose name contains SUBSTR (repeatable: any of them)")
    p.add_argument("--level", type=int, choices=[level for level, *_ in LEVELS], metavar="L",
                   help="judge a decoder that conforms at level L (spec §7.3, §9.1): vectors whose stream is of a "
                        "higher level are not run (default: the highest level, every vector)")
    p.add_argument("--timeout", type=positive_float, default=60.0, metavar="SECONDS",
                   help="time limit per vector (default 60)")
    p.add_argument("--jobs", type=positive_int, default=os.cpu_count() or 1, metavar="N",
                   help="vectors decoded in parallel (default: the number of CPUs)")
    p.add_argument("--diff-dir", type=Path, default=Path("conform-diffs"), metavar="DIR",
                   help="where heat-maps of mismatching pixels go (default ./conform-diffs)")
    p.add_argument("--strict", action="store_true",
                   help="fail a negative vector whose error class the decoder does not name on stderr")
    p.add_argument("--json", type=Path, metavar="FILE", help="write all results as JSON")
    p.add_argument("--junit", type=Path, metavar="FILE", help="write JUnit XML")
    g = p.add_argument_group("generative conformance (instead of the golden vectors)")
    g.add_argument("--random", type=positive_int, metavar="N",
                   help="decode N fresh random valid streams instead of the golden vectors")
    g.add_argument("--seed", type=natural_int, metavar="S",
                   help="seed of the random streams (same seed, same streams; default: drawn and printed)")
    g.add_argument("--save-dir", type=Path, metavar="DIR",
                   help=f"where the shrunk failing streams are saved as vectors (default ./{DEFAULT_SAVE_DIR})")
    g.add_argument("--shrink-runs", type=natural_int, metavar="K",
                   help=f"decoder runs spent shrinking each failing stream (default {MAX_SHRINK_RUNS}; "
                        "0: save it as it is)")


def run(args: argparse.Namespace) -> int:
    """Run the vectors ``args`` select (or ``--random`` streams) through the decoder; returns the exit status."""
    try:
        check_options(args)
        words = parse_template(args.decoder)
        config = Config(words, args.output_format, args.diff_dir, dump="dump" in placeholders(words),
                        strict=args.strict)
        decoders = Decoders(args.timeout)
        start = time.monotonic()
        if args.random:
            results, source = run_random(args, config, decoders)
        else:
            folder = args.vectors or DEFAULT_VECTORS
            vectors = load_vectors(folder, args.filter)
            source = {"vectors": str(folder.resolve())}
            if args.level is not None:
                vectors, above = within_level(vectors, args.level)
                source.update({"level": args.level, "not_run_above_level": above})
                if above:
                    print(f"{len(above)} vectors of a level above {args.level} not run: {', '.join(above)}")
                if not vectors:
                    raise UsageError(f"no vector of level {args.level} or below")
            results = check_all(vectors, config, decoders, args.jobs)
        print_summary(results)
        write_reports(args, source, results, time.monotonic() - start)
    except UsageError as e:
        print(f"refcodec conform: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("refcodec conform: interrupted", file=sys.stderr)
        return 130
    return 0 if all(r.passed for r in results) else 1


def check_options(args: argparse.Namespace) -> None:
    """--random replaces the golden vectors; --seed, --save-dir and --shrink-runs only go with it."""
    if args.random and (args.vectors or args.filter):
        raise UsageError("--random replaces the golden vectors: do not combine it with --vectors or --filter")
    if not args.random:
        given = [f"--{name.replace('_', '-')}" for name in ("seed", "save_dir", "shrink_runs")
                 if getattr(args, name) is not None]
        if given:
            raise UsageError(f"{', '.join(given)}: only with --random N")


def main(argv: list[str] | None = None) -> int:
    """``python -m refcodec.conformance ...``, the same as ``refcodec conform ...``."""
    parser = argparse.ArgumentParser(prog="refcodec conform", description=__doc__.split("\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))
