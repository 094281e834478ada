"""A stand-in for `DataSource` with fixed records and a frozen clock, for snapshot tests only:
snapshots need the same pixels every run, which a live server's timestamps never give. The
pilot tests use the real `DataSource` against a real server."""

from __future__ import annotations

import base64
import json
from typing import Any

from resonate.calltree import Node
from resonate.tui.data import (
    DataError,
    Doctor,
    Page,
    PromiseDetail,
    PromiseFilter,
    ServerStatus,
    Stuck,
)
from resonate.tui.metrics import RateHistory, parse_scrape

NOW_MS = 1_796_454_000_000  # 2026-12-05T07:00:00Z
MINUTE = 60_000


def b64(value: Any) -> str:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return base64.b64encode(raw).decode()


def promise(promise_id: str, state: str, **extra: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "id": promise_id,
        "state": state,
        "param": {},
        "value": {},
        "timeout": NOW_MS + 30 * MINUTE,
        "tags": {},
        "createdOn": NOW_MS - 5 * MINUTE,
    }
    document.update(extra)
    if state != "PENDING":
        document.setdefault("completedOn", NOW_MS - 2 * MINUTE)
    return document


ROOT = promise(
    "order-7",
    "PENDING",
    param={"data": b64({"func": "checkout", "args": [7], "kwargs": {}})},
    tags={"resonate:invoke": "poll://any@workflows", "team": "billing"},
)
CHILDREN = [
    promise(
        "order-7.1",
        "RESOLVED",
        param={"data": b64({"func": "reserve", "args": [7]})},
        value={"data": b64({"reserved": True})},
    ),
    promise("order-7.2", "RESOLVED", tags={"resonate:timeout": "true"}),
    promise("order-7.3", "PENDING", param={"data": b64({"func": "charge", "args": [7, 19.99]})}),
]
PROMISES = [
    ROOT,
    *CHILDREN,
    promise("invoice-2026-12", "REJECTED", value={"data": b64(b"\x00\x01card declined\xff")}),
    promise("refund-18", "REJECTED_CANCELED", tags={"team": "support"}),
    promise("report-nightly", "REJECTED_TIMEDOUT", timeout=NOW_MS - 60 * MINUTE),
    promise("stale-approval", "PENDING", timeout=NOW_MS - 3 * MINUTE, tags={"team": "ops"}),
]
TASKS = [
    {
        "id": "order-7:invoke",
        "state": "CLAIMED",
        "type": "invoke",
        "counter": 1,
        "attempt": 0,
        "rootPromiseId": "order-7",
        "processId": "worker-a/4711",
        "recv": {"type": "poll", "data": {"group": "workflows", "id": "worker-a"}},
        "timeout": NOW_MS + 30 * MINUTE,
        "ttl": 60_000,
        "expiresAt": NOW_MS + 42_000,
        "createdOn": NOW_MS - 5 * MINUTE,
    },
    {
        "id": "report-nightly:invoke",
        "state": "ENQUEUED",
        "type": "invoke",
        "counter": 5,
        "attempt": 4,
        "rootPromiseId": "report-nightly",
        "recv": "poll://any@reports",
        "timeout": NOW_MS + 10 * MINUTE,
        "ttl": 60_000,
        "expiresAt": NOW_MS + 7_000,
        "createdOn": NOW_MS - 20 * MINUTE,
    },
    {
        "id": "order-6:invoke",
        "state": "COMPLETED",
        "type": "invoke",
        "counter": 2,
        "attempt": 1,
        "rootPromiseId": "order-6",
        "recv": "poll://any@workflows",
        "timeout": NOW_MS,
        "ttl": 60_000,
        "expiresAt": 0,
        "createdOn": NOW_MS - 50 * MINUTE,
        "completedOn": NOW_MS - 49 * MINUTE,
    },
]
# Tasks of the 2026-04-01 protocol, as `DataSource.tasks` lists them after the REST ones.
TASKS_2026 = [
    {
        "id": "wf-9",
        "state": "acquired",
        "version": 3,
        "resumes": 1,
        "ttl": 60_000,
        "pid": "worker-2",
        "protocol": "2026-04-01",
    },
    {"id": "wf-9:2", "state": "suspended", "version": 1, "resumes": 0, "protocol": "2026-04-01"},
]
SCHEDULES = [
    {
        "id": "nightly-report",
        "description": "the nightly sales report",
        "cron": "0 2 * * *",
        "timezone": "Europe/Paris",
        "tags": {"team": "sales"},
        "promiseId": "report.{{.timestamp}}",
        "promiseTimeout": 3_600_000,
        "promiseParam": {"data": b64({"func": "report", "args": []})},
        "promiseTags": {"resonate:invoke": "poll://any@reports"},
        "lastRunTime": NOW_MS - 6 * 60 * MINUTE,  # 02:00 in Paris is 01:00 UTC in December
        "nextRunTime": NOW_MS + 18 * 60 * MINUTE,
        "createdOn": NOW_MS - 3 * 24 * 60 * MINUTE,
    },
    {
        "id": "every-5",
        "cron": "*/5 * * * *",
        "tags": {},
        "promiseId": "tick.{{.timestamp}}",
        "promiseTimeout": MINUTE,
        "promiseParam": {},
        "nextRunTime": NOW_MS - 2 * MINUTE,
        "createdOn": NOW_MS - 60 * MINUTE,
    },
]
LOCKS = [
    {
        "resourceId": "ledger",
        "executionId": "order-7",
        "processId": "worker-a/4711",
        "ttl": 30_000,
        "expiresAt": NOW_MS + 25_000,
    },
    {
        "resourceId": "mailer",
        "executionId": "newsletter",
        "processId": "worker-b/99",
        "ttl": 60_000,
        "expiresAt": NOW_MS + 9_000,
    },
]
CALLBACKS = [
    {
        "id": "__resume:order-7:order-7.3",
        "type": "resume",
        "promiseId": "order-7.3",
        "rootPromiseId": "order-7",
        "recv": "poll://any@workflows",
        "timeout": NOW_MS + 30 * MINUTE,
        "createdOn": NOW_MS - MINUTE,
    }
]
STATUS = ServerStatus(
    ready=True,
    ready_detail="ready",
    version="0.1.0",
    store="sqlite",
    started_at=NOW_MS - 3 * 60 * MINUTE - 12 * MINUTE,
    server_time=NOW_MS,
    promises={
        "PENDING": 1_204,
        "RESOLVED": 98_311,
        "REJECTED": 412,
        "REJECTED_CANCELED": 37,
        "REJECTED_TIMEDOUT": 9,
    },
    tasks={"INIT": 3, "ENQUEUED": 12, "CLAIMED": 40, "COMPLETED": 97_002, "TIMEDOUT": 5},
    schedules=2,
    locks=2,
)


def finding(check: str, severity: str, subject: str | None, message: str, action: str) -> Any:
    return {
        "check": check,
        "severity": severity,
        "kind": check.split(".")[0],
        "id": subject,
        "message": message,
        "action": action,
    }


LOOP_NAMES = (
    "timeout_promises",
    "schedule_promises",
    "timeout_tasks",
    "timeout_locks",
    "retention",
    "enqueue_tasks",
    "deliver_2026",
)
# `GET /doctor` as a server with work stuck answers it, in the words of the server's checks.
DOCTOR: dict[str, Any] = {
    "time": NOW_MS,
    "ok": False,
    "findings": [
        finding(
            "task.unroutable",
            "error",
            "import-3:invoke",
            "INIT for root promise import-3, its recv sqs://imports names no destination (an "
            "unknown target, or its transport is disabled): it is never sent",
            "fix the recv (the promise's resonate:invoke tag), or add the target to "
            "aio.sender.targets / enable its transport",
        ),
        finding(
            "promise.overdue",
            "warning",
            "stale-approval",
            "PENDING 3 min past its timeout: the timeout loop has not reached it "
            "(timeout_promises last completed a pass 4 min ago)",
            "if loop.stalled names timeout_promises, fix that first; otherwise the loop is "
            "behind: see store.slow and system.promiseBatchSize",
        ),
        finding(
            "task.reissued",
            "warning",
            "report-nightly:invoke",
            "issued 5 times for root promise report-nightly: workers keep dropping it or "
            "letting its lease lapse (a worker crashing on it?)",
            "read the worker logs for task report-nightly:invoke; if it can never succeed, "
            "reject or cancel promise report-nightly",
        ),
        finding(
            "lock.stale",
            "warning",
            "mailer",
            "held by execution newsletter of process worker-b/99, not renewed for 51 s (more "
            "than half its ttl of 60 s): the process has most likely stopped heart-beating",
            "check process worker-b/99; the lock frees itself at its expiry, or release it: "
            "resonate locks release mailer --execution-id newsletter",
        ),
        finding(
            "group.no_connections",
            "warning",
            "reports",
            "4 REST task(s) waiting for poll group reports, which has no poll-listener "
            "connection to this server (each server knows only its own connections)",
            "start workers polling group reports on this server, or check the recv of those tasks",
        ),
    ],
    "groups": [
        {"group": "reports", "connections": 0, "undelivered": 4},
        {"group": "workflows", "connections": 3, "undelivered": 0},
    ],
    "loops": [
        {"name": name, "lastSuccessAt": NOW_MS - 800, "ok": True, "lastError": None}
        for name in LOOP_NAMES
    ],
    "store": {
        "kind": "sqlite",
        "batchP99Ms": 3.8,
        "diskFreeBytes": 41_200_000_000,
        "migrationsPending": 0,
    },
}
# ... and a server with nothing stuck.
DOCTOR_HEALTHY = {
    **DOCTOR,
    "ok": True,
    "findings": [],
    "groups": [{"group": "workflows", "connections": 3, "undelivered": 0}],
    "store": {**DOCTOR["store"], "batchP99Ms": 2.4},
}


def scrape_text(step: int) -> str:
    """A /metrics text whose counters grow in a fixed wave, so the sparklines have a shape."""
    wave = [3, 5, 8, 12, 9, 6, 4, 7, 11, 14, 10, 6]
    total = sum(wave[index % len(wave)] for index in range(step))
    lines = [
        "# TYPE promises_total counter",
        f'promises_total{{state="created"}} {total * 10}',
        f'promises_total{{state="resolved"}} {total * 9}',
        "# TYPE http_requests_total counter",
        f'http_requests_total{{method="POST",path="/promises",status="201"}} {total * 25}',
        f'http_requests_total{{method="GET",path="/promises/{{id}}",status="404"}} {step}',
        "# TYPE http_requests_duration_seconds histogram",
    ]
    for bound, share in (("0.001", 0.5), ("0.005", 0.9), ("0.025", 0.99), ("+Inf", 1.0)):
        count = int(total * 25 * share)
        labels = f'method="POST",path="/promises",le="{bound}"'
        lines.append(f"http_requests_duration_seconds_bucket{{{labels}}} {count}")
    lines += [
        "# TYPE task_deliveries_total counter",
        f'task_deliveries_total{{plugin="poll",outcome="success"}} {total * 2}',
        "# TYPE tasks_total counter",
        f'tasks_total{{state="reissued"}} {step // 3}',
        "# TYPE poll_connections gauge",
        'poll_connections{group="workflows"} 3',
        'poll_connections{group="reports"} 1',
    ]
    return "\n".join(lines) + "\n"


def fixed_history(points: int = 40) -> RateHistory:
    history = RateHistory()
    for step in range(points + 1):
        history.add(parse_scrape(scrape_text(step), at=float(step * 2)))
    return history


class FixedData:
    """The `DataSource` interface over the records above. `doctor`: what `GET /doctor` answers,
    None for a server older than it (the dashboard then reads `GET /stuck`)."""

    server_url = "http://localhost:8001"
    metrics_url = "http://localhost:9090/metrics"

    def __init__(self, doctor: dict[str, Any] | None = DOCTOR) -> None:
        self._history = fixed_history()
        self._doctor = doctor

    async def close(self) -> None:
        return None

    async def status(self) -> ServerStatus:
        return STATUS

    async def scrape(self) -> Any:
        return self._history.previous  # the same scrape again: adds no point

    async def health(self) -> Doctor | Stuck:
        if self._doctor is None:
            return await self.stuck()
        return Doctor.from_json(self._doctor)

    async def stuck(self) -> Stuck:
        return Stuck(
            promises=[p for p in PROMISES if p["id"] == "stale-approval"],
            tasks=[{**TASKS[1], "reason": "counter"}, {**TASKS[0], "reason": "lease"}][:2],
            schedules=[SCHEDULES[1]],
            locks=[LOCKS[1]],
        )

    async def promises(self, where: PromiseFilter, cursor: str | None, limit: int) -> Page:
        return Page(PROMISES[:limit], None)

    async def tasks(self, where: Any, cursor: str | None, limit: int) -> Page:
        return Page([*TASKS, *TASKS_2026][:limit], None)

    async def schedules(self, where: Any, cursor: str | None, limit: int) -> Page:
        return Page(SCHEDULES[:limit], None)

    async def locks(self, where: Any, cursor: str | None, limit: int) -> Page:
        return Page(LOCKS[:limit], None)

    async def promise_detail(self, promise_id: str) -> PromiseDetail:
        found = next((p for p in PROMISES if p["id"] == promise_id), None)
        if found is None:
            raise DataError("promise not found (HTTP 404, code 40400)", 404)
        tree = Node(ROOT, [Node(child) for child in CHILDREN])
        return PromiseDetail(found, [TASKS[0]], tree, CALLBACKS)

    async def task(self, task_id: str) -> dict[str, Any]:
        return next(t for t in [*TASKS, *TASKS_2026] if t["id"] == task_id)

    async def task_2026(self, task_id: str) -> dict[str, Any] | None:
        return next((t for t in TASKS_2026 if t["id"] == task_id), None)

    async def schedule(self, schedule_id: str) -> dict[str, Any]:
        return next(s for s in SCHEDULES if s["id"] == schedule_id)

    async def lock(self, resource_id: str) -> dict[str, Any]:
        return next(lock for lock in LOCKS if lock["resourceId"] == resource_id)
