"""What every live screen shares: the header, the status bar and the footer around its body,
and the two halves of a refresh. The app runs `fetch` in a worker (never on the UI thread, one at
a time) and hands the result to `show` on the UI thread; `set_stale` greys the data while the
server cannot be read."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer

from resonate.tui.widgets.command_line import CommandLine
from resonate.tui.widgets.server_header import ServerHeader
from resonate.tui.widgets.status_bar import StatusBar

if TYPE_CHECKING:
    from resonate.tui.app import ResonateApp
    from resonate.tui.data import DataSource


class LiveScreen(Screen[None]):
    view_name = "overview"

    @property
    def resonate(self) -> ResonateApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield ServerHeader(self.view_name)
        yield from self.compose_body()
        yield CommandLine()
        yield StatusBar()
        # ctrl+p (the palette) is listed by `?`; the footer's room goes to the view's keys.
        yield Footer(show_command_palette=False)

    def compose_body(self) -> ComposeResult:
        yield from ()

    async def fetch(self, data: DataSource) -> Any:
        """Read what the screen shows (runs in a worker; raise DataError on failure)."""
        return None

    def show(self, payload: Any) -> None:
        """Show what `fetch` returned (UI thread)."""

    def show_status(self) -> None:
        """The server status just changed (`app.connection.status`), before `show`."""

    def set_stale(self, stale: bool) -> None:
        self.set_class(stale, "-stale")

    def show_connection(self) -> None:
        for header in self.query(ServerHeader):
            header.show_facts()
        for bar in self.query(StatusBar):
            bar.show_state()

    def on_screen_resume(self) -> None:
        self.show_connection()
        self.resonate.refresh_now()
