"""`POST /`: the one endpoint of the 2026-04-01 protocol, dispatching by ``kind``.

The tables below name every kind of the protocol (protocol-2026.md §3): those served and the
debug kinds (403 outside debug mode). A kind in neither is unknown (400).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from resonate.core.errors import ResonateError
from resonate.server.envelope import debug, promises, schedules, tasks
from resonate.server.envelope.auth import authorize_kind
from resonate.server.envelope.protocol import (
    Echo,
    EnvelopeError,
    Request,
    Unparsable,
    check_data,
    check_version,
    from_resonate_error,
    parse,
    reply,
)
from resonate.server.http.protocol import read_body, request_id

if TYPE_CHECKING:
    from resonate.server.http.routes import Context

log = logging.getLogger("resonate.envelope")

Kind = Callable[["Context", dict[str, Any]], Awaitable[dict[str, Any]]]

SERVED: dict[str, Kind] = {
    "promise.get": promises.get,
    "promise.create": promises.create,
    "promise.settle": promises.settle,
    "promise.register_callback": promises.register_callback,
    "promise.register_listener": promises.register_listener,
    "promise.search": promises.search,
    "task.create": tasks.create,
    "task.acquire": tasks.acquire,
    "task.release": tasks.release,
    "task.fulfill": tasks.fulfill,
    "task.suspend": tasks.suspend,
    "task.heartbeat": tasks.heartbeat,
    "task.get": tasks.get,
    "task.search": tasks.search,
    "task.halt": tasks.halt,
    "task.continue": tasks.resume,
    "schedule.create": schedules.create,
    "schedule.get": schedules.get,
    "schedule.delete": schedules.delete,
    "schedule.search": schedules.search,
}

# Test-only kinds of upstream's differential tests (§3.4): served only in debug mode (P7).
DEBUG_KINDS: dict[str, Kind] = {
    "debug.start": debug.start,
    "debug.stop": debug.stop,
    "debug.reset": debug.reset,
    "debug.snap": debug.snap,
    "debug.tick": debug.tick,
}


async def _serve(ctx: Context, request: web.Request, envelope: Request) -> dict[str, Any]:
    """The success data of a parsed request; raises EnvelopeError or ResonateError."""
    # Auth (P6): the token of head.auth, else the Authorization header (Bearer or Basic).
    principal = ctx.authenticator.authenticate(request.headers.get("Authorization"), envelope.auth)
    check_version(envelope.version)
    kind = envelope.kind
    if ctx.debug is not None and envelope.debug_time is not None:
        ctx.debug.set_time(envelope.debug_time)
    if kind in DEBUG_KINDS:
        data = check_data(envelope.data)
        authorize_kind(principal, kind, data)
        if ctx.debug is None:
            raise EnvelopeError(403, "Forbidden: debug operations need debug mode (resonate dev)")
        return await DEBUG_KINDS[kind](ctx, data)
    served = SERVED.get(kind)
    if served is None and kind != "task.fence":
        raise EnvelopeError(400, f"Unknown operation: {kind}")
    data = check_data(envelope.data)
    authorize_kind(principal, kind, data)
    if kind == "task.fence":
        return await tasks.fence(ctx, data, envelope.corr_id)
    assert served is not None
    return await served(ctx, data)


async def handle_envelope(ctx: Context, request: web.Request) -> web.Response:
    echo = Echo()
    try:
        envelope = parse(await read_body(request))
        echo = Echo(envelope.kind, envelope.corr_id)
        return reply(echo.kind, echo.corr_id, 200, await _serve(ctx, request, envelope))
    except tasks.Redirect as redirect:
        return reply(echo.kind, echo.corr_id, redirect.status, redirect.data)
    except Unparsable as unparsable:
        echo = unparsable.echo
        return reply(echo.kind, echo.corr_id, unparsable.status, unparsable.message)
    except (EnvelopeError, ResonateError) as caught:
        answer = caught if isinstance(caught, EnvelopeError) else from_resonate_error(caught)
        if answer.status == 500:  # 503 is a drain, expected and not logged (as REST)
            cause = caught.__cause__
            log.error(
                "%s %s answered %d (request id %s): %s",
                echo.kind,
                echo.corr_id,
                answer.status,
                request_id(request),
                caught,
                exc_info=(type(cause), cause, cause.__traceback__) if cause is not None else None,
            )
        return reply(echo.kind, echo.corr_id, answer.status, answer.message)
    except Exception:
        rid = request_id(request)
        log.exception("%s %s: unhandled error (request id %s)", echo.kind, echo.corr_id, rid)
        return reply(echo.kind, echo.corr_id, 500, f"Internal error: request id {rid}")
