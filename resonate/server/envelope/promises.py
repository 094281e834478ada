"""The promise kinds of the 2026-04-01 protocol (protocol-2026.md §3.1, §4.1, §4.4).

Each kind validates its ``data``, runs the one shared operation of ``resonate.server.promises``
(the same table, lazy timeout and settlement cascade as REST, P3) and renders the §4.1
record. Kinds that need the 2026 task model answer 501 until it exists.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from resonate.core.clock import INT64_MAX
from resonate.core.promise import Promise, PromiseState
from resonate.core.schema import check_id, check_string, check_string_map, check_value
from resonate.core.search import PromiseIdQuery
from resonate.server import promises
from resonate.server.envelope.protocol import bad_request, not_implemented

if TYPE_CHECKING:
    from resonate.server.http.routes import Context

TARGET_TAG = "resonate:target"
DELAY_TAG = "resonate:delay"
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
    promise = await ctx.store.run(
        partial(promises.read_promise, clock=ctx.clock, promise_id=promise_id)
    )
    return {"promise": promise_record(promise)}


async def create(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    promise_id = check_id("id", data.get("id"))
    timeout_at = _timeout_at(data.get("timeoutAt"))
    param = check_value("param", data.get("param"))
    tags = check_string_map("tags", data.get("tags"))
    check_id_rules(promise_id, tags)
    _check_delay(tags, timeout_at)
    if TARGET_TAG in tags:
        # The task of a targeted promise (§3.2) is not built yet: refuse rather than store a
        # promise whose task and execute would never exist.
        raise not_implemented("tasks of the 2026 protocol")
    command = promises.CreatePromise(
        id=promise_id,
        timeout=timeout_at,
        param=param,
        tags=tags,
        repeat_returns_stored=True,
        settle_if_past_timeout=True,
    )
    # No router: REST's `resonate:invoke` routing is not part of this protocol.
    outcome = await promises.run_create_promise(ctx.store, ctx.clock, command)
    return {"promise": promise_record(outcome.promise)}


async def settle(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    promise_id = check_id("id", data.get("id"))
    raw_state = data.get("state")
    state = SETTLE_STATES.get(raw_state) if isinstance(raw_state, str) else None
    if state is None:
        raise bad_request(
            "Invalid 'state' field — must be one of resolved, rejected, rejected_canceled"
        )
    command = promises.CompletePromise(
        id=promise_id,
        state=state,
        value=check_value("value", data.get("value")),
        repeat_returns_stored=True,
    )
    outcome = await promises.run_complete_promise(ctx.store, ctx.clock, command)
    return {"promise": promise_record(outcome.promise)}


def _limit(value: Any) -> int:
    if value is None:
        return DEFAULT_LIMIT
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_LIMIT:
        raise bad_request(f"Invalid 'limit' field — must be an integer from 1 to {MAX_LIMIT}")
    return value


async def search(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    raw_state = data.get("state")
    state = None
    if raw_state is not None:
        state = SEARCH_STATES.get(raw_state) if isinstance(raw_state, str) else None
        if state is None:
            names = ", ".join(SEARCH_STATES)
            raise bad_request(f"Invalid 'state' field — must be one of {names}")
    cursor = data.get("cursor")
    query = PromiseIdQuery(
        state=state,
        tags=check_string_map("tags", data.get("tags")),
        limit=_limit(data.get("limit")),
        after_id=None if cursor is None else check_string("cursor", cursor) or None,
    )
    page = await ctx.store.read(partial(promises.search_promises_by_id, query=query))
    reply: dict[str, Any] = {"promises": [promise_record(p) for p in page.promises]}
    if page.cursor is not None:
        reply["cursor"] = page.cursor
    return reply
