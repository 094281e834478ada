"""The aiohttp application of the API listener: routes from the table, one middleware that
maps errors, counts requests and enforces draining."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from functools import partial
from typing import Any, cast

from aiohttp import web
from aiohttp.typedefs import Handler as AiohttpHandler
from aiohttp.web_urldispatcher import AbstractRoute, Resource

from resonate import __version__
from resonate.core.errors import Code, ResonateError
from resonate.server.http.auth import PRINCIPAL
from resonate.server.http.cors import Cors
from resonate.server.http.lane import Lane
from resonate.server.http.openapi import build_document
from resonate.server.http.protocol import (
    BODY_LIMITS,
    BodyLimits,
    LaneRequest,
    ServerClosing,
    assign_request_id,
    check_header,
    error_response,
    log_access,
    route_not_found,
)
from resonate.server.http.routes import ROUTES, Context
from resonate.server.metrics import Cell, LoopHistogram, Metrics

log = logging.getLogger("resonate.http")

CONTEXT_KEY = web.AppKey("context", Context)
LANE = web.AppKey("lane", Lane)
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
    """Per-request metric updates (``Metrics.requests``). The series a request touches are
    looked up once per distinct (method, route template, status, operation, code) and kept:
    a request then costs one dict lookup before the updates themselves."""

    def __init__(self, metrics: Metrics) -> None:
        self.series = metrics.requests
        self._updates: dict[tuple[str, str, int, str | None, int], _Updates] = {}

    def in_flight(self, operation: str) -> Cell:
        return self.series.in_flight(operation, "http")

    def observe(
        self,
        method: str,
        template: str,
        status: int,
        operation: str | None,
        code: int,
        seconds: float,
    ) -> None:
        key = (method, template, status, operation, code)
        updates = self._updates.get(key)
        if updates is None:
            updates = self._build(key)
            if template != UNMATCHED:  # a matched route has few methods; any path is unmatched
                self._updates[key] = updates
        http_count, http_latency, api_count, api_latency = updates
        http_count[0] += 1
        if http_latency is not None:
            http_latency.observe(seconds)
        if api_count is not None and api_latency is not None:
            api_count[0] += 1
            api_latency.observe(seconds)

    def _build(self, key: tuple[str, str, int, str | None, int]) -> _Updates:
        method, template, status, operation, code = key
        series = self.series
        http_count = series.http_count(method, template, str(status))
        http_latency = None
        if template not in STREAMS:  # a stream's duration says nothing about latency
            http_latency = series.http_latency(method, template)
        if operation is None:
            return http_count, http_latency, None, None
        api_count = series.api_count(operation, "http", str(code))
        return http_count, http_latency, api_count, series.api_latency(operation, "http")


_Updates = tuple[Cell, LoopHistogram | None, Cell | None, LoopHistogram | None]


@dataclass(frozen=True, slots=True)
class _RouteInfo:
    """What the middleware needs of a matched route, worked out once per route."""

    template: str
    operation: str | None
    in_flight: Cell | None  # the operation's in-flight gauge, or None
    headers: tuple[str, ...]  # the headers the route reads, checked before its handler


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
    lane: bool = True,
) -> web.Application:
    """The API's application; with ``lane``, also the lane that serves its plain requests
    without aiohttp's request pipeline (``app[LANE]``, for the listener's runner)."""
    cors = Cors(cors_allow_origins)
    recorder = RequestMetrics(metrics) if metrics is not None else None
    open_paths = frozenset(route.path for route in ROUTES if not route.authenticated)
    authenticator = ctx.authenticator
    # The headers each route reads: all are checked (valid UTF-8, no NUL, at most 1024 bytes)
    # before the handler runs, so that no store ever sees one that is not (§1.3, §1.4).
    route_headers = {
        route.operation: tuple(p.name for p in route.params if p.location == "header")
        for route in ROUTES
    }
    # Per matched route (a fixed set, the table's): its template, operation, in-flight gauge
    # and headers, worked out on its first request. Unmatched requests (404, 405) get a fresh
    # system route each time: those are worked out every time and not kept.
    route_infos: dict[AbstractRoute, _RouteInfo] = {}
    route_operations: dict[AbstractRoute, str] = {}  # filled as the routes are added, below

    def info_of(route: AbstractRoute) -> _RouteInfo:
        return route_infos.get(route) or route_info(route)

    def route_info(route: AbstractRoute) -> _RouteInfo:
        resource = route.resource
        template = resource.canonical if resource is not None else UNMATCHED
        operation = route_operations.get(route)
        in_flight = recorder.in_flight(operation) if recorder and operation else None
        info = _RouteInfo(template, operation, in_flight, route_headers.get(operation or "", ()))
        if resource is not None:
            route_infos[route] = info
        return info

    async def serve(
        request: web.Request, info: _RouteInfo, handler: AiohttpHandler
    ) -> web.StreamResponse:
        """One request, whichever path brought it (aiohttp's router or the lane): draining,
        authentication, header checks, the handler, error answers, the echoed headers, the
        metrics and the access line."""
        started = time.perf_counter()
        rid = assign_request_id(request)
        template = info.template
        operation = info.operation
        in_flight = info.in_flight
        if in_flight is not None:
            in_flight[0] += 1
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
            request_headers = request.headers
            for name in info.headers:
                value = request_headers.get(name)
                if value is not None:
                    check_header(name, value)
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
                in_flight[0] -= 1
        response_headers = response.headers
        response_headers["Resonate-Version"] = __version__
        if not response.prepared:
            # The echo (§1.4). Set here rather than by an on_response_prepare receiver, whose
            # signal costs a coroutine per request; a stream, prepared by its handler, carries
            # its own, and so do the answers no middleware sees (ConnectionHandler).
            response_headers["Request-Id"] = rid
        if ctx.shutting_down:
            response.force_close()  # let the drain finish instead of waiting on keep-alives
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

    async def serve_in_lane(request: LaneRequest, route: AbstractRoute) -> web.StreamResponse:
        # Duck-typed: the lane's request has what handlers and serve() use of web.Request
        # (protocol.LaneRequest); tests/server/test_lane.py runs every route both ways.
        return await serve(cast(web.Request, request), info_of(route), route.handler)

    @web.middleware
    async def middleware(request: web.Request, handler: AiohttpHandler) -> web.StreamResponse:
        response = await serve(request, info_of(request.match_info.route), handler)
        content = request.content
        if ctx.shutting_down and not content.is_eof() and content.exception() is None:
            # Refused while draining before its body was read: aiohttp would otherwise linger
            # up to 10 s reading the rest; the connection closes after the 503 instead.
            content.set_exception(ServerClosing("the server is shutting down"))
        if content.exception() is not None and not response.prepared:
            response.force_close()  # the body stream broke: the connection closes after this
        return response

    app = web.Application(middlewares=[middleware], client_max_size=max_body_size)
    cors.install(app)
    app[CONTEXT_KEY] = ctx
    app[BODY_LIMITS] = BodyLimits(max_body_size, header_timeout_ms / 1000)
    ctx.openapi_document = build_document(ROUTES)
    # Consecutive routes of one path (GET and PATCH /promises/{id}, GET and POST /promises)
    # share one resource: the router tries the resources of a path prefix one by one, so a
    # PATCH /promises/{id} tries two instead of four. The table's order is kept, and with it
    # which route matches first.
    resource: Resource | None = None
    previous = ""
    for spec in ROUTES:
        if resource is None or spec.aiohttp_path != previous:
            resource = app.router.add_resource(spec.aiohttp_path)
            previous = spec.aiohttp_path
        route = resource.add_route(spec.method, partial(spec.handler, ctx))
        route_operations[route] = spec.operation
    if lane:
        app[LANE] = Lane(
            app.router.resources(),
            lambda route: route.resource is None or route.resource.canonical not in STREAMS,
            serve_in_lane,
            cors=cors.enabled,
            served_count=metrics.requests.lane_requests if metrics is not None else None,
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


__all__ = ["CONTEXT_KEY", "LANE", "create_api_app", "create_metrics_app"]
