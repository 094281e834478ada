"""The debug kinds of the 2026-04-01 protocol (protocol-2026.md §3.4), served only when the
server runs in debug mode (`resonate dev`, P7): pause and resume the background loops, wipe the
store, read a snapshot of every 2026 record, and run all timer processing at a given time.
Upstream uses them for differential tests; here they also make a worker's timers testable by
hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from resonate.core.clock import INT64_MAX, DebugClock
from resonate.core.search import PromiseIdQuery
from resonate.server.envelope.promises import promise_record
from resonate.server.envelope.protocol import bad_request
from resonate.store.base import Transaction

if TYPE_CHECKING:
    from resonate.server.http.routes import Context
    from resonate.server.loops import Loop

SNAPSHOT_LIMIT = 100_000


@dataclass
class Debug:
    """What the debug kinds act on: the server's clock and background loops."""

    clock: DebugClock
    loops: Sequence[Loop]

    def set_time(self, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= INT64_MAX:
            raise bad_request("Invalid 'time' — must be an integer of milliseconds ≥ 0")
        self.clock.fixed = value


def _debug(ctx: Context) -> Debug:
    assert ctx.debug is not None  # dispatch refuses debug kinds outside debug mode
    return ctx.debug


async def start(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Pause the background loops (a pass in progress finishes)."""
    for loop in _debug(ctx).loops:
        loop.paused = True
    return {}


async def stop(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Resume the background loops and the system clock."""
    debug = _debug(ctx)
    debug.clock.fixed = None
    for loop in debug.loops:
        loop.paused = False
        loop.wake()
    return {}


async def reset(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    await ctx.store.run(_wipe)
    return {}


async def _wipe(tx: Transaction) -> None:
    await tx.debug_wipe()


async def tick(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Run every timer at ``data.time``: promise timeouts, leases, retries, schedules, and the
    sends they cause."""
    if "time" not in data:
        raise bad_request("Invalid 'time' field — debug.tick needs a time")
    debug = _debug(ctx)
    debug.set_time(data["time"])
    for loop in debug.loops:
        await loop.run_once()
    return {}


async def snap(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    return await ctx.store.read(_snapshot)


async def _snapshot(tx: Transaction) -> dict[str, Any]:
    promises = await tx.search_promises_by_id(PromiseIdQuery(limit=SNAPSHOT_LIMIT))
    tasks = await tx.search_tasks_2026(None, None, SNAPSHOT_LIMIT)
    timers: list[dict[str, Any]] = []
    for task in tasks:
        if task.retry_at is not None:
            timers.append({"id": task.id, "type": "retry", "at": task.retry_at})
        if task.lease_at is not None:
            timers.append({"id": task.id, "type": "lease", "at": task.lease_at})
    return {
        "promises": [promise_record(p) for p in promises],
        "promiseTimeouts": [
            {"id": p.id, "timeout": p.timeout} for p in promises if not p.state.is_completed
        ],
        "callbacks": [
            {"awaited": row[0], "awaiter": row[1]} for row in await tx.debug_rows("callbacks_2026")
        ],
        "listeners": [
            {"promise": row[0], "address": row[1]} for row in await tx.debug_rows("listeners_2026")
        ],
        "tasks": [task.to_json() for task in tasks],
        "taskTimeouts": timers,
        "messages": [
            {"kind": "unblock", "promise": row[1], "address": row[2]}
            for row in await tx.debug_rows("outbox_2026")
        ],
    }
