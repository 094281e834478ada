"""Typed HTTP client for the Resonate API, shared by the CLI and the TUI.

The module is split in three layers so that the synchronous and the asynchronous client only
differ in how they send bytes:

- request builders (`get_promise_request`, …) turn arguments into an `ApiRequest`: method, path,
  query, headers and JSON body; no I/O;
- `parse_response` turns a status code and body into an `ApiResponse` or raises `ApiError`;
- `ResonateClient` (httpx.Client) and `AsyncResonateClient` (httpx.AsyncClient) send a request,
  translate transport failures into `ServerUnreachable`, and parse the answer.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from collections.abc import AsyncIterator, Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote

import httpx

from resonate import __version__

DEFAULT_SERVER_URL = "http://localhost:8001"
REQUEST_TIMEOUT_SECONDS = 30.0

JsonObject = dict[str, Any]
CompletionState = Literal["RESOLVED", "REJECTED", "REJECTED_CANCELED"]
SearchState = Literal["pending", "resolved", "rejected"]
# The completed states `POST /promises/purge` deletes; all four when none is named.
PurgeState = Literal["RESOLVED", "REJECTED", "REJECTED_CANCELED", "REJECTED_TIMEDOUT"]
TaskSearchState = Literal["init", "enqueued", "claimed", "completed", "timedout"]
# The 2026-04-01 protocol (protocol-2026.md): its version string and its task states (§4.1).
PROTOCOL_2026 = "2026-04-01"
Task2026State = Literal["pending", "acquired", "suspended", "halted", "fulfilled"]
REST_TASK_STATES: tuple[str, ...] = ("init", "enqueued", "claimed", "completed", "timedout")
TASK_2026_STATES: tuple[str, ...] = ("pending", "acquired", "suspended", "halted", "fulfilled")
# Which task model a task search reads: the REST tasks, the 2026 tasks, or both.
TaskProtocol = Literal["all", "rest", "2026"]
# A recv: a logical name or URL (`default`, `poll://any@group`, `http://…`), or a physical
# `{"type": …, "data": …}` object (http-api.md §4.5).
Recv = str | Mapping[str, Any]


# --- errors -------------------------------------------------------------------------------------


class ResonateClientError(Exception):
    """Base class of every error raised by this module."""


class ApiError(ResonateClientError):
    """The server answered with a non-2xx status.

    `code` and `message` come from the JSON error body (http-api.md §1.6); when the body is not
    that shape (a proxy's HTML page, say) `code` is 0 and `message` is the HTTP reason phrase.
    """

    def __init__(self, status: int, code: int, message: str, body: JsonObject) -> None:
        super().__init__(f"{message} (HTTP {status}, code {code})")
        self.status = status
        self.code = code
        self.message = message
        self.body = body

    @property
    def details(self) -> list[str]:
        """The `message` of each entry of `error.details`, in order."""
        error = self.body.get("error")
        details = error.get("details") if isinstance(error, dict) else None
        if not isinstance(details, list):
            return []
        return [
            str(detail["message"])
            for detail in details
            if isinstance(detail, dict) and detail.get("message")
        ]


class ServerUnreachable(ResonateClientError):
    """No HTTP answer: connection refused, DNS failure, TLS failure or timeout."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"cannot reach {url}: {reason}")
        self.url = url
        self.reason = reason


class UnexpectedResponse(ResonateClientError):
    """A 2xx answer whose body is not the JSON the API documents."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"unexpected response (HTTP {status}): {reason}")
        self.status = status
        self.reason = reason


# --- values -------------------------------------------------------------------------------------


def encode_value(
    data: bytes | str | None = None, headers: Mapping[str, str] | None = None
) -> JsonObject:
    """Build an API value `{"headers": …, "data": <base64>}`; text is encoded as UTF-8.

    Empty members are left out, as the server does on output.
    """
    value: JsonObject = {}
    if headers:
        value["headers"] = dict(headers)
    if data:
        raw = data.encode("utf-8") if isinstance(data, str) else data
        value["data"] = base64.b64encode(raw).decode("ascii")
    return value


def decode_value_data(value: Mapping[str, Any] | None) -> bytes:
    """The raw bytes of a value's `data` (empty when absent or not valid base64)."""
    if not value or not isinstance(value.get("data"), str):
        return b""
    try:
        return base64.b64decode(value["data"], validate=True)
    except (binascii.Error, ValueError):
        return b""


def decode_value_text(value: Mapping[str, Any] | None) -> str | None:
    """The value's data as UTF-8 text, or None when the bytes are not text."""
    raw = decode_value_data(value)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if any(not character.isprintable() and character not in "\n\r\t" for character in text):
        return None
    return text


# --- requests and responses ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ApiRequest:
    """One API call, independent of the HTTP library that sends it."""

    method: str
    path: str
    params: tuple[tuple[str, str], ...] = ()
    headers: dict[str, str] = field(default_factory=dict)
    json: JsonObject | None = None
    # A 2026-04-01 envelope (`POST /`): its answer is read by `parse_envelope_response`.
    envelope: bool = False


# The request for one page of a search, given the cursor to continue from (None: the first).
PageRequest = Callable[[str | None], ApiRequest]


@dataclass(frozen=True, slots=True)
class ApiResponse:
    """A successful answer: the HTTP status (201 created vs 200 deduplicated) and its JSON."""

    status: int
    body: Any

    @property
    def created(self) -> bool:
        return self.status == 201


def path_segment(identifier: str) -> str:
    """Percent-encode an id as ONE path segment (`/`, `?`, `#`, `%`, spaces included)."""
    if identifier in (".", ".."):
        # Dot segments would be removed by URL normalisation before reaching the server.
        return identifier.replace(".", "%2E")
    return quote(identifier, safe="")


def _write_headers(idempotency_key: str | None, strict: bool) -> dict[str, str]:
    headers: dict[str, str] = {}
    if idempotency_key:
        headers["idempotency-key"] = idempotency_key
    if strict:
        headers["strict"] = "true"
    return headers


def _tag_params(tags: Mapping[str, str] | None) -> tuple[tuple[str, str], ...]:
    return tuple((f"tags[{key}]", value) for key, value in (tags or {}).items())


def healthz_request() -> ApiRequest:
    return ApiRequest("GET", "/healthz")


def readyz_request() -> ApiRequest:
    return ApiRequest("GET", "/readyz")


def get_promise_request(promise_id: str) -> ApiRequest:
    return ApiRequest("GET", f"/promises/{path_segment(promise_id)}")


def create_promise_request(
    promise_id: str,
    timeout_ms_absolute: int,
    param: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
    idempotency_key: str | None = None,
    strict: bool = False,
) -> ApiRequest:
    body: JsonObject = {"id": promise_id, "timeout": timeout_ms_absolute}
    if param:
        body["param"] = dict(param)
    if tags:
        body["tags"] = dict(tags)
    return ApiRequest(
        "POST", "/promises", headers=_write_headers(idempotency_key, strict), json=body
    )


def complete_promise_request(
    promise_id: str,
    state: CompletionState,
    value: Mapping[str, Any] | None = None,
    idempotency_key: str | None = None,
    strict: bool = False,
) -> ApiRequest:
    body: JsonObject = {"state": state}
    if value:
        body["value"] = dict(value)
    return ApiRequest(
        "PATCH",
        f"/promises/{path_segment(promise_id)}",
        headers=_write_headers(idempotency_key, strict),
        json=body,
    )


def _search_request(
    path: str,
    cursor: str | None,
    filters: tuple[tuple[str, str | None], ...],
    limit: int | None,
    tags: Mapping[str, str] | None = None,
) -> ApiRequest:
    """One search page: the cursor alone (the server ignores every other parameter with it,
    §1.8), else the filters that are set, the tag filters, then the limit."""
    if cursor:
        return ApiRequest("GET", path, params=(("cursor", cursor),))
    params = tuple((name, value) for name, value in filters if value) + _tag_params(tags)
    if limit is not None:
        params += (("limit", str(limit)),)
    return ApiRequest("GET", path, params=params)


def search_promises_request(
    id: str = "*",
    state: SearchState | None = None,
    tags: Mapping[str, str] | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> ApiRequest:
    return _search_request("/promises", cursor, (("id", id), ("state", state)), limit, tags)


def create_callback_request(
    promise_id: str, root_promise_id: str, recv: Recv, timeout: int
) -> ApiRequest:
    """Register a resume callback on `promise_id` (§3.1); `timeout` is absolute ms."""
    body: JsonObject = {
        "rootPromiseId": root_promise_id,
        "recv": _recv_json(recv),
        "timeout": timeout,
    }
    return ApiRequest("POST", f"/promises/callback/{path_segment(promise_id)}", json=body)


def create_subscription_request(promise_id: str, id: str, recv: Recv, timeout: int) -> ApiRequest:
    """Subscribe `id` to the completion of `promise_id` (§3.2); `timeout` is absolute ms."""
    body: JsonObject = {"id": id, "recv": _recv_json(recv), "timeout": timeout}
    return ApiRequest("POST", f"/promises/subscribe/{path_segment(promise_id)}", json=body)


def list_callbacks_request(
    promise_id: str, limit: int | None = None, cursor: str | None = None
) -> ApiRequest:
    """The callbacks and subscriptions still waiting on `promise_id`, oldest first (§3.5)."""
    return _search_request("/callbacks", cursor, (("promiseId", promise_id),), limit)


# --- purge (POST /promises/purge) ---------------------------------------------------------------


def purge_promises_request(
    *,
    older_than: int | None = None,
    before: int | None = None,
    states: tuple[PurgeState, ...] | None = None,
    id: str = "*",
    tags: Mapping[str, str] | None = None,
    limit: int | None = None,
    dry_run: bool = False,
    sample: int | None = None,
) -> ApiRequest:
    """One purge batch, or with ``dry_run`` the count and a sample of what it would delete.

    The cutoff is exactly one of ``older_than`` (ms before the server's clock) and ``before``
    (absolute ms); ``states`` None means all four completed states, ``limit`` None the server's
    batch size, ``sample`` None the server's default (10, dry run only)."""
    if (older_than is None) == (before is None):
        raise ValueError("give exactly one of older_than and before")
    body: JsonObject = {"olderThan": older_than} if older_than is not None else {"before": before}
    if states is not None:
        body["states"] = list(states)
    body["id"] = id
    if tags:
        body["tags"] = dict(tags)
    if limit is not None:
        body["limit"] = limit
    body["dryRun"] = dry_run
    if dry_run and sample is not None:
        body["sample"] = sample
    return ApiRequest("POST", "/promises/purge", json=body)


def _int_field(body: Any, name: str) -> int:
    value = body.get(name) if isinstance(body, dict) else None
    if not isinstance(value, int) or isinstance(value, bool):
        raise UnexpectedResponse(200, f"a purge answer without an integer {name!r}")
    return value


def purge_batch(body: Any) -> JsonObject:
    """A purge batch's answer, checked: ``{"before", "promises", "tasks", "more"}``."""
    for name in ("before", "promises", "tasks"):
        _int_field(body, name)
    if not isinstance(body.get("more"), bool):
        raise UnexpectedResponse(200, "a purge answer without a boolean 'more'")
    return dict(body)


def purge_dry_run(body: Any) -> JsonObject:
    """A dry run's answer, checked: ``{"before", "dryRun": true, "count", "sample": [ids]}``."""
    for name in ("before", "count"):
        _int_field(body, name)
    if not isinstance(body.get("sample"), list):
        raise UnexpectedResponse(200, "a purge answer without a 'sample' list")
    return dict(body)


def _purge_goes_on(batch: JsonObject) -> bool:
    """Whether to ask for another batch: the last one was full. A full batch that deleted
    nothing would be asked again forever, so it ends the purge too."""
    return bool(batch["more"]) and batch["promises"] > 0


# --- end of purge -------------------------------------------------------------------------------


def _recv_json(recv: Recv) -> str | JsonObject:
    return recv if isinstance(recv, str) else dict(recv)


def get_task_request(task_id: str) -> ApiRequest:
    return ApiRequest("GET", f"/tasks/{path_segment(task_id)}")


def search_tasks_request(
    id: str = "*",
    state: TaskSearchState | None = None,
    process_id: str | None = None,
    root_promise_id: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> ApiRequest:
    filters = (
        ("id", id),
        ("state", state),
        ("processId", process_id),
        ("rootPromiseId", root_promise_id),
    )
    return _search_request("/tasks", cursor, filters, limit)


def claim_task_request(task_id: str, counter: int, process_id: str, ttl: int) -> ApiRequest:
    """Claim a task for `process_id`; `ttl` is the lease in relative ms (§4.8)."""
    body: JsonObject = {"id": task_id, "counter": counter, "processId": process_id, "ttl": ttl}
    return ApiRequest("POST", "/tasks/claim", json=body)


def complete_task_request(task_id: str, counter: int) -> ApiRequest:
    return ApiRequest("POST", "/tasks/complete", json={"id": task_id, "counter": counter})


def drop_task_request(task_id: str, counter: int) -> ApiRequest:
    return ApiRequest("POST", "/tasks/drop", json={"id": task_id, "counter": counter})


def heartbeat_tasks_request(process_id: str) -> ApiRequest:
    return ApiRequest("POST", "/tasks/heartbeat", json={"processId": process_id})


# --- the 2026-04-01 protocol (protocol-2026.md §2, §3.2) ----------------------------------------


def envelope_request(kind: str, data: Mapping[str, Any]) -> ApiRequest:
    """One envelope `{kind, head: {corrId, version}, data}` for `POST /`, with a fresh corrId.

    The credentials travel in the `Authorization` header, as for every other request (the
    server reads a bearer token there when `head.auth` is absent, and Basic credentials)."""
    body: JsonObject = {
        "kind": kind,
        "head": {"corrId": uuid.uuid4().hex, "version": PROTOCOL_2026},
        "data": dict(data),
    }
    return ApiRequest("POST", "/", json=body, envelope=True)


def get_task_2026_request(task_id: str) -> ApiRequest:
    return envelope_request("task.get", {"id": task_id})


def search_tasks_2026_request(
    state: Task2026State | None = None, limit: int | None = None, cursor: str | None = None
) -> ApiRequest:
    """One page of `task.search`, in id order; `cursor` is the last id of the previous page.
    Unlike a REST cursor it does not carry the filters: send the same `state` with it."""
    data: JsonObject = {}
    if state:
        data["state"] = state
    if limit is not None:
        data["limit"] = limit
    if cursor:
        data["cursor"] = cursor
    return envelope_request("task.search", data)


def as_2026_record(record: Mapping[str, Any]) -> JsonObject:
    """A 2026 record as the operator tools show it: as stored, plus `"protocol": "2026-04-01"`
    (REST records have no `protocol` key)."""
    return {**record, "protocol": PROTOCOL_2026}


def is_2026_record(record: Mapping[str, Any]) -> bool:
    return record.get("protocol") == PROTOCOL_2026


# --- both task models in one search ---


@dataclass(frozen=True, slots=True)
class TaskQuery:
    """A search over the REST tasks and the 2026 tasks (`resonate tasks search`, the TUI).

    The 2026 `task.search` filters by state only: the id pattern, the process (`pid`, set while
    acquired) and the root promise (the task id is the root or starts with `<root>:` or
    `<root>.`) are applied to its pages here, so a page can hold fewer than `limit` 2026 tasks.
    A REST state reads only REST tasks, a 2026 state only 2026 tasks."""

    pattern: str = "*"
    state: str | None = None
    process_id: str | None = None
    root_promise_id: str | None = None
    protocol: TaskProtocol = "all"
    limit: int | None = None

    @property
    def reads_rest(self) -> bool:
        return self.protocol != "2026" and self.state not in TASK_2026_STATES

    @property
    def reads_2026(self) -> bool:
        return self.protocol != "rest" and self.state not in REST_TASK_STATES

    @property
    def filters_2026(self) -> bool:
        """Whether 2026 pages are filtered here (what `task.search` cannot filter)."""
        return self.pattern not in ("", "*") or bool(self.process_id or self.root_promise_id)

    def matches_2026(self, task: Mapping[str, Any]) -> bool:
        task_id = str(task.get("id", ""))
        if self.pattern not in ("", "*") and not _wildcard(self.pattern).fullmatch(task_id):
            return False
        if self.process_id and task.get("pid") != self.process_id:
            return False
        root = self.root_promise_id
        return not root or task_id == root or task_id.startswith((root + ":", root + "."))

    def state_2026(self) -> Task2026State | None:
        if self.state in TASK_2026_STATES:
            state: Any = self.state
            return state  # type: ignore[no-any-return]
        # Only an acquired task has a pid: let the server drop the others.
        return "acquired" if self.process_id else None


def _wildcard(pattern: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")), re.DOTALL)


# A cursor of a search over both models. REST cursors are base64url and never hold a `.`;
# ours is `2026.<base64url JSON>` with the REST cursor (if REST has more), the last 2026 id and
# the query (2026 cursors do not carry the filters). A plain REST cursor continues REST only.
TASK_CURSOR_PREFIX = "2026."


def _encode_task_cursor(query: TaskQuery, rest: str | None, after: str | None) -> str | None:
    if after is None:
        return rest
    document = {
        "rest": rest,
        "after": after,
        "pattern": query.pattern,
        "state": query.state,
        "processId": query.process_id,
        "root": query.root_promise_id,
        "limit": query.limit,
    }
    text = json.dumps(document, separators=(",", ":")).encode()
    return TASK_CURSOR_PREFIX + base64.urlsafe_b64encode(text).decode("ascii").rstrip("=")


def decode_task_cursor(cursor: str) -> tuple[TaskQuery, str | None, str]:
    """A cursor of `task_page` that continues 2026 tasks: the query, the REST cursor, the last
    2026 id. ValueError when it is not one (a cursor without the prefix is a REST cursor)."""
    try:
        encoded = cursor[len(TASK_CURSOR_PREFIX) :]
        document = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
        if not isinstance(document, dict) or not isinstance(document.get("after"), str):
            raise ValueError("not a task cursor")
        query = TaskQuery(
            pattern=str(document.get("pattern") or "*"),
            state=document.get("state") or None,
            process_id=document.get("processId") or None,
            root_promise_id=document.get("root") or None,
            limit=document.get("limit") if isinstance(document.get("limit"), int) else None,
        )
    except (binascii.Error, UnicodeError, ValueError) as error:
        raise ValueError(f"invalid cursor: {cursor!r}") from error
    rest = document.get("rest")
    return query, rest if isinstance(rest, str) and rest else None, document["after"]


TaskPageWalk = Generator[ApiRequest, Any, JsonObject]
# The page size of `task.search` when the CLI filters its pages (its largest `limit`), and
# how many 2026 tasks a page shows without `limit` (the server's default).
_MAX_2026_LIMIT = 1000
_DEFAULT_2026_LIMIT = 100


def _task_2026_matches(
    query: TaskQuery, after: str | None
) -> Generator[ApiRequest, Any, tuple[list[JsonObject], str | None]]:
    """Up to `limit` 2026 tasks after `after`, and the cursor to continue (None: no more).

    Without client-side filters this is one `task.search` page; with them, pages of the
    largest size are read until `limit` tasks match or the last page, so that a search with
    no match ends without a cursor instead of offering empty pages."""
    if not query.filters_2026:
        body = yield search_tasks_2026_request(query.state_2026(), query.limit, after)
        return page_items(body, "tasks"), body.get("cursor") or None
    wanted = query.limit or _DEFAULT_2026_LIMIT
    kept: list[JsonObject] = []
    while True:
        body = yield search_tasks_2026_request(query.state_2026(), _MAX_2026_LIMIT, after)
        items = page_items(body, "tasks")
        more = body.get("cursor") or None
        for index, task in enumerate(items):
            if not query.matches_2026(task):
                continue
            kept.append(task)
            if len(kept) == wanted:
                last = index == len(items) - 1 and more is None
                return kept, None if last else str(task.get("id", ""))
        if more is None:
            return kept, None
        after = more


def task_page(query: TaskQuery, cursor: str | None = None) -> TaskPageWalk:
    """One page of a search over both task models, written without I/O: it yields the requests
    it needs (REST and envelope) and receives their answers' bodies; it returns the page
    `{"cursor": str | None, "tasks": [...]}`: REST tasks as the REST API returns them (newest
    first), then 2026 tasks in id order, each with `"protocol": "2026-04-01"`.

    With a cursor, the cursor alone says what to read (as for REST searches): a REST cursor
    the next REST page, ours the next pages of each model that has more."""
    rest_cursor: str | None = None
    after: str | None = None
    read_rest, read_2026 = query.reads_rest, query.reads_2026
    if cursor and cursor.startswith(TASK_CURSOR_PREFIX):
        query, rest_cursor, after = decode_task_cursor(cursor)
        read_rest, read_2026 = rest_cursor is not None, True
    elif cursor:
        rest_cursor, read_rest, read_2026 = cursor, True, False
    tasks: list[JsonObject] = []
    next_rest: str | None = None
    next_after: str | None = None
    if read_rest:
        state: Any = query.state
        body = yield search_tasks_request(
            query.pattern, state, query.process_id, query.root_promise_id, query.limit, rest_cursor
        )
        tasks.extend(page_items(body, "tasks"))
        next_rest = body.get("cursor") or None
    if read_2026:
        found, next_after = yield from _task_2026_matches(query, after)
        tasks.extend(as_2026_record(task) for task in found)
    return {"cursor": _encode_task_cursor(query, next_rest, next_after), "tasks": tasks}


def drive_sync(walk: TaskPageWalk, send: Callable[[ApiRequest], ApiResponse]) -> JsonObject:
    try:
        request = next(walk)
        while True:
            request = walk.send(send(request).body)
    except StopIteration as done:
        result: JsonObject = done.value
        return result


def get_lock_request(resource_id: str) -> ApiRequest:
    return ApiRequest("GET", f"/locks/{path_segment(resource_id)}")


def search_locks_request(
    resource_id: str = "*",
    process_id: str | None = None,
    execution_id: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> ApiRequest:
    filters = (
        ("resourceId", resource_id),
        ("processId", process_id),
        ("executionId", execution_id),
    )
    return _search_request("/locks", cursor, filters, limit)


def acquire_lock_request(
    resource_id: str, execution_id: str, process_id: str, ttl: int
) -> ApiRequest:
    """Acquire or renew a lock; `ttl` is relative ms (§8.2)."""
    body: JsonObject = {
        "resourceId": resource_id,
        "executionId": execution_id,
        "processId": process_id,
        "ttl": ttl,
    }
    return ApiRequest("POST", "/locks/acquire", json=body)


def release_lock_request(resource_id: str, execution_id: str) -> ApiRequest:
    body: JsonObject = {"resourceId": resource_id, "executionId": execution_id}
    return ApiRequest("POST", "/locks/release", json=body)


def heartbeat_locks_request(process_id: str) -> ApiRequest:
    return ApiRequest("POST", "/locks/heartbeat", json={"processId": process_id})


# --- schedules (http-api.md §7) -----------------------------------------------------------------


def get_schedule_request(schedule_id: str) -> ApiRequest:
    return ApiRequest("GET", f"/schedules/{path_segment(schedule_id)}")


def create_schedule_request(
    schedule_id: str,
    cron: str,
    promise_id: str,
    promise_timeout: int,
    description: str | None = None,
    timezone: str | None = None,
    tags: Mapping[str, str] | None = None,
    promise_param: Mapping[str, Any] | None = None,
    promise_tags: Mapping[str, str] | None = None,
    idempotency_key: str | None = None,
) -> ApiRequest:
    """Create a schedule; `promise_id` is a template, `promise_timeout` relative ms (§7.2)."""
    body: JsonObject = {
        "id": schedule_id,
        "cron": cron,
        "promiseId": promise_id,
        "promiseTimeout": promise_timeout,
    }
    if description is not None:
        body["description"] = description
    if timezone:
        body["timezone"] = timezone
    if tags:
        body["tags"] = dict(tags)
    if promise_param:
        body["promiseParam"] = dict(promise_param)
    if promise_tags:
        body["promiseTags"] = dict(promise_tags)
    return ApiRequest(
        "POST", "/schedules", headers=_write_headers(idempotency_key, strict=False), json=body
    )


def search_schedules_request(
    id: str = "*",
    tags: Mapping[str, str] | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> ApiRequest:
    return _search_request("/schedules", cursor, (("id", id),), limit, tags)


def delete_schedule_request(schedule_id: str) -> ApiRequest:
    return ApiRequest("DELETE", f"/schedules/{path_segment(schedule_id)}")


# --- end of schedules ---------------------------------------------------------------------------


# --- operator dashboard (GET /stats, GET /stuck) ------------------------------------------------


def get_stats_request() -> ApiRequest:
    return ApiRequest("GET", "/stats")


def get_doctor_request(params: Sequence[tuple[str, str]] = ()) -> ApiRequest:
    """`GET /doctor` with the thresholds given (``limit``, ``overdueAfter``, ``leaseWithin``,
    ``minCounter``, ``loopStalledAfter``, ``slowBatchMs``, ``minDiskFree``); the others take
    the server's defaults."""
    return ApiRequest("GET", "/doctor", params=tuple(params))


def doctor_report(body: Any) -> JsonObject:
    """The doctor's answer, checked: an object with a ``findings`` list and a boolean ``ok``."""
    if not isinstance(body, dict) or not isinstance(body.get("findings"), list):
        raise UnexpectedResponse(200, "a doctor answer without a 'findings' list")
    if not isinstance(body.get("ok"), bool):
        raise UnexpectedResponse(200, "a doctor answer without a boolean 'ok'")
    return dict(body)


def get_stuck_request(
    lease_within: int | None = None, min_counter: int | None = None, limit: int | None = None
) -> ApiRequest:
    """What looks stuck; unset parameters take the server's defaults (10000 ms, 3, 20)."""
    given = (("leaseWithin", lease_within), ("minCounter", min_counter), ("limit", limit))
    params = tuple((name, str(value)) for name, value in given if value is not None)
    return ApiRequest("GET", "/stuck", params=params)


# --- end of operator dashboard ------------------------------------------------------------------


def parse_response(status: int, content: bytes, reason: str = "") -> ApiResponse:
    """Turn an HTTP answer into an `ApiResponse`, or raise `ApiError`/`UnexpectedResponse`."""
    body: Any = None
    body_is_json = False
    if content:
        try:
            body = json.loads(content)
            body_is_json = True
        except ValueError:
            body = None
    if 200 <= status < 300:
        if content and not body_is_json:
            raise UnexpectedResponse(status, "the body is not JSON")
        return ApiResponse(status, body)
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and isinstance(error.get("code"), int):
        message = str(error.get("message") or reason)
        raise ApiError(status, error["code"], message, body)
    raise ApiError(status, 0, reason or "unexpected response", body if body_is_json else {})


def parse_envelope_response(
    request: ApiRequest, status: int, content: bytes, reason: str = ""
) -> ApiResponse:
    """The answer to an envelope: `ApiResponse(status, data)`, or `ApiError` (code 0) whose
    message is the error reply's `data` string (protocol-2026.md §2: HTTP status = head.status),
    or `UnexpectedResponse` for a 2xx body that is no reply to this request."""
    try:
        body = json.loads(content) if content else None
    except ValueError:
        body = None
    if not isinstance(body, dict):
        if 200 <= status < 300:
            raise UnexpectedResponse(status, "the body is not a JSON envelope")
        raise ApiError(status, 0, reason or "unexpected response", {})
    data = body.get("data")
    if not 200 <= status < 300:
        message = data if isinstance(data, str) and data else reason or "unexpected response"
        raise ApiError(status, 0, message, body)
    sent_head = (request.json or {}).get("head") or {}
    head = body.get("head")
    if not isinstance(head, dict) or head.get("corrId") != sent_head.get("corrId"):
        raise UnexpectedResponse(status, "the reply does not answer the request (corrId)")
    if not isinstance(data, dict):
        raise UnexpectedResponse(status, "the reply's data is not an object")
    return ApiResponse(status, data)


@dataclass(frozen=True, slots=True)
class Credentials:
    """How to authenticate: a bearer token, or a Basic user and password, or nothing."""

    token: str | None = None
    username: str | None = None
    password: str | None = None

    def __post_init__(self) -> None:
        if self.token and self.username:
            raise ValueError("a token and a username are exclusive")

    def headers(self) -> dict[str, str]:
        if self.token:
            return {"Authorization": f"Bearer {self.token}"}
        if self.username is not None:
            pair = f"{self.username}:{self.password or ''}".encode()
            return {"Authorization": "Basic " + base64.b64encode(pair).decode("ascii")}
        return {}


def _client_settings(
    base_url: str, credentials: Credentials | None, timeout: float
) -> dict[str, Any]:
    headers = {"User-Agent": f"resonate-client/{__version__}", "Accept": "application/json"}
    headers.update((credentials or Credentials()).headers())
    return {"base_url": base_url, "headers": headers, "timeout": httpx.Timeout(timeout)}


def _unreachable(base_url: str, error: httpx.TransportError) -> ServerUnreachable:
    reason = str(error) or type(error).__name__
    if isinstance(error, httpx.TimeoutException):
        reason = f"timed out ({reason})" if str(error) else "timed out"
    return ServerUnreachable(base_url, reason)


# --- clients ------------------------------------------------------------------------------------


class ResonateClient:
    """Synchronous client. Use as a context manager, or call `close()`."""

    def __init__(
        self,
        base_url: str = DEFAULT_SERVER_URL,
        *,
        credentials: Credentials | None = None,
        timeout: float = REQUEST_TIMEOUT_SECONDS,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url
        self._http = httpx.Client(
            **_client_settings(base_url, credentials, timeout), transport=transport
        )

    def __enter__(self) -> ResonateClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def send(self, request: ApiRequest) -> ApiResponse:
        try:
            answer = self._http.request(
                request.method,
                request.path,
                params=request.params,
                headers=request.headers,
                json=request.json,
            )
        except httpx.TransportError as error:
            raise _unreachable(self.base_url, error) from error
        if request.envelope:
            return parse_envelope_response(
                request, answer.status_code, answer.content, answer.reason_phrase
            )
        return parse_response(answer.status_code, answer.content, answer.reason_phrase)

    def iter_pages(
        self, build: PageRequest, items_key: str, cursor: str | None = None
    ) -> Iterator[JsonObject]:
        """The items of every page of a search, from ``cursor`` on: ``build(cursor)`` is the
        request for one page; the next cursor comes from each answer until the last page."""
        while True:
            page = self.send(build(cursor)).body
            yield from page_items(page, items_key)
            cursor = page.get("cursor")
            if not cursor:
                return

    def healthz(self) -> ApiResponse:
        return self.send(healthz_request())

    def readyz(self) -> ApiResponse:
        return self.send(readyz_request())

    def get_promise(self, id: str) -> ApiResponse:
        return self.send(get_promise_request(id))

    def create_promise(
        self,
        id: str,
        timeout_ms_absolute: int,
        param: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
        strict: bool = False,
    ) -> ApiResponse:
        return self.send(
            create_promise_request(id, timeout_ms_absolute, param, tags, idempotency_key, strict)
        )

    def complete_promise(
        self,
        id: str,
        state: CompletionState,
        value: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        strict: bool = False,
    ) -> ApiResponse:
        return self.send(complete_promise_request(id, state, value, idempotency_key, strict))

    def search_promises(
        self,
        id: str = "*",
        state: SearchState | None = None,
        tags: Mapping[str, str] | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> ApiResponse:
        """One page: `body` is `{"cursor": str | None, "promises": [...]}`."""
        return self.send(search_promises_request(id, state, tags, limit, cursor))

    def iter_promises(
        self,
        id: str = "*",
        state: SearchState | None = None,
        tags: Mapping[str, str] | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Iterator[JsonObject]:
        """Every matching promise, following cursors until the last page."""
        return self.iter_pages(
            lambda at: search_promises_request(id, state, tags, limit, at), "promises", cursor
        )

    def create_callback(
        self, promise_id: str, root_promise_id: str, recv: Recv, timeout: int
    ) -> ApiResponse:
        """`body` is `{"callback": Callback | None, "promise": Promise}`; `timeout` absolute ms."""
        return self.send(create_callback_request(promise_id, root_promise_id, recv, timeout))

    def create_subscription(
        self, promise_id: str, id: str, recv: Recv, timeout: int
    ) -> ApiResponse:
        """`body` is `{"callback": Callback | None, "promise": Promise}`; `timeout` absolute ms."""
        return self.send(create_subscription_request(promise_id, id, recv, timeout))

    def list_callbacks(
        self, promise_id: str, limit: int | None = None, cursor: str | None = None
    ) -> ApiResponse:
        """One page: `body` is `{"cursor": str | None, "callbacks": [...]}`, oldest first; each
        callback is `{"id", "type", "promiseId", "rootPromiseId", "recv", "timeout",
        "createdOn"}`. An unknown promise has none."""
        return self.send(list_callbacks_request(promise_id, limit, cursor))

    def iter_callbacks(
        self, promise_id: str, limit: int | None = None, cursor: str | None = None
    ) -> Iterator[JsonObject]:
        """Every callback still waiting on the promise, following cursors until the last page."""
        return self.iter_pages(
            lambda at: list_callbacks_request(promise_id, limit, at), "callbacks", cursor
        )

    # --- purge ---

    def purge_promises(
        self,
        *,
        older_than: int | None = None,
        before: int | None = None,
        states: tuple[PurgeState, ...] | None = None,
        id: str = "*",
        tags: Mapping[str, str] | None = None,
        limit: int | None = None,
        dry_run: bool = False,
        sample: int | None = None,
    ) -> ApiResponse:
        """One call of `POST /promises/purge`: one batch, `body` `{"before", "promises",
        "tasks", "more"}`; or a dry run, `body` `{"before", "dryRun", "count", "sample"}`."""
        return self.send(
            purge_promises_request(
                older_than=older_than,
                before=before,
                states=states,
                id=id,
                tags=tags,
                limit=limit,
                dry_run=dry_run,
                sample=sample,
            )
        )

    def iter_purge(
        self,
        *,
        older_than: int | None = None,
        before: int | None = None,
        states: tuple[PurgeState, ...] | None = None,
        id: str = "*",
        tags: Mapping[str, str] | None = None,
        limit: int | None = None,
    ) -> Iterator[JsonObject]:
        """Purge batch after batch while the last one was full, yielding each checked answer.
        The first call sends the cutoff given; every later one the `before` the first answer
        fixed, so that all batches use one cutoff."""
        while True:
            request = purge_promises_request(
                older_than=older_than, before=before, states=states, id=id, tags=tags, limit=limit
            )
            batch = purge_batch(self.send(request).body)
            yield batch
            if not _purge_goes_on(batch):
                return
            older_than, before = None, batch["before"]

    # --- end of purge ---

    def get_task(self, id: str) -> ApiResponse:
        """The extended task object (http-api.md §4.10)."""
        return self.send(get_task_request(id))

    def search_tasks(
        self,
        id: str = "*",
        state: TaskSearchState | None = None,
        process_id: str | None = None,
        root_promise_id: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> ApiResponse:
        """One page: `body` is `{"cursor": str | None, "tasks": [...]}`."""
        return self.send(
            search_tasks_request(id, state, process_id, root_promise_id, limit, cursor)
        )

    def iter_tasks(
        self,
        id: str = "*",
        state: TaskSearchState | None = None,
        process_id: str | None = None,
        root_promise_id: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Iterator[JsonObject]:
        """Every matching task, following cursors until the last page."""
        return self.iter_pages(
            lambda at: search_tasks_request(id, state, process_id, root_promise_id, limit, at),
            "tasks",
            cursor,
        )

    def claim_task(self, id: str, counter: int, process_id: str, ttl: int) -> ApiResponse:
        """`body` is `{"type", "promises": {"root": {...}, "leaf"?: {...}}}`; `ttl` relative ms."""
        return self.send(claim_task_request(id, counter, process_id, ttl))

    def complete_task(self, id: str, counter: int) -> ApiResponse:
        """201 with the task when completed now, 200 when it had already ended."""
        return self.send(complete_task_request(id, counter))

    def drop_task(self, id: str, counter: int) -> ApiResponse:
        """201 when the claim was given back, 200 when the task was not claimed; no body."""
        return self.send(drop_task_request(id, counter))

    def heartbeat_tasks(self, process_id: str) -> ApiResponse:
        """`body` is `{"tasksAffected": int}`."""
        return self.send(heartbeat_tasks_request(process_id))

    # --- the 2026-04-01 protocol ---

    def call(self, kind: str, data: Mapping[str, Any]) -> ApiResponse:
        """Any envelope kind: `body` is the reply's `data`; an error reply raises `ApiError`."""
        return self.send(envelope_request(kind, data))

    def get_task_2026(self, id: str) -> ApiResponse:
        """`body` is `{"task": {"id", "state", "version", "resumes", "ttl"?, "pid"?}}`."""
        return self.send(get_task_2026_request(id))

    def search_tasks_2026(
        self,
        state: Task2026State | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> ApiResponse:
        """One page: `body` is `{"tasks": [...], "cursor"?: <last id>}`, in id order."""
        return self.send(search_tasks_2026_request(state, limit, cursor))

    def iter_tasks_2026(
        self,
        state: Task2026State | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Iterator[JsonObject]:
        """Every 2026 task (of `state`), following cursors until the last page."""
        return self.iter_pages(
            lambda at: search_tasks_2026_request(state, limit, at), "tasks", cursor
        )

    def search_all_tasks(self, query: TaskQuery, cursor: str | None = None) -> ApiResponse:
        """One page of REST and 2026 tasks (`task_page`)."""
        return ApiResponse(200, drive_sync(task_page(query, cursor), self.send))

    def iter_all_tasks(self, query: TaskQuery, cursor: str | None = None) -> Iterator[JsonObject]:
        """Every task of both models matching `query` (from `cursor` on): every REST task, then
        every 2026 task, each page's tasks yielded before the next page is asked for."""
        rest_cursor, after = None, None
        read_rest, read_2026 = query.reads_rest, query.reads_2026
        if cursor and cursor.startswith(TASK_CURSOR_PREFIX):
            query, rest_cursor, after = decode_task_cursor(cursor)
            read_rest, read_2026 = rest_cursor is not None, True
        elif cursor:
            rest_cursor, read_rest, read_2026 = cursor, True, False
        if read_rest:
            state: Any = query.state
            yield from self.iter_tasks(
                query.pattern,
                state,
                query.process_id,
                query.root_promise_id,
                query.limit,
                rest_cursor,
            )
        if read_2026:
            size = _MAX_2026_LIMIT if query.filters_2026 else query.limit
            for task in self.iter_tasks_2026(query.state_2026(), size, after):
                if query.matches_2026(task):
                    yield as_2026_record(task)

    def get_lock(self, resource_id: str) -> ApiResponse:
        """The lock object (http-api.md §8.1), also past its expiry until swept."""
        return self.send(get_lock_request(resource_id))

    def search_locks(
        self,
        resource_id: str = "*",
        process_id: str | None = None,
        execution_id: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> ApiResponse:
        """One page: `body` is `{"cursor": str | None, "locks": [...]}`, by resource id."""
        return self.send(search_locks_request(resource_id, process_id, execution_id, limit, cursor))

    def iter_locks(
        self,
        resource_id: str = "*",
        process_id: str | None = None,
        execution_id: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Iterator[JsonObject]:
        """Every matching lock, following cursors until the last page."""
        return self.iter_pages(
            lambda at: search_locks_request(resource_id, process_id, execution_id, limit, at),
            "locks",
            cursor,
        )

    def acquire_lock(
        self, resource_id: str, execution_id: str, process_id: str, ttl: int
    ) -> ApiResponse:
        """201 with the lock; 403 (40305) while another execution holds it. `ttl` relative ms."""
        return self.send(acquire_lock_request(resource_id, execution_id, process_id, ttl))

    def release_lock(self, resource_id: str, execution_id: str) -> ApiResponse:
        """204 without a body; 404 (40402) unless this execution holds the lock."""
        return self.send(release_lock_request(resource_id, execution_id))

    def heartbeat_locks(self, process_id: str) -> ApiResponse:
        """`body` is `{"locksAffected": int}`."""
        return self.send(heartbeat_locks_request(process_id))

    # --- schedules ---

    def get_schedule(self, id: str) -> ApiResponse:
        return self.send(get_schedule_request(id))

    def create_schedule(
        self,
        id: str,
        cron: str,
        promise_id: str,
        promise_timeout: int,
        description: str | None = None,
        timezone: str | None = None,
        tags: Mapping[str, str] | None = None,
        promise_param: Mapping[str, Any] | None = None,
        promise_tags: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> ApiResponse:
        """201 with the schedule, 200 when the idempotency key matched the stored one."""
        return self.send(
            create_schedule_request(
                id,
                cron,
                promise_id,
                promise_timeout,
                description,
                timezone,
                tags,
                promise_param,
                promise_tags,
                idempotency_key,
            )
        )

    def search_schedules(
        self,
        id: str = "*",
        tags: Mapping[str, str] | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> ApiResponse:
        """One page: `body` is `{"cursor": str | None, "schedules": [...]}`."""
        return self.send(search_schedules_request(id, tags, limit, cursor))

    def iter_schedules(
        self,
        id: str = "*",
        tags: Mapping[str, str] | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Iterator[JsonObject]:
        """Every matching schedule, following cursors until the last page."""
        return self.iter_pages(
            lambda at: search_schedules_request(id, tags, limit, at), "schedules", cursor
        )

    def delete_schedule(self, id: str) -> ApiResponse:
        """204 without a body."""
        return self.send(delete_schedule_request(id))

    # --- end of schedules ---

    # --- operator dashboard ---

    def get_stats(self) -> ApiResponse:
        """`body` is `{"version", "store", "startedAt", "time", "countedAt", "promises":
        {state: n}, "tasks": {state: n}, "schedules": n, "locks": n}`; every state is present.
        The counts are shared by all callers for at least a second (`countedAt`)."""
        return self.send(get_stats_request())

    def get_stuck(
        self,
        lease_within: int | None = None,
        min_counter: int | None = None,
        limit: int | None = None,
    ) -> ApiResponse:
        """`body` is `{"time", "promises", "tasks", "schedules", "locks"}`: lists of at most
        `limit` objects each; a task also has `"reason": "lease" | "counter"`."""
        return self.send(get_stuck_request(lease_within, min_counter, limit))

    # --- end of operator dashboard ---


class AsyncResonateClient:
    """Asynchronous twin of `ResonateClient`, for the TUI."""

    def __init__(
        self,
        base_url: str = DEFAULT_SERVER_URL,
        *,
        credentials: Credentials | None = None,
        timeout: float = REQUEST_TIMEOUT_SECONDS,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url
        self._http = httpx.AsyncClient(
            **_client_settings(base_url, credentials, timeout), transport=transport
        )

    async def __aenter__(self) -> AsyncResonateClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def send(self, request: ApiRequest) -> ApiResponse:
        try:
            answer = await self._http.request(
                request.method,
                request.path,
                params=request.params,
                headers=request.headers,
                json=request.json,
            )
        except httpx.TransportError as error:
            raise _unreachable(self.base_url, error) from error
        if request.envelope:
            return parse_envelope_response(
                request, answer.status_code, answer.content, answer.reason_phrase
            )
        return parse_response(answer.status_code, answer.content, answer.reason_phrase)

    async def iter_pages(
        self, build: PageRequest, items_key: str, cursor: str | None = None
    ) -> AsyncIterator[JsonObject]:
        """The asynchronous ``ResonateClient.iter_pages``."""
        while True:
            page = (await self.send(build(cursor))).body
            for item in page_items(page, items_key):
                yield item
            cursor = page.get("cursor")
            if not cursor:
                return

    async def healthz(self) -> ApiResponse:
        return await self.send(healthz_request())

    async def readyz(self) -> ApiResponse:
        return await self.send(readyz_request())

    async def get_promise(self, id: str) -> ApiResponse:
        return await self.send(get_promise_request(id))

    async def create_promise(
        self,
        id: str,
        timeout_ms_absolute: int,
        param: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
        strict: bool = False,
    ) -> ApiResponse:
        return await self.send(
            create_promise_request(id, timeout_ms_absolute, param, tags, idempotency_key, strict)
        )

    async def complete_promise(
        self,
        id: str,
        state: CompletionState,
        value: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        strict: bool = False,
    ) -> ApiResponse:
        return await self.send(complete_promise_request(id, state, value, idempotency_key, strict))

    async def search_promises(
        self,
        id: str = "*",
        state: SearchState | None = None,
        tags: Mapping[str, str] | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> ApiResponse:
        return await self.send(search_promises_request(id, state, tags, limit, cursor))

    def iter_promises(
        self,
        id: str = "*",
        state: SearchState | None = None,
        tags: Mapping[str, str] | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> AsyncIterator[JsonObject]:
        return self.iter_pages(
            lambda at: search_promises_request(id, state, tags, limit, at), "promises", cursor
        )

    async def create_callback(
        self, promise_id: str, root_promise_id: str, recv: Recv, timeout: int
    ) -> ApiResponse:
        return await self.send(create_callback_request(promise_id, root_promise_id, recv, timeout))

    async def create_subscription(
        self, promise_id: str, id: str, recv: Recv, timeout: int
    ) -> ApiResponse:
        return await self.send(create_subscription_request(promise_id, id, recv, timeout))

    async def list_callbacks(
        self, promise_id: str, limit: int | None = None, cursor: str | None = None
    ) -> ApiResponse:
        return await self.send(list_callbacks_request(promise_id, limit, cursor))

    def iter_callbacks(
        self, promise_id: str, limit: int | None = None, cursor: str | None = None
    ) -> AsyncIterator[JsonObject]:
        return self.iter_pages(
            lambda at: list_callbacks_request(promise_id, limit, at), "callbacks", cursor
        )

    # --- purge ---

    async def purge_promises(
        self,
        *,
        older_than: int | None = None,
        before: int | None = None,
        states: tuple[PurgeState, ...] | None = None,
        id: str = "*",
        tags: Mapping[str, str] | None = None,
        limit: int | None = None,
        dry_run: bool = False,
        sample: int | None = None,
    ) -> ApiResponse:
        return await self.send(
            purge_promises_request(
                older_than=older_than,
                before=before,
                states=states,
                id=id,
                tags=tags,
                limit=limit,
                dry_run=dry_run,
                sample=sample,
            )
        )

    async def iter_purge(
        self,
        *,
        older_than: int | None = None,
        before: int | None = None,
        states: tuple[PurgeState, ...] | None = None,
        id: str = "*",
        tags: Mapping[str, str] | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[JsonObject]:
        while True:
            request = purge_promises_request(
                older_than=older_than, before=before, states=states, id=id, tags=tags, limit=limit
            )
            batch = purge_batch((await self.send(request)).body)
            yield batch
            if not _purge_goes_on(batch):
                return
            older_than, before = None, batch["before"]

    # --- end of purge ---

    async def get_task(self, id: str) -> ApiResponse:
        return await self.send(get_task_request(id))

    async def search_tasks(
        self,
        id: str = "*",
        state: TaskSearchState | None = None,
        process_id: str | None = None,
        root_promise_id: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> ApiResponse:
        return await self.send(
            search_tasks_request(id, state, process_id, root_promise_id, limit, cursor)
        )

    def iter_tasks(
        self,
        id: str = "*",
        state: TaskSearchState | None = None,
        process_id: str | None = None,
        root_promise_id: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> AsyncIterator[JsonObject]:
        return self.iter_pages(
            lambda at: search_tasks_request(id, state, process_id, root_promise_id, limit, at),
            "tasks",
            cursor,
        )

    async def claim_task(self, id: str, counter: int, process_id: str, ttl: int) -> ApiResponse:
        return await self.send(claim_task_request(id, counter, process_id, ttl))

    async def complete_task(self, id: str, counter: int) -> ApiResponse:
        return await self.send(complete_task_request(id, counter))

    async def drop_task(self, id: str, counter: int) -> ApiResponse:
        return await self.send(drop_task_request(id, counter))

    async def heartbeat_tasks(self, process_id: str) -> ApiResponse:
        return await self.send(heartbeat_tasks_request(process_id))

    # --- the 2026-04-01 protocol ---

    async def call(self, kind: str, data: Mapping[str, Any]) -> ApiResponse:
        return await self.send(envelope_request(kind, data))

    async def get_task_2026(self, id: str) -> ApiResponse:
        return await self.send(get_task_2026_request(id))

    async def search_tasks_2026(
        self,
        state: Task2026State | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> ApiResponse:
        return await self.send(search_tasks_2026_request(state, limit, cursor))

    def iter_tasks_2026(
        self,
        state: Task2026State | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> AsyncIterator[JsonObject]:
        return self.iter_pages(
            lambda at: search_tasks_2026_request(state, limit, at), "tasks", cursor
        )

    async def search_all_tasks(self, query: TaskQuery, cursor: str | None = None) -> ApiResponse:
        walk = task_page(query, cursor)
        try:
            request = next(walk)
            while True:
                request = walk.send((await self.send(request)).body)
        except StopIteration as done:
            return ApiResponse(200, done.value)

    async def get_lock(self, resource_id: str) -> ApiResponse:
        return await self.send(get_lock_request(resource_id))

    async def search_locks(
        self,
        resource_id: str = "*",
        process_id: str | None = None,
        execution_id: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> ApiResponse:
        return await self.send(
            search_locks_request(resource_id, process_id, execution_id, limit, cursor)
        )

    def iter_locks(
        self,
        resource_id: str = "*",
        process_id: str | None = None,
        execution_id: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> AsyncIterator[JsonObject]:
        return self.iter_pages(
            lambda at: search_locks_request(resource_id, process_id, execution_id, limit, at),
            "locks",
            cursor,
        )

    async def acquire_lock(
        self, resource_id: str, execution_id: str, process_id: str, ttl: int
    ) -> ApiResponse:
        return await self.send(acquire_lock_request(resource_id, execution_id, process_id, ttl))

    async def release_lock(self, resource_id: str, execution_id: str) -> ApiResponse:
        return await self.send(release_lock_request(resource_id, execution_id))

    async def heartbeat_locks(self, process_id: str) -> ApiResponse:
        return await self.send(heartbeat_locks_request(process_id))

    # --- schedules ---

    async def get_schedule(self, id: str) -> ApiResponse:
        return await self.send(get_schedule_request(id))

    async def create_schedule(
        self,
        id: str,
        cron: str,
        promise_id: str,
        promise_timeout: int,
        description: str | None = None,
        timezone: str | None = None,
        tags: Mapping[str, str] | None = None,
        promise_param: Mapping[str, Any] | None = None,
        promise_tags: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> ApiResponse:
        return await self.send(
            create_schedule_request(
                id,
                cron,
                promise_id,
                promise_timeout,
                description,
                timezone,
                tags,
                promise_param,
                promise_tags,
                idempotency_key,
            )
        )

    async def search_schedules(
        self,
        id: str = "*",
        tags: Mapping[str, str] | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> ApiResponse:
        return await self.send(search_schedules_request(id, tags, limit, cursor))

    def iter_schedules(
        self,
        id: str = "*",
        tags: Mapping[str, str] | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> AsyncIterator[JsonObject]:
        return self.iter_pages(
            lambda at: search_schedules_request(id, tags, limit, at), "schedules", cursor
        )

    async def delete_schedule(self, id: str) -> ApiResponse:
        return await self.send(delete_schedule_request(id))

    # --- end of schedules ---

    # --- operator dashboard ---

    async def get_stats(self) -> ApiResponse:
        return await self.send(get_stats_request())

    async def get_stuck(
        self,
        lease_within: int | None = None,
        min_counter: int | None = None,
        limit: int | None = None,
    ) -> ApiResponse:
        return await self.send(get_stuck_request(lease_within, min_counter, limit))

    # --- end of operator dashboard ---


def page_items(page: Any, items_key: str) -> list[JsonObject]:
    """The items of a search page, checking the page has the documented shape."""
    if not isinstance(page, dict) or not isinstance(page.get(items_key), list):
        raise UnexpectedResponse(200, f"a search page without a {items_key!r} list")
    return list(page[items_key])
