"""Modal dialogs: the confirmation every write goes through, the value editor of resolve /
reject / cancel, the schedule form, and a text viewer (what `y` copied)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from rich.syntax import Syntax
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static, Switch, TextArea

from resonate.cli.arguments import parse_duration, parse_key_values
from resonate.tui.values import encode_editor_text


class ConfirmDialog(ModalScreen[bool]):
    """`question` with Yes / No; `y` confirms, `n` or `esc` cancels."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, question: str, action_label: str = "Yes") -> None:
        super().__init__(classes="dialog")
        self.question = question
        self.action_label = action_label

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(self.question, id="question")
            with Horizontal(id="buttons"):
                yield Button(f"{self.action_label} (y)", variant="error", id="yes")
                yield Button("Cancel (n)", variant="primary", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)

    @on(Button.Pressed)
    def pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")


Result = TypeVar("Result")


class FormDialog(ModalScreen[Result | None], Generic[Result]):
    """A dialog whose fields are checked on `ctrl+s` (or its accept button): `result()` builds
    the answer or raises ValueError, whose message is shown in the dialog; `esc` cancels."""

    BINDINGS = [
        Binding("ctrl+s", "accept", "Accept"),
        Binding("escape", "cancel", "Cancel"),
    ]
    accept_label = "Accept"

    def __init__(self) -> None:
        super().__init__(classes="dialog")

    def result(self) -> Result:
        raise NotImplementedError

    def footer(self) -> ComposeResult:
        yield Static("", id="error", classes="error")
        with Horizontal(id="buttons"):
            yield Button(f"{self.accept_label} (ctrl+s)", variant="success", id="accept")
            yield Button("Cancel (esc)", id="cancel")

    def action_accept(self) -> None:
        try:
            answer = self.result()
        except ValueError as error:
            self.query_one("#error", Static).update(f"✖ {error}")
            return
        self.dismiss(answer)

    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#accept")
    def accept_pressed(self) -> None:
        self.action_accept()

    @on(Button.Pressed, "#cancel")
    def cancel_pressed(self) -> None:
        self.dismiss(None)


@dataclass(frozen=True, slots=True)
class EditedValue:
    data: str | None  # None: no data
    headers: dict[str, str]


class ValueEditor(FormDialog[EditedValue]):
    """The value to complete a promise with: text or JSON (checked before it is accepted) and
    optional headers."""

    def __init__(self, title: str, initial: str = "", as_json: bool = True) -> None:
        super().__init__()
        self.title_text = title
        self.initial = initial
        self.as_json = as_json

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="wide"):
            yield Label(self.title_text, id="title")
            with Horizontal(classes="row"):
                yield Label("JSON ", classes="inline")
                yield Switch(value=self.as_json, id="json")
                yield Label(" headers ", classes="inline")
                yield Input(placeholder="k=v k2=v2 (optional)", id="headers")
            yield TextArea(self.initial, id="value", soft_wrap=True, show_line_numbers=False)
            yield from self.footer()

    def on_mount(self) -> None:
        self.query_one(TextArea).focus()

    def result(self) -> EditedValue:
        text = self.query_one(TextArea).text
        as_json = self.query_one("#json", Switch).value
        data = encode_editor_text(text, as_json)
        headers = parse_key_values(self.query_one("#headers", Input).value.split())
        return EditedValue(data or None, headers)


@dataclass(frozen=True, slots=True)
class ScheduleDraft:
    id: str
    cron: str
    promise_id: str
    promise_timeout_ms: int
    description: str | None
    timezone: str | None
    promise_data: str | None
    promise_tags: dict[str, str]


SCHEDULE_FIELDS = (
    ("id", "Schedule id", "nightly-report"),
    ("cron", "Cron", "*/5 * * * *  (or @hourly, @every 30s)"),
    ("promise_id", "Promise id", "report.{{.timestamp}}"),
    ("promise_timeout", "Promise timeout", "1m  (250ms, 30s, 1h30m)"),
    ("timezone", "Time zone", "UTC  (IANA name, optional)"),
    ("description", "Description", "optional"),
    ("promise_tags", "Promise tags", "resonate:invoke=poll://any@workers  (k=v …)"),
    ("promise_data", "Promise data", 'text or JSON, e.g. {"func": "report"}'),
)
REQUIRED_FIELDS = ("id", "cron", "promise_id", "promise_timeout")


class ScheduleForm(FormDialog[ScheduleDraft]):
    """A small form for a new schedule; checked locally before it is sent (the server checks
    the cron and zone again and its error is shown if it refuses)."""

    accept_label = "Create"

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="wide"):
            yield Label("New schedule", id="title")
            with VerticalScroll(id="fields"), Grid(id="form"):
                for name, caption, hint in SCHEDULE_FIELDS:
                    yield Label(caption)
                    yield Input(placeholder=hint, id=f"field-{name}")
            yield from self.footer()

    def on_mount(self) -> None:
        self.query_one("#field-id", Input).focus()

    def _value(self, name: str) -> str:
        return self.query_one(f"#field-{name}", Input).value.strip()

    def result(self) -> ScheduleDraft:
        captions = {name: caption for name, caption, _ in SCHEDULE_FIELDS}
        for name in REQUIRED_FIELDS:
            if not self._value(name):
                raise ValueError(f"{captions[name]} is required")
        try:
            timeout = parse_duration(self._value("promise_timeout"))
        except ValueError as error:
            raise ValueError(f"Promise timeout: {error}") from None
        try:
            tags = parse_key_values(self._value("promise_tags").split())
        except ValueError as error:
            raise ValueError(f"Promise tags: {error}") from None
        return ScheduleDraft(
            id=self._value("id"),
            cron=self._value("cron"),
            promise_id=self._value("promise_id"),
            promise_timeout_ms=timeout,
            description=self._value("description") or None,
            timezone=self._value("timezone") or None,
            promise_data=self._value("promise_data") or None,
            promise_tags=tags,
        )

    @on(Input.Submitted)
    def submitted(self) -> None:
        self.focus_next()


class TextViewer(ModalScreen[None]):
    """Read-only text (JSON highlighted) in a scrollable box; `esc` or `q` closes it."""

    BINDINGS = [Binding("escape,q", "close", "Close")]

    def __init__(self, title: str, text: str, language: str | None = "json") -> None:
        super().__init__(classes="dialog")
        self.title_text = title
        self.text = text
        self.language = language

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="wide"):
            yield Label(self.title_text, id="title")
            body = (
                Syntax(self.text, self.language, theme="ansi_dark", word_wrap=True)
                if self.language
                else self.text
            )
            with VerticalScroll(id="text"):
                yield Static(body)

    def action_close(self) -> None:
        self.dismiss(None)
