"""One rate over the last minutes: its title, its latest value and a Sparkline."""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Label, Sparkline


def format_rate(value: float | None, unit: str) -> str:
    if value is None:
        return "–"
    if unit == "ms":
        return f"{value:.1f} ms" if value < 100 else f"{value:.0f} ms"
    return f"{value:.1f}{unit}" if value < 100 else f"{value:.0f}{unit}"


class SparklinePanel(Vertical):
    DEFAULT_CSS = """
    SparklinePanel { height: 2; width: 1fr; padding: 0 1; }
    SparklinePanel Label { width: 1fr; color: $text-muted; }
    SparklinePanel Sparkline { height: 1; }
    """

    def __init__(self, key: str, title: str, short_title: str, unit: str) -> None:
        super().__init__(id=f"spark-{key}")
        self.long_title = title
        self.short_title = short_title
        self.unit = unit

    def compose(self) -> ComposeResult:
        yield Label(f"{self.long_title}  –", classes="title")
        yield Sparkline([], summary_function=max)

    def show(
        self, values: Sequence[float], latest: float | None, available: bool, narrow: bool
    ) -> None:
        label = self.query_one(Label)
        title = self.short_title if narrow else self.long_title
        if not available:
            label.update(f"{title}  [dim]{'n/a' if narrow else 'metrics unavailable'}[/]")
        else:
            label.update(f"{title}  [b]{format_rate(latest, self.unit)}[/]")
        self.query_one(Sparkline).data = list(values)
