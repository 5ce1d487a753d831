"""Fuzz harness (c): the JSON header parser (spec §2.7), refcodec.decoder.json_text.parse_json.

Every input is a model header's bytes. Three parsers read it, as tests/test_json_text.py compares them:
``ParseJson`` of the spec's own pseudocode (executed from spec/02-conventions.md), the reference
``parse_json``, and Python's ``json.loads`` with refcodec's former hooks. The first two must agree
exactly (the same value, types and member order, or both a ModelError of §2.7); ``json.loads`` must
give the same value for every text §2.7 accepts, and may accept a text §2.7 rejects only for the
reasons §2.7 names (a fraction or exponent, an integer beyond s64, nesting deeper than 64). The
parse must stay linear: inputs are at most libFuzzer's -max_len, and -timeout catches a slow one.

    python fuzz/fuzz_json.py -dict=fuzz/refcodec.dict CORPUS_DIR [libFuzzer flags]
"""

from __future__ import annotations

import json
import sys

import fuzzlib

with fuzzlib.instrumented(__name__ == "__main__"):
    from refcodec.decoder.errors import ModelError
    from refcodec.decoder.json_text import MAX_JSON_DEPTH, parse_json

S64_MIN, S64_MAX = -(1 << 63), (1 << 63) - 1
ERROR = object()  # the outcome "rejected"


class Rejected(ValueError):
    pass


def _no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise Rejected("duplicate name")
    return dict(pairs)


def _no_constants(name):
    raise Rejected(f"{name} is not JSON")


def spec_parse(data: bytes):
    ns = fuzzlib.spec_namespace()
    try:
        return ns["ParseJson"](data)
    except ns["ConformanceError"] as e:
        if (e.error_class, e.clause) != ("ModelError", "2.7"):
            raise fuzzlib.Finding(f"the spec's ParseJson raised {e.error_class} of §{e.clause}") from None
        return ERROR
    except RecursionError:  # the pseudocode recurses per level like the reference; depth is checked first
        raise fuzzlib.Finding("the spec's ParseJson recursed too deep") from None


def ref_parse(data: bytes):
    try:
        return parse_json(data)
    except ModelError as e:
        if e.clause != "2.7" or not e.message:
            raise fuzzlib.Finding(f"parse_json raised a ModelError of §{e.clause}: {e}") from None
        return ERROR


def python_parse(data: bytes):
    try:
        return json.loads(bytes(data).decode("utf-8"), object_pairs_hook=_no_duplicates,
                          parse_constant=_no_constants)
    except (ValueError, RecursionError):
        return ERROR


def same(a, b) -> bool:
    """Equal values of the same types, members in the same order (True is not 1)."""
    if a is ERROR or b is ERROR:
        return a is b
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def outside_subset(v, depth: int = 0) -> bool:
    """Whether a value json.loads returned holds what §2.7 excludes."""
    if type(v) is float:
        return True
    if type(v) is int:
        return not S64_MIN <= v <= S64_MAX
    if isinstance(v, (dict, list)):
        if depth + 1 > MAX_JSON_DEPTH:
            return True
        return any(outside_subset(x, depth + 1) for x in (v.values() if isinstance(v, dict) else v))
    return False


def test_one_input(data: bytes) -> None:
    data = bytes(data)
    got = ref_parse(data)
    expected = spec_parse(data)
    if not same(got, expected):
        raise fuzzlib.Finding(f"parse_json and the spec's ParseJson disagree on {data[:80]!r}")
    python = python_parse(data)
    if expected is not ERROR and not same(python, expected):
        raise fuzzlib.Finding(f"json.loads reads a §2.7 text differently: {data[:80]!r}")
    if expected is ERROR and python is not ERROR and not outside_subset(python):
        raise fuzzlib.Finding(f"json.loads accepts a text §2.7 rejects for no listed reason: {data[:80]!r}")


if __name__ == "__main__":
    fuzzlib.main(test_one_input, seeds="json")
    sys.exit(0)
