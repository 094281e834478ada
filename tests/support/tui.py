"""Helpers for the dashboard's tests: an app on a real server, and waiting on its state."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from textual.pilot import Pilot

from resonate.client import Credentials
from resonate.tui.app import ResonateApp
from resonate.tui.data import DataSource
from tests.support.servers import ServerProcess

WAIT_SECONDS = 15.0


async def until(pilot: Pilot[Any], condition: Callable[[], Any], what: str) -> Any:
    """Let the app run until `condition()` is truthy (deadline, never a fixed sleep)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.05)


@asynccontextmanager
async def dashboard(
    server: ServerProcess,
    *,
    size: tuple[int, int] = (120, 40),
    read_only: bool = False,
    refresh_seconds: float = 0.5,
    credentials: Credentials | None = None,
) -> AsyncIterator[tuple[ResonateApp, Pilot[Any]]]:
    data = DataSource(server.url, credentials, server.metrics_url + "/metrics")
    app = ResonateApp(data, refresh_seconds=refresh_seconds, read_only=read_only)
    async with app.run_test(size=size) as pilot:
        await until(pilot, lambda: app.refresh_count > 0, "the first refresh")
        yield app, pilot


def screen_text(app: ResonateApp) -> str:
    """Everything the current screen shows, as plain text (for assertions)."""
    from textual.widgets import DataTable, Static, Tree

    parts: list[str] = []
    for widget in app.screen.query("*"):
        if isinstance(widget, DataTable):
            for row in range(widget.row_count):
                parts.append(" ".join(_plain(cell) for cell in widget.get_row_at(row)))
        elif isinstance(widget, Tree):
            parts.extend(_plain(node.label) for node in _tree_nodes(widget))
        elif isinstance(widget, Static):
            parts.append(_render_plain(widget))
    return "\n".join(parts)


def _plain(value: Any) -> str:
    return value.plain if hasattr(value, "plain") else str(value)


def _render_plain(widget: Any) -> str:
    from io import StringIO

    from rich.console import Console

    content = widget.content
    if isinstance(content, str):
        from rich.text import Text

        content = Text.from_markup(content)
    console = Console(file=StringIO(), width=200, color_system=None)
    console.print(content)
    return console.file.getvalue()  # type: ignore[attr-defined]


def _tree_nodes(tree: Any) -> list[Any]:
    nodes: list[Any] = []
    stack = [tree.root]
    while stack:
        node = stack.pop()
        nodes.append(node)
        stack.extend(reversed(node.children))
    return nodes


def tree_ids(app: ResonateApp) -> list[tuple[int, str]]:
    """(depth, promise id) of every node of the detail view's call tree, in order."""
    from textual.widgets import Tree

    tree = app.screen.query_one("#calltree", Tree)
    out: list[tuple[int, str]] = []

    def walk(node: Any, depth: int) -> None:
        out.append((depth, node.data))
        for child in node.children:
            walk(child, depth + 1)

    walk(tree.root, 0)
    return out
