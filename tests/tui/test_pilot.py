"""The dashboard driven with Textual's pilot against a real `resonate serve` (both stores):
every view, filters, details, the call tree, each write action checked afterwards through the
API client, and read-only mode refusing them."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

import pytest
from textual.widgets import Input, Select, TextArea

from resonate.client import ResonateClient, encode_value
from resonate.tui.screens.detail import ObjectDetailScreen
from resonate.tui.screens.help import HelpScreen
from resonate.tui.screens.locks import LockDetailScreen, LocksScreen
from resonate.tui.screens.overview import OverviewScreen
from resonate.tui.screens.promise_detail import PromiseDetailScreen
from resonate.tui.screens.promises import PromisesScreen
from resonate.tui.screens.schedules import ScheduleDetailScreen, SchedulesScreen
from resonate.tui.screens.tasks import TaskDetailScreen, TasksScreen
from resonate.tui.widgets.dialogs import ConfirmDialog, ScheduleForm, TextViewer, ValueEditor
from tests.support.servers import ServerProcess
from tests.support.tui import dashboard, screen_text, tree_ids, until

HOUR_MS = 3_600_000


@pytest.fixture
def client(server: ServerProcess) -> Iterator[ResonateClient]:
    with ResonateClient(server.url) as api:
        yield api


@pytest.fixture
def prefix() -> str:
    return f"tui-{uuid.uuid4().hex[:8]}"


def now_ms() -> int:
    return int(time.time() * 1000)


def create(client: ResonateClient, promise_id: str, data: str | None = None, **tags: str) -> None:
    client.create_promise(promise_id, now_ms() + HOUR_MS, encode_value(data), tags or None)


async def filter_promises(pilot, app, pattern: str) -> PromisesScreen:
    await pilot.press("2")
    screen = await until(pilot, lambda: isinstance(app.screen, PromisesScreen) and app.screen, "2")
    await pilot.press("slash")
    assert isinstance(app.focused, Input)
    app.focused.value = pattern
    await pilot.press("enter")
    await until(
        pilot,
        lambda: screen.items and all(i["id"].startswith(pattern.rstrip("*")) for i in screen.items),
        f"rows matching {pattern}",
    )
    return screen


async def test_every_view_by_digit_and_by_command(server: ServerProcess) -> None:
    async with dashboard(server) as (app, pilot):
        assert isinstance(app.screen, OverviewScreen)
        for key, screen_type in (
            ("2", PromisesScreen),
            ("3", TasksScreen),
            ("4", SchedulesScreen),
            ("5", LocksScreen),
            ("1", OverviewScreen),
        ):
            await pilot.press(key)
            await until(pilot, lambda t=screen_type: isinstance(app.screen, t), f"view {key}")
            assert app.connection.error is None
        for command, screen_type in (("tasks", TasksScreen), ("lo", LocksScreen)):
            await pilot.press("colon", *command, "enter")  # letters only: keys by name
            await until(pilot, lambda t=screen_type: isinstance(app.screen, t), command)
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen), "help")
        assert "Resolve the selected promise" in screen_text(app)
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, LocksScreen), "help closed")


async def test_overview_counts_rates_and_header(server: ServerProcess, client) -> None:
    async with dashboard(server) as (app, pilot):
        status = app.connection.status
        assert status is not None and status.ready
        before = status.promises.get("PENDING", 0)
        create(client, f"tui-count-{uuid.uuid4().hex[:8]}")
        await until(
            pilot,
            lambda: app.connection.status.promises.get("PENDING", 0) > before,
            "the PENDING count to grow",
        )
        await until(pilot, lambda: app.history.values("requests"), "a rate from two scrapes")
        assert app.metrics_error is None
        text = screen_text(app)
        assert server.url in text and "ready" in text and "PENDING" in text
        assert "HTTP requests" in text and "metrics unavailable" not in text


async def test_metrics_unavailable_is_said_not_fatal(server: ServerProcess) -> None:
    from resonate.tui.app import ResonateApp
    from resonate.tui.data import DataSource
    from tests.support.servers import free_port

    data = DataSource(server.url, metrics_url=f"http://127.0.0.1:{free_port()}/metrics")
    app = ResonateApp(data, refresh_seconds=0.5)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.refresh_count > 1, "two refreshes")
        assert app.connection.error is None
        assert app.metrics_error is not None
        assert "metrics unavailable" in screen_text(app)


async def test_promises_search_filters_and_detail(server: ServerProcess, client, prefix) -> None:
    create(client, f"{prefix}-a", '{"amount": 1}', team="billing")
    create(client, f"{prefix}-b", "plain text", team="ops")
    create(client, f"{prefix}-c")
    client.complete_promise(f"{prefix}-c", "RESOLVED", encode_value(b"\x00\xff\x10"))
    client.create_callback(f"{prefix}-a", f"{prefix}-b", "poll://any@tui-cb", now_ms() + HOUR_MS)
    async with dashboard(server) as (app, pilot):
        screen = await filter_promises(pilot, app, f"{prefix}*")
        assert sorted(i["id"] for i in screen.items) == [f"{prefix}-{x}" for x in "abc"]

        screen.query_one("#filter-state", Select).value = "resolved"
        await until(pilot, lambda: [i["id"] for i in screen.items] == [f"{prefix}-c"], "state")
        screen.query_one("#filter-state", Select).value = Select.NULL
        screen.query_one("#filter-tags", Input).value = "team=ops"
        await pilot.press("slash", "tab", "tab", "enter")
        await until(pilot, lambda: [i["id"] for i in screen.items] == [f"{prefix}-b"], "tags")
        screen.query_one("#filter-tags", Input).value = ""
        await pilot.press("slash", "tab", "tab", "enter")
        await until(pilot, lambda: len(screen.items) == 3, "filter cleared")

        target = next(i for i, item in enumerate(screen.items) if item["id"] == f"{prefix}-a")
        screen.table.move_cursor(row=target)
        await pilot.press("enter")
        detail = await until(
            pilot, lambda: isinstance(app.screen, PromiseDetailScreen) and app.screen, "detail"
        )
        await until(pilot, lambda: detail.detail is not None, "the detail")
        text = screen_text(app)
        assert '"amount": 1' in text  # param decoded and pretty-printed
        assert "team=billing" in text and "createdOn" in text
        assert "resume" in text and "poll://any@tui-cb" in text  # the waiting callback
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is screen, "back to the list")

        binary = next(i for i, item in enumerate(screen.items) if item["id"] == f"{prefix}-c")
        screen.table.move_cursor(row=binary)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, PromiseDetailScreen), "detail c")
        await until(pilot, lambda: "00 ff 10" in screen_text(app), "the hex dump")


async def test_paging_loads_more_on_scroll(server: ServerProcess, client, prefix) -> None:
    for index in range(120):
        create(client, f"{prefix}-{index:03d}")
    async with dashboard(server) as (app, pilot):
        screen = await filter_promises(pilot, app, f"{prefix}*")
        await until(pilot, lambda: len(screen.items) == 50, "the first page")
        assert screen.next_cursor
        await pilot.press("end")
        await until(pilot, lambda: len(screen.items) == 100, "a second page")
        await pilot.press("end")
        await until(pilot, lambda: len(screen.items) == 120, "the last page")
        await until(pilot, lambda: screen.next_cursor is None, "no more pages")


async def test_live_refresh_keeps_the_cursor_on_the_same_promise(
    server: ServerProcess, client, prefix
) -> None:
    for index in range(5):
        create(client, f"{prefix}-{index}")
    async with dashboard(server) as (app, pilot):
        screen = await filter_promises(pilot, app, f"{prefix}*")
        await until(pilot, lambda: len(screen.items) == 5, "5 rows")
        screen.table.move_cursor(row=2)
        chosen = screen.table.selected_key
        create(client, f"{prefix}-new")  # newest first: lands above the cursor
        await until(pilot, lambda: len(screen.items) == 6, "the new row")
        assert screen.table.selected_key == chosen
        client.complete_promise(chosen, "RESOLVED")
        await until(
            pilot,
            lambda: next(i for i in screen.items if i["id"] == chosen)["state"] == "RESOLVED",
            "the state change",
        )
        assert screen.table.selected_key == chosen


async def test_call_tree_of_a_promise_tree_built_through_the_api(
    server: ServerProcess, client, prefix
) -> None:
    root = f"{prefix}-root"
    create(client, root)
    for child in ("x", "y"):
        create(
            client,
            f"{root}.{child}",
            json.dumps({"func": f"step_{child}"}),
            **{"resonate:root": root, "resonate:parent": root, "resonate:scope": "local"},
        )
    create(
        client,
        f"{root}.x.1",
        None,
        **{"resonate:root": root, "resonate:parent": f"{root}.x", "resonate:timeout": "true"},
    )
    async with dashboard(server) as (app, pilot):
        app.push_screen(PromiseDetailScreen(f"{root}.x.1"))
        detail = await until(
            pilot,
            lambda: (
                isinstance(app.screen, PromiseDetailScreen) and app.screen.detail and app.screen
            ),
            "the leaf's detail",
        )
        assert tree_ids(app) == [(0, root), (1, f"{root}.x"), (2, f"{root}.x.1"), (1, f"{root}.y")]
        text = screen_text(app)
        assert "(run step_x)" in text and "(sleep)" in text
        # enter on a node opens that promise
        from textual.widgets import Tree

        tree = detail.query_one("#calltree", Tree)
        tree.focus()
        tree.move_cursor(tree.root.children[1])
        await pilot.press("enter")
        await until(
            pilot,
            lambda: (
                isinstance(app.screen, PromiseDetailScreen) and app.screen.promise_id == f"{root}.y"
            ),
            "the node's detail",
        )


@pytest.mark.parametrize(
    ("key", "state"), [("R", "RESOLVED"), ("J", "REJECTED"), ("C", "REJECTED_CANCELED")]
)
async def test_complete_a_promise_from_the_table(
    server: ServerProcess, client, prefix, key: str, state: str
) -> None:
    promise_id = f"{prefix}-done"
    create(client, promise_id)
    async with dashboard(server) as (app, pilot):
        screen = await filter_promises(pilot, app, f"{prefix}*")
        await pilot.press(key)
        editor = await until(
            pilot, lambda: isinstance(app.screen, ValueEditor) and app.screen, "the editor"
        )
        editor.query_one(TextArea).text = "{not json"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: "invalid JSON" in screen_text(app), "the JSON check")
        editor.query_one(TextArea).text = '{"by": "tui"}'
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the confirmation")
        await pilot.press("y")
        await until(
            pilot,
            lambda: any(i["state"] == state for i in screen.items),
            "the table to show the new state",
        )
    promise = client.get_promise(promise_id).body
    assert promise["state"] == state
    assert json.loads(__import__("base64").b64decode(promise["value"]["data"])) == {"by": "tui"}


async def test_a_declined_confirmation_changes_nothing(server, client, prefix) -> None:
    promise_id = f"{prefix}-keep"
    create(client, promise_id)
    async with dashboard(server) as (app, pilot):
        await filter_promises(pilot, app, f"{prefix}*")
        await pilot.press("C")
        await until(pilot, lambda: isinstance(app.screen, ValueEditor), "the editor")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the confirmation")
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, PromisesScreen), "back")
    assert client.get_promise(promise_id).body["state"] == "PENDING"


async def test_read_only_hides_and_refuses_writes(server, client, prefix) -> None:
    promise_id = f"{prefix}-ro"
    create(client, promise_id)
    async with dashboard(server, read_only=True) as (app, pilot):
        screen = await filter_promises(pilot, app, f"{prefix}*")
        for key in ("R", "J", "C"):
            await pilot.press(key)
            await pilot.pause(0.1)
            assert app.screen is screen, f"{key} opened a dialog in read-only mode"
        assert app.check_action("resolve", ()) is False
        from resonate.tui import actions

        await actions.complete_promise(app, screen.selected(), "resolve")  # the palette path
        assert "READ-ONLY" in screen_text(app)
        from resonate.tui.app import palette_actions

        assert not [a for a in palette_actions(screen, True) if a[1] in ("resolve", "cancel")]
        assert [a for a in palette_actions(screen, False) if a[1] == "resolve"]
    assert client.get_promise(promise_id).body["state"] == "PENDING"


def make_claimed_task(client: ResonateClient, promise_id: str, ttl_ms: int) -> dict:
    client.create_promise(
        promise_id,
        now_ms() + HOUR_MS,
        encode_value(json.dumps({"func": "f"})),
        {"resonate:invoke": "poll://any@tui-nobody"},
    )
    task = next(iter(client.iter_tasks(root_promise_id=promise_id)))
    claimed = client.claim_task(task["id"], task["counter"], "tui-proc", ttl_ms).body
    assert claimed
    return client.get_task(task["id"]).body


async def test_tasks_view_detail_and_drop(server, client, prefix) -> None:
    task = make_claimed_task(client, f"{prefix}-job", ttl_ms=60_000)
    async with dashboard(server) as (app, pilot):
        await pilot.press("3")
        screen = await until(pilot, lambda: isinstance(app.screen, TasksScreen) and app.screen, "3")
        screen.query_one("#filter-root", Input).value = f"{prefix}-job"
        await pilot.press("slash", "tab", "tab", "tab", "enter")
        await until(pilot, lambda: [t["id"] for t in screen.items] == [task["id"]], "the task")
        row = screen_text(app)
        assert "CLAIMED" in row and "tui-proc" in row and "poll" in row
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, TaskDetailScreen), "task detail")
        await until(pilot, lambda: "lease ends in" in screen_text(app), "the countdown")
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the confirmation")
        await pilot.press("y")
        await until(
            pilot,
            lambda: client.get_task(task["id"]).body["counter"] > task["counter"],
            "the drop (re-issued with the next counter)",
        )
    assert client.get_task(task["id"]).body["state"] != "CLAIMED"


async def test_schedules_create_from_the_form_show_and_delete(server, client, prefix) -> None:
    schedule_id = f"{prefix}-sched"
    async with dashboard(server) as (app, pilot):
        await pilot.press("4")
        screen = await until(
            pilot, lambda: isinstance(app.screen, SchedulesScreen) and app.screen, "4"
        )
        await pilot.press("n")
        form = await until(pilot, lambda: isinstance(app.screen, ScheduleForm) and app.screen, "n")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: "is required" in screen_text(app), "the required check")
        values = {
            "id": schedule_id,
            "cron": "*/5 * * * *",
            "promise_id": f"{schedule_id}.{{{{.timestamp}}}}",
            "promise_timeout": "1m",
            "timezone": "Europe/Paris",
            "promise_tags": "team=ops",
            "promise_data": '{"func": "report"}',
        }
        for name, value in values.items():
            form.query_one(f"#field-{name}", Input).value = value
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the confirmation")
        await pilot.press("y")
        await until(pilot, lambda: any(s["id"] == schedule_id for s in screen.items), "the row")
        created = client.get_schedule(schedule_id).body
        assert created["cron"] == "*/5 * * * *" and created["timezone"] == "Europe/Paris"
        assert created["promiseTags"] == {"team": "ops"}
        assert "every 5 minutes" in screen_text(app)

        screen.table.move_cursor(
            row=next(i for i, s in enumerate(screen.items) if s["id"] == schedule_id)
        )
        await pilot.press("enter")
        detail = await until(
            pilot, lambda: isinstance(app.screen, ScheduleDetailScreen) and app.screen, "detail"
        )
        text = screen_text(app)
        assert "run 5" in text and "Europe/Paris" in text and "UTC" in text
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the confirmation")
        await pilot.press("y")
        await until(pilot, lambda: "gone (404)" in screen_text(app), "the detail to say gone")
        assert isinstance(detail, ObjectDetailScreen)
    from resonate.client import ApiError

    with pytest.raises(ApiError) as missing:
        client.get_schedule(schedule_id)
    assert missing.value.status == 404


async def test_locks_view_release_and_copy(server, client, prefix) -> None:
    resource = f"{prefix}-res"
    client.acquire_lock(resource, "exec-1", "proc-1", 600_000)
    async with dashboard(server) as (app, pilot):
        await pilot.press("5")
        screen = await until(pilot, lambda: isinstance(app.screen, LocksScreen) and app.screen, "5")
        await pilot.press("slash")
        app.focused.value = f"{prefix}*"
        await pilot.press("enter")
        await until(pilot, lambda: [x["resourceId"] for x in screen.items] == [resource], "lock")
        await pilot.press("y")
        await until(pilot, lambda: isinstance(app.screen, TextViewer), "the JSON viewer")
        assert json.loads(app.clipboard)["resourceId"] == resource
        await pilot.press("escape")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, LockDetailScreen), "lock detail")
        assert "expires in" in screen_text(app)
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the confirmation")
        await pilot.press("y")
        await until(pilot, lambda: "gone (404)" in screen_text(app), "released")
    assert list(client.iter_locks(resource)) == []


async def test_pause_and_refresh_interval(server: ServerProcess) -> None:
    async with dashboard(server, refresh_seconds=2.0) as (app, pilot):
        await pilot.press("minus")
        assert app.refresh_seconds == 5.0
        await pilot.press("plus", "plus", "plus")
        assert app.refresh_seconds == 0.5
        await pilot.press("p")
        assert app.paused and "paused" in screen_text(app)
        count = app.refresh_count
        await pilot.pause(1.2)
        assert app.refresh_count == count
        await pilot.press("p")
        await until(pilot, lambda: app.refresh_count > count, "refresh after resume")
