"""The runner's reports (spec §9.3): pass or fail per vector on stdout, and the whole run as
JSON (``--json``) and JUnit XML (``--junit``, one testcase per vector)."""

from __future__ import annotations

import argparse
import json
import xml.etree.ElementTree as ET
from dataclasses import asdict

from refcodec.conformance import UsageError
from refcodec.conformance.judge import CLASS_UNVERIFIED, Result

SUITE = "refcodec-conformance"
CLASSNAME = "refcodec.vectors"


def print_summary(results: list[Result]) -> None:
    for r in results:
        note = f" [{r.note}]" if r.note else ""
        print(f"{'PASS' if r.passed else 'FAIL'} {r.name} — {r.detail}{note}")
    failed = sum(not r.passed for r in results)
    unverified = sum(r.passed and r.note == CLASS_UNVERIFIED for r in results)
    if unverified:
        print(f"{unverified} negative vectors passed with their error class unverified (the decoder named none; "
              f"--strict fails them)")
    print(f"{len(results) - failed} passed, {failed} failed")


def write_reports(args: argparse.Namespace, source: dict, results: list[Result], seconds: float) -> None:
    try:
        if args.json:
            args.json.write_text(json_report(args, source, results, seconds), encoding="utf-8")
        if args.junit:
            junit_report(results, seconds).write(args.junit, encoding="utf-8", xml_declaration=True)
    except OSError as e:
        raise UsageError(f"cannot write a report: {e}") from None


def json_report(args: argparse.Namespace, source: dict, results: list[Result], seconds: float) -> str:
    """The whole run as JSON; ``source`` says what was decoded: {"vectors": folder} or
    {"random": N, "seed": S, "save_dir": folder}."""
    failed = sum(not r.passed for r in results)
    report = {"suite": SUITE, "decoder": args.decoder, "output_format": args.output_format, **source,
              "passed": len(results) - failed, "failed": failed, "seconds": round(seconds, 3),
              "results": [asdict(r) for r in results]}
    return json.dumps(report, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def junit_report(results: list[Result], seconds: float) -> ET.ElementTree:
    """One testsuite, one testcase per vector; a failure element says why it failed."""
    failed = sum(not r.passed for r in results)
    suite = ET.Element("testsuite", name=SUITE, tests=str(len(results)), failures=str(failed),
                       errors="0", skipped="0", time=f"{seconds:.3f}")
    for r in results:
        case = ET.SubElement(suite, "testcase", name=r.name, classname=CLASSNAME, time=f"{r.seconds:.3f}")
        if not r.passed:
            failure = ET.SubElement(case, "failure", message=r.detail, type=r.reason)
            failure.text = "\n".join(failure_lines(r)) or None
        if r.note:
            ET.SubElement(case, "system-out").text = r.note
    ET.indent(suite)
    return ET.ElementTree(suite)


def failure_lines(r: Result) -> list[str]:
    """The text of a JUnit failure: the first divergent stage, the saved vector, the decoder's stderr."""
    lines = []
    if r.first_divergent_stage:
        lines.append(f"first divergent stage: {r.first_divergent_stage}")
    if r.saved_vector:
        lines.append(f"smallest failing stream saved as {r.saved_vector}")
    if r.stderr:
        lines.append(f"decoder stderr: {r.stderr}")
    return lines
