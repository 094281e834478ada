"""GET /doctor: what is wrong with this server and its store, each finding with a severity, its
cause in one line and a suggested action (docs/operations.md, "Doctor").

Two steps. ``read_rows`` is one read-only pass over the store (``Store.read``): the bounded,
indexed lists of ``dashboard.find_stuck`` plus the INIT and 2026-pending tasks soonest due, each
list at most ``limit`` (or ``WAITING_SAMPLE``) rows, so the cost does not grow with the tables.
``diagnose`` then turns those rows and what this process knows (its loops, poll connections,
recent store latency, disk, schema) into findings; it reads nothing and writes nothing.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from resonate.core.clock import Clock
from resonate.core.lock import Lock
from resonate.core.promise import Promise
from resonate.core.routing import Sender
from resonate.core.schedule import Schedule
from resonate.core.task import Task, add_ms
from resonate.core.task2026 import PollAddress, Task2026, Task2026State, parse_address
from resonate.server import dashboard
from resonate.server.config.values import human_size
from resonate.server.cron import parse_cron
from resonate.server.delivery.poll import PollHub
from resonate.store.base import SchemaStatus, Store, Transaction

if TYPE_CHECKING:
    from resonate.server.loops import Loop

DEFAULT_LIMIT = dashboard.DEFAULT_STUCK_LIMIT  # findings per check
MAX_LIMIT = dashboard.MAX_STUCK_LIMIT
DEFAULT_OVERDUE_AFTER_MS = 10_000  # a promise or schedule this late is reported
DEFAULT_LEASE_WITHIN_MS = dashboard.DEFAULT_LEASE_WITHIN_MS
DEFAULT_MIN_COUNTER = 5  # a task issued this many times is reported
DEFAULT_LOOP_STALLED_AFTER_MS = 60_000
DEFAULT_SLOW_BATCH_MS = 100
DEFAULT_MIN_DISK_FREE = 1 << 30  # 1 GiB
# The waiting tasks of each protocol read to count the tasks waiting per poll group.
WAITING_SAMPLE = 1000

SEVERITIES = ("error", "warning", "info")
CHECKS = (
    "promise.overdue",
    "task.reissued",
    "task.unroutable",
    "task.lease_expired",
    "schedule.late",
    "lock.stale",
    "group.no_connections",
    "loop.stalled",
    "store.slow",
    "store.disk_low",
    "store.migrations_pending",
)
KINDS = ("promise", "task", "schedule", "lock", "group", "loop", "store")

# The loops whose lag explains a stuck item (their names in resonate.server.loops).
PROMISE_LOOP = "timeout_promises"
TASK_LOOP = "timeout_tasks"
SCHEDULE_LOOP = "schedule_promises"
LOCK_LOOP = "timeout_locks"
LEASE_LOOP_2026 = "deliver_2026"

REST = "REST"
V2026 = "2026"


@dataclass(frozen=True, slots=True)
class DoctorQuery:
    limit: int = DEFAULT_LIMIT  # findings per check
    overdue_after: int = DEFAULT_OVERDUE_AFTER_MS  # ms
    lease_within: int = DEFAULT_LEASE_WITHIN_MS  # ms
    min_counter: int = DEFAULT_MIN_COUNTER
    loop_stalled_after: int = DEFAULT_LOOP_STALLED_AFTER_MS  # ms
    slow_batch_ms: int = DEFAULT_SLOW_BATCH_MS
    min_disk_free: int = DEFAULT_MIN_DISK_FREE  # bytes


@dataclass(frozen=True, slots=True)
class Finding:
    check: str
    severity: str  # "error" | "warning" | "info"
    kind: str
    id: str | None
    message: str
    action: str

    def to_json(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "severity": self.severity,
            "kind": self.kind,
            "id": self.id,
            "message": self.message,
            "action": self.action,
        }


@dataclass(frozen=True, slots=True)
class Rows:
    """What ``read_rows`` found in the store."""

    promises: list[Promise]  # PENDING past timeout + overdue_after
    leases: list[Task]  # CLAIMED with the lease ending within lease_within
    leases_2026: list[Task2026]  # acquired, the lease ending within lease_within
    reissued: list[Task]
    schedules: list[Schedule]  # next run older than overdue_after
    locks: list[Lock]  # not renewed for more than half their ttl
    waiting: list[Task]  # INIT, soonest due first
    waiting_2026: list[Task2026]  # pending


async def read_rows(tx: Transaction, now: int, query: DoctorQuery) -> Rows:
    limit = query.limit
    return Rows(
        # More than overdue_after past: the store's read is `timeout <= now`.
        promises=await tx.stuck_promises(now - query.overdue_after - 1, limit),
        leases=await tx.tasks_with_lease_ending(add_ms(now, query.lease_within), limit),
        leases_2026=await tx.leases_ending_2026(add_ms(now, query.lease_within), limit),
        reissued=await tx.reissued_tasks(query.min_counter, limit),
        schedules=await tx.overdue_schedules(now - query.overdue_after, limit),
        locks=await tx.stale_locks(now, limit),
        waiting=await tx.waiting_tasks(WAITING_SAMPLE),
        waiting_2026=await tx.search_tasks_2026(Task2026State.PENDING.value, None, WAITING_SAMPLE),
    )


@dataclass(frozen=True, slots=True)
class Environment:
    """What this server process knows besides the store's rows."""

    store_kind: str
    started_at: int
    loops: Sequence[Loop] = ()
    rest_hub: PollHub | None = None  # the REST poll listener's connections
    hub_2026: PollHub | None = None  # the 2026 protocol's streams (GET /poll/...)
    sender: Sender | None = None  # resolves REST recvs as the enqueue loop does
    batch_p99_ms: float | None = None
    recent_batches: int = 0
    sqlite_path: str | None = None
    disk_free: int | None = None
    schema: SchemaStatus | None = None


@dataclass(frozen=True, slots=True)
class GroupRow:
    group: str
    connections: int  # on this server, both transports
    undelivered: int  # waiting tasks of WAITING_SAMPLE per protocol


@dataclass(frozen=True, slots=True)
class LoopRow:
    name: str
    last_success_at: int | None
    ok: bool
    last_error: str | None


@dataclass
class Report:
    time: int
    findings: list[Finding] = field(default_factory=list)
    groups: list[GroupRow] = field(default_factory=list)
    loops: list[LoopRow] = field(default_factory=list)
    store_kind: str = "sqlite"
    batch_p99_ms: float | None = None
    disk_free: int | None = None
    migrations_pending: int = 0

    @property
    def ok(self) -> bool:
        return not any(finding.severity in ("error", "warning") for finding in self.findings)

    def to_json(self) -> dict[str, Any]:
        return {
            "time": self.time,
            "ok": self.ok,
            "findings": [finding.to_json() for finding in self.findings],
            "groups": [
                {"group": g.group, "connections": g.connections, "undelivered": g.undelivered}
                for g in self.groups
            ],
            "loops": [
                {
                    "name": loop.name,
                    "lastSuccessAt": loop.last_success_at,
                    "ok": loop.ok,
                    "lastError": loop.last_error,
                }
                for loop in self.loops
            ],
            "store": {
                "kind": self.store_kind,
                "batchP99Ms": self.batch_p99_ms,
                "diskFreeBytes": self.disk_free,
                "migrationsPending": self.migrations_pending,
            },
        }


# ---- reading what the process knows -------------------------------------------------------------


def disk_free(path: str | None) -> int | None:
    """Free bytes on the file system of a SQLite file; None in memory or when unknown."""
    if path is None or path == ":memory:" or path.startswith("file:"):
        return None
    try:
        folder = Path(path).expanduser().resolve().parent
        return shutil.disk_usage(folder).free
    except OSError:
        return None


async def run_doctor(
    store: Store, clock: Clock, environment: Environment, query: DoctorQuery
) -> Report:
    """Read the rows at the clock's now, then diagnose them."""
    now = clock.now_ms()
    rows = await store.read(partial(read_rows, now=now, query=query))
    return diagnose(rows, environment, query, now)


# ---- the diagnosis ------------------------------------------------------------------------------


def diagnose(rows: Rows, env: Environment, query: DoctorQuery, now: int) -> Report:
    loops = _loop_rows(env, query, now)
    loop_by_name = {row.name: row for row in loops}
    findings: list[Finding] = []
    findings += _overdue_promises(rows, query, now, loop_by_name)
    findings += _reissued_tasks(rows, query)
    unroutable, groups, group_findings = _routing(rows, env, query)
    findings += unroutable
    findings += _leases(rows, query, now, loop_by_name)
    findings += _late_schedules(rows, query, now, loop_by_name)
    findings += _stale_locks(rows, query, now, loop_by_name)
    findings += group_findings
    findings += _stalled_loops(env, loops, now)
    findings += _store(env, query)
    order = {severity: rank for rank, severity in enumerate(SEVERITIES)}
    findings.sort(key=lambda finding: order[finding.severity])  # stable: check order kept
    pending = 0
    if env.schema is not None:
        pending = max(0, env.schema.latest - env.schema.current)
    return Report(
        time=now,
        findings=findings,
        groups=groups,
        loops=loops,
        store_kind=env.store_kind,
        batch_p99_ms=env.batch_p99_ms,
        disk_free=env.disk_free,
        migrations_pending=pending,
    )


def _truncated(check: str, kind: str, found: int, limit: int) -> list[Finding]:
    """An info finding when a list stopped at ``limit``: there may be more."""
    if found < limit:
        return []
    return [
        Finding(
            check,
            "info",
            kind,
            None,
            f"{limit} or more items found, the first {limit} listed",
            f"raise limit (at most {MAX_LIMIT}) to see more, or fix the cause above first",
        )
    ]


def _loop_rows(env: Environment, query: DoctorQuery, now: int) -> list[LoopRow]:
    rows = []
    for loop in env.loops:
        allowed = max(query.loop_stalled_after, 2 * loop.idle_tick_ms)
        since = loop.last_success_at if loop.last_success_at is not None else env.started_at
        rows.append(
            LoopRow(loop.name, loop.last_success_at, now - since <= allowed, loop.last_error)
        )
    return rows


def _loop_state(name: str, loops: dict[str, LoopRow], now: int) -> str:
    row = loops.get(name)
    if row is None:
        return f"the {name} loop does not run on this server"
    if row.last_success_at is None:
        state = f"{name} has completed no pass yet"
    else:
        state = f"{name} last completed a pass {ago(now - row.last_success_at)} ago"
    if row.last_error:
        state += f", last error: {row.last_error}"
    return state


def _overdue_promises(
    rows: Rows, query: DoctorQuery, now: int, loops: dict[str, LoopRow]
) -> list[Finding]:
    findings = [
        Finding(
            "promise.overdue",
            "warning",
            "promise",
            promise.id,
            f"PENDING {ago(now - promise.timeout)} past its timeout: the timeout loop has not "
            f"reached it ({_loop_state(PROMISE_LOOP, loops, now)})",
            f"if loop.stalled names {PROMISE_LOOP}, fix that first; otherwise the loop is behind: "
            "see store.slow and system.promiseBatchSize",
        )
        for promise in rows.promises
    ]
    return findings + _truncated("promise.overdue", "promise", len(rows.promises), query.limit)


def _reissued_tasks(rows: Rows, query: DoctorQuery) -> list[Finding]:
    findings = []
    for task in rows.reissued:
        holder = f", now CLAIMED by process {task.process_id}" if task.process_id else ""
        findings.append(
            Finding(
                "task.reissued",
                "warning",
                "task",
                task.id,
                f"issued {task.counter} times for root promise {task.root_promise_id}{holder}: "
                "workers keep dropping it or letting its lease lapse (a worker crashing on it?)",
                f"read the worker logs for task {task.id}; if it can never succeed, reject or "
                f"cancel promise {task.root_promise_id}",
            )
        )
    return findings + _truncated("task.reissued", "task", len(rows.reissued), query.limit)


def _recv_text(recv: Any) -> str:
    return recv if isinstance(recv, str) else json.dumps(recv, separators=(",", ":"))


def _routing(
    rows: Rows, env: Environment, query: DoctorQuery
) -> tuple[list[Finding], list[GroupRow], list[Finding]]:
    """The waiting tasks' poll groups against this server's connections: per-task findings
    (``task.unroutable``), the groups table and per-group findings (``group.no_connections``)."""
    waiting: dict[tuple[str, str], int] = {}  # (group, protocol) -> tasks
    unroutable: list[Finding] = []

    def report(finding: Finding) -> None:
        if len(unroutable) < query.limit:
            unroutable.append(finding)

    def connected(hub: PollHub | None, group: str) -> int:
        return len(hub.connections(group)) if hub is not None else 0

    for task in rows.waiting:
        destination = env.sender.resolve(task.recv) if env.sender is not None else None
        if destination is None:
            report(
                Finding(
                    "task.unroutable",
                    "error",
                    "task",
                    task.id,
                    f"INIT for root promise {task.root_promise_id}, its recv "
                    f"{_recv_text(task.recv)} names no destination (an unknown target, or its "
                    "transport is disabled): it is never sent",
                    "fix the recv (the promise's resonate:invoke tag), or add the target to "
                    "aio.sender.targets / enable its transport",
                )
            )
            continue
        if destination.plugin != "poll":
            continue
        group = str(destination.data["group"])
        waiting[group, REST] = waiting.get((group, REST), 0) + 1
        if connected(env.rest_hub, group) == 0:
            report(_no_connection_task(task.id, group, REST))
    for task_2026 in rows.waiting_2026:
        address = parse_address(task_2026.target)
        if address is None:
            report(
                Finding(
                    "task.unroutable",
                    "error",
                    "task",
                    task_2026.id,
                    f"pending (2026 protocol), its target {task_2026.target} is not an "
                    "address: it is never sent",
                    "fix the promise's resonate:target tag (poll://any@<group> or an http URL)",
                )
            )
            continue
        if not isinstance(address, PollAddress):
            continue
        waiting[address.group, V2026] = waiting.get((address.group, V2026), 0) + 1
        if connected(env.hub_2026, address.group) == 0:
            report(_no_connection_task(task_2026.id, address.group, V2026))
    unroutable += _truncated("task.unroutable", "task", len(unroutable), query.limit)

    groups: dict[str, GroupRow] = {}
    names = {group for group, _ in waiting}
    for hub in (env.rest_hub, env.hub_2026):
        if hub is not None:
            names.update(hub.groups())
    for name in sorted(names):
        groups[name] = GroupRow(
            name,
            connected(env.rest_hub, name) + connected(env.hub_2026, name),
            waiting.get((name, REST), 0) + waiting.get((name, V2026), 0),
        )
    group_findings = []
    for (group, protocol), count in sorted(waiting.items()):
        hub = env.rest_hub if protocol == REST else env.hub_2026
        if connected(hub, group) == 0:
            more = "+" if _sample_full(rows, protocol) else ""
            group_findings.append(
                Finding(
                    "group.no_connections",
                    "warning",
                    "group",
                    group,
                    f"{count}{more} {protocol} task(s) waiting for poll group {group}, which has "
                    f"no {_transport(protocol)} connection to this server (each server knows only "
                    "its own connections)",
                    f"start workers polling group {group} on this server, or check the recv of "
                    "those tasks",
                )
            )
    return unroutable, list(groups.values()), group_findings


def _sample_full(rows: Rows, protocol: str) -> bool:
    found = len(rows.waiting) if protocol == REST else len(rows.waiting_2026)
    return found >= WAITING_SAMPLE


def _transport(protocol: str) -> str:
    return "poll-listener" if protocol == REST else "2026-stream (GET /poll/...)"


def _no_connection_task(task_id: str, group: str, protocol: str) -> Finding:
    state = "INIT" if protocol == REST else "pending (2026 protocol)"
    return Finding(
        "task.unroutable",
        "warning",
        "task",
        task_id,
        f"{state}, waiting for poll group {group}, which has no {_transport(protocol)} "
        "connection to this server (each server knows only its own connections)",
        f"start a worker polling group {group} on this server, or check the task's recv",
    )


def _leases(rows: Rows, query: DoctorQuery, now: int, loops: dict[str, LoopRow]) -> list[Finding]:
    """task.lease_expired: REST tasks CLAIMED and 2026 tasks acquired whose holder stopped
    heart-beating, each freed by its own loop."""
    findings = []
    rest = _loop_state(TASK_LOOP, loops, now)
    for task in rows.leases:
        lease = Lease(task.id, "CLAIMED", task.process_id, task.expires_at, task.ttl)
        findings += lease.findings(now, TASK_LOOP, rest, "re-issues")
    findings += _truncated("task.lease_expired", "task", len(rows.leases), query.limit)
    v2026 = _loop_state(LEASE_LOOP_2026, loops, now)
    for task26 in rows.leases_2026:
        if task26.lease_at is not None:
            lease = Lease(task26.id, "acquired", task26.pid, task26.lease_at, task26.ttl or 0)
            findings += lease.findings(now, LEASE_LOOP_2026, v2026, "sets pending again")
    return findings + _truncated("task.lease_expired", "task", len(rows.leases_2026), query.limit)


@dataclass(frozen=True, slots=True)
class Lease:
    task_id: str
    held: str  # "CLAIMED" (REST) or "acquired" (2026)
    holder: str | None
    ends: int
    ttl: int

    def findings(self, now: int, loop: str, loop_state: str, frees: str) -> list[Finding]:
        """An error once the lease has ended and ``loop`` has not freed the task yet; a warning
        when less than a quarter of it is left (three quarters passed without a heartbeat,
        where the SDKs heartbeat well within it); nothing otherwise."""
        left = self.ends - now
        silent = ago(now - (self.ends - self.ttl)) if self.ttl else "unknown"
        who = f"{self.held} by process {self.holder}"
        if left <= 0:
            return [
                Finding(
                    "task.lease_expired",
                    "error",
                    "task",
                    self.task_id,
                    f"{who}, whose lease expired {ago(-left)} ago (no heartbeat for {silent}); "
                    f"not freed yet ({loop_state})",
                    f"the {loop} loop {frees} it at its next pass; if it stays, see "
                    "loop.stalled and store.slow",
                )
            ]
        if 4 * left < self.ttl:
            return [
                Finding(
                    "task.lease_expired",
                    "warning",
                    "task",
                    self.task_id,
                    f"{who}, no heartbeat for {silent}: its lease ends in {ago(left)}",
                    f"check process {self.holder} (alive? heart-beating?); once the lease ends "
                    "the task goes to another worker",
                )
            ]
        return []


def _late_schedules(
    rows: Rows, query: DoctorQuery, now: int, loops: dict[str, LoopRow]
) -> list[Finding]:
    findings = []
    for schedule in rows.schedules:
        late = now - schedule.next_run_time
        try:
            cron = parse_cron(schedule.cron, schedule.timezone)
            interval = cron.next_after(schedule.next_run_time) - schedule.next_run_time
        except Exception:
            continue  # stored schedules were validated; nothing to say about one that is not
        if late <= interval:
            continue
        findings.append(
            Finding(
                "schedule.late",
                "warning",
                "schedule",
                schedule.id,
                f"next run {ago(late)} overdue, more than one interval ({ago(interval)}): "
                f"not fired ({_loop_state(SCHEDULE_LOOP, loops, now)})",
                f"see loop.stalled and store.slow; missed slots fire at the next {SCHEDULE_LOOP} "
                "pass (up to system.scheduleMaxCatchUp)",
            )
        )
    return findings + _truncated("schedule.late", "schedule", len(rows.schedules), query.limit)


def _stale_locks(
    rows: Rows, query: DoctorQuery, now: int, loops: dict[str, LoopRow]
) -> list[Finding]:
    findings = []
    for lock in rows.locks:
        holder = f"held by execution {lock.execution_id} of process {lock.process_id}"
        if lock.expires_at <= now:
            message = (
                f"{holder}, expired {ago(now - lock.expires_at)} ago and not deleted yet "
                f"({_loop_state(LOCK_LOOP, loops, now)})"
            )
        else:
            message = (
                f"{holder}, not renewed for {ago(now - (lock.expires_at - lock.ttl))} (more than "
                f"half its ttl of {ago(lock.ttl)}): the process has most likely stopped "
                "heart-beating"
            )
        findings.append(
            Finding(
                "lock.stale",
                "warning",
                "lock",
                lock.resource_id,
                message,
                f"check process {lock.process_id}; the lock frees itself at its expiry, or "
                f"release it: resonate locks release {lock.resource_id} --execution-id "
                f"{lock.execution_id}",
            )
        )
    return findings + _truncated("lock.stale", "lock", len(rows.locks), query.limit)


def _stalled_loops(env: Environment, loops: list[LoopRow], now: int) -> list[Finding]:
    by_name = {loop.name: loop for loop in env.loops}
    findings = []
    for row in loops:
        if row.ok:
            continue
        loop = by_name[row.name]
        if row.last_success_at is None:
            what = f"no successful pass since the server started {ago(now - env.started_at)} ago"
        else:
            what = f"no successful pass for {ago(now - row.last_success_at)}"
        what += f" (it runs every {ago(loop.idle_tick_ms)} when idle)"
        if loop.paused:
            what += "; paused (debug mode)"
        if row.last_error:
            what += f"; last error: {row.last_error}"
        findings.append(
            Finding(
                "loop.stalled",
                "error",
                "loop",
                row.name,
                what,
                f"read the server log for '{row.name} pass failed'; check the store (readiness, "
                "store.slow); restart the server if it stays",
            )
        )
    return findings


def _store(env: Environment, query: DoctorQuery) -> list[Finding]:
    findings = []
    p99 = env.batch_p99_ms
    if p99 is not None and p99 > query.slow_batch_ms:
        findings.append(
            Finding(
                "store.slow",
                "warning",
                "store",
                None,
                f"store transactions take {p99:g} ms at the 99th percentile over the last "
                f"{env.recent_batches} batches, above {query.slow_batch_ms} ms",
                "SQLite: check the disk's fsync latency and aio.store.sqlite.synchronous; "
                "PostgreSQL: check the database's load and the network to it",
            )
        )
    free = env.disk_free
    if free is not None and free < query.min_disk_free:
        findings.append(
            Finding(
                "store.disk_low",
                "error" if free < query.min_disk_free // 10 else "warning",
                "store",
                None,
                f"{human_size(free)} free on the file system of {env.sqlite_path}, below "
                f"{human_size(query.min_disk_free)}",
                "free space or grow the volume; turn on retention (system.retention.promises); "
                "`resonate db vacuum` gives back the space of deleted rows",
            )
        )
    schema = env.schema
    if schema is not None and schema.current != schema.latest:
        if schema.current < schema.latest:
            message = (
                f"database schema at version {schema.current}, this server expects "
                f"{schema.latest}: {schema.latest - schema.current} migration(s) pending"
            )
            action = 'run "resonate migrate up" (docs/operations.md, "Upgrading")'
        else:
            message = (
                f"database schema at version {schema.current}, newer than this server knows "
                f"({schema.latest}): another server migrated it"
            )
            action = "upgrade resonate on this server"
        findings.append(
            Finding("store.migrations_pending", "error", "store", None, message, action)
        )
    return findings


# ---- text ---------------------------------------------------------------------------------------


def ago(ms: int) -> str:
    """A duration for a message: 850 ms, 42 s, 7 min, 5 h, 3 d."""
    ms = max(0, ms)
    if ms < 1000:
        return f"{ms} ms"
    seconds = ms // 1000
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 120 * 60:
        return f"{seconds // 60} min"
    if seconds < 48 * 3600:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} d"
