"""The bottom line of every screen: refresh state, the last good refresh and its age, and the
error of the last attempt when the server is unreachable or refuses (401/5xx)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.widgets import Static

if TYPE_CHECKING:
    from resonate.tui.app import ResonateApp


def age_text(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s ago"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s ago"
    return f"{minutes // 60}h{minutes % 60:02d}m ago"


class StatusBar(Static):
    DEFAULT_CSS = """
    StatusBar { height: 1; background: $panel; }
    StatusBar.-error { background: $error 40%; }
    """

    def on_mount(self) -> None:
        self.show_state()

    def show_state(self) -> None:
        app: ResonateApp = self.app  # type: ignore[assignment]
        connection = app.connection
        now = app.clock()
        line = Text(no_wrap=True, overflow="ellipsis")
        if connection.error is not None:
            line.append(" ✖ ", style="bold red")
            line.append(connection.error)
            retry = connection.retry_in(app.monotonic())
            if retry is not None and not app.paused:
                line.append(f" · retrying in {retry:.0f}s", style="bold")
            if connection.last_ok_at is not None:
                line.append(f" · data from {age_text(now - connection.last_ok_at)}", style="dim")
            self.add_class("-error")
        else:
            self.remove_class("-error")
            if app.paused:
                line.append(" ⏸ paused", style="bold yellow")
            else:
                line.append(" ● live", style="bold green")
            line.append(f" · every {app.refresh_seconds:g}s")
            if connection.last_ok_at is None:
                line.append(" · connecting…", style="dim")
            else:
                line.append(f" · refreshed {age_text(now - connection.last_ok_at)}")
        if app.read_only:
            line.append("  READ-ONLY", style="bold reverse yellow")
        self.update(line)
