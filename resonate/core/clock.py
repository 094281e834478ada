"""Time source. The server reads time only through a Clock so tests can move it."""

from __future__ import annotations

import time
from typing import Protocol

INT64_MAX = 9_223_372_036_854_775_807
INT64_MIN = -9_223_372_036_854_775_808


class Clock(Protocol):
    def now_ms(self) -> int:
        """Milliseconds since the Unix epoch."""
        ...


class SystemClock:
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


class ManualClock:
    """A clock that only moves when told to."""

    def __init__(self, start_ms: int = 1_700_000_000_000) -> None:
        self._now = start_ms

    def now_ms(self) -> int:
        return self._now

    def set(self, ms: int) -> None:
        self._now = ms

    def advance(self, ms: int) -> None:
        self._now += ms


class DebugClock:
    """The clock of a server in debug mode (`resonate dev`): the system's time until a request
    names another (``head["resonate:debug_time"]``, ``debug.tick``), then that time."""

    def __init__(self, base: Clock) -> None:
        self.base = base
        self.fixed: int | None = None

    def now_ms(self) -> int:
        return self.fixed if self.fixed is not None else self.base.now_ms()
