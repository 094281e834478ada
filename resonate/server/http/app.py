"""The aiohttp application of the API listener: routes from the table, one middleware that
maps errors, counts requests and enforces draining."""

from __future__ import annotations

import logging
import time
import uuid
from functools import partial
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler as AiohttpHandler

from resonate import __version__
from resonate.core.errors import Code, ResonateError
from resonate.server.http.auth import BASIC_CHALLENGE, check_basic
from resonate.server.http.openapi import build_document
from resonate.server.http.protocol import error_response, route_not_found
from resonate.server.http.routes import ROUTES, Context
from resonate.server.metrics import Metrics

log = logging.getLogger("resonate.http")

CONTEXT_KEY = web.AppKey("context", Context)
UNMATCHED = "<unmatched>"
ALWAYS_SERVED = frozenset({"/healthz"})
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


def create_api_app(ctx: Context, *, max_body_size: int, metrics: Metrics | None) -> web.Application:
    recorder = RequestMetrics(metrics) if metrics is not None else None
    operations = {route.operation for route in ROUTES}
    open_paths = frozenset(route.path for route in ROUTES if not route.authenticated)

    @web.middleware
    async def middleware(request: web.Request, handler: AiohttpHandler) -> web.StreamResponse:
        started = time.perf_counter()
        route = request.match_info.route
        resource = route.resource
        template = resource.canonical if resource is not None else UNMATCHED
        operation = route.name if route.name in operations else None
        in_flight = recorder.in_flight(operation) if recorder and operation else None
        if in_flight is not None:
            in_flight.inc()
        code: int
        response: web.StreamResponse
        try:
            if (
                ctx.shutting_down
                and request.path not in ALWAYS_SERVED
                and template not in STREAMS  # streams get 200 and end at once (§12)
            ):
                raise ResonateError(Code.SHUTTING_DOWN, "the server is shutting down")
            if ctx.basic_auth and request.path not in open_paths:
                check_basic(request.headers.get("Authorization"), ctx.basic_auth)
            if (request.content_length or 0) > max_body_size:
                # D13: refused before routing, also on routes that never read a body.
                raise ResonateError(Code.PAYLOAD_TOO_LARGE, "the request body is too large")
            response = await handler(request)
            code = response.status * 100
        except ResonateError as error:
            challenge = BASIC_CHALLENGE if error.code is Code.UNAUTHORIZED else None
            response = error_response(error, challenge)
            code = int(error.code)
        except web.HTTPException as exc:
            mapped, headers = _as_error(exc)
            response = error_response(mapped, headers)
            code = int(mapped.code)
        except Exception as exc:
            request_id = request.headers.get("request-id") or str(uuid.uuid4())
            log.exception("unhandled error (request-id %s)", request_id)
            response = error_response(
                ResonateError(Code.INTERNAL_ERROR, f"internal error ({type(exc).__name__})")
            )
            code = int(Code.INTERNAL_ERROR)
        finally:
            if in_flight is not None:
                in_flight.dec()
        response.headers["Resonate-Version"] = __version__
        if ctx.shutting_down:
            response.force_close()  # let the drain finish instead of waiting on keep-alives
        if recorder is not None:
            recorder.observe(
                request.method,
                template,
                response.status,
                operation,
                code,
                time.perf_counter() - started,
            )
        return response

    app = web.Application(middlewares=[middleware], client_max_size=max_body_size)
    app[CONTEXT_KEY] = ctx
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
