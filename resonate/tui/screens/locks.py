"""`5`: locks with holder, process, ttl and an expiry countdown; a lock's detail; `d` releases."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType

from resonate.tui import actions
from resonate.tui.data import DataSource, LockFilter, Page
from resonate.tui.formatting import countdown, format_duration
from resonate.tui.screens.detail import ObjectDetailScreen
from resonate.tui.screens.resources import FilterField, JsonObject, ResourceListScreen, pattern_of
from resonate.tui.widgets.detail_pane import Row
from resonate.tui.widgets.resource_table import Cells


def ttl_text(ttl: Any) -> str:
    return format_duration(ttl) if isinstance(ttl, int) else ""


def expiry_text(lock: JsonObject, now: int) -> Text:
    """Countdown to expiry, red when less than half the ttl is left (a missed heartbeat)."""
    expires, ttl = lock.get("expiresAt"), lock.get("ttl")
    text = countdown(expires, now)
    late = isinstance(expires, int) and isinstance(ttl, int) and expires - now < ttl / 2
    return Text(text, style="bold red" if late else "")


class ReleaseLock:
    def selected_lock(self) -> JsonObject | None:
        raise NotImplementedError

    def action_release_lock(self) -> None:
        app: Any = self.app  # type: ignore[attr-defined]
        actions.start(app, actions.release_lock(app, self.selected_lock()))


class LocksScreen(ReleaseLock, ResourceListScreen):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("d", "release_lock", "Release")]
    view_name = "locks"
    kind = "lock"
    id_field = "resourceId"
    columns = ("RESOURCE", "EXECUTION", "PROCESS", "TTL", "EXPIRES IN")
    filters = (
        FilterField("pattern", "resource pattern (* wildcard)  [/]"),
        FilterField("process", "process id"),
        FilterField("execution", "execution id"),
    )

    def parse_filter(self, values: dict[str, str]) -> LockFilter:
        return LockFilter(
            pattern=pattern_of(values.get("pattern", "")),
            process_id=values.get("process") or None,
            execution_id=values.get("execution") or None,
        )

    async def page(
        self, data: DataSource, where: LockFilter, cursor: str | None, limit: int
    ) -> Page:
        return await data.locks(where, cursor, limit)

    def cells(self, item: JsonObject, now: int) -> Cells:
        return (
            str(item.get("resourceId", "")),
            str(item.get("executionId", "")),
            str(item.get("processId", "")),
            ttl_text(item.get("ttl")),
            expiry_text(item, now),
        )

    def open_detail(self, item: JsonObject) -> None:
        self.app.push_screen(LockDetailScreen(str(item["resourceId"]), item))

    def selected_lock(self) -> JsonObject | None:
        return self.selected()


class LockDetailScreen(ReleaseLock, ObjectDetailScreen):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("d", "release_lock", "Release")]
    view_name = "locks"
    kind = "lock"
    time_fields = ("expiresAt",)

    async def read(self, data: DataSource) -> JsonObject:
        return await data.lock(self.object_id)

    def extra_rows(self, document: JsonObject, now: int) -> list[Row]:
        return [("expires in", expiry_text(document, now))]

    def selected_lock(self) -> JsonObject | None:
        return self.document
