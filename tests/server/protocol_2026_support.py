"""Helpers shared by the 2026-04-01 protocol tests (test_protocol_2026_*.py;
shared/spec/protocol-2026.md): envelopes, the checks every reply must pass (§2, §4.1, §10.3,
P5), request builders, and SSE workers on the API port's `GET /poll/{group}/{id}` (§6).

Every reply goes through `checked`: the HTTP status equals `head.status`, the Content-Type is
JSON, `kind`/`corrId` are echoed, no JSON null anywhere, success data an object and error data
a bare string, and every promise/task record inside has the §4.1 shape.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from tests.support.sse import Worker

VERSION = "2026-04-01"
HOUR = 3_600_000
NOT_AN_OBJECT = "Invalid 'data' field — must be an object"
PROMISE_STATES = {"pending", "resolved", "rejected", "rejected_canceled", "rejected_timedout"}
TASK_STATES = {"pending", "acquired", "suspended", "halted", "fulfilled"}
PROMISE_KEYS = {"id", "state", "param", "value", "tags", "timeoutAt", "createdAt"}


def nulls(value: Any, path: str = "$") -> list[str]:
    """The paths of every JSON null in ``value`` (P5: replies never carry one)."""
    if value is None:
        return [path]
    if isinstance(value, dict):
        return [p for key, item in value.items() for p in nulls(item, f"{path}.{key}")]
    if isinstance(value, list):
        return [p for index, item in enumerate(value) for p in nulls(item, f"{path}[{index}]")]
    return []


def check_value(value: Any) -> None:
    assert isinstance(value, dict), value
    assert set(value) <= {"headers", "data"}, value
    if "data" in value:
        assert isinstance(value["data"], str), value
    if "headers" in value:
        assert isinstance(value["headers"], dict), value


def check_promise(record: Any) -> None:
    """§4.1 / §10.3: settledAt omitted while pending, tags always an object."""
    assert isinstance(record, dict), record
    assert record["state"] in PROMISE_STATES, record
    expected = PROMISE_KEYS | ({"settledAt"} if record["state"] != "pending" else set())
    assert set(record) == expected, record
    check_value(record["param"])
    check_value(record["value"])
    assert isinstance(record["tags"], dict), record
    assert all(isinstance(v, str) for v in record["tags"].values()), record
    for key in ("timeoutAt", "createdAt", "settledAt"):
        if key in record:
            assert isinstance(record[key], int) and not isinstance(record[key], bool), record


def check_task(record: Any) -> None:
    """§4.1: resumes always present; ttl and pid only while acquired."""
    assert isinstance(record, dict), record
    assert record["state"] in TASK_STATES, record
    held = {"ttl", "pid"} if record["state"] == "acquired" else set()
    assert set(record) == {"id", "state", "version", "resumes"} | held, record
    assert isinstance(record["version"], int), record


def check_data(data: dict[str, Any]) -> None:
    """The records inside a success reply's data."""
    for key, item in data.items():
        if key == "promise":
            check_promise(item)
        elif key in ("promises", "preload"):
            assert isinstance(item, list), data
            for record in item:
                check_promise(record)
        elif key == "task":
            check_task(item)
        elif key == "tasks":
            assert isinstance(item, list), data
            for record in item:
                check_task(record)
        elif key == "cursor":
            assert isinstance(item, str), data
        elif key == "action":  # task.fence: a whole inner reply envelope
            assert set(item) == {"kind", "head", "data"}, item
            assert set(item["head"]) == {"corrId", "status", "version"}, item
            if item["head"]["status"] == 200:
                check_data(item["data"])
            else:
                assert isinstance(item["data"], str), item


def checked(response: httpx.Response) -> dict[str, Any]:
    """The reply envelope, after the rules every reply keeps (§2, §4.1, P5)."""
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert set(body) == {"kind", "head", "data"}, body
    assert set(body["head"]) == {"corrId", "status", "version"}, body
    assert body["head"]["status"] == response.status_code, body
    assert body["head"]["version"] == VERSION, body
    assert nulls(body) == [], (nulls(body), body)
    if response.status_code in (200, 300):
        assert isinstance(body["data"], dict), body
        check_data(body["data"])
    else:
        assert isinstance(body["data"], str), body
    return body


def envelope(kind: str, data: Any, corr_id: str = "c-1", **head: Any) -> dict[str, Any]:
    return {"kind": kind, "head": {"corrId": corr_id, "version": VERSION, **head}, "data": data}


def echoed(reply: dict[str, Any], kind: str, corr_id: str) -> dict[str, Any]:
    assert (reply["kind"], reply["head"]["corrId"]) == (kind, corr_id), reply
    return reply


class Api:
    """A synchronous 2026 client of a real server (`api` fixture)."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        self._count = 0

    def send(self, kind: str, data: Any, corr_id: str | None = None) -> dict[str, Any]:
        self._count += 1
        corr_id = corr_id or f"s-{self._count}"
        reply = checked(self.client.post("/", json=envelope(kind, data, corr_id)))
        return echoed(reply, kind, corr_id)

    def ok(self, kind: str, data: Any) -> dict[str, Any]:
        reply = self.send(kind, data)
        assert reply["head"]["status"] == 200, reply
        return reply["data"]


class AsyncApi:
    """An asynchronous 2026 client of a server (the `live` in-process server)."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self._count = 0

    async def send(self, kind: str, data: Any, corr_id: str | None = None) -> dict[str, Any]:
        self._count += 1
        corr_id = corr_id or f"a-{self._count}"
        reply = checked(await self.client.post("/", json=envelope(kind, data, corr_id)))
        return echoed(reply, kind, corr_id)

    async def ok(self, kind: str, data: Any) -> dict[str, Any]:
        reply = await self.send(kind, data)
        assert reply["head"]["status"] == 200, reply
        return reply["data"]

    async def status(self, kind: str, data: Any) -> tuple[int, Any]:
        reply = await self.send(kind, data)
        return reply["head"]["status"], reply["data"]

    async def task(self, task_id: str) -> dict[str, Any]:
        return (await self.ok("task.get", {"id": task_id}))["task"]

    async def promise(self, promise_id: str) -> dict[str, Any]:
        return (await self.ok("promise.get", {"id": promise_id}))["promise"]


def status(reply: dict[str, Any]) -> int:
    return int(reply["head"]["status"])


# ---- request builders -----------------------------------------------------------------------


def any_at(group: str, pid: str | None = None) -> str:
    return f"poll://any@{group}" + (f"/{pid}" if pid is not None else "")


def uni_at(group: str, pid: str) -> str:
    return f"poll://uni@{group}/{pid}"


def lineage(promise_id: str, root: str, branch: str | None = None) -> dict[str, str]:
    """The SDK's call-tree tags: origin = the root, branch = the workflow (default: itself)."""
    return {
        "resonate:origin": root,
        "resonate:branch": branch or promise_id,
        "resonate:parent": branch or promise_id,
    }


def create_data(
    promise_id: str, timeout_at: int, tags: dict[str, str] | None = None, **extra: Any
) -> dict[str, Any]:
    return {"id": promise_id, "timeoutAt": timeout_at, "tags": tags or {}, **extra}


def create_action(
    promise_id: str, timeout_at: int, tags: dict[str, str] | None = None, **extra: Any
) -> dict[str, Any]:
    return envelope("promise.create", create_data(promise_id, timeout_at, tags, **extra), "in")


def settle_action(promise_id: str, state: str = "resolved", **extra: Any) -> dict[str, Any]:
    return envelope("promise.settle", {"id": promise_id, "state": state, **extra}, "in")


def callback_action(awaited: str, awaiter: str) -> dict[str, Any]:
    return envelope("promise.register_callback", {"awaited": awaited, "awaiter": awaiter}, "in")


# ---- SSE workers on the API port (§6) -------------------------------------------------------


async def until(condition, within: float = 5.0, what: str = "condition") -> None:
    """Poll ``condition`` (sync) with a deadline; never a fixed sleep."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


@asynccontextmanager
async def stream(live: Any, group: str, pid: str) -> AsyncIterator[Worker]:
    """A worker on the live server's `GET /poll/{group}/{pid}`, returned once the hub has
    registered it (the headers go out before the registration)."""
    hub = live.server.poll_2026
    assert hub is not None
    before = hub.connections(group).count(pid)
    async with Worker(f"{live.server.api_url}/poll/{group}/{pid}") as worker:
        await until(
            lambda: hub.connections(group).count(pid) > before, what=f"{group}/{pid} registered"
        )
        yield worker


def execute_of(event: dict[str, Any]) -> tuple[str, int]:
    """(task id, version) of an `execute` message, after its §6 shape."""
    assert event["kind"] == "execute", event
    assert set(event) == {"kind", "head", "data"}, event
    assert set(event["head"]) == {"serverUrl"}, event
    assert set(event["data"]) == {"task"}, event
    task = event["data"]["task"]
    assert set(task) == {"id", "version"}, event
    return task["id"], task["version"]


def unblock_of(event: dict[str, Any]) -> dict[str, Any]:
    """The promise of an `unblock` message, after its §6 shape."""
    assert event["kind"] == "unblock", event
    assert event["head"] == {}, event
    assert set(event["data"]) == {"promise"}, event
    check_promise(event["data"]["promise"])
    return dict(event["data"]["promise"])


async def deliver(live: Any) -> int:
    """One pass of the 2026 delivery loop at the clock's time: lease expiry, due executes
    (retry timers), queued unblocks. Returns how many items it handled."""
    loop = live.server.delivery_2026_loop
    assert loop is not None
    return int(await loop.run_once())
