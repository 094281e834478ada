"""Text syntax of configuration values: durations, sizes, addresses, bools, lists and maps.

Every parser takes the text a user wrote (a flag value, an environment variable, or a string
in the YAML file) and either returns the typed value or raises ``ValueError`` with a short
reason. The caller adds where the text came from. The formatters write the same syntax back,
so that ``config show`` output can be read again as a configuration file.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import NamedTuple
from urllib.parse import parse_qsl, urlencode


class Address(NamedTuple):
    """A listener address: ``:8001`` has the empty host (all interfaces), ``[::]:8001`` ``::``."""

    host: str
    port: int

    def __str__(self) -> str:
        return format_address(self)


# Ordered so that "ms" is tried before "m" and "s".
_DURATION_UNITS_MS: dict[str, int] = {"ms": 1, "h": 3_600_000, "m": 60_000, "s": 1_000}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_DURATION_WHOLE = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|h|m|s))+")
_DURATION_EXAMPLES = "e.g. 250ms, 10s, 1m, 1h30m"

_SIZE_UNITS: dict[str, int] = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
}
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([A-Za-z]*)")
_SIZE_EXAMPLES = "e.g. 1048576, 512KB, 10MiB, 1GB"

_INTEGER = re.compile(r"[+-]?\d+")

_TRUE_WORDS = frozenset({"true", "1", "yes", "on"})
_FALSE_WORDS = frozenset({"false", "0", "no", "off"})


def parse_duration(text: str) -> int:
    """``1h30m`` -> 5400000 (milliseconds). ``0`` alone is allowed; other bare numbers are not."""
    stripped = text.strip()
    if stripped == "0":
        return 0
    if _INTEGER.fullmatch(stripped) or _looks_like_plain_number(stripped):
        raise ValueError(
            f"invalid duration {text!r}: a number needs a unit (ms, s, m or h), "
            + _DURATION_EXAMPLES
        )
    if not _DURATION_WHOLE.fullmatch(stripped):
        raise ValueError(f"invalid duration {text!r} ({_DURATION_EXAMPLES})")
    total = Decimal(0)
    for number, unit in _DURATION_PART.findall(stripped):
        total += Decimal(number) * _DURATION_UNITS_MS[unit]
    if total != total.to_integral_value():
        raise ValueError(f"invalid duration {text!r}: not a whole number of milliseconds")
    return int(total)


def format_duration(milliseconds: int) -> str:
    """5400000 -> ``1h30m``; 0 -> ``0``; 1500 -> ``1s500ms``."""
    if milliseconds == 0:
        return "0"
    parts: list[str] = []
    remaining = milliseconds
    for unit, size in (("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1)):
        count, remaining = divmod(remaining, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


# The final states a per-state retention may name (``system.retention.promises``).
RETENTION_STATES: tuple[str, ...] = (
    "resolved",
    "rejected",
    "rejected_canceled",
    "rejected_timedout",
)


def retention_state(name: str) -> str:
    """A state of a per-state retention, as written (any case); ``ValueError`` otherwise.
    ``pending`` is refused by name: a pending promise is never deleted."""
    state = name.strip().lower()
    if state not in RETENTION_STATES:
        raise ValueError(
            f"unknown state {name.strip()!r} in a retention map (states: "
            + ", ".join(RETENTION_STATES)
            + ")"
        )
    return state


def parse_retention(text: str) -> int | dict[str, int]:
    """One duration for every final state (``720h``), or a per-state map
    ``resolved=168h,rejected=720h`` (states not named are kept forever)."""
    if "=" not in text:
        return parse_duration(text)
    result: dict[str, int] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        name, _, duration = item.partition("=")
        state = retention_state(name)
        if state in result:
            raise ValueError(f"state {state!r} is given twice in a retention map")
        try:
            result[state] = parse_duration(duration)
        except ValueError as error:
            raise ValueError(f"{state}: {error}") from None
    return result


def parse_size(text: str) -> int:
    """``10MiB`` -> 10485760 bytes; ``512KB`` -> 512000; a bare integer is bytes."""
    match = _SIZE.fullmatch(text.strip())
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _SIZE_UNITS:
        raise ValueError(
            f"invalid size {text!r} (units: B, KB, MB, GB, KiB, MiB, GiB; {_SIZE_EXAMPLES})"
        )
    try:
        total = Decimal(match.group(1)) * _SIZE_UNITS[unit]
    except InvalidOperation as error:  # pragma: no cover - the regex admits only decimals
        raise ValueError(f"invalid size {text!r}") from error
    if total != total.to_integral_value():
        raise ValueError(f"invalid size {text!r}: not a whole number of bytes")
    return int(total)


def format_size(size_bytes: int) -> str | int:
    """The shortest exact spelling: 10485760 -> ``10MiB``, 2000 -> ``2KB``, 1500 -> 1500."""
    if size_bytes == 0:
        return 0
    for unit, factor in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size_bytes % factor == 0:
            return f"{size_bytes // factor}{unit}"
    for unit, factor in (("GB", 1000**3), ("MB", 1000**2), ("KB", 1000)):
        if size_bytes % factor == 0:
            return f"{size_bytes // factor}{unit}"
    return size_bytes


def human_size(amount: int) -> str:
    """A byte count for people, in binary units: 812 B, 1.5 KiB, 276.8 MiB, 2.0 TiB."""
    value = float(amount)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def parse_address(text: str) -> Address:
    """``0.0.0.0:8001``, ``[::]:8001``, ``:8001`` (empty host = all interfaces)."""
    stripped = text.strip()
    host, colon, port_text = stripped.rpartition(":")
    if not colon:
        raise ValueError(f"invalid address {text!r}: expected host:port, e.g. 0.0.0.0:8001")
    if host.startswith("[") or host.endswith("]"):
        if not (host.startswith("[") and host.endswith("]")) or len(host) < 3:
            raise ValueError(f"invalid address {text!r}: unbalanced brackets around the host")
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"invalid address {text!r}: write IPv6 hosts in brackets, e.g. [::]:8001")
    if any(character.isspace() or character in "/[]@" for character in host):
        raise ValueError(f"invalid address {text!r}: bad host {host!r}")
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"invalid address {text!r}: the port must be a number from 0 to 65535")
    return Address(host, int(port_text))


def format_address(address: Address) -> str:
    host = f"[{address.host}]" if ":" in address.host else address.host
    return f"{host}:{address.port}"


def parse_bool(text: str) -> bool:
    """``true/false/1/0/yes/no/on/off``, any case."""
    word = text.strip().lower()
    if word in _TRUE_WORDS:
        return True
    if word in _FALSE_WORDS:
        return False
    raise ValueError(f"invalid bool {text!r} (use true/false, 1/0, yes/no or on/off)")


def parse_int(text: str) -> int:
    stripped = text.strip()
    if not _INTEGER.fullmatch(stripped):
        raise ValueError(f"invalid integer {text!r}")
    return int(stripped)


def parse_string_list(text: str) -> tuple[str, ...]:
    """``a,b`` -> ("a", "b"); blanks around items and empty items are dropped."""
    return tuple(item.strip() for item in text.split(",") if item.strip())


def parse_string_map(text: str) -> dict[str, str]:
    """``k1=v1,k2=v2`` -> {"k1": "v1", "k2": "v2"}; each item splits at its first ``=``."""
    result: dict[str, str] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        key, equals, value = item.partition("=")
        if not equals or not key.strip():
            raise ValueError(f"invalid map entry {item.strip()!r}: expected key=value")
        result[key.strip()] = value
    return result


def parse_query(text: str) -> dict[str, str]:
    """PostgreSQL connection parameters ``sslmode=require&connect_timeout=10`` as a dict."""
    if not text.strip():
        return {}
    try:
        pairs = parse_qsl(text.strip(), keep_blank_values=True, strict_parsing=True)
    except ValueError as error:
        raise ValueError(f"invalid query {text!r}: expected k=v&k=v") from error
    return dict(pairs)


def format_query(parameters: dict[str, str]) -> str:
    return urlencode(parameters)


def _looks_like_plain_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
