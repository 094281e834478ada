"""The HTTP suites over gRPC: an httpx transport that turns each REST request into the matching
gRPC call with the generated stubs, and the answer back into the response the HTTP route gives.

A test written against ``httpx.AsyncClient`` runs unchanged on an ``AsyncClient`` built on
``GrpcTransport``: the request's method, path, query, JSON body and headers (``authorization``,
``request-id``, ``idempotency-key``, ``strict``, ``task-id``/``task-counter``, ``traceparent``,
``tracestate``) become the fields and metadata of a ``promise.*``, ``schedule.*``, ``lock.*``,
``task.*`` call, or of a ``resonate.v1`` one where only this server's additions cover the
route (task and lock reads and searches, fences, answers that carry the task or lock). The
answer becomes the REST status and JSON body: 201 or 200 from ``noop``, the body rebuilt from
the message by the inverses below of resonate/server/grpc/convert.py's conversions; an error
becomes the HTTP status of its ``resonate-error-code`` trailer and the body the HTTP API would
answer (resonate.server.http.protocol.error_body).

Nothing is emulated: a request the gRPC API cannot express raises instead of answering, so a
test that depends on it fails loudly rather than passing by accident:

- ``RouteNotOverGrpc``: a route with no gRPC method (task link forms, GET /callbacks, the 2026
  envelope, health, 405s of the HTTP router, ...);
- ``NotRepresentable``: a request the messages cannot carry (a body that is not a JSON object,
  a string where a number goes, an integer past the field's width, an empty ``cursor``, a
  schedule ``timezone`` field, ...).

``SyncGrpcTransport`` is the same for a blocking ``httpx.Client``; ``GrpcLiveServer`` is
tests/support/live.py's LiveServer with its gRPC listener on and ``client`` on this transport.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote

import grpc
import httpx

from resonate.core.errors import Code, FieldProblem, ResonateError
from resonate.server.grpc.gen import (
    callback_t_pb2,
    lock_pb2,
    lock_pb2_grpc,
    promise_pb2,
    promise_pb2_grpc,
    promise_t_pb2,
    resonate_pb2,
    resonate_pb2_grpc,
    schedule_pb2,
    schedule_pb2_grpc,
    schedule_t_pb2,
    task_pb2,
    task_pb2_grpc,
)
from resonate.server.grpc.status import ERROR_CODE_KEY
from resonate.server.http.protocol import error_body
from tests.support.live import LiveServer, live_server

T = TypeVar("T")
INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)


class RouteNotOverGrpc(Exception):
    """The REST request names a route that no gRPC method serves."""


class NotRepresentable(Exception):
    """The REST request says something the gRPC messages cannot express."""


# ---- the JSON answers: the inverses of resonate/server/grpc/convert.py ---------------------------

PROMISE_STATE_NAMES = {number: name for name, number in promise_t_pb2.State.items()}
TASK_STATE_NAMES = {number: name for name, number in resonate_pb2.TaskState.items() if number != 0}


def value_json(message: promise_t_pb2.Value) -> dict[str, Any]:
    """resonate.core.promise.Value.to_json of a Value message."""
    out: dict[str, Any] = {}
    if message.headers:
        out["headers"] = dict(message.headers)
    if message.data:
        out["data"] = base64.b64encode(message.data).decode("ascii")
    return out


def promise_json(message: promise_t_pb2.Promise) -> dict[str, Any]:
    """resonate.core.promise.Promise.to_json of a Promise message (empty is absent)."""
    out: dict[str, Any] = {
        "id": message.id,
        "state": PROMISE_STATE_NAMES[message.state],
        "param": value_json(message.param),
        "value": value_json(message.value),
        "timeout": message.timeout,
    }
    if message.idempotencyKeyForCreate:
        out["idempotencyKeyForCreate"] = message.idempotencyKeyForCreate
    if message.idempotencyKeyForComplete:
        out["idempotencyKeyForComplete"] = message.idempotencyKeyForComplete
    if message.tags:
        out["tags"] = dict(message.tags)
    if message.createdOn:
        out["createdOn"] = message.createdOn
    if message.completedOn:
        out["completedOn"] = message.completedOn
    return out


def recv_json(message: callback_t_pb2.Recv) -> Any:
    """A recv as stored: a logical string, or ``{"type", "data"}`` with its data as JSON."""
    kind = message.WhichOneof("recv")
    if kind == "logical":
        return message.logical
    if kind == "physical":
        data = json.loads(message.physical.data) if message.physical.data else None
        return {"type": message.physical.type, "data": data}
    return None


def task_json(message: resonate_pb2.Task) -> dict[str, Any]:
    """resonate.core.task.Task.to_json (the task of create-with-task and complete answers)."""
    out: dict[str, Any] = {
        "id": message.id,
        "counter": message.counter,
        "timeout": message.timeout,
        "rootPromiseId": message.rootPromiseId,
    }
    if message.processId:
        out["processId"] = message.processId
    if message.createdOn:
        out["createdOn"] = message.createdOn
    if message.completedOn:
        out["completedOn"] = message.completedOn
    return out


def task_extended_json(message: resonate_pb2.Task) -> dict[str, Any]:
    """resonate.core.task.Task.to_extended_json (the operator reads)."""
    out: dict[str, Any] = {
        "id": message.id,
        "state": TASK_STATE_NAMES[message.state],
        "type": message.type,
        "counter": message.counter,
        "attempt": message.attempt,
        "rootPromiseId": message.rootPromiseId,
    }
    if message.leafPromiseId:
        out["leafPromiseId"] = message.leafPromiseId
    if message.processId:
        out["processId"] = message.processId
    out.update(
        recv=recv_json(message.recv),
        timeout=message.timeout,
        ttl=message.ttl,
        expiresAt=message.expiresAt,
        createdOn=message.createdOn,
    )
    if message.completedOn:
        out["completedOn"] = message.completedOn
    return out


def lock_json(message: resonate_pb2.Lock) -> dict[str, Any]:
    """resonate.core.lock.Lock.to_json."""
    return {
        "resourceId": message.resourceId,
        "executionId": message.executionId,
        "processId": message.processId,
        "ttl": message.ttl,
        "expiresAt": message.expiresAt,
    }


def schedule_json(message: schedule_t_pb2.Schedule) -> dict[str, Any]:
    """resonate.core.schedule.Schedule.to_json (no ``timezone``: the Go message has none)."""
    out: dict[str, Any] = {"id": message.id}
    if message.description:
        out["description"] = message.description
    out["cron"] = message.cron
    out.update(
        tags=dict(message.tags),
        promiseId=message.promiseId,
        promiseTimeout=message.promiseTimeout,
        promiseParam=value_json(message.promiseParam),
    )
    if message.promiseTags:
        out["promiseTags"] = dict(message.promiseTags)
    if message.lastRunTime:
        out["lastRunTime"] = message.lastRunTime
    out["nextRunTime"] = message.nextRunTime
    if message.idempotencyKey:
        out["idempotencyKey"] = message.idempotencyKey
    out["createdOn"] = message.createdOn
    return out


def callback_json(message: callback_t_pb2.Callback, root_promise_id: str) -> dict[str, Any]:
    """resonate.core.callback.Callback.to_json; the Go message has no root promise id, which
    is the request's (a callback's id is made of both ids, so a repeat names the same root)."""
    return {
        "id": message.id,
        "promiseId": message.promiseId,
        "rootPromiseId": root_promise_id,
        "timeout": message.timeout,
        "createdOn": message.createdOn,
    }


def page_cursor(cursor: str) -> str | None:
    return cursor or None


# ---- the REST request, read strictly -------------------------------------------------------------


@dataclass
class Rest:
    """One REST request: what the route table matched and what the handlers read."""

    method: str
    path: str
    match: re.Match[str]
    query: httpx.QueryParams
    headers: httpx.Headers
    content: bytes

    def path_id(self) -> str:
        return self.match.group(1)

    def body(self) -> dict[str, Any]:
        """The JSON object of the body; anything else is HTTP framing gRPC has no room for."""
        if not self.content:
            raise NotRepresentable(f"{self.method} {self.path}: a request without a body")
        try:
            body = json.loads(self.content)
        except ValueError:
            raise NotRepresentable(f"{self.method} {self.path}: a body that is not JSON") from None
        if not isinstance(body, dict):
            raise NotRepresentable(f"{self.method} {self.path}: a body that is not an object")
        return body

    def header(self, name: str) -> str:
        return self.headers.get(name, "")

    def strict(self) -> bool:
        raw = self.header("strict").strip().lower()
        if raw in ("true", "t", "1"):
            return True
        if raw in ("false", "f", "0", ""):
            return False
        raise NotRepresentable(f"strict: {raw!r} is not a boolean")

    def fence(self) -> resonate_pb2.Fence | None:
        task_id = self.header("task-id")
        raw = self.header("task-counter")
        counter = 0
        if raw:
            try:
                counter = integer("task-counter", int(raw.strip()), INT64)
            except ValueError:
                raise NotRepresentable(f"task-counter: {raw!r} is not an integer") from None
        if not task_id:
            return None
        return resonate_pb2.Fence(taskId=task_id, counter=counter)

    def metadata(self) -> tuple[tuple[str, str], ...]:
        """The headers every route reads, as the metadata of the same names."""
        names = ("authorization", "request-id", "traceparent", "tracestate")
        return tuple((name, self.headers[name]) for name in names if name in self.headers)

    def param(self, name: str) -> str:
        return self.query.get(name) or ""

    def limit(self) -> int:
        raw = self.query.get("limit")
        if raw is None or raw == "":
            return 0
        try:
            return integer("limit", int(raw), INT32)
        except ValueError:
            raise NotRepresentable(f"limit: {raw!r} is not an integer") from None

    def cursor(self) -> str:
        cursor = self.query.get("cursor")
        if cursor == "":
            raise NotRepresentable("cursor: an empty cursor is an absent one in proto3")
        return cursor or ""

    def tag_filters(self) -> dict[str, str]:
        return {
            key[5:-1]: value
            for key, value in self.query.multi_items()
            if key.startswith("tags[") and key.endswith("]")
        }


def integer(name: str, value: Any, bounds: tuple[int, int] = INT64) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise NotRepresentable(f"{name}: {value!r} is not an integer")
    if not bounds[0] <= value <= bounds[1]:
        raise NotRepresentable(f"{name}: {value} does not fit the message's integer")
    return value


def string(name: str, value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise NotRepresentable(f"{name}: {value!r} is not a string")
    return value


def string_map(name: str, value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise NotRepresentable(f"{name}: {value!r} is not an object of strings")
    return value


def value_message(name: str, value: Any) -> promise_t_pb2.Value:
    if value is None:
        return promise_t_pb2.Value()
    if not isinstance(value, dict):
        raise NotRepresentable(f"{name}: {value!r} is not an object")
    data = value.get("data")
    raw = b""
    if data is not None:
        try:
            raw = base64.b64decode(string(f"{name}.data", data), validate=True)
        except binascii.Error:
            raise NotRepresentable(f"{name}.data: {data!r} is not base64") from None
    return promise_t_pb2.Value(
        headers=string_map(f"{name}.headers", value.get("headers")), data=raw
    )


def recv_message(value: Any) -> callback_t_pb2.Recv | None:
    """A recv: a string is a logical one, an object ``{type?, data?}`` a physical one (its
    data as JSON bytes); absent is None."""
    if value is None:
        return None
    if isinstance(value, str):
        return callback_t_pb2.Recv(logical=value)
    if isinstance(value, dict):
        data = value.get("data")
        raw = b"" if data is None else json.dumps(data, separators=(",", ":")).encode()
        kind = string("recv.type", value.get("type"))
        return callback_t_pb2.Recv(physical=callback_t_pb2.PhysicalRecv(type=kind, data=raw))
    raise NotRepresentable(f"recv: {value!r} is neither a string nor an object")


def refuse_fields(body: Mapping[str, Any], *names: str) -> None:
    for name in names:
        if body.get(name) is not None:
            raise NotRepresentable(f"{name}: the gRPC message has no such field")


# ---- the transport -------------------------------------------------------------------------------

# REST spellings of the enums (case-insensitive over HTTP). A state name the HTTP API does not
# know is sent as a value out of the enum, which the server refuses as HTTP refuses the name.
OUT_OF_ENUM = 99
SEARCH_STATES = {
    "pending": promise_pb2.SEARCH_PENDING,
    "resolved": promise_pb2.SEARCH_RESOLVED,
    "rejected": promise_pb2.SEARCH_REJECTED,
}
TASK_STATES = {name.lower(): number for number, name in TASK_STATE_NAMES.items()}
COMPLETIONS: dict[str, tuple[str, Any, int]] = {
    "resolved": ("ResolvePromise", promise_pb2.ResolvePromiseRequest, resonate_pb2.RESOLVED),
    "rejected": ("RejectPromise", promise_pb2.RejectPromiseRequest, resonate_pb2.REJECTED),
    "rejected_canceled": (
        "CancelPromise",
        promise_pb2.CancelPromiseRequest,
        resonate_pb2.REJECTED_CANCELED,
    ),
}

Answer = tuple[int, Any]  # the HTTP status and the JSON body (None: no body)


class GrpcTransport(httpx.AsyncBaseTransport):
    """REST requests in, gRPC calls out, REST responses back (see the module's docstring)."""

    def __init__(self, target: str) -> None:
        self.channel = grpc.aio.insecure_channel(target)
        self.promises = promise_pb2_grpc.PromisesStub(self.channel)
        self.schedules = schedule_pb2_grpc.SchedulesStub(self.channel)
        self.locks = lock_pb2_grpc.LocksStub(self.channel)
        self.tasks = task_pb2_grpc.TasksStub(self.channel)
        self.ext_promises = resonate_pb2_grpc.PromisesStub(self.channel)
        self.ext_tasks = resonate_pb2_grpc.TasksStub(self.channel)
        self.ext_locks = resonate_pb2_grpc.LocksStub(self.channel)
        self.routes: list[tuple[str, re.Pattern[str], Callable[[Rest], Awaitable[Answer]]]] = [
            # In the order of resonate/server/http/routes.py's ROUTES: the first match wins.
            ("GET", re.compile(r"/promises"), self.search_promises),
            ("POST", re.compile(r"/promises"), self.create_promise),
            ("POST", re.compile(r"/promises/callback/(.*)"), self.create_callback),
            ("POST", re.compile(r"/promises/subscribe/(.*)"), self.create_subscription),
            ("POST", re.compile(r"/callbacks"), self.create_callback),
            ("POST", re.compile(r"/subscriptions"), self.create_subscription),
            ("POST", re.compile(r"/promises/task"), self.create_promise_and_task),
            ("GET", re.compile(r"/promises/(.*)"), self.read_promise),
            ("PATCH", re.compile(r"/promises/(.*)"), self.complete_promise),
            ("POST", re.compile(r"/tasks/claim"), self.claim_task),
            ("POST", re.compile(r"/tasks/complete"), self.complete_task),
            ("POST", re.compile(r"/tasks/drop"), self.drop_task),
            ("POST", re.compile(r"/tasks/heartbeat"), self.heartbeat_tasks),
            ("GET", re.compile(r"/tasks/(?:claim|complete|drop|heartbeat)/.*"), self.no_method),
            ("GET", re.compile(r"/tasks"), self.search_tasks),
            ("GET", re.compile(r"/tasks/(.*)"), self.read_task),
            ("POST", re.compile(r"/locks/acquire"), self.acquire_lock),
            ("POST", re.compile(r"/locks/release"), self.release_lock),
            ("POST", re.compile(r"/locks/heartbeat"), self.heartbeat_locks),
            ("GET", re.compile(r"/locks"), self.search_locks),
            ("GET", re.compile(r"/locks/(.*)"), self.read_lock),
            ("POST", re.compile(r"/schedules"), self.create_schedule),
            ("GET", re.compile(r"/schedules"), self.search_schedules),
            ("GET", re.compile(r"/schedules/(.*)"), self.read_schedule),
            ("DELETE", re.compile(r"/schedules/(.*)"), self.delete_schedule),
        ]

    async def aclose(self) -> None:
        await self.channel.close()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        raw_path = request.url.raw_path.split(b"?", 1)[0].decode("ascii")
        path = unquote(raw_path)
        content = await request.aread()
        for method, pattern, handler in self.routes:
            match = pattern.fullmatch(path)
            if match is None or method != request.method:
                continue
            rest = Rest(request.method, path, match, request.url.params, request.headers, content)
            try:
                status, body = await handler(rest)
            except grpc.aio.AioRpcError as error:
                return self.error(request, error)
            if body is None:
                return httpx.Response(status, request=request)
            return httpx.Response(status, json=body, request=request)
        raise RouteNotOverGrpc(f"no gRPC method serves {request.method} {path}")

    @staticmethod
    def error(request: httpx.Request, error: grpc.aio.AioRpcError) -> httpx.Response:
        """The HTTP status (the first 3 digits of the code), body and the headers of them
        that a trailer carries (request id, authentication challenge) of a failed call."""
        trailers = dict(error.trailing_metadata() or ())
        raw = trailers.get(ERROR_CODE_KEY)
        if raw is None:  # gRPC's own refusals carry no code: nothing HTTP would answer
            raise AssertionError(f"gRPC answered {error.code()} without a code: {error.details()}")
        code = Code(int(raw))
        detail = error.details() or ""
        # A 400's message names its field ("The field cron must ..."): the HTTP body's detail
        # is then a FieldValidationError with that field.
        field = (
            re.match(r"The (?:field|header) (\S+) ", detail)
            if code is Code.INVALID_REQUEST
            else None
        )
        fields = (FieldProblem(field.group(1), detail),) if field else ()
        failure = ResonateError(code, detail, fields)
        request_id = trailers.get("request-id")
        body = error_body(failure, request_id if code.http_status >= 500 else None)
        headers = {
            name: trailers[key]
            for name, key in (
                ("Request-Id", "request-id"),
                ("WWW-Authenticate", "www-authenticate"),
            )
            if key in trailers
        }
        return httpx.Response(code.http_status, json=body, headers=headers, request=request)

    async def no_method(self, rest: Rest) -> Answer:
        raise RouteNotOverGrpc(f"no gRPC method serves {rest.method} {rest.path}")

    # ---- promises ----

    def _create_message(self, body: dict[str, Any], rest: Rest) -> promise_pb2.CreatePromiseRequest:
        return promise_pb2.CreatePromiseRequest(
            id=string("id", body.get("id")),
            timeout=integer("timeout", body.get("timeout")),
            param=value_message("param", body.get("param")),
            tags=string_map("tags", body.get("tags")),
            idempotencyKey=rest.header("idempotency-key"),
            strict=rest.strict(),
        )

    async def create_promise(self, rest: Rest) -> Answer:
        strict = rest.strict()
        fence = rest.fence()
        request = self._create_message(rest.body(), rest)
        request.strict = strict
        meta = rest.metadata()
        if fence is None:
            answer = await self.promises.CreatePromise(request, metadata=meta)
        else:
            wrapped = resonate_pb2.CreatePromiseRequest(promise=request, fence=fence)
            answer = await self.ext_promises.CreatePromise(wrapped, metadata=meta)
        return (200 if answer.noop else 201), promise_json(answer.promise)

    async def create_promise_and_task(self, rest: Rest) -> Answer:
        strict = rest.strict()
        body = rest.body()
        request = promise_pb2.CreatePromiseAndTaskRequest()
        promise, task = body.get("promise"), body.get("task")
        for name, part in (("promise", promise), ("task", task)):
            if part is not None and not isinstance(part, dict):
                raise NotRepresentable(f"{name}: {part!r} is not an object")
        if promise is not None:
            request.promise.CopyFrom(self._create_message(promise, rest))
            request.promise.strict = strict
        if task is not None:
            request.task.processId = string("task.processId", task.get("processId"))
            request.task.ttl = integer("task.ttl", task.get("ttl"))
        answer = await self.ext_promises.CreatePromiseAndTask(request, metadata=rest.metadata())
        out = {
            "promise": promise_json(answer.promise),
            "task": task_json(answer.task) if answer.HasField("task") else None,
        }
        return (200 if answer.noop else 201), out

    async def read_promise(self, rest: Rest) -> Answer:
        request = promise_pb2.ReadPromiseRequest(id=rest.path_id())
        answer = await self.promises.ReadPromise(request, metadata=rest.metadata())
        return 200, promise_json(answer.promise)

    async def search_promises(self, rest: Rest) -> Answer:
        state = rest.param("state")
        request = promise_pb2.SearchPromisesRequest(
            id=rest.param("id"),
            state=SEARCH_STATES.get(state.lower(), OUT_OF_ENUM)
            if state
            else promise_pb2.SEARCH_ALL,
            tags=rest.tag_filters(),
            limit=rest.limit(),
            cursor=rest.cursor(),
        )
        answer = await self.promises.SearchPromises(request, metadata=rest.metadata())
        out = {
            "cursor": page_cursor(answer.cursor),
            "promises": [promise_json(p) for p in answer.promises],
        }
        return 200, out

    async def complete_promise(self, rest: Rest) -> Answer:
        promise_id = rest.path_id()
        strict = rest.strict()
        fence = rest.fence()
        body = rest.body()
        state = string("state", body.get("state")).lower()
        value = value_message("value", body.get("value"))
        key = rest.header("idempotency-key")
        meta = rest.metadata()
        completion = COMPLETIONS.get(state)
        if completion is None or fence is not None:
            # resonate.v1's CompletePromise carries the fence, and a missing or unknown state
            # (COMPLETION_STATE_UNSPECIFIED, which the server refuses as HTTP does).
            request = resonate_pb2.CompletePromiseRequest(
                id=promise_id,
                state=completion[2] if completion else resonate_pb2.COMPLETION_STATE_UNSPECIFIED,
                value=value,
                idempotencyKey=key,
                strict=strict,
                fence=fence,
            )
            answer: Any = await self.ext_promises.CompletePromise(request, metadata=meta)
        else:
            method, request_type, _ = completion
            request = request_type(id=promise_id, value=value, idempotencyKey=key, strict=strict)
            answer = await getattr(self.promises, method)(request, metadata=meta)
        return (200 if answer.noop else 201), promise_json(answer.promise)

    # ---- callbacks and subscriptions ----

    async def create_callback(self, rest: Rest) -> Answer:
        fence = rest.fence()
        body = rest.body()
        promise_id = (
            rest.path_id() if rest.match.groups() else string("promiseId", body.get("promiseId"))
        )
        root = string("rootPromiseId", body.get("rootPromiseId"))
        request = promise_pb2.CreateCallbackRequest(
            promiseId=promise_id,
            rootPromiseId=root,
            timeout=integer("timeout", body.get("timeout")),
            recv=recv_message(body.get("recv")),
        )
        meta = rest.metadata()
        if fence is None:
            answer = await self.promises.CreateCallback(request, metadata=meta)
        else:
            wrapped = resonate_pb2.CreateCallbackRequest(callback=request, fence=fence)
            answer = await self.ext_promises.CreateCallback(wrapped, metadata=meta)
        callback = callback_json(answer.callback, root) if answer.HasField("callback") else None
        return (200 if answer.noop else 201), {
            "callback": callback,
            "promise": promise_json(answer.promise),
        }

    async def create_subscription(self, rest: Rest) -> Answer:
        body = rest.body()
        promise_id = (
            rest.path_id() if rest.match.groups() else string("promiseId", body.get("promiseId"))
        )
        sub_id = body.get("id") if body.get("id") is not None else body.get("Id")
        request = promise_pb2.CreateSubscriptionRequest(
            promiseId=promise_id,
            id=string("id", sub_id),
            timeout=integer("timeout", body.get("timeout")),
            recv=recv_message(body.get("recv")),
        )
        answer = await self.promises.CreateSubscription(request, metadata=rest.metadata())
        # A subscription's root is its promise.
        callback = (
            callback_json(answer.callback, promise_id) if answer.HasField("callback") else None
        )
        return (200 if answer.noop else 201), {
            "callback": callback,
            "promise": promise_json(answer.promise),
        }

    # ---- tasks ----

    async def claim_task(self, rest: Rest) -> Answer:
        body = rest.body()
        request = task_pb2.ClaimTaskRequest(
            id=string("id", body.get("id")),
            counter=integer("counter", body.get("counter"), INT32),
            processId=string("processId", body.get("processId")),
            ttl=integer("ttl", body.get("ttl")),
        )
        answer = await self.tasks.ClaimTask(request, metadata=rest.metadata())
        promises = {
            name: {
                "id": ref.id,
                "href": ref.href,
                "data": promise_json(ref.data) if ref.HasField("data") else None,
            }
            for name, ref in answer.mesg.promises.items()
        }
        return 201, {"type": answer.mesg.type, "promises": promises}

    async def complete_task(self, rest: Rest) -> Answer:
        body = rest.body()
        request = resonate_pb2.CompleteTaskRequest(
            id=string("id", body.get("id")), counter=integer("counter", body.get("counter"))
        )
        answer = await self.ext_tasks.CompleteTask(request, metadata=rest.metadata())
        return (200 if answer.noop else 201), task_json(answer.task)

    async def drop_task(self, rest: Rest) -> Answer:
        body = rest.body()
        request = task_pb2.DropTaskRequest(
            id=string("id", body.get("id")), counter=integer("counter", body.get("counter"), INT32)
        )
        answer = await self.tasks.DropTask(request, metadata=rest.metadata())
        return (201 if answer.dropped else 200), None

    async def heartbeat_tasks(self, rest: Rest) -> Answer:
        body = rest.body()
        request = resonate_pb2.HeartbeatTasksRequest(
            processId=string("processId", body.get("processId"))
        )
        answer = await self.ext_tasks.HeartbeatTasks(request, metadata=rest.metadata())
        return 200, {"tasksAffected": answer.tasksAffected}

    async def read_task(self, rest: Rest) -> Answer:
        request = resonate_pb2.ReadTaskRequest(id=rest.path_id())
        answer = await self.ext_tasks.ReadTask(request, metadata=rest.metadata())
        return 200, task_extended_json(answer.task)

    async def search_tasks(self, rest: Rest) -> Answer:
        state = rest.param("state")
        request = resonate_pb2.SearchTasksRequest(
            id=rest.param("id"),
            state=TASK_STATES.get(state.lower(), OUT_OF_ENUM) if state else 0,
            processId=rest.param("processId"),
            rootPromiseId=rest.param("rootPromiseId"),
            limit=rest.limit(),
            cursor=rest.cursor(),
        )
        answer = await self.ext_tasks.SearchTasks(request, metadata=rest.metadata())
        out = {
            "cursor": page_cursor(answer.cursor),
            "tasks": [task_extended_json(t) for t in answer.tasks],
        }
        return 200, out

    # ---- locks ----

    async def acquire_lock(self, rest: Rest) -> Answer:
        body = rest.body()
        request = resonate_pb2.AcquireLockRequest(
            resourceId=string("resourceId", body.get("resourceId")),
            executionId=string("executionId", body.get("executionId")),
            processId=string("processId", body.get("processId")),
            ttl=integer("ttl", body.get("ttl")),
        )
        answer = await self.ext_locks.AcquireLock(request, metadata=rest.metadata())
        return 201, lock_json(answer.lock)

    async def release_lock(self, rest: Rest) -> Answer:
        body = rest.body()
        request = lock_pb2.ReleaseLockRequest(
            resourceId=string("resourceId", body.get("resourceId")),
            executionId=string("executionId", body.get("executionId")),
        )
        await self.locks.ReleaseLock(request, metadata=rest.metadata())
        return 204, None

    async def heartbeat_locks(self, rest: Rest) -> Answer:
        body = rest.body()
        request = resonate_pb2.HeartbeatLocksRequest(
            processId=string("processId", body.get("processId"))
        )
        answer = await self.ext_locks.HeartbeatLocks(request, metadata=rest.metadata())
        return 200, {"locksAffected": answer.locksAffected}

    async def read_lock(self, rest: Rest) -> Answer:
        request = resonate_pb2.ReadLockRequest(resourceId=rest.path_id())
        answer = await self.ext_locks.ReadLock(request, metadata=rest.metadata())
        return 200, lock_json(answer.lock)

    async def search_locks(self, rest: Rest) -> Answer:
        request = resonate_pb2.SearchLocksRequest(
            resourceId=rest.param("resourceId"),
            processId=rest.param("processId"),
            executionId=rest.param("executionId"),
            limit=rest.limit(),
            cursor=rest.cursor(),
        )
        answer = await self.ext_locks.SearchLocks(request, metadata=rest.metadata())
        return 200, {
            "cursor": page_cursor(answer.cursor),
            "locks": [lock_json(lock) for lock in answer.locks],
        }

    # ---- schedules ----

    async def create_schedule(self, rest: Rest) -> Answer:
        body = rest.body()
        refuse_fields(body, "timezone")  # docs/grpc.md: a CRON_TZ= prefix of the cron instead
        description = body.get("description")
        if description is None:  # D2: the deprecated `desc` spelling, as the route reads it
            description = body.get("desc")
        request = schedule_pb2.CreateScheduleRequest(
            id=string("id", body.get("id")),
            description=string("description", description),
            cron=string("cron", body.get("cron")),
            tags=string_map("tags", body.get("tags")),
            promiseId=string("promiseId", body.get("promiseId")),
            promiseTimeout=integer("promiseTimeout", body.get("promiseTimeout")),
            promiseParam=value_message("promiseParam", body.get("promiseParam")),
            promiseTags=string_map("promiseTags", body.get("promiseTags")),
            idempotencyKey=rest.header("idempotency-key"),
        )
        answer = await self.schedules.CreateSchedule(request, metadata=rest.metadata())
        return (200 if answer.noop else 201), schedule_json(answer.schedule)

    async def read_schedule(self, rest: Rest) -> Answer:
        request = schedule_pb2.ReadScheduleRequest(id=rest.path_id())
        answer = await self.schedules.ReadSchedule(request, metadata=rest.metadata())
        return 200, schedule_json(answer.schedule)

    async def delete_schedule(self, rest: Rest) -> Answer:
        request = schedule_pb2.DeleteScheduleRequest(id=rest.path_id())
        await self.schedules.DeleteSchedule(request, metadata=rest.metadata())
        return 204, None

    async def search_schedules(self, rest: Rest) -> Answer:
        request = schedule_pb2.SearchSchedulesRequest(
            id=rest.param("id"),
            tags=rest.tag_filters(),
            limit=rest.limit(),
            cursor=rest.cursor(),
        )
        answer = await self.schedules.SearchSchedules(request, metadata=rest.metadata())
        return 200, {
            "cursor": page_cursor(answer.cursor),
            "schedules": [schedule_json(s) for s in answer.schedules],
        }


# ---- the in-process server, over gRPC ------------------------------------------------------------


class SyncGrpcTransport(httpx.BaseTransport):
    """GrpcTransport for a blocking ``httpx.Client``: the calls run on an event loop of its
    own, in a thread."""

    def __init__(self, target: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.inner: GrpcTransport = self._run(self._open(target))

    @staticmethod
    async def _open(target: str) -> GrpcTransport:
        return GrpcTransport(target)

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(60)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()  # the body, for the async transport's aread()
        return self._run(self.inner.handle_async_request(request))

    def close(self) -> None:
        try:
            self._run(self.inner.aclose())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()


class GrpcLiveServer(LiveServer):
    """tests/support/live.py's LiveServer with its gRPC listener on (the last flag wins) and
    ``client`` an ``httpx.AsyncClient`` whose requests go over gRPC."""

    def __init__(self, db_path: Any, *extra_args: str) -> None:
        grpc_args = ("--api-grpc-enable", "--api-grpc-addr", "127.0.0.1:0")
        super().__init__(db_path, *extra_args, *grpc_args)

    async def start(self) -> None:
        await super().start()
        assert self.http is not None and self.server.grpc is not None
        await self.http.aclose()
        transport = GrpcTransport(f"127.0.0.1:{self.server.grpc.port}")
        self.http = httpx.AsyncClient(base_url=self.server.api_url, transport=transport, timeout=30)


@asynccontextmanager
async def grpc_live(
    tmp_path: Path, store_kind: str, *extra_args: str, clock_ms: int | None = None
) -> AsyncIterator[GrpcLiveServer]:
    """tests/conftest.py's ``live`` over gRPC: a GrpcLiveServer on the store (a fresh schema
    for PostgreSQL), its clock at ``clock_ms`` when given."""
    async with live_server(
        tmp_path, store_kind, *extra_args, kind=GrpcLiveServer, clock_ms=clock_ms
    ) as server:
        yield server
