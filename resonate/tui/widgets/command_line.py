"""The k9s-style `:` prompt: `:promises`, `:tasks`, `:schedules`, `:locks`, `:overview`, `:q`."""

from __future__ import annotations

from textual.binding import Binding
from textual.message import Message
from textual.widgets import Input

VIEW_NAMES = ("overview", "promises", "tasks", "schedules", "locks")
ALIASES = {
    "o": "overview",
    "pulse": "overview",
    "p": "promises",
    "promise": "promises",
    "t": "tasks",
    "task": "tasks",
    "s": "schedules",
    "schedule": "schedules",
    "cron": "schedules",
    "l": "locks",
    "lock": "locks",
    "q": "quit",
    "quit": "quit",
    "help": "help",
}


def resolve_command(text: str) -> str | None:
    """The view (or `quit`/`help`) a command names: a full name, an alias or a unique prefix."""
    word = text.strip().lstrip(":").strip().lower()
    if not word:
        return None
    if word in VIEW_NAMES:
        return word
    if word in ALIASES:
        return ALIASES[word]
    matches = [name for name in VIEW_NAMES if name.startswith(word)]
    return matches[0] if len(matches) == 1 else None


class CommandLine(Input):
    DEFAULT_CSS = """
    CommandLine { dock: bottom; height: 1; border: none; padding: 0 1; display: none; }
    CommandLine.-open { display: block; }
    """
    BINDINGS = [Binding("escape", "close", "Close", show=False)]

    class Chosen(Message):
        def __init__(self, command: str | None, text: str) -> None:
            super().__init__()
            self.command = command
            self.text = text

    def __init__(self) -> None:
        super().__init__(
            placeholder=":promises :tasks :schedules :locks :overview :q", id="command"
        )

    def open(self) -> None:
        self.value = ""
        self.add_class("-open")
        self.focus()

    def action_close(self) -> None:
        self.remove_class("-open")
        self.screen.focus_next()

    async def action_submit(self) -> None:
        text = self.value
        self.remove_class("-open")
        self.post_message(self.Chosen(resolve_command(text), text))
