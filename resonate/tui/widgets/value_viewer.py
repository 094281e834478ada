"""Shows a promise value (or any base64 `data`): pretty, highlighted JSON; text; a hex dump for
binary; the raw input with the reason when it is not valid base64."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Group, RenderableType
from rich.syntax import Syntax
from rich.text import Text
from textual.widgets import Static

from resonate.tui.formatting import format_tags
from resonate.tui.values import DecodedValue, ValueKind, decode_base64


def render_decoded(decoded: DecodedValue) -> RenderableType:
    if decoded.kind is ValueKind.EMPTY:
        return Text("(no data)", style="dim italic")
    if decoded.kind is ValueKind.JSON:
        return Syntax(
            decoded.text, "json", theme="ansi_dark", word_wrap=True, background_color="default"
        )
    if decoded.kind is ValueKind.INVALID:
        return Text.assemble((f"{decoded.note}\n", "bold red"), decoded.text)
    if decoded.kind is ValueKind.BINARY:
        return Text(decoded.text, style="cyan")
    return Text(decoded.text)


def render_value(value: Mapping[str, Any] | None) -> RenderableType:
    """A value object `{headers, data}`: a header line when it has headers, then the data."""
    value = value or {}
    decoded = decode_base64(value.get("data"))
    parts: list[RenderableType] = []
    if decoded.kind is not ValueKind.EMPTY:  # "(no data)" below says it already
        parts.append(Text(decoded.summary, style="dim"))
    if value.get("headers"):
        parts.append(Text("headers: " + format_tags(value["headers"]), style="italic"))
    parts.append(render_decoded(decoded))
    return Group(*parts)


class ValueViewer(Static):
    DEFAULT_CSS = """
    ValueViewer { height: auto; padding: 0 1; border: round $panel-lighten-2; }
    """

    def __init__(self, title: str, value: Mapping[str, Any] | None, *, id: str | None = None):
        super().__init__(render_value(value), id=id)
        self.border_title = title

    def show(self, value: Mapping[str, Any] | None) -> None:
        self.update(render_value(value))
