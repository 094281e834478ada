"""The lane finds the route aiohttp's router would, or leaves the request to aiohttp.

`Lane.match` must never pick a different route (or different path parameters) than
`app.router.resolve` for the same method and path: it answers only when exactly one resource
with the method matches. Checked over every route of the table and over random paths.
"""

from __future__ import annotations

import random
import string

import pytest
from aiohttp.test_utils import make_mocked_request
from aiohttp.web_urldispatcher import MatchInfoError

from resonate.core.clock import ManualClock
from resonate.server.http.app import LANE, create_api_app
from resonate.server.http.lane import ELSEWHERE, NEED_MORE, SERVE, STICKY
from resonate.server.http.routes import ROUTES, Context

METHODS = ("GET", "POST", "PATCH", "DELETE", "PUT", "HEAD", "OPTIONS")
SEGMENT_CHARS = string.ascii_letters + string.digits + "-_.~:@!$&'()*+,;="


@pytest.fixture(scope="module")
def app():  # type: ignore[no-untyped-def]
    return create_api_app(
        Context(store=None, clock=ManualClock(0)), max_body_size=1 << 20, metrics=None
    )  # type: ignore[arg-type]


def _segment(rng: random.Random) -> str:
    return "".join(rng.choice(SEGMENT_CHARS) for _ in range(rng.randint(1, 8)))


def _paths(rng: random.Random) -> list[str]:
    paths = {"/", "/promises", "/promises/", "/tasks/claim", "/promises/callback/a"}
    for route in ROUTES:
        concrete = route.path
        while "{" in concrete:
            start = concrete.index("{")
            end = concrete.index("}", start)
            concrete = concrete[:start] + _segment(rng) + concrete[end + 1 :]
        paths.add(concrete)
        paths.add(concrete + "/" + _segment(rng))
        paths.add(concrete.rsplit("/", 1)[0] or "/")
    for _ in range(300):
        paths.add("/" + "/".join(_segment(rng) for _ in range(rng.randint(1, 4))))
        base = rng.choice(sorted(paths))
        paths.add(
            base.rstrip("/") + "/" + "/".join(_segment(rng) for _ in range(rng.randint(1, 3)))
        )
    return sorted(paths)


async def test_the_lane_never_routes_differently_from_aiohttp(app) -> None:  # type: ignore[no-untyped-def]
    lane = app[LANE]
    rng = random.Random(14)
    served = 0
    for path in _paths(rng):
        for method in METHODS:
            found = lane.match(method, path)
            if found is None:
                continue
            served += 1
            route, params = found
            match_info = await app.router.resolve(make_mocked_request(method, path, app=app))
            assert not isinstance(match_info, MatchInfoError), (method, path)
            assert match_info.route is route, (method, path)
            assert dict(match_info) == params, (method, path)
    assert served > 100  # the comparison ran on many paths, not on none


@pytest.mark.parametrize(
    ("method", "path", "operation"),
    [
        ("POST", "/promises", "CreatePromise"),
        ("PATCH", "/promises/a/b.c", "CompletePromise"),
        ("GET", "/promises/x", "ReadPromise"),
        ("POST", "/promises/task", "CreatePromiseAndTask"),
        ("POST", "/tasks/claim", "ClaimTask"),
        ("POST", "/", "Envelope"),
        ("GET", "/healthz", "Healthz"),
    ],
)
def test_the_hot_routes_are_on_the_lane(app, method: str, path: str, operation: str) -> None:  # type: ignore[no-untyped-def]
    found = app[LANE].match(method, path)
    assert found is not None
    route, _ = found
    (spec,) = [spec for spec in ROUTES if spec.operation == operation]
    assert route.handler.func is spec.handler  # type: ignore[attr-defined]


def test_streams_are_never_on_the_lane(app) -> None:  # type: ignore[no-untyped-def]
    assert app[LANE].match("GET", "/poll/group/id") is None


def _head(*lines: str, body: bytes = b"") -> bytearray:
    return bytearray("\r\n".join(lines).encode("latin-1") + b"\r\n\r\n" + body)


@pytest.mark.parametrize(
    ("data", "verdict"),
    [
        (_head("POST /promises HTTP/1.1", "Host: x", "Content-Length: 2", body=b"{}"), SERVE),
        (_head("GET /healthz HTTP/1.1", "Host: x"), SERVE),
        (bytearray(b"POST /promises HTTP/1.1\r\nHost: x\r\nContent-Le"), NEED_MORE),
        (_head("POST /promises HTTP/1.1", "Host: x", "Content-Length: 9", body=b"{}"), NEED_MORE),
        (_head("GET /promises?id=* HTTP/1.1", "Host: x"), ELSEWHERE),
        (_head("GET /promises/a%2Fb HTTP/1.1", "Host: x"), ELSEWHERE),
        (_head("GET /promises/a/../b HTTP/1.1", "Host: x"), ELSEWHERE),
        (_head("GET /promises/a//b HTTP/1.1", "Host: x"), ELSEWHERE),
        (_head("GET /nowhere HTTP/1.1", "Host: x"), ELSEWHERE),
        (_head("DELETE /promises HTTP/1.1", "Host: x"), ELSEWHERE),
        (_head("GET /healthz HTTP/1.1"), ELSEWHERE),  # no Host: aiohttp refuses it
        (_head("GET /healthz HTTP/1.1", "Host: x", "Connection: close"), ELSEWHERE),
        (_head("GET /healthz HTTP/1.1", "Host: x", "Connection: keep-alive, Upgrade"), ELSEWHERE),
        # What httpx, requests and fetch send on every request: served.
        (_head("GET /healthz HTTP/1.1", "Host: x", "Connection: Keep-Alive"), SERVE),
        (_head("GET /healthz HTTP/1.1", "Host: x", "Keep-Alive: timeout=5"), SERVE),
        (
            _head(
                "POST /promises HTTP/1.1",
                "Host: 127.0.0.1:8001",
                "Accept: */*",
                "Accept-Encoding: gzip, deflate",
                "Connection: keep-alive",
                "User-Agent: python-httpx/0.28.1",
                "Content-Length: 2",
                "Content-Type: application/json",
                body=b"{}",
            ),
            SERVE,
        ),
        (_head("POST /promises HTTP/1.1", "Host: x", "Content-Encoding: gzip"), ELSEWHERE),
        (_head("POST /promises HTTP/1.1", "Host: x", "Transfer-Encoding: chunked"), STICKY),
        (_head("POST /promises HTTP/1.1", "Host: x", "Expect: 100-continue"), STICKY),
        (_head("GET /healthz HTTP/1.0", "Host: x"), STICKY),
        (_head("GET /healthz HTTP/1.1", "Host: x", "Host: y"), STICKY),
        (_head("GET /healthz HTTP/1.1", "Host: x", "Content-Length: +1"), STICKY),
        (_head("GET /healthz HTTP/1.1", "Host: x", " folded"), STICKY),
        (_head("GET /healthz HTTP/1.1", "Host: x", "X-A: caf\xe9"), STICKY),
        (_head("GET /healthz HTTP/1.1", "Host: x", "X-A: a\x00b"), STICKY),
        (_head("GET  /healthz HTTP/1.1", "Host: x"), STICKY),
    ],
)
def test_what_the_lane_takes_and_what_it_leaves(app, data: bytearray, verdict: int) -> None:  # type: ignore[no-untyped-def]
    assert app[LANE].parse(data)[0] == verdict


def test_a_served_request_is_framed_exactly(app) -> None:  # type: ignore[no-untyped-def]
    first = _head("PATCH /promises/p-1 HTTP/1.1", "Host: x", "Content-Length: 3", body=b"abc")
    data = first + _head("GET /healthz HTTP/1.1", "Host: x")
    verdict, size, request, route = app[LANE].parse(data)
    assert (verdict, size) == (SERVE, len(first))
    assert request is not None and route is not None
    assert (request.method, request.path, request.body) == ("PATCH", "/promises/p-1", b"abc")
    assert request.match_info == {"id": "p-1"}
    assert request.headers["content-length"] == "3"
