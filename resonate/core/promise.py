"""Durable promises: the record, its states, and the outcome rules of create and complete.

Everything here is pure: the server's operations (resonate.server.promises) fetch and store
records and ask these functions what to do.
"""

from __future__ import annotations

import base64
import enum
from dataclasses import dataclass, field
from typing import Any

from resonate.core.errors import Code, ResonateError

TIMEOUT_TAG = "resonate:timeout"
TIMER_TAG = "resonate:timer"  # the 2026 protocol's name of the same durable-sleep rule


class PromiseState(enum.IntEnum):
    """Stored encodings follow upstream (http-api.md §14.2)."""

    PENDING = 1
    RESOLVED = 2
    REJECTED = 4
    REJECTED_CANCELED = 8
    REJECTED_TIMEDOUT = 16

    @property
    def is_completed(self) -> bool:
        return self is not PromiseState.PENDING

    @property
    def conflict_code(self) -> Code:
        """The 403 code answered when a completion meets a promise already in this state."""
        return _CONFLICT_CODES[self]


_CONFLICT_CODES = {
    PromiseState.RESOLVED: Code.PROMISE_ALREADY_RESOLVED,
    PromiseState.REJECTED: Code.PROMISE_ALREADY_REJECTED,
    PromiseState.REJECTED_CANCELED: Code.PROMISE_ALREADY_CANCELED,
    PromiseState.REJECTED_TIMEDOUT: Code.PROMISE_ALREADY_TIMEDOUT,
}

COMPLETION_STATES = (
    PromiseState.RESOLVED,
    PromiseState.REJECTED,
    PromiseState.REJECTED_CANCELED,
)

# The `state` query parameter of a search names a group of stored states.
SEARCH_STATES: dict[str, tuple[PromiseState, ...]] = {
    "pending": (PromiseState.PENDING,),
    "resolved": (PromiseState.RESOLVED,),
    "rejected": (
        PromiseState.REJECTED,
        PromiseState.REJECTED_CANCELED,
        PromiseState.REJECTED_TIMEDOUT,
    ),
}


@dataclass(frozen=True, slots=True)
class Value:
    """A param or value: string headers and opaque bytes. Empty parts are ``None``."""

    headers: dict[str, str] | None = None
    data: bytes | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.headers:
            out["headers"] = self.headers
        if self.data:
            out["data"] = base64.b64encode(self.data).decode("ascii")
        return out


EMPTY_VALUE = Value()


@dataclass(frozen=True, slots=True)
class Promise:
    id: str
    state: PromiseState
    param: Value
    value: Value
    timeout: int
    idempotency_key_for_create: str | None
    idempotency_key_for_complete: str | None
    tags: dict[str, str] = field(default_factory=dict)
    created_on: int | None = None
    completed_on: int | None = None

    def is_overdue(self, now: int) -> bool:
        return self.state is PromiseState.PENDING and now >= self.timeout

    @property
    def timed_out_state(self) -> PromiseState:
        # One rule for both protocols (a promise is read and timed out by either).
        if self.tags.get(TIMEOUT_TAG) == "true" or self.tags.get(TIMER_TAG) == "true":
            return PromiseState.RESOLVED
        return PromiseState.REJECTED_TIMEDOUT

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "state": self.state.name,
            "param": self.param.to_json(),
            "value": self.value.to_json(),
            "timeout": self.timeout,
        }
        if self.idempotency_key_for_create is not None:
            out["idempotencyKeyForCreate"] = self.idempotency_key_for_create
        if self.idempotency_key_for_complete is not None:
            out["idempotencyKeyForComplete"] = self.idempotency_key_for_complete
        if self.tags:
            out["tags"] = self.tags
        if self.created_on is not None:
            out["createdOn"] = self.created_on
        if self.completed_on is not None:
            out["completedOn"] = self.completed_on
        return out


def keys_match(request_key: str | None, stored_key: str | None) -> bool:
    """Two idempotency keys match only if both are present and equal (http-api.md §1.4)."""
    return request_key is not None and stored_key is not None and request_key == stored_key


def decide_create_existing(stored: Promise, request_key: str | None, strict: bool) -> None:
    """Whether a create of an existing (not overdue) id deduplicates; raises 409 if not.

    http-api.md §2.4: a key match deduplicates (200) unless ``strict`` and the promise is no
    longer pending; anything else is 409.
    """
    if keys_match(request_key, stored.idempotency_key_for_create) and (
        not strict or stored.state is PromiseState.PENDING
    ):
        return
    raise ResonateError(Code.PROMISE_ALREADY_EXISTS)


def decide_complete_completed(
    stored: Promise, requested: PromiseState, request_key: str | None, strict: bool
) -> None:
    """Whether a completion of an already completed promise deduplicates; raises 403 if not.

    http-api.md §2.6. A promise that timed out by itself has no completion key, so only the
    non-strict REJECTED_TIMEDOUT rule lets a completion of it answer 200.
    """
    matched = keys_match(request_key, stored.idempotency_key_for_complete)
    if strict:
        if matched and stored.state is requested:
            return
    elif matched or stored.state is PromiseState.REJECTED_TIMEDOUT:
        return
    raise ResonateError(stored.state.conflict_code)
