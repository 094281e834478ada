"""Background loops. Each exposes ``run_once`` so tests can run one pass after moving the clock,
and ``run`` for the server, which sleeps until the next deadline or a wake-up. A loop never runs
two passes at once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from functools import partial
from typing import Any

from resonate.core.clock import Clock
from resonate.core.errors import describe
from resonate.core.promise import PromiseState
from resonate.core.routing import Router, Sender
from resonate.core.task2026 import HttpAddress, PollAddress, parse_address
from resonate.server import locks, promises, retention, schedules, tasks, tasks2026
from resonate.server.delivery.base import Plugin
from resonate.server.delivery.poll import PollHub
from resonate.server.delivery.push import HttpPush
from resonate.server.envelope.promises import promise_record
from resonate.server.metrics import Metrics
from resonate.store.base import Purged, PurgeQuery, Store

log = logging.getLogger("resonate.loops")

RETENTION_IDLE_SECONDS = 60.0  # the retention loop's tick


class Loop(ABC):
    name = "loop"
    # A pass ends with a short batch; loops whose batches stay short while work remains
    # (one slot per schedule per batch) continue while a batch found anything.
    continue_while_any = False

    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        batch_size: int = 100,
        max_iterations: int = 1000,
        signal_timeout_ms: int = 1000,
        metrics: Metrics | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.batch_size = batch_size
        self.max_iterations = max_iterations
        self.signal_timeout = signal_timeout_ms / 1000
        self.metrics = metrics
        self._wake = asyncio.Event()
        self._stopping = False
        self.paused = False  # debug mode (debug.start): no passes until resumed
        self._pass_lock = asyncio.Lock()
        # GET /doctor: the clock at the end of the last pass that raised nothing (None before
        # the first), and the error of the last pass that failed (cleared by a success).
        self.last_success_at: int | None = None
        self.last_error: str | None = None

    @abstractmethod
    async def run_batch(self) -> int:
        """One batch; returns how many items it handled (fewer than a batch ends the pass)."""

    async def run_once(self) -> int:
        """One pass: up to ``max_iterations`` batches; returns how many items were handled."""
        async with self._pass_lock:
            started = time.perf_counter()
            total = 0
            status = "ok"
            try:
                for _ in range(self.max_iterations):
                    count = await self.run_batch()
                    total += count
                    if count == 0 or (count < self.batch_size and not self.continue_while_any):
                        break
            except Exception as error:
                status = "error"
                self.last_error = describe(error)
                raise
            finally:
                if self.metrics is not None:
                    self.metrics.background_runs.labels(self.name, status).inc()
                    self.metrics.background_duration.labels(self.name).observe(
                        time.perf_counter() - started
                    )
            self.last_success_at = self.clock.now_ms()
            self.last_error = None
            return total

    async def seconds_until_next_pass(self) -> float:
        return self.signal_timeout

    @property
    def idle_tick_ms(self) -> int:
        """The longest a healthy loop waits between passes (before its random stretch)."""
        return round(self.signal_timeout * 1000)

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        while not self._stopping:
            # Clear before the pass: a wake-up that arrives during it triggers another pass.
            self._wake.clear()
            delay = self.signal_timeout
            try:
                if not self.paused:
                    await self.run_once()
                    delay = await self.seconds_until_next_pass()
            except Exception as error:
                log.warning("%s pass failed: %s", self.name, describe(error))
            if self._stopping:
                break
            if delay >= self.signal_timeout:
                # An idle tick is stretched by up to a quarter at random: servers sharing a
                # database then do not keep their passes in lockstep (one server could keep
                # winning the tasks it cannot deliver, just before the others look).
                delay *= 1 + random.random() / 4
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)


class PromiseTimeoutLoop(Loop):
    """Times out overdue promises eagerly (http-api.md §2.7)."""

    name = "timeout_promises"

    async def run_batch(self) -> int:
        return await self.store.run(
            partial(promises.time_out_overdue, clock=self.clock, limit=self.batch_size)
        )

    async def seconds_until_next_pass(self) -> float:
        earliest = await self.store.run(promises.earliest_pending_timeout)
        if earliest is None:
            return self.signal_timeout
        delay = (earliest - self.clock.now_ms()) / 1000
        return max(0.0, min(self.signal_timeout, delay))


class ScheduleLoop(Loop):
    """Fires due schedules (http-api.md §7.6): one slot per schedule per batch, so missed slots
    fire one by one, in order, within one pass."""

    name = "schedule_promises"
    continue_while_any = True

    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        router: Router,
        max_catch_up: int = 0,
        **options: int | Metrics | None,
    ) -> None:
        super().__init__(store, clock, **options)  # type: ignore[arg-type]
        self.router = router
        self.max_catch_up = max_catch_up

    async def run_batch(self) -> int:
        return await self.store.run(
            partial(
                schedules.fire_due_schedules,
                clock=self.clock,
                limit=self.batch_size,
                router=self.router,
                max_catch_up=self.max_catch_up,
            )
        )


class TaskTimeoutLoop(Loop):
    """Re-issues tasks whose claim deadline or lease passed and times out expired ones
    (http-api.md §4.7)."""

    name = "timeout_tasks"

    async def run_batch(self) -> int:
        return await self.store.run(
            partial(tasks.time_out_tasks, clock=self.clock, limit=self.batch_size)
        )


class LockTimeoutLoop(Loop):
    """Deletes locks past their expiry (http-api.md §8.4). Each pass also re-counts the locks
    held, so the gauge stays right across restarts and servers sharing one database."""

    name = "timeout_locks"

    async def run_batch(self) -> int:
        return await self.store.run(
            partial(locks.time_out_locks, clock=self.clock, limit=self.batch_size)
        )

    async def run_once(self) -> int:
        swept = await super().run_once()
        if self.metrics is not None:
            self.metrics.locks_held.set(await self.store.run(locks.count_locks))
        return swept


class RetentionLoop(Loop):
    """Deletes completed promises older than their state's ``system.retention.promises`` that
    nothing refers to any more, with their tasks, and COMPLETED and TIMEDOUT REST tasks older
    than ``system.retention.tasks``, at most one batch per transaction (docs/operations.md,
    "Retention"). Each pass also measures the age of the oldest completed promise and task
    (a gauge): the server runs the loop for that alone when no retention is set."""

    name = "retention"
    # A pass runs promise batches and task batches side by side, each kind until one of its
    # batches comes back short; the pass ends with the first batch that has nothing left to do.
    continue_while_any = True

    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        promises: Mapping[PromiseState, int] | None = None,
        tasks_ms: int = 0,
        **options: Any,
    ) -> None:
        super().__init__(store, clock, **options)
        self.promise_retention = {s: ms for s, ms in (promises or {}).items() if ms > 0}
        self.task_retention_ms = max(tasks_ms, 0)
        self._promises_left = bool(self.promise_retention)
        self._tasks_left = self.task_retention_ms > 0

    def promise_query(self, now: int) -> PurgeQuery:
        """What the retention deletes at ``now``: each state past its own cutoff."""
        return PurgeQuery({state: now - ms for state, ms in self.promise_retention.items()})

    async def run_once(self) -> int:
        self._promises_left = bool(self.promise_retention)
        self._tasks_left = self.task_retention_ms > 0
        deleted = await super().run_once()
        await self.measure()
        return deleted

    async def run_batch(self) -> int:
        now, limit = self.clock.now_ms(), self.batch_size
        deleted = 0
        if self._promises_left:
            started = time.perf_counter()
            purged = await self.store.run(
                partial(retention.purge_promises, query=self.promise_query(now), limit=limit)
            )
            self._promises_left = purged.promises >= limit
            retention.count_purged(self.metrics, purged, "promises", time.perf_counter() - started)
            deleted += purged.promises
        if self._tasks_left:
            started = time.perf_counter()
            tasks = await self.store.run(
                partial(retention.purge_tasks, before=now - self.task_retention_ms, limit=limit)
            )
            self._tasks_left = tasks >= limit
            retention.count_purged(
                self.metrics, Purged(tasks=tasks), "tasks", time.perf_counter() - started
            )
            deleted += tasks
        return deleted

    async def measure(self) -> None:
        """Set ``retention_oldest_completed_age_seconds``: how long ago the oldest completed
        promise and task completed (0 when there is none), off the writer."""
        if self.metrics is None:
            return
        promise, task = await self.store.read(retention.oldest_completed)
        now = self.clock.now_ms()
        for kind, oldest in (("promises", promise), ("tasks", task)):
            age = 0.0 if oldest is None else max(now - oldest, 0) / 1000
            self.metrics.retention_oldest_age.labels(kind).set(age)

    async def seconds_until_next_pass(self) -> float:
        if self._promises_left or self._tasks_left:
            # The pass stopped at max_iterations with full batches: a backlog (retention just
            # turned on, or a burst) is deleted pass after pass, not one pass a minute.
            return 0.0
        # Records age into the cutoff continuously, but nothing is lost by letting them wait a
        # minute: an idle pass is not worth making every tick.
        return self.idle_tick_ms / 1000

    @property
    def idle_tick_ms(self) -> int:  # GET /doctor: stalled after two missed ticks
        return round(max(self.signal_timeout, RETENTION_IDLE_SECONDS) * 1000)


class EnqueueLoop(Loop):
    """Sends due INIT tasks through their transport plugin (http-api.md §4.7).

    Poll deliveries are immediate (a message placed in a connection's buffer). HTTP pushes run
    as background tasks so that a slow receiver never holds back the loop; each records its
    own outcome when it finishes.
    """

    name = "enqueue_tasks"

    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        sender: Sender,
        plugins: Mapping[str, Plugin],
        base_url: str,
        completion_batch_size: int = 100,
        **options: int | Metrics | None,
    ) -> None:
        super().__init__(store, clock, **options)  # type: ignore[arg-type]
        self.sender = sender
        self.plugins = dict(plugins)
        self.base_url = base_url
        self.completion_batch_size = completion_batch_size
        self._background: set[asyncio.Task[None]] = set()
        self._unknown_logged: dict[str, float] = {}

    def _ttc_of(self, plugin: str) -> int:
        return self.plugins[plugin].ttc_ms

    async def run_batch(self) -> int:
        batch = await self.store.run(
            partial(
                tasks.take_sendable,
                clock=self.clock,
                limit=self.batch_size,
                sender=self.sender,
                ttc_of=self._ttc_of,
                base_url=self.base_url,
            )
        )
        for task in batch.unknown:
            self._count("unknown", "unknown_recv", 0.0)
            self._log_unknown(task.id, task.recv)
        results: list[tasks.SendResult] = []
        for delivery in batch.deliveries:
            plugin = self.plugins[delivery.destination.plugin]
            if plugin.name == "http":
                push = asyncio.create_task(self._push(plugin, delivery))
                self._background.add(push)
                push.add_done_callback(self._background.discard)
                continue
            result = await self._deliver(plugin, delivery)
            if result is not None:
                results.append(result)
        await self._record(results)
        return batch.selected

    async def _deliver(self, plugin: Plugin, delivery: tasks.Delivery) -> tasks.SendResult | None:
        started = time.perf_counter()
        try:
            delivered = await plugin.deliver(
                delivery.destination.data, delivery.message, delivery.head
            )
        except Exception as error:  # a plugin bug must not stop the loop
            log.warning(
                "delivery of %s through %s failed: %s", delivery.task.id, plugin.name, error
            )
            delivered = False
        self._count(plugin.name, "success" if delivered else "failure", started)
        if delivery.task.type == "notify":
            return None  # sent once, already completed
        return tasks.SendResult(delivery.task, delivered, plugin.ttr_ms, plugin.ttc_ms)

    async def _push(self, plugin: Plugin, delivery: tasks.Delivery) -> None:
        result = await self._deliver(plugin, delivery)
        if result is not None:
            try:
                await self._record([result])
            except Exception as error:
                log.warning(
                    "recording the push of %s failed: %s", delivery.task.id, describe(error)
                )

    async def _record(self, results: list[tasks.SendResult]) -> None:
        pending = [r for r in results if not r.delivered or r.ttc == 0]
        step = max(1, self.completion_batch_size)
        for start in range(0, len(pending), step):
            chunk = pending[start : start + step]
            await self.store.run(partial(tasks.record_sends, clock=self.clock, results=chunk))

    def _count(self, plugin: str, outcome: str, started: float) -> None:
        if self.metrics is None:
            return
        self.metrics.deliveries.labels(plugin, outcome).inc()
        if started:
            self.metrics.delivery_duration.labels(plugin).observe(time.perf_counter() - started)

    def _log_unknown(self, task_id: str, recv: object) -> None:
        now = time.monotonic()
        if now - self._unknown_logged.get(task_id, -60.0) >= 60.0:
            self._unknown_logged[task_id] = now
            if len(self._unknown_logged) > 10_000:
                self._unknown_logged.clear()
            log.warning("task %s: cannot resolve recv %r; retrying later", task_id, recv)

    async def drain(self) -> None:
        """Wait for the HTTP pushes in flight (tests; shutdown cancels them instead)."""
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)

    async def close(self) -> None:
        for push in list(self._background):
            push.cancel()
        await asyncio.gather(*list(self._background), return_exceptions=True)


class Delivery2026Loop(Loop):
    """The 2026 protocol's timers and messages (protocol-2026.md §6, §7): acquired tasks whose
    lease lapsed go back to pending; pending tasks whose retry timer came get their ``execute``
    (and the timer moves on by the retry timeout); queued ``unblock`` messages go out. Sends are
    fire-and-forget: a lost execute is sent again by the retry timer, a lost unblock recovered
    by the SDK's re-registration of its listeners."""

    name = "deliver_2026"

    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        hub: PollHub | None,
        push: HttpPush | None,
        base_url: str,
        retry_timeout_ms: int,
        **options: int | Metrics | None,
    ) -> None:
        super().__init__(store, clock, **options)  # type: ignore[arg-type]
        self.hub = hub
        self.push = push
        self.base_url = base_url
        self.retry_timeout_ms = retry_timeout_ms
        self._background: set[asyncio.Task[None]] = set()

    async def run_batch(self) -> int:
        limit = self.batch_size
        expired = await self.store.run(
            partial(tasks2026.expire_leases, clock=self.clock, limit=limit)
        )
        due = await self.store.run(
            partial(
                tasks2026.take_due,
                clock=self.clock,
                limit=limit,
                retry_timeout=self.retry_timeout_ms,
            )
        )
        for task in due:
            message = {
                "kind": "execute",
                "head": {"serverUrl": self.base_url},
                "data": {"task": {"id": task.id, "version": task.version}},
            }
            await self._send(task.target, message)
        unblocks = await self.store.run(partial(tasks2026.take_unblocks, limit=limit))
        for address, promise in unblocks:
            message = {"kind": "unblock", "head": {}, "data": {"promise": promise_record(promise)}}
            await self._send(address, message)
        return max(expired, len(due), len(unblocks))

    async def _send(self, address: str, message: dict[str, Any]) -> None:
        parsed = parse_address(address)
        if isinstance(parsed, PollAddress):
            started = time.perf_counter()
            delivered = self.hub is not None and await self.hub.deliver(
                {"group": parsed.group, "id": parsed.id, "cast": parsed.cast}, message, None
            )
            self._count("poll_2026", delivered, started)
        elif isinstance(parsed, HttpAddress) and self.push is not None:
            push = asyncio.create_task(self._push(parsed.url, message))
            self._background.add(push)
            push.add_done_callback(self._background.discard)
        else:
            self._count("unknown", False, 0.0)

    async def _push(self, url: str, message: dict[str, Any]) -> None:
        assert self.push is not None
        started = time.perf_counter()
        delivered = await self.push.deliver({"url": url}, message, None)
        self._count("http_2026", delivered, started)

    def _count(self, plugin: str, delivered: bool, started: float) -> None:
        if self.metrics is None:
            return
        self.metrics.deliveries.labels(plugin, "success" if delivered else "failure").inc()
        if started:
            self.metrics.delivery_duration.labels(plugin).observe(time.perf_counter() - started)

    async def drain(self) -> None:
        """Wait for the HTTP pushes in flight (tests; shutdown cancels them instead)."""
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)

    async def close(self) -> None:
        for push in list(self._background):
            push.cancel()
        await asyncio.gather(*list(self._background), return_exceptions=True)
