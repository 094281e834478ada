"""Search queries, `*` patterns and opaque cursors (http-api.md §1.8)."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from resonate.core.clock import INT64_MAX, INT64_MIN
from resonate.core.errors import bad_request, invalid
from resonate.core.json_depth import fits_nesting_limit
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


@dataclass(frozen=True, slots=True)
class PromiseIdQuery:
    """A search in id order, as the 2026 protocol pages it: exact state, exact tags, and the
    rows whose id sorts after ``after_id`` (byte order of the UTF-8 id)."""

    state: PromiseState | None = None
    tags: dict[str, str] = field(default_factory=dict)
    limit: int = DEFAULT_LIMIT
    after_id: str | None = None


def parse_limit(raw: str | None) -> int:
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    if not raw.isascii() or not raw.isdigit():
        raise invalid("limit", f"The field limit must be an integer from 0 to {MAX_LIMIT}.")
    limit = int(raw)
    if limit > MAX_LIMIT:
        raise invalid("limit", f"The field limit must be an integer from 0 to {MAX_LIMIT}.")
    return limit or DEFAULT_LIMIT


def parse_int_param(
    name: str, raw: str | None, default: int, minimum: int = 0, maximum: int = INT64_MAX
) -> int:
    """A decimal integer query parameter from ``minimum`` to ``maximum``; ``default`` when
    absent or empty. Anything else is a 400 naming the parameter."""
    if raw is None or raw == "":
        return default
    if raw.isascii() and raw.isdigit() and len(raw) <= 19 and minimum <= int(raw) <= maximum:
        return int(raw)
    if maximum == INT64_MAX:
        bounds = "a non-negative integer" if minimum == 0 else f"an integer of at least {minimum}"
    else:
        bounds = f"an integer from {minimum} to {maximum}"
    raise invalid(name, f"The field {name} must be {bounds}.")


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
        text = base64.urlsafe_b64decode(padded.encode("ascii"))
        if not fits_nesting_limit(text):  # the parser would recurse once per level
            raise ValueError("nested too deeply")
        data = json.loads(text)
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


def is_pattern(value: Any) -> bool:
    return is_text(value) and bool(value)


def is_optional_text(value: Any) -> bool:
    return value is None or is_text(value)


def is_tag_map(value: Any) -> bool:
    return isinstance(value, dict) and all(is_text(k) and is_text(v) for k, v in value.items())


def is_limit(value: Any) -> bool:
    return type(value) is int and 0 < value <= MAX_LIMIT


def is_sort_id(value: Any) -> bool:
    return type(value) is int and INT64_MIN <= value <= INT64_MAX


def read_cursor(kind: str, cursor: str, **checks: Callable[[Any], bool]) -> dict[str, Any]:
    """The fields of a ``kind`` cursor, each present and passing its check; else 400
    "The cursor is invalid." (a cursor is opaque to clients, but not trusted)."""
    data = decode_cursor(kind, cursor)
    if not all(name in data and check(data[name]) for name, check in checks.items()):
        raise bad_request("The cursor is invalid.")
    return {name: data[name] for name in checks}


def promise_query_from_cursor(cursor: str) -> PromiseQuery:
    f = read_cursor(
        "promises",
        cursor,
        id=is_pattern,
        state=lambda v: v is None or (isinstance(v, str) and v in SEARCH_STATES),
        tags=is_tag_map,
        limit=is_limit,
        before=is_sort_id,
    )
    return PromiseQuery(f["id"], f["state"], f["tags"], f["limit"], f["before"])


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
    f = read_cursor(
        "tasks",
        cursor,
        id=is_pattern,
        state=lambda v: v is None or v in TASK_STATE_NAMES,
        processId=is_optional_text,
        rootPromiseId=is_optional_text,
        limit=is_limit,
        before=is_sort_id,
    )
    return TaskQuery(
        f["id"], f["state"], f["processId"], f["rootPromiseId"], f["limit"], f["before"]
    )


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
    f = read_cursor(
        "schedules", cursor, id=is_pattern, tags=is_tag_map, limit=is_limit, before=is_sort_id
    )
    return ScheduleQuery(f["id"], f["tags"], f["limit"], f["before"])
