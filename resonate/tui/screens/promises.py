"""`2`: promises, searched by id pattern, state and tags; `enter` opens a promise's detail."""

from __future__ import annotations

from typing import Any, ClassVar

from textual.binding import Binding, BindingType

from resonate.tui import actions
from resonate.tui.data import DataSource, Page, PromiseFilter
from resonate.tui.formatting import relative, tags_summary
from resonate.tui.screens.resources import (
    FilterField,
    JsonObject,
    ResourceListScreen,
    pattern_of,
    split_pairs,
    state_text,
)
from resonate.tui.widgets.resource_table import Cells

PROMISE_BINDINGS: list[BindingType] = [
    Binding("R", "resolve", "Resolve"),
    Binding("J", "reject", "Reject"),
    Binding("C", "cancel", "Cancel"),
]


class PromiseActions:
    """Resolve / reject / cancel on whatever promise the screen has selected."""

    def selected_promise(self) -> JsonObject | None:
        raise NotImplementedError

    def _complete(self, verb: str) -> None:
        app: Any = self.app  # type: ignore[attr-defined]
        actions.start(app, actions.complete_promise(app, self.selected_promise(), verb))

    def action_resolve(self) -> None:
        self._complete("resolve")

    def action_reject(self) -> None:
        self._complete("reject")

    def action_cancel(self) -> None:
        self._complete("cancel")


class PromisesScreen(PromiseActions, ResourceListScreen):
    BINDINGS: ClassVar[list[BindingType]] = PROMISE_BINDINGS
    view_name = "promises"
    kind = "promise"
    columns = ("ID", "STATE", "TIMEOUT", "CREATED", "TAGS")
    filters = (
        FilterField("pattern", "id pattern (* wildcard)  [/]"),
        FilterField("state", "any state", ("pending", "resolved", "rejected")),
        FilterField("tags", "tags k=v …"),
    )

    def parse_filter(self, values: dict[str, str]) -> PromiseFilter:
        return PromiseFilter(
            pattern=pattern_of(values.get("pattern", "")),
            state=values.get("state") or None,
            tags=split_pairs(values.get("tags", "")),
        )

    async def page(
        self, data: DataSource, where: PromiseFilter, cursor: str | None, limit: int
    ) -> Page:
        return await data.promises(where, cursor, limit)

    def cells(self, item: JsonObject, now: int) -> Cells:
        return (
            str(item.get("id", "")),
            state_text(item.get("state")),
            relative(item.get("timeout"), now),
            relative(item.get("createdOn"), now),
            tags_summary(item.get("tags")),
        )

    def open_detail(self, item: JsonObject) -> None:
        from resonate.tui.screens.promise_detail import PromiseDetailScreen

        self.app.push_screen(PromiseDetailScreen(str(item["id"])))

    def selected_promise(self) -> JsonObject | None:
        return self.selected()
