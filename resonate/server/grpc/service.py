"""The gRPC API's methods: each checks its request with the HTTP API's schemas, authorises the
ids it names with the HTTP API's rules, and calls the operation the HTTP route calls, so that
both protocols answer alike (docs/grpc.md).

``METHODS`` is the table of every method of every service; ``Dispatcher`` runs one call:
draining, authentication (the ``authorization`` metadata, as the HTTP ``Authorization``
header), the handler, the status of an error (resonate.server.grpc.status), metrics and the
log line.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import grpc
from google.protobuf.message import Message

from resonate import __version__
from resonate.core.callback import trace_head
from resonate.core.errors import Code, ResonateError, invalid
from resonate.core.lock import LockQuery, lock_query_from_cursor
from resonate.core.promise import PromiseState
from resonate.core.schedule import check_template, template_fixed_prefix
from resonate.core.schema import check_string_map, validate
from resonate.core.search import (
    PromiseQuery,
    ScheduleQuery,
    TaskQuery,
    promise_query_from_cursor,
    schedule_query_from_cursor,
    task_query_from_cursor,
)
from resonate.server import callbacks, locks, promises, schedules, tasks
from resonate.server.grpc import convert
from resonate.server.grpc.gen import (
    lock_pb2,
    promise_pb2,
    promise_t_pb2,
    resonate_pb2,
    schedule_pb2,
    task_pb2,
)
from resonate.server.grpc.status import ERROR_CODE_KEY, status_of
from resonate.server.http import routes
from resonate.server.http.auth import (
    Authenticator,
    Principal,
    authorize_id,
    authorize_ids,
    authorize_pattern,
    authorize_task_id,
)
from resonate.server.http.protocol import random_uuid
from resonate.server.http.routes import Context
from resonate.server.metrics import Metrics
from resonate.server.promises import Fence

log = logging.getLogger("resonate.grpc")

INT32_MAX = 2**31 - 1


@dataclass(frozen=True, slots=True)
class Call:
    """What a handler knows of its call besides the request message."""

    principal: Principal
    metadata: Mapping[str, str]

    def header(self, name: str) -> str | None:
        value = self.metadata.get(name)
        return None if value is None else convert.text(name, value)

    def trace(self) -> dict[str, str] | None:
        """The trace context to carry to workers: W3C ``traceparent`` and ``tracestate``
        metadata, as the HTTP headers of the same names."""
        return trace_head(self.header("traceparent"), self.header("tracestate"))


Answer = tuple[Message, Code]  # the response and the code HTTP would have answered
Handler = Callable[[Context, Any, Call], Awaitable[Answer]]


def _done(created: bool) -> Code:
    return Code.CREATED if created else Code.OK


def _fence(call: Call, message: resonate_pb2.Fence, present: bool) -> Fence | None:
    """A fencing token; its task id is held to the task-id rule like any other id (§9.2)."""
    if not present or not message.taskId:
        return None
    task_id = convert.text("fence.taskId", message.taskId)
    authorize_task_id(call.principal, task_id)
    return Fence(task_id, message.counter)


# ---- promise.Promises ---------------------------------------------------------------------------


def _create_command(
    request: promise_pb2.CreatePromiseRequest, call: Call, fence: Fence | None
) -> promises.CreatePromise:
    body = validate(
        routes.CREATE_PROMISE,
        {"id": request.id, "timeout": request.timeout, "tags": dict(request.tags)},
    )
    authorize_id(call.principal, "promise id", body["id"])
    return promises.CreatePromise(
        id=body["id"],
        timeout=body["timeout"] or 0,
        param=convert.value("param", request.param),
        tags=body["tags"],
        idempotency_key=convert.optional_text("idempotencyKey", request.idempotencyKey),
        strict=request.strict,
        fence=fence,
        head=call.trace(),
    )


async def _create(
    ctx: Context, request: promise_pb2.CreatePromiseRequest, call: Call, fence: Fence | None
) -> Answer:
    command = _create_command(request, call, fence)
    outcome = await promises.run_create_promise(ctx.store, ctx.clock, command, ctx.router)
    response = promise_pb2.CreatePromiseResponse(
        noop=not outcome.created, promise=convert.promise_message(outcome.promise)
    )
    return response, _done(outcome.created)


async def read_promise(ctx: Context, request: promise_pb2.ReadPromiseRequest, call: Call) -> Answer:
    promise_id = convert.text("id", request.id)
    authorize_id(call.principal, "promise id", promise_id)
    promise = await promises.run_read_promise(ctx.store, ctx.clock, promise_id)
    return promise_pb2.ReadPromiseResponse(promise=convert.promise_message(promise)), Code.OK


async def search_promises(
    ctx: Context, request: promise_pb2.SearchPromisesRequest, call: Call
) -> Answer:
    if request.cursor:
        query = promise_query_from_cursor(request.cursor)
    else:
        pattern = convert.text("id", request.id)
        if not pattern:
            raise invalid("id", "The field id is required.")
        if request.state not in convert.SEARCH_STATES:
            raise invalid("state", "The field state must be one of pending, resolved, rejected.")
        query = PromiseQuery(
            id=pattern,
            state=convert.SEARCH_STATES[request.state],
            tags=check_string_map("tags", dict(request.tags)),
            limit=convert.limit(request.limit),
        )
    authorize_pattern(call.principal, "promise id pattern", query.id)
    page = await promises.run_search_promises(
        ctx.store, ctx.clock, query, timeout_batch=ctx.promise_batch_size
    )
    response = promise_pb2.SearchPromisesResponse(
        promises=[convert.promise_message(p) for p in page.promises], cursor=page.cursor or ""
    )
    return response, Code.OK


async def create_promise(
    ctx: Context, request: promise_pb2.CreatePromiseRequest, call: Call
) -> Answer:
    return await _create(ctx, request, call, None)


async def _create_with_task(
    ctx: Context, request: promise_pb2.CreatePromiseAndTaskRequest, call: Call
) -> promises.Outcome:
    promise, task = request.promise, request.task
    body = validate(
        routes.CREATE_PROMISE_AND_TASK,
        {
            "promise": {"id": promise.id, "timeout": promise.timeout, "tags": dict(promise.tags)}
            if request.HasField("promise")
            else None,
            "task": {"processId": task.processId, "ttl": task.ttl}
            if request.HasField("task")
            else None,
        },
    )
    authorize_id(call.principal, "promise id", body["promise"]["id"])
    command = promises.CreatePromise(
        id=body["promise"]["id"],
        timeout=body["promise"]["timeout"] or 0,
        param=convert.value("promise.param", promise.param),
        tags=body["promise"]["tags"],
        idempotency_key=convert.optional_text("promise.idempotencyKey", promise.idempotencyKey),
        strict=promise.strict,
        head=call.trace(),
    )
    claim = tasks.TaskClaim(body["task"]["processId"], body["task"]["ttl"] or 0)
    return await promises.run_create_promise(ctx.store, ctx.clock, command, ctx.router, claim)


async def create_promise_and_task(
    ctx: Context, request: promise_pb2.CreatePromiseAndTaskRequest, call: Call
) -> Answer:
    outcome = await _create_with_task(ctx, request, call)
    response = promise_pb2.CreatePromiseAndTaskResponse(
        noop=not outcome.created, promise=convert.promise_message(outcome.promise)
    )
    return response, _done(outcome.created)


async def _complete(
    ctx: Context,
    call: Call,
    promise_id: str,
    state: PromiseState,
    value: promise_t_pb2.Value,
    key: str,
    strict: bool,
    fence: Fence | None,
) -> promises.Outcome:
    promise_id = convert.text("id", promise_id)
    if not promise_id:
        raise ResonateError(Code.PROMISE_NOT_FOUND)
    authorize_id(call.principal, "promise id", promise_id)
    command = promises.CompletePromise(
        id=promise_id,
        state=state,
        value=convert.value("value", value),
        idempotency_key=convert.optional_text("idempotencyKey", key),
        strict=strict,
        fence=fence,
    )
    return await promises.run_complete_promise(ctx.store, ctx.clock, command)


def _completer(state: PromiseState, response: Callable[..., Message]) -> Handler:
    """ResolvePromise, RejectPromise or CancelPromise: the HTTP API's PATCH /promises/{id}."""

    async def complete(ctx: Context, request: Any, call: Call) -> Answer:
        outcome = await _complete(
            ctx,
            call,
            request.id,
            state,
            request.value,
            request.idempotencyKey,
            request.strict,
            None,
        )
        answer = response(
            noop=not outcome.created, promise=convert.promise_message(outcome.promise)
        )
        return answer, _done(outcome.created)

    return complete


def _registration(response: Callable[..., Message], registration: callbacks.Registration) -> Answer:
    fields: dict[str, Any] = {
        "noop": not registration.created,
        "promise": convert.promise_message(registration.promise),
    }
    if registration.callback is not None:
        fields["callback"] = convert.callback_message(registration.callback)
    return response(**fields), _done(registration.created)


async def _create_callback(
    ctx: Context, request: promise_pb2.CreateCallbackRequest, call: Call, fence: Fence | None
) -> Answer:
    body = validate(
        routes.CREATE_CALLBACK_BY_BODY,
        {
            "promiseId": request.promiseId,
            "rootPromiseId": request.rootPromiseId,
            "timeout": request.timeout,
            "recv": convert.recv(request.recv, request.HasField("recv")),
        },
    )
    registration = await routes.register_callback(
        ctx, call.principal, body["promiseId"], body, call.trace(), fence
    )
    return _registration(promise_pb2.CreateCallbackResponse, registration)


async def create_callback(
    ctx: Context, request: promise_pb2.CreateCallbackRequest, call: Call
) -> Answer:
    return await _create_callback(ctx, request, call, None)


async def create_subscription(
    ctx: Context, request: promise_pb2.CreateSubscriptionRequest, call: Call
) -> Answer:
    body = validate(
        routes.CREATE_SUBSCRIPTION_BY_BODY,
        {
            "promiseId": request.promiseId,
            "id": request.id,
            "timeout": request.timeout,
            "recv": convert.recv(request.recv, request.HasField("recv")),
        },
    )
    authorize_id(call.principal, "promise id", body["promiseId"])
    registration = await ctx.store.run(
        partial(
            callbacks.create_subscription,
            clock=ctx.clock,
            promise_id=body["promiseId"],
            subscription_id=body["id"],
            recv=body["recv"],
            timeout=body["timeout"] or 0,
            head=call.trace(),
        )
    )
    return _registration(promise_pb2.CreateSubscriptionResponse, registration)


# ---- task.Tasks ---------------------------------------------------------------------------------


def _task_ref(request: Any, call: Call) -> tuple[str, int]:
    body = validate(routes.TASK_REF, {"id": request.id, "counter": request.counter})
    authorize_task_id(call.principal, body["id"])
    return body["id"], routes.require_counter(body["counter"])


async def claim_task(ctx: Context, request: task_pb2.ClaimTaskRequest, call: Call) -> Answer:
    body = validate(
        routes.CLAIM_TASK,
        {
            "id": request.id,
            "counter": request.counter,
            "processId": request.processId,
            "ttl": request.ttl,
        },
    )
    authorize_task_id(call.principal, body["id"])
    command = tasks.ClaimTask(
        body["id"], routes.require_counter(body["counter"]), body["processId"], body["ttl"] or 0
    )
    answer = await ctx.store.run(
        partial(tasks.claim_task, clock=ctx.clock, request=command, base_url=ctx.base_url)
    )
    refs = {}
    for name, ref in answer["promises"].items():
        fields: dict[str, Any] = {"id": ref["id"], "href": ref["href"]}
        data = convert.promise_json_message(ref["data"])
        if data is not None:
            fields["data"] = data
        refs[name] = task_pb2.MesgPromise(**fields)
    mesg = task_pb2.Mesg(type=answer["type"], promises=refs)
    return task_pb2.ClaimTaskResponse(claimed=True, mesg=mesg), Code.CREATED


async def _complete_task(ctx: Context, task_id: str, counter: int) -> tasks.TaskOutcome:
    outcome: tasks.TaskOutcome = await ctx.store.run(
        partial(tasks.complete_task, clock=ctx.clock, task_id=task_id, counter=counter)
    )
    return outcome


async def complete_task(ctx: Context, request: task_pb2.CompleteTaskRequest, call: Call) -> Answer:
    outcome = await _complete_task(ctx, *_task_ref(request, call))
    return task_pb2.CompleteTaskResponse(completed=outcome.created), _done(outcome.created)


async def drop_task(ctx: Context, request: task_pb2.DropTaskRequest, call: Call) -> Answer:
    task_id, counter = _task_ref(request, call)
    dropped = await ctx.store.run(
        partial(tasks.drop_task, clock=ctx.clock, task_id=task_id, counter=counter)
    )
    return task_pb2.DropTaskResponse(dropped=dropped), _done(dropped)


async def _heartbeat_tasks(ctx: Context, request: Any) -> int:
    body = validate(routes.HEARTBEAT_TASKS, {"processId": request.processId})
    affected: int = await ctx.store.run(
        partial(tasks.heartbeat_tasks, clock=ctx.clock, process_id=body["processId"])
    )
    return affected


async def heartbeat_tasks(
    ctx: Context, request: task_pb2.HeartbeatTasksRequest, call: Call
) -> Answer:
    affected = await _heartbeat_tasks(ctx, request)
    return task_pb2.HeartbeatTasksResponse(tasksAffected=affected), Code.OK


# ---- lock.Locks ---------------------------------------------------------------------------------


async def _acquire_lock(ctx: Context, request: Any, call: Call) -> Any:
    body = validate(
        routes.ACQUIRE_LOCK,
        {
            "resourceId": request.resourceId,
            "executionId": request.executionId,
            "processId": request.processId,
            "ttl": request.ttl,
        },
    )
    authorize_id(call.principal, "resource id", body["resourceId"])
    command = locks.AcquireLock(
        body["resourceId"], body["executionId"], body["processId"], body["ttl"] or 0
    )
    return await ctx.store.run(partial(locks.acquire_lock, clock=ctx.clock, request=command))


async def acquire_lock(ctx: Context, request: lock_pb2.AcquireLockRequest, call: Call) -> Answer:
    await _acquire_lock(ctx, request, call)
    return lock_pb2.AcquireLockResponse(acquired=True), Code.CREATED


async def release_lock(ctx: Context, request: lock_pb2.ReleaseLockRequest, call: Call) -> Answer:
    body = validate(
        routes.RELEASE_LOCK,
        {"resourceId": request.resourceId, "executionId": request.executionId},
    )
    authorize_id(call.principal, "resource id", body["resourceId"])
    await ctx.store.run(
        partial(
            locks.release_lock, resource_id=body["resourceId"], execution_id=body["executionId"]
        )
    )
    return lock_pb2.ReleaseLockResponse(released=True), Code.NO_CONTENT


async def _heartbeat_locks(ctx: Context, request: Any) -> int:
    body = validate(routes.HEARTBEAT_LOCKS, {"processId": request.processId})
    affected: int = await ctx.store.run(
        partial(locks.heartbeat_locks, clock=ctx.clock, process_id=body["processId"])
    )
    return affected


async def heartbeat_locks(
    ctx: Context, request: lock_pb2.HeartbeatLocksRequest, call: Call
) -> Answer:
    affected = min(await _heartbeat_locks(ctx, request), INT32_MAX)  # int32 on the wire
    return lock_pb2.HeartbeatLocksResponse(locksAffected=affected), Code.OK


# ---- schedule.Schedules -------------------------------------------------------------------------


async def create_schedule(
    ctx: Context, request: schedule_pb2.CreateScheduleRequest, call: Call
) -> Answer:
    body = validate(
        routes.CREATE_SCHEDULE,
        {
            "id": request.id,
            "description": request.description or None,
            "cron": request.cron,
            "tags": dict(request.tags),
            "promiseId": request.promiseId,
            "promiseTimeout": request.promiseTimeout,
            "promiseTags": dict(request.promiseTags),
        },
    )
    if not body["cron"].strip():
        raise invalid("cron", "The field cron must be a valid cron expression.")
    template = check_template(body["promiseId"], body["id"])
    authorize_ids(
        call.principal,
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
        description=body["description"],
        tags=body["tags"],
        promise_param=convert.value("promiseParam", request.promiseParam),
        promise_tags=body["promiseTags"],
        idempotency_key=convert.optional_text("idempotencyKey", request.idempotencyKey),
    )
    outcome = await ctx.store.run(
        partial(schedules.create_schedule, clock=ctx.clock, request=command)
    )
    response = schedule_pb2.CreatedScheduleResponse(
        noop=not outcome.created, schedule=convert.schedule_message(outcome.schedule)
    )
    return response, _done(outcome.created)


async def read_schedule(
    ctx: Context, request: schedule_pb2.ReadScheduleRequest, call: Call
) -> Answer:
    schedule_id = convert.text("id", request.id)
    authorize_id(call.principal, "schedule id", schedule_id)
    schedule = await ctx.store.read(partial(schedules.read_schedule, schedule_id=schedule_id))
    return schedule_pb2.ReadScheduleResponse(schedule=convert.schedule_message(schedule)), Code.OK


async def delete_schedule(
    ctx: Context, request: schedule_pb2.DeleteScheduleRequest, call: Call
) -> Answer:
    schedule_id = convert.text("id", request.id)
    authorize_id(call.principal, "schedule id", schedule_id)
    await ctx.store.run(partial(schedules.delete_schedule, schedule_id=schedule_id))
    return schedule_pb2.DeleteScheduleResponse(), Code.NO_CONTENT


async def search_schedules(
    ctx: Context, request: schedule_pb2.SearchSchedulesRequest, call: Call
) -> Answer:
    if request.cursor:
        query = schedule_query_from_cursor(request.cursor)
    else:
        pattern = convert.text("id", request.id)
        if not pattern:
            raise invalid("id", "The field id is required.")
        query = ScheduleQuery(
            id=pattern,
            tags=check_string_map("tags", dict(request.tags)),
            limit=convert.limit(request.limit),
        )
    authorize_pattern(call.principal, "schedule id pattern", query.id)
    page = await ctx.store.read(partial(schedules.search_schedules, query=query))
    response = schedule_pb2.SearchSchedulesResponse(
        schedules=[convert.schedule_message(s) for s in page.schedules], cursor=page.cursor or ""
    )
    return response, Code.OK


# ---- resonate.v1: this server's additions -------------------------------------------------------


async def ext_create_promise(
    ctx: Context, request: resonate_pb2.CreatePromiseRequest, call: Call
) -> Answer:
    if not request.HasField("promise"):
        raise invalid("promise", "The field promise is required.")
    fence = _fence(call, request.fence, request.HasField("fence"))
    return await _create(ctx, request.promise, call, fence)


async def ext_complete_promise(
    ctx: Context, request: resonate_pb2.CompletePromiseRequest, call: Call
) -> Answer:
    state = convert.COMPLETION_STATES.get(request.state)
    if state is None:
        raise invalid(
            "state", "The field state must be one of RESOLVED, REJECTED, REJECTED_CANCELED."
        )
    fence = _fence(call, request.fence, request.HasField("fence"))
    outcome = await _complete(
        ctx, call, request.id, state, request.value, request.idempotencyKey, request.strict, fence
    )
    response = resonate_pb2.CompletePromiseResponse(
        noop=not outcome.created, promise=convert.promise_message(outcome.promise)
    )
    return response, _done(outcome.created)


async def ext_create_promise_and_task(
    ctx: Context, request: promise_pb2.CreatePromiseAndTaskRequest, call: Call
) -> Answer:
    outcome = await _create_with_task(ctx, request, call)
    fields: dict[str, Any] = {
        "noop": not outcome.created,
        "promise": convert.promise_message(outcome.promise),
    }
    if outcome.task is not None:
        fields["task"] = convert.task_message(outcome.task)
    return resonate_pb2.CreatePromiseAndTaskResponse(**fields), _done(outcome.created)


async def ext_create_callback(
    ctx: Context, request: resonate_pb2.CreateCallbackRequest, call: Call
) -> Answer:
    fence = _fence(call, request.fence, request.HasField("fence"))
    return await _create_callback(ctx, request.callback, call, fence)


async def ext_read_task(ctx: Context, request: resonate_pb2.ReadTaskRequest, call: Call) -> Answer:
    task_id = convert.text("id", request.id, max_bytes=None)
    authorize_task_id(call.principal, task_id)
    task = await ctx.store.read(partial(tasks.read_task, task_id=task_id))
    return resonate_pb2.ReadTaskResponse(task=convert.task_message(task)), Code.OK


async def ext_search_tasks(
    ctx: Context, request: resonate_pb2.SearchTasksRequest, call: Call
) -> Answer:
    if request.cursor:
        query = task_query_from_cursor(request.cursor)
    else:
        if request.state not in convert.TASK_STATE_NAMES:
            raise invalid("state", "The field state must be a task state.")
        query = TaskQuery(
            id=convert.text("id", request.id, max_bytes=None) or "*",
            state=convert.TASK_STATE_NAMES[request.state],
            process_id=convert.optional_text("processId", request.processId),
            root_promise_id=convert.optional_text("rootPromiseId", request.rootPromiseId),
            limit=convert.limit(request.limit),
        )
    routes.authorize_task_search(call.principal, query)
    page = await ctx.store.read(partial(tasks.search_tasks, query=query))
    response = resonate_pb2.SearchTasksResponse(
        tasks=[convert.task_message(t) for t in page.tasks], cursor=page.cursor or ""
    )
    return response, Code.OK


async def ext_complete_task(
    ctx: Context, request: resonate_pb2.CompleteTaskRequest, call: Call
) -> Answer:
    outcome = await _complete_task(ctx, *_task_ref(request, call))
    response = resonate_pb2.CompleteTaskResponse(
        noop=not outcome.created, task=convert.task_message(outcome.task)
    )
    return response, _done(outcome.created)


async def ext_heartbeat_tasks(
    ctx: Context, request: resonate_pb2.HeartbeatTasksRequest, call: Call
) -> Answer:
    affected = await _heartbeat_tasks(ctx, request)
    return resonate_pb2.HeartbeatTasksResponse(tasksAffected=affected), Code.OK


async def ext_read_lock(ctx: Context, request: resonate_pb2.ReadLockRequest, call: Call) -> Answer:
    resource_id = convert.text("resourceId", request.resourceId)
    authorize_id(call.principal, "resource id", resource_id)
    lock = await ctx.store.read(partial(locks.read_lock, resource_id=resource_id))
    return resonate_pb2.ReadLockResponse(lock=convert.lock_message(lock)), Code.OK


async def ext_search_locks(
    ctx: Context, request: resonate_pb2.SearchLocksRequest, call: Call
) -> Answer:
    if request.cursor:
        query = lock_query_from_cursor(request.cursor)
    else:
        query = LockQuery(
            resource_id=convert.text("resourceId", request.resourceId) or "*",
            process_id=convert.optional_text("processId", request.processId),
            execution_id=convert.optional_text("executionId", request.executionId),
            limit=convert.limit(request.limit),
        )
    authorize_pattern(call.principal, "resource id pattern", query.resource_id)
    page = await ctx.store.read(partial(locks.search_locks, query=query))
    response = resonate_pb2.SearchLocksResponse(
        locks=[convert.lock_message(lock) for lock in page.locks], cursor=page.cursor or ""
    )
    return response, Code.OK


async def ext_acquire_lock(
    ctx: Context, request: resonate_pb2.AcquireLockRequest, call: Call
) -> Answer:
    lock = await _acquire_lock(ctx, request, call)
    return resonate_pb2.AcquireLockResponse(lock=convert.lock_message(lock)), Code.CREATED


async def ext_heartbeat_locks(
    ctx: Context, request: resonate_pb2.HeartbeatLocksRequest, call: Call
) -> Answer:
    affected = await _heartbeat_locks(ctx, request)
    return resonate_pb2.HeartbeatLocksResponse(locksAffected=affected), Code.OK


# ---- the method table ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Method:
    """One method: its handler and the ``type`` label of its api_* metrics (the HTTP route's
    operation where there is one, so that both protocols count in the same series)."""

    operation: str
    handler: Handler


METHODS: dict[str, dict[str, Method]] = {
    "promise.Promises": {
        "ReadPromise": Method("ReadPromise", read_promise),
        "SearchPromises": Method("SearchPromises", search_promises),
        "CreatePromise": Method("CreatePromise", create_promise),
        "CreatePromiseAndTask": Method("CreatePromiseAndTask", create_promise_and_task),
        "ResolvePromise": Method(
            "CompletePromise", _completer(PromiseState.RESOLVED, promise_pb2.ResolvePromiseResponse)
        ),
        "RejectPromise": Method(
            "CompletePromise", _completer(PromiseState.REJECTED, promise_pb2.RejectPromiseResponse)
        ),
        "CancelPromise": Method(
            "CompletePromise",
            _completer(PromiseState.REJECTED_CANCELED, promise_pb2.CancelPromiseResponse),
        ),
        "CreateCallback": Method("CreateCallback", create_callback),
        "CreateSubscription": Method("CreateSubscription", create_subscription),
    },
    "schedule.Schedules": {
        "ReadSchedule": Method("ReadSchedule", read_schedule),
        "SearchSchedules": Method("SearchSchedules", search_schedules),
        "CreateSchedule": Method("CreateSchedule", create_schedule),
        "DeleteSchedule": Method("DeleteSchedule", delete_schedule),
    },
    "lock.Locks": {
        "AcquireLock": Method("AcquireLock", acquire_lock),
        "ReleaseLock": Method("ReleaseLock", release_lock),
        "HeartbeatLocks": Method("HeartbeatLocks", heartbeat_locks),
    },
    "task.Tasks": {
        "ClaimTask": Method("ClaimTask", claim_task),
        "CompleteTask": Method("CompleteTask", complete_task),
        "DropTask": Method("DropTask", drop_task),
        "HeartbeatTasks": Method("HeartbeatTasks", heartbeat_tasks),
    },
    "resonate.v1.Promises": {
        "CreatePromise": Method("CreatePromise", ext_create_promise),
        "CompletePromise": Method("CompletePromise", ext_complete_promise),
        "CreatePromiseAndTask": Method("CreatePromiseAndTask", ext_create_promise_and_task),
        "CreateCallback": Method("CreateCallback", ext_create_callback),
    },
    "resonate.v1.Tasks": {
        "ReadTask": Method("ReadTask", ext_read_task),
        "SearchTasks": Method("SearchTasks", ext_search_tasks),
        "CompleteTask": Method("CompleteTask", ext_complete_task),
        "HeartbeatTasks": Method("HeartbeatTasks", ext_heartbeat_tasks),
    },
    "resonate.v1.Locks": {
        "ReadLock": Method("ReadLock", ext_read_lock),
        "SearchLocks": Method("SearchLocks", ext_search_locks),
        "AcquireLock": Method("AcquireLock", ext_acquire_lock),
        "HeartbeatLocks": Method("HeartbeatLocks", ext_heartbeat_locks),
    },
}


# ---- one call -----------------------------------------------------------------------------------


def _metadata(context: grpc.aio.ServicerContext[Any, Any]) -> dict[str, str]:
    """The text metadata of a call (binary ``-bin`` entries are left out)."""
    out: dict[str, str] = {}
    for key, value in context.invocation_metadata() or ():
        if isinstance(value, str):
            out[key.lower()] = value
    return out


def _request_id(request: Any, metadata: Mapping[str, str]) -> str:
    """The request's ``requestId`` field (of the wrapped request, for this server's wrappers),
    else the ``request-id`` metadata, else a fresh UUID."""
    rid = getattr(request, "requestId", "")
    for inner in ("promise", "callback"):
        if not rid and inner in type(request).DESCRIPTOR.fields_by_name:
            rid = getattr(getattr(request, inner), "requestId", "")
    if rid:
        return convert.text("requestId", rid)
    value = metadata.get("request-id", "")
    try:
        return convert.text("request-id", value) or random_uuid()
    except ResonateError:
        return random_uuid()


class Dispatcher:
    """Runs the calls of one server: one instance per listener."""

    def __init__(self, ctx: Context, metrics: Metrics | None = None) -> None:
        self.ctx = ctx
        self.authenticator: Authenticator = ctx.authenticator
        self.series = metrics.requests if metrics is not None else None

    def unary(self, full_name: str, method: Method) -> Callable[..., Awaitable[Message]]:
        """The coroutine gRPC calls for ``method`` (``full_name``: /service/method)."""
        ctx, handler, operation = self.ctx, method.handler, method.operation
        series = self.series
        in_flight = series.in_flight(operation, "grpc") if series is not None else None

        async def call(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Message:
            started = time.perf_counter()
            metadata = _metadata(context)
            rid = ""
            response: Message | None = None
            failure: ResonateError | None = None
            if in_flight is not None:
                in_flight[0] += 1
            try:
                rid = _request_id(request, metadata)
                if ctx.shutting_down:
                    raise ResonateError(Code.SHUTTING_DOWN, "the server is shutting down")
                principal = self.authenticator.authenticate(metadata.get("authorization"))
                response, code = await handler(ctx, request, Call(principal, metadata))
            except ResonateError as error:
                failure, code = error, error.code
            except asyncio.CancelledError:
                log.warning("%s cancelled (request id %s)", full_name, rid or "-")
                raise
            except Exception as error:
                log.error("%s (request id %s): unhandled error", full_name, rid, exc_info=error)
                failure = ResonateError(Code.INTERNAL_ERROR, "internal error")
                code = failure.code
            finally:
                if in_flight is not None:
                    in_flight[0] -= 1
            rid = rid or random_uuid()
            seconds = time.perf_counter() - started
            if series is not None:
                series.api_count(operation, "grpc", str(int(code)))[0] += 1
                series.api_latency(operation, "grpc").observe(seconds)
            trailers: list[tuple[str, str]] = [
                ("request-id", rid),
                ("resonate-version", __version__),
            ]
            if failure is None:
                assert response is not None
                if log.isEnabledFor(logging.DEBUG):
                    log.debug("%s %d %.1fms (request id %s)", full_name, code, seconds * 1e3, rid)
                context.set_trailing_metadata(tuple(trailers))
                return response
            if code.http_status >= 500:
                level = logging.INFO if code is Code.SHUTTING_DOWN else logging.WARNING
                log.log(
                    level, "%s %d (request id %s): %s", full_name, code, rid, failure.describe()
                )
            elif log.isEnabledFor(logging.DEBUG):
                log.debug("%s %d %.1fms (request id %s)", full_name, code, seconds * 1e3, rid)
            trailers.append((ERROR_CODE_KEY, str(int(code))))
            if code is Code.UNAUTHORIZED:
                trailers.append(
                    ("www-authenticate", self.authenticator.challenge["WWW-Authenticate"])
                )
            await context.abort(status_of(code), str(failure), tuple(trailers))
            raise AssertionError("unreachable: abort raises")  # pragma: no cover

        return call
