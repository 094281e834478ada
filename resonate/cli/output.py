"""Every piece of CLI output: data formats on stdout, notes and errors on stderr (cli.md §2).

Rich and PyYAML are imported only by the formats that need them, so that `resonate --help` and
shell completion stay fast.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import IO, TYPE_CHECKING, Any

import typer

from resonate.cli.errors import CliError

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

    from resonate.client import ApiError

JsonObject = dict[str, Any]
INT64_MAX = 9_223_372_036_854_775_807

# Width used when stdout is not a terminal: wide enough that table cells never wrap.
_UNBOUNDED_WIDTH = 10_000


class OutputFormat(StrEnum):
    table = "table"
    json = "json"
    jsonl = "jsonl"
    yaml = "yaml"
    id = "id"


# --- times --------------------------------------------------------------------------------------


def format_relative(delta_ms: int) -> str:
    """`in 5m`, `3m ago`, `in 1h30m`, `now`: the largest unit, plus the next for hours/days."""
    seconds = round(abs(delta_ms) / 1000)
    if seconds == 0:
        return "now"
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, seconds = divmod(rest, 60)
    if days:
        text = f"{days}d{hours}h" if hours else f"{days}d"
    elif hours:
        text = f"{hours}h{minutes}m" if minutes else f"{hours}h"
    elif minutes:
        text = f"{minutes}m"
    else:
        text = f"{seconds}s"
    return f"in {text}" if delta_ms > 0 else f"{text} ago"


def format_timestamp(ms: int, now_ms: int) -> str:
    """UTC ISO-8601 with milliseconds and a relative hint; int64 max is `never`."""
    if ms >= INT64_MAX:
        return "never"
    try:
        moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return str(ms)
    iso = moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"
    return f"{iso} ({format_relative(ms - now_ms)})"


def now_ms() -> int:
    return int(datetime.now(tz=UTC).timestamp() * 1000)


# --- views of API objects -----------------------------------------------------------------------


def format_tags(tags: Mapping[str, str] | None, separator: str = ", ") -> str:
    return separator.join(f"{key}={value}" for key, value in (tags or {}).items())


def format_value(value: Mapping[str, Any] | None) -> str:
    """A promise value for humans: its headers, then its data as text (or base64 if binary)."""
    from resonate.client import decode_value_data, decode_value_text

    if not value:
        return ""
    lines = []
    if value.get("headers"):
        lines.append("headers: " + format_tags(value["headers"]))
    if value.get("data"):
        text = decode_value_text(value)
        if text is None:
            size = len(decode_value_data(value))
            text = f"<{size} bytes, base64> {value['data']}"
        lines.append(f"data: {text}")
    return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class Column:
    header: str
    render: Callable[[JsonObject, int], str]


@dataclass(frozen=True, slots=True)
class ResourceView:
    """How one kind of API object is shown: list columns and the fields that need formatting."""

    items_key: str
    id_key: str
    columns: tuple[Column, ...]
    time_fields: frozenset[str] = frozenset()
    value_fields: frozenset[str] = frozenset()
    tag_fields: frozenset[str] = frozenset({"tags"})
    # Time fields where 0 means "not set" (a task's `expiresAt`), shown as `none`.
    unset_when_zero: frozenset[str] = frozenset()
    # Fields shown in capitals (a task's `state`: the 2026 protocol stores them in lower case).
    upper_case_fields: frozenset[str] = frozenset()

    def field_text(self, name: str, field_value: Any, now: int) -> str:
        if field_value is None:
            return ""
        if name in self.upper_case_fields and isinstance(field_value, str):
            return field_value.upper()
        if name in self.unset_when_zero and field_value == 0:
            return "none"
        if name in self.time_fields and isinstance(field_value, int):
            return format_timestamp(field_value, now)
        if name in self.value_fields and isinstance(field_value, Mapping):
            return format_value(field_value)
        if name in self.tag_fields and isinstance(field_value, Mapping):
            return format_tags(field_value, "\n")
        if isinstance(field_value, dict | list):
            return json.dumps(field_value, ensure_ascii=False)
        return str(field_value)


def _time_column(header: str, name: str) -> Column:
    def render(item: JsonObject, now: int) -> str:
        moment = item.get(name)
        return format_timestamp(moment, now) if isinstance(moment, int) else ""

    return Column(header, render)


PROMISE_VIEW = ResourceView(
    items_key="promises",
    id_key="id",
    columns=(
        Column("ID", lambda promise, _now: str(promise.get("id", ""))),
        Column("STATE", lambda promise, _now: str(promise.get("state", ""))),
        _time_column("TIMEOUT", "timeout"),
        Column("TAGS", lambda promise, _now: format_tags(promise.get("tags"))),
    ),
    time_fields=frozenset({"timeout", "createdOn", "completedOn"}),
    value_fields=frozenset({"param", "value"}),
)


def _task_expiry(task: JsonObject, now: int) -> str:
    """`expiresAt` of a live task (not before / claim deadline / lease end); 0 means none.

    It means nothing once the task has ended, whatever value it kept.
    """
    moment = task.get("expiresAt")
    if task.get("state") in ("COMPLETED", "TIMEDOUT") or not isinstance(moment, int) or not moment:
        return ""
    return format_timestamp(moment, now)


def _is_2026(task: JsonObject) -> bool:
    from resonate.client import is_2026_record

    return is_2026_record(task)


def task_protocol(task: JsonObject) -> str:
    """`2026` for a task of the 2026-04-01 protocol (`"protocol": "2026-04-01"`), else `rest`."""
    return "2026" if _is_2026(task) else "rest"


def _task_cell(rest_field: str, field_2026: str) -> Callable[[JsonObject, int], str]:
    """A column showing `rest_field` of a REST task and `field_2026` of a 2026 one."""

    def render(task: JsonObject, _now: int) -> str:
        value = task.get(field_2026 if _is_2026(task) else rest_field)
        return "" if value is None else str(value)

    return render


def _task_root(task: JsonObject, _now: int) -> str:
    """A REST task's root promise; for a 2026 task, the origin its id names (before `:`)."""
    if _is_2026(task):
        return str(task.get("id", "")).split(":", 1)[0]
    return str(task.get("rootPromiseId", ""))


# The extended task of `GET /tasks` (http-api.md §4.10), the plain task object of a complete,
# and a 2026 task (`task.get`, protocol-2026.md §4.1) with `"protocol": "2026-04-01"`: its
# version in COUNTER, its pid in PROCESS, its state in capitals like a REST state.
TASK_VIEW = ResourceView(
    items_key="tasks",
    id_key="id",
    columns=(
        Column("ID", lambda task, _now: str(task.get("id", ""))),
        Column("PROTOCOL", lambda task, _now: task_protocol(task)),
        Column("STATE", lambda task, _now: str(task.get("state", "")).upper()),
        Column("COUNTER", _task_cell("counter", "version")),
        Column("PROCESS", _task_cell("processId", "pid")),
        Column("ROOT", _task_root),
        Column("EXPIRES", _task_expiry),
    ),
    time_fields=frozenset({"timeout", "expiresAt", "createdOn", "completedOn"}),
    unset_when_zero=frozenset({"expiresAt"}),
    upper_case_fields=frozenset({"state"}),
)

# The callback object of a callback or subscription registration (http-api.md §3.1).
CALLBACK_VIEW = ResourceView(
    items_key="callbacks",
    id_key="id",
    columns=(
        Column("ID", lambda callback, _now: str(callback.get("id", ""))),
        Column("PROMISE", lambda callback, _now: str(callback.get("promiseId", ""))),
        Column("ROOT", lambda callback, _now: str(callback.get("rootPromiseId", ""))),
        _time_column("TIMEOUT", "timeout"),
    ),
    time_fields=frozenset({"timeout", "createdOn"}),
)

# The lock object (http-api.md §8.1); `id` output prints the resource id (cli.md §2).
LOCK_VIEW = ResourceView(
    items_key="locks",
    id_key="resourceId",
    columns=(
        Column("RESOURCE", lambda lock, _now: str(lock.get("resourceId", ""))),
        Column("EXECUTION", lambda lock, _now: str(lock.get("executionId", ""))),
        Column("PROCESS", lambda lock, _now: str(lock.get("processId", ""))),
        _time_column("EXPIRES", "expiresAt"),
    ),
    time_fields=frozenset({"expiresAt"}),
)

# --- schedules (cli.md §6, http-api.md §7.1) ---

# `promiseTimeout` is relative ms (not a time); `lastRunTime` is absent until the first firing.
SCHEDULE_VIEW = ResourceView(
    items_key="schedules",
    id_key="id",
    columns=(
        Column("ID", lambda schedule, _now: str(schedule.get("id", ""))),
        Column("CRON", lambda schedule, _now: str(schedule.get("cron", ""))),
        _time_column("NEXT RUN", "nextRunTime"),
        _time_column("LAST RUN", "lastRunTime"),
        Column("PROMISE ID", lambda schedule, _now: str(schedule.get("promiseId", ""))),
    ),
    time_fields=frozenset({"nextRunTime", "lastRunTime", "createdOn"}),
    value_fields=frozenset({"promiseParam"}),
    tag_fields=frozenset({"tags", "promiseTags"}),
)

# --- end of schedules ---


# --- printing -----------------------------------------------------------------------------------


def color_enabled(no_color: bool, stream: IO[str]) -> bool:
    """Colour only on a terminal, unless `--no-color` or a non-empty `NO_COLOR` says otherwise."""
    if no_color or os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class Printer:
    """Writes command results to stdout and notes/errors to stderr in the chosen format."""

    def __init__(
        self,
        output: OutputFormat = OutputFormat.table,
        *,
        no_color: bool = False,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.output = output
        self.no_color = no_color
        self.clock = clock

    # data on stdout

    def show_object(self, item: JsonObject, view: ResourceView) -> None:
        if self.output is OutputFormat.table:
            self._print_field_table(item, view)
        elif self.output is OutputFormat.id:
            self._write(str(item.get(view.id_key, "")))
        else:
            self._print_document(item, [item])

    def show_page(self, page: JsonObject, view: ResourceView) -> None:
        """A search page `{"cursor", "<items>"}`; table/jsonl/id mention the next cursor."""
        items: list[JsonObject] = list(page.get(view.items_key) or [])
        if self.output is OutputFormat.table:
            self._print_rows(items, view)
        elif self.output is OutputFormat.id:
            for item in items:
                self._write(str(item.get(view.id_key, "")))
        else:
            self._print_document(page, items)
        cursor = page.get("cursor")
        if cursor and self.output not in (OutputFormat.json, OutputFormat.yaml):
            self.note(f"more results: --cursor {cursor}")

    def show_document(self, document: JsonObject, text: str) -> None:
        """A small non-API document: `text` for table/id, the document for data formats."""
        if self.output in (OutputFormat.table, OutputFormat.id):
            self._write(text)
        else:
            self._print_document(document, [document])

    def _print_document(self, document: JsonObject, items: list[JsonObject]) -> None:
        if self.output is OutputFormat.json:
            self._write(json.dumps(document, indent=2, ensure_ascii=False))
        elif self.output is OutputFormat.jsonl:
            for item in items:
                self._write(json.dumps(item, separators=(",", ":"), ensure_ascii=False))
        elif self.output is OutputFormat.yaml:
            import yaml

            self._write(yaml.safe_dump(document, sort_keys=False, allow_unicode=True).rstrip("\n"))

    def _print_field_table(self, item: JsonObject, view: ResourceView) -> None:
        from rich.table import Table
        from rich.text import Text

        now = self.clock()
        table = Table(box=None, show_header=False, pad_edge=False)
        table.add_column(style="bold")
        table.add_column()
        for name, field_value in item.items():
            table.add_row(Text(name), Text(view.field_text(name, field_value, now)))
        self._print_rich(table)

    def _print_rows(self, items: list[JsonObject], view: ResourceView) -> None:
        from rich.table import Table
        from rich.text import Text

        now = self.clock()
        table = Table(box=None, pad_edge=False, header_style="bold")
        for column in view.columns:
            table.add_column(column.header)
        for item in items:
            table.add_row(*(Text(column.render(item, now)) for column in view.columns))
        self._print_rich(table)

    def _print_rich(self, renderable: RenderableType) -> None:
        console = self._console()
        with console.capture() as capture:
            console.print(renderable)
        # Rich pads every cell of the last column; trailing blanks only get in grep's way.
        for line in capture.get().splitlines():
            self._write(line.rstrip(" "))

    def _console(self) -> Console:
        from rich.console import Console

        stream = sys.stdout
        color = color_enabled(self.no_color, stream)
        is_terminal = bool(getattr(stream, "isatty", None) and stream.isatty())
        return Console(
            file=stream,
            no_color=not color,
            color_system="auto" if color else None,
            highlight=False,
            width=None if is_terminal else _UNBOUNDED_WIDTH,
            soft_wrap=False,
        )

    def _write(self, text: str) -> None:
        typer.echo(text)

    # notes and errors on stderr

    def note(self, text: str) -> None:
        if color_enabled(self.no_color, sys.stderr):
            text = typer.style(text, dim=True)
        typer.echo(text, err=True)

    def error(self, message: str) -> None:
        """`error: <message>` on one line, whatever line breaks the message carries."""
        message = " ".join(line.strip() for line in message.splitlines() if line.strip())
        prefix = "error:"
        if color_enabled(self.no_color, sys.stderr):
            prefix = typer.style(prefix, fg="red", bold=True)
        typer.echo(f"{prefix} {message}", err=True)


def describe_error(error: BaseException) -> str:
    """The text after `error: ` for a failed command."""
    from resonate.client import ApiError, ServerUnreachable, UnexpectedResponse

    if isinstance(error, ApiError):
        return describe_api_error(error)
    if isinstance(error, ServerUnreachable | UnexpectedResponse | CliError):
        return str(error)
    if isinstance(error, OSError) and error.filename is not None:
        return f"{error.strerror or error}: {error.filename}"
    return str(error) or type(error).__name__


def describe_api_error(error: ApiError) -> str:
    """`<message>[: <details>] (HTTP <status>, code <code>)`."""
    extra = [detail for detail in error.details if detail != error.message]
    message = error.message + (": " + "; ".join(extra) if extra else "")
    if error.code:
        return f"{message} (HTTP {error.status}, code {error.code})"
    return f"{message} (HTTP {error.status})"


# --- streaming and watching (owned by the wait/watch work; new functions only) ------------------
# Lines written one at a time while a search is still paging (`--all -o jsonl|id`) and the
# renderables a `--watch` table redraws.


def item_line(item: JsonObject, view: ResourceView, output: OutputFormat) -> str:
    """One item as a line of its own: compact JSON for `jsonl`, the id for `id`."""
    if output is OutputFormat.id:
        return str(item.get(view.id_key, ""))
    return json.dumps(item, separators=(",", ":"), ensure_ascii=False)


def change_line(event: str, resource: str, item: JsonObject) -> str:
    """A `--watch -o jsonl` line: `{"event": "created"|"changed"|"gone", "<resource>": {…}}`."""
    return json.dumps({"event": event, resource: item}, separators=(",", ":"), ensure_ascii=False)


def write_line(text: str) -> None:
    """One line on stdout, flushed at once so that a pipe sees it before the command ends."""
    typer.echo(text)


def rows_table(items: list[JsonObject], view: ResourceView, now: int) -> RenderableType:
    """The rows of a search, as `Printer.show_page` draws them, for a live display."""
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in view.columns:
        table.add_column(column.header)
    for item in items:
        table.add_row(*(Text(column.render(item, now)) for column in view.columns))
    return table


def field_table(item: JsonObject, view: ResourceView, now: int) -> RenderableType:
    """One object as a field/value table, as `Printer.show_object` draws it, for a live display."""
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    for name, field_value in item.items():
        table.add_row(Text(name), Text(view.field_text(name, field_value, now)))
    return table


def live_console(no_color: bool) -> Console:
    """The console of a `--watch` table: a live display on an interactive terminal."""
    from rich.console import Console

    color = color_enabled(no_color, sys.stdout)
    return Console(
        file=sys.stdout,
        no_color=not color,
        color_system="auto" if color else None,
        highlight=False,
        soft_wrap=False,
    )


# --- end of streaming and watching ---
