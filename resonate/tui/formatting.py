"""Text for the dashboard's cells: relative times, countdowns, cron in words, next run times.

Pure functions of their inputs and of `now` (ms), so frozen-clock snapshots are stable.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from resonate.cli.output import INT64_MAX, format_relative, format_tags

__all__ = [
    "absolute",
    "countdown",
    "cron_in_words",
    "format_duration",
    "format_relative",
    "format_tags",
    "next_runs",
    "relative",
    "tags_summary",
]


def relative(moment: Any, now: int) -> str:
    """`in 3m` / `5m ago` / `never` / `` for a ms timestamp."""
    if not isinstance(moment, int) or isinstance(moment, bool):
        return ""
    if moment >= INT64_MAX:
        return "never"
    return format_relative(moment - now)


def absolute(moment: Any, zone: str = "UTC") -> str:
    """`2026-12-05 07:08:21.120 UTC` (or in `zone`), `never` for int64 max."""
    if not isinstance(moment, int) or isinstance(moment, bool):
        return ""
    if moment >= INT64_MAX:
        return "never"
    try:
        tz = UTC if zone == "UTC" else ZoneInfo(zone)
        when = datetime.fromtimestamp(moment / 1000, tz=tz)
    except (OverflowError, OSError, ValueError, ZoneInfoNotFoundError):
        return str(moment)
    return when.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment % 1000:03d} {zone}"


def format_duration(ms: int) -> str:
    """`250ms`, `30s`, `1m`, `1h30m`, `2d`: the CLI's duration syntax."""
    if ms < 1000:
        return f"{ms}ms"
    return format_relative(ms).removeprefix("in ")


def countdown(moment: Any, now: int) -> str:
    """A live countdown to a deadline: `12s`, `1m05s`, `expired 3s ago`, `` when unset."""
    if not isinstance(moment, int) or isinstance(moment, bool) or moment <= 0:
        return ""
    if moment >= INT64_MAX:
        return "never"
    remaining = moment - now
    if remaining <= 0:
        return f"expired {format_relative(remaining)}"
    seconds = remaining // 1000
    if seconds < 60:
        return f"{remaining / 1000:.0f}s" if seconds >= 10 else f"{remaining / 1000:.1f}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def tags_summary(tags: Mapping[str, str] | None, width: int = 40) -> str:
    """`k=v, k2=v2` cut to `width` characters with the count of tags not shown."""
    if not tags:
        return ""
    text = format_tags(tags)
    if len(text) <= width:
        return text
    return text[: width - 1] + "…"


def cron_in_words(cron: str) -> str:
    """`every 5 minutes` for `*/5 * * * *`; descriptors and `@every` too; the expression itself
    when it cannot be put in words."""
    text = cron.strip()
    prefix = ""
    for marker in ("CRON_TZ=", "TZ="):
        if text.upper().startswith(marker):
            zone, _, text = text[len(marker) :].partition(" ")
            prefix, text = f" ({zone})", text.strip()
            break
    lowered = text.lower()
    descriptors = {
        "@yearly": "once a year, at midnight on January 1",
        "@annually": "once a year, at midnight on January 1",
        "@monthly": "once a month, at midnight on the 1st",
        "@weekly": "once a week, at midnight on Sunday",
        "@daily": "once a day, at midnight",
        "@midnight": "once a day, at midnight",
        "@hourly": "every hour, at minute 0",
    }
    if lowered in descriptors:
        return descriptors[lowered] + prefix
    if lowered.startswith("@every"):
        return f"every {text[len('@every') :].strip()}{prefix}"
    try:
        from cron_descriptor import Options, get_description

        options = Options()
        options.use_24hour_time_format = True
        options.verbose = False
        words = str(get_description(text, options))
    except Exception:  # cron_descriptor raises its own family for anything it does not read
        return text + prefix
    return words[:1].lower() + words[1:] + prefix


def next_runs(schedule: Mapping[str, Any], count: int = 5) -> list[int]:
    """The next `count` firing times (ms) of a schedule, from its `nextRunTime` on, computed with
    the server's own cron rules; empty when the cron cannot be read."""
    from resonate.server.cron import parse_cron

    first = schedule.get("nextRunTime")
    if not isinstance(first, int) or first >= INT64_MAX:
        return []
    try:
        cron = parse_cron(str(schedule.get("cron", "")), schedule.get("timezone"))
    except Exception:
        return []
    runs = [first]
    while len(runs) < count and runs[-1] < INT64_MAX:
        runs.append(cron.next_after(runs[-1]))
    return [run for run in runs if run < INT64_MAX]
