"""Search queries, `*` patterns and opaque cursors (http-api.md §1.8)."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

from resonate.core.clock import INT64_MAX, INT64_MIN
from resonate.core.errors import bad_request, invalid
from resonate.core.promise import SEARCH_STATES, PromiseState

DEFAULT_LIMIT = 100
MAX_LIMIT = 100


@dataclass(frozen=True, slots=True)
class PromiseQuery:
    id: str
    state: str | None = None  # "pending" | "resolved" | "rejected"
    tags: dict[str, str] = field(default_factory=dict)
    limit: int = DEFAULT_LIMIT
    before_sort_id: int | None = None  # page position: rows with a smaller sort id

    @property
    def states(self) -> tuple[PromiseState, ...]:
        return SEARCH_STATES[self.state] if self.state else ()


def parse_limit(raw: str | None) -> int:
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    if not raw.isascii() or not raw.isdigit():
        raise invalid("limit", f"The field limit must be an integer from 0 to {MAX_LIMIT}.")
    limit = int(raw)
    if limit > MAX_LIMIT:
        raise invalid("limit", f"The field limit must be an integer from 0 to {MAX_LIMIT}.")
    return limit or DEFAULT_LIMIT


def parse_search_state(raw: str | None) -> str | None:
    if raw is None or raw == "":
        return None
    state = raw.lower()
    if state not in SEARCH_STATES:
        raise invalid("state", "The field state must be one of pending, resolved, rejected.")
    return state


def encode_cursor(kind: str, query: dict[str, Any]) -> str:
    payload = json.dumps({"kind": kind, **query}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def decode_cursor(kind: str, cursor: str) -> dict[str, Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (binascii.Error, UnicodeError, ValueError):
        raise bad_request("The cursor is invalid.") from None
    if not isinstance(data, dict) or data.get("kind") != kind:
        raise bad_request("The cursor is invalid.")
    return data


def promise_cursor(query: PromiseQuery, last_sort_id: int) -> str:
    return encode_cursor(
        "promises",
        {
            "id": query.id,
            "state": query.state,
            "tags": query.tags,
            "limit": query.limit,
            "before": last_sort_id,
        },
    )


def is_text(value: Any) -> bool:
    """A string the store can hold: JSON escapes could smuggle in unpaired surrogates."""
    if not isinstance(value, str):
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def promise_query_from_cursor(cursor: str) -> PromiseQuery:
    data = decode_cursor("promises", cursor)
    try:
        pattern, state, tags = data["id"], data["state"], data["tags"]
        limit, before = data["limit"], data["before"]
        valid = (
            is_text(pattern)
            and pattern
            and (state is None or (isinstance(state, str) and state in SEARCH_STATES))
            and isinstance(tags, dict)
            and all(is_text(k) and is_text(v) for k, v in tags.items())
            and type(limit) is int
            and 0 < limit <= MAX_LIMIT
            and type(before) is int
            and INT64_MIN <= before <= INT64_MAX
        )
    except KeyError:
        valid = False
    if not valid:
        raise bad_request("The cursor is invalid.")
    return PromiseQuery(pattern, state, tags, limit, before)


def glob_pattern(pattern: str) -> str:
    """A D6 pattern as a SQLite GLOB: `*` stays the wildcard, other metacharacters are literal."""
    out = []
    for char in pattern:
        if char == "?":
            out.append("[?]")
        elif char == "[":
            out.append("[[]")
        else:
            out.append(char)
    return "".join(out)


def parse_tag_filters(params: list[tuple[str, str]]) -> dict[str, str]:
    """`tags[<key>]=<value>` query parameters; the key is taken literally."""
    tags: dict[str, str] = {}
    for name, value in params:
        if name.startswith("tags[") and name.endswith("]"):
            tags[name[5:-1]] = value
    return tags


# ---- tasks (http-api.md §4.10) ---------------------------------------------------------------

TASK_STATE_NAMES = ("init", "enqueued", "claimed", "completed", "timedout")


@dataclass(frozen=True, slots=True)
class TaskQuery:
    id: str = "*"
    state: str | None = None  # one of TASK_STATE_NAMES
    process_id: str | None = None
    root_promise_id: str | None = None
    limit: int = DEFAULT_LIMIT
    before_sort_id: int | None = None


def parse_task_state(raw: str | None) -> str | None:
    if raw is None or raw == "":
        return None
    state = raw.lower()
    if state not in TASK_STATE_NAMES:
        raise invalid(
            "state", "The field state must be one of " + ", ".join(TASK_STATE_NAMES) + "."
        )
    return state


def task_cursor(query: TaskQuery, last_sort_id: int) -> str:
    return encode_cursor(
        "tasks",
        {
            "id": query.id,
            "state": query.state,
            "processId": query.process_id,
            "rootPromiseId": query.root_promise_id,
            "limit": query.limit,
            "before": last_sort_id,
        },
    )


def task_query_from_cursor(cursor: str) -> TaskQuery:
    data = decode_cursor("tasks", cursor)
    try:
        pattern, state, limit, before = data["id"], data["state"], data["limit"], data["before"]
        process_id, root = data["processId"], data["rootPromiseId"]
        valid = (
            is_text(pattern)
            and pattern
            and (state is None or state in TASK_STATE_NAMES)
            and (process_id is None or is_text(process_id))
            and (root is None or is_text(root))
            and type(limit) is int
            and 0 < limit <= MAX_LIMIT
            and type(before) is int
            and INT64_MIN <= before <= INT64_MAX
        )
    except KeyError:
        valid = False
    if not valid:
        raise bad_request("The cursor is invalid.")
    return TaskQuery(pattern, state, process_id, root, limit, before)


# ---- schedules (http-api.md §7.5) ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScheduleQuery:
    id: str
    tags: dict[str, str] = field(default_factory=dict)
    limit: int = DEFAULT_LIMIT
    before_sort_id: int | None = None


def schedule_cursor(query: ScheduleQuery, last_sort_id: int) -> str:
    return encode_cursor(
        "schedules",
        {"id": query.id, "tags": query.tags, "limit": query.limit, "before": last_sort_id},
    )


def schedule_query_from_cursor(cursor: str) -> ScheduleQuery:
    data = decode_cursor("schedules", cursor)
    try:
        pattern, tags, limit, before = data["id"], data["tags"], data["limit"], data["before"]
        valid = (
            is_text(pattern)
            and pattern
            and isinstance(tags, dict)
            and all(is_text(k) and is_text(v) for k, v in tags.items())
            and type(limit) is int
            and 0 < limit <= MAX_LIMIT
            and type(before) is int
            and INT64_MIN <= before <= INT64_MAX
        )
    except KeyError:
        valid = False
    if not valid:
        raise bad_request("The cursor is invalid.")
    return ScheduleQuery(pattern, tags, limit, before)
