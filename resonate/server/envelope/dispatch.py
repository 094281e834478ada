"""`POST /`: the one endpoint of the 2026-04-01 protocol, dispatching by ``kind``.

The table below names every kind of the protocol (protocol-2026.md §3): those served, and
those answered 501 until their family exists. A kind not in it is unknown (400).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from resonate.core.errors import ResonateError
from resonate.server.envelope import promises
from resonate.server.envelope.protocol import (
    Echo,
    EnvelopeError,
    Request,
    Unparsable,
    check_data,
    check_version,
    from_resonate_error,
    not_implemented,
    parse,
    reply,
)
from resonate.server.http.auth import check_basic
from resonate.server.http.protocol import read_body, request_id

if TYPE_CHECKING:
    from resonate.server.http.routes import Context

log = logging.getLogger("resonate.envelope")

Kind = Callable[["Context", dict[str, Any]], Awaitable[dict[str, Any]]]

SERVED: dict[str, Kind] = {
    "promise.get": promises.get,
    "promise.create": promises.create,
    "promise.settle": promises.settle,
    "promise.search": promises.search,
}

# Known kinds this server does not serve yet: 501 "Not implemented: <kind>".
NOT_IMPLEMENTED: frozenset[str] = frozenset(
    {
        "promise.register_callback",
        "promise.register_listener",
        "task.create",
        "task.acquire",
        "task.release",
        "task.fulfill",
        "task.suspend",
        "task.fence",
        "task.heartbeat",
        "task.get",
        "task.search",
        "task.halt",
        "task.continue",
        "schedule.create",
        "schedule.get",
        "schedule.delete",
        "schedule.search",
        "debug.start",
        "debug.stop",
        "debug.reset",
        "debug.snap",
        "debug.tick",
    }
)


async def _serve(ctx: Context, request: web.Request, envelope: Request) -> dict[str, Any]:
    """The success data of a parsed request; raises EnvelopeError or ResonateError."""
    if ctx.basic_auth:
        check_basic(request.headers.get("Authorization"), ctx.basic_auth)
    check_version(envelope.version)
    served = SERVED.get(envelope.kind)
    if served is None and envelope.kind not in NOT_IMPLEMENTED:
        raise EnvelopeError(400, f"Unknown operation: {envelope.kind}")
    data = check_data(envelope.data)
    if served is None:
        raise not_implemented(envelope.kind)
    return await served(ctx, data)


async def handle_envelope(ctx: Context, request: web.Request) -> web.Response:
    echo = Echo()
    try:
        envelope = parse(await read_body(request))
        echo = Echo(envelope.kind, envelope.corr_id)
        return reply(echo.kind, echo.corr_id, 200, await _serve(ctx, request, envelope))
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
