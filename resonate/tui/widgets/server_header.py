"""The top line of every screen: the views (the current one lit) and the server's facts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.widgets import Static

from resonate.tui.formatting import format_relative

if TYPE_CHECKING:
    from resonate.tui.app import ResonateApp

WIDE_COLUMNS = 110  # below this, the other views show as their digit only
VIEWS = (("1", "overview"), ("2", "promises"), ("3", "tasks"), ("4", "schedules"), ("5", "locks"))


class ServerHeader(Static):
    DEFAULT_CSS = """
    ServerHeader { height: 1; background: $panel; color: $foreground; }
    """

    def __init__(self, current: str) -> None:
        super().__init__()
        self.current = current

    def on_mount(self) -> None:
        self.show_facts()

    def on_resize(self) -> None:
        self.show_facts()

    def show_facts(self) -> None:
        app: ResonateApp = self.app  # type: ignore[assignment]
        connection = app.connection
        line = Text(no_wrap=True, overflow="ellipsis")
        line.append(" resonate ", style="bold reverse")
        narrow = self.app.size.width < WIDE_COLUMNS
        for key, name in VIEWS:
            line.append(" ")
            if name == self.current:
                line.append(f"{key} {name}", style="bold reverse cyan")
            else:
                line.append(key if narrow else f"{key} {name}", style="dim")
        line.append("  ")
        line.append(app.data.server_url, style="bold")
        status = connection.status
        if status is not None:
            line.append(f"  v{status.version} {status.store}", style="dim")
            if connection.error is None:
                ready = ("● ready", "green") if status.ready else ("● not ready", "yellow")
                line.append(f"  {ready[0]}", style=ready[1])
            uptime = max(0, status.server_time - status.started_at)
            line.append(f"  up {format_relative(uptime).removesuffix(' ago').removeprefix('in ')}")
        if connection.error is not None:
            line.append("  ● unreachable", style="bold red")
        self.update(line)
