"""Reading a CLI child process's output as it comes, without blocking the test forever."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable


def lines_of(stream: Iterable[str] | None) -> queue.Queue[str]:
    """The lines of `stream` as a reader thread gets them: `lines.get(timeout=…)` is a read
    with a deadline."""
    assert stream is not None
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        for line in stream:
            lines.put(line)

    threading.Thread(target=read, daemon=True).start()
    return lines
