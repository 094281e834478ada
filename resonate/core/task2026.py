"""Tasks and addresses of the 2026-04-01 protocol (protocol-2026.md §4.1, §4.2, §6.1).

A 2026 task belongs to a promise that carries ``resonate:target`` and has that promise's id.
Its ``version`` is the fencing token, bumped only by an acquisition. Unlike REST tasks
(``resonate.core.task``) there is one task per promise for its whole life: a wake-up sends the
same task again.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

TARGET_TAG = "resonate:target"
DELAY_TAG = "resonate:delay"
BRANCH_TAG = "resonate:branch"


class Task2026State(enum.StrEnum):
    PENDING = "pending"
    ACQUIRED = "acquired"
    SUSPENDED = "suspended"
    HALTED = "halted"
    FULFILLED = "fulfilled"


@dataclass(frozen=True, slots=True)
class Task2026:
    id: str
    state: Task2026State
    version: int
    target: str  # the address of the promise's resonate:target, where executes go
    created_at: int
    updated_at: int
    pid: str | None = None  # the holder, while acquired
    ttl: int | None = None  # the lease length, while acquired
    lease_at: int | None = None  # while acquired: when the lease lapses
    retry_at: int | None = None  # while pending: when the execute is (re)sent
    resumes: int = 0  # awaited promises settled since the last acquire

    def to_json(self) -> dict[str, Any]:
        """The §4.1 record: ``ttl`` and ``pid`` only while acquired, never ``null``."""
        record: dict[str, Any] = {
            "id": self.id,
            "state": self.state.value,
            "version": self.version,
            "resumes": self.resumes,
        }
        if self.state is Task2026State.ACQUIRED:
            if self.ttl is not None:
                record["ttl"] = self.ttl
            if self.pid is not None:
                record["pid"] = self.pid
        return record


# ---- addresses (§6.1) ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PollAddress:
    cast: str  # "uni": only that connection; "any": it if open, else any of the group
    group: str
    id: str | None


@dataclass(frozen=True, slots=True)
class HttpAddress:
    url: str


Address = PollAddress | HttpAddress


def parse_address(text: str) -> Address | None:
    """``poll://uni@G/P``, ``poll://any@G/P``, ``poll://any@G`` or an ``http(s)://`` URL;
    None for anything else (a 400 where a request names it)."""
    if text.startswith("poll://"):
        cast, at, rest = text[len("poll://") :].partition("@")
        if not at or cast not in ("uni", "any"):
            return None
        group, slash, pid = rest.partition("/")
        if not group or (slash and not pid) or (cast == "uni" and not slash):
            return None
        return PollAddress(cast, group, pid if slash else None)
    if text.startswith(("http://", "https://")):
        try:
            parts = urlsplit(text)
        except ValueError:
            return None
        return HttpAddress(text) if parts.hostname else None
    return None


def origin_of(promise_id: str) -> str:
    """The lenient origin (P4): the id up to its first ``:`` or ``.``."""
    cut = len(promise_id)
    for separator in (":", "."):
        index = promise_id.find(separator)
        if index != -1:
            cut = min(cut, index)
    return promise_id[:cut]
