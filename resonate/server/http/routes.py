"""The route table of the API listener: one entry per route, used to register the aiohttp
handlers AND to generate the OpenAPI document (http-api.md §1.2, §11.4).

Handlers are thin: they validate with the shared schemas, call one operation through the
store, and render the result.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from aiohttp import web

from resonate import __version__
from resonate.core.callback import CallbackQuery, callback_query_from_cursor
from resonate.core.clock import INT64_MAX, Clock
from resonate.core.errors import Code, ResonateError, invalid
from resonate.core.lock import LockQuery, lock_query_from_cursor
from resonate.core.promise import COMPLETION_STATES, PromiseState
from resonate.core.routing import Router, Sender
from resonate.core.schedule import check_template, template_fixed_prefix
from resonate.core.schema import Field, Kind, Schema, validate
from resonate.core.search import (
    PromiseQuery,
    ScheduleQuery,
    TaskQuery,
    parse_int_param,
    parse_limit,
    parse_search_state,
    parse_tag_filters,
    parse_task_state,
    promise_query_from_cursor,
    schedule_query_from_cursor,
    task_query_from_cursor,
)
from resonate.core.task import TaskState
from resonate.core.task2026 import Task2026State
from resonate.server import (
    callbacks,
    dashboard,
    doctor,
    locks,
    promises,
    retention,
    schedules,
    tasks,
)
from resonate.server.delivery.poll import PollHub, stream_path
from resonate.server.envelope import handle_envelope
from resonate.server.envelope.debug import Debug
from resonate.server.http.auth import (
    Authenticator,
    JwtVerifier,
    Principal,
    authorize_everything,
    authorize_id,
    authorize_ids,
    authorize_pattern,
    authorize_task_id,
    principal_of,
    task_id_allowed,
)
from resonate.server.http.protocol import (
    MAX_HEADER_BYTES,
    fence,
    idempotency_key,
    json_response,
    path_id,
    read_json_object,
    request_id,
    strict_header,
    trace_headers,
)
from resonate.server.promises import Fence
from resonate.store.base import FINAL_STATES, PurgeQuery, SchemaStatus, Store

if TYPE_CHECKING:
    from resonate.server.loops import Loop
    from resonate.server.metrics import Metrics

# ---- request bodies -------------------------------------------------------------------------

CREATE_PROMISE = Schema(
    "CreatePromiseRequest",
    (
        Field("id", Kind.ID, required=True, description="Promise id; may contain '/'."),
        Field(
            "timeout",
            Kind.INT64,
            description="Absolute deadline, ms since the epoch; absent means 0.",
        ),
        Field("param", Kind.VALUE),
        Field("tags", Kind.TAGS),
    ),
)

COMPLETE_PROMISE = Schema(
    "CompletePromiseRequest",
    (
        Field(
            "state",
            Kind.ENUM,
            required=True,
            choices=tuple(s.name.lower() for s in COMPLETION_STATES),
        ),
        Field("value", Kind.VALUE),
    ),
)


_REGISTRATION_FIELDS = (
    Field("recv", Kind.RECV, required=True, description="Where the task is sent"),
    Field("timeout", Kind.INT64, description="Task timeout, absolute ms; absent means 0"),
)
CREATE_CALLBACK = Schema(
    "CreateCallbackRequest",
    (Field("rootPromiseId", Kind.ID, required=True), *_REGISTRATION_FIELDS),
)
CREATE_CALLBACK_BY_BODY = Schema(
    "CreateCallbackByBodyRequest",
    (Field("promiseId", Kind.ID, required=True), *CREATE_CALLBACK.fields),
)
CREATE_SUBSCRIPTION = Schema(
    "CreateSubscriptionRequest",
    (
        Field("id", Kind.ID, required=True, aliases=("Id",), description="Subscriber id"),
        *_REGISTRATION_FIELDS,
    ),
)
CREATE_SUBSCRIPTION_BY_BODY = Schema(
    "CreateSubscriptionByBodyRequest",
    (Field("promiseId", Kind.ID, required=True), *CREATE_SUBSCRIPTION.fields),
)


CREATE_PROMISE_AND_TASK = Schema(
    "CreatePromiseAndTaskRequest",
    (
        Field("promise", Kind.OBJECT, required=True, fields=CREATE_PROMISE.fields),
        Field(
            "task",
            Kind.OBJECT,
            required=True,
            fields=(
                Field("processId", Kind.ID, required=True, description="The claiming process"),
                Field("ttl", Kind.INT64, minimum=0, description="Lease in ms; absent means 0"),
            ),
        ),
    ),
)

_TASK_REF = (
    Field("id", Kind.ID, required=True, description="Task id"),
    Field("counter", Kind.INT64, required=True, description="Task counter (non-zero)"),
)
CLAIM_TASK = Schema(
    "ClaimTaskRequest",
    (
        *_TASK_REF,
        Field("processId", Kind.ID, required=True, description="The claiming process"),
        Field("ttl", Kind.INT64, minimum=0, description="Lease in ms; absent means 0"),
    ),
)
TASK_REF = Schema("TaskRefRequest", _TASK_REF)
HEARTBEAT_TASKS = Schema("HeartbeatTasksRequest", (Field("processId", Kind.ID, required=True),))


# ---- the route table ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    location: str  # "path" | "query" | "header"
    schema: dict[str, Any]
    required: bool = False
    description: str = ""


@dataclass
class Context:
    """What handlers need: the store, the clock and a few settings."""

    store: Store
    clock: Clock
    promise_batch_size: int = 100
    purge_batch_size: int = 500  # system.retention.batchSize: a purge batch's default limit
    basic_auth: dict[str, str] = field(default_factory=dict)  # user -> password; empty = off
    jwt: JwtVerifier | None = None  # JWT bearer auth (api.auth.publicKey); None = off
    router: Router = field(default_factory=Router)
    base_url: str = "http://localhost:8001"  # system.url: the links sent to workers
    task_frequency: int = 60_000  # lease of claims made through GET task links
    poll: PollHub | None = None  # the REST poll transport (its own listener)
    poll_2026: PollHub | None = None  # the 2026 protocol's stream, /poll/... on this port (P2)
    debug: Debug | None = None  # debug mode (`resonate dev`): the 2026 debug kinds (P7)
    shutting_down: bool = False
    ready_cache: tuple[float, SchemaStatus | Exception] | None = None
    openapi_document: dict[str, Any] = field(default_factory=dict)
    started_at: int = 0  # the clock when the server started, ms (GET /stats)
    counts_cache: dashboard.CountsCache = field(default_factory=dashboard.CountsCache)
    # GET /doctor: the background loops, the metrics (recent store latency) and the enqueue
    # loop's recv resolver; set by the server once it built them.
    loops: list[Loop] = field(default_factory=list)
    metrics: Metrics | None = None
    sender: Sender | None = None

    @property
    def authenticator(self) -> Authenticator:
        """The credentials the API listener accepts (http-api.md §9)."""
        return Authenticator(self.basic_auth, self.jwt)


Handler = Callable[[Context, web.Request], Awaitable[web.StreamResponse]]

# What a success response carries when it is not a JSON object of a published schema.
EMPTY = "(empty)"  # no body: 204, and the 200/201 of task drop (§1.3)
ANY_JSON = "(json)"  # a JSON object without a schema of its own: the OpenAPI document
EVENT_STREAM = "(event-stream)"  # Server-Sent Events: the poll stream (§5.2)


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str  # OpenAPI form: /promises/{id}
    operation: str  # the `type` label of api_* metrics, and the operationId
    summary: str
    handler: Handler
    params: tuple[Param, ...] = ()
    body: Schema | None = None
    # status -> a schema name of the OpenAPI components, or EMPTY, ANY_JSON, EVENT_STREAM
    responses: dict[int, str] = field(default_factory=dict)
    errors: tuple[int, ...] = ()
    catch_all: tuple[str, ...] = ()  # path parameters that take the rest of the path
    authenticated: bool = True

    @property
    def aiohttp_path(self) -> str:
        path = self.path
        for name in self.catch_all:
            path = path.replace("{" + name + "}", "{" + name + ":.*}")
        return path


STRING = {"type": "string"}
# Header values the server reads are held to the id limit (§1.3): longer ones get 400.
HEADER_STRING = {"type": "string", "maxLength": MAX_HEADER_BYTES}
ID_PARAM = Param(
    "id",
    "path",
    {"type": "string"},
    True,
    "Promise id, percent-encoded as one segment ('/' as %2F)",
)
IDEMPOTENCY = Param("idempotency-key", "header", HEADER_STRING)
STRICT = Param(
    "strict",
    "header",
    {"type": "string", "enum": ["true", "false", "1", "0", "t", "f"]},
    description="Boolean, case-insensitive",
)
REQUEST_ID = Param("request-id", "header", HEADER_STRING)
TASK_ID = Param("task-id", "header", HEADER_STRING, description="Fencing token: task id")
TASK_COUNTER = Param(
    "task-counter",
    "header",
    {"type": "string", "pattern": "^-?[0-9]+$"},
    description="Fencing token: task counter",
)
TAG_FILTERS = Param(
    "tags",
    "query",
    {"type": "object", "additionalProperties": STRING},
    description="Exact tag filters as tags[<key>]=<value>",
)
PAGE_PARAMS = (
    Param("limit", "query", {"type": "integer", "minimum": 0, "maximum": 100}),
    Param("cursor", "query", STRING),
)
TRACE = (
    Param("traceparent", "header", HEADER_STRING),
    Param("tracestate", "header", HEADER_STRING),
)


# ---- handlers: promises ---------------------------------------------------------------------


def _authorized_fence(request: web.Request) -> Fence | None:
    """The fencing token of the Task-Id/Task-Counter headers; its task id is held to the
    task-id rule like any other id the request names (§9.2)."""
    fencing = fence(request)
    if fencing is not None:
        authorize_task_id(principal_of(request), fencing.task_id)
    return fencing


def _promise_response(outcome: promises.Outcome) -> web.Response:
    return json_response(201 if outcome.created else 200, outcome.promise.to_json())


async def read_promise(ctx: Context, request: web.Request) -> web.Response:
    promise_id = path_id(request)
    authorize_id(principal_of(request), "promise id", promise_id)
    promise = await promises.run_read_promise(ctx.store, ctx.clock, promise_id)
    return json_response(200, promise.to_json())


async def search_promises(ctx: Context, request: web.Request) -> web.Response:
    params = request.query
    cursor = params.get("cursor")
    if cursor is not None:
        query = promise_query_from_cursor(cursor)
    else:
        pattern = params.get("id", "")
        if not pattern:
            raise invalid("id", "The field id is required.")
        query = PromiseQuery(
            id=pattern,
            state=parse_search_state(params.get("state")),
            tags=parse_tag_filters(list(params.items())),
            limit=parse_limit(params.get("limit")),
        )
    authorize_pattern(principal_of(request), "promise id pattern", query.id)
    page = await promises.run_search_promises(
        ctx.store, ctx.clock, query, timeout_batch=ctx.promise_batch_size
    )
    return json_response(
        200, {"cursor": page.cursor, "promises": [p.to_json() for p in page.promises]}
    )


async def create_promise(ctx: Context, request: web.Request) -> web.Response:
    strict = strict_header(request)
    fencing = _authorized_fence(request)
    body = validate(CREATE_PROMISE, await read_json_object(request))
    authorize_id(principal_of(request), "promise id", body["id"])
    command = promises.CreatePromise(
        id=body["id"],
        timeout=body["timeout"] or 0,
        param=body["param"],
        tags=body["tags"],
        idempotency_key=idempotency_key(request),
        strict=strict,
        fence=fencing,
        head=trace_headers(request),
    )
    outcome = await promises.run_create_promise(ctx.store, ctx.clock, command, ctx.router)
    return _promise_response(outcome)


async def create_promise_and_task(ctx: Context, request: web.Request) -> web.Response:
    strict = strict_header(request)
    body = validate(CREATE_PROMISE_AND_TASK, await read_json_object(request))
    promise, task = body["promise"], body["task"]
    authorize_id(principal_of(request), "promise id", promise["id"])
    command = promises.CreatePromise(
        id=promise["id"],
        timeout=promise["timeout"] or 0,
        param=promise["param"],
        tags=promise["tags"],
        idempotency_key=idempotency_key(request),
        strict=strict,
        head=trace_headers(request),
    )
    claim = tasks.TaskClaim(task["processId"], task["ttl"] or 0)
    outcome = await promises.run_create_promise(ctx.store, ctx.clock, command, ctx.router, claim)
    return json_response(
        201 if outcome.created else 200,
        {
            "promise": outcome.promise.to_json(),
            "task": outcome.task.to_json() if outcome.task is not None else None,
        },
    )


async def complete_promise(ctx: Context, request: web.Request) -> web.Response:
    promise_id = path_id(request)
    strict = strict_header(request)
    fencing = _authorized_fence(request)
    authorize_id(principal_of(request), "promise id", promise_id)
    body = validate(COMPLETE_PROMISE, await read_json_object(request))
    command = promises.CompletePromise(
        id=promise_id,
        state=PromiseState[body["state"]],
        value=body["value"],
        idempotency_key=idempotency_key(request),
        strict=strict,
        fence=fencing,
    )
    if not promise_id:
        raise ResonateError(Code.PROMISE_NOT_FOUND)
    outcome = await promises.run_complete_promise(ctx.store, ctx.clock, command)
    return _promise_response(outcome)


# ---- handlers: callbacks and subscriptions ---------------------------------------------------


def _registration_response(registration: callbacks.Registration) -> web.Response:
    callback = registration.callback
    return json_response(
        201 if registration.created else 200,
        {
            "callback": callback.to_json() if callback is not None else None,
            "promise": registration.promise.to_json(),
        },
    )


async def _create_callback(ctx: Context, request: web.Request, by_body: bool) -> web.Response:
    fencing = _authorized_fence(request)
    schema = CREATE_CALLBACK_BY_BODY if by_body else CREATE_CALLBACK
    body = validate(schema, await read_json_object(request))
    promise_id = body["promiseId"] if by_body else path_id(request)
    registration = await register_callback(
        ctx, principal_of(request), promise_id, body, trace_headers(request), fencing
    )
    return _registration_response(registration)


async def register_callback(
    ctx: Context,
    principal: Principal,
    promise_id: str,
    body: dict[str, Any],
    head: dict[str, str] | None,
    fence: promises.Fence | None,
) -> callbacks.Registration:
    """A validated callback registration (HTTP and gRPC alike): authorised for both ids, the
    root distinct from the promise, then the operation."""
    authorize_ids(principal, {"promise id": promise_id, "root promise id": body["rootPromiseId"]})
    if promise_id == body["rootPromiseId"]:
        raise invalid("rootPromiseId", "The field rootPromiseId must differ from the promise id.")
    return await ctx.store.run(
        partial(
            callbacks.create_callback,
            clock=ctx.clock,
            promise_id=promise_id,
            root_promise_id=body["rootPromiseId"],
            recv=body["recv"],
            timeout=body["timeout"] or 0,
            head=head,
            fence=fence,
        )
    )


async def _create_subscription(ctx: Context, request: web.Request, by_body: bool) -> web.Response:
    schema = CREATE_SUBSCRIPTION_BY_BODY if by_body else CREATE_SUBSCRIPTION
    body = validate(schema, await read_json_object(request))
    promise_id = body["promiseId"] if by_body else path_id(request)
    authorize_id(principal_of(request), "promise id", promise_id)
    registration = await ctx.store.run(
        partial(
            callbacks.create_subscription,
            clock=ctx.clock,
            promise_id=promise_id,
            subscription_id=body["id"],
            recv=body["recv"],
            timeout=body["timeout"] or 0,
            head=trace_headers(request),
        )
    )
    return _registration_response(registration)


async def create_callback(ctx: Context, request: web.Request) -> web.Response:
    return await _create_callback(ctx, request, by_body=False)


async def create_callback_by_body(ctx: Context, request: web.Request) -> web.Response:
    return await _create_callback(ctx, request, by_body=True)


async def create_subscription(ctx: Context, request: web.Request) -> web.Response:
    return await _create_subscription(ctx, request, by_body=False)


async def create_subscription_by_body(ctx: Context, request: web.Request) -> web.Response:
    return await _create_subscription(ctx, request, by_body=True)


async def list_callbacks(ctx: Context, request: web.Request) -> web.Response:
    params = request.query
    cursor = params.get("cursor")
    if cursor is not None:
        query = callback_query_from_cursor(cursor)
    else:
        promise_id = params.get("promiseId", "")
        if not promise_id:
            raise invalid("promiseId", "The field promiseId is required.")
        query = CallbackQuery(promise_id, limit=parse_limit(params.get("limit")))
    authorize_id(principal_of(request), "promise id", query.promise_id)
    page = await ctx.store.read(partial(callbacks.list_callbacks, query=query))
    return json_response(
        200,
        {"cursor": page.cursor, "callbacks": [c.to_extended_json() for c in page.callbacks]},
    )


# ---- handlers: tasks ------------------------------------------------------------------------


def require_counter(value: int) -> int:
    """A task counter from a body (HTTP and gRPC alike): 0 means it was left out."""
    if value == 0:
        raise invalid("counter", "The field counter is required.")
    return value


def _link_ref(request: web.Request) -> tuple[str, int]:
    """The task id and counter of a GET link: `/tasks/<verb>/<id…>/<counter>`."""
    task_id, _, raw = path_id(request, "ref", max_bytes=None).rpartition("/")
    if not task_id:
        raise invalid("id", "The field id is required.")
    digits = raw[1:] if raw.startswith("-") else raw
    if not digits.isascii() or not digits.isdigit() or len(digits) > 19:
        raise invalid("counter", "The field counter must be an integer.")
    return task_id, require_counter(int(raw))


async def _claim(ctx: Context, command: tasks.ClaimTask) -> web.Response:
    body = await ctx.store.run(
        partial(tasks.claim_task, clock=ctx.clock, request=command, base_url=ctx.base_url)
    )
    return json_response(201, body)


async def claim_task(ctx: Context, request: web.Request) -> web.Response:
    body = validate(CLAIM_TASK, await read_json_object(request))
    authorize_task_id(principal_of(request), body["id"])
    return await _claim(
        ctx,
        tasks.ClaimTask(
            body["id"], require_counter(body["counter"]), body["processId"], body["ttl"] or 0
        ),
    )


async def claim_task_link(ctx: Context, request: web.Request) -> web.Response:
    task_id, counter = _link_ref(request)
    authorize_task_id(principal_of(request), task_id)
    return await _claim(
        ctx, tasks.ClaimTask(task_id, counter, f"{task_id}/{counter}", ctx.task_frequency)
    )


async def _complete(ctx: Context, task_id: str, counter: int) -> web.Response:
    outcome = await ctx.store.run(
        partial(tasks.complete_task, clock=ctx.clock, task_id=task_id, counter=counter)
    )
    return json_response(201 if outcome.created else 200, outcome.task.to_json())


async def complete_task(ctx: Context, request: web.Request) -> web.Response:
    body = validate(TASK_REF, await read_json_object(request))
    authorize_task_id(principal_of(request), body["id"])
    return await _complete(ctx, body["id"], require_counter(body["counter"]))


async def complete_task_link(ctx: Context, request: web.Request) -> web.Response:
    task_id, counter = _link_ref(request)
    authorize_task_id(principal_of(request), task_id)
    return await _complete(ctx, task_id, counter)


async def _drop(ctx: Context, task_id: str, counter: int) -> web.Response:
    dropped = await ctx.store.run(
        partial(tasks.drop_task, clock=ctx.clock, task_id=task_id, counter=counter)
    )
    return web.Response(status=201 if dropped else 200)


async def drop_task(ctx: Context, request: web.Request) -> web.Response:
    body = validate(TASK_REF, await read_json_object(request))
    authorize_task_id(principal_of(request), body["id"])
    return await _drop(ctx, body["id"], require_counter(body["counter"]))


async def drop_task_link(ctx: Context, request: web.Request) -> web.Response:
    task_id, counter = _link_ref(request)
    authorize_task_id(principal_of(request), task_id)
    return await _drop(ctx, task_id, counter)


async def _heartbeat(ctx: Context, process_id: str) -> web.Response:
    affected = await ctx.store.run(
        partial(tasks.heartbeat_tasks, clock=ctx.clock, process_id=process_id)
    )
    return json_response(200, {"tasksAffected": affected})


async def heartbeat_tasks(ctx: Context, request: web.Request) -> web.Response:
    body = validate(HEARTBEAT_TASKS, await read_json_object(request))
    return await _heartbeat(ctx, body["processId"])


async def heartbeat_task_link(ctx: Context, request: web.Request) -> web.Response:
    task_id, counter = _link_ref(request)
    return await _heartbeat(ctx, f"{task_id}/{counter}")


async def read_task(ctx: Context, request: web.Request) -> web.Response:
    task_id = path_id(request, max_bytes=None)
    authorize_task_id(principal_of(request), task_id)
    task = await ctx.store.read(partial(tasks.read_task, task_id=task_id))
    return json_response(200, task.to_extended_json())


async def search_tasks(ctx: Context, request: web.Request) -> web.Response:
    params = request.query
    cursor = params.get("cursor")
    if cursor is not None:
        query = task_query_from_cursor(cursor)
    else:
        query = TaskQuery(
            id=params.get("id") or "*",
            state=parse_task_state(params.get("state")),
            process_id=params.get("processId") or None,
            root_promise_id=params.get("rootPromiseId") or None,
            limit=parse_limit(params.get("limit")),
        )
    authorize_task_search(principal_of(request), query)
    page = await ctx.store.read(partial(tasks.search_tasks, query=query))
    return json_response(
        200, {"cursor": page.cursor, "tasks": [t.to_extended_json() for t in page.tasks]}
    )


def authorize_task_search(principal: Principal, query: TaskQuery) -> None:
    """A restricted principal needs an ``id`` pattern within the task-id rule or a
    ``rootPromiseId`` within its prefix (the filters are ANDed: either one bounds the page).
    HTTP's GET /tasks and gRPC's task search alike."""
    root = query.root_promise_id
    if root is not None and principal.allows(root):
        return
    if task_id_allowed(principal, query.id.partition("*")[0]):
        return
    if root is not None:
        authorize_id(principal, "root promise id", root)
    authorize_task_id(principal, query.id)


# ---- locks (http-api.md §8): request bodies and handlers -------------------------------------

_LOCK_REF = (
    Field("resourceId", Kind.ID, required=True, description="The locked resource"),
    Field("executionId", Kind.ID, required=True, description="The holder"),
)
ACQUIRE_LOCK = Schema(
    "AcquireLockRequest",
    (
        *_LOCK_REF,
        Field("processId", Kind.ID, required=True, description="The holder's process"),
        Field("ttl", Kind.INT64, minimum=0, description="Lease in ms; absent means 0"),
    ),
)
RELEASE_LOCK = Schema("ReleaseLockRequest", _LOCK_REF)
HEARTBEAT_LOCKS = Schema("HeartbeatLocksRequest", (Field("processId", Kind.ID, required=True),))


async def acquire_lock(ctx: Context, request: web.Request) -> web.Response:
    body = validate(ACQUIRE_LOCK, await read_json_object(request))
    authorize_id(principal_of(request), "resource id", body["resourceId"])
    command = locks.AcquireLock(
        body["resourceId"], body["executionId"], body["processId"], body["ttl"] or 0
    )
    lock = await ctx.store.run(partial(locks.acquire_lock, clock=ctx.clock, request=command))
    return json_response(201, lock.to_json())


async def release_lock(ctx: Context, request: web.Request) -> web.Response:
    body = validate(RELEASE_LOCK, await read_json_object(request))
    authorize_id(principal_of(request), "resource id", body["resourceId"])
    await ctx.store.run(
        partial(
            locks.release_lock, resource_id=body["resourceId"], execution_id=body["executionId"]
        )
    )
    return web.Response(status=204)


async def heartbeat_locks(ctx: Context, request: web.Request) -> web.Response:
    body = validate(HEARTBEAT_LOCKS, await read_json_object(request))
    affected = await ctx.store.run(
        partial(locks.heartbeat_locks, clock=ctx.clock, process_id=body["processId"])
    )
    return json_response(200, {"locksAffected": affected})


async def read_lock(ctx: Context, request: web.Request) -> web.Response:
    resource_id = path_id(request, "resourceId")
    authorize_id(principal_of(request), "resource id", resource_id)
    lock = await ctx.store.read(partial(locks.read_lock, resource_id=resource_id))
    return json_response(200, lock.to_json())


async def search_locks(ctx: Context, request: web.Request) -> web.Response:
    params = request.query
    cursor = params.get("cursor")
    if cursor is not None:
        query = lock_query_from_cursor(cursor)
    else:
        query = LockQuery(
            resource_id=params.get("resourceId") or "*",
            process_id=params.get("processId") or None,
            execution_id=params.get("executionId") or None,
            limit=parse_limit(params.get("limit")),
        )
    authorize_pattern(principal_of(request), "resource id pattern", query.resource_id)
    page = await ctx.store.read(partial(locks.search_locks, query=query))
    return json_response(
        200, {"cursor": page.cursor, "locks": [lock.to_json() for lock in page.locks]}
    )


# ---- handlers: the operator dashboard (GET /stats, GET /stuck) ----------------------------------


async def read_stats(ctx: Context, request: web.Request) -> web.Response:
    authorize_everything(principal_of(request), "reading the counts of every prefix")
    snapshot = await ctx.counts_cache.get(ctx.store, ctx.clock)
    counts = snapshot.counts
    return json_response(
        200,
        {
            "version": __version__,
            "store": ctx.store.kind,
            "startedAt": ctx.started_at,
            "time": ctx.clock.now_ms(),
            "countedAt": snapshot.counted_at,
            "promises": {state.name: counts.promises.get(state, 0) for state in PromiseState},
            "tasks": {state.name: counts.tasks.get(state, 0) for state in TaskState},
            "tasks2026": {s.value: counts.tasks_2026.get(s.value, 0) for s in Task2026State},
            "schedules": counts.schedules,
            "locks": counts.locks,
        },
    )


async def read_stuck(ctx: Context, request: web.Request) -> web.Response:
    authorize_everything(principal_of(request), "listing stuck items of every prefix")
    params = request.query
    query = dashboard.StuckQuery(
        lease_within=parse_int_param(
            "leaseWithin", params.get("leaseWithin"), dashboard.DEFAULT_LEASE_WITHIN_MS
        ),
        min_counter=parse_int_param(
            "minCounter", params.get("minCounter"), dashboard.DEFAULT_MIN_COUNTER
        ),
        limit=parse_int_param(
            "limit",
            params.get("limit"),
            dashboard.DEFAULT_STUCK_LIMIT,
            minimum=1,
            maximum=dashboard.MAX_STUCK_LIMIT,
        ),
    )
    stuck = await ctx.store.read(partial(dashboard.find_stuck, clock=ctx.clock, query=query))
    return json_response(
        200,
        {
            "time": stuck.time,
            "promises": [promise.to_json() for promise in stuck.promises],
            "tasks": [
                {**entry.task.to_extended_json(), "reason": entry.reason} for entry in stuck.tasks
            ],
            "schedules": [schedule.to_json() for schedule in stuck.schedules],
            "locks": [lock.to_json() for lock in stuck.locks],
        },
    )


async def read_doctor(ctx: Context, request: web.Request) -> web.Response:
    authorize_everything(principal_of(request), "diagnosing items of every prefix")
    params = request.query

    def param(name: str, default: int, minimum: int = 0, maximum: int = INT64_MAX) -> int:
        return parse_int_param(name, params.get(name), default, minimum, maximum)

    query = doctor.DoctorQuery(
        limit=param("limit", doctor.DEFAULT_LIMIT, 1, doctor.MAX_LIMIT),
        overdue_after=param("overdueAfter", doctor.DEFAULT_OVERDUE_AFTER_MS),
        lease_within=param("leaseWithin", doctor.DEFAULT_LEASE_WITHIN_MS),
        min_counter=param("minCounter", doctor.DEFAULT_MIN_COUNTER),
        loop_stalled_after=param("loopStalledAfter", doctor.DEFAULT_LOOP_STALLED_AFTER_MS),
        slow_batch_ms=param("slowBatchMs", doctor.DEFAULT_SLOW_BATCH_MS),
        min_disk_free=param("minDiskFree", doctor.DEFAULT_MIN_DISK_FREE),
    )
    store = ctx.store
    schema = await cached_schema_status(ctx)  # an unreachable store fails the reads below
    path = getattr(store, "path", None) if store.kind == "sqlite" else None
    sqlite_path = path if isinstance(path, str) else None
    environment = doctor.Environment(
        store_kind=store.kind,
        started_at=ctx.started_at,
        loops=list(ctx.loops),
        rest_hub=ctx.poll,
        hub_2026=ctx.poll_2026,
        sender=ctx.sender,
        batch_p99_ms=ctx.metrics.recent_batch_p99_ms() if ctx.metrics is not None else None,
        recent_batches=len(ctx.metrics.recent_batch_seconds) if ctx.metrics is not None else 0,
        sqlite_path=sqlite_path,
        disk_free=doctor.disk_free(sqlite_path),
        schema=schema if isinstance(schema, SchemaStatus) else None,
    )
    report = await doctor.run_doctor(store, ctx.clock, environment, query)
    return json_response(200, report.to_json())


# ---- handlers: purge (POST /promises/purge) ---------------------------------------------------

PURGE_MAX_LIMIT = 10_000
PURGE_MAX_SAMPLE = 100
PURGE_DEFAULT_SAMPLE = 10
PURGE_PROMISES = Schema(
    "PurgePromisesRequest",
    (
        Field(
            "olderThan",
            Kind.INT64,
            minimum=0,
            description="Cutoff relative to the server's clock: promises completed at least "
            "this many ms ago. Exactly one of olderThan and before.",
        ),
        Field(
            "before",
            Kind.INT64,
            description="Absolute cutoff, ms since the epoch: promises completed at or before "
            "it (the `before` of an earlier answer, so that every batch uses one cutoff)",
        ),
        Field(
            "states",
            Kind.ENUM_LIST,
            choices=tuple(state.name.lower() for state in FINAL_STATES),
            description="Final states to purge; default all four",
        ),
        Field("id", Kind.ID, description="Promise id pattern, '*' matches any run; default '*'"),
        Field("tags", Kind.TAGS, description="Only promises holding every one of these tags"),
        Field(
            "limit",
            Kind.INT64,
            minimum=1,
            maximum=PURGE_MAX_LIMIT,
            description="Most promises deleted by this call (one transaction); default "
            "system.retention.batchSize",
        ),
        Field("dryRun", Kind.BOOL, description="Count instead of deleting; default false"),
        Field(
            "sample",
            Kind.INT64,
            minimum=0,
            maximum=PURGE_MAX_SAMPLE,
            description=f"Dry run: most ids listed; default {PURGE_DEFAULT_SAMPLE}",
        ),
    ),
)


async def purge_promises(ctx: Context, request: web.Request) -> web.Response:
    """One bounded batch of deletions (one transaction), or with dryRun the count of what
    batches would delete now: a purge of millions is many calls, none holding the writer for
    long, and stopping between two of them leaves nothing half done."""
    body = validate(PURGE_PROMISES, await read_json_object(request))
    pattern: str = body["id"] or "*"
    authorize_pattern(principal_of(request), "promise id pattern", pattern)
    older_than: int | None = body["olderThan"]
    before: int | None = body["before"]
    if (older_than is None) == (before is None):
        raise invalid("olderThan", "Exactly one of the fields olderThan and before is required.")
    if before is None:
        assert older_than is not None
        before = ctx.clock.now_ms() - older_than
    names: tuple[str, ...] = body["states"] or ()
    if body["states"] is not None and not names:
        raise invalid("states", "The field states must name at least one state.")
    states = tuple(PromiseState[name] for name in names) or FINAL_STATES
    query = PurgeQuery(dict.fromkeys(states, before), id=pattern, tags=body["tags"])
    if body["dryRun"]:
        sample = PURGE_DEFAULT_SAMPLE if body["sample"] is None else body["sample"]
        count, ids = await ctx.store.read(
            partial(retention.count_purgeable, query=query, sample=sample)
        )
        return json_response(200, {"before": before, "dryRun": True, "count": count, "sample": ids})
    limit = ctx.purge_batch_size if body["limit"] is None else body["limit"]
    started = time.perf_counter()
    purged = await ctx.store.run(partial(retention.purge_promises, query=query, limit=limit))
    retention.count_purged(ctx.metrics, purged, "promises", time.perf_counter() - started)
    return json_response(
        200,
        {
            "before": before,
            "promises": purged.promises,
            "tasks": purged.tasks,
            "more": purged.promises >= limit,
        },
    )


# ---- handlers: the poll stream on the API port ------------------------------------------------


async def poll(ctx: Context, request: web.Request) -> web.StreamResponse:
    """The 2026 protocol's worker stream (protocol-2026.md §6.2; P2: it replaced the REST
    alias here, REST workers use the poll listener)."""
    if ctx.poll_2026 is None:
        raise ResonateError(Code.ROUTE_NOT_FOUND, "the poll transport is disabled")
    # The stream's headers go out before the middleware sees the response.
    headers = {"Resonate-Version": __version__, "Request-Id": request_id(request)}
    return await ctx.poll_2026.handle(request, stream_path(request, "/poll/"), headers)


# ---- schedules (http-api.md §7): request bodies and handlers ----------------------------------

CREATE_SCHEDULE = Schema(
    "CreateScheduleRequest",
    (
        Field("id", Kind.ID, required=True, description="Schedule id"),
        Field("description", Kind.STRING, description="Free text (D2: `desc` is accepted too)"),
        Field("desc", Kind.STRING, description="Deprecated spelling of description"),
        Field(
            "cron",
            Kind.STRING,
            required=True,
            description="5 fields, 6 with leading seconds, @hourly-style descriptors, "
            "@every <duration>; optional CRON_TZ=<zone> or TZ=<zone> prefix",
        ),
        Field("timezone", Kind.STRING, description="IANA zone of the cron (default UTC)"),
        Field("tags", Kind.TAGS),
        Field(
            "promiseId",
            Kind.ID,
            required=True,
            description="Template with {{.id}} and {{.timestamp}}",
        ),
        Field("promiseTimeout", Kind.INT64, minimum=0, description="Relative ms; absent 0"),
        Field("promiseParam", Kind.VALUE),
        Field("promiseTags", Kind.TAGS),
    ),
)


async def create_schedule(ctx: Context, request: web.Request) -> web.Response:
    body = validate(CREATE_SCHEDULE, await read_json_object(request))
    if not body["cron"].strip():
        raise invalid("cron", "The field cron must be a valid cron expression.")
    template = check_template(body["promiseId"], body["id"])
    authorize_ids(
        principal_of(request),
        {
            "schedule id": body["id"],
            "promise id template": template_fixed_prefix(template, body["id"]),
        },
    )
    command = schedules.CreateSchedule(
        id=body["id"],
        cron=body["cron"],
        promise_id=template,
        promise_timeout=body["promiseTimeout"] or 0,
        description=body["description"] if body["description"] is not None else body["desc"],
        timezone=body["timezone"] or None,
        tags=body["tags"],
        promise_param=body["promiseParam"],
        promise_tags=body["promiseTags"],
        idempotency_key=idempotency_key(request),
    )
    outcome = await ctx.store.run(
        partial(schedules.create_schedule, clock=ctx.clock, request=command)
    )
    return json_response(201 if outcome.created else 200, outcome.schedule.to_json())


async def read_schedule(ctx: Context, request: web.Request) -> web.Response:
    schedule_id = path_id(request)
    authorize_id(principal_of(request), "schedule id", schedule_id)
    schedule = await ctx.store.read(partial(schedules.read_schedule, schedule_id=schedule_id))
    return json_response(200, schedule.to_json())


async def delete_schedule(ctx: Context, request: web.Request) -> web.Response:
    schedule_id = path_id(request)
    authorize_id(principal_of(request), "schedule id", schedule_id)
    await ctx.store.run(partial(schedules.delete_schedule, schedule_id=schedule_id))
    return web.Response(status=204)


async def search_schedules(ctx: Context, request: web.Request) -> web.Response:
    params = request.query
    cursor = params.get("cursor")
    if cursor is not None:
        query = schedule_query_from_cursor(cursor)
    else:
        pattern = params.get("id", "")
        if not pattern:
            raise invalid("id", "The field id is required.")
        query = ScheduleQuery(
            id=pattern,
            tags=parse_tag_filters(list(params.items())),
            limit=parse_limit(params.get("limit")),
        )
    authorize_pattern(principal_of(request), "schedule id pattern", query.id)
    page = await ctx.store.read(partial(schedules.search_schedules, query=query))
    return json_response(
        200, {"cursor": page.cursor, "schedules": [s.to_json() for s in page.schedules]}
    )


# ---- end of schedules ----


# ---- handlers: health -----------------------------------------------------------------------

READY_CACHE_SECONDS = 1.0
READY_TIMEOUT_SECONDS = 2.0


async def ping(ctx: Context, request: web.Request) -> web.Response:
    return json_response(200, {"status": "ok"})


async def cached_schema_status(ctx: Context) -> SchemaStatus | Exception:
    """The store's schema status, or why it could not be read; shared by /readyz and /doctor
    for READY_CACHE_SECONDS."""
    now = time.monotonic()
    if ctx.ready_cache is None or now - ctx.ready_cache[0] > READY_CACHE_SECONDS:
        result: SchemaStatus | Exception
        try:
            result = await asyncio.wait_for(ctx.store.schema_status(), READY_TIMEOUT_SECONDS)
        except Exception as error:  # any failure means "not ready", named in the answer
            result = error
        ctx.ready_cache = (now, result)
    return ctx.ready_cache[1]


async def readyz(ctx: Context, request: web.Request) -> web.Response:
    if ctx.shutting_down:
        raise ResonateError(Code.SHUTTING_DOWN, "the server is shutting down")
    result = await cached_schema_status(ctx)
    if isinstance(result, Exception):
        raise ResonateError(Code.NOT_READY, f"store unreachable: {result or type(result).__name__}")
    if result.current != result.latest:
        raise ResonateError(
            Code.NOT_READY, f"schema version {result.current}, expected {result.latest}"
        )
    return json_response(
        200, {"status": "ok", "store": ctx.store.kind, "schemaVersion": result.current}
    )


async def openapi(ctx: Context, request: web.Request) -> web.Response:
    return json_response(200, ctx.openapi_document)


TASK_PARAM = Param(
    "id", "path", STRING, True, "Task id, percent-encoded as one segment ('/' as %2F)"
)
TASK_LINK_PARAM = Param(
    "ref",
    "path",
    STRING,
    True,
    "'<task id>/<counter>': the task id percent-encoded as one segment, then the counter",
)
TASK_ERRORS = (400, 401, 403, 404, 413, 500, 503)


def _task_routes(
    verb: str,
    operation: str,
    summary: str,
    handler: Handler,
    link_handler: Handler,
    body: Schema,
    responses: dict[int, str],
) -> tuple[Route, Route]:
    return (
        Route(
            "POST",
            f"/tasks/{verb}",
            operation,
            summary,
            handler,
            params=(REQUEST_ID,),
            body=body,
            responses=responses,
            errors=TASK_ERRORS,
        ),
        Route(
            "GET",
            f"/tasks/{verb}/{{ref}}",
            f"{operation}Link",
            f"{summary} (link form sent to workers)",
            link_handler,
            params=(TASK_LINK_PARAM, REQUEST_ID),
            responses=responses,
            errors=TASK_ERRORS,
            catch_all=("ref",),
        ),
    )


# Every status an envelope reply can carry (it is also its head.status).
ENVELOPE_STATUSES = (200, 300, 400, 401, 403, 404, 409, 422, 500, 501)
PROMISE_ERRORS = (400, 401, 403, 404, 405, 409, 412, 413, 500, 503)
REGISTRATION_ERRORS = (400, 401, 403, 404, 412, 413, 500, 503)

ROUTES: tuple[Route, ...] = (
    Route(
        "GET",
        "/ping",
        "Ping",
        "Compatibility health check",
        ping,
        responses={200: "Status"},
        errors=(503,),
        authenticated=False,
    ),
    Route(
        "GET",
        "/healthz",
        "Healthz",
        "Liveness: 200 while the process serves HTTP",
        ping,
        responses={200: "Status"},
        authenticated=False,
    ),
    Route(
        "GET",
        "/readyz",
        "Readyz",
        "Readiness: store answers and schema is current",
        readyz,
        responses={200: "Ready"},
        errors=(503,),
        authenticated=False,
    ),
    # protocol-2026.md P1: the probes under the names the 2026 SDKs and tooling use.
    Route(
        "GET",
        "/health",
        "Health",
        "Liveness, alias of /healthz (2026-04-01 protocol)",
        ping,
        responses={200: "Status"},
        authenticated=False,
    ),
    Route(
        "GET",
        "/ready",
        "Ready",
        "Readiness, alias of /readyz (2026-04-01 protocol)",
        readyz,
        responses={200: "Ready"},
        errors=(503,),
        authenticated=False,
    ),
    # The 2026-04-01 protocol: one endpoint, the envelope of protocol-2026.md §2. Its answers,
    # errors included, are envelopes whose head.status is the HTTP status; it checks Basic
    # credentials itself, so that a 401 is an envelope too. Only a body over the size limit
    # (413) and draining (503) get the REST error body, answered before it runs.
    Route(
        "POST",
        "/",
        "Envelope",
        "2026-04-01 protocol: one request envelope {kind, head, data}; the reply's HTTP "
        "status is its head.status (200, 400, 401, 404, 500, 501)",
        handle_envelope,
        responses={status: "EnvelopeReply" for status in ENVELOPE_STATUSES},
        errors=(408, 413, 503),
        authenticated=False,
    ),
    Route(
        "GET",
        "/openapi.json",
        "OpenApi",
        "This OpenAPI document",
        openapi,
        responses={200: ANY_JSON},
        errors=(503,),
        authenticated=False,
    ),
    Route(
        "GET",
        "/promises",
        "SearchPromises",
        "Search promises",
        search_promises,
        params=(
            Param(
                "id",
                "query",
                {"type": "string", "minLength": 1},
                description="Pattern; '*' matches any run of characters. Required "
                "unless cursor is given.",
            ),
            Param(
                "state",
                "query",
                {
                    "type": "string",
                    "enum": ["pending", "resolved", "rejected", "PENDING", "RESOLVED", "REJECTED"],
                },
            ),
            TAG_FILTERS,
            *PAGE_PARAMS,
            REQUEST_ID,
        ),
        responses={200: "PromisePage"},
        errors=(400, 401, 403, 500, 503),
    ),
    Route(
        "POST",
        "/promises",
        "CreatePromise",
        "Create a promise",
        create_promise,
        params=(REQUEST_ID, IDEMPOTENCY, STRICT, TASK_ID, TASK_COUNTER, *TRACE),
        body=CREATE_PROMISE,
        responses={201: "Promise", 200: "Promise"},
        errors=(400, 401, 403, 409, 412, 413, 500, 503),
    ),
    # Registration routes come before the /promises/{id} catch-all: a POST here registers,
    # while GET or PATCH on the same path still reads or completes the promise `callback/…`.
    Route(
        "POST",
        "/promises/callback/{id}",
        "CreateCallback",
        "Register a resume callback on a promise",
        create_callback,
        params=(ID_PARAM, REQUEST_ID, TASK_ID, TASK_COUNTER, *TRACE),
        body=CREATE_CALLBACK,
        responses={201: "Registration", 200: "Registration"},
        errors=REGISTRATION_ERRORS,
        catch_all=("id",),
    ),
    Route(
        "POST",
        "/promises/subscribe/{id}",
        "CreateSubscription",
        "Subscribe to a promise's completion",
        create_subscription,
        params=(ID_PARAM, REQUEST_ID, *TRACE),
        body=CREATE_SUBSCRIPTION,
        responses={201: "Registration", 200: "Registration"},
        errors=REGISTRATION_ERRORS,
        catch_all=("id",),
    ),
    Route(
        "POST",
        "/callbacks",
        "CreateCallbackByBody",
        "Register a resume callback (deprecated form: promise id in the body)",
        create_callback_by_body,
        params=(REQUEST_ID, TASK_ID, TASK_COUNTER, *TRACE),
        body=CREATE_CALLBACK_BY_BODY,
        responses={201: "Registration", 200: "Registration"},
        errors=REGISTRATION_ERRORS,
    ),
    Route(
        "GET",
        "/callbacks",
        "ListCallbacks",
        "Callbacks and subscriptions still waiting on a promise, oldest first (operator extension)",
        list_callbacks,
        params=(
            Param(
                "promiseId",
                "query",
                {"type": "string", "minLength": 1},
                description="The promise, exactly. Required unless cursor is given.",
            ),
            *PAGE_PARAMS,
            REQUEST_ID,
        ),
        responses={200: "CallbackPage"},
        errors=(400, 401, 403, 500, 503),
    ),
    Route(
        "POST",
        "/subscriptions",
        "CreateSubscriptionByBody",
        "Subscribe to a promise (deprecated form: promise id in the body)",
        create_subscription_by_body,
        params=(REQUEST_ID, *TRACE),
        body=CREATE_SUBSCRIPTION_BY_BODY,
        responses={201: "Registration", 200: "Registration"},
        errors=REGISTRATION_ERRORS,
    ),
    Route(
        "POST",
        "/promises/task",
        "CreatePromiseAndTask",
        "Create a promise with its invoke task already claimed by the caller",
        create_promise_and_task,
        params=(REQUEST_ID, IDEMPOTENCY, STRICT, *TRACE),
        body=CREATE_PROMISE_AND_TASK,
        responses={201: "PromiseAndTask", 200: "PromiseAndTask"},
        errors=(400, 401, 403, 409, 413, 500, 503),
    ),
    Route(
        "GET",
        "/promises/{id}",
        "ReadPromise",
        "Read a promise",
        read_promise,
        params=(ID_PARAM, REQUEST_ID),
        responses={200: "Promise"},
        errors=(400, 401, 403, 404, 500, 503),
        catch_all=("id",),
    ),
    Route(
        "PATCH",
        "/promises/{id}",
        "CompletePromise",
        "Resolve, reject or cancel a promise",
        complete_promise,
        params=(ID_PARAM, REQUEST_ID, IDEMPOTENCY, STRICT, TASK_ID, TASK_COUNTER),
        body=COMPLETE_PROMISE,
        responses={201: "Promise", 200: "Promise"},
        errors=PROMISE_ERRORS,
        catch_all=("id",),
    ),
    *_task_routes(
        "claim",
        "ClaimTask",
        "Claim a task",
        claim_task,
        claim_task_link,
        CLAIM_TASK,
        {201: "ClaimedTask"},
    ),
    *_task_routes(
        "complete",
        "CompleteTask",
        "Complete a claimed task",
        complete_task,
        complete_task_link,
        TASK_REF,
        {201: "Task", 200: "Task"},
    ),
    *_task_routes(
        "drop",
        "DropTask",
        "Give a claimed task back (re-issued with the next counter)",
        drop_task,
        drop_task_link,
        TASK_REF,
        {201: EMPTY, 200: EMPTY},
    ),
    *_task_routes(
        "heartbeat",
        "HeartbeatTasks",
        "Extend the lease of every task a process holds",
        heartbeat_tasks,
        heartbeat_task_link,
        HEARTBEAT_TASKS,
        {200: "TasksAffected"},
    ),
    Route(
        "GET",
        "/tasks",
        "SearchTasks",
        "Search tasks (operator extension)",
        search_tasks,
        params=(
            Param("id", "query", STRING, description="Pattern; '*' matches any run; default '*'"),
            Param(
                "state",
                "query",
                {
                    "type": "string",
                    "enum": ["init", "enqueued", "claimed", "completed", "timedout"],
                },
                description="Case-insensitive",
            ),
            Param("processId", "query", STRING),
            Param("rootPromiseId", "query", STRING),
            *PAGE_PARAMS,
            REQUEST_ID,
        ),
        responses={200: "TaskPage"},
        errors=(400, 401, 403, 500, 503),
    ),
    Route(
        "GET",
        "/tasks/{id}",
        "ReadTask",
        "Read a task (operator extension)",
        read_task,
        params=(TASK_PARAM, REQUEST_ID),
        responses={200: "ExtendedTask"},
        errors=(400, 401, 403, 404, 500, 503),
        catch_all=("id",),
    ),
    # ---- locks (§8) ----
    # The POST routes come before the GET /locks/{resourceId} catch-all, so `GET /locks/acquire`
    # still reads the lock on resource `acquire`.
    Route(
        "POST",
        "/locks/acquire",
        "AcquireLock",
        "Acquire or renew a lock; an expired lock of another execution is taken over",
        acquire_lock,
        params=(REQUEST_ID,),
        body=ACQUIRE_LOCK,
        responses={201: "Lock"},
        errors=(400, 401, 403, 413, 500, 503),
    ),
    Route(
        "POST",
        "/locks/release",
        "ReleaseLock",
        "Release a lock held by this execution",
        release_lock,
        params=(REQUEST_ID,),
        body=RELEASE_LOCK,
        responses={204: EMPTY},
        errors=(400, 401, 403, 404, 413, 500, 503),
    ),
    Route(
        "POST",
        "/locks/heartbeat",
        "HeartbeatLocks",
        "Extend every lock a process holds",
        heartbeat_locks,
        params=(REQUEST_ID,),
        body=HEARTBEAT_LOCKS,
        responses={200: "LocksAffected"},
        errors=(400, 401, 403, 413, 500, 503),
    ),
    Route(
        "GET",
        "/locks",
        "SearchLocks",
        "Search locks by resource id (operator extension)",
        search_locks,
        params=(
            Param(
                "resourceId",
                "query",
                STRING,
                description="Pattern; '*' matches any run; default '*'",
            ),
            Param("processId", "query", STRING),
            Param("executionId", "query", STRING),
            *PAGE_PARAMS,
            REQUEST_ID,
        ),
        responses={200: "LockPage"},
        errors=(400, 401, 403, 500, 503),
    ),
    Route(
        "GET",
        "/locks/{resourceId}",
        "ReadLock",
        "Read a lock, also one past its expiry not yet swept (operator extension)",
        read_lock,
        params=(
            Param(
                "resourceId",
                "path",
                STRING,
                True,
                "Resource id, percent-encoded as one segment ('/' as %2F)",
            ),
            REQUEST_ID,
        ),
        responses={200: "Lock"},
        errors=(400, 401, 403, 404, 500, 503),
        catch_all=("resourceId",),
    ),
    # ---- end of locks ----
    # ---- schedules ----
    Route(
        "POST",
        "/schedules",
        "CreateSchedule",
        "Create a schedule",
        create_schedule,
        params=(REQUEST_ID, IDEMPOTENCY),
        body=CREATE_SCHEDULE,
        responses={201: "Schedule", 200: "Schedule"},
        errors=(400, 401, 403, 409, 413, 500, 503),
    ),
    Route(
        "GET",
        "/schedules",
        "SearchSchedules",
        "Search schedules (full objects, D3)",
        search_schedules,
        params=(
            Param(
                "id",
                "query",
                {"type": "string", "minLength": 1},
                description="Pattern; '*' matches any run. Required unless cursor is given.",
            ),
            TAG_FILTERS,
            *PAGE_PARAMS,
            REQUEST_ID,
        ),
        responses={200: "SchedulePage"},
        errors=(400, 401, 403, 500, 503),
    ),
    Route(
        "GET",
        "/schedules/{id}",
        "ReadSchedule",
        "Read a schedule",
        read_schedule,
        params=(ID_PARAM, REQUEST_ID),
        responses={200: "Schedule"},
        errors=(400, 401, 403, 404, 500, 503),
        catch_all=("id",),
    ),
    Route(
        "DELETE",
        "/schedules/{id}",
        "DeleteSchedule",
        "Delete a schedule (promises it created stay)",
        delete_schedule,
        params=(ID_PARAM, REQUEST_ID),
        responses={204: EMPTY},
        errors=(400, 401, 403, 404, 500, 503),
        catch_all=("id",),
    ),
    # ---- end of schedules ----
    # ---- operator dashboard ----
    Route(
        "GET",
        "/stats",
        "ReadStats",
        "Counts by state, for dashboards; shared by all callers for at least 1 s "
        "(operator extension)",
        read_stats,
        params=(REQUEST_ID,),
        responses={200: "Stats"},
        errors=(400, 401, 403, 500, 503),
    ),
    Route(
        "GET",
        "/stuck",
        "ReadStuck",
        "Promises, tasks, schedules and locks that look stuck, for dashboards (operator extension)",
        read_stuck,
        params=(
            Param(
                "leaseWithin",
                "query",
                {"type": "integer", "format": "int64", "minimum": 0, "default": 10_000},
                description="A CLAIMED task whose lease ends within this many ms is stuck",
            ),
            Param(
                "minCounter",
                "query",
                {"type": "integer", "format": "int64", "minimum": 0, "default": 3},
                description="An active task whose counter (times issued) is at least this is stuck",
            ),
            Param(
                "limit",
                "query",
                {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
                description="Most items in each list",
            ),
            REQUEST_ID,
        ),
        responses={200: "Stuck"},
        errors=(400, 401, 403, 500, 503),
    ),
    Route(
        "GET",
        "/doctor",
        "ReadDoctor",
        "Findings about stuck work, loops, poll groups and the store, each with a severity and "
        "a suggested action (operator extension)",
        read_doctor,
        params=(
            Param(
                "limit",
                "query",
                {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
                description="Most findings of each check",
            ),
            Param(
                "overdueAfter",
                "query",
                {"type": "integer", "format": "int64", "minimum": 0, "default": 10_000},
                description="A PENDING promise this many ms past its timeout, or a schedule "
                "this many ms (and more than one interval) past its next run, is reported",
            ),
            Param(
                "leaseWithin",
                "query",
                {"type": "integer", "format": "int64", "minimum": 0, "default": 10_000},
                description="A CLAIMED (REST) or acquired (2026) task whose lease ends within "
                "this many ms, with less than a quarter of its ttl left, is reported",
            ),
            Param(
                "minCounter",
                "query",
                {"type": "integer", "format": "int64", "minimum": 0, "default": 5},
                description="An active task issued at least this many times is reported",
            ),
            Param(
                "loopStalledAfter",
                "query",
                {"type": "integer", "format": "int64", "minimum": 0, "default": 60_000},
                description="A background loop without a successful pass for this many ms "
                "(at least twice its idle tick) is stalled",
            ),
            Param(
                "slowBatchMs",
                "query",
                {"type": "integer", "format": "int64", "minimum": 0, "default": 100},
                description="Store transactions slower than this at the 99th percentile "
                "(last 1000) are reported",
            ),
            Param(
                "minDiskFree",
                "query",
                {"type": "integer", "format": "int64", "minimum": 0, "default": 1 << 30},
                description="Fewer free bytes than this on the SQLite file's file system are "
                "reported",
            ),
            REQUEST_ID,
        ),
        responses={200: "Doctor"},
        errors=(400, 401, 403, 500, 503),
    ),
    # ---- end of operator dashboard ----
    # ---- purge ----
    Route(
        "POST",
        "/promises/purge",
        "PurgePromises",
        "Delete one batch of completed promises (with their tasks) that nothing refers to any "
        "more, or count them (dryRun) (operator extension)",
        purge_promises,
        params=(REQUEST_ID,),
        body=PURGE_PROMISES,
        responses={200: "PurgeResult"},
        errors=(400, 401, 403, 413, 500, 503),
    ),
    # ---- end of purge ----
    Route(
        "GET",
        "/poll/{path}",
        "Poll",
        "2026-protocol worker message stream (Server-Sent Events): /poll/<group>/<id>",
        poll,
        params=(Param("path", "path", STRING, True, "'<group>/<id>'; the id may contain '/'"),),
        responses={200: EVENT_STREAM},
        errors=(400, 401, 403, 404, 503),
        catch_all=("path",),
    ),
)
