"""Field/value rows of one API object, times shown absolute and relative."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from resonate.tui.formatting import absolute, format_duration, format_tags, relative

Row = tuple[str, str | Text]


def field_rows(
    document: Mapping[str, Any],
    now: int,
    time_fields: Iterable[str] = (),
    skip: Iterable[str] = (),
    duration_fields: Iterable[str] = ("ttl", "promiseTimeout"),
) -> list[Row]:
    """Every member of `document` (but `skip`) as a row: times `abs (rel)`, durations `1m
    (60000 ms)`, maps as `k=v`."""
    times = set(time_fields)
    durations = set(duration_fields)
    skipped = set(skip)
    rows: list[Row] = []
    for name, value in document.items():
        if name in skipped:
            continue
        if name in times and isinstance(value, int):
            text = absolute(value) if value > 0 else "none"
            hint = relative(value, now) if value > 0 else ""
            rows.append((name, f"{text}  ({hint})" if hint and hint != "never" else text))
        elif name in durations and isinstance(value, int):
            rows.append((name, f"{format_duration(value)}  ({value} ms)"))
        elif isinstance(value, Mapping):
            rows.append((name, format_tags(value) if value else "{}"))
        else:
            rows.append((name, "" if value is None else str(value)))
    return rows


def render_rows(rows: Iterable[Row]) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold cyan", no_wrap=True)
    table.add_column(overflow="fold")
    for name, value in rows:
        table.add_row(name, value)
    return table


class DetailPane(Static):
    DEFAULT_CSS = """
    DetailPane { height: auto; padding: 0 1; border: round $panel-lighten-2; }
    """

    def __init__(self, title: str, rows: Iterable[Row] = (), *, id: str | None = None) -> None:
        super().__init__(render_rows(rows), id=id)
        self.border_title = title

    def show(self, rows: Iterable[Row]) -> None:
        self.update(render_rows(rows))
