"""`4`: schedules with their cron in words and next run; a schedule's detail with the next five
runs in its time zone and in UTC; `d` deletes, `n` opens the new-schedule form."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType

from resonate.tui import actions
from resonate.tui.data import DataSource, Page, ScheduleFilter
from resonate.tui.formatting import absolute, cron_in_words, next_runs, relative
from resonate.tui.screens.detail import ObjectDetailScreen
from resonate.tui.screens.resources import (
    FilterField,
    JsonObject,
    ResourceListScreen,
    pattern_of,
    split_pairs,
)
from resonate.tui.widgets.detail_pane import Row
from resonate.tui.widgets.resource_table import Cells

SCHEDULE_TIMES = ("nextRunTime", "lastRunTime", "createdOn")


class ScheduleActions:
    def selected_schedule(self) -> JsonObject | None:
        raise NotImplementedError

    def action_delete_schedule(self) -> None:
        app: Any = self.app  # type: ignore[attr-defined]
        actions.start(app, actions.delete_schedule(app, self.selected_schedule()))

    def action_new_schedule(self) -> None:
        app: Any = self.app  # type: ignore[attr-defined]
        actions.start(app, actions.new_schedule(app))


SCHEDULE_BINDINGS: list[BindingType] = [
    Binding("d", "delete_schedule", "Delete"),
    Binding("n", "new_schedule", "New"),
]


class SchedulesScreen(ScheduleActions, ResourceListScreen):
    BINDINGS: ClassVar[list[BindingType]] = SCHEDULE_BINDINGS
    view_name = "schedules"
    kind = "schedule"
    columns = ("ID", "CRON", "IN WORDS", "NEXT RUN", "LAST RUN", "PROMISE ID")
    filters = (
        FilterField("pattern", "id pattern (* wildcard)  [/]"),
        FilterField("tags", "tags k=v …"),
    )

    def parse_filter(self, values: dict[str, str]) -> ScheduleFilter:
        return ScheduleFilter(
            pattern=pattern_of(values.get("pattern", "")), tags=split_pairs(values.get("tags", ""))
        )

    async def page(
        self, data: DataSource, where: ScheduleFilter, cursor: str | None, limit: int
    ) -> Page:
        return await data.schedules(where, cursor, limit)

    def cells(self, item: JsonObject, now: int) -> Cells:
        next_run = item.get("nextRunTime")
        late = isinstance(next_run, int) and next_run < now
        return (
            str(item.get("id", "")),
            str(item.get("cron", "")),
            cron_in_words(str(item.get("cron", ""))),
            Text(relative(next_run, now), style="bold red" if late else ""),
            relative(item.get("lastRunTime"), now),
            str(item.get("promiseId", "")),
        )

    def open_detail(self, item: JsonObject) -> None:
        self.app.push_screen(ScheduleDetailScreen(str(item["id"]), item))

    def selected_schedule(self) -> JsonObject | None:
        return self.selected()


class ScheduleDetailScreen(ScheduleActions, ObjectDetailScreen):
    BINDINGS: ClassVar[list[BindingType]] = SCHEDULE_BINDINGS
    view_name = "schedules"
    kind = "schedule"
    time_fields = SCHEDULE_TIMES
    value_field = "promiseParam"

    async def read(self, data: DataSource) -> JsonObject:
        return await data.schedule(self.object_id)

    def extra_rows(self, document: JsonObject, now: int) -> list[Row]:
        zone = str(document.get("timezone") or "UTC")
        words = cron_in_words(str(document.get("cron", "")))
        if zone != "UTC" and zone not in words:
            words += f" ({zone})"
        rows: list[Row] = [("in words", words)]
        for index, run in enumerate(next_runs(document)):
            when = absolute(run, zone)
            if zone != "UTC":
                when += f"  =  {absolute(run)}"
            rows.append((f"run {index + 1}", f"{when}  ({relative(run, now)})"))
        return rows

    def selected_schedule(self) -> JsonObject | None:
        return self.document
