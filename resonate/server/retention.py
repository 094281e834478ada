"""Retention and purge of completed records (docs/operations.md, "Retention" and "Purge"): the
operations the retention loop and ``POST /promises/purge`` share, so that both delete by the
same store query and keep rules, and count what they delete in the same metric."""

from __future__ import annotations

from collections.abc import Mapping

from resonate.core.promise import PromiseState
from resonate.server.metrics import Metrics
from resonate.store.base import FINAL_STATES, Purged, PurgeQuery, Transaction


def promise_retention(value: int | Mapping[str, int]) -> dict[PromiseState, int]:
    """``system.retention.promises`` by state: one duration for every final state, or the
    states a map names (lower-case names, as the configuration holds them); a state absent or
    at 0 is kept forever, so it is left out."""
    if isinstance(value, int):
        by_state = dict.fromkeys(FINAL_STATES, value)
    else:
        by_state = {PromiseState[name.upper()]: ms for name, ms in value.items()}
    return {state: ms for state, ms in by_state.items() if ms > 0}


async def purge_promises(tx: Transaction, *, query: PurgeQuery, limit: int) -> Purged:
    """One batch: at most ``limit`` promises, with their tasks, in this transaction."""
    return await tx.purge_promises(query, limit)


async def count_purgeable(
    tx: Transaction, *, query: PurgeQuery, sample: int
) -> tuple[int, list[str]]:
    """A dry run: what ``purge_promises`` would delete over all its batches, and a sample."""
    return await tx.count_purgeable(query, sample)


async def purge_tasks(tx: Transaction, *, before: int, limit: int) -> int:
    return await tx.purge_tasks(before, limit)


async def oldest_completed(tx: Transaction) -> tuple[int | None, int | None]:
    return await tx.oldest_completed()


def count_purged(metrics: Metrics | None, purged: Purged, batch: str, seconds: float) -> None:
    """``retention_purged_total``, and ``retention_batch_duration_seconds`` of a ``batch``
    ("promises" or "tasks") that took ``seconds``: the loop's deletions and those of
    ``POST /promises/purge`` alike (one counter: a row is gone whoever deleted it)."""
    if metrics is None:
        return
    metrics.retention_batch_duration.labels(batch).observe(seconds)
    if purged.promises:
        metrics.retention_purged.labels("promises").inc(purged.promises)
    if purged.tasks:
        metrics.retention_purged.labels("tasks").inc(purged.tasks)
