"""Whether a JSON text nests too deeply, found without parsing it and without recursion.

Parsers recurse per level of nesting: orjson refuses texts deeper than 1024 levels and cannot
write values deeper than 254, the standard library's parser raises ``RecursionError`` near
1000. Request bodies and cursors are checked against ``MAX_JSON_DEPTH`` before any parser sees
them, so a body such as ``[[[[…`` is a 400 whichever parser would have read it, and whatever is
stored can be written back out (http-api.md §1.3, defined here). No request of the API nests
beyond a handful of levels; only a recv's free-form ``data`` can, and 64 levels is far beyond
what a transport needs.
"""

from __future__ import annotations

import re

MAX_JSON_DEPTH = 64

# A JSON string, escapes included; the unrolled form keeps the regex engine in tight loops.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
# Objects and arrays alike: { and } become [ and ], every other byte goes.
_BRACKETS_ONLY = bytes.maketrans(b"{}", b"[]")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def _balanced(depth: int) -> re.Pattern[bytes]:
    """Sequences of bracket pairs nested at most ``depth`` levels: a regular language for a
    fixed depth. Possessive repeats never backtrack, so matching is one pass, in C."""
    pattern = ""
    for _ in range(depth):
        pattern = rf"(?:\[{pattern}\])*+"
    return re.compile(pattern.encode())


_WITHIN_LIMIT = _balanced(MAX_JSON_DEPTH)


def fits_nesting_limit(text: bytes) -> bool:
    """True when ``text`` nests arrays and objects at most ``MAX_JSON_DEPTH`` levels deep.

    Exact for valid JSON (brackets inside strings do not count). Texts whose brackets do not
    balance are not JSON; those with more than ``MAX_JSON_DEPTH`` brackets are refused here too.
    Cheap for ordinary texts: one with at most ``MAX_JSON_DEPTH`` opening brackets cannot nest
    deeper, and counting them is a scan in C; only the others are matched, still in C (about
    50 ms per MB of brackets, less for texts made mostly of strings).
    """
    if text.count(b"[") + text.count(b"{") <= MAX_JSON_DEPTH:
        return True
    brackets = _STRING.sub(b"", text).translate(_BRACKETS_ONLY, _NOT_BRACKETS)
    return _WITHIN_LIMIT.fullmatch(brackets) is not None
