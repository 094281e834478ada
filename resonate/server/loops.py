"""Background loops. Each exposes ``run_once`` so tests can run one pass after moving the clock,
and ``run`` for the server, which sleeps until the next deadline or a wake-up."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from functools import partial

from resonate.core.clock import Clock
from resonate.server import promises
from resonate.server.metrics import Metrics
from resonate.store.base import Store

log = logging.getLogger("resonate.loops")


class PromiseTimeoutLoop:
    """Times out overdue promises eagerly (http-api.md §2.7)."""

    name = "timeout_promises"

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

    async def run_once(self) -> int:
        """One pass: up to ``max_iterations`` batches; returns how many promises timed out."""
        started = time.perf_counter()
        total = 0
        status = "ok"
        try:
            for _ in range(self.max_iterations):
                count = await self.store.run(
                    partial(promises.time_out_overdue, clock=self.clock, limit=self.batch_size)
                )
                total += count
                if count < self.batch_size:
                    break
        except Exception:
            status = "error"
            raise
        finally:
            if self.metrics is not None:
                self.metrics.background_runs.labels(self.name, status).inc()
                self.metrics.background_duration.labels(self.name).observe(
                    time.perf_counter() - started
                )
        return total

    async def _seconds_until_next_deadline(self) -> float:
        earliest = await self.store.run(promises.earliest_pending_timeout)
        if earliest is None:
            return self.signal_timeout
        delay = (earliest - self.clock.now_ms()) / 1000
        return max(0.0, min(self.signal_timeout, delay))

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        while not self._stopping:
            delay = self.signal_timeout
            try:
                await self.run_once()
                delay = await self._seconds_until_next_deadline()
            except Exception as error:
                log.warning("%s pass failed: %s", self.name, error)
            if self._stopping:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)
            self._wake.clear()
