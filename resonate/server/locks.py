"""Lock operations (http-api.md §8), written once over a Transaction.

Acquire is a single guarded upsert: it writes only when the resource is free, held by the same
execution, or held past its expiry (D5). Whether a row was written decides 201 or 403, so two
acquires can never both win, whatever the store runs concurrently. The stored lock read just
before only names the outcome for metrics.
"""

from __future__ import annotations

from dataclasses import dataclass

from resonate.core.clock import Clock
from resonate.core.errors import Code, ResonateError
from resonate.core.lock import AcquireOutcome, Lock, LockQuery, acquire_outcome, lock_cursor
from resonate.core.task import add_ms
from resonate.store.base import Event, Transaction


def _changed(tx: Transaction, name: str) -> None:
    tx.emit(Event("lock", name))


@dataclass(frozen=True, slots=True)
class AcquireLock:
    resource_id: str
    execution_id: str
    process_id: str
    ttl: int


async def acquire_lock(tx: Transaction, clock: Clock, request: AcquireLock) -> Lock:
    """Take or renew the lock (§8.2); the stored lock, or 403 (40305) when another execution
    holds it and it has not expired."""
    now = clock.now_ms()
    previous = await tx.get_lock(request.resource_id)
    lock = Lock(
        resource_id=request.resource_id,
        execution_id=request.execution_id,
        process_id=request.process_id,
        ttl=request.ttl,
        expires_at=add_ms(now, request.ttl),
    )
    if not await tx.acquire_lock(lock, now):
        _changed(tx, AcquireOutcome.REFUSED)
        raise ResonateError(Code.LOCK_ALREADY_ACQUIRED)
    _changed(tx, acquire_outcome(previous, request.execution_id, now))
    return lock


async def release_lock(tx: Transaction, resource_id: str, execution_id: str) -> None:
    """Delete the lock if this execution holds it (§8.3); 404 (40402) otherwise."""
    if not await tx.release_lock(resource_id, execution_id):
        raise ResonateError(Code.LOCK_NOT_FOUND)
    _changed(tx, "released")


async def heartbeat_locks(tx: Transaction, clock: Clock, process_id: str) -> int:
    """Renew every lock of the process, expired or not, while it still exists (§8.4)."""
    return await tx.heartbeat_locks(process_id, clock.now_ms())


async def time_out_locks(tx: Transaction, clock: Clock, limit: int) -> int:
    """One batch of the lock sweep: delete up to ``limit`` locks past their expiry."""
    deleted = await tx.delete_expired_locks(clock.now_ms(), limit)
    if deleted:
        tx.emit(Event("lock", "expired", deleted))
    return deleted


async def count_locks(tx: Transaction) -> int:
    return await tx.count_locks()


# ---- operator reads (§8.5) ----------------------------------------------------------------------


async def read_lock(tx: Transaction, resource_id: str) -> Lock:
    lock = await tx.get_lock(resource_id)
    if lock is None:
        raise ResonateError(Code.LOCK_NOT_FOUND)
    return lock


@dataclass(frozen=True, slots=True)
class LockPage:
    locks: list[Lock]
    cursor: str | None


async def search_locks(tx: Transaction, query: LockQuery) -> LockPage:
    locks = await tx.search_locks(query)
    full = bool(locks) and len(locks) == query.limit
    return LockPage(locks, lock_cursor(query, locks[-1].resource_id) if full else None)
