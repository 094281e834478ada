"""The aiohttp application of the API listener: routes from the table, one middleware that
maps errors, counts requests and enforces draining."""

from __future__ import annotations

import logging
import time
import uuid

from aiohttp import web
from aiohttp.typedefs import Handler as AiohttpHandler

from resonate import __version__
from resonate.core.errors import Code, ResonateError
from resonate.server.http.openapi import build_document
from resonate.server.http.protocol import error_response, route_not_found
from resonate.server.http.routes import ROUTES, Context, Route
from resonate.server.metrics import Metrics

log = logging.getLogger("resonate.http")

CONTEXT_KEY = web.AppKey("context", Context)
UNMATCHED = "<unmatched>"
ALWAYS_SERVED = frozenset({"/healthz"})


def _route_handler(ctx: Context, metrics: Metrics | None, route: Route) -> AiohttpHandler:
    async def handle(request: web.Request) -> web.StreamResponse:
        if metrics is None:
            return await route.handler(ctx, request)
        in_flight = metrics.api_in_flight.labels(route.operation, "http")
        in_flight.inc()
        started = time.perf_counter()
        code = Code.INTERNAL_ERROR
        try:
            response = await route.handler(ctx, request)
            code = Code(response.status * 100)
            return response
        except ResonateError as error:
            code = error.code
            raise
        finally:
            in_flight.dec()
            metrics.api_requests.labels(route.operation, "http", str(int(code))).inc()
            metrics.api_duration.labels(route.operation, "http").observe(
                time.perf_counter() - started
            )

    return handle


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


def create_api_app(ctx: Context, *, max_body_size: int, metrics: Metrics | None) -> web.Application:
    @web.middleware
    async def middleware(request: web.Request, handler: AiohttpHandler) -> web.StreamResponse:
        started = time.perf_counter()
        resource = request.match_info.route.resource
        template = resource.canonical if resource is not None else UNMATCHED
        response: web.StreamResponse
        try:
            if ctx.shutting_down and request.path not in ALWAYS_SERVED:
                raise ResonateError(Code.SHUTTING_DOWN, "the server is shutting down")
            response = await handler(request)
        except ResonateError as error:
            response = error_response(error)
        except web.HTTPException as exc:
            error, headers = _as_error(exc)
            response = error_response(error, headers)
        except Exception as exc:
            request_id = request.headers.get("request-id") or str(uuid.uuid4())
            log.exception("unhandled error (request-id %s)", request_id)
            response = error_response(
                ResonateError(Code.INTERNAL_ERROR, f"internal error ({type(exc).__name__})")
            )
        if metrics is not None:
            metrics.http_requests.labels(request.method, template, str(response.status)).inc()
            metrics.http_duration.labels(request.method, template).observe(
                time.perf_counter() - started
            )
        return response

    async def add_version(request: web.Request, response: web.StreamResponse) -> None:
        response.headers["Resonate-Version"] = __version__

    app = web.Application(middlewares=[middleware], client_max_size=max_body_size)
    app[CONTEXT_KEY] = ctx
    ctx.extra["openapi"] = build_document(ROUTES)
    for route in ROUTES:
        app.router.add_route(
            route.method, route.aiohttp_path, _route_handler(ctx, metrics, route),
            name=route.operation,
        )
    app.on_response_prepare.append(add_version)
    return app


def create_metrics_app(metrics: Metrics) -> web.Application:
    async def handle(request: web.Request) -> web.Response:
        return web.Response(body=metrics.render(),
                            headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})

    app = web.Application()
    app.router.add_get("/metrics", handle)
    return app


__all__ = ["CONTEXT_KEY", "create_api_app", "create_metrics_app"]
