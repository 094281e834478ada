"""CORS for the API and poll listeners (``api.http.cors.allowOrigins``,
``aio.poll.cors.allowOrigins``; docs/server.md, "CORS").

Off when the list is empty: no CORS header is sent and ``OPTIONS`` is answered like any other
method a route does not serve (405). With ``*`` in the list any origin is allowed and answered
``Access-Control-Allow-Origin: *``; otherwise an allowed ``Origin`` is echoed with
``Vary: Origin`` and other origins get no CORS header. A preflight (``OPTIONS`` with
``Access-Control-Request-Method``) from an allowed origin is answered 204 before auth and
routing.
"""

from __future__ import annotations

from collections.abc import Iterable

from aiohttp import hdrs, web

ALLOW_METHODS = "GET, POST, PUT, PATCH, DELETE, OPTIONS"
ALLOW_HEADERS = (
    "Origin, Content-Length, Content-Type, Authorization, Idempotency-Key, Strict, "
    "Request-Id, Task-Id, Task-Counter, Traceparent, Tracestate"
)
EXPOSE_HEADERS = "Resonate-Version, Request-Id"
MAX_AGE = "43200"  # 12 hours


class Cors:
    """The CORS policy of one listener."""

    def __init__(self, allow_origins: Iterable[str]) -> None:
        origins = tuple(allow_origins)
        self.enabled = bool(origins)
        self.any_origin = "*" in origins
        self.origins = frozenset(origins)

    def allow_origin(self, request: web.BaseRequest) -> str | None:
        """The ``Access-Control-Allow-Origin`` value for this request, or None for none."""
        if not self.enabled:
            return None
        if self.any_origin:
            return "*"
        origin = request.headers.get(hdrs.ORIGIN)
        return origin if origin is not None and origin in self.origins else None

    def is_preflight(self, request: web.BaseRequest) -> bool:
        """An allowed preflight: answered 204 by :meth:`preflight` before auth and routing."""
        return (
            request.method == hdrs.METH_OPTIONS
            and hdrs.ACCESS_CONTROL_REQUEST_METHOD in request.headers
            and hdrs.ORIGIN in request.headers
            and self.allow_origin(request) is not None
        )

    @staticmethod
    def preflight() -> web.Response:
        return web.Response(
            status=204,
            headers={
                hdrs.ACCESS_CONTROL_ALLOW_METHODS: ALLOW_METHODS,
                hdrs.ACCESS_CONTROL_ALLOW_HEADERS: ALLOW_HEADERS,
                hdrs.ACCESS_CONTROL_MAX_AGE: MAX_AGE,
            },
        )

    async def on_response_prepare(self, request: web.Request, response: web.StreamResponse) -> None:
        """Adds the origin headers to every response, streams included, before it is sent."""
        value = self.allow_origin(request)
        if value is None:
            return
        headers = response.headers
        headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = value
        if value != "*":
            vary = headers.get(hdrs.VARY)
            if vary is None:
                headers[hdrs.VARY] = "Origin"
            elif "origin" not in {part.strip().lower() for part in vary.split(",")}:
                headers[hdrs.VARY] = f"{vary}, Origin"
        if response.status != 204 or request.method != hdrs.METH_OPTIONS:
            headers[hdrs.ACCESS_CONTROL_EXPOSE_HEADERS] = EXPOSE_HEADERS

    def install(self, app: web.Application) -> None:
        if self.enabled:
            app.on_response_prepare.append(self.on_response_prepare)


__all__ = ["Cors"]
