"""Callback and subscription registration (http-api.md §3), and the operator read that lists
the registrations still waiting on a promise (§3.5), written once over a Transaction."""

from __future__ import annotations

from dataclasses import dataclass

from resonate.core.callback import Callback, CallbackQuery, callback_cursor
from resonate.core.clock import Clock
from resonate.core.errors import Code, ResonateError
from resonate.core.promise import Promise
from resonate.server.promises import Fence, check_fence
from resonate.store.base import Transaction


@dataclass(frozen=True, slots=True)
class Registration:
    """The callback (None once the promise has completed) and whether it is new (201)."""

    callback: Callback | None
    promise: Promise
    created: bool


async def _register(tx: Transaction, callback: Callback) -> Registration:
    """Register ``callback`` on its promise unless the promise has completed.

    Registration does not time the promise out lazily (§2.7): a callback on an overdue
    promise is registered and fires when the promise is timed out.
    """
    promise = await tx.get_promise(callback.promise_id)
    if promise is None:
        raise ResonateError(Code.PROMISE_NOT_FOUND)
    if promise.state.is_completed:
        return Registration(None, promise, created=False)
    if await tx.insert_callback(callback):
        return Registration(callback, promise, created=True)
    return Registration(await tx.get_callback(callback.id), promise, created=False)


async def create_callback(
    tx: Transaction,
    clock: Clock,
    promise_id: str,
    root_promise_id: str,
    recv: object,
    timeout: int,
    head: dict[str, str] | None = None,
    fence: Fence | None = None,
) -> Registration:
    """A resume callback: when ``promise_id`` completes, resume ``root_promise_id`` (§3.1)."""
    await check_fence(tx, fence)
    callback = Callback.resume(promise_id, root_promise_id, recv, timeout, clock.now_ms(), head)
    return await _register(tx, callback)


async def create_subscription(
    tx: Transaction,
    clock: Clock,
    promise_id: str,
    subscription_id: str,
    recv: object,
    timeout: int,
    head: dict[str, str] | None = None,
) -> Registration:
    """A notify subscription: one message carrying the completed promise (§3.2)."""
    callback = Callback.notify(promise_id, subscription_id, recv, timeout, clock.now_ms(), head)
    return await _register(tx, callback)


# ---- operator read (§3.5) -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CallbackPage:
    callbacks: list[Callback]
    cursor: str | None


async def list_callbacks(tx: Transaction, query: CallbackQuery) -> CallbackPage:
    """The callbacks and subscriptions still waiting on the query's promise, oldest first.
    Fired ones have become tasks and are gone; an unknown promise simply has none. Read-only:
    run it with ``Store.read``."""
    rows = await tx.list_callbacks(query)
    cursor = callback_cursor(query, rows[-1][0]) if rows and len(rows) == query.limit else None
    return CallbackPage([callback for _, callback in rows], cursor)
