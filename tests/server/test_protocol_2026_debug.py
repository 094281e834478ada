"""The debug kinds of the 2026-04-01 protocol, served by `resonate dev` only (P7): pause and
resume the loops, run every timer at a given time, read a snapshot, wipe the store, and a
request's `resonate:debug_time` as the clock. (Outside debug mode they answer 403: see
test_envelope.py.)"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.server.protocol_2026_support import any_at, envelope
from tests.support.servers import ServerProcess


class DevServer(ServerProcess):
    """`resonate dev`: an in-memory store and the debug kinds."""

    def command(self) -> list[str]:
        command = super().command()
        command[command.index("serve")] = "dev"
        return command


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    server = DevServer(tmp_path_factory.mktemp("dev")).start()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            yield client
    finally:
        server.stop()


def call(client: httpx.Client, kind: str, data: Any, **head: Any) -> tuple[int, Any]:
    response = client.post("/", json=envelope(kind, data, **head))
    body = response.json()
    assert response.status_code == body["head"]["status"]
    return response.status_code, body["data"]


def test_the_debug_kinds_drive_time(dev: httpx.Client) -> None:
    assert call(dev, "debug.reset", {}) == (200, {})
    assert call(dev, "debug.start", {}) == (200, {})
    target = {"resonate:target": any_at("g")}
    timer = {**target, "resonate:timer": "true"}
    created = call(
        dev,
        "promise.create",
        {"id": "sleep", "timeoutAt": 5_000, "tags": timer},
        **{"resonate:debug_time": 1_000},
    )
    assert created == (
        200,
        {
            "promise": {
                "id": "sleep",
                "state": "pending",
                "param": {},
                "value": {},
                "tags": timer,
                "timeoutAt": 5_000,
                "createdAt": 1_000,
            }
        },
    )
    action = {"kind": "promise.create", "data": {"id": "wf", "timeoutAt": 9_000, "tags": target}}
    status, held = call(dev, "task.create", {"pid": "p", "ttl": 100, "action": action})
    assert status == 200 and held["task"]["state"] == "acquired"
    assert (
        call(dev, "promise.register_listener", {"awaited": "wf", "address": "poll://uni@g/p"})[0]
        == 200
    )

    status, snap = call(dev, "debug.snap", {})
    assert status == 200
    assert set(snap) == {
        "promises",
        "promiseTimeouts",
        "callbacks",
        "listeners",
        "tasks",
        "taskTimeouts",
        "messages",
    }
    assert snap["promiseTimeouts"] == [
        {"id": "sleep", "timeout": 5_000},
        {"id": "wf", "timeout": 9_000},
    ]
    assert {"id": "wf", "type": "lease", "at": 1_100} in snap["taskTimeouts"]
    assert snap["listeners"] == [{"promise": "wf", "address": "poll://uni@g/p"}]

    # At 6 000 the timer resolves and wf's lease (1 100) has lapsed: back to pending.
    assert call(dev, "debug.tick", {"time": 6_000}) == (200, {})
    _, snap = call(dev, "debug.snap", {})
    states = {p["id"]: p["state"] for p in snap["promises"]}
    assert states == {"sleep": "resolved", "wf": "pending"}
    tasks = {t["id"]: t["state"] for t in snap["tasks"]}
    assert tasks == {"sleep": "fulfilled", "wf": "pending"}

    # At 10 000 wf times out: its listener becomes an unblock (sent by the same tick).
    assert call(dev, "debug.tick", {"time": 10_000}) == (200, {})
    _, snap = call(dev, "debug.snap", {})
    assert {p["id"]: p["state"] for p in snap["promises"]}["wf"] == "rejected_timedout"
    assert snap["listeners"] == [] and snap["messages"] == []

    assert call(dev, "debug.reset", {}) == (200, {})
    _, snap = call(dev, "debug.snap", {})
    assert all(rows == [] for rows in snap.values())
    assert call(dev, "debug.stop", {}) == (200, {})


def test_debug_tick_needs_a_time(dev: httpx.Client) -> None:
    status, message = call(dev, "debug.tick", {})
    assert status == 400 and "time" in message
    status, message = call(dev, "debug.tick", {"time": "soon"})
    assert status == 400 and "time" in message


def test_a_debug_time_that_is_not_a_time_is_a_400(dev: httpx.Client) -> None:
    status, _ = call(dev, "promise.get", {"id": "x"}, **{"resonate:debug_time": -1})
    assert status == 400
    assert call(dev, "debug.stop", {}) == (200, {})
