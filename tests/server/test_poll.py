"""The poll transport (http-api.md §5, sdk-compat.md §7) over real sockets: SSE framing,
routing, replacement, liveness, limits, clean ends, errors and metrics."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from resonate.core.errors import ResonateError
from resonate.server.delivery.poll import (
    PollHub,
    create_poll_app,
    parse_stream_path,
    stream_path,
)
from resonate.server.metrics import Metrics
from tests.support.servers import eventually

MESSAGE = {"type": "notify", "promise": {"id": "p/1", "state": "RESOLVED"}}
HEAD = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}


class Served:
    """One hub behind a real poll listener on a free port."""

    def __init__(self, hub: PollHub, runner: web.AppRunner) -> None:
        self.hub = hub
        self.runner = runner
        host, port = runner.addresses[0][:2]
        self.host, self.port = host, port
        self.url = f"http://{host}:{port}"


Serve = Callable[..., Awaitable[Served]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    started: list[Served] = []

    async def start(auth: dict[str, str] | None = None, **options: Any) -> Served:
        hub = PollHub(**options)
        runner = web.AppRunner(create_poll_app(hub, auth or {}), shutdown_timeout=1)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        served = Served(hub, runner)
        started.append(served)
        return served

    yield start
    for served in started:
        await served.hub.close()
        await served.runner.cleanup()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


class Worker:
    """An SSE client that records events and how its stream ended."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response
        self.events: list[dict[str, Any]] = []
        self.comments: list[bytes] = []
        self.ending: str | None = None  # "clean" on the terminating chunk, else the error
        self.task = asyncio.create_task(self._read())

    @classmethod
    async def connect(cls, session: aiohttp.ClientSession, url: str) -> Worker:
        response = await session.get(url)
        assert response.status == 200, await response.text()
        return cls(response)

    async def _read(self) -> None:
        try:
            while True:
                event = await self.response.content.readuntil(b"\n\n")
                if not event:
                    break
                if event.startswith(b"data: "):
                    self.events.append(orjson.loads(event[len(b"data: ") :]))
                else:
                    self.comments.append(event)
            self.ending = "clean"
        except aiohttp.ClientPayloadError as error:
            self.ending = f"cut: {error}"

    async def ended(self, within: float = 2.0) -> str:
        await asyncio.wait_for(asyncio.shield(self.task), within)
        assert self.ending is not None
        return self.ending

    def close(self) -> None:
        self.task.cancel()
        self.response.close()


async def connected(served: Served, group: str, *ids: str) -> None:
    await eventually(lambda: sorted(served.hub.connections(group)) == sorted(ids))


async def raw_stream(served: Served, path: str) -> tuple[asyncio.StreamReader, Any, bytes]:
    """GET ``path`` over a bare socket; returns the reader, writer and the response head."""
    reader, writer = await asyncio.open_connection(served.host, served.port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode())
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2)
    return reader, writer, head


async def read_chunk(reader: asyncio.StreamReader) -> bytes:
    size_line = await asyncio.wait_for(reader.readuntil(b"\r\n"), 2)
    size = int(size_line.strip(), 16)
    payload = await asyncio.wait_for(reader.readexactly(size + 2), 2)
    assert payload.endswith(b"\r\n")
    return payload[:-2]


# -- §5.1 paths ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "path", "expected"),
    [
        ("group then id", "default/abc", ("default", "abc")),
        ("id may contain /", "g/a/b/c", ("g", "a/b/c")),
        ("empty id", "g/", ("g", "")),
        ("segments are percent-decoded", "my%20group/id%3F1", ("my group", "id?1")),
        ("encoded / stays in the group", "a%2Fb/c", ("a/b", "c")),
        ("case preserved", "Workers/Proc-7", ("Workers", "Proc-7")),
    ],
)
def test_stream_path(rule: str, path: str, expected: tuple[str, str]) -> None:
    assert parse_stream_path(path) == expected, rule


@pytest.mark.parametrize(
    ("rule", "path"),
    [("root", ""), ("group without a second /", "group"), ("empty group", "/id")],
)
def test_stream_path_invalid(rule: str, path: str) -> None:
    with pytest.raises(ResonateError) as caught:
        parse_stream_path(path)
    assert caught.value.code.http_status == 400, rule


@pytest.mark.parametrize("path", ["/", "/group", "//id"])
async def test_bad_path_is_400_with_json_error(serve: Serve, session, path: str) -> None:
    served = await serve()
    async with session.get(served.url + path) as response:
        assert response.status == 400
        assert response.content_type == "application/json"
        assert (await response.json())["error"]["code"] == 40000


async def test_other_methods_are_405(serve: Serve, session) -> None:
    served = await serve()
    async with session.post(served.url + "/g/w") as response:
        assert response.status == 405
        assert response.headers["Allow"] == "GET"
        assert (await response.json())["error"]["code"] == 40500


async def test_basic_auth_on_the_poll_listener(serve: Serve, session) -> None:
    served = await serve(auth={"alice": "s3cret"})
    for credentials in (None, "alice:wrong"):
        headers = {}
        if credentials:
            headers["Authorization"] = "Basic " + base64.b64encode(credentials.encode()).decode()
        async with session.get(served.url + "/g/w", headers=headers) as response:
            assert response.status == 401
            assert response.headers["WWW-Authenticate"] == 'Basic realm="resonate"'
            assert (await response.json())["error"]["code"] == 40100
    good = {"Authorization": "Basic " + base64.b64encode(b"alice:s3cret").decode()}
    async with session.get(served.url + "/g/w", headers=good) as response:
        assert response.status == 200
        await connected(served, "g", "w")


async def test_percent_encoded_connection_identity(serve: Serve, session) -> None:
    served = await serve()
    worker = await Worker.connect(session, served.url + "/a%2Fb/c/d%20e")
    await connected(served, "a/b", "c/d e")
    assert await served.hub.deliver({"group": "a/b", "cast": "uni", "id": "c/d e"}, MESSAGE, None)
    await eventually(lambda: worker.events == [MESSAGE])
    worker.close()


# -- §5.2 stream format --------------------------------------------------------------------


async def test_stream_headers_and_event_framing(serve: Serve) -> None:
    served = await serve()
    reader, writer, head = await raw_stream(served, "/default/w1")
    status_line, *header_lines = head.decode().strip().split("\r\n")
    headers = {name.lower(): value for name, value in (h.split(": ", 1) for h in header_lines)}
    assert status_line == "HTTP/1.1 200 OK"
    assert headers["content-type"] == "text/event-stream"
    assert headers["cache-control"] == "no-cache"
    assert headers["connection"] == "keep-alive"
    assert headers["transfer-encoding"] == "chunked"
    assert "content-length" not in headers

    await connected(served, "default", "w1")
    assert await served.hub.deliver({"group": "default", "cast": "any"}, MESSAGE, HEAD)
    event = await read_chunk(reader)
    assert event == b"data: " + orjson.dumps({**MESSAGE, "head": HEAD}) + b"\n\n"
    assert event.count(b"\n") == 2  # the JSON is on one line

    await served.hub.close()
    assert await read_chunk(reader) == b": shutting down\n\n"  # the final comment (§12)
    assert await read_chunk(reader) == b""  # the terminating zero-length chunk
    writer.close()


async def test_extra_headers_for_the_api_listener(session) -> None:
    hub = PollHub()

    async def route(request: web.Request) -> web.StreamResponse:
        path = stream_path(request, "/poll/")
        return await hub.handle(request, path, extra_headers={"Resonate-Version": "9.9"})

    app = web.Application()
    app.router.add_get("/poll/{path:.*}", route)
    runner = web.AppRunner(app, shutdown_timeout=1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    worker = await Worker.connect(session, f"http://{host}:{port}/poll/a%2Fb/c")
    assert worker.response.headers["Resonate-Version"] == "9.9"
    assert worker.response.headers["Content-Type"] == "text/event-stream"
    await eventually(lambda: hub.connections("a/b") == ["c"])
    await hub.close()
    assert await worker.ended() == "clean"
    await runner.cleanup()


async def test_message_without_head_has_no_head_key_and_caller_dict_is_untouched(
    serve: Serve, session
) -> None:
    served = await serve()
    worker = await Worker.connect(session, served.url + "/g/w")
    await connected(served, "g", "w")
    message = dict(MESSAGE)
    assert await served.hub.deliver({"group": "g", "cast": "any"}, message, None)
    assert await served.hub.deliver({"group": "g", "cast": "any"}, message, HEAD)
    await eventually(lambda: len(worker.events) == 2)
    assert worker.events == [MESSAGE, {**MESSAGE, "head": HEAD}]
    assert message == MESSAGE
    worker.close()


async def test_keep_alive_comment_when_idle(serve: Serve, session) -> None:
    served = await serve(keep_alive_ms=100)
    worker = await Worker.connect(session, served.url + "/g/w")
    await eventually(lambda: len(worker.comments) >= 2)
    assert set(worker.comments) == {b": keep-alive\n\n"}
    worker.close()


# -- §5.2/§5.3 clean ends ------------------------------------------------------------------


async def test_close_ends_every_stream_cleanly_and_refuses_afterwards(
    serve: Serve, session
) -> None:
    served = await serve()
    workers = [await Worker.connect(session, f"{served.url}/g/w{n}") for n in range(3)]
    await connected(served, "g", "w0", "w1", "w2")
    await served.hub.close()
    assert [await worker.ended() for worker in workers] == ["clean"] * 3
    assert served.hub.connection_count == 0
    assert not await served.hub.deliver({"group": "g", "cast": "any"}, MESSAGE, None)
    late = await Worker.connect(session, served.url + "/g/late")  # 200, then ended at once
    assert await late.ended() == "clean"
    assert late.events == []


async def test_replacement_ends_old_stream_and_new_one_gets_messages(serve: Serve, session) -> None:
    served = await serve()
    old = await Worker.connect(session, served.url + "/g/w")
    await connected(served, "g", "w")
    new = await Worker.connect(session, served.url + "/g/w")
    assert await old.ended() == "clean"
    assert served.hub.connections("g") == ["w"]
    assert served.hub.connection_count == 1
    assert await served.hub.deliver({"group": "g", "cast": "uni", "id": "w"}, MESSAGE, None)
    await eventually(lambda: new.events == [MESSAGE])
    assert old.events == []
    new.close()


async def test_replacement_moves_buffered_messages() -> None:
    # White-box: a message still buffered on the old connection at replacement time.
    class OpenTransport:
        def is_closing(self) -> bool:
            return False

    class FakeRequest:
        transport = OpenTransport()

    hub = PollHub()
    old = hub._open("g", "w", FakeRequest())  # type: ignore[arg-type]
    assert await hub.deliver({"group": "g", "cast": "uni", "id": "w"}, MESSAGE, None)
    new = hub._open("g", "w", FakeRequest())  # type: ignore[arg-type]
    assert old.ending and not old.buffer
    assert list(new.buffer) == [b"data: " + orjson.dumps(MESSAGE) + b"\n\n"]
    for connection in (old, new):
        connection.finished.set()
    await hub.close()


async def test_disconnect_after_ends_stream_cleanly(serve: Serve, session) -> None:
    served = await serve(disconnect_after_ms=150)
    worker = await Worker.connect(session, served.url + "/g/w")
    assert await worker.ended() == "clean"
    assert served.hub.connections("g") == []


async def test_max_connections_answers_200_and_ends_at_once(serve: Serve, session) -> None:
    served = await serve(max_connections=1)
    first = await Worker.connect(session, served.url + "/g/first")
    await connected(served, "g", "first")
    refused = await Worker.connect(session, served.url + "/g/second")
    assert await refused.ended() == "clean"
    assert served.hub.connections("g") == ["first"]
    # Replacing an open key frees its own slot, so it is not refused.
    again = await Worker.connect(session, served.url + "/g/first")
    assert await first.ended() == "clean"
    assert again.ending is None
    assert served.hub.connection_count == 1
    again.close()


async def test_peer_disconnect_is_noticed_while_idle(serve: Serve) -> None:
    served = await serve(keep_alive_ms=0)
    _, writer, _ = await raw_stream(served, "/g/gone")
    await connected(served, "g", "gone")
    writer.close()
    started = time.monotonic()
    await eventually(lambda: served.hub.connections("g") == [], within=1.5)
    assert time.monotonic() - started < 1.5
    assert not await served.hub.deliver({"group": "g", "cast": "any"}, MESSAGE, None)


# -- §5.4 routing --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "recv", "delivered_to"),
    [
        ("no open connection in the group", {"group": "empty", "cast": "any"}, None),
        ("exact id when open, any", {"group": "g", "cast": "any", "id": "b"}, "b"),
        ("exact id when open, uni", {"group": "g", "cast": "uni", "id": "a"}, "a"),
        ("uni fails when the id is not open", {"group": "g", "cast": "uni", "id": "zz"}, None),
        ("uni without an id fails", {"group": "g", "cast": "uni"}, None),
        ("any falls back to a member", {"group": "g", "cast": "any", "id": "zz"}, "a|b"),
        ("any without id goes to a member", {"group": "g", "cast": "any"}, "a|b"),
    ],
)
async def test_routing(
    serve: Serve, session, rule: str, recv: dict[str, str], delivered_to: str | None
) -> None:
    served = await serve()
    workers = {name: await Worker.connect(session, f"{served.url}/g/{name}") for name in "ab"}
    await connected(served, "g", "a", "b")
    assert await served.hub.deliver(recv, MESSAGE, None) is (delivered_to is not None), rule
    if delivered_to is not None:
        await eventually(lambda: sum(len(w.events) for w in workers.values()) == 1)
        receiver = next(name for name, w in workers.items() if w.events)
        assert receiver in delivered_to.split("|"), rule
    for worker in workers.values():
        worker.close()


async def test_any_picks_members_at_random(serve: Serve, session) -> None:
    served = await serve()
    workers = [await Worker.connect(session, f"{served.url}/g/w{n}") for n in range(3)]
    await connected(served, "g", "w0", "w1", "w2")
    for _ in range(60):
        assert await served.hub.deliver({"group": "g", "cast": "any"}, MESSAGE, None)
    await eventually(lambda: sum(len(w.events) for w in workers) == 60)
    assert all(worker.events for worker in workers)  # (2/3)^60 odds of missing one
    for worker in workers:
        worker.close()


async def test_full_buffer_fails_uni_and_falls_back_for_any(serve: Serve, session) -> None:
    # deliver() never yields, so back-to-back deliveries fill a buffer before it drains.
    served = await serve(buffer_size=2)
    workers = {name: await Worker.connect(session, f"{served.url}/g/{name}") for name in "ab"}
    await connected(served, "g", "a", "b")
    hub = served.hub
    uni_a = {"group": "g", "cast": "uni", "id": "a"}
    any_a = {"group": "g", "cast": "any", "id": "a"}
    assert [await hub.deliver(uni_a, MESSAGE, None) for _ in range(3)] == [True, True, False]
    assert hub.buffered("g", "a") == 2
    assert [await hub.deliver(any_a, MESSAGE, None) for _ in range(3)] == [True, True, False]
    assert hub.buffered("g", "b") == 2
    await eventually(lambda: [len(workers[n].events) for n in "ab"] == [2, 2])
    for worker in workers.values():
        worker.close()


# -- §5.3 metrics --------------------------------------------------------------------------


async def test_connection_gauges(serve: Serve, session) -> None:
    metrics = Metrics("sqlite")
    served = await serve(metrics=metrics)

    def gauges() -> tuple[float | None, float | None]:
        registry = metrics.registry
        return (
            registry.get_sample_value("aio_plugin_connections", {"type": "poll"}),
            registry.get_sample_value("poll_connections", {"group": "g"}),
        )

    workers = [await Worker.connect(session, f"{served.url}/g/w{n}") for n in range(2)]
    await eventually(lambda: gauges() == (2, 2))
    workers[0].close()  # the peer goes away: the sweeper notices
    await eventually(lambda: gauges() == (1, 1))
    await served.hub.close()
    assert gauges() == (0, 0)
    workers[1].close()
