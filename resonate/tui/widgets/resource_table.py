"""A DataTable of API objects keyed by id, updated in place on every refresh.

When the rows are the same ids in the same order, only the cells that changed are rewritten.
When ids come or go, the table is rebuilt in one go and the cursor is put back on the object it
was on (or the same position when that object is gone) with the scroll offset kept, so a live
refresh never makes the selection jump. Rows that are new since the previous refresh are
highlighted for a few seconds.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.cells import cell_len
from rich.text import Text
from textual.binding import Binding
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey, RowDoesNotExist

NEW_ROW_SECONDS = 4.0
NEW_ROW_STYLE = "bold on dark_green"

Cells = Sequence[str | Text]


class ResourceTable(DataTable[str | Text]):
    BINDINGS = [
        Binding("end,G", "scroll_bottom", "Last row", show=False),
        Binding("home,g", "scroll_top", "First row", show=False),
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
    ]
    DEFAULT_CSS = """
    ResourceTable { height: 1fr; }
    ResourceTable.-stale { opacity: 60%; text-style: dim; }
    """

    def __init__(self, columns: Sequence[str], *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.column_names = tuple(columns)
        self.keys: list[str] = []
        self._cells: dict[str, tuple[str | Text, ...]] = {}
        self._new_until: dict[str, float] = {}
        self._seen_once = False

    def on_mount(self) -> None:
        for name in self.column_names:
            self.add_column(name, key=name)

    @property
    def selected_key(self) -> str | None:
        if not self.keys or self.cursor_row < 0 or self.cursor_row >= len(self.keys):
            return None
        return self.keys[self.cursor_row]

    def show_rows(self, rows: Sequence[tuple[str, Cells]], now: float) -> None:
        """Show `rows` (key, cells) in order; `now` (seconds) times the new-row highlight."""
        keys = [key for key, _ in rows]
        if self._seen_once:
            # New inside the range already shown: new objects. Rows past it came by paging.
            for key in keys[: len(self.keys)]:
                if key not in self._cells:
                    self._new_until[key] = now + NEW_ROW_SECONDS
        self._seen_once = True
        self._new_until = {key: until for key, until in self._new_until.items() if until > now}
        styled = [(key, self._style(key, cells, now)) for key, cells in rows]
        if keys == self.keys:
            self._update_cells(styled)
        else:
            self._rebuild(styled)

    def remeasure(self) -> None:
        """Forget how wide the columns grew: the next `show_rows` rebuilds the table and sizes
        every column to its cells again (for cells cut to fit the width, after a resize)."""
        for column in self.columns.values():
            column.content_width = cell_len(column.label.plain)
        self.keys = []

    def _style(self, key: str, cells: Cells, now: float) -> tuple[str | Text, ...]:
        if key not in self._new_until:
            return tuple(cells)
        return tuple(
            Text(cell.plain if isinstance(cell, Text) else cell, style=NEW_ROW_STYLE)
            for cell in cells
        )

    def _update_cells(self, rows: Sequence[tuple[str, tuple[str | Text, ...]]]) -> None:
        for key, cells in rows:
            before = self._cells.get(key)
            if before == cells:
                continue
            for index, (name, cell) in enumerate(zip(self.column_names, cells, strict=True)):
                if before is None or before[index] != cell:
                    self.update_cell(key, name, cell, update_width=self._widens(name, cell))
            self._cells[key] = cells

    def _widens(self, name: str, cell: str | Text) -> bool:
        """Whether `cell` is wider than its column. Only then is the column re-measured:
        Textual re-measures every cell of the column on each narrower update, which made a
        second of countdowns over a few hundred rows freeze the screen."""
        width = cell.cell_len if isinstance(cell, Text) else cell_len(cell)
        return width > self.columns[ColumnKey(name)].content_width

    def _rebuild(self, rows: Sequence[tuple[str, tuple[str | Text, ...]]]) -> None:
        selected = self.selected_key
        position = self.cursor_row
        scroll_y = self.scroll_y
        with self.app.batch_update():
            self.clear(columns=False)
            self.keys = []
            self._cells = {}
            for key, cells in rows:
                self.add_row(*cells, key=key)
                self.keys.append(key)
                self._cells[key] = cells
            if self.keys:
                try:
                    target = self.get_row_index(selected) if selected is not None else position
                except RowDoesNotExist:
                    target = min(max(position, 0), len(self.keys) - 1)
                self.move_cursor(row=target, animate=False, scroll=False)
                self.scroll_to(y=scroll_y, animate=False, immediate=True)
                if not self.is_valid_row_index(self.cursor_row):
                    self.move_cursor(row=0, animate=False)
