"""The HTTP half of the benchmark baselines (baseline_sqlite.py, baseline_postgres.py): request
parsing and validation, response bodies and the aiohttp app, written once so that the two
baselines differ only in their storage. Not part of the `resonate` package: the baselines
stand for "a bare design" and share no code with our server.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

STATES = {
    1: "PENDING",
    2: "RESOLVED",
    4: "REJECTED",
    8: "REJECTED_CANCELED",
    16: "REJECTED_TIMEDOUT",
}
COMPLETIONS = {"RESOLVED": 2, "REJECTED": 4, "REJECTED_CANCELED": 8}
INT64 = 2**63
# The columns every promise row comes in (a RETURNING clause, a SELECT, a new promise).
COLUMNS = (
    "id, state, param_headers, param_data, value_headers, value_data, timeout,"
    " idempotency_key_for_create, idempotency_key_for_complete, tags, created_on, completed_on"
)


class BadRequest(Exception):
    pass


def decode_value(value: Any) -> tuple[str | None, bytes | None]:
    if value is None:
        return None, None
    if not isinstance(value, dict):
        raise BadRequest("value must be an object")
    headers, data = value.get("headers"), value.get("data")
    if headers is not None and (
        not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values())
    ):
        raise BadRequest("headers must map strings to strings")
    if data is not None and not isinstance(data, str):
        raise BadRequest("data must be a base64 string")
    try:
        raw = base64.b64decode(data, validate=True) if data else None
    except binascii.Error as error:
        raise BadRequest("data is not valid base64") from error
    return (json.dumps(headers) if headers else None), raw


def encode_value(headers: str | None, data: bytes | None) -> dict[str, Any]:
    value: dict[str, Any] = {}
    if headers:
        value["headers"] = json.loads(headers)
    if data:
        value["data"] = base64.b64encode(data).decode()
    return value


def promise_json(row: Any) -> dict[str, Any]:
    """A promise from a row in COLUMNS order (a Record or a tuple)."""
    promise = {
        "id": row[0],
        "state": STATES[row[1]],
        "param": encode_value(row[2], row[3]),
        "value": encode_value(row[4], row[5]),
        "timeout": row[6],
        "createdOn": row[10],
    }
    for key, item in (
        ("idempotencyKeyForCreate", row[7]),
        ("idempotencyKeyForComplete", row[8]),
        ("completedOn", row[11]),
    ):
        if item is not None:
            promise[key] = item
    if row[9]:
        promise["tags"] = json.loads(row[9])
    return promise


def respond(status: int, body: dict[str, Any]) -> web.Response:
    text = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    return web.Response(status=status, text=text, content_type="application/json")


def error(status: int, code: int, message: str, cause: str = "") -> web.Response:
    detail = {"@type": "RequestError", "message": cause or message, "domain": "request"}
    return respond(status, {"error": {"code": code, "message": message, "details": [detail]}})


def invalid(exc: BadRequest) -> web.Response:
    return error(400, 40000, "The request is invalid", str(exc))


def already_exists() -> web.Response:
    return error(409, 40900, "The specified promise already exists")


def not_completed_here(stored_state: int | None) -> web.Response:
    """The answer to a completion whose guarded update changed nothing: 404 for no promise,
    else 403 naming the state it had already reached."""
    if stored_state is None:
        return error(404, 40400, "The specified promise was not found")
    code = 40300 + {2: 1, 4: 2, 8: 3, 16: 4}[stored_state]
    return error(403, code, "The promise is completed")


async def read_object(request: web.Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.read())
    except ValueError as exc:
        raise BadRequest("body is not JSON") from exc
    if not isinstance(body, dict):
        raise BadRequest("body is not an object")
    return body


@dataclass(frozen=True, slots=True)
class NewPromise:
    """A valid `POST /promises`, as the INSERT takes it."""

    id: str
    param_headers: str | None
    param_data: bytes | None
    timeout: int
    idempotency_key: str | None
    tags_json: str | None
    created_on: int

    @property
    def insert_args(self) -> tuple[Any, ...]:
        return (
            self.id,
            self.param_headers,
            self.param_data,
            self.timeout,
            self.idempotency_key,
            self.tags_json,
            self.created_on,
        )

    def created(self) -> web.Response:
        row = (self.id, 1, self.param_headers, self.param_data, None, None, self.timeout)
        keys_and_tags = (self.idempotency_key, None, self.tags_json)
        return respond(201, promise_json((*row, *keys_and_tags, self.created_on, None)))


async def parse_create(request: web.Request) -> NewPromise:
    body = await read_object(request)
    promise_id, timeout = body.get("id"), body.get("timeout")
    timeout = 0 if timeout is None else timeout
    if not isinstance(promise_id, str) or not 0 < len(promise_id.encode()) <= 1024:
        raise BadRequest("The field id is required.")
    if "\x00" in promise_id:
        raise BadRequest("The field id must not contain U+0000.")
    if type(timeout) is not int or not -INT64 <= timeout < INT64:
        raise BadRequest("The field timeout must be an int64.")
    param_headers, param_data = decode_value(body.get("param"))
    tags = body.get("tags") or None
    if tags is not None and (
        not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values())
    ):
        raise BadRequest("The field tags must map strings to strings.")
    return NewPromise(
        promise_id,
        param_headers,
        param_data,
        timeout,
        request.headers.get("idempotency-key") or None,
        json.dumps(tags) if tags else None,
        int(time.time() * 1000),
    )


@dataclass(frozen=True, slots=True)
class Completion:
    """A valid `PATCH /promises/{id}`, as the guarded UPDATE takes it."""

    id: str
    state: int
    value_headers: str | None
    value_data: bytes | None
    idempotency_key: str | None
    completed_on: int

    @property
    def update_args(self) -> tuple[Any, ...]:
        return (
            self.state,
            self.value_headers,
            self.value_data,
            self.idempotency_key,
            self.completed_on,
            self.id,
        )


async def parse_complete(request: web.Request) -> Completion:
    body = await read_object(request)
    state = COMPLETIONS.get(str(body.get("state")).upper())
    if state is None:
        raise BadRequest("The field state must be one of resolved, rejected, rejected_canceled.")
    value_headers, value_data = decode_value(body.get("value"))
    return Completion(
        request.match_info["id"],
        state,
        value_headers,
        value_data,
        request.headers.get("idempotency-key") or None,
        int(time.time() * 1000),
    )


async def healthz(request: web.Request) -> web.Response:
    return respond(200, {"status": "ok"})


Handler = Callable[[web.Request], Awaitable[web.Response]]


LOOPS = ("asyncio", "uvloop")  # --loop: the event loop, as ours is given with its uvloop option


def new_event_loop(name: str) -> asyncio.AbstractEventLoop:
    """A fresh event loop of ``name`` (one of LOOPS): asyncio's own, or uvloop's."""
    if name == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def run(
    host: str,
    port: int,
    create: Handler,
    complete: Handler,
    storage: Callable[[web.Application], AsyncIterator[None]],
    loop: str = "asyncio",
) -> None:
    """Serve the three routes the benchmark drives, with ``storage`` opened for the app's
    lifetime, on the event loop named ``loop``."""
    app = web.Application(client_max_size=10 * 2**20)
    app.cleanup_ctx.append(storage)
    app.router.add_post("/promises", create)
    app.router.add_patch("/promises/{id:.*}", complete)
    app.router.add_get("/healthz", healthz)
    event_loop = new_event_loop(loop)
    web.run_app(app, host=host, port=port, access_log=None, print=None, loop=event_loop)
