"""What the four list views share: a filter bar, a live table keyed by id, paging on scroll.

A refresh re-reads as many rows as are loaded (at least a page), so rows update in place and
memory holds only the loaded pages; moving the cursor near the last row asks for one page more.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.widgets import DataTable, Input, Select, Static

from resonate.tui.data import PAGE_SIZE, DataSource, Page
from resonate.tui.screens.base import LiveScreen
from resonate.tui.widgets.resource_table import Cells, ResourceTable

JsonObject = dict[str, Any]
LOAD_MORE_WITHIN = 5  # rows from the end at which the next page is fetched
STATE_STYLES = {
    "PENDING": "yellow",
    "RESOLVED": "green",
    "REJECTED": "red",
    "REJECTED_CANCELED": "magenta",
    "REJECTED_TIMEDOUT": "red",
    "INIT": "dim",
    "ENQUEUED": "cyan",
    "CLAIMED": "yellow",
    "COMPLETED": "green",
    "TIMEDOUT": "red",
    # 2026-04-01 tasks (stored in lower case; PENDING as above)
    "ACQUIRED": "yellow",
    "SUSPENDED": "cyan",
    "HALTED": "magenta",
    "FULFILLED": "green",
}


def state_text(state: Any) -> Text:
    """A promise or task state in capitals (2026 records store them in lower case), coloured."""
    name = str(state or "").upper()
    return Text(name, style=STATE_STYLES.get(name, ""))


@dataclass(frozen=True, slots=True)
class FilterField:
    name: str
    placeholder: str
    choices: tuple[str, ...] = ()  # a Select when given, else an Input
    width: int = 0  # 0: share the rest


@dataclass(frozen=True, slots=True)
class Loaded:
    where: Any
    items: list[JsonObject]
    cursor: str | None


class ResourceListScreen(LiveScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "Filter"),
        Binding("y", "copy", "Copy"),
        Binding("escape", "leave_filter", "Back", show=False),
    ]
    kind = "object"
    id_field = "id"
    columns: tuple[str, ...] = ()
    filters: tuple[FilterField, ...] = ()

    def __init__(self) -> None:
        super().__init__()
        self.where = self.parse_filter({})
        self.items: list[JsonObject] = []
        self.next_cursor: str | None = None
        self.wanted = PAGE_SIZE
        self.loaded_once = False

    # --- what each view says ------------------------------------------------------------------

    def parse_filter(self, values: dict[str, str]) -> Any:
        """The view's filter record from the bar's values; ValueError for bad input."""
        raise NotImplementedError

    async def page(self, data: DataSource, where: Any, cursor: str | None, limit: int) -> Page:
        raise NotImplementedError

    def cells(self, item: JsonObject, now: int) -> Cells:
        raise NotImplementedError

    def open_detail(self, item: JsonObject) -> None:
        raise NotImplementedError

    # --- layout -------------------------------------------------------------------------------

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="filters"):
            for field in self.filters:
                widget: Select[str] | Input
                if field.choices:
                    options = [(choice, choice) for choice in field.choices]
                    widget = Select(options, prompt=field.placeholder, id=f"filter-{field.name}")
                else:
                    widget = Input(placeholder=field.placeholder, id=f"filter-{field.name}")
                if field.width:
                    widget.styles.width = field.width
                yield widget
        yield ResourceTable(self.columns, id="table")
        yield Static("", id="summary")

    def on_mount(self) -> None:
        self.set_interval(1.0, self._tick_countdowns)
        self.query_one(ResourceTable).focus()

    @property
    def table(self) -> ResourceTable:
        return self.query_one(ResourceTable)

    # --- refresh ------------------------------------------------------------------------------

    async def fetch(self, data: DataSource) -> Loaded:
        """The first `wanted` rows (or a few more): the API keeps the first page's limit in its
        cursor, so every page has up to min(wanted, 100) rows."""
        where = self.where
        items: list[JsonObject] = []
        cursor: str | None = None
        while True:
            page = await self.page(data, where, cursor, self.wanted)
            items.extend(page.items)
            cursor = page.cursor
            if not cursor or len(items) >= self.wanted:
                break
        return Loaded(where, items, cursor)

    def show(self, payload: Loaded) -> None:
        if payload.where != self.where:
            return  # read under a filter the user has changed since
        self.items = payload.items
        self.next_cursor = payload.cursor
        self.loaded_once = True
        self._render_rows()
        more = " · more below (scroll)" if payload.cursor else ""
        count = len(self.items)
        self.query_one("#summary", Static).update(
            f" {count} {self.kind}{'s' if count != 1 else ''}{more}"
            if count
            else f" no {self.kind}s match"
        )

    def _render_rows(self) -> None:
        now = self.resonate.now_ms()
        rows = [(str(item.get(self.id_field, "")), self.cells(item, now)) for item in self.items]
        self.table.show_rows(rows, self.resonate.clock())

    def _tick_countdowns(self) -> None:
        if self.is_current and self.items:
            self._render_rows()

    # --- selection and paging -------------------------------------------------------------------

    def selected(self) -> JsonObject | None:
        key = self.table.selected_key
        for item in self.items:
            if str(item.get(self.id_field, "")) == key:
                return item
        return None

    @on(DataTable.RowHighlighted)
    def near_end(self, event: DataTable.RowHighlighted) -> None:
        if (
            self.next_cursor
            and event.cursor_row >= len(self.items) - LOAD_MORE_WITHIN
            and self.wanted <= len(self.items)
        ):
            self.wanted = len(self.items) + PAGE_SIZE
            self.resonate.refresh_now()

    @on(DataTable.RowSelected)
    def row_chosen(self, event: DataTable.RowSelected) -> None:
        item = self.selected()
        if item is not None:
            self.open_detail(item)

    def action_copy(self) -> None:
        self.resonate.copy_object(self.kind, self.selected())

    # --- filter -------------------------------------------------------------------------------

    def action_filter(self) -> None:
        if self.filters:
            self.query_one(f"#filter-{self.filters[0].name}").focus()

    def action_leave_filter(self) -> None:
        if self.app.focused is not self.table:
            self.table.focus()

    def filter_values(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for field in self.filters:
            widget = self.query_one(f"#filter-{field.name}")
            if isinstance(widget, Select):
                value = widget.value
                values[field.name] = "" if value is Select.NULL else str(value)
            elif isinstance(widget, Input):
                values[field.name] = widget.value.strip()
        return values

    def apply_filter(self) -> None:
        try:
            where = self.parse_filter(self.filter_values())
        except ValueError as error:
            self.notify(str(error), title="Filter", severity="error")
            return
        if where == self.where:
            return
        self.where = where
        self.wanted = PAGE_SIZE
        self.items = []
        self.table.show_rows([], self.resonate.clock())
        self.resonate.refresh_now()

    @on(Input.Submitted, "#filters Input")
    def filter_submitted(self) -> None:
        self.apply_filter()
        self.table.focus()

    @on(Select.Changed, "#filters Select")
    def filter_chosen(self) -> None:
        self.apply_filter()


def split_pairs(text: str) -> dict[str, str]:
    """`k=v k2=v2` (or comma-separated) into a dict; ValueError names the bad pair."""
    from resonate.cli.arguments import parse_key_values

    pairs = [part for part in text.replace(",", " ").split() if part]
    try:
        return parse_key_values(pairs)
    except ValueError as error:
        raise ValueError(f"tags: {error}") from None


def pattern_of(text: str) -> str:
    return text or "*"


def column_texts(values: Sequence[Any]) -> list[str]:
    return ["" if value is None else str(value) for value in values]
