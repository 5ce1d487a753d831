"""Measure what the golden vectors exercise (spec §9.3; run by hand, not a test).

    python -m refcodec.conformance.coverage [--vectors DIR] [--json FILE] [--ties]
    python vectors/measure_coverage.py [--vectors DIR] [--json FILE] [--ties]     (the same)

1. Code: refcodec's reference decoder (``refcodec.decoder.decoding.decode_stream(..., impl="reference")``,
   and for positive vectors ``refcodec.decoder.decoding.stages``, which gives the checksums of
   spec §9.4) decodes every vector of index.json under coverage.py with branch coverage, in a
   Python process measured from its start, so that the decoder's module-level lines count;
   a negative vector must raise its ``expected_error``. Only the reference decode path
   is measured: the modules of refcodec.decoder (``DECODE_PATH``) without the functions
   decoding never runs (``NOT_DECODING``). For every line never run the report gives
   the function and, for an error the decoder never raised, the clause a negative
   vector would have to violate; for every branch never taken from a line that ran,
   the condition.
2. Error checks: branch coverage cannot see which condition of a helper such as
   ``require(ok, ...)`` failed, so every place the decoder reports an error (a call
   of ``_fail``, ``require``, ``require_rows``, ``check_range``, ``json_require``
   (JsonRequire of §2.7), ``_number_error`` or a ``raise`` of StreamError or
   ModelError) is listed with the negative vectors that reach it, read from the
   traceback of the error each one raises, and with its clause (named at the call,
   by the helper's default, or by the module's ``CLAUSE``).
3. Clauses: every normative clause of spec chapters 2-9 (``## 3.5 Title`` headings;
   clauses whose title says informative, and the Annexes, are left out) with the
   vectors whose manifest lists it in ``clauses``, and the clauses none lists.
4. Rounding ties (``--ties``, a few minutes): code coverage cannot tell whether a
   vector makes Round2 (spec §2.4) meet an exact tie that survives the clipping. For
   every layer of every positive vector's model, the reference decoder is run with
   that one layer rounding ties down instead of up (``refcodec.decoder.layers.round2``
   swapped while the layer runs), and likewise ApplyGain (spec §8.11) with each
   quality tensor of a model with quality levels; the report lists the layers and
   gains where no vector's pixels change: a decoder with that bug passes the whole
   suite.

Prints the report and writes vectors/coverage.json. Needs coverage.py
(``pip install coverage``; part of refcodec's ``test`` extra).
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import coverage
import numpy as np

from refcodec.conformance.suite import DEFAULT_VECTORS, Vector, load_vectors
from refcodec.decoder import decoding, latents, layers
from refcodec.decoder.conventions import sha256
from refcodec.decoder.decoding import decode_stream, stage_bytes, stages
from refcodec.decoder.errors import RefcodecError
from refcodec.decoder.model import model_from_file

MODULE = "refcodec.conformance.coverage"  # run again, under coverage.py, to decode the vectors
PACKAGE = Path(__file__).resolve().parents[1] / "decoder"  # the reference decoder
SPEC = Path(__file__).resolve().parents[2] / "spec"
DECODE_PATH = sorted(path.name for path in PACKAGE.glob("*.py") if path.name != "__init__.py")
NOT_DECODING = [  # definitions in DECODE_PATH that decoding never runs (coverage.py exclusion patterns)
    r"^def joint_params\(",  # latents.py: spec §8.10 given all of y_hat (the stages of §9.4)
    r"^def model_from_file\(", r"^def model_by_name\(",  # model.py: the shipped-model helpers
    r"^def shipped_models\(", r"^def kodak_figures\(",
    r"^class InputError\(",  # errors.py: the encoder's error
    r"^def crop\(", r"^def implementations\(",  # decoding.py: the CLI's stage output and --impl choices
    r"^def banded_memory\(",  # bitstream.py: the informative memory figures of spec §7.3
]
ERROR_CLASS_OF_FILE = {"model.py": "ModelError", "cdf.py": "ModelError",  # otherwise StreamError
                       "json_text.py": "ModelError"}
ERROR_CLASSES = ("StreamError", "ModelError")
# functions that only raise an error for a caller (json_require is JsonRequire of spec §2.7)
HELPERS = {"_fail", "require", "require_rows", "check_range", "json_require", "_number_error"}
CLAUSE_IN_CODE = re.compile(r"""["'](\d+\.\d+)["']""")
RAISES = re.compile(r"\b(raise|_fail|require|require_rows|json_require|_number_error)\b")
HEADING = re.compile(r"^## (\d+\.\d+) (.+?)(?: \{#[^}]*\})?\s*$", re.M)
INFORMATIVE = re.compile(r"\binformative\b", re.I)
NORMATIVE_CHAPTERS = "0[2-9]-*.md"


# --- code coverage ------------------------------------------------------------


def measure_code(folder: Path) -> tuple[dict, list[str], dict]:
    """(coverage.py's JSON report of the decode path, problems, vector -> (file, line) where the
    decoder reported its error) after decoding every vector with the reference decoder in a
    process of its own, run under coverage.py before refcodec is imported (``decode_all``), from
    the folder that holds this refcodec."""
    include = [str(PACKAGE / name) for name in DECODE_PATH]
    with tempfile.TemporaryDirectory() as tmp:
        data, decoded, report = Path(tmp) / "coverage.data", Path(tmp) / "decoded.json", Path(tmp) / "coverage.json"
        subprocess.run([sys.executable, "-m", "coverage", "run", "--branch", f"--data-file={data}",
                        f"--include={','.join(include)}", "-m", MODULE, "--vectors", str(folder),
                        "--decode-into", str(decoded)], check=True, cwd=PACKAGE.parents[1])
        cov = coverage.Coverage(data_file=str(data), config_file=False, include=include)
        for pattern in NOT_DECODING:
            cov.exclude(pattern)
        cov.load()
        cov.json_report(outfile=str(report))
        outcome = json.loads(decoded.read_text(encoding="utf-8"))
        raised = {name: tuple(where) if where else None for name, where in outcome["raised"].items()}
        return json.loads(report.read_text(encoding="utf-8")), outcome["problems"], raised


def decode_all(folder: Path, out: Path) -> None:
    """Decode every vector of ``folder`` (``decode_vector``) and write to ``out`` the problems and,
    for each vector, where the decoder reported its error: what ``measure_code`` runs under coverage.py."""
    problems, raised = [], {}
    for vector in load_vectors(folder, []):
        problem, raised[vector.name] = decode_vector(vector)
        if problem:
            problems.append(problem)
    out.write_text(json.dumps({"problems": problems, "raised": raised}), encoding="utf-8")


def decode_vector(vector: Vector) -> tuple[str, tuple | None]:
    """Decode one vector as a conforming decoder must (spec §9.1): ("" or what went wrong,
    (file, line) of the check that reported the error, or None)."""
    manifest, name = vector.manifest, vector.name
    stream = vector.stream.read_bytes()
    models = [vector.model]
    try:
        pixels = decode_stream(stream, models, impl="reference")
        dumped = stages(stream, models, impl="reference")
    except RefcodecError as e:
        expected = manifest.get("expected_error")
        wrong = "" if type(e).__name__ == expected else \
            f"{name}: {type(e).__name__}: {e} (expected {expected or 'no error'})"
        return wrong, reporting_check(e)
    if vector.negative:
        return f"{name}: decoded, expected a {manifest['expected_error']}", None
    if sha256(pixels.tobytes()).hex() != manifest["pixels_sha256"]:
        return f"{name}: pixels differ from pixels_sha256", None
    differing = [s["name"] for s in manifest.get("stages", [])
                 if sha256(stage_bytes(dumped[s["name"]])).hex() != s["sha256"]]
    return (f"{name}: stages {', '.join(differing)} differ from the manifest" if differing else ""), None


def reporting_check(error: Exception) -> tuple[str, int] | None:
    """(file name, line) of the innermost refcodec frame of ``error``'s traceback outside the helpers."""
    frames = [(Path(f.f_code.co_filename), line, f.f_code.co_name) for f, line in walk_tb(error.__traceback__)]
    inside = [(path.name, line) for path, line, function in frames
              if path.parent == PACKAGE and function not in HELPERS]
    return inside[-1] if inside else None


def walk_tb(tb):
    while tb is not None:
        yield tb.tb_frame, tb.tb_lineno
        tb = tb.tb_next


def file_report(path: Path, measured: dict) -> dict:
    """One file's figures, the lines never run (grouped, with their function and, for an error,
    the clause a vector would violate) and the branches never taken from lines that ran."""
    source = path.read_text(encoding="utf-8").splitlines()
    functions = function_spans(path)
    missing = set(measured["missing_lines"])
    groups = [{"lines": [first, last], "function": function_at(functions, first),
               "code": [source[i - 1].strip() for i in range(first, last + 1)],
               "hint": error_hint(path.name, source[first - 1:last])} for first, last in line_groups(missing, source)]
    branches = [{"from": a, "to": "exit" if b < 0 else b, "function": function_at(functions, a),
                 "code": source[a - 1].strip()} for a, b in measured.get("missing_branches", []) if a not in missing]
    return {**figures(measured["summary"]), "missing_lines": groups, "missing_branches": branches}


def figures(summary: dict) -> dict:
    """Line and branch counts and percentages from a summary of coverage.py's JSON report."""
    return {"statements": summary["num_statements"], "covered_lines": summary["covered_lines"],
            "line_percent": percent(summary["covered_lines"], summary["num_statements"]),
            "branches": summary["num_branches"], "covered_branches": summary["covered_branches"],
            "branch_percent": percent(summary["covered_branches"], summary["num_branches"])}


def percent(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 1) if whole else 100.0


def line_groups(lines: set[int], source: list[str]) -> list[tuple[int, int]]:
    """Runs of missed lines, joined across blank and comment lines."""
    groups: list[list[int]] = []
    for n in sorted(lines):
        between = range(groups[-1][1] + 1, n) if groups else range(0)
        if groups and all(not source[i - 1].strip() or source[i - 1].strip().startswith("#") for i in between):
            groups[-1][1] = n
        else:
            groups.append([n, n])
    return [(a, b) for a, b in groups]


def function_spans(path: Path) -> list[tuple[int, int, str]]:
    """(first line, last line, qualified name) of every function and class of a file."""
    spans = []

    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = f"{prefix}{child.name}"
                spans.append((child.lineno, child.end_lineno, name))
                visit(child, f"{name}.")
            else:
                visit(child, prefix)

    visit(ast.parse(path.read_text(encoding="utf-8")), "")
    return spans


def function_at(spans: list[tuple[int, int, str]], line: int) -> str:
    """The innermost function or class holding ``line`` ("<module>" if none)."""
    inside = [s for s in spans if s[0] <= line <= s[1]]
    return min(inside, key=lambda s: s[1] - s[0])[2] if inside else "<module>"


def error_hint(file: str, lines: list[str]) -> str:
    """For lines that report an error naming a clause: the negative vector that would reach them."""
    text = " ".join(lines)
    if re.search(r"\braise (ValueError|TypeError)\b", text):
        return "no vector: it guards against a caller's bug, not a bad stream or model"
    clause = CLAUSE_IN_CODE.search(text)
    if not (clause and RAISES.search(text)):
        return ""
    named = re.search(r"\b(StreamError|ModelError)\b", text)
    error = named.group(1) if named else ERROR_CLASS_OF_FILE.get(file, "StreamError")
    return f"negative vector: a {error} of §{clause.group(1)}"


# --- error checks ---------------------------------------------------------------


def check_sites(path: Path) -> list[dict]:
    """Every statement of a file that reports an error for the decoder: a call of a helper
    of HELPERS or a raise of an error class, outside the helpers themselves and NOT_DECODING."""
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    tree = ast.parse(source)
    excluded = [re.compile(p) for p in NOT_DECODING]
    defaults = helper_clauses(tree)
    module_clause = module_level_clause(tree)
    sites = []

    def visit(node, function):
        for child in ast.iter_child_nodes(node):
            name = function
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                if any(p.search(lines[child.lineno - 1]) for p in excluded) or child.name in HELPERS:
                    continue
                name = f"{function}.{child.name}" if function else child.name
            elif isinstance(child, ast.stmt) and reports_error(child):
                text = " ".join(ln.strip() for ln in lines[child.lineno - 1:child.end_lineno])
                clause = CLAUSE_IN_CODE.search(text)
                named = re.search(r"\b(StreamError|ModelError)\b", text)
                sites.append({"file": path.name, "lines": [child.lineno, child.end_lineno], "function": name,
                              "clause": clause.group(1) if clause else defaults.get(called(child), module_clause),
                              "error": named.group(1) if named else ERROR_CLASS_OF_FILE.get(path.name, "StreamError"),
                              "code": text})
            visit(child, name)

    visit(tree, "")
    return sites


def called(stmt: ast.stmt) -> str:
    """The name of the function a call statement calls ("" if it is none)."""
    call = stmt.value if isinstance(stmt, ast.Expr) else stmt.exc if isinstance(stmt, ast.Raise) else None
    if not isinstance(call, ast.Call):
        return ""
    return call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", "")


def reports_error(stmt: ast.stmt) -> bool:
    """A helper call (``_fail(...)``, ``self._fail(...)``, ``require(...)``, ...) or ``raise StreamError(...)``."""
    if isinstance(stmt, ast.Expr):
        return called(stmt) in HELPERS
    return isinstance(stmt, ast.Raise) and called(stmt) in ERROR_CLASSES


def module_level_clause(tree: ast.Module) -> str:
    """The clause of a module whose checks all report one (``CLAUSE = "2.7"`` in json_text.py), else ""."""
    for node in tree.body:
        if (isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["CLAUSE"]
                and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)):
            return node.value.value
    return ""


def helper_clauses(tree: ast.Module) -> dict[str, str]:
    """helper -> the clause it reports when its caller names none: the default of a clause
    parameter (``require(ok, what, clause="4.2")``), or that of the helper it calls."""
    helpers = [f for f in ast.walk(tree) if isinstance(f, ast.FunctionDef) and f.name in HELPERS]
    clauses = {f.name: str(d.value) for f in helpers for d in f.args.defaults
               if isinstance(d, ast.Constant) and re.fullmatch(r"\d+\.\d+", str(d.value))}
    for f in helpers:
        inner = [called(s) for s in ast.walk(f) if isinstance(s, ast.Expr) and called(s) in clauses]
        if f.name not in clauses and inner:
            clauses[f.name] = clauses[inner[0]]
    return clauses


def check_coverage(raised: dict) -> list[dict]:
    """Every error check of the decode path with the negative vectors whose error it reported."""
    sites = [site for name in DECODE_PATH for site in check_sites(PACKAGE / name)]
    for site in sites:
        first, last = site["lines"]
        site["vectors"] = [vector for vector, where in raised.items()
                           if where and where[0] == site["file"] and first <= where[1] <= last]
    return sites


# --- rounding ties --------------------------------------------------------------

LAYER_GROUPS = ("synthesis", "hyper_synthesis", "context", "entropy_parameters")


def tie_coverage(vectors: list[Vector]) -> dict[str, list[str]]:
    """"<architecture> <group>.<k>" -> the positive vectors whose pixels change when that layer
    alone rounds exact ties down (or whose decoding then fails), for every layer of every model."""
    caught: dict[str, list[str]] = {}
    originals = {(layers, "apply_layer"), (latents, "context_at"), (latents, "pointwise_at")}
    saved = {(module, name): getattr(module, name) for module, name in originals}
    target = [None]
    for (module, name), function in saved.items():
        setattr(module, name, rounding_ties_down_in(target, function, layers))
    try:
        for v in [v for v in vectors if not v.negative]:
            stream = v.stream.read_bytes()
            model = model_from_file(v.model)
            for group in LAYER_GROUPS:
                for k, layer in enumerate(getattr(model, group)):
                    target[0] = layer
                    try:
                        pixels = decode_stream(stream, [v.model], impl="reference")
                        differ = sha256(pixels.tobytes()).hex() != v.manifest["pixels_sha256"]
                    except RefcodecError:
                        differ = True
                    caught.setdefault(f"{model.architecture} {group}.{k}", []).extend([v.name] if differ else [])
    finally:
        for (module, name), function in saved.items():
            setattr(module, name, function)
    caught.update(gain_tie_coverage(vectors))
    return caught


GAINS = ("z_gain", "y_gain")  # the quality tensors ApplyGain uses (spec §8.11)


def gain_tie_coverage(vectors: list[Vector]) -> dict[str, list[str]]:
    """"<architecture> ApplyGain <z_gain|y_gain>" -> the positive vectors of version-2 streams whose pixels
    change when ApplyGain (spec §8.11) with that tensor alone rounds exact ties down, for every model with
    quality levels."""
    from refcodec.conformance.vectors import gained_variant  # the encoder's imports, only when needed

    caught: dict[str, list[str]] = {}
    gained = decoding.gained
    try:
        for v in [v for v in vectors if not v.negative]:
            model = model_from_file(v.model)
            if not model.levels:
                continue
            stream = v.stream.read_bytes()
            for name in GAINS:
                target = getattr(model, name)
                if target is None:
                    continue
                decoding.gained = gained_variant(target, "ties-down")
                try:
                    pixels = decode_stream(stream, [v.model], impl="reference")
                    differ = sha256(pixels.tobytes()).hex() != v.manifest["pixels_sha256"]
                except RefcodecError:
                    differ = True
                finally:
                    decoding.gained = gained
                caught.setdefault(f"{model.architecture} ApplyGain {name}", []).extend([v.name] if differ else [])
    finally:
        decoding.gained = gained
    return caught


def rounding_ties_down_in(target: list, function, layers):
    """``function(..., layer)`` run with ``layers.round2`` rounding exact ties down when ``layer`` is target[0]."""
    round2 = layers.round2

    def ties_down(x, n):
        n = np.asarray(n, np.int64)
        return (x + ((np.int64(1) << n) >> 1) - (n > 0)) >> n

    def wrapped(*args):
        layers.round2 = ties_down if args[-1] is target[0] else round2
        try:
            return function(*args)
        finally:
            layers.round2 = round2

    return wrapped


# --- clause coverage ----------------------------------------------------------


def normative_clauses(spec: Path) -> dict[str, str]:
    """clause number -> title of every normative clause of chapters 2-9, in order."""
    clauses = {number: title for path in sorted(spec.glob(NORMATIVE_CHAPTERS))
               for number, title in HEADING.findall(path.read_text(encoding="utf-8"))
               if not INFORMATIVE.search(title)}
    return dict(sorted(clauses.items(), key=lambda kv: tuple(map(int, kv[0].split(".")))))


def clause_coverage(clauses: dict[str, str], vectors: list[Vector]) -> dict[str, dict]:
    """clause -> {"title", "vectors": the vectors whose manifest lists it}."""
    return {number: {"title": title, "vectors": [v.name for v in vectors if number in v.manifest["clauses"]]}
            for number, title in clauses.items()}


# --- the report -----------------------------------------------------------------


def print_report(report: dict) -> None:
    print(f"{report['vectors']} vectors decoded by the reference decoder "
          f"(coverage.py {report['coverage_version']}, branch coverage)")
    for problem in report["problems"]:
        print(f"  PROBLEM {problem}")
    unreached = [c for c in report["checks"] if not c["vectors"]]
    print_code(report, unreached)
    print_checks(report["checks"], unreached)
    print_clauses(report)


def print_code(report: dict, unreached: list[dict]) -> None:
    """Line and branch figures per file; the lines never run and branches never taken, except
    those of the error checks never reached (print_checks lists them)."""
    print(f"\n{'file':<16}{'lines':>16}{'branches':>18}")
    for name, f in [*report["files"].items(), ("total", report["totals"])]:
        print(f"{name:<16}{f['line_percent']:>6.1f}% ({f['covered_lines']:>3}/{f['statements']:<3})"
              f"{f['branch_percent']:>7.1f}% ({f['covered_branches']:>3}/{f['branches']:<3})")
    print("\nlines never run and branches never taken, other than into the error checks listed after them:")
    for name, f in report["files"].items():
        in_checks = {n for c in unreached if c["file"] == name for n in range(c["lines"][0], c["lines"][1] + 1)}
        spans = [(g, set(range(g["lines"][0], g["lines"][1] + 1))) for g in f["missing_lines"]]
        hidden = set().union(*[lines for _, lines in spans if lines & in_checks])
        for g, lines in spans:
            if not lines & hidden:
                first, last = g["lines"]
                where = f"{first}" if first == last else f"{first}-{last}"
                hint = f"  <- {g['hint']}" if g["hint"] else ""
                print(f"  {name}:{where:<8} {g['function']}: {g['code'][0][:80]}{hint}")
        for b in f["missing_branches"]:
            if b["to"] not in hidden:
                print(f"  {name}:{b['from']}->{b['to']:<5} {b['function']}: never taken from `{b['code'][:70]}`")


def print_checks(checks: list[dict], unreached: list[dict]) -> None:
    print(f"\nerror checks of the decoder: {len(checks)}, reached by some negative vector: "
          f"{len(checks) - len(unreached)}; never reached:")
    for c in unreached:
        clause = f"§{c['clause']}" if c["clause"] else "§?"
        print(f"  {c['file'] + ':' + str(c['lines'][0]):<15} {c['error']} {clause:<6} {c['function']}: "
              f"{c['code'][:75]}")


def print_clauses(report: dict) -> None:
    clauses = report["clauses"]
    print(f"\nnormative clauses of chapters 2-9: {len(clauses)}, listed by some vector: "
          f"{len(clauses) - len(report['uncovered_clauses'])}")
    for number, c in clauses.items():
        listed = f"{len(c['vectors'])} vectors" if c["vectors"] else "NOT COVERED"
        print(f"  §{number:<5} {c['title'][:50]:<50} {listed}")
    if report["unknown_clauses"]:
        print(f"clauses listed by manifests that are no normative clause: {', '.join(report['unknown_clauses'])}")


def print_ties(ties: dict[str, list[str]]) -> None:
    missed = [layer for layer, vectors in ties.items() if not vectors]
    print(f"\nlayers and gains whose exact Round2 ties are checked (a decoder rounding them down fails a "
          f"vector): {len(ties) - len(missed)} of {len(ties)}")
    for layer, vectors in ties.items():
        print(f"  {layer:<34} {', '.join(vectors)[:90] if vectors else 'NOT CHECKED: passes the whole suite'}")


def build_report(folder: Path, ties: bool) -> dict:
    """Everything the script measures, as written to coverage.json."""
    vectors = load_vectors(folder, [])
    measured, problems, raised = measure_code(folder)
    tie_layers = tie_coverage(vectors) if ties else None
    checks = check_coverage(raised)
    unattributed = [name for name, where in raised.items()
                    if where and not any(name in c["vectors"] for c in checks)]
    problems += [f"{name}: its error comes from no known check ({raised[name]})" for name in unattributed]
    files = {Path(path).name: file_report(Path(path), data) for path, data in sorted(
        measured["files"].items(), key=lambda kv: DECODE_PATH.index(Path(kv[0]).name))}
    clauses = clause_coverage(normative_clauses(SPEC), vectors)
    listed = {c for v in vectors for c in v.manifest["clauses"]}
    report = {"vectors": len(vectors), "coverage_version": coverage.__version__, "problems": problems,
              "files": files, "totals": figures(measured["totals"]), "checks": checks,
              "unreached_checks": [f"{c['file']}:{c['lines'][0]}" for c in checks if not c["vectors"]],
              "clauses": clauses, "uncovered_clauses": [n for n, c in clauses.items() if not c["vectors"]],
              "unknown_clauses": sorted(listed - set(clauses))}
    if tie_layers is not None:
        report.update({"ties": tie_layers, "unchecked_ties": [k for k, v in tie_layers.items() if not v]})
    return report


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vectors", type=Path, default=DEFAULT_VECTORS, help="vectors folder (default: vectors/)")
    ap.add_argument("--json", type=Path, default=DEFAULT_VECTORS / "coverage.json", help="where the report goes")
    ap.add_argument("--ties", action="store_true", help="also find the layers whose rounding ties no vector checks "
                                                        "(decodes every vector once per layer: minutes)")
    ap.add_argument("--decode-into", type=Path, help=argparse.SUPPRESS)  # measure_code's process: decode_all
    args = ap.parse_args(argv)
    if args.decode_into:
        decode_all(args.vectors.resolve(), args.decode_into)
        return 0
    report = build_report(args.vectors.resolve(), args.ties)
    print_report(report)
    if args.ties:
        print_ties(report["ties"])
    args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"\nwritten to {args.json}")
    return 1 if report["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
