"""The only module of the TUI that talks to the server: the API (through the typed async client)
and the Prometheus endpoint. It returns plain records and raises one error type, `DataError`,
whose message is the one line the status bar shows; screens never see httpx or the client.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from resonate import calltree
from resonate.calltree import Node, Search
from resonate.client import (
    ApiError,
    AsyncResonateClient,
    CompletionState,
    Credentials,
    ResonateClientError,
    ServerUnreachable,
    TaskQuery,
    as_2026_record,
    encode_value,
    get_doctor_request,
    page_items,
)
from resonate.tui.metrics import Scrape, parse_scrape

JsonObject = dict[str, Any]

DEFAULT_METRICS_PORT = 9090
# Shorter than the CLI's 30 s: a dashboard should say "unreachable" while the user still looks.
REQUEST_TIMEOUT_SECONDS = 5.0
PAGE_SIZE = 50
MAX_PAGE = 100  # the API's largest `limit`
# Where the stuck panel draws its lines (sent to `GET /stuck`, for servers without `/doctor`).
LEASE_WARNING_MS = 10_000
REISSUE_WARNING_COUNTER = 3
# The most findings of each check asked of `GET /doctor` (the server's default; `/stuck`'s too).
DOCTOR_LIMIT = 20
# After a server answered 404 for `GET /doctor` (older than the route), `/stuck` is read
# instead; `/doctor` is asked again after this long, or as soon as the server's version changes.
DOCTOR_RETRY_SECONDS = 300.0
SEVERITY_RANK = {"error": 0, "warning": 1, "info": 2}


class DataError(Exception):
    """A failed call, described in one line; `status` is the HTTP status when there was one."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def describe(error: BaseException) -> DataError:
    if isinstance(error, DataError):
        return error
    if isinstance(error, ApiError):
        if error.status == 401:
            return DataError(f"unauthorized (HTTP 401): {error.message}; check -T or -U/-P", 401)
        return DataError(f"{error.message} (HTTP {error.status}, code {error.code})", error.status)
    if isinstance(error, ServerUnreachable):
        return DataError(str(error))
    if isinstance(error, ResonateClientError):
        return DataError(str(error))
    if isinstance(error, httpx.HTTPError):
        return DataError(f"{type(error).__name__}: {error}")
    return DataError(f"{type(error).__name__}: {error}")


def metrics_url_for(server_url: str, port: int = DEFAULT_METRICS_PORT) -> str:
    """The metrics endpoint on the API server's host (`http://host:9090/metrics`)."""
    parts = urlsplit(server_url)
    host = parts.hostname or "localhost"
    if ":" in host:
        host = f"[{host}]"
    return urlunsplit((parts.scheme or "http", f"{host}:{port}", "/metrics", "", ""))


@dataclass(frozen=True, slots=True)
class ServerStatus:
    """What the header shows, from `/readyz` and `/stats`."""

    ready: bool
    ready_detail: str
    version: str
    store: str
    started_at: int  # ms epoch
    server_time: int  # ms epoch, the server's clock when it answered
    promises: Mapping[str, int]
    tasks: Mapping[str, int]
    schedules: int
    locks: int
    tasks_2026: Mapping[str, int] = field(default_factory=dict)  # the 2026 protocol's, by state


@dataclass(frozen=True, slots=True)
class Page:
    items: list[JsonObject]
    cursor: str | None


@dataclass(frozen=True, slots=True)
class PromiseFilter:
    pattern: str = "*"
    state: str | None = None  # pending | resolved | rejected
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TaskFilter:
    pattern: str = "*"
    # REST: init | enqueued | claimed | completed | timedout (REST tasks only);
    # 2026: pending | acquired | suspended | halted | fulfilled (2026 tasks only)
    state: str | None = None
    process_id: str | None = None
    root_promise_id: str | None = None
    protocol: str | None = None  # rest | 2026; None: both


@dataclass(frozen=True, slots=True)
class ScheduleFilter:
    pattern: str = "*"
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LockFilter:
    pattern: str = "*"
    process_id: str | None = None
    execution_id: str | None = None


@dataclass(frozen=True, slots=True)
class Stuck:
    promises: list[JsonObject]
    tasks: list[JsonObject]
    schedules: list[JsonObject]
    locks: list[JsonObject]

    @property
    def count(self) -> int:
        return len(self.promises) + len(self.tasks) + len(self.schedules) + len(self.locks)


@dataclass(frozen=True, slots=True)
class Finding:
    """One finding of `GET /doctor`: what is wrong with which subject, and what to do."""

    check: str  # dotted: promise.overdue, task.reissued, group.no_connections, ...
    severity: str  # error | warning | info
    kind: str  # promise | task | schedule | lock | group | loop | store
    id: str | None  # the subject (a promise id, a group name, ...), None for the store
    message: str
    action: str
    document: JsonObject = field(default_factory=dict, compare=False)  # as the server sent it

    @classmethod
    def from_json(cls, item: JsonObject) -> Finding:
        subject = item.get("id")
        return cls(
            check=str(item.get("check") or "?"),
            severity=str(item.get("severity") or "warning"),
            kind=str(item.get("kind") or ""),
            id=None if subject is None else str(subject),
            message=str(item.get("message") or ""),
            action=str(item.get("action") or ""),
            document=dict(item),
        )

    @property
    def rank(self) -> int:
        """0 for errors, 1 for warnings (and severities this dashboard does not know), 2 info."""
        return SEVERITY_RANK.get(self.severity, 1)


@dataclass(frozen=True, slots=True)
class GroupHealth:
    """A worker (poll) group: its open connections and the tasks waiting for one."""

    group: str
    connections: int
    undelivered: int


@dataclass(frozen=True, slots=True)
class Doctor:
    """The answer of `GET /doctor`: findings, worst first, and the facts they come from."""

    time: int  # the server's clock, ms
    ok: bool  # no warning and no error
    findings: list[Finding]
    groups: list[GroupHealth]
    loops: list[JsonObject]  # {"name", "lastSuccessAt", "ok", "lastError"}
    store: JsonObject  # {"kind", "batchP99Ms", "diskFreeBytes", "migrationsPending"}

    @classmethod
    def from_json(cls, body: JsonObject) -> Doctor:
        findings = [Finding.from_json(f) for f in body.get("findings") or [] if isinstance(f, dict)]
        findings.sort(key=lambda finding: finding.rank)  # stable: the server's order within
        groups = [
            GroupHealth(
                str(g.get("group", "")),
                int(g.get("connections") or 0),
                int(g.get("undelivered") or 0),
            )
            for g in body.get("groups") or []
            if isinstance(g, dict)
        ]
        ok = body.get("ok")
        return cls(
            time=int(body.get("time") or 0),
            ok=bool(ok) if ok is not None else all(f.rank > 1 for f in findings),
            findings=findings,
            groups=groups,
            loops=[loop for loop in body.get("loops") or [] if isinstance(loop, dict)],
            store=dict(body.get("store") or {}),
        )

    def count(self, severity: str) -> int:
        return sum(1 for finding in self.findings if finding.severity == severity)


@dataclass(frozen=True, slots=True)
class PromiseDetail:
    promise: JsonObject
    # the REST tasks of its root, then the 2026 task of the promise itself (if it has one)
    tasks: list[JsonObject]
    tree: Node  # the call graph of its root
    callbacks: list[JsonObject]  # registrations still waiting on the promise


class DataSource:
    """Every read and write the dashboard makes. One instance per app, closed on exit."""

    def __init__(
        self,
        server_url: str,
        credentials: Credentials | None = None,
        metrics_url: str | None = None,
        timeout: float = REQUEST_TIMEOUT_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.server_url = server_url
        self.metrics_url = metrics_url or metrics_url_for(server_url)
        self._client = AsyncResonateClient(server_url, credentials=credentials, timeout=timeout)
        self._metrics = httpx.AsyncClient(timeout=httpx.Timeout(timeout))
        self._monotonic = monotonic
        self._doctor_missing_until = 0.0  # monotonic s: until then, /stuck instead of /doctor
        self._server_version: str | None = None

    async def close(self) -> None:
        await self._client.aclose()
        await self._metrics.aclose()

    async def _call(self, call: Any) -> Any:
        try:
            return (await call).body
        except Exception as error:
            raise describe(error) from error

    # --- server facts and the overview -------------------------------------------------------

    async def status(self) -> ServerStatus:
        ready, detail = await self._readiness()
        stats = await self._call(self._client.get_stats())
        version = str(stats.get("version", ""))
        if self._server_version is not None and version != self._server_version:
            # Another server (an upgrade, a failover) may have `/doctor`: ask it again.
            self._doctor_missing_until = 0.0
        self._server_version = version
        return ServerStatus(
            ready=ready,
            ready_detail=detail,
            version=version,
            store=str(stats.get("store", "")),
            started_at=int(stats.get("startedAt") or 0),
            server_time=int(stats.get("time") or 0),
            promises=dict(stats.get("promises") or {}),
            tasks=dict(stats.get("tasks") or {}),
            schedules=int(stats.get("schedules") or 0),
            locks=int(stats.get("locks") or 0),
            tasks_2026=dict(stats.get("tasks2026") or {}),
        )

    async def _readiness(self) -> tuple[bool, str]:
        try:
            await self._client.readyz()
        except ApiError as error:
            if error.status == 503:
                return False, error.message
            raise describe(error) from error
        except Exception as error:
            raise describe(error) from error
        return True, "ready"

    async def scrape(self) -> Scrape:
        """One scrape of the metrics endpoint; DataError when it cannot be read or parsed."""
        try:
            answer = await self._metrics.get(self.metrics_url)
            answer.raise_for_status()
            return parse_scrape(answer.text, self._monotonic())
        except (httpx.HTTPError, ValueError) as error:
            raise DataError(f"metrics unavailable at {self.metrics_url}: {error}") from error

    async def health(self) -> Doctor | Stuck:
        """What the Stuck panel shows: `GET /doctor`, or `GET /stuck` from a server older than
        the doctor (it answers 404). One request per refresh, as before the doctor; two on the
        refresh that meets the 404, and on each later try of `/doctor` (after
        `DOCTOR_RETRY_SECONDS`, or once `status()` has seen another server version)."""
        if self._monotonic() >= self._doctor_missing_until:
            try:
                return await self.doctor()
            except DataError as error:
                if error.status != 404:
                    raise
                self._doctor_missing_until = self._monotonic() + DOCTOR_RETRY_SECONDS
        return await self.stuck()

    async def doctor(self) -> Doctor:
        request = get_doctor_request((("limit", str(DOCTOR_LIMIT)),))
        body = await self._call(self._client.send(request))
        if not isinstance(body, dict):
            raise DataError("GET /doctor: the answer is not a JSON object")
        return Doctor.from_json(body)

    async def stuck(self) -> Stuck:
        body = await self._call(
            self._client.get_stuck(
                lease_within=LEASE_WARNING_MS, min_counter=REISSUE_WARNING_COUNTER
            )
        )
        return Stuck(
            promises=list(body.get("promises") or []),
            tasks=list(body.get("tasks") or []),
            schedules=list(body.get("schedules") or []),
            locks=list(body.get("locks") or []),
        )

    # --- lists --------------------------------------------------------------------------------

    async def _rows(self, pages: AsyncIterator[JsonObject], wanted: int) -> list[JsonObject]:
        rows: list[JsonObject] = []
        async for item in pages:
            rows.append(item)
            if len(rows) >= wanted:
                break
        return rows

    async def promises(self, where: PromiseFilter, cursor: str | None, limit: int) -> Page:
        state: Any = where.state
        body = await self._call(
            self._client.search_promises(
                where.pattern, state, dict(where.tags) or None, min(limit, MAX_PAGE), cursor
            )
        )
        return Page(page_items(body, "promises"), body.get("cursor"))

    async def tasks(self, where: TaskFilter, cursor: str | None, limit: int) -> Page:
        """REST tasks, then 2026 tasks (with `"protocol": "2026-04-01"`), as `resonate tasks
        search` lists them (`TaskQuery`)."""
        protocol: Any = where.protocol or "all"
        query = TaskQuery(
            where.pattern,
            where.state,
            where.process_id,
            where.root_promise_id,
            protocol,
            min(limit, MAX_PAGE),
        )
        try:
            body = (await self._client.search_all_tasks(query, cursor)).body
        except Exception as error:
            raise describe(error) from error
        return Page(list(body["tasks"]), body.get("cursor"))

    async def schedules(self, where: ScheduleFilter, cursor: str | None, limit: int) -> Page:
        body = await self._call(
            self._client.search_schedules(
                where.pattern, dict(where.tags) or None, min(limit, MAX_PAGE), cursor
            )
        )
        return Page(page_items(body, "schedules"), body.get("cursor"))

    async def locks(self, where: LockFilter, cursor: str | None, limit: int) -> Page:
        body = await self._call(
            self._client.search_locks(
                where.pattern, where.process_id, where.execution_id, min(limit, MAX_PAGE), cursor
            )
        )
        return Page(page_items(body, "locks"), body.get("cursor"))

    # --- details ------------------------------------------------------------------------------

    async def promise(self, promise_id: str) -> JsonObject:
        body: JsonObject = await self._call(self._client.get_promise(promise_id))
        return body

    async def task(self, task_id: str) -> JsonObject:
        """The REST task `task_id`, else the 2026 task of that id; a 404 for neither."""
        try:
            body: JsonObject = await self._call(self._client.get_task(task_id))
        except DataError as error:
            if error.status != 404:
                raise
            found = await self.task_2026(task_id)
            if found is None:
                raise
            return found
        return body

    async def task_2026(self, task_id: str) -> JsonObject | None:
        """The 2026 task `task_id` (its record plus `"protocol": "2026-04-01"`), None if none."""
        try:
            body = await self._call(self._client.get_task_2026(task_id))
        except DataError as error:
            if error.status == 404:
                return None
            raise
        task = body.get("task") if isinstance(body, dict) else None
        return as_2026_record(task) if isinstance(task, dict) else None

    async def schedule(self, schedule_id: str) -> JsonObject:
        body: JsonObject = await self._call(self._client.get_schedule(schedule_id))
        return body

    async def lock(self, resource_id: str) -> JsonObject:
        body: JsonObject = await self._call(self._client.get_lock(resource_id))
        return body

    async def promise_detail(self, promise_id: str) -> PromiseDetail:
        """The promise, the callbacks waiting on it, the tasks of its invocation and the call
        graph of its root."""
        promise = await self.promise(promise_id)
        root = await self._root(promise)
        try:
            tree, tasks, callbacks, task_2026 = await asyncio.gather(
                calltree.walk_async(calltree.call_graph(root), self._search_all),
                self._rows(self._client.iter_tasks(root_promise_id=str(root["id"])), MAX_PAGE),
                self._rows(self._client.iter_callbacks(promise_id), MAX_PAGE),
                self._own_task_2026(promise),
            )
        except Exception as error:
            raise describe(error) from error
        if task_2026 is not None:
            tasks = [*tasks, task_2026]
        return PromiseDetail(promise, tasks, tree, callbacks)

    async def _own_task_2026(self, promise: JsonObject) -> JsonObject | None:
        """The 2026 task with the promise's id: only a promise with `resonate:target` has one."""
        tags = promise.get("tags") or {}
        if not tags.get(calltree.TARGET_TAG):
            return None
        return await self.task_2026(str(promise.get("id", "")))

    async def _root(self, promise: JsonObject) -> JsonObject:
        """The root promise of the invocation `promise` belongs to: the one its `resonate:root`
        tag (`resonate:origin` in the 2026 protocol) names; without either (the Python SDK
        0.4), the shortest existing dotted prefix of its id (`job.1.2` → `job`), since that SDK
        names children `<parent>.<n>`; else itself."""
        promise_id = str(promise.get("id", ""))
        tags = promise.get("tags") or {}
        tagged = tags.get(calltree.ROOT_TAG) or tags.get(calltree.ORIGIN_TAG)
        candidates = (
            [tagged] if isinstance(tagged, str) and tagged else _dotted_prefixes(promise_id)
        )
        for candidate in candidates:
            if candidate == promise_id:
                return promise
            try:
                return await self.promise(candidate)
            except DataError as error:
                if error.status != 404:
                    raise
        return promise

    def _search_all(self, request: Search) -> AsyncIterator[JsonObject]:
        return self._client.iter_promises(request.pattern, tags=request.tags)

    # --- writes -------------------------------------------------------------------------------

    async def complete_promise(
        self,
        promise_id: str,
        state: CompletionState,
        data: str | None,
        headers: Mapping[str, str] | None = None,
    ) -> JsonObject:
        body: JsonObject = await self._call(
            self._client.complete_promise(promise_id, state, encode_value(data, headers))
        )
        return body

    async def drop_task(self, task_id: str, counter: int) -> None:
        await self._call(self._client.drop_task(task_id, counter))

    async def delete_schedule(self, schedule_id: str) -> None:
        await self._call(self._client.delete_schedule(schedule_id))

    async def release_lock(self, resource_id: str, execution_id: str) -> None:
        await self._call(self._client.release_lock(resource_id, execution_id))

    async def create_schedule(
        self,
        schedule_id: str,
        cron: str,
        promise_id: str,
        promise_timeout_ms: int,
        description: str | None = None,
        timezone: str | None = None,
        promise_data: str | None = None,
        promise_tags: Mapping[str, str] | None = None,
    ) -> JsonObject:
        body: JsonObject = await self._call(
            self._client.create_schedule(
                schedule_id,
                cron,
                promise_id,
                promise_timeout_ms,
                description=description,
                timezone=timezone,
                promise_param=encode_value(promise_data) if promise_data else None,
                promise_tags=promise_tags,
            )
        )
        return body


def _dotted_prefixes(promise_id: str, most: int = 4) -> list[str]:
    """`a.b.c` → `a`, `a.b` (the shortest first), at most `most` of them."""
    parts = promise_id.split(".")
    return [".".join(parts[:count]) for count in range(1, min(len(parts), most + 1))]
