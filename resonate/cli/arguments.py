"""Parsing of CLI argument values: durations, `k=v` pairs and value data (cli.md §2).

The parsers raise `ValueError` with a message for the user; `usage_error` turns that into the
Typer error that exits with code 2 and names the offending option.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import typer

_DURATION_UNITS_MS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_DURATION_PART = re.compile(r"(\d+)(ms|s|m|h|d)")
DURATION_EXAMPLES = "250ms, 30s, 1m, 1h, 1h30m"


def parse_duration(text: str) -> int:
    """Milliseconds in a duration such as `250ms`, `30s`, `1m`, `1h`, `1h30m` or `2d`."""
    stripped = text.strip()
    if not stripped:
        raise ValueError(f"empty duration (examples: {DURATION_EXAMPLES})")
    total = 0
    position = 0
    while position < len(stripped):
        part = _DURATION_PART.match(stripped, position)
        if part is None:
            raise ValueError(f"invalid duration {text!r} (examples: {DURATION_EXAMPLES})")
        total += int(part.group(1)) * _DURATION_UNITS_MS[part.group(2)]
        position = part.end()
    return total


def parse_key_values(pairs: Iterable[str]) -> dict[str, str]:
    """`k=v` pairs split at the first `=`; the value may be empty, the key may not."""
    result: dict[str, str] = {}
    for pair in pairs:
        key, separator, value = pair.partition("=")
        if not separator or not key:
            raise ValueError(f"expected k=v, got {pair!r}")
        result[key] = value
    return result


def read_data(text: str | None, file: str | None) -> bytes | None:
    """The bytes of `--data TEXT` (UTF-8) or `--data-file PATH` (`-` = stdin), or None.

    Raises ValueError when both are given; OSError when the file cannot be read.
    """
    if text is not None and file is not None:
        raise ValueError("--data and --data-file are exclusive")
    if text is not None:
        return text.encode("utf-8")
    if file is None:
        return None
    if file == "-":
        return typer.get_binary_stream("stdin").read()
    return Path(file).read_bytes()


def usage_error(error: ValueError, option: str | None = None) -> typer.BadParameter:
    """The Typer error (exit code 2) for a value that could not be parsed."""
    return typer.BadParameter(str(error), param_hint=f"'{option}'" if option else None)
