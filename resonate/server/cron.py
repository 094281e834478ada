"""Cron expressions of schedules (http-api.md §7.3), computed with croniter.

Accepted: 5 fields (minute hour day-of-month month day-of-week, names and `?` allowed), 6 fields
with a leading seconds field, the `@yearly` … `@hourly` descriptors, `@every <duration>`, and a
`CRON_TZ=<zone> ` or `TZ=<zone> ` prefix. Times are computed in UTC unless the prefix or the
schedule's `timezone` field names a zone (ours: the issue asks for UTC, not the server's local
zone, so a schedule means the same on every machine).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from resonate.core.clock import INT64_MAX
from resonate.core.errors import invalid
from resonate.server.config.values import parse_duration

_PREFIXES = ("CRON_TZ=", "TZ=")
_MIN_EVERY_MS = 1000


def _cron_error() -> Exception:
    return invalid("cron", "The field cron must be a valid cron expression.")


def parse_zone(name: str, field: str = "timezone") -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise invalid(field, f"The field {field} must be an IANA time zone name.") from None


@dataclass(frozen=True, slots=True)
class Cron:
    zone: tzinfo
    fields: str | None = None  # a croniter expression
    seconds_first: bool = False
    every_ms: int | None = None

    def next_after(self, after_ms: int) -> int:
        """The first firing time strictly after ``after_ms`` (clamped to int64)."""
        if self.every_ms is not None:
            return min(after_ms + self.every_ms, INT64_MAX)
        assert self.fields is not None
        start = datetime.fromtimestamp(after_ms / 1000, tz=UTC).astimezone(self.zone)
        iterator = croniter(self.fields, start, second_at_beginning=self.seconds_first)
        try:
            following: datetime = iterator.get_next(datetime)
        except Exception:  # no match within croniter's search horizon: never fires again
            return INT64_MAX
        return int(following.timestamp() * 1000)

    def earliest_of_last(self, count: int, at_or_before: int, anchor: int) -> int:
        """The earliest of the last ``count`` firing times ``<= at_or_before``; ``anchor`` is a
        known firing time (the start of an `@every` series)."""
        if self.every_ms is not None:
            last = anchor + (at_or_before - anchor) // self.every_ms * self.every_ms
            return max(anchor, last - (count - 1) * self.every_ms)
        assert self.fields is not None
        start = datetime.fromtimestamp((at_or_before + 1) / 1000, tz=UTC).astimezone(self.zone)
        iterator = croniter(self.fields, start, second_at_beginning=self.seconds_first)
        earliest = at_or_before
        for _ in range(count):
            previous: datetime = iterator.get_prev(datetime)
            earliest = int(previous.timestamp() * 1000)
        return max(anchor, earliest)

    def count_between(self, first: int, end: int, limit: int) -> int:
        """How many firing times lie in ``[first, end)``, ``first`` being one (at most
        ``limit``: counting a long outage slot by slot would stall the store)."""
        if self.every_ms is not None:
            return min(limit, max(0, -(-(end - first) // self.every_ms)))
        count, slot = 0, first
        while slot < end and count < limit:
            count += 1
            slot = self.next_after(slot)
        return count


def parse_cron(expression: str, timezone: str | None = None) -> Cron:
    """A schedule's cron; raises a 400 naming ``cron`` (or ``timezone``)."""
    text = expression.strip()
    zone: tzinfo = parse_zone(timezone) if timezone else UTC
    for prefix in _PREFIXES:
        if text.upper().startswith(prefix):
            name, _, text = text[len(prefix) :].partition(" ")
            zone = parse_zone(name, "cron")
            text = text.strip()
            break
    if text.lower().startswith("@every"):
        try:
            every = parse_duration(text[len("@every") :].strip())
        except ValueError:
            raise _cron_error() from None
        if every < _MIN_EVERY_MS:
            raise invalid("cron", "The field cron must be a valid cron expression (@every >= 1s).")
        return Cron(zone, every_ms=every)
    count = len(text.split())
    if text.startswith("@"):
        count = 5
    elif count not in (5, 6):
        raise _cron_error()
    seconds_first = count == 6
    try:
        valid = croniter.is_valid(text, second_at_beginning=seconds_first)
    except Exception:
        valid = False
    if not valid:
        raise _cron_error()
    cron = Cron(zone, fields=text, seconds_first=seconds_first)
    try:
        cron.next_after(0)
    except Exception:
        raise _cron_error() from None
    return cron
