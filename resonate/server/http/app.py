"""The aiohttp application of the API listener: routes from the table, one middleware that
maps errors, counts requests and enforces draining."""

from __future__ import annotations

import asyncio
import logging
import time
from functools import partial
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler as AiohttpHandler

from resonate import __version__
from resonate.core.errors import Code, ResonateError
from resonate.server.http.auth import PRINCIPAL
from resonate.server.http.cors import Cors
from resonate.server.http.openapi import build_document
from resonate.server.http.protocol import (
    BODY_LIMITS,
    BodyLimits,
    echo_request_id,
    error_response,
    header,
    log_access,
    request_id,
    route_not_found,
)
from resonate.server.http.routes import ROUTES, Context
from resonate.server.metrics import Metrics

log = logging.getLogger("resonate.http")

CONTEXT_KEY = web.AppKey("context", Context)
UNMATCHED = "<unmatched>"
ALWAYS_SERVED = frozenset({"/healthz", "/health"})
STREAMS = frozenset({"/poll/{path}"})


def _as_error(exc: web.HTTPException) -> tuple[ResonateError, dict[str, str]]:
    if isinstance(exc, web.HTTPMethodNotAllowed):
        allow = ", ".join(sorted(exc.allowed_methods))
        return ResonateError(Code.METHOD_NOT_ALLOWED, "method not allowed on this route"), {
            "Allow": allow
        }
    if isinstance(exc, web.HTTPNotFound):
        return route_not_found(), {}
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return ResonateError(Code.PAYLOAD_TOO_LARGE, "the request body is too large"), {}
    if exc.status >= 500:
        return ResonateError(Code.INTERNAL_ERROR, exc.reason), {}
    return ResonateError(Code.INVALID_REQUEST, exc.reason), {}


class _Preflight(Exception):
    """An allowed CORS preflight: answered 204 without auth or routing."""


class RequestMetrics:
    """Per-request metric updates, through the registry's cached label children."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def in_flight(self, operation: str) -> Any:
        return self.metrics.child(self.metrics.api_in_flight, operation, "http")

    def observe(
        self,
        method: str,
        template: str,
        status: int,
        operation: str | None,
        code: int,
        seconds: float,
    ) -> None:
        metrics = self.metrics
        metrics.child(metrics.http_requests, method, template, str(status)).inc()
        if template not in STREAMS:  # a stream's duration says nothing about latency
            metrics.child(metrics.http_duration, method, template).observe(seconds)
        if operation is None:
            return
        metrics.child(metrics.api_requests, operation, "http", str(code)).inc()
        metrics.child(metrics.api_duration, operation, "http").observe(seconds)


def _error_level(code: Code) -> int:
    """The level of a 5xx answer's line: a fault (500, store error) is an ERROR, a drain is
    expected (INFO), anything else unavailable is a WARNING."""
    if code in (Code.INTERNAL_ERROR, Code.STORE_ERROR):
        return logging.ERROR
    if code is Code.SHUTTING_DOWN:
        return logging.INFO
    return logging.WARNING


def _cause_info(error: BaseException) -> Any:
    cause = error.__cause__
    return (type(cause), cause, cause.__traceback__) if cause is not None else None


def create_api_app(
    ctx: Context,
    *,
    max_body_size: int,
    metrics: Metrics | None,
    header_timeout_ms: int = 10_000,
    error_docs_url: str = "",
    cors_allow_origins: tuple[str, ...] = (),
) -> web.Application:
    cors = Cors(cors_allow_origins)
    recorder = RequestMetrics(metrics) if metrics is not None else None
    operations = {route.operation for route in ROUTES}
    open_paths = frozenset(route.path for route in ROUTES if not route.authenticated)
    authenticator = ctx.authenticator
    # The headers each route reads: all are checked (valid UTF-8, no NUL, at most 1024 bytes)
    # before the handler runs, so that no store ever sees one that is not (§1.3, §1.4).
    route_headers = {
        route.operation: tuple(p.name for p in route.params if p.location == "header")
        for route in ROUTES
    }

    @web.middleware
    async def middleware(request: web.Request, handler: AiohttpHandler) -> web.StreamResponse:
        started = time.perf_counter()
        rid = request_id(request)
        route = request.match_info.route
        resource = route.resource
        template = resource.canonical if resource is not None else UNMATCHED
        operation = route.name if route.name in operations else None
        in_flight = recorder.in_flight(operation) if recorder and operation else None
        if in_flight is not None:
            in_flight.inc()
        code: int
        response: web.StreamResponse
        level = logging.DEBUG
        detail: str | None = None
        exc_info: Any = None
        try:
            if cors.enabled and cors.is_preflight(request):
                # Before draining, auth and routing: a preflight carries no credentials.
                raise _Preflight
            if (
                ctx.shutting_down
                and request.path not in ALWAYS_SERVED
                and template not in STREAMS  # streams get 200 and end at once (§12)
            ):
                raise ResonateError(Code.SHUTTING_DOWN, "the server is shutting down")
            if request.path not in open_paths:
                # Who the request acts for; handlers authorise the ids it names (§9).
                credentials = request.headers.get("Authorization")
                request[PRINCIPAL] = authenticator.authenticate(credentials)
            for name in route_headers.get(route.name or "", ()):
                header(request, name)
            if (request.content_length or 0) > max_body_size:
                # D13: refused before routing, also on routes that never read a body.
                raise ResonateError(Code.PAYLOAD_TOO_LARGE, "the request body is too large")
            response = await handler(request)
            code = response.status * 100
        except _Preflight:
            response = cors.preflight()
            code = response.status * 100
        except ResonateError as error:
            challenge = authenticator.challenge if error.code is Code.UNAUTHORIZED else None
            server_error = error.code.http_status >= 500
            if server_error:
                level, detail = _error_level(error.code), error.describe()
                # A fault gets its traceback; an outage (503) is described on its one line.
                exc_info = _cause_info(error) if level >= logging.ERROR else None
            response = error_response(
                error, challenge, rid if server_error else None, error_docs_url
            )
            code = int(error.code)
        except web.HTTPException as exc:
            mapped, headers = _as_error(exc)
            server_error = exc.status >= 500
            if server_error:
                level, detail = logging.ERROR, mapped.describe()
            response = error_response(
                mapped, headers, rid if server_error else None, error_docs_url
            )
            code = int(mapped.code)
        except asyncio.CancelledError:
            # The drain's limit (api.http.timeout) passed: no answer goes out; name the request.
            log_access(
                request,
                rid,
                499,
                time.perf_counter() - started,
                level=logging.WARNING,
                detail="cancelled at shutdown: the drain limit api.http.timeout passed",
            )
            raise
        except Exception as exc:
            level, detail = logging.ERROR, "unhandled error"
            exc_info = (type(exc), exc, exc.__traceback__)
            response = error_response(
                ResonateError(Code.INTERNAL_ERROR, "internal error"), None, rid
            )
            code = int(Code.INTERNAL_ERROR)
        finally:
            if in_flight is not None:
                in_flight.dec()
        response.headers["Resonate-Version"] = __version__
        if ctx.shutting_down:
            response.force_close()  # let the drain finish instead of waiting on keep-alives
        elif request.content.exception() is not None and not response.prepared:
            response.force_close()  # the body stream broke: the connection closes after this
        if detail is None and response.status >= 500 and response.status != 500:
            # A 5xx a handler answered itself (the 2026 envelope's 503: store unavailable or
            # draining) is logged here; a 500 is logged with its cause where it is made.
            level = logging.INFO if ctx.shutting_down else logging.WARNING
            detail = "answered by the handler"
        seconds = time.perf_counter() - started
        if recorder is not None:
            recorder.observe(request.method, template, response.status, operation, code, seconds)
        log_access(
            request, rid, response.status, seconds, level=level, detail=detail, exc_info=exc_info
        )
        return response

    app = web.Application(middlewares=[middleware], client_max_size=max_body_size)
    app.on_response_prepare.append(echo_request_id)
    cors.install(app)
    app[CONTEXT_KEY] = ctx
    app[BODY_LIMITS] = BodyLimits(max_body_size, header_timeout_ms / 1000)
    ctx.openapi_document = build_document(ROUTES)
    for spec in ROUTES:
        app.router.add_route(
            spec.method, spec.aiohttp_path, partial(spec.handler, ctx), name=spec.operation
        )
    return app


def create_metrics_app(metrics: Metrics) -> web.Application:
    async def handle(request: web.Request) -> web.Response:
        return web.Response(
            body=metrics.render(),
            headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"},
        )

    app = web.Application()
    app.router.add_get("/metrics", handle)
    return app


__all__ = ["CONTEXT_KEY", "create_api_app", "create_metrics_app"]
