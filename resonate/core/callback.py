"""Callbacks and subscriptions: registrations that become tasks when their promise completes
(http-api.md §3, §2.8)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from resonate.core.search import (
    DEFAULT_LIMIT,
    encode_cursor,
    is_limit,
    is_sort_id,
    is_text,
    read_cursor,
)


def resume_id(root_promise_id: str, promise_id: str) -> str:
    return f"__resume:{root_promise_id}:{promise_id}"


def notify_id(promise_id: str, subscription_id: str) -> str:
    return f"__notify:{promise_id}:{subscription_id}"


def trace_head(traceparent: str | None, tracestate: str | None) -> dict[str, str] | None:
    """Trace headers carried to workers; `tracestate` only travels with a `traceparent`."""
    if not traceparent:
        return None
    head = {"traceparent": traceparent}
    if tracestate:
        head["tracestate"] = tracestate
    return head


@dataclass(frozen=True, slots=True)
class Callback:
    """A resume callback or a notify subscription waiting on ``promise_id``."""

    id: str
    promise_id: str
    root_promise_id: str
    recv: Any  # as given: a logical recv string or a {"type", "data"} object
    message: dict[str, Any]  # {"type": "resume"|"notify", "root", "leaf"?, "head"?}
    timeout: int
    created_on: int

    @classmethod
    def resume(
        cls,
        promise_id: str,
        root_promise_id: str,
        recv: Any,
        timeout: int,
        now: int,
        head: dict[str, str] | None,
    ) -> Callback:
        message: dict[str, Any] = {"type": "resume", "root": root_promise_id, "leaf": promise_id}
        if head:
            message["head"] = head
        return cls(
            resume_id(root_promise_id, promise_id),
            promise_id,
            root_promise_id,
            recv,
            message,
            timeout,
            now,
        )

    @classmethod
    def notify(
        cls,
        promise_id: str,
        subscription_id: str,
        recv: Any,
        timeout: int,
        now: int,
        head: dict[str, str] | None,
    ) -> Callback:
        message: dict[str, Any] = {"type": "notify", "root": promise_id}
        if head:
            message["head"] = head
        return cls(
            notify_id(promise_id, subscription_id),
            promise_id,
            promise_id,
            recv,
            message,
            timeout,
            now,
        )

    @property
    def kind(self) -> str:
        """The registration type, "resume" or "notify", from its message."""
        return str(self.message["type"])

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "promiseId": self.promise_id,
            "rootPromiseId": self.root_promise_id,
            "timeout": self.timeout,
            "createdOn": self.created_on,
        }

    def to_extended_json(self) -> dict[str, Any]:
        """The ExtCallback object of GET /callbacks (§3.5): the callback, its type and recv."""
        return {
            "id": self.id,
            "type": self.kind,
            "promiseId": self.promise_id,
            "rootPromiseId": self.root_promise_id,
            "recv": self.recv,
            "timeout": self.timeout,
            "createdOn": self.created_on,
        }


# ---- listing the callbacks of a promise (§3.5, §1.8) --------------------------------------------


@dataclass(frozen=True, slots=True)
class CallbackQuery:
    promise_id: str  # exact, not a pattern
    limit: int = DEFAULT_LIMIT
    after_sort_id: int = 0  # page position: rows with a larger sort id (sort ids start at 1)


def callback_cursor(query: CallbackQuery, last_sort_id: int) -> str:
    return encode_cursor(
        "callbacks",
        {"promiseId": query.promise_id, "limit": query.limit, "after": last_sort_id},
    )


def callback_query_from_cursor(cursor: str) -> CallbackQuery:
    f = read_cursor(
        "callbacks",
        cursor,
        promiseId=lambda value: is_text(value) and value != "",
        limit=is_limit,
        after=is_sort_id,
    )
    return CallbackQuery(f["promiseId"], f["limit"], f["after"])
