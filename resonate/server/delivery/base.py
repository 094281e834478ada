"""The interface every transport plugin implements.

The enqueue loop resolves a task's recv into a physical ``(type, data)`` pair
(``resonate.core.routing``), builds the message of http-api.md §4.6 and hands both to the
plugin named by ``type``. The plugin answers whether the message was delivered; the loop
records the outcome in the store and counts it in the metrics.
"""

from __future__ import annotations

from typing import Any, Protocol


class Plugin(Protocol):
    name: str  # "poll" | "http": the `type` of a physical recv, and the metrics label
    ttr_ms: int  # retry delay after a failed delivery
    ttc_ms: int  # claim deadline after a delivery; 0 = none

    async def deliver(
        self, data: dict[str, Any], message: dict[str, Any], head: dict[str, str] | None
    ) -> bool:
        """Deliver ``message`` (a JSON-ready dict without trace context) to the recv ``data``;
        ``head`` is the task's trace context. True only when it was delivered."""

    async def close(self) -> None:
        """Stop delivering and release resources (end every stream cleanly)."""
