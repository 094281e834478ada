"""`?`: every key of the dashboard. The same table feeds the command palette and docs/tui.md."""

from __future__ import annotations

from dataclasses import dataclass

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static


@dataclass(frozen=True, slots=True)
class KeyEntry:
    key: str
    description: str
    scope: str  # "global", or the views it works in
    action: str | None = None  # the Textual action, for the command palette


KEYMAP: tuple[KeyEntry, ...] = (
    KeyEntry("1", "Overview: counts, rates, stuck work", "global", "view('overview')"),
    KeyEntry("2", "Promises", "global", "view('promises')"),
    KeyEntry("3", "Tasks", "global", "view('tasks')"),
    KeyEntry("4", "Schedules", "global", "view('schedules')"),
    KeyEntry("5", "Locks", "global", "view('locks')"),
    KeyEntry(":", "Command: :promises :tasks :schedules :locks :overview :q", "global"),
    KeyEntry("/", "Focus the filter bar (enter applies, esc back to the table)", "lists", "filter"),
    KeyEntry(
        "enter", "Open the detail of the selected row, finding or call-tree node", "lists, overview"
    ),
    KeyEntry("space", "Fold / unfold a node of the call tree", "promise detail"),
    KeyEntry("esc", "Back (close a detail, a dialog or the filter)", "global"),
    KeyEntry("p", "Pause / resume live refresh", "global", "pause"),
    KeyEntry("+ / -", "Refresh faster / slower", "global", "faster"),
    KeyEntry("y", "Copy the selected object as JSON (and show it)", "lists, details", "copy"),
    KeyEntry(
        "R", "Resolve the selected promise (value editor, then confirm)", "promises", "resolve"
    ),
    KeyEntry("J", "Reject the selected promise", "promises", "reject"),
    KeyEntry("C", "Cancel the selected promise", "promises", "cancel"),
    KeyEntry("d", "Drop the selected claimed task", "tasks", "drop_task"),
    KeyEntry("d", "Delete the selected schedule", "schedules", "delete_schedule"),
    KeyEntry("n", "New schedule (form)", "schedules", "new_schedule"),
    KeyEntry("d", "Release the selected lock", "locks", "release_lock"),
    KeyEntry("ctrl+p", "Command palette: every action by name", "global"),
    KeyEntry("?", "This help", "global", "help"),
    KeyEntry("q", "Quit", "global", "quit"),
)
WRITE_KEYS = {"R", "J", "C", "d", "n"}


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "close", "Close")]

    def __init__(self, read_only: bool = False) -> None:
        super().__init__(classes="dialog")
        self.read_only = read_only

    def compose(self) -> ComposeResult:
        table = Table(box=None, padding=(0, 2), expand=True)
        table.add_column("key", style="bold cyan", no_wrap=True)
        table.add_column("what it does")
        table.add_column("where", style="dim")
        for entry in KEYMAP:
            disabled = self.read_only and entry.key in WRITE_KEYS
            description = entry.description + ("  (off: read-only)" if disabled else "")
            table.add_row(entry.key, description, entry.scope, style="dim" if disabled else "")
        with Vertical(id="dialog", classes="wide"):
            yield Label("Keys · esc closes", id="title")
            with VerticalScroll(id="text"):
                yield Static(table)

    def action_close(self) -> None:
        self.dismiss(None)
