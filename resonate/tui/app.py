"""The dashboard's App: views, keys, the refresh loop and the connection state.

Views are Textual *modes* (`1`–`5`, or `:name`), each with its own stack, so a detail opened
from the promises view is still there after a look at the tasks, and `esc` goes back. One
refresh cycle at a time reads the server's status, a metrics scrape and what the current screen
shows, in a worker; a tick that comes while a cycle is in flight is skipped, so a slow server
never stacks requests. When the server cannot be read the screens keep their data, greyed, the
status bar says why, and the next attempt backs off (2 s, 4 s, … 30 s) until it answers again.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from textual import on
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import Screen

from resonate.tui.data import DataError, DataSource, ServerStatus
from resonate.tui.metrics import RateHistory
from resonate.tui.screens.base import LiveScreen
from resonate.tui.screens.help import KEYMAP, HelpScreen
from resonate.tui.screens.locks import LocksScreen
from resonate.tui.screens.overview import OverviewScreen
from resonate.tui.screens.promises import PromisesScreen
from resonate.tui.screens.schedules import SchedulesScreen
from resonate.tui.screens.tasks import TasksScreen
from resonate.tui.widgets.command_line import CommandLine
from resonate.tui.widgets.dialogs import TextViewer

REFRESH_STEPS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
MAX_BACKOFF_SECONDS = 30.0
TICK_SECONDS = 0.25
# Actions that change the server; refused and hidden in read-only mode.
WRITE_ACTIONS = frozenset(
    {"resolve", "reject", "cancel", "drop_task", "delete_schedule", "release_lock", "new_schedule"}
)


@dataclass(slots=True)
class Connection:
    """What the header and status bar say about the server."""

    status: ServerStatus | None = None
    error: str | None = None
    last_ok_at: float | None = None  # wall-clock seconds of the last good refresh
    failures: int = 0
    retry_at: float | None = None  # monotonic seconds of the next attempt after a failure

    def retry_in(self, now: float) -> float | None:
        return None if self.retry_at is None else max(0.0, self.retry_at - now)


class ResonateApp(App[None]):
    CSS_PATH = Path(__file__).with_name("styles.tcss")
    TITLE = "resonate"
    ENABLE_COMMAND_PALETTE = True
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]
    MODES: ClassVar[dict[str, str | Callable[[], Screen[Any]]]] = {
        "overview": OverviewScreen,
        "promises": PromisesScreen,
        "tasks": TasksScreen,
        "schedules": SchedulesScreen,
        "locks": LocksScreen,
    }
    DEFAULT_MODE = "overview"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("1", "view('overview')", "Overview", show=False),
        Binding("2", "view('promises')", "Promises", show=False),
        Binding("3", "view('tasks')", "Tasks", show=False),
        Binding("4", "view('schedules')", "Schedules", show=False),
        Binding("5", "view('locks')", "Locks", show=False),
        Binding("colon", "command_line", ":cmd", show=False),
        Binding("p", "pause", "Pause"),
        Binding("plus,equals_sign", "faster", "Faster", show=False),
        Binding("minus", "slower", "Slower", show=False),
        Binding("question_mark", "help", "Help"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(
        self,
        data: DataSource,
        *,
        refresh_seconds: float = 2.0,
        read_only: bool = False,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.data = data
        self.refresh_seconds = refresh_seconds
        self.read_only = read_only
        self.clock = clock
        self.monotonic = monotonic
        self.paused = False
        self.connection = Connection()
        self.history = RateHistory()
        self.metrics_error: str | None = None
        self.refresh_count = 0  # completed cycles, for tests and the startup benchmark
        self.skipped_ticks = 0
        self._in_flight = False
        self._again = False
        self._next_refresh_at = 0.0

    # --- lifecycle ------------------------------------------------------------------------

    def on_mount(self) -> None:
        self.set_interval(TICK_SECONDS, self._tick)

    async def on_unmount(self) -> None:
        await self.data.close()

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def _live_screen(self) -> LiveScreen | None:
        for screen in reversed(self.screen_stack):
            if isinstance(screen, LiveScreen):
                return screen
        return None

    # --- refresh --------------------------------------------------------------------------

    def _tick(self) -> None:
        screen = self._live_screen()
        if screen is not None:
            screen.show_connection()
        if self.paused:
            return
        if self.monotonic() < self._next_refresh_at:
            return
        if self._in_flight:
            self.skipped_ticks += 1
            return
        self.refresh_now()

    def refresh_now(self) -> None:
        """Start a refresh cycle now, or right after the one in flight."""
        if self._in_flight:
            self._again = True
            return
        self._in_flight = True
        self.run_worker(self._cycle(), group="refresh", exit_on_error=False)

    async def _cycle(self) -> None:
        started = self.monotonic()
        screen = self._live_screen()
        try:
            # The header and counts need only the status: shown as soon as it is in, not after
            # the slower metrics scrape and screen read that run alongside it.
            rest = asyncio.gather(
                self.data.scrape(),
                screen.fetch(self.data) if screen is not None else _nothing(),
                return_exceptions=True,
            )
            try:
                status: Any = await self.data.status()
            except Exception as error:  # any failure is shown, never raised into the UI
                status = error
            self._record_status(status, started, screen)
            scrape, payload = await rest
            self._record_rest(scrape, payload, screen)
        finally:
            self._in_flight = False
            if self._again:
                self._again = False
                self.refresh_now()

    def _record_status(self, status: Any, started: float, screen: LiveScreen | None) -> None:
        if isinstance(status, BaseException):
            self._failed(status)
        else:
            self.connection.status = status
            self.connection.error = None
            self.connection.failures = 0
            self.connection.retry_at = None
            self.connection.last_ok_at = self.clock()
            self._next_refresh_at = started + self.refresh_seconds
        if screen is not None:
            screen.show_status()
            screen.show_connection()

    def _record_rest(self, scrape: Any, payload: Any, screen: LiveScreen | None) -> None:
        if isinstance(scrape, BaseException):
            self.metrics_error = str(scrape)
        else:
            self.metrics_error = None
            self.history.add(scrape)
        outage = isinstance(payload, DataError) and _is_outage(payload)
        if outage and self.connection.error is None:
            self._failed(payload)
        self.refresh_count += 1
        if screen is None:
            return
        if isinstance(payload, BaseException):
            screen.set_stale(True)
            if not outage:
                self.notify(str(payload), title="Refresh failed", severity="error")
        else:
            screen.set_stale(self.connection.error is not None)
            screen.show(payload)
        screen.show_connection()

    def _failed(self, error: BaseException) -> None:
        connection = self.connection
        connection.error = error.message if isinstance(error, DataError) else str(error)
        connection.failures += 1
        delay = min(MAX_BACKOFF_SECONDS, self.refresh_seconds * 2 ** (connection.failures - 1))
        connection.retry_at = self.monotonic() + delay
        self._next_refresh_at = connection.retry_at

    # --- actions --------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return not (self.read_only and action in WRITE_ACTIONS)

    def refuse_in_read_only(self) -> bool:
        """True (and says so) when writes are off; every write flow asks this first."""
        if self.read_only:
            self.notify("read-only mode: writes are disabled", severity="warning")
        return self.read_only

    def action_view(self, name: str) -> None:
        if self.current_mode != name:
            self.switch_mode(name)

    def action_command_line(self) -> None:
        self.screen.query_one(CommandLine).open()

    @on(CommandLine.Chosen)
    def command_chosen(self, event: CommandLine.Chosen) -> None:
        if event.command is None:
            if event.text.strip():
                self.notify(f"unknown command {event.text.strip()!r}", severity="error")
        elif event.command == "quit":
            self.exit()
        elif event.command == "help":
            self.action_help()
        else:
            self.action_view(event.command)

    def action_pause(self) -> None:
        self.paused = not self.paused
        if not self.paused:
            self.refresh_now()
        self._show_connection()

    def action_faster(self) -> None:
        self._set_refresh(max((s for s in REFRESH_STEPS if s < self.refresh_seconds), default=None))

    def action_slower(self) -> None:
        self._set_refresh(min((s for s in REFRESH_STEPS if s > self.refresh_seconds), default=None))

    def _set_refresh(self, seconds: float | None) -> None:
        if seconds is None:
            return
        self.refresh_seconds = seconds
        self._next_refresh_at = min(self._next_refresh_at, self.monotonic() + seconds)
        self.notify(f"refreshing every {seconds:g}s", timeout=2)
        self._show_connection()

    def _show_connection(self) -> None:
        screen = self._live_screen()
        if screen is not None:
            screen.show_connection()

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(read_only=self.read_only))

    def copy_object(self, kind: str, document: dict[str, Any] | None) -> None:
        """`y`: the object as JSON to the clipboard (OSC 52), and shown, since a terminal may
        ignore OSC 52 (tmux without set-clipboard, for one) and say nothing."""
        if document is None:
            self.notify("nothing selected", severity="warning")
            return
        text = json.dumps(document, indent=2, ensure_ascii=False)
        self.copy_to_clipboard(text)
        self.push_screen(TextViewer(f"{kind} copied as JSON (OSC 52) · esc closes", text))

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for key, action, description in palette_actions(screen, self.read_only):
            yield SystemCommand(description, f"key: {key}", _runner(self, screen, action))


def palette_actions(screen: Screen[Any], read_only: bool) -> list[tuple[str, str, str]]:
    """Every action of the key map that applies on `screen`, for the command palette."""
    active = []
    for entry in KEYMAP:
        if entry.action is None:
            continue
        if read_only and entry.action.split("(")[0] in WRITE_ACTIONS:
            continue
        if entry.scope != "global" and not _screen_has(screen, entry.action):
            continue
        active.append((entry.key, entry.action, entry.description))
    return active


def _screen_has(screen: Screen[Any], action: str) -> bool:
    return hasattr(screen, "action_" + action.split("(")[0])


def _runner(app: ResonateApp, screen: Screen[Any], action: str) -> Callable[[], Any]:
    async def run() -> None:
        target = screen if _screen_has(screen, action) else app
        await app.run_action(action, target)

    return run


def _is_outage(error: DataError) -> bool:
    """Errors that mean the server is away or refusing us, not that one request was wrong."""
    return error.status is None or error.status in (401, 403) or error.status >= 500


async def _nothing() -> None:
    return None
