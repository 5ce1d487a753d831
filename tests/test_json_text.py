"""Spec §2.7 JSON text: refcodec.decoder.json_text against the spec's pseudocode and Python's json.

Three parsers are compared on the same bytes:

- ``ParseJson`` of the spec (executed from spec/02-conventions.md),
- :func:`refcodec.decoder.json_text.parse_json`, the reference implementation,
- ``json.loads`` of the UTF-8-decoded text with hooks that reject duplicate names and
  ``NaN``/``Infinity`` (as refcodec.decoder.model has used them), which §2.7 says accepts the same
  texts except numbers with a fraction or an exponent, integers beyond s64 and nesting deeper
  than 64.

The first two must agree exactly (value, or a ModelError of §2.7); the third must agree on every
text the spec accepts, and may accept more only for the three reasons §2.7 lists.
"""

import json
import sys
import time
from itertools import pairwise
from pathlib import Path

import pytest
from conftest import spec_namespace
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from refcodec.decoder import json_text
from refcodec.decoder.errors import ModelError
from refcodec.decoder.json_text import MAX_JSON_DEPTH, parse_json

ROOT = Path(__file__).resolve().parent.parent
S64_MIN, S64_MAX = -(1 << 63), (1 << 63) - 1
ERROR = object()  # the outcome "rejected"
SLOW = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# -- the three parsers --------------------------------------------------------------------------

def spec_parse(data: bytes):
    """The value ParseJson of the spec returns, or ERROR for a ModelError of §2.7."""
    ns = spec_namespace()
    try:
        return ns["ParseJson"](data)
    except ns["ConformanceError"] as e:
        assert (e.error_class, e.clause) == ("ModelError", "2.7"), e
        return ERROR


def ref_parse(data: bytes):
    """The value parse_json returns, or ERROR for a ModelError of §2.7 (anything else fails the test)."""
    try:
        return parse_json(data)
    except ModelError as e:
        assert e.clause == "2.7" and e.message, e
        return ERROR


class Rejected(ValueError):
    pass


def _no_duplicates(pairs):  # the object_pairs_hook of refcodec.decoder.model
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise Rejected("duplicate name")
    return dict(pairs)


def _no_constants(name):  # the parse_constant hook of refcodec.decoder.model
    raise Rejected(f"{name} is not JSON")


def python_parse(data: bytes):
    """json.loads of the UTF-8 text with refcodec's hooks, or ERROR."""
    try:
        return json.loads(bytes(data).decode("utf-8"), object_pairs_hook=_no_duplicates,
                          parse_constant=_no_constants)
    except (ValueError, RecursionError):  # UnicodeDecodeError, JSONDecodeError, Rejected
        return ERROR


def same(a, b) -> bool:
    """Equal values of the same types, members in the same order (True is not 1, 0 is not False)."""
    if a is ERROR or b is ERROR:
        return a is b
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def outside_subset(v, depth: int = 0) -> bool:
    """Whether a value json.loads returned holds what §2.7 excludes: a float, an integer beyond s64,
    or an object or array deeper than MAX_JSON_DEPTH."""
    if type(v) is float:
        return True
    if type(v) is int:
        return not S64_MIN <= v <= S64_MAX
    if isinstance(v, (dict, list)):
        if depth + 1 > MAX_JSON_DEPTH:
            return True
        return any(outside_subset(x, depth + 1) for x in (v.values() if isinstance(v, dict) else v))
    return False


def check(data: bytes):
    """The three parsers on ``data``: spec and reference identical; json.loads as §2.7 says. Returns the outcome."""
    expected = spec_parse(data)
    got = ref_parse(data)
    assert same(got, expected), (data[:200], got, expected)
    python = python_parse(data)
    if expected is not ERROR:
        assert not has_split_pair(got), "a high surrogate escape followed by a low one is always joined"
        assert same(python, expected), (data[:200], python, expected)
    elif python is not ERROR:
        assert outside_subset(python), ("json.loads accepts a text §2.7 rejects", data[:200])
    return got


# -- strategies ---------------------------------------------------------------------------------

SURROGATES = st.integers(0xD800, 0xDFFF).map(chr)
CHARS = st.one_of(st.characters(), SURROGATES, st.sampled_from('"\\/\x00\x1f\x7f\ufeff\U0001F600\u00e9'))
TEXTS = st.text(CHARS, max_size=12)
NAMES = st.sampled_from(["a", "A", "ab", "", "\ud800", "\udbff", "\udc00", "\ud83d", "\ude00", "\U0001F600",
                         "x\ud800", "x\udbff", "\ufeff", "\x00"]) | TEXTS
S64 = st.integers(S64_MIN, S64_MAX)
LEAVES = st.one_of(st.none(), st.booleans(), S64, st.sampled_from([0, -1, S64_MIN, S64_MAX, 1 << 28]), TEXTS)
VALUES = st.recursive(LEAVES, lambda children: st.lists(children, max_size=5)
                      | st.dictionaries(NAMES, children, max_size=5), max_leaves=30)
# values json.loads accepts but §2.7 does not
WIDE_VALUES = st.recursive(LEAVES | st.floats() | st.integers() | st.integers(S64_MAX, S64_MAX + 2)
                           | st.integers(S64_MIN - 2, S64_MIN),
                           lambda children: st.lists(children, max_size=4)
                           | st.dictionaries(NAMES, children, max_size=4), max_leaves=20)
SPACE = st.sampled_from(["", "", " ", "\n", "\t", "\r\n  ", "    "])


@st.composite
def dumped(draw, values=VALUES):
    """A document written by json.dumps: ASCII-only or not, compact or indented, UTF-8 bytes
    (an unpaired surrogate written raw is encoded as UTF-8 would encode it: ED A0 80 ...)."""
    value = draw(values)
    text = json.dumps(value, ensure_ascii=draw(st.booleans()), indent=draw(st.sampled_from([None, 0, 1, "\t"])),
                      separators=draw(st.sampled_from([None, (",", ":"), (" , ", " : ")])))
    return (draw(SPACE) + text + draw(SPACE)).encode("utf-8", "surrogatepass")


@st.composite
def spelled_string(draw, names=TEXTS):
    """A JSON string literal of a drawn string, each code point spelled one of the ways §2.7 allows
    (raw, short escape, \\u escape in either case, a supplementary code point as a surrogate pair)."""
    out = ['"']
    for ch in draw(names):
        o = ord(ch)
        hex4 = draw(st.sampled_from(["\\u{:04x}", "\\u{:04X}"]))
        choice = draw(st.integers(0, 2))
        if ch in '"\\/\b\f\n\r\t' and choice == 0:
            out.append("\\" + {'"': '"', "\\": "\\", "/": "/", "\b": "b", "\f": "f", "\n": "n", "\r": "r",
                               "\t": "t"}[ch])
        elif o > 0xFFFF and choice != 2:
            v = o - 0x10000
            out.append(hex4.format(0xD800 + (v >> 10)) + hex4.format(0xDC00 + (v & 0x3FF)))
        elif o < 0x20 or ch in '"\\' or 0xD800 <= o <= 0xDFFF or choice == 1:
            out.append(hex4.format(o))
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _spelled_containers(children):
    """Arrays and objects of spelled texts, with whitespace around every token; names drawn from a
    small pool so that equal names (spelled alike or not) are frequent."""
    array = st.lists(st.tuples(SPACE, children, SPACE), max_size=5).map(
        lambda items: "[" + ",".join(a + x + b for a, x, b in items) + "]")
    obj = st.lists(st.tuples(SPACE, spelled_string(NAMES), SPACE, SPACE, children, SPACE), max_size=5).map(
        lambda members: "{" + ",".join("".join(m[:3]) + ":" + "".join(m[3:]) for m in members) + "}")
    return array | obj


INTEGER_SPELLINGS = S64.map(str) | st.sampled_from(["-0", "0", str(S64_MIN), str(S64_MAX)])
SPELLED = st.recursive(
    st.one_of(st.sampled_from(["true", "false", "null"]), INTEGER_SPELLINGS, spelled_string()),
    _spelled_containers, max_leaves=25)

PIECES = [b"[", b"]", b"{", b"}", b",", b":", b'"', b"\\", b"u", b"0", b"1", b"9", b"-", b".", b"e", b"E", b"+",
          b" ", b"\t", b"\n", b"\x00", b"\x1f", b"\x7f", b"\xed\xa0\x80", b"\xed\xbf\xbf", b"\xc0\x80",
          b"\xe0\x80\x80", b"\xef\xbb\xbf", b"\xf4\x90\x80\x80", b"\xe2\x82", b"\xff", b"\x80", b"NaN",
          b"Infinity", b"true", b"nul", b"\\ud800", b"\\udc00", b"\\uD83D\\uDE00", b"\\u00", b"\\x", b"/*", b"//",
          b"a", b"\xf0\x9f\x98\x80", b"\xc3\xa9", b"00", b"9223372036854775808", b"-9223372036854775808"]


@st.composite
def mutated(draw, documents):
    """A document with a few pieces inserted, replaced or deleted."""
    data = bytearray(draw(documents))
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(data)))
        kind = draw(st.integers(0, 2))
        if kind == 0:
            data[i:i] = draw(st.sampled_from(PIECES))
        elif kind == 1:
            data[i:i + draw(st.integers(1, 3))] = draw(st.sampled_from(PIECES))
        else:
            del data[i:i + draw(st.integers(1, 3))]
    return bytes(data)


SPELLED_BYTES = st.tuples(SPACE, SPELLED, SPACE).map(lambda t: "".join(t).encode("utf-8"))


# -- hypothesis: spec == reference, json.loads as documented ------------------------------------

@SLOW
@given(dumped())
def test_dumped_documents(data):
    check(data)


@SLOW
@given(dumped(WIDE_VALUES))
def test_dumped_documents_beyond_the_subset(data):
    """Floats, NaN, Infinity and integers beyond s64 as json.dumps writes them: json.loads differs as §2.7 says."""
    check(data)


def has_split_pair(v) -> bool:
    """Whether a string in ``v`` holds a high surrogate followed by a low one as two code points. JSON
    cannot write that: json.dumps writes \\ud800\\udc00, which §2.7 (as RFC 8259) reads as U+10000."""
    if isinstance(v, str):
        return any("\ud800" <= a <= "\udbff" and "\udc00" <= b <= "\udfff" for a, b in pairwise(v))
    if isinstance(v, dict):
        return any(has_split_pair(k) or has_split_pair(x) for k, x in v.items())
    return isinstance(v, list) and any(has_split_pair(x) for x in v)


@SLOW
@given(st.one_of(VALUES, TEXTS))
def test_valid_documents_agree_with_json_loads(value):
    """A value written by json.dumps either way (ASCII or UTF-8) reads back as itself, alike in all three."""
    assume(not has_split_pair(value))
    for ensure_ascii in (True, False):
        text = json.dumps(value, ensure_ascii=ensure_ascii)
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError:  # a raw unpaired surrogate: not UTF-8, covered by test_dumped_documents
            continue
        assert same(check(data), value)


@SLOW
@given(SPELLED_BYTES)
def test_spelled_documents(data):
    """Texts built token by token: escapes of every kind, surrogate pairs, equal names spelled differently."""
    check(data)


@SLOW
@given(mutated(SPELLED_BYTES | dumped()))
def test_mutated_documents(data):
    check(data)


@SLOW
@given(st.lists(st.sampled_from(PIECES), max_size=12).map(b"".join) | st.binary(max_size=24))
def test_token_soup(data):
    check(data)


# -- hand-written edge cases --------------------------------------------------------------------

def nested(depth: int, kind: str = "[") -> bytes:
    """A text of the given depth: arrays, objects, or arrays and objects in turn ("mixed")."""
    if kind == "[":
        return b"[" * depth + b"]" * depth
    if kind == "{":
        return b'{"a":' * (depth - 1) + b"{}" + b"}" * (depth - 1)
    return b'[{"a":' * (depth // 2) + (b"[]" if depth % 2 else b"0") + b"}]" * (depth // 2)


EDGES = [
    # names: equal after unescaping is a duplicate, at any depth
    (b'{"name":1,"n\\u0061me":2}', ERROR),
    (b'{"A":1,"\\u0041":2}', ERROR),
    (b'{"\\uD800":1,"\\ud800":2}', ERROR),
    (b'{"\xf0\x9f\x98\x80":1,"\\ud83d\\ude00":2}', ERROR),
    (b'{"\\ud800":1,"\\udc00":2}', {"\ud800": 1, "\udc00": 2}),  # noqa: F601 (ruff takes surrogates for equal)
    (b'{"x\\ud800":1,"x\\udbff":2}', {"x\ud800": 1, "x\udbff": 2}),  # noqa: F601
    (b'{"a":{"b":1,"b":2}}', ERROR),
    (b'[{"a":[{"c":1,"c":1}]}]', ERROR),
    (b'{"a":1,"A":2,"a ":3}', {"a": 1, "A": 2, "a ": 3}),
    (b'{"__metadata__":{"k":"v","k":"v"}}', ERROR),
    # strings and surrogates
    (b'"\\ud83d\\ude00"', "\U0001F600"),
    (b'"\\uD83D\\uDE00"', "\U0001F600"),
    (b'"\\ud83d"', "\ud83d"),
    (b'"\\ude00\\ud83d"', "\ude00\ud83d"),
    (b'"\\ud83d\\ud83d\\ude00"', "\ud83d\U0001F600"),
    (b'"\\ud83d\\u0041"', "\ud83dA"),
    (b'"\\ud83dx\\ude00"', "\ud83dx\ude00"),
    (b'"\\ud83d\\n"', "\ud83d\n"),
    (b'"\\ud83d\\uZZZZ"', ERROR),
    (b'"\\ud83d\\ude0"', ERROR),
    (b'"\\u0000"', "\x00"),
    (b'"\\"\\\\\\/\\b\\f\\n\\r\\t"', '"\\/\b\f\n\r\t'),
    (b'"\\u00e9\\u00E9\xc3\xa9"', "\u00e9" * 3),
    (b'"\x7f"', "\x7f"),
    (b'"\xef\xbb\xbf"', "\ufeff"),
    (b'"\ta"', ERROR),
    (b'"\x00"', ERROR),
    (b'"\x1f"', ERROR),
    (b'"\n"', ERROR),
    (b'"\\x"', ERROR),
    (b'"\\U0041"', ERROR),
    (b'"\\u004"', ERROR),
    (b'"\\u+041"', ERROR),
    (b'"\\u 041"', ERROR),
    (b"'a'", ERROR),
    (b'"abc', ERROR),
    (b'"\\', ERROR),
    # encoding
    (b'\xef\xbb\xbf{}', ERROR),
    (b'\xef\xbb\xbf', ERROR),
    (b'{}\xef\xbb\xbf', ERROR),
    (b'[\xef\xbb\xbf1]', ERROR),
    (b'"\xed\xa0\x80"', ERROR),
    (b'"\xed\xbf\xbf"', ERROR),
    (b'"\xed\xa0\xbd\xed\xb8\x80"', ERROR),  # the pair of U+1F600 encoded surrogate by surrogate (CESU-8)
    (b'"\xc0\xaf"', ERROR),
    (b'"\xc1\xbf"', ERROR),
    (b'"\xe0\x80\xaf"', ERROR),
    (b'"\xf0\x80\x80\xaf"', ERROR),
    (b'"\xf4\x90\x80\x80"', ERROR),
    (b'"\xf8\x88\x80\x80\x80"', ERROR),
    (b'"\xe2\x82"', ERROR),
    (b'"\xf4\x8f\xbf\xbf"', "\U0010FFFF"),
    (b'\xff', ERROR),
    (b'\x00', ERROR),
    # integers
    (b"-0", 0),
    (b"[-0]", [0]),
    (b"0", 0),
    (b"02", ERROR),
    (b"-02", ERROR),
    (b"00", ERROR),
    (b"+1", ERROR),
    (b"-", ERROR),
    (b"- 1", ERROR),
    (b"1 2", ERROR),
    (b"2.0", ERROR),
    (b"2.5", ERROR),
    (b"2e0", ERROR),
    (b"2E+0", ERROR),
    (b"2e-1", ERROR),
    (b"-0.0", ERROR),
    (b"1.", ERROR),
    (b".5", ERROR),
    (b"0x10", ERROR),
    (b"\xd9\xa1", ERROR),  # ARABIC-INDIC DIGIT ONE
    (b"\xef\xbc\x91", ERROR),  # FULLWIDTH DIGIT ONE
    (b"9223372036854775807", S64_MAX),
    (b"-9223372036854775808", S64_MIN),
    (b"9223372036854775808", ERROR),
    (b"-9223372036854775809", ERROR),
    (b"18446744073709551616", ERROR),
    (b"1" * 5000, ERROR),
    (b"[" + b"1" * 30 + b"]", ERROR),
    # words
    (b"NaN", ERROR),
    (b"[NaN]", ERROR),
    (b"Infinity", ERROR),
    (b"-Infinity", ERROR),
    (b'{"a":-Infinity}', ERROR),
    (b"nan", ERROR),
    (b"True", ERROR),
    (b"TRUE", ERROR),
    (b"true", True),
    (b"false", False),
    (b"null", None),
    (b"[true,false,null]", [True, False, None]),
    (b"truex", ERROR),
    (b"tru", ERROR),
    (b"nul", ERROR),
    # structure
    (b"", ERROR),
    (b" \t\r\n", ERROR),
    (b' \t\r\n{ "a" : [ 1 , 2 ] } \t\r\n', {"a": [1, 2]}),
    (b"\x0c{}", ERROR),  # form feed is not whitespace
    (b"\xc2\xa0{}", ERROR),  # nor is NO-BREAK SPACE
    (b"[1,]", ERROR),
    (b"[,1]", ERROR),
    (b"[1,,2]", ERROR),
    (b'{"a":1,}', ERROR),
    (b'{,"a":1}', ERROR),
    (b'{"a"}', ERROR),
    (b'{"a":}', ERROR),
    (b'{"a" 1}', ERROR),
    (b"{1:2}", ERROR),
    (b"{a:1}", ERROR),
    (b'{"a":1 "b":2}', ERROR),
    (b"[1 2]", ERROR),
    (b"[1}", ERROR),
    (b'{"a":1]', ERROR),
    (b"[", ERROR),
    (b"]", ERROR),
    (b"{}}", ERROR),
    (b"{} {}", ERROR),
    (b"[] // comment", ERROR),
    (b"/* c */ []", ERROR),
    (b"[]", []),
    (b"{}", {}),
    (b'"a"', "a"),
    (b"[[],{},[[]]]", [[], {}, [[]]]),
    # depth
    (nested(MAX_JSON_DEPTH), ...),
    (nested(MAX_JSON_DEPTH + 1), ERROR),
    (nested(MAX_JSON_DEPTH, "{"), ...),
    (nested(MAX_JSON_DEPTH + 1, "{"), ERROR),
    (nested(MAX_JSON_DEPTH, "mixed"), ...),
    (nested(MAX_JSON_DEPTH + 1, "mixed"), ERROR),
    (b"[" * 100000, ERROR),
    (b"[" * 100000 + b"]" * 100000, ERROR),
    (b'{"a":' * 100000, ERROR),
    (b"[" * 64 + b"1" + b"]" * 64, ...),
    (b"[" * 63 + b'"' + b"[" * 1000 + b'"' + b"]" * 63, ...),  # brackets inside a string are not nesting
]


@pytest.mark.parametrize("data, expected", EDGES, ids=[repr(d[:24]) + f"/{len(d)}" for d, _ in EDGES])
def test_edge_cases(data, expected):
    got = check(data)
    if expected is not ...:
        assert same(got, expected), (got, expected)
    else:
        assert got is not ERROR


def test_json_loads_accepts_what_the_subset_does_not():
    """The differences §2.7 names: json.loads takes these, ParseJson and parse_json do not."""
    for data in (b"2.5", b"2e0", b"1E400", b"9223372036854775808", b"-9223372036854775809", b"1" * 4000,
                 nested(MAX_JSON_DEPTH + 1), nested(200, "{")):
        assert python_parse(data) is not ERROR
        assert spec_parse(data) is ERROR and ref_parse(data) is ERROR


def test_json_loads_of_bytes_is_not_the_subset():
    """json.loads given bytes (not the UTF-8-decoded text) guesses the encoding and decodes with
    'surrogatepass': it takes a byte-order mark, encoded surrogates and UTF-16/32, which §2.7 rejects."""
    for data in (b'\xef\xbb\xbf{"a":1}', b'"\xed\xa0\x80"', '{"a":1}'.encode("utf-16"), '[1]'.encode("utf-32-le")):
        assert json.loads(data) is not None
        assert python_parse(data) is ERROR and spec_parse(data) is ERROR and ref_parse(data) is ERROR


def test_depth_limit_before_recursion_limit():
    """Depth 64 needs far fewer Python frames than the recursion limit; depth 65 is refused at its bracket."""
    depth = len_stack()
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(depth + 2 * MAX_JSON_DEPTH + 20)  # parse_json needs two frames per level
    try:
        assert parse_json(nested(MAX_JSON_DEPTH, "mixed")) is not None
        with pytest.raises(ModelError, match="deeper than 64"):
            parse_json(nested(MAX_JSON_DEPTH + 1, "mixed"))
    finally:
        sys.setrecursionlimit(old)


def len_stack() -> int:
    frame, n = sys._getframe(), 0
    while frame is not None:
        frame, n = frame.f_back, n + 1
    return n


def test_a_megabyte_of_brackets_is_refused_at_once():
    for data in (b"[" * (1 << 20), b"{" * (1 << 20), b'{"":' * (1 << 18), b"[{" * (1 << 19)):
        start = time.perf_counter()
        with pytest.raises(ModelError) as info:
            parse_json(data)
        assert time.perf_counter() - start < 1
        assert info.value.clause == "2.7"


@pytest.mark.parametrize("kind", ["string", "escapes", "pairs", "integers", "names", "spaces", "digits"])
def test_a_megabyte_header_takes_linear_time(kind):
    """2^20 bytes of the costliest kinds of text: linear time (a quadratic parser needs minutes here)."""
    n = 1 << 20
    data = {
        "string": lambda: b'"' + b"a" * (n - 2) + b'"',
        "escapes": lambda: b'"' + b"\\u0041" * ((n - 2) // 6) + b'"',
        "pairs": lambda: b'"' + b"\\ud83d\\ude00" * ((n - 2) // 12) + b'"',
        "integers": lambda: b"[" + b",".join([b"0"] * (n // 2 - 1)) + b"]",
        "names": lambda: b"{" + b",".join(b'"%d":0' % i for i in range(n // 12)) + b"}",
        "spaces": lambda: b" " * (n - 2) + b"{}",
        "digits": lambda: b"1" * n,
    }[kind]()
    assert len(data) <= n
    start = time.perf_counter()
    ref_parse(data)
    assert time.perf_counter() - start < 20


def test_error_messages_say_what_is_wrong():
    cases = [
        (b'{"name":1,"n\\u0061me":2}', "duplicate name 'name' in model header"),
        (nested(65), "model header is nested deeper than 64 levels"),
        (b"[2.5]", "number 2.5 at byte 1 of the model header has a fraction or an exponent part: only integers"),
        (b"[1e9]", "number 1e9"),
        (b"9223372036854775808", "is outside -2^63 .. 2^63 - 1"),
        (b"[01]", "leading zero"),
        (b"NaN", "NaN"),
        (b"[-Infinity]", "-Infinity"),
        (b"\xef\xbb\xbf{}", "byte-order mark"),
        (b'"a\tb"', "raw control character U+0009"),
        (b'"\\q"', "invalid escape '\\\\q'"),
        (b'"\\u12x4"', "invalid \\u escape"),
        (b'"\xed\xa0\x80"', "encoded surrogate"),
        (b'"\xc0\xaf"', "overlong"),
        (b'"\xf4\x90\x80\x80"', "above U+10FFFF"),
        (b'"\xe2\x82', "cut short"),
        (b"[1,]", "comma before ']'"),
        (b'{"a":1,}', "comma before '}'"),
        (b"{1:1}", "member name"),
        (b"{} x", "data after the JSON value"),
        (b"[\xef\xbb\xbf]", "U+FEFF"),
        (b'"abc', "ends inside the string"),
        (b"", "ends before"),
        (b'{"' + b"n" * 100 + b'":1,"' + b"n" * 100 + b'":2}', "duplicate name 'nnnnnnnnnn"),
    ]
    for data, words in cases:
        with pytest.raises(ModelError) as info:
            parse_json(data)
        assert words in info.value.message, (data, info.value.message)
        assert str(info.value).endswith("(spec §2.7)")


def test_accepts_bytes_like_data():
    for data in (b'{"a":[1]}', bytearray(b'{"a":[1]}'), memoryview(b'xx{"a":[1]}')[2:]):
        assert parse_json(data) == {"a": [1]}


def test_one_function_per_procedure():
    """json_text has exactly the ten procedures of §2.7, each marked with its clause, and the constants agree."""
    ns = spec_namespace()
    marked = {name: fn for name, fn in vars(json_text).items() if callable(fn) and hasattr(fn, "spec_clause")}
    camel = {"".join(w.capitalize() for w in name.split("_")): fn for name, fn in marked.items()}
    procedures = {"JsonRequire", "JsonNext", "JsonSkipSpace", "JsonHex4", "JsonString", "JsonInteger",
                  "JsonValue", "JsonObject", "JsonArray", "ParseJson"}
    assert set(camel) == procedures
    assert all(fn.spec_clause == "2.7" for fn in marked.values())
    assert all(callable(ns[name]) for name in procedures)
    assert json_text.MAX_JSON_DEPTH == ns["MAX_JSON_DEPTH"] == 64
    assert ns["JSON_ESCAPES"] == json_text.JSON_ESCAPES and ns["JSON_HEX"] == json_text.JSON_HEX
    assert ns["JSON_WORDS"] == json_text.JSON_WORDS and ns["JSON_SPACE"] == json_text.JSON_SPACE


def test_no_numpy():
    source = Path(json_text.__file__).read_text(encoding="utf-8")
    assert "numpy" not in source


# -- shipped model headers ----------------------------------------------------------------------

MODEL_FILES = sorted((ROOT / "refcodec" / "models").glob("*.safetensors")) + sorted(
    (ROOT / "vectors" / "models").glob("*.safetensors"))


def header_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    n = int.from_bytes(data[:8], "little")
    return data[8:8 + n]


@pytest.mark.parametrize("path", MODEL_FILES, ids=[p.parent.parent.name + "/" + p.name[:16] for p in MODEL_FILES])
def test_shipped_model_headers(path):
    """Every shipped header parses to what json.loads gives (a few negative vectors break the JSON on
    purpose: all three parsers reject those)."""
    header = header_bytes(path)
    got = check(header)
    if path.parent.parent.name == "refcodec":
        assert isinstance(got, dict) and len(got) > 1
    if got is not ERROR:
        assert same(got, json.loads(header.decode("utf-8")))


def test_shipped_model_headers_mostly_valid():
    """Every shipped model's header is valid; of the vectors' models, only negative vectors' break JSON."""
    outcomes = {p: ref_parse(header_bytes(p)) for p in MODEL_FILES}
    assert all(o is not ERROR for p, o in outcomes.items() if p.parent.parent.name == "refcodec")
    assert sum(o is not ERROR for o in outcomes.values()) > len(outcomes) // 2
