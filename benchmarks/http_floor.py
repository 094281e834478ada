"""The CPU an HTTP layer costs before any application code: two servers that answer the
benchmark's create and complete requests with a canned promise and store nothing.

- ``--layer aiohttp``: an aiohttp application (router, request and response objects, its
  writer), the layer the baselines and aiohttp's half of our server use;
- ``--layer protocol``: a bare ``asyncio.Protocol`` that frames requests by Content-Length and
  writes one answer per request, in a task per request (as the lane does: http/lane.py).

Both parse the JSON body and answer the id it names, so that the benchmark's preflight passes.
Drive either with the load driver of benchmarks/promises.py:

    python benchmarks/http_floor.py --layer aiohttp --port 8101 &
    python benchmarks/promises.py --only ours --server-url http://127.0.0.1:8101 \\
        --server-pid $! --duration 8

docs/performance.md ("The lane") has the figures: what is left between the two is the share
of a request's CPU that a leaner HTTP path can save.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any, cast

from aiohttp import web

LOOPS = ("asyncio", "uvloop")


def answer(method: str, path: str, body: bytes) -> tuple[int, bytes]:
    if method == "GET":
        return 200, b'{"status":"ok"}'
    data: dict[str, Any] = json.loads(body)
    if method == "POST":
        promise = {"id": data["id"], "state": "PENDING", "param": data.get("param") or {}}
        promise.update(value={}, timeout=data.get("timeout", 0), createdOn=1)
        return 201, json.dumps(promise).encode()
    promise = {"id": path.rsplit("/", 1)[-1], "state": data["state"], "param": {}}
    promise.update(value=data.get("value") or {}, timeout=0, createdOn=1, completedOn=2)
    return 201, json.dumps(promise).encode()


def aiohttp_app() -> web.Application:
    async def handle(request: web.Request) -> web.Response:
        status, body = answer(request.method, request.path, await request.read())
        return web.Response(status=status, body=body, content_type="application/json")

    app = web.Application()
    for method, path in (
        ("POST", "/promises"),
        ("PATCH", "/promises/{id:.*}"),
        ("GET", "/healthz"),
        ("GET", "/readyz"),
    ):
        app.router.add_route(method, path, handle)
    return app


class BareProtocol(asyncio.Protocol):
    """HTTP/1.1 with Content-Length bodies only: enough for the load driver, nothing more."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not derive from asyncio's classes: no isinstance check.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            head = bytes(self.buffer[:end]).decode("latin-1")
            lines = head.split("\r\n")
            method, path, _ = lines[0].split(" ")
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            if len(self.buffer) < end + 4 + length:
                return
            body = bytes(self.buffer[end + 4 : end + 4 + length])
            del self.buffer[: end + 4 + length]
            asyncio.get_running_loop().create_task(self.respond(method, path, body))

    async def respond(self, method: str, path: str, body: bytes) -> None:
        status, payload = answer(method, path, body)
        reason = "OK" if status == 200 else "Created"
        head = (
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\n\r\n"
        )
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(head.encode() + payload)


async def serve_protocol(host: str, port: int) -> None:
    server = await asyncio.get_running_loop().create_server(BareProtocol, host, port)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layer", choices=("aiohttp", "protocol"), required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8101)
    parser.add_argument("--loop", choices=LOOPS, default="uvloop", help="event loop")
    options = parser.parse_args()
    loop_factory = asyncio.new_event_loop
    if options.loop == "uvloop":
        import uvloop

        loop_factory = uvloop.new_event_loop
    if options.layer == "aiohttp":
        app = aiohttp_app()
        web.run_app(app, host=options.host, port=options.port, access_log=None, loop=loop_factory())
    else:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            runner.run(serve_protocol(options.host, options.port))


if __name__ == "__main__":
    main()
