"""Tasks: the units of work the server sends to workers (http-api.md §4).

A task carries a message (invoke, resume or notify) to a recv. Its ``counter`` is the fencing
epoch: it grows every time the task is re-issued, and every transition is guarded by the
expected state and counter.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any
from urllib.parse import quote

from resonate.core.clock import INT64_MAX


class TaskState(IntEnum):
    """Task states, with the integer encoding the tables use (upstream-compatible)."""

    INIT = 1
    ENQUEUED = 2
    CLAIMED = 4
    COMPLETED = 8
    TIMEDOUT = 16

    @property
    def is_active(self) -> bool:
        return self in ACTIVE_STATES

    @classmethod
    def parse(cls, text: str) -> TaskState | None:
        """The state named by ``text`` in any letter case, or None."""
        return cls.__members__.get(text.upper())


ACTIVE_STATES = frozenset({TaskState.INIT, TaskState.ENQUEUED, TaskState.CLAIMED})
FINAL_STATES = frozenset({TaskState.COMPLETED, TaskState.TIMEDOUT})


def invoke_id(promise_id: str) -> str:
    return f"__invoke:{promise_id}"


def add_ms(now: int, ms: int) -> int:
    """``now + ms`` clamped to int64 (a huge ttl means "until further notice")."""
    return min(now + ms, INT64_MAX)


@dataclass(frozen=True, slots=True)
class Task:
    id: str
    state: TaskState
    root_promise_id: str
    recv: Any  # as stored: a logical recv string or a {"type", "data"} object
    message: dict[str, Any]  # {"type", "root", "leaf"?, "head"?}
    timeout: int
    counter: int = 1
    attempt: int = 0
    process_id: str | None = None
    ttl: int = 0
    expires_at: int = 0
    created_on: int | None = None
    completed_on: int | None = None

    @property
    def type(self) -> str:
        return str(self.message["type"])

    @property
    def leaf_promise_id(self) -> str | None:
        if self.type == "notify":
            return None
        return str(self.message.get("leaf", self.root_promise_id))

    @property
    def head(self) -> dict[str, str] | None:
        head = self.message.get("head")
        return head if head else None

    @classmethod
    def invoke(
        cls,
        promise_id: str,
        recv: Any,
        timeout: int,
        now: int,
        head: dict[str, str] | None,
        *,
        expires_at: int = 0,
    ) -> Task:
        """The INIT invoke task the router creates with a promise (§4.3)."""
        message: dict[str, Any] = {"type": "invoke", "root": promise_id, "leaf": promise_id}
        if head:
            message["head"] = head
        return cls(
            id=invoke_id(promise_id),
            state=TaskState.INIT,
            root_promise_id=promise_id,
            recv=recv,
            message=message,
            timeout=timeout,
            expires_at=expires_at,
            created_on=now,
        )

    def to_json(self) -> dict[str, Any]:
        """The task object of http-api.md §2.5 (in create-with-task and complete answers)."""
        out: dict[str, Any] = {
            "id": self.id,
            "counter": self.counter,
            "timeout": self.timeout,
            "rootPromiseId": self.root_promise_id,
        }
        if self.process_id is not None:
            out["processId"] = self.process_id
        if self.created_on is not None:
            out["createdOn"] = self.created_on
        if self.completed_on is not None:
            out["completedOn"] = self.completed_on
        return out

    def to_extended_json(self) -> dict[str, Any]:
        """The extended task object of the operator reads (§4.10)."""
        out: dict[str, Any] = {
            "id": self.id,
            "state": self.state.name,
            "type": self.type,
            "counter": self.counter,
            "attempt": self.attempt,
            "rootPromiseId": self.root_promise_id,
        }
        leaf = self.leaf_promise_id
        if leaf is not None:
            out["leafPromiseId"] = leaf
        if self.process_id is not None:
            out["processId"] = self.process_id
        out.update(
            recv=self.recv,
            timeout=self.timeout,
            ttl=self.ttl,
            expiresAt=self.expires_at,
            createdOn=self.created_on,
        )
        if self.completed_on is not None:
            out["completedOn"] = self.completed_on
        return out


# ---- links sent to workers (§4.6, D10) -------------------------------------------------------

_SEGMENT_SAFE = "-._~:@!$&'()*+,;="


def encode_segment(text: str) -> str:
    """Percent-encode ``text`` as one path segment (D10)."""
    if text in (".", ".."):
        return "%2E" * len(text)
    return quote(text, safe=_SEGMENT_SAFE)


def task_links(base_url: str, task: Task) -> dict[str, str]:
    base = base_url.rstrip("/")
    tail = f"{encode_segment(task.id)}/{task.counter}"
    return {
        "base": base,
        "claim": f"{base}/tasks/claim/{tail}",
        "complete": f"{base}/tasks/complete/{tail}",
        "heartbeat": f"{base}/tasks/heartbeat/{tail}",
    }


def promise_link(base_url: str, promise_id: str) -> str:
    return f"{base_url.rstrip('/')}/promises/{encode_segment(promise_id)}"


def task_message(base_url: str, task: Task) -> dict[str, Any]:
    """The invoke or resume message of §4.6 (without trace context)."""
    return {"type": task.type, "task": task.to_json(), "href": task_links(base_url, task)}
