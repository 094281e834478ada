"""Real data for the fuzzer: promises in every state, tasks in INIT and CLAIMED, a callback, a
subscription, schedules and locks, all made through the HTTP API under one id prefix. The
fuzzer's hooks draw path parameters, body fields, query filters and headers from these ids part
of the time, so that requests reach the 200/201/403/409 paths and not only ever 404."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from urllib.parse import quote

import httpx

HOUR_MS = 3_600_000
# A cron that does not fire during a test run (midnight on January 1st), so the seeded schedules
# stay put; the fuzzer's own schedules use it too.
YEARLY_CRON = "0 0 1 1 *"
ROUTE = "poll://any@fuzz"


@dataclass(slots=True)
class Seeded:
    """The ids the fuzzer may aim at; every list is non-empty."""

    prefix: str
    promise_ids: list[str] = field(default_factory=list)
    idempotency_keys: list[str] = field(default_factory=list)
    # (task id, counter): INIT invoke and resume tasks, and one CLAIMED invoke task.
    tasks: list[tuple[str, int]] = field(default_factory=list)
    claimed_task: tuple[str, int] = ("", 0)
    process_ids: list[str] = field(default_factory=list)
    schedule_ids: list[str] = field(default_factory=list)
    # (resource id, execution id, process id)
    locks: list[tuple[str, str, str]] = field(default_factory=list)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def _ok(response: httpx.Response) -> dict:
    assert response.status_code in (200, 201, 204), (response.request.url, response.text)
    return response.json() if response.content else {}


def seed(base_url: str, prefix: str) -> Seeded:
    seeded = Seeded(prefix=prefix)
    later = now_ms() + HOUR_MS
    with httpx.Client(base_url=base_url, timeout=30) as api:

        def promise(suffix: str, *, timeout: int = later, tags: dict | None = None) -> str:
            promise_id = f"{prefix}/{suffix}"
            key = f"{prefix}-key-{suffix}"
            body = {"id": promise_id, "timeout": timeout, "tags": tags or {}}
            body["param"] = {"headers": {"h": "v"}, "data": "eyJ4IjoxfQ=="}
            _ok(api.post("/promises", json=body, headers={"idempotency-key": key}))
            seeded.promise_ids.append(promise_id)
            seeded.idempotency_keys.append(key)
            return promise_id

        def complete(promise_id: str, state: str, key: str) -> None:
            body = {"state": state, "value": {"data": "eA=="}}
            _ok(api.patch(f"/promises/{promise_id}", json=body, headers={"idempotency-key": key}))
            seeded.idempotency_keys.append(key)

        pending = promise("pending")
        promise("pending with space")
        complete(promise("resolved"), "RESOLVED", f"{prefix}-done-r")
        complete(promise("rejected"), "REJECTED", f"{prefix}-done-j")
        complete(promise("canceled"), "REJECTED_CANCELED", f"{prefix}-done-c")
        overdue = promise("timedout", timeout=now_ms() - 1000)
        timer = promise("timer", timeout=now_ms() - 1000, tags={"resonate:timeout": "true"})
        _ok(api.get(f"/promises/{quote(overdue, safe='')}"))
        _ok(api.get(f"/promises/{quote(timer, safe='')}"))

        # An INIT invoke task (routed by its tag; no worker is connected, so it stays due).
        routed = promise("routed", tags={"resonate:invoke": ROUTE})
        seeded.tasks.append((f"__invoke:{routed}", 1))

        # A CLAIMED invoke task, through create-with-task.
        process_id = f"{prefix}-process"
        claimed_id = f"{prefix}/claimed"
        body = {
            "promise": {"id": claimed_id, "timeout": later, "tags": {"resonate:invoke": ROUTE}},
            "task": {"processId": process_id, "ttl": HOUR_MS},
        }
        task = _ok(api.post("/promises/task", json=body))["task"]
        seeded.promise_ids.append(claimed_id)
        seeded.process_ids.append(process_id)
        seeded.claimed_task = (task["id"], task["counter"])
        seeded.tasks.append(seeded.claimed_task)

        # A callback on a pending leaf, and a resume task from a leaf that has completed.
        leaf = promise("leaf")
        body = {"rootPromiseId": pending, "recv": ROUTE, "timeout": later}
        _ok(api.post(f"/promises/callback/{quote(leaf, safe='')}", json=body))
        done_leaf = promise("done-leaf")
        _ok(api.post(f"/promises/callback/{quote(done_leaf, safe='')}", json=body))
        complete(done_leaf, "RESOLVED", f"{prefix}-done-leaf")
        seeded.tasks.append((f"__resume:{pending}:{done_leaf}", 1))
        body = {"id": f"{prefix}-subscriber", "recv": ROUTE, "timeout": later}
        _ok(api.post(f"/promises/subscribe/{quote(pending, safe='')}", json=body))

        for name in ("daily", "yearly/with slash"):
            schedule_id = f"{prefix}/{name}"
            body = {
                "id": schedule_id,
                "cron": YEARLY_CRON,
                "promiseId": "{{.id}}.{{.timestamp}}",
                "promiseTimeout": HOUR_MS,
                "tags": {"owner": prefix},
            }
            key = f"{prefix}-schedule-{name}"
            _ok(api.post("/schedules", json=body, headers={"idempotency-key": key}))
            seeded.schedule_ids.append(schedule_id)
            seeded.idempotency_keys.append(key)

        for name in ("lock-a", "lock/b"):
            held = (f"{prefix}/{name}", f"{prefix}-execution-{name}", f"{prefix}-lock-process")
            body = {
                "resourceId": held[0],
                "executionId": held[1],
                "processId": held[2],
                "ttl": HOUR_MS,
            }
            _ok(api.post("/locks/acquire", json=body))
            seeded.locks.append(held)
        seeded.process_ids.append(seeded.locks[0][2])
    return seeded
