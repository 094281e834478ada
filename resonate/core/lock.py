"""Locks: a resource held by one execution at a time, for a ttl it renews (http-api.md §8).

A lock is a lease. Its holder keeps it by re-acquiring or by heartbeating its process; once
``expiresAt`` has passed, any other execution may take it over at acquire time (D5), and the
background sweep deletes it. Mutual exclusion holds between the acquire that answered 201 and
the lock's expiry or release.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from resonate.core.search import (
    DEFAULT_LIMIT,
    encode_cursor,
    is_limit,
    is_optional_text,
    is_pattern,
    is_text,
    read_cursor,
)


@dataclass(frozen=True, slots=True)
class Lock:
    resource_id: str
    execution_id: str
    process_id: str
    ttl: int
    expires_at: int

    def is_expired(self, now: int) -> bool:
        return self.expires_at <= now

    def to_json(self) -> dict[str, Any]:
        """The lock object of §8.1."""
        return {
            "resourceId": self.resource_id,
            "executionId": self.execution_id,
            "processId": self.process_id,
            "ttl": self.ttl,
            "expiresAt": self.expires_at,
        }


class AcquireOutcome(StrEnum):
    """What an acquire did (the `outcome` label of `lock_acquires_total`)."""

    ACQUIRED = "acquired"  # no lock on the resource: a new holder
    REFRESHED = "refreshed"  # the same execution acquired again: ttl and expiry renewed
    TAKEN_OVER = "taken_over"  # another execution's expired lock was replaced (D5)
    REFUSED = "refused"  # another execution holds it: 403


def acquire_outcome(previous: Lock | None, execution_id: str, now: int) -> AcquireOutcome:
    """The row of the §8.2 table that applies, given the stored lock at ``now``."""
    if previous is None:
        return AcquireOutcome.ACQUIRED
    if previous.execution_id == execution_id:
        return AcquireOutcome.REFRESHED
    if previous.is_expired(now):
        return AcquireOutcome.TAKEN_OVER
    return AcquireOutcome.REFUSED


# ---- search (§8.5, §1.8) ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LockQuery:
    resource_id: str = "*"  # D6 pattern
    process_id: str | None = None
    execution_id: str | None = None
    limit: int = DEFAULT_LIMIT
    after_resource_id: str | None = None  # page position: resources sorting after this one


def lock_cursor(query: LockQuery, last_resource_id: str) -> str:
    return encode_cursor(
        "locks",
        {
            "resourceId": query.resource_id,
            "processId": query.process_id,
            "executionId": query.execution_id,
            "limit": query.limit,
            "after": last_resource_id,
        },
    )


def lock_query_from_cursor(cursor: str) -> LockQuery:
    f = read_cursor(
        "locks",
        cursor,
        resourceId=is_pattern,
        processId=is_optional_text,
        executionId=is_optional_text,
        limit=is_limit,
        after=is_text,
    )
    return LockQuery(f["resourceId"], f["processId"], f["executionId"], f["limit"], f["after"])
