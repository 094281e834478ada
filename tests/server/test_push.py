"""The http push transport (http-api.md §6, D8) against a local receiver on a real socket."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import orjson
import pytest
from aiohttp import web

from resonate.server.delivery.push import HttpPush
from tests.support.servers import eventually, free_port

MESSAGE = {
    "type": "invoke",
    "task": {"id": "__invoke:wf", "counter": 1},
    "href": {"base": "http://localhost:8001"},
}
HEAD = {
    "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    "tracestate": "a=1",
}


class Receiver:
    """A worker endpoint that records what it gets; some routes misbehave on purpose."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, str], bytes]] = []
        self.gate = asyncio.Event()  # holds /block and /hang until set
        self.in_flight = 0
        self.max_in_flight = 0
        self.url = ""
        app = web.Application()
        app.router.add_post("/ok", self.ok)
        app.router.add_post("/fail", self.fail)
        app.router.add_post("/redirect", self.redirect)
        app.router.add_post("/hang", self.block)
        app.router.add_post("/block", self.block)
        self.runner = web.AppRunner(app, shutdown_timeout=1)

    async def start(self) -> None:
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", 0).start()
        host, port = self.runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"

    async def stop(self) -> None:
        self.gate.set()
        await self.runner.cleanup()

    async def record(self, request: web.Request) -> None:
        self.received.append((request.path, dict(request.headers), await request.read()))

    async def ok(self, request: web.Request) -> web.Response:
        await self.record(request)
        return web.Response(status=202)

    async def fail(self, request: web.Request) -> web.Response:
        await self.record(request)
        return web.Response(status=500)

    async def redirect(self, request: web.Request) -> web.Response:
        await self.record(request)
        return web.Response(status=302, headers={"Location": "/ok"})

    async def block(self, request: web.Request) -> web.Response:
        await self.record(request)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await self.gate.wait()
        finally:
            self.in_flight -= 1
        return web.Response(status=200)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    server = Receiver()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def push() -> AsyncIterator[HttpPush]:
    plugin = HttpPush(timeout_ms=2000, conn_timeout_ms=1000)
    yield plugin
    await plugin.close()


async def test_2xx_is_delivered_with_body_and_headers(receiver: Receiver, push: HttpPush) -> None:
    data = {"url": receiver.url + "/ok", "headers": {"Authorization": "Bearer t", "X-Group": "g"}}
    assert await push.deliver(data, MESSAGE, HEAD)
    [(path, headers, body)] = receiver.received
    assert path == "/ok"
    assert orjson.loads(body) == MESSAGE  # no head key in the body
    assert headers["traceparent"] == HEAD["traceparent"]
    assert headers["tracestate"] == HEAD["tracestate"]
    assert headers["Authorization"] == "Bearer t"
    assert headers["X-Group"] == "g"
    assert headers["Content-Type"] == "application/json"


async def test_later_headers_win(receiver: Receiver, push: HttpPush) -> None:
    data = {
        "url": receiver.url + "/ok",
        "headers": {"TraceParent": "from-recv", "content-type": "text/plain"},
    }
    assert await push.deliver(data, MESSAGE, HEAD)
    [(_, headers, _)] = receiver.received
    assert headers["traceparent"] == "from-recv"  # recv headers override the trace head
    assert headers["Content-Type"] == "application/json"  # which nothing overrides


async def test_without_head_or_headers(receiver: Receiver, push: HttpPush) -> None:
    assert await push.deliver({"url": receiver.url + "/ok"}, MESSAGE, None)
    [(_, headers, _)] = receiver.received
    assert "traceparent" not in headers


@pytest.mark.parametrize(
    ("rule", "path"),
    [("non-2xx is a failure", "/fail"), ("a redirect is not followed", "/redirect")],
)
async def test_non_2xx_fails(receiver: Receiver, push: HttpPush, rule: str, path: str) -> None:
    assert not await push.deliver({"url": receiver.url + path}, MESSAGE, None), rule
    assert [entry[0] for entry in receiver.received] == [path], rule


async def test_timeout_fails(receiver: Receiver) -> None:
    plugin = HttpPush(timeout_ms=200, conn_timeout_ms=200)
    started = time.monotonic()
    assert not await plugin.deliver({"url": receiver.url + "/hang"}, MESSAGE, None)
    assert time.monotonic() - started < 1.5
    await plugin.close()


@pytest.mark.parametrize(
    ("rule", "url"),
    [
        ("connection refused", "http://127.0.0.1:{free_port}/"),
        ("not a url", "not a url"),
        ("unsupported scheme", "ftp://127.0.0.1/x"),
    ],
)
async def test_unreachable_fails_without_raising(push: HttpPush, rule: str, url: str) -> None:
    url = url.replace("{free_port}", str(free_port()))
    assert not await push.deliver({"url": url}, MESSAGE, None), rule


async def test_concurrency_bound(receiver: Receiver) -> None:
    plugin = HttpPush(concurrency=2, timeout_ms=5000)
    pushes = [
        asyncio.create_task(plugin.deliver({"url": receiver.url + "/block"}, MESSAGE, None))
        for _ in range(5)
    ]
    await eventually(lambda: receiver.in_flight == 2)
    # A window for a push beyond the bound to show up; none may.
    await asyncio.sleep(0.2)
    assert receiver.in_flight == 2
    receiver.gate.set()
    assert await asyncio.gather(*pushes) == [True] * 5
    assert receiver.max_in_flight == 2
    assert len(receiver.received) == 5
    await plugin.close()


async def test_closed_plugin_fails(receiver: Receiver) -> None:
    plugin = HttpPush()
    assert await plugin.deliver({"url": receiver.url + "/ok"}, MESSAGE, None)
    await plugin.close()
    assert not await plugin.deliver({"url": receiver.url + "/ok"}, MESSAGE, None)
