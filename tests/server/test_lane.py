"""The lane (resonate/server/http/lane.py): plain requests of the API listener answered without
aiohttp's request pipeline. Every answer must be the one aiohttp would give: the same requests
are sent to a server with the lane (the default) and one without (``--no-api-http-lane``) and
their answers compared; pipelined requests that alternate between the lane and aiohttp are
answered in order; requests arriving in pieces, slowly, with ``Expect``, ``Connection: close``
or odd ``Content-Length`` forms are answered as aiohttp would; the idle and body timeouts still
apply. ``http_lane_requests_total`` tells which path answered.

Timeouts are configured short (1 s) and every wait polls against a deadline; the sleeps here
are the stimulus (a client sending slowly), never a wait for a condition.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.server.raw_http import RawResponse, closed_by_peer, read_response, request_bytes
from tests.support.servers import ServerProcess

TIMEOUT = 1.0  # the short timeouts of the `slow` and `idle` servers, seconds
EARLY = 0.8  # closed sooner than this: the timeout fired early (timers never do)
SLACK = 4.0  # a loaded machine (2 shared cores) may fire late, never early
HOUR_MS = 3_600_000
ANSWER = 10.0  # seconds any single answer may take


def _servers(
    factory: pytest.TempPathFactory, name: str, *args: str
) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """A server with the lane and one without it (``--no-api-http-lane``), same options."""
    with_lane = ServerProcess(factory.mktemp(name), extra_args=list(args)).start()
    without = ServerProcess(
        factory.mktemp(f"{name}-no-lane"), extra_args=[*args, "--no-api-http-lane"]
    ).start()
    yield with_lane, without
    with_lane.stop()
    without.stop()


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    yield from _servers(tmp_path_factory, "lane")


@pytest.fixture(scope="module")
def slow_pair(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """A 1 s header timeout (and with it a 1 s body-stall timeout); the idle timeout default."""
    yield from _servers(tmp_path_factory, "slow", "--api-http-header-timeout", "1s")


@pytest.fixture(scope="module")
def idle_pair(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """A 1 s idle timeout; the header timeout default (10 s)."""
    yield from _servers(tmp_path_factory, "idle", "--api-http-idle-timeout", "1s")


@pytest.fixture(scope="module")
def lane(pair: tuple[ServerProcess, ServerProcess]) -> ServerProcess:
    return pair[0]


@pytest.fixture(scope="module")
def plain(pair: tuple[ServerProcess, ServerProcess]) -> ServerProcess:
    return pair[1]


@pytest.fixture(scope="module")
def slow(slow_pair: tuple[ServerProcess, ServerProcess]) -> ServerProcess:
    return slow_pair[0]


@pytest.fixture(scope="module")
def slow_plain(slow_pair: tuple[ServerProcess, ServerProcess]) -> ServerProcess:
    return slow_pair[1]


@pytest.fixture(scope="module")
def idle(idle_pair: tuple[ServerProcess, ServerProcess]) -> ServerProcess:
    return idle_pair[0]


@pytest.fixture(scope="module")
def idle_plain(idle_pair: tuple[ServerProcess, ServerProcess]) -> ServerProcess:
    return idle_pair[1]


# ---- helpers ------------------------------------------------------------------------------------


def connect(server: ServerProcess) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=ANSWER)


def lane_count(server: ServerProcess) -> int:
    """``http_lane_requests_total`` on the server's metrics listener."""
    text = httpx.get(server.metrics_url + "/metrics", timeout=5).text
    match = re.search(r"^http_lane_requests_total(?:\{\})? (\S+)$", text, re.MULTILINE)
    assert match is not None, "no http_lane_requests_total in /metrics"
    return int(float(match.group(1)))


def req(
    method: str,
    path: str,
    body: Any = None,
    *,
    raw: bytes | None = None,
    headers: list[tuple[str, bytes]] | None = None,
) -> bytes:
    """A keep-alive request (no ``Connection`` header: the lane may serve it)."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    if data is not None:
        headers = [("Content-Type", b"application/json"), *(headers or [])]
    return request_bytes(method, path, body=data, headers=headers, close=False)


def exchange_all(server: ServerProcess, requests: list[bytes]) -> list[RawResponse]:
    """Each request in turn on one keep-alive connection, its answer read before the next."""
    answers = []
    with connect(server) as sock:
        for data in requests:
            sock.sendall(data)
            answers.append(read_response(sock, time.monotonic() + ANSWER))
    return answers


def read_head(sock: socket.socket, deadline: float) -> bytes:
    """Bytes up to and including the first blank line (an interim answer's head)."""
    data = b""
    while b"\r\n\r\n" not in data:
        sock.settimeout(max(deadline - time.monotonic(), 0.001))
        chunk = sock.recv(1)  # byte by byte: what follows the head is read_response's
        if not chunk:
            raise ConnectionError(f"closed before a complete head: {data!r}")
        data += chunk
    return data


# Fields whose values depend on the clock (or on ids made of it), not on the path taken.
VOLATILE = frozenset(
    {
        "createdOn",
        "completedOn",
        "createdAt",
        "updatedAt",
        "completedAt",
        "expiresAt",
        "nextRunTime",
        "lastRunTime",
        "time",
        "requestId",
        "timestamp",
        "heartbeatAt",
    }
)


def normalized(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: normalized(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [normalized(item) for item in value]
    if isinstance(value, str):
        # A request id quoted in a 5xx message.
        return re.sub(r"request id \S+", "request id <rid>", value)
    return value


def comparable(answer: RawResponse) -> dict[str, Any]:
    """What must be equal between the two paths: status, header names, the content type and
    the body without its volatile fields."""
    content_type = answer.headers.get("content-type")
    rid = answer.headers.get("request-id", "")
    body: Any = answer.body
    if content_type is not None and content_type.startswith("application/json") and body:
        body = normalized(json.loads(body))
    return {
        "status": answer.status,
        "header names": sorted(answer.headers),
        "content-type": content_type,
        "allow": answer.headers.get("allow"),
        "request-id": rid if rid.startswith("rid-") else None,  # a caller's id, echoed
        "body": body,
    }


# ---- 1. both paths answer alike ---------------------------------------------------------------

TIMEOUT_AT = int(time.time() * 1000) + HOUR_MS  # one value for both servers
VERSION_2026 = "2026-04-01"


def envelope(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"kind": kind, "head": {"corrId": "c-1", "version": VERSION_2026}, "data": data}


CREATE_P1 = {"id": "p1", "timeout": TIMEOUT_AT, "tags": {"a": "b"}}
KEY_P1 = [("Idempotency-Key", b"ik-p1")]

# (name, request bytes, whether the lane serves it)
SEQUENCE: list[tuple[str, bytes, bool]] = [
    ("create", req("POST", "/promises", CREATE_P1, headers=KEY_P1), True),
    ("create again", req("POST", "/promises", CREATE_P1, headers=KEY_P1), True),
    ("create conflict", req("POST", "/promises", CREATE_P1), True),
    ("read", req("GET", "/promises/p1"), True),
    (
        "complete",
        req("PATCH", "/promises/p1", {"state": "RESOLVED", "value": {"data": "ZG9uZQ=="}}),
        True,
    ),
    ("complete again", req("PATCH", "/promises/p1", {"state": "RESOLVED"}), True),
    ("read a missing promise", req("GET", "/promises/nope"), True),
    ("invalid JSON", req("POST", "/promises", raw=b'{"id": '), True),
    ("not an object", req("POST", "/promises", [1, 2]), True),
    ("no id", req("POST", "/promises", {"timeout": TIMEOUT_AT}), True),
    ("bad state", req("PATCH", "/promises/p1", {"state": "MAYBE"}), True),
    ("search without id", req("GET", "/promises"), True),
    (
        "create with a task",
        req(
            "POST",
            "/promises/task",
            {
                "promise": {
                    "id": "t1",
                    "timeout": TIMEOUT_AT,
                    "tags": {"resonate:invoke": "poll://any@g"},
                },
                "task": {"processId": "p1", "ttl": 60_000},
            },
        ),
        True,
    ),
    ("leaf", req("POST", "/promises", {"id": "leaf", "timeout": TIMEOUT_AT}), True),
    (
        "callback",
        req(
            "POST",
            "/callbacks",
            {
                "promiseId": "leaf",
                "rootPromiseId": "root",
                "recv": "default",
                "timeout": TIMEOUT_AT,
            },
        ),
        True,
    ),
    (
        "subscription",
        req(
            "POST",
            "/subscriptions",
            {"promiseId": "leaf", "id": "s1", "recv": "default", "timeout": TIMEOUT_AT},
        ),
        True,
    ),
    (
        "lock acquire",
        req(
            "POST",
            "/locks/acquire",
            {"resourceId": "r", "executionId": "e", "processId": "p", "ttl": 60_000},
        ),
        True,
    ),
    ("lock release", req("POST", "/locks/release", {"resourceId": "r", "executionId": "e"}), True),
    (
        "schedule create",
        req(
            "POST",
            "/schedules",
            {"id": "s1", "cron": "0 0 1 1 *", "promiseId": "{{.id}}.{{.timestamp}}"},
        ),
        True,
    ),
    ("schedule read", req("GET", "/schedules/s1"), True),
    ("schedule delete", req("DELETE", "/schedules/s1"), True),
    ("healthz", req("GET", "/healthz"), True),
    (
        "request id and idempotency key",
        req(
            "POST",
            "/promises",
            {"id": "p2", "timeout": TIMEOUT_AT},
            headers=[("Request-Id", b"rid-1"), ("Idempotency-Key", b"ik-1")],
        ),
        True,
    ),
    (
        "invalid strict header",
        req("POST", "/promises", {"id": "p3"}, headers=[("Strict", b"maybe")]),
        True,
    ),
    ("readyz", req("GET", "/readyz"), True),
    ("openapi", req("GET", "/openapi.json"), True),
    ("no route", req("GET", "/no/such/route"), False),
    ("wrong method", req("PUT", "/promises"), False),
    ("OPTIONS without CORS", req("OPTIONS", "/healthz"), False),
    (
        "2026 create",
        req("POST", "/", envelope("promise.create", {"id": "e1", "timeoutAt": TIMEOUT_AT})),
        True,
    ),
    ("2026 get", req("POST", "/", envelope("promise.get", {"id": "e1"})), True),
    ("2026 get missing", req("POST", "/", envelope("promise.get", {"id": "nope"})), True),
]


def test_both_paths_answer_every_route_alike(lane: ServerProcess, plain: ServerProcess) -> None:
    lane_before, plain_before = lane_count(lane), lane_count(plain)
    requests = [data for _, data, _ in SEQUENCE]
    with_lane = exchange_all(lane, requests)
    without = exchange_all(plain, requests)
    differences = []
    for (name, data, _), a, b in zip(SEQUENCE, with_lane, without, strict=True):
        if comparable(a) != comparable(b):
            differences.append((name, data, comparable(a), comparable(b)))
    # The sequence did what it meant to: the answers of note, on either server.
    statuses = {
        name: answer.status for (name, _, _), answer in zip(SEQUENCE, with_lane, strict=True)
    }
    assert statuses["create"] == 201
    assert statuses["create again"] == 200
    assert statuses["create conflict"] == 409, statuses
    assert statuses["request id and idempotency key"] == 201
    assert statuses["invalid strict header"] == 400
    echoed = with_lane[[n for n, _, _ in SEQUENCE].index("request id and idempotency key")]
    assert echoed.headers["request-id"] == "rid-1"
    assert statuses["complete"] == 201
    assert statuses["read a missing promise"] == 404
    assert statuses["invalid JSON"] == statuses["not an object"] == statuses["no id"] == 400
    assert statuses["bad state"] == 400
    assert statuses["search without id"] == 400
    assert statuses["create with a task"] == 201
    assert statuses["schedule create"] == 201
    assert statuses["schedule delete"] == 204
    assert statuses["lock acquire"] == 201
    assert statuses["lock release"] == 204
    assert statuses["healthz"] == statuses["readyz"] == statuses["openapi"] == 200
    assert statuses["no route"] == 404
    assert statuses["wrong method"] == 405
    assert "allow" in with_lane[[n for n, _, _ in SEQUENCE].index("wrong method")].headers
    served = sum(1 for _, _, in_lane in SEQUENCE if in_lane)
    assert lane_count(lane) - lane_before == served
    assert lane_count(plain) == plain_before == 0
    # Last, so that the counts above are checked even when an answer differs.
    assert not differences, "\n".join(
        f"{name}: {data!r}\n  lane:    {a}\n  no lane: {b}" for name, data, a, b in differences
    )


# ---- 2. pipelining across paths ---------------------------------------------------------------


def chunked_create(promise_id: str) -> bytes:
    body = json.dumps({"id": promise_id, "timeout": TIMEOUT_AT}).encode()
    half = len(body) // 2
    chunks = b"".join(
        f"{len(part):x}\r\n".encode() + part + b"\r\n" for part in (body[:half], body[half:])
    )
    return (
        b"POST /promises HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n"
    )


def test_pipelined_requests_alternating_between_the_lane_and_aiohttp_are_answered_in_order(
    lane: ServerProcess,
) -> None:
    before = lane_count(lane)
    pipeline = [
        req("POST", "/promises", {"id": "pipe-1", "timeout": TIMEOUT_AT}),  # lane
        req("GET", "/promises?id=pipe-*"),  # a query string: aiohttp
        req("GET", "/promises/pipe-1"),  # lane
        req("POST", "/promises", {"id": "pipe-2", "timeout": TIMEOUT_AT}),  # lane
        req("GET", "/promises/pipe%2D2"),  # an escape: aiohttp
        chunked_create("pipe-3"),  # chunked: aiohttp, for good
    ]
    with connect(lane) as sock:
        sock.sendall(b"".join(pipeline))
        answers = [read_response(sock, time.monotonic() + ANSWER) for _ in pipeline]
    assert [a.status for a in answers] == [201, 200, 200, 201, 200, 201], answers
    assert answers[0].json()["id"] == "pipe-1"
    assert [p["id"] for p in answers[1].json()["promises"]] == ["pipe-1"]
    assert answers[2].json()["id"] == "pipe-1"
    assert answers[3].json()["id"] == "pipe-2"
    assert answers[4].json()["id"] == "pipe-2"
    assert answers[5].json()["id"] == "pipe-3"
    assert lane_count(lane) - before == 3


def test_after_a_chunked_request_aiohttp_answers_the_rest_of_the_connection(
    lane: ServerProcess,
) -> None:
    before = lane_count(lane)
    requests = [
        chunked_create("sticky-1"),
        req("GET", "/promises/sticky-1"),
        req("POST", "/promises", {"id": "sticky-2", "timeout": TIMEOUT_AT}),
        req("GET", "/promises/sticky-2"),
    ]
    answers = exchange_all(lane, requests)
    assert [a.status for a in answers] == [201, 200, 201, 200], answers
    assert [a.json()["id"] for a in answers] == ["sticky-1", "sticky-1", "sticky-2", "sticky-2"]
    # Pipelined too: the chunked request first, then plain ones in the same write.
    with connect(lane) as sock:
        sock.sendall(
            chunked_create("sticky-3") + req("GET", "/promises/sticky-3") + req("GET", "/healthz")
        )
        piped = [read_response(sock, time.monotonic() + ANSWER) for _ in range(3)]
    assert [a.status for a in piped] == [201, 200, 200], piped
    assert piped[1].json()["id"] == "sticky-3"
    assert lane_count(lane) == before


# ---- 3. a request in pieces ---------------------------------------------------------------------


def test_a_request_arriving_in_pieces_is_served_by_the_lane(lane: ServerProcess) -> None:
    before = lane_count(lane)
    data = req("POST", "/promises", {"id": "pieces", "timeout": TIMEOUT_AT})
    end = data.index(b"\r\n\r\n") + 4
    head, body = data[:end], data[end:]
    # The head may take its time (the header timeout is 10 s); the body comes with its last
    # piece (a body has only BODY_GRACE, 0.1 s, to follow its head: no timed gap there).
    pieces = [head[:7], head[7:30], head[30:] + body]
    with connect(lane) as sock:
        for piece in pieces:
            sock.sendall(piece)
            time.sleep(0.05)  # the stimulus: a client sending slowly
        answer = read_response(sock, time.monotonic() + ANSWER)
    assert answer.status == 201, answer
    assert answer.json()["id"] == "pieces"
    assert lane_count(lane) - before == 1


# ---- 4. a body slower than the header timeout ---------------------------------------------------


def test_a_body_pausing_past_the_body_timeout_is_answered_as_without_the_lane(
    slow: ServerProcess, slow_plain: ServerProcess
) -> None:
    """The head came, the body pauses longer than the body timeout (1 s): the lane hands the
    connection to aiohttp after BODY_GRACE, so the pause gets aiohttp's 408, as it does with no
    lane at all; a pause shorter than the grace is served by the lane."""
    answers = []
    for server in (slow, slow_plain):
        data = req("POST", "/promises", {"id": "slow-body", "timeout": TIMEOUT_AT})
        cut = data.index(b"\r\n\r\n") + 4 + 10
        with connect(server) as sock:
            sock.sendall(data[:cut])
            time.sleep(TIMEOUT + 0.3)  # the stimulus: a pause past the body timeout
            with contextlib.suppress(OSError):
                sock.sendall(data[cut:])
            answers.append(read_response(sock, time.monotonic() + ANSWER))
    assert [answer.status for answer in answers] == [408, 408], answers
    assert answers[0].json() == answers[1].json()

    # A body right behind its head, in two writes: answered (by the lane when the second
    # write comes within BODY_GRACE, else by aiohttp: the answer is the same).
    data = req("POST", "/promises", {"id": "short-pause", "timeout": TIMEOUT_AT})
    cut = data.index(b"\r\n\r\n") + 4 + 10
    with connect(slow) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(data[:cut])
        sock.sendall(data[cut:])
        answer = read_response(sock, time.monotonic() + ANSWER)
    assert answer.status == 201, answer


def test_a_body_that_never_ends_gets_408_or_a_close(slow: ServerProcess) -> None:
    data = req("POST", "/promises", {"id": "never-ends", "timeout": TIMEOUT_AT})
    cut = data.index(b"\r\n\r\n") + 4 + 10
    with connect(slow) as sock:
        sent = time.monotonic()
        sock.sendall(data[:cut])
        deadline = sent + TIMEOUT + SLACK
        try:
            answer: RawResponse | None = read_response(sock, deadline)
        except ConnectionError:
            answer = None  # closed without an answer
        elapsed = time.monotonic() - sent
        if answer is not None:
            assert answer.status == 408, answer
            assert answer.json()["error"]["code"] == 40800, answer
            assert answer.closed or closed_by_peer(sock, deadline)
    # The lane waits BODY_GRACE (0.1 s), then aiohttp's 1 s body timeout runs.
    assert EARLY <= elapsed <= TIMEOUT + SLACK, elapsed


def test_a_request_whose_body_is_arriving_is_not_closed_as_idle(
    idle: ServerProcess, idle_plain: ServerProcess
) -> None:
    """The head is complete, the body arrives past the idle timeout (well within the 10 s
    header and body-stall timeouts): a request in progress, not an idle connection. Without
    the lane aiohttp has parsed the head and serves the request; the lane must too."""
    answers = []
    for server in (idle, idle_plain):
        data = req("POST", "/promises", {"id": "arriving", "timeout": TIMEOUT_AT})
        cut = data.index(b"\r\n\r\n") + 4 + 10
        with connect(server) as sock:
            sock.sendall(data[:cut])
            time.sleep(TIMEOUT + 0.3)  # the stimulus: past the idle timeout
            try:
                sock.sendall(data[cut:])
                answers.append(read_response(sock, time.monotonic() + ANSWER).status)
            except OSError as error:
                answers.append(f"{type(error).__name__}: {error}")
    assert answers == [201, 201], f"lane: {answers[0]}, no lane: {answers[1]}"


# ---- 5. Expect: 100-continue ------------------------------------------------------------------


def test_expect_100_continue_gets_the_interim_answer_before_the_body(lane: ServerProcess) -> None:
    body = json.dumps({"id": "expect", "timeout": TIMEOUT_AT}).encode()
    head = (
        b"POST /promises HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        b"Expect: 100-continue\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n"
    )
    with connect(lane) as sock:
        sock.sendall(head)
        interim = read_head(sock, time.monotonic() + ANSWER)
        assert interim.startswith(b"HTTP/1.1 100 Continue\r\n"), interim
        sock.sendall(body)
        answer = read_response(sock, time.monotonic() + ANSWER)
    assert answer.status == 201, answer
    assert answer.json()["id"] == "expect"


# ---- 6. Connection: close ----------------------------------------------------------------------


def test_connection_close_is_answered_then_closed(lane: ServerProcess) -> None:
    body = json.dumps({"id": "close", "timeout": TIMEOUT_AT}).encode()
    data = request_bytes("POST", "/promises", body=body, close=True)
    with connect(lane) as sock:
        sock.sendall(data)
        answer = read_response(sock, time.monotonic() + ANSWER)
    assert answer.status == 201, answer
    assert answer.closed


# ---- 7. percent-escaped ids ---------------------------------------------------------------------


def test_an_id_with_a_slash_reads_alike_on_both_paths(
    lane: ServerProcess, plain: ServerProcess
) -> None:
    requests = [
        req("POST", "/promises", {"id": "a/b", "timeout": TIMEOUT_AT}),
        req("GET", "/promises/a%2Fb"),
        req("GET", "/promises/a/b"),
        req("GET", "/promises/a%2fb"),
    ]
    with_lane = exchange_all(lane, requests)
    without = exchange_all(plain, requests)
    for data, a, b in zip(requests, with_lane, without, strict=True):
        assert comparable(a) == comparable(b), (data, a, b)
    assert with_lane[0].status == 201
    assert with_lane[1].status == 200 and with_lane[1].json()["id"] == "a/b"


# ---- 8. the idle timeout ------------------------------------------------------------------------


def test_the_idle_timeout_closes_a_connection_that_only_made_lane_requests(
    idle: ServerProcess,
) -> None:
    before = lane_count(idle)
    with connect(idle) as sock:
        sock.sendall(req("GET", "/healthz"))
        assert read_response(sock, time.monotonic() + ANSWER).status == 200
        answered = time.monotonic()
        assert closed_by_peer(sock, answered + TIMEOUT + SLACK), "the server never closed it"
        assert time.monotonic() - answered >= EARLY
    assert lane_count(idle) - before == 1


# ---- 9. Content-Length forms the lane does not take -------------------------------------------


@pytest.mark.parametrize(
    ("name", "length"),
    [("plus", "+{n}"), ("list", "{n}, {n}"), ("leading-zero", "0{n}"), ("spaces", " {n} ")],
)
def test_unusual_content_length_forms_are_answered_as_without_the_lane(
    lane: ServerProcess, plain: ServerProcess, name: str, length: str
) -> None:
    """Forms other than digits alone go to aiohttp (which refuses them); digits with a
    leading zero or surrounding spaces are a plain length either path reads alike."""
    body = json.dumps({"id": f"cl-{name}", "timeout": TIMEOUT_AT}).encode()
    value = length.format(n=len(body)).encode()
    data = (
        b"POST /promises HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + value + b"\r\n\r\n" + body
    )
    answers = []
    for server in (lane, plain):
        before = lane_count(server)
        with connect(server) as sock:
            sock.sendall(data)
            answers.append(read_response(sock, time.monotonic() + ANSWER))
        served = lane_count(server) - before
        if "+" in length or "," in length:  # not digits alone: never the lane's
            assert served == 0, (server.url, value)
    a, b = answers
    assert comparable(a) == comparable(b), (value, a, b)


def test_what_http_clients_send_stays_on_the_lane(lane: ServerProcess) -> None:
    """httpx (like requests and fetch) sends `Connection: keep-alive`, `Accept-Encoding` and a
    `User-Agent` on every request: none of those may send a request off the lane."""
    before = lane_count(lane)
    with httpx.Client(base_url=lane.url, timeout=ANSWER) as client:
        created = client.post("/promises", json={"id": "httpx-1", "timeout": TIMEOUT_AT})
        read = client.get("/promises/httpx-1")
        done = client.patch("/promises/httpx-1", json={"state": "RESOLVED"})
    assert [created.status_code, read.status_code, done.status_code] == [201, 200, 201]
    assert done.json()["state"] == "RESOLVED"
    assert created.request.headers["connection"] == "keep-alive"  # what the lane must accept
    assert lane_count(lane) - before == 3
