"""The detail of a task, a schedule or a lock: every field with times absolute and relative,
plus what each kind adds (a schedule's cron in words and next runs, countdowns), and its
action (`d`) behind a confirmation."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import Static

from resonate.tui.data import DataError, DataSource
from resonate.tui.screens.base import LiveScreen
from resonate.tui.screens.resources import JsonObject
from resonate.tui.widgets.detail_pane import DetailPane, Row, field_rows
from resonate.tui.widgets.value_viewer import ValueViewer


class ObjectDetailScreen(LiveScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
        Binding("y", "copy", "Copy"),
    ]
    kind = "object"
    time_fields: tuple[str, ...] = ()
    value_field: str | None = None

    def __init__(self, object_id: str, document: JsonObject | None = None) -> None:
        super().__init__()
        self.object_id = object_id
        self.document = document

    def compose_body(self) -> ComposeResult:
        yield Static(f" {self.kind} {self.object_id}", id="detail-title")
        with VerticalScroll(id="detail-single"):
            yield DetailPane(self.kind, id="fields")
            yield DetailPane("", id="extra")
            if self.value_field:
                yield ValueViewer(self.value_field, None, id="value")

    def on_mount(self) -> None:
        if self.document is not None:
            self.show(self.document)
        self.set_interval(1.0, self._tick)

    def _tick(self) -> None:
        if self.is_current and self.document is not None:
            self.show(self.document)

    async def read(self, data: DataSource) -> JsonObject:
        raise NotImplementedError

    async def fetch(self, data: DataSource) -> JsonObject | None:
        try:
            return await self.read(data)
        except DataError as error:
            if error.status == 404:
                return None  # deleted, released or swept since it was opened
            raise

    def extra_rows(self, document: JsonObject, now: int) -> list[Row]:
        return []

    def show(self, payload: JsonObject | None) -> None:
        if payload is None:
            self.query_one("#detail-title", Static).update(
                Text.assemble(f" {self.kind} ", (self.object_id, "bold"), ("  gone (404)", "red"))
            )
            self.set_stale(True)
            return
        self.document = payload
        now = self.resonate.now_ms()
        skip = (self.value_field,) if self.value_field else ()
        self.query_one("#fields", DetailPane).show(
            field_rows(payload, now, self.time_fields, skip=skip)
        )
        extra = self.extra_rows(payload, now)
        pane = self.query_one("#extra", DetailPane)
        pane.display = bool(extra)
        pane.show(extra)
        if self.value_field:
            self.query_one("#value", ValueViewer).show(payload.get(self.value_field))
        self.query_one("#detail-title", Static).update(
            Text.assemble(f" {self.kind} ", (self.object_id, "bold"), *self.title_extra(payload))
        )

    def title_extra(self, document: JsonObject) -> tuple[Any, ...]:
        return ()

    def action_copy(self) -> None:
        self.resonate.copy_object(self.kind, self.document)

    def action_back(self) -> None:
        self.dismiss()
