"""One-shot uses of the SDK's public clients (`resonate.promises`, `resonate.schedule`,
`resonate.schedules`) from a send-only process (no SSE stream); writes JSON to <out.json>.

python ops.py promises <out.json> <prefix> <rest-made promise id>
python ops.py schedule-create <out.json> <schedule id> <cron> <target group> <func> <json args>
python ops.py schedule-delete <out.json> <schedule id>

Promise values are decoded by the SDK's codec (base64 JSON), so the output shows Python values.
A ServerError is written as {"error": <code>, "message": ...} in place of a record.
"""

# ruff: noqa: I001  (`resonate` here is the SDK; ruff takes it for our first-party package)

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from typing import Any

import msgspec

import app
from resonate.error import ServerError
from resonate.types import Value

STEP_TIMEOUT = 20.0  # the SDK retries refused connections forever; never hang here


def rec(record: Any) -> Any:
    """A PromiseRecord / ScheduleRecord as JSON builtins (camelCase keys)."""
    return msgspec.to_builtins(record)


async def call(awaitable: Any) -> Any:
    """Await one SDK call; a ServerError becomes {"error": code, "message": ...}."""
    try:
        result = await asyncio.wait_for(awaitable, STEP_TIMEOUT)
    except ServerError as exc:
        return {"error": exc.code, "message": exc.message}
    return rec(result) if result is not None else None


async def search_all(resonate: Any, state: str | None, tags: dict[str, str], limit: int) -> Any:
    """Follow the cursor; the ids of every page, and how many pages it took."""
    pages: list[list[str]] = []
    cursor = None
    while len(pages) < 20:
        page = await asyncio.wait_for(
            resonate.promises.search(state, tags, limit, cursor), STEP_TIMEOUT
        )
        pages.append([p.id for p in page.promises])
        cursor = page.cursor
        if not cursor:
            break
    return pages


async def promises(resonate: Any, prefix: str, rest_id: str) -> dict[str, Any]:
    p = resonate.promises
    tags = {"suite": prefix}
    now = int(time.time() * 1000)
    out: dict[str, Any] = {}
    a, b, c, d = (f"{prefix}.{x}" for x in "abcd")
    out["create"] = await call(
        p.create(a, now + 60_000, Value(data={"hello": "world"}), {**tags, "n": "1"})
    )
    # A repeat answers the stored promise, whatever it says.
    out["create_again"] = await call(p.create(a, now + 1_000, Value(data="other"), {}))
    out["get"] = await call(p.get(a))
    out["resolve"] = await call(p.resolve(a, Value(data={"answer": 42})))
    # Settling a settled promise answers the stored one, unchanged.
    out["reject_settled"] = await call(p.reject(a, Value(data="too late")))
    for pid in (b, c, d):
        await call(p.create(pid, now + 60_000, Value(data=None), dict(tags)))
    out["reject"] = await call(p.reject(b, Value(data={"why": "no"})))
    out["cancel"] = await call(p.cancel(c, Value()))
    out["search_resolved"] = await search_all(resonate, "resolved", tags, 10)
    out["search_pending"] = await search_all(resonate, "pending", tags, 10)
    out["search_all_by_2"] = await search_all(resonate, None, tags, 2)
    # A promise made through the REST API, read and settled through the 2026 protocol.
    out["rest_get"] = await call(p.get(rest_id))
    out["rest_resolve"] = await call(p.resolve(rest_id, Value(data={"from": "sdk"})))
    out["get_missing"] = await call(p.get(f"{prefix}.missing"))
    out["settle_missing"] = await call(p.resolve(f"{prefix}.missing", Value(data=1)))
    return out


async def schedule_create(
    resonate: Any, schedule_id: str, cron: str, target: str, func: str, args: list[Any]
) -> dict[str, Any]:
    handle = await asyncio.wait_for(
        resonate.options(target=target).schedule(schedule_id, cron, func, args=tuple(args)),
        STEP_TIMEOUT,
    )
    # A repeat answers the stored schedule.
    again = await call(
        resonate.schedules.create(
            schedule_id,
            "0 0 1 1 *",
            "other-{{.timestamp}}",
            1_000,
            Value(data=None),
            {"resonate:target": "poll://any@nowhere"},
        )
    )
    return {
        "name": handle.name,
        "get": await call(resonate.schedules.get(schedule_id)),
        "create_again": again,
    }


async def schedule_delete(resonate: Any, schedule_id: str) -> dict[str, Any]:
    return {
        "delete": await call(resonate.schedules.delete(schedule_id)),
        "get_after": await call(resonate.schedules.get(schedule_id)),
        "delete_again": await call(resonate.schedules.delete(schedule_id)),
    }


async def main() -> None:
    op, out = sys.argv[1:3]
    rest = sys.argv[3:]
    resonate = await app.start("ops", listen=False)
    if op == "promises":
        result = await promises(resonate, *rest)
    elif op == "schedule-create":
        sid, cron, target, func, raw_args = rest
        result = await schedule_create(resonate, sid, cron, target, func, json.loads(raw_args))
    elif op == "schedule-delete":
        result = await schedule_delete(resonate, *rest)
    else:
        raise SystemExit(f"unknown op {op}")
    tmp = out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(result, f)
    os.replace(tmp, out)


if __name__ == "__main__":
    asyncio.run(main())
    app.exit_now()
