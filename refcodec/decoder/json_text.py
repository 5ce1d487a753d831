"""JSON text (spec §2.7): the subset of JSON a model header is written in, and what it means.

:func:`parse_json` is ``ParseJson``: it decodes the header bytes as strict UTF-8 and reads one
``json-text`` of the grammar of §2.7 (objects, arrays, strings, integers in ``s64``, ``true``,
``false``, ``null``; no fraction, exponent, ``NaN`` or ``Infinity``; no byte-order mark; no
duplicate member names; depth at most ``MAX_JSON_DEPTH``). Every violation is a ModelError
citing §2.7. There is one function per procedure of the spec, named after it (``JsonString`` is
:func:`json_string`), and the parser's state ``p`` is a :class:`JsonText` with ``text`` and
``pos``, as the pseudocode's ``p["text"]`` and ``p["pos"]``.

Plain Python. Two things differ from the pseudocode in how, never in what: runs of
whitespace and of unescaped string characters are found with one regular expression each
instead of one code point at a time, and a string is built from a list of pieces joined at
its end, so a header of 2^20 bytes costs linear time. Recursion is two frames per level of
nesting and the depth limit is checked at the opening bracket, so no text, however deeply
nested, gets near Python's recursion limit.
"""

from __future__ import annotations

import re

from refcodec.decoder.conventions import clause
from refcodec.decoder.errors import ModelError

CLAUSE = "2.7"
MAX_JSON_DEPTH = 64  # spec §2.7: an object or array nested deeper is an error
JSON_INTEGER_MIN = -(1 << 63)  # spec §2.7: every integer fits s64
JSON_INTEGER_MAX = (1 << 63) - 1
JSON_SPACE = (" ", "\t", "\n", "\r")  # ws of the grammar; U+FEFF is not one of them
JSON_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
JSON_HEX = {c: v for digits in ("0123456789abcdef", "0123456789ABCDEF") for v, c in enumerate(digits)}
JSON_WORDS = (("true", True), ("false", False), ("null", None))
NOT_JSON_WORDS = ("NaN", "Infinity")  # RFC 8259 has no such values either; named in the error message

_SPACE_RUN = re.compile(r"[ \t\n\r]*")  # the longest run of JSON_SPACE
_UNESCAPED_RUN = re.compile(r'[^"\\\x00-\x1f]*')  # the longest run of the grammar's `unescaped`
_NUMBER_LIKE = re.compile(r"-?[0-9]*(?:\.[0-9]*)?(?:[eE][+-]?[0-9]*)?")  # only to quote a rejected number
_QUOTE_LIMIT = 40  # longest piece of the text an error message quotes


class JsonText:
    """The parser's state ``p`` of spec §2.7: the decoded text and the position of the next code point."""

    __slots__ = ("pos", "text")

    def __init__(self, text: str, pos: int = 0):
        self.text = text
        self.pos = pos


def _quote(s: str) -> str:
    """``s`` as an error message shows it: Python's repr, cut after _QUOTE_LIMIT code points."""
    if len(s) > _QUOTE_LIMIT:
        return repr(s[:_QUOTE_LIMIT]) + "..."
    return repr(s)


def _char(c: str) -> str:
    """A code point as an error message shows it: 'x' if printable ASCII, else U+XXXX."""
    return repr(c) if " " < c <= "~" else f"U+{ord(c):04X}"


def _run_end(pattern: re.Pattern, text: str, pos: int) -> int:
    """The end of the run of ``pattern`` (which may be empty, so it always matches) at ``pos``."""
    match = pattern.match(text, pos)
    return pos if match is None else match.end()


def _byte(p: JsonText, pos: int | None = None) -> int:
    """The byte offset in the header of the code point at ``pos`` (default: p.pos), for an error message."""
    return len(p.text[:p.pos if pos is None else pos].encode("utf-8"))


def _at(p: JsonText, pos: int | None = None) -> str:
    """Where in the header ``pos`` (default: p.pos) is, as an error message says it."""
    return f"at byte {_byte(p, pos)} of the model header"


def _utf8_problem(data: bytes, e: UnicodeDecodeError) -> str:
    """What is wrong with the UTF-8 at e.start, in the terms of spec §2.7 (an error message)."""
    lead, follow = data[e.start], data[e.start + 1:e.start + 2]
    if lead in (0xC0, 0xC1) or (lead == 0xE0 and follow and follow[0] < 0xA0) or (lead == 0xF0 and follow
                                                                                   and follow[0] < 0x90):
        what = "an overlong form"
    elif lead == 0xED and follow and 0xA0 <= follow[0] <= 0xBF:
        what = "an encoded surrogate (U+D800 .. U+DFFF)"
    elif lead > 0xF4 or (lead == 0xF4 and follow and follow[0] >= 0x90):
        what = "a code point above U+10FFFF"
    elif lead < 0xC0:
        what = "a continuation byte without a lead byte"
    else:
        what = "a sequence cut short"
    return f"model header is not valid UTF-8: {what} at byte {e.start} (0x{lead:02X})"


@clause(CLAUSE)
def json_require(condition: bool, what: str) -> None:
    """JsonRequire (spec §2.7): a violated rule of §2.7 is a ModelError."""
    if not condition:
        raise ModelError(what, CLAUSE)


@clause(CLAUSE)
def json_next(p: JsonText) -> str:
    """JsonNext (spec §2.7): the code point at p.pos, which must exist; p.pos is not advanced."""
    json_require(p.pos < len(p.text), "model header ends before its JSON value is complete")
    return p.text[p.pos]


@clause(CLAUSE)
def json_skip_space(p: JsonText) -> None:
    """JsonSkipSpace (spec §2.7): advance p.pos past the longest run of ws (space, tab, LF, CR)."""
    p.pos = _run_end(_SPACE_RUN, p.text, p.pos)


@clause(CLAUSE)
def json_hex4(p: JsonText) -> int:
    """JsonHex4 (spec §2.7): the value of the four hex digits (either case) of a \\u escape at p.pos."""
    digits = p.text[p.pos:p.pos + 4]
    if not (len(digits) == 4 and all(c in JSON_HEX for c in digits)):
        json_require(False, f"invalid \\u escape {_quote(chr(92) + 'u' + digits)} {_at(p, p.pos - 2)}: "
                            "four hexadecimal digits must follow \\u")
    p.pos += 4
    u = 0
    for c in digits:
        u = (u << 4) | JSON_HEX[c]
    return u


@clause(CLAUSE)
def json_string(p: JsonText) -> str:
    """JsonString (spec §2.7): the string whose opening quotation mark is at p.pos, unescaped.

    A \\u escape of a high surrogate immediately followed by one of a low surrogate is the one
    supplementary code point of the pair; every other surrogate escape stands for itself, so the
    result may hold unpaired surrogates (and U+0000), as the spec requires.
    """
    text = p.text
    start = p.pos
    p.pos += 1  # the opening quotation mark
    pieces = []
    while True:
        run_end = _run_end(_UNESCAPED_RUN, text, p.pos)  # characters that stand for themselves
        pieces.append(text[p.pos:run_end])
        p.pos = run_end
        if p.pos == len(text):
            json_require(False, f"model header ends inside the string that begins {_at(p, start)}")
        c = json_next(p)
        p.pos += 1
        if c == '"':
            return "".join(pieces)
        if c != "\\":  # the run stops only at '"', '\\' or a control character
            json_require(False, f"raw control character {_char(c)} in a string {_at(p, p.pos - 1)}: "
                                "U+0000 .. U+001F must be written as escapes")
        e = json_next(p)
        p.pos += 1
        if e != "u":
            if e not in JSON_ESCAPES:
                json_require(False, f"invalid escape {_quote(chr(92) + e)} in a string {_at(p, p.pos - 2)}")
            pieces.append(JSON_ESCAPES[e])
            continue
        u = json_hex4(p)
        if 0xD800 <= u <= 0xDBFF and text.startswith("\\u", p.pos):
            after = p.pos
            p.pos += 2
            low = json_hex4(p)
            if 0xDC00 <= low <= 0xDFFF:
                u = 0x10000 + ((u - 0xD800) << 10) + (low - 0xDC00)
            else:
                p.pos = after  # not a pair: that escape is read on its own
        pieces.append(chr(u))


def _number_error(p: JsonText, start: int, what: str) -> None:
    number = p.text[start : _run_end(_NUMBER_LIKE, p.text, start)]
    json_require(False, f"number {number if len(number) <= _QUOTE_LIMIT else number[:_QUOTE_LIMIT] + '...'} "
                        f"{_at(p, start)} {what}")


@clause(CLAUSE)
def json_integer(p: JsonText) -> int:
    """JsonInteger (spec §2.7): the integer at p.pos ('-' or a digit), which must lie in s64.

    Digits are read one at a time and reading stops as soon as the value passes 2^63, so a
    run of a million digits costs no more than twenty.
    """
    text = p.text
    number_start = p.pos
    sign = 1
    if text[p.pos] == "-":
        sign = -1
        p.pos += 1
    start = p.pos
    value = 0
    while p.pos < len(text) and "0" <= text[p.pos] <= "9":
        if p.pos > start and text[start] == "0":
            _number_error(p, number_start, "has a leading zero")
        value = 10 * value + ord(text[p.pos]) - ord("0")
        if value > 1 << 63:
            _number_error(p, number_start, "is outside -2^63 .. 2^63 - 1")
        p.pos += 1
    if p.pos == start:
        word = "-Infinity" if text.startswith("Infinity", start) else None
        json_require(False, f"{word} {_at(p, number_start)}: only integers are allowed" if word
                     else f"'-' not followed by a digit {_at(p, number_start)}")
    if p.pos < len(text) and text[p.pos] in (".", "e", "E"):
        _number_error(p, number_start, "has a fraction or an exponent part: only integers are allowed")
    value = sign * value
    if value > JSON_INTEGER_MAX:
        _number_error(p, number_start, "is outside -2^63 .. 2^63 - 1")
    return value


@clause(CLAUSE)
def json_value(p: JsonText, depth: int):
    """JsonValue (spec §2.7): the value at p.pos inside ``depth`` levels of objects and arrays.

    The depth limit is checked at the opening bracket, before anything inside is read.
    """
    c = json_next(p)
    if c == "{" or c == "[":
        if depth + 1 > MAX_JSON_DEPTH:
            json_require(False, f"model header is nested deeper than {MAX_JSON_DEPTH} levels (byte {_byte(p)})")
        if c == "{":
            return json_object(p, depth + 1)
        return json_array(p, depth + 1)
    if c == '"':
        return json_string(p)
    if c == "-" or "0" <= c <= "9":
        return json_integer(p)
    for word, value in JSON_WORDS:
        if p.text.startswith(word, p.pos):
            p.pos += len(word)
            return value
    for word in NOT_JSON_WORDS:
        if p.text.startswith(word, p.pos):
            json_require(False, f"{word} {_at(p)}: only integers are allowed")
    json_require(False, f"a JSON value is expected {_at(p)}, not {_char(c)}")


@clause(CLAUSE)
def json_object(p: JsonText, depth: int) -> dict:
    """JsonObject (spec §2.7): the object at p.pos, of depth ``depth``; member names are unique.

    Names are compared as sequences of code points after unescaping (Python ``str`` equality):
    "A" and "\\u0041" are the same name, "\\ud800" and "\\udc00" are not.
    """
    p.pos += 1  # {
    members: dict = {}
    json_skip_space(p)
    if json_next(p) == "}":
        p.pos += 1
        return members
    while True:
        if json_next(p) != '"':
            if p.text[p.pos] == "}" and members:
                json_require(False, f"comma before '}}' {_at(p)}")
            json_require(False, f"object member name {_at(p)} is not a string (found {_char(p.text[p.pos])})")
        name_start = p.pos
        name = json_string(p)
        if name in members:
            json_require(False, f"duplicate name {_quote(name)} in model header (byte {_byte(p, name_start)})")
        json_skip_space(p)
        if json_next(p) != ":":
            json_require(False, f"':' expected after a member name {_at(p)}, not {_char(p.text[p.pos])}")
        p.pos += 1
        json_skip_space(p)
        members[name] = json_value(p, depth)
        json_skip_space(p)
        c = json_next(p)
        p.pos += 1
        if c == "}":
            return members
        if c != ",":
            json_require(False, f"',' or '}}' expected in an object {_at(p, p.pos - 1)}, not {_char(c)}")
        json_skip_space(p)


@clause(CLAUSE)
def json_array(p: JsonText, depth: int) -> list:
    """JsonArray (spec §2.7): the array at p.pos, of depth ``depth``."""
    p.pos += 1  # [
    elements: list = []
    json_skip_space(p)
    if json_next(p) == "]":
        p.pos += 1
        return elements
    while True:
        if elements and p.pos < len(p.text) and p.text[p.pos] == "]":
            json_require(False, f"comma before ']' {_at(p)}")
        elements.append(json_value(p, depth))
        json_skip_space(p)
        c = json_next(p)
        p.pos += 1
        if c == "]":
            return elements
        if c != ",":
            json_require(False, f"',' or ']' expected in an array {_at(p, p.pos - 1)}, not {_char(c)}")
        json_skip_space(p)


@clause(CLAUSE)
def parse_json(data: bytes):
    """ParseJson (spec §2.7): the value of the JSON text ``data`` (the bytes of a model header).

    dict (str names) for an object, list for an array, str for a string (unpaired surrogates
    kept), int for an integer, and True, False, None for the three words. Raises ModelError.
    """
    try:
        text = bytes(data).decode("utf-8")
    except UnicodeDecodeError as e:
        raise ModelError(_utf8_problem(bytes(data), e), CLAUSE) from None
    json_require(not text.startswith("\ufeff"), "model header begins with a byte-order mark (U+FEFF), "
                                                 "which this subset of JSON does not allow")
    p = JsonText(text)
    json_skip_space(p)
    value = json_value(p, 0)
    json_skip_space(p)
    if p.pos != len(text):
        json_require(False, f"data after the JSON value {_at(p)} ({_char(text[p.pos])})")
    return value
