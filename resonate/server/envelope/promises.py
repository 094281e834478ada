"""The promise kinds of the 2026-04-01 protocol (protocol-2026.md §3.1, §4.1, §4.4).

Each kind validates its ``data``, runs the one shared operation of ``resonate.server.promises``
(the same table, lazy timeout and settlement cascade as REST, P3), or of
``resonate.server.tasks2026`` where a task, callback or listener is involved, and renders the
§4.1 record.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from resonate.core.clock import INT64_MAX
from resonate.core.promise import Promise, PromiseState
from resonate.core.schema import check_id, check_string, check_string_map, check_value
from resonate.core.search import PromiseIdQuery
from resonate.core.task2026 import DELAY_TAG, TARGET_TAG, origin_of, parse_address
from resonate.server import promises, tasks2026
from resonate.server.envelope.protocol import bad_request

if TYPE_CHECKING:
    from resonate.server.http.routes import Context

ORIGIN_TAG = "resonate:origin"
LINEAGE_TAGS = ("resonate:branch", "resonate:parent")
SETTLE_STATES = {
    "resolved": PromiseState.RESOLVED,
    "rejected": PromiseState.REJECTED,
    "rejected_canceled": PromiseState.REJECTED_CANCELED,
}
SEARCH_STATES = {state.name.lower(): state for state in PromiseState}
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


def promise_record(promise: Promise) -> dict[str, Any]:
    """The §4.1 record: lower-case state, ``tags`` always an object, ``settledAt`` omitted
    while pending (P5: never ``null``)."""
    record: dict[str, Any] = {
        "id": promise.id,
        "state": promise.state.name.lower(),
        "param": promise.param.to_json(),
        "value": promise.value.to_json(),
        "tags": promise.tags or {},
        "timeoutAt": promise.timeout,
    }
    if promise.created_on is not None:
        record["createdAt"] = promise.created_on
    if promise.completed_on is not None and promise.state.is_completed:
        record["settledAt"] = promise.completed_on
    return record


def _extends(promise_id: str, ancestor: str) -> bool:
    """The lenient lineage rule (P4): the id is the ancestor's or continues it after `:` or `.`
    (SDKs after 0.11.4 mint `root:1`, earlier ones `root.1`)."""
    return promise_id == ancestor or promise_id.startswith((ancestor + ":", ancestor + "."))


def check_id_rules(promise_id: str, tags: dict[str, str]) -> None:
    """§4.4 on create, lenient form (P4); the caller has refused NUL and empty ids."""
    origin = tags.get(ORIGIN_TAG)
    if origin is not None:
        if ":" in origin:
            raise bad_request(f"Invalid tag '{ORIGIN_TAG}': must not contain ':'")
        if not _extends(promise_id, origin):
            raise bad_request(f"Invalid id: must be the '{ORIGIN_TAG}' tag or start with it")
    for name in LINEAGE_TAGS:
        value = tags.get(name)
        if value is not None and not _extends(promise_id, value):
            raise bad_request(f"Invalid id: must be the '{name}' tag or start with it")


def _check_delay(tags: dict[str, str], timeout_at: int) -> None:
    raw = tags.get(DELAY_TAG)
    if raw is None:
        return
    if not (raw.isascii() and raw.isdigit()) or int(raw) >= timeout_at:
        raise bad_request(f"Invalid tag '{DELAY_TAG}': an integer from 0 to below timeoutAt")
    if TARGET_TAG not in tags:
        raise bad_request(f"Invalid tag '{DELAY_TAG}': needs '{TARGET_TAG}'")


def _timeout_at(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= INT64_MAX:
        raise bad_request("Invalid 'timeoutAt' field — must be an integer of milliseconds ≥ 0")
    return value


async def get(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    promise_id = check_id("id", data.get("id"))
    promise = await promises.run_read_promise(ctx.store, ctx.clock, promise_id)
    return {"promise": promise_record(promise)}


def new_promise(data: dict[str, Any]) -> tasks2026.NewPromise:
    """A validated ``promise.create`` data object (also the action of task.create and fences)."""
    promise_id = check_id("id", data.get("id"))
    timeout_at = _timeout_at(data.get("timeoutAt"))
    param = check_value("param", data.get("param"))
    tags = check_string_map("tags", data.get("tags"))
    check_id_rules(promise_id, tags)
    target = tags.get(TARGET_TAG)
    if target is not None:
        check_address(target, f"tag '{TARGET_TAG}'")
    _check_delay(tags, timeout_at)
    return tasks2026.NewPromise(promise_id, timeout_at, param, tags)


def check_address(text: str, what: str) -> str:
    if "\x00" in text or parse_address(text) is None:
        raise bad_request(
            f"Invalid {what}: an address must be poll://uni@<group>/<id>, "
            "poll://any@<group>[/<id>] or an http(s) URL"
        )
    return text


async def create(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    request = new_promise(data)
    if TARGET_TAG not in (request.tags or {}):
        # No task to make: the shared create, in one statement where the store can. No router:
        # REST's `resonate:invoke` routing is not part of this protocol.
        outcome = await promises.run_create_promise(ctx.store, ctx.clock, request.command())
        return {"promise": promise_record(outcome.promise)}
    promise = await ctx.store.run(
        partial(tasks2026.create_promise, clock=ctx.clock, request=request)
    )
    return {"promise": promise_record(promise)}


def settle_request(data: dict[str, Any]) -> tasks2026.Settle:
    promise_id = check_id("id", data.get("id"))
    raw_state = data.get("state")
    state = SETTLE_STATES.get(raw_state) if isinstance(raw_state, str) else None
    if state is None:
        raise bad_request(
            "Invalid 'state' field — must be one of resolved, rejected, rejected_canceled"
        )
    return tasks2026.Settle(promise_id, state, check_value("value", data.get("value")))


async def settle(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    request = settle_request(data)
    outcome = await promises.run_complete_promise(ctx.store, ctx.clock, request.command())
    return {"promise": promise_record(outcome.promise)}


def same_origin(awaited: str, awaiter: str) -> None:
    if awaited == awaiter:
        raise bad_request("Invalid callback: 'awaited' and 'awaiter' must differ")
    if origin_of(awaited) != origin_of(awaiter):
        raise bad_request("Invalid callback: 'awaited' and 'awaiter' must have the same origin")


async def register_callback(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    awaited = check_id("awaited", data.get("awaited"))
    awaiter = check_id("awaiter", data.get("awaiter"))
    same_origin(awaited, awaiter)
    promise = await ctx.store.run(
        partial(
            tasks2026.register_callback, clock=ctx.clock, awaited_id=awaited, awaiter_id=awaiter
        )
    )
    return {"promise": promise_record(promise)}


async def register_listener(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    awaited = check_id("awaited", data.get("awaited"))
    address = check_address(check_string("address", data.get("address")), "'address' field")
    promise = await ctx.store.run(
        partial(tasks2026.register_listener, clock=ctx.clock, promise_id=awaited, address=address)
    )
    return {"promise": promise_record(promise)}


def page_of(data: dict[str, Any], default_limit: int = DEFAULT_LIMIT) -> tuple[int, str | None]:
    """A search's ``limit`` (1 to MAX_LIMIT; absent or null: ``default_limit``) and the id its
    ``cursor`` names (the last id of the previous page), shared by every search kind."""
    limit = data.get("limit")
    if limit is None:
        limit = default_limit
    elif isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise bad_request(f"Invalid 'limit' field — must be an integer from 1 to {MAX_LIMIT}")
    cursor = data.get("cursor")
    return limit, None if cursor is None else check_string("cursor", cursor) or None


async def search(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    raw_state = data.get("state")
    state = None
    if raw_state is not None:
        state = SEARCH_STATES.get(raw_state) if isinstance(raw_state, str) else None
        if state is None:
            names = ", ".join(SEARCH_STATES)
            raise bad_request(f"Invalid 'state' field — must be one of {names}")
    limit, after = page_of(data)
    query = PromiseIdQuery(
        state=state,
        tags=check_string_map("tags", data.get("tags")),
        limit=limit,
        after_id=after,
    )
    page = await ctx.store.read(partial(promises.search_promises_by_id, query=query))
    reply: dict[str, Any] = {"promises": [promise_record(p) for p in page.promises]}
    if page.cursor is not None:
        reply["cursor"] = page.cursor
    return reply
