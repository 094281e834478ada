"""The dashboard shows the 2026-04-01 protocol (protocol-2026.md §0 P10): its tasks in the tasks
view (PROTO `2026`, states in capitals) and their detail, the 2026 task of a promise in the
promise detail, and a 2026 workflow's call tree. Driven with the pilot against a real server on
both stores; the workflow is built with envelopes (tests/cli/test_protocol_2026_cli.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from textual.widgets import DataTable, Input, Select

from resonate.tui.screens.promise_detail import PromiseDetailScreen
from resonate.tui.screens.tasks import TaskDetailScreen, TasksScreen
from resonate.tui.widgets.dialogs import ConfirmDialog
from tests.cli.test_protocol_2026_cli import Envelopes, build_workflow
from tests.support.servers import ServerProcess
from tests.support.tui import dashboard, screen_text, tree_ids, until


@pytest.fixture
def workflow(server: ServerProcess, uid: str) -> Iterator[str]:
    with httpx.Client(base_url=server.url, timeout=30) as http:
        yield build_workflow(Envelopes(http), uid)


def ids(screen: TasksScreen) -> list[str]:
    return [str(task["id"]) for task in screen.items]


async def test_tasks_view_lists_2026_tasks_and_their_detail(
    server: ServerProcess, workflow: str, uid: str
) -> None:
    root = workflow
    async with dashboard(server, size=(80, 24)) as (app, pilot):
        await pilot.press("3")
        screen = await until(pilot, lambda: isinstance(app.screen, TasksScreen) and app.screen, "3")
        root_filter = screen.query_one("#filter-root", Input)
        root_filter.value = root
        root_filter.focus()
        await pilot.press("enter")
        await until(pilot, lambda: ids(screen) == [root, f"{root}:1"], "the 2026 tasks")
        table = screen.query_one(DataTable)
        cells = [[getattr(c, "plain", c) for c in table.get_row_at(i)] for i in range(2)]
        assert cells[0][:4] == [root, "ACQUIRED", "2026", "1"]
        assert cells[0][5] == f"{uid}-worker"
        assert cells[1][:4] == [f"{root}:1", "ACQUIRED", "2026", "1"]

        # The protocol filter: REST only hides them, 2026 only shows them.
        protocol: Select[Any] = screen.query_one("#filter-protocol", Select)
        protocol.value = "rest"
        await until(pilot, lambda: screen.loaded_once and ids(screen) == [], "no REST task")
        protocol.value = "2026"
        await until(pilot, lambda: ids(screen) == [root, f"{root}:1"], "2026 tasks again")

        table.focus()
        table.move_cursor(row=0)
        await pilot.press("enter")
        detail = await until(
            pilot, lambda: isinstance(app.screen, TaskDetailScreen) and app.screen, "the detail"
        )
        await until(pilot, lambda: "held by" in screen_text(app), "the 2026 rows")
        text = screen_text(app)
        assert "version 1" in text and f"{uid}-worker (lease ttl 3600000 ms)" in text
        assert "resumes" in text and "2026-04-01" in text
        # Dropping is a REST verb: no confirmation, a note instead.
        await pilot.press("d")
        await pilot.pause(0.2)
        assert app.screen is detail and not isinstance(app.screen, ConfirmDialog)


async def test_promise_detail_shows_the_2026_task_and_the_call_tree(
    server: ServerProcess, workflow: str, uid: str
) -> None:
    root = workflow
    async with dashboard(server) as (app, pilot):
        app.push_screen(PromiseDetailScreen(f"{root}:1:1"))
        await until(
            pilot,
            lambda: isinstance(app.screen, PromiseDetailScreen) and app.screen.detail,
            "the leaf's detail",
        )
        assert tree_ids(app) == [
            (0, root),
            (1, f"{root}:1"),
            (2, f"{root}:1:1"),
            (1, f"{root}:2"),
            (1, f"{root}:3"),
        ]
        text = screen_text(app)
        assert "(rpc remote)" in text and "(sleep)" in text and "(run fetch)" in text

        app.push_screen(PromiseDetailScreen(f"{root}:1"))
        await until(
            pilot,
            lambda: (
                isinstance(app.screen, PromiseDetailScreen)
                and app.screen.promise_id == f"{root}:1"
                and app.screen.detail
            ),
            "the remote child's detail",
        )
        assert [task["id"] for task in app.screen.detail.tasks] == [f"{root}:1"]
        text = screen_text(app)
        assert "ACQUIRED  version 1  2026" in text and f"{uid}-remote" in text


async def test_overview_counts_2026_tasks(server: ServerProcess, workflow: str) -> None:
    """GET /stats' tasks2026: the overview's tasks panel adds them, by (upper-case) state."""
    async with dashboard(server, size=(120, 40)) as (app, pilot):

        def shown() -> str:
            return screen_text(app)

        text = await until(pilot, lambda: "2026 tasks" in shown() and shown(), "2026 counts")
        assert "ACQUIRED" in text
