"""Hostile and malformed requests: every request the server can parse gets a clean 4xx with
the JSON error body (http-api.md §1.6), on every store, and a client's mistake leaves nothing
alarming in the log (docs/server.md, "Limits").

Requests go out as raw bytes (`raw_http`): no HTTP library sends invalid UTF-8 in a header, a
NUL byte or a bad method. Each case names the rule it checks.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import logging
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from resonate.core.clock import ManualClock
from resonate.core.errors import Code, ResonateError
from resonate.core.json_depth import MAX_JSON_DEPTH, fits_nesting_limit
from resonate.server.http.app import create_api_app
from resonate.server.http.openapi import build_document
from resonate.server.http.routes import ROUTES, Context, Route
from resonate.store.sqlite.store import SqliteStore
from tests.server.raw_http import RawResponse, error_of, exchange, request_bytes
from tests.support import pg
from tests.support.servers import ServerProcess, store_server

FUTURE = 4_102_444_800_000  # 2100-01-01
HEADER_TIMEOUT = "2s"  # a stalled body is answered 408 after this


@pytest.fixture(scope="module")
def hostile(store_kind: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server of its own per store, so that its log holds only this module's requests."""
    workdir = tmp_path_factory.mktemp(f"hostile-{store_kind}")
    args = ["--api-http-header-timeout", HEADER_TIMEOUT]
    with store_server(workdir, store_kind, "resonate_hostile", args) as process:
        yield process


class LogWatch:
    """What the server logged while a test ran."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.start = len(server.log())

    def new(self) -> str:
        return self.server.log()[self.start :]

    def assert_calm(self) -> None:
        """A client's mistake: no ERROR, no WARNING, no traceback."""
        text = self.new()
        assert "Traceback" not in text, text
        assert not re.search(r"\b(ERROR|WARNING|CRITICAL)\b", text), text


@pytest.fixture
def log(hostile: ServerProcess) -> LogWatch:
    return LogWatch(hostile)


def port_of(server: ServerProcess) -> int:
    return server.port


def send(server: ServerProcess, method: str, path: str, **options: Any) -> RawResponse:
    return exchange(server.port, request_bytes(method, path, **options))


def create_body(promise_id: str, **extra: Any) -> bytes:
    return json.dumps({"id": promise_id, "timeout": FUTURE, **extra}).encode()


def uid() -> str:
    return f"h{uuid.uuid4().hex[:12]}"


def nested(levels: int) -> Any:
    """``levels`` arrays inside each other: ``nested(2) == [[]]``."""
    value: Any = []
    for _ in range(levels - 1):
        value = [value]
    return value


# ---- §1.3, §1.4: header values are held to the rules of ids -----------------------------------


def concrete_path(route: Route) -> str:
    path = route.path.replace("{ref}", "__invoke:hostile/1")
    return re.sub(r"{\w+}", "hostile", path)


def header_cases() -> Iterator[Any]:
    """Every header every route reads, with a value that is not UTF-8 and one past 1024 bytes."""
    bad_values = {
        "invalid-utf8": (b"k\xff\xfe", "valid UTF-8"),
        "too-long": (b"k" * 1025, "at most 1024 bytes"),
    }
    for route in ROUTES:
        for param in route.params:
            if param.location != "header":
                continue
            for kind, (value, message) in bad_values.items():
                yield pytest.param(
                    route, param.name, value, message, id=f"{route.operation}-{param.name}-{kind}"
                )


@pytest.mark.parametrize(("route", "name", "value", "message"), list(header_cases()))
def test_every_header_a_route_reads_is_validated(
    hostile: ServerProcess, route: Route, name: str, value: bytes, message: str
) -> None:
    """A header value that is not valid UTF-8, or longer than 1024 bytes, is a 400 naming the
    header, before any store sees it (it used to reach the store: 500 UnicodeEncodeError on
    SQLite, DataError on PostgreSQL)."""
    body = b"{}" if route.body is not None else None
    response = send(hostile, route.method, concrete_path(route), body=body, headers=[(name, value)])
    error = error_of(response, 40000)
    detail = error["details"][0]
    assert detail["@type"] == "FieldValidationError"
    assert detail["metadata"]["field"] == name
    assert name in detail["message"] and message in detail["message"]


def test_an_undecodable_idempotency_key_is_refused_on_create_and_changes_nothing(
    hostile: ServerProcess, log: LogWatch
) -> None:
    """The issue's raw request: `POST /promises` with `idempotency-key: k\\xff\\xfe`."""
    promise_id = uid()
    key = [("idempotency-key", b"k\xff\xfe")]
    response = send(hostile, "POST", "/promises", body=create_body(promise_id), headers=key)
    assert error_of(response, 40000)["details"][0]["metadata"]["field"] == "idempotency-key"
    error_of(send(hostile, "GET", f"/promises/{promise_id}"), 40400)  # nothing was created
    log.assert_calm()


def test_an_undecodable_idempotency_key_is_refused_on_complete_and_changes_nothing(
    hostile: ServerProcess, log: LogWatch
) -> None:
    promise_id = uid()
    assert send(hostile, "POST", "/promises", body=create_body(promise_id)).status == 201
    response = send(
        hostile,
        "PATCH",
        f"/promises/{promise_id}",
        body=b'{"state": "RESOLVED"}',
        headers=[("idempotency-key", b"k\xff\xfe")],
    )
    assert error_of(response, 40000)["details"][0]["metadata"]["field"] == "idempotency-key"
    assert send(hostile, "GET", f"/promises/{promise_id}").json()["state"] == "PENDING"
    log.assert_calm()


def test_a_valid_non_ascii_idempotency_key_still_deduplicates(hostile: ServerProcess) -> None:
    """The checks refuse bytes that are not UTF-8, not Unicode: a UTF-8 key works as before."""
    promise_id = uid()
    key = [("idempotency-key", "clé-✓".encode())]
    first = send(hostile, "POST", "/promises", body=create_body(promise_id), headers=key)
    again = send(hostile, "POST", "/promises", body=create_body(promise_id), headers=key)
    assert (first.status, again.status) == (201, 200)
    assert again.json()["idempotencyKeyForCreate"] == "clé-✓"


def test_a_trace_header_that_is_not_utf8_never_reaches_a_task(hostile: ServerProcess) -> None:
    """Trace headers are stored in the task's head and sent to workers: they are checked too
    (before: stored, then breaking every delivery of the task)."""
    promise_id = uid()
    body = create_body(promise_id, tags={"resonate:invoke": "poll://any@hostile"})
    response = send(hostile, "POST", "/promises", body=body, headers=[("traceparent", b"\xff")])
    assert error_of(response, 40000)["details"][0]["metadata"]["field"] == "traceparent"
    tasks = send(hostile, "GET", f"/tasks?rootPromiseId={promise_id}").json()["tasks"]
    assert tasks == []


@pytest.fixture
async def guarded_api() -> Any:
    ctx = Context(
        store=FailingStore(),  # type: ignore[arg-type]  # never reached: auth refuses first
        clock=ManualClock(),
        basic_auth={"alice": "secret"},
    )
    client = TestClient(TestServer(create_api_app(ctx, max_body_size=1024, metrics=None)))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()


@pytest.mark.parametrize(
    "value",
    [b"Basic \xff\xfe", b"Basic \xe9t\xe9", b"Basic " + "clé".encode()],
    ids=["not-utf8", "latin-1", "utf8-not-base64"],
)
async def test_undecodable_basic_credentials_are_a_401(
    guarded_api: TestClient, value: bytes
) -> None:
    """§9.1: credentials that are not base64 of UTF-8 are malformed (were a 500 ValueError)."""
    data = request_bytes("GET", "/promises/x", headers=[("Authorization", value)])
    response = await asyncio.to_thread(exchange, guarded_api.port, data)
    assert error_of(response, 40100)["details"][0]["message"] == "malformed Basic credentials"
    assert response.headers["www-authenticate"] == 'Basic realm="resonate"'


# ---- §1.3: nesting depth, checked before any parser recurses ---------------------------------

BODY_ROUTES = [route for route in ROUTES if route.body is not None]


@pytest.mark.parametrize("route", BODY_ROUTES, ids=lambda r: f"{r.method}-{r.path}")
def test_a_deeply_nested_body_is_a_400_on_every_json_route(
    hostile: ServerProcess, route: Route, log: LogWatch
) -> None:
    """`'[' * 100000` used to answer 500 RecursionError."""
    response = send(hostile, route.method, concrete_path(route), body=b"[" * 100_000)
    detail = error_of(response, 40000)["details"][0]
    assert detail["metadata"]["field"] == "body"
    assert f"at most {MAX_JSON_DEPTH} levels" in detail["message"]
    log.assert_calm()


DEEP = b"[" * 5000 + b"]" * 5000  # written out: json.dumps would recurse too


@pytest.mark.parametrize(
    "field",
    [
        pytest.param(b'"param": {"headers": {"h": %s}}', id="in-param-headers"),
        pytest.param(b'"tags": {"t": %s}', id="in-tags"),
        pytest.param(b'"param": {"data": %s}', id="in-param-data"),
        pytest.param(b'"tags": %s', id="as-tags"),
    ],
)
def test_deep_nesting_inside_a_field_is_a_400(hostile: ServerProcess, field: bytes) -> None:
    text = b'{"id": "%s", ' % uid().encode() + field % DEEP + b"}"
    detail = error_of(send(hostile, "POST", "/promises", body=text), 40000)["details"][0]
    assert detail["metadata"]["field"] == "body"


def test_deep_nesting_with_a_lone_surrogate_is_a_400(hostile: ServerProcess) -> None:
    """orjson refuses lone surrogates, and the fallback parser is the one that recursed."""
    text = b'{"id": "\\ud800", "x": ' + b"[" * 3000 + b"]" * 3000 + b"}"
    assert error_of(send(hostile, "POST", "/promises", body=text), 40000)


def test_a_recv_nested_to_the_limit_is_stored_and_listed_one_level_more_is_refused(
    hostile: ServerProcess,
) -> None:
    """A recv's `data` is free-form and is written back out (GET /callbacks, deliveries): a
    value nested 255 levels used to be stored and then fail every write (orjson's limit)."""
    promise_id = uid()
    assert send(hostile, "POST", "/promises", body=create_body(promise_id)).status == 201

    def register(levels: int) -> RawResponse:
        # body (1) > recv (2) > data: the body nests `levels` levels in all.
        recv = {"type": "http", "data": nested(levels - 2)}
        body = json.dumps({"rootPromiseId": uid(), "recv": recv, "timeout": FUTURE}).encode()
        return send(hostile, "POST", f"/promises/callback/{promise_id}", body=body)

    error_of(register(MAX_JSON_DEPTH + 1), 40000)
    assert register(MAX_JSON_DEPTH).status == 201
    listed = send(hostile, "GET", f"/callbacks?promiseId={promise_id}")
    assert listed.status == 200 and len(listed.json()["callbacks"]) == 1


@pytest.mark.parametrize(
    "path", ["/promises", "/schedules", "/tasks", "/locks", "/callbacks?promiseId=x&"]
)
def test_a_deeply_nested_cursor_is_a_400(hostile: ServerProcess, path: str) -> None:
    """Cursors are base64 JSON from the client: the same limit applies (was 500)."""
    cursor = base64.urlsafe_b64encode(b"[" * 5000).decode().rstrip("=")
    separator = "" if path.endswith("&") else "?"
    response = send(hostile, "GET", f"{path}{separator}cursor={cursor}")
    assert error_of(response, 40000)["details"][0]["message"] == "The cursor is invalid."


@pytest.mark.parametrize(
    ("text", "fits"),
    [
        (b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH, True),
        (b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1), False),
        (b"{" + b'"a":{' * (MAX_JSON_DEPTH - 1) + b"}" * MAX_JSON_DEPTH, True),
        (b'{"s": "' + b"[" * 1000 + b'"}', True),  # brackets inside strings do not count
        (b'{"s": "\\"' + b"[" * 1000 + b'"}', True),  # nor after an escaped quote
        (b"[" + b"[]," * 1000 + b"[]]", True),  # many brackets, shallow
        (b"[" * 100_000, False),
    ],
    ids=["limit", "limit+1", "objects", "in-string", "escaped-quote", "wide", "unterminated"],
)
def test_nesting_is_measured_without_parsing(text: bytes, fits: bool) -> None:
    assert fits_nesting_limit(text) is fits


# ---- undecodable bodies -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "encoding"),
    [
        ("POST", "/promises", b"gzip"),
        ("PATCH", "/promises/hostile", b"gzip"),
        ("POST", "/promises", b"deflate"),
        ("POST", "/schedules", b"gzip"),
    ],
)
def test_a_body_that_does_not_decode_is_a_json_400_and_closes_the_connection(
    hostile: ServerProcess, log: LogWatch, method: str, path: str, encoding: bytes
) -> None:
    """Was 500 (RequestPayloadError) with an "Unhandled exception" traceback in the log."""
    response = send(
        hostile,
        method,
        path,
        body=b'{"id": "not compressed"}',
        headers=[("Content-Encoding", encoding)],
        close=False,
    )
    detail = error_of(response, 40000)["details"][0]
    assert detail["metadata"]["field"] == "body"
    assert "could not be decoded" in detail["message"]
    assert response.closed  # nothing more can be read from that connection
    log.assert_calm()


@pytest.mark.parametrize("encoding", [b"br", b"zstd"])
def test_an_unsupported_content_encoding_is_a_json_400(
    hostile: ServerProcess, log: LogWatch, encoding: bytes
) -> None:
    """Was aiohttp's plain-text 400 (which advised installing a package)."""
    response = send(
        hostile, "POST", "/promises", body=b"{}", headers=[("Content-Encoding", encoding)]
    )
    error = error_of(response, 40000)
    assert "not supported" in error["details"][0]["message"]
    log.assert_calm()


def test_a_gzip_body_is_still_read(hostile: ServerProcess) -> None:
    body = gzip.compress(create_body(uid()))
    response = send(
        hostile, "POST", "/promises", body=body, headers=[("Content-Encoding", b"gzip")]
    )
    assert response.status == 201


def test_a_body_that_stops_arriving_is_a_408(hostile: ServerProcess, log: LogWatch) -> None:
    """A client that declares more body than it sends would hold its handler forever."""
    data = b"POST /promises HTTP/1.1\r\nHost: test\r\nContent-Length: 100\r\n\r\n{"
    response = exchange(hostile.port, data, timeout=10)
    assert "arrived for 2 s" in error_of(response, 40800)["details"][0]["message"]
    log.assert_calm()


def test_an_unknown_expectation_is_a_json_400(hostile: ServerProcess) -> None:
    """aiohttp answered plain-text 417 before any middleware ran."""
    response = send(hostile, "POST", "/promises", body=b"{}", headers=[("Expect", b"teapot")])
    assert "Unknown Expect" in error_of(response, 40000)["details"][0]["message"]


# ---- requests the HTTP parser refuses --------------------------------------------------------

REQUEST_LINE = b"GET /promises/x HTTP/1.1\r\nHost: test\r\n"
PARSER_CASES = [
    pytest.param(REQUEST_LINE + b"X-A: a\x00b\r\n\r\n", 40000, id="nul-in-header"),
    pytest.param(REQUEST_LINE + b"X-A: " + b"a" * 9000 + b"\r\n\r\n", 43100, id="header-too-long"),
    pytest.param(
        REQUEST_LINE + b"".join(b"X-%d: v\r\n" % i for i in range(130)) + b"\r\n",
        43100,
        id="too-many-headers",
    ),
    pytest.param(b"G@T /healthz HTTP/1.1\r\nHost: test\r\n\r\n", 40000, id="bad-method"),
    pytest.param(b"GET /hea lthz HTTP/1.1\r\nHost: test\r\n\r\n", 40000, id="space-in-path"),
    pytest.param(
        b"GET /promises/\xff HTTP/1.1\r\nHost: test\r\n\r\n", 40000, id="raw-0xff-in-path"
    ),
    pytest.param(b"GET /healthz HTTP/1.1\r\n\r\n", 40000, id="no-host"),
    pytest.param(b"GET /healthz HTTP/9.9\r\nHost: test\r\n\r\n", 40000, id="bad-version"),
    pytest.param(
        b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: test\r\n\r\n", 40000, id="line-too-long"
    ),
    pytest.param(
        b"POST /promises HTTP/1.1\r\nHost: test\r\nContent-Length: abc\r\n\r\n",
        40000,
        id="bad-content-length",
    ),
    pytest.param(
        b"POST /promises HTTP/1.1\r\nHost: test\r\nContent-Length: 2\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        40000,
        id="length-and-chunked",
    ),
    pytest.param(
        b"POST /promises HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        40000,
        id="bad-chunk-size",
    ),
    pytest.param(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 40000, id="tls-hello"),
]


@pytest.mark.parametrize(("data", "code"), PARSER_CASES)
def test_a_request_the_parser_refuses_gets_the_json_error_body(
    hostile: ServerProcess, log: LogWatch, data: bytes, code: int
) -> None:
    """Was aiohttp's plain text, and an ERROR with a full traceback per request (a client
    could flood the log). Now: the JSON body, the connection closed, one INFO line at most."""
    response = exchange(hostile.port, data)
    error = error_of(response, code)
    assert error["details"][0]["message"].startswith("The request could not be parsed")
    assert response.headers["resonate-version"]
    assert response.closed
    log.assert_calm()


@pytest.mark.parametrize(("data", "code"), PARSER_CASES[:3])
def test_the_poll_listener_refuses_them_the_same_way(
    hostile: ServerProcess, log: LogWatch, data: bytes, code: int
) -> None:
    error_of(exchange(hostile.poll_port, data), code)
    log.assert_calm()


# ---- §1.6: a 5xx tells the client nothing internal, and the log tells it once ------------------

INTERNAL = "invalid input for query argument $8: 'k\\udcff'"


class FailingStore:
    """A store whose every operation fails the way a driver does, quoting its input."""

    kind = "sqlite"

    async def run(self, operation: Any, **_: Any) -> Any:
        cause = ValueError(INTERNAL)
        answer = ResonateError(
            Code.STORE_ERROR,
            "store error: the operation failed and was rolled back",
            cause=f"DataError: {INTERNAL}",
        )
        raise answer from cause

    read = run


@pytest.fixture
async def failing_api() -> Any:
    ctx = Context(store=FailingStore(), clock=ManualClock())  # type: ignore[arg-type]
    client = TestClient(TestServer(create_api_app(ctx, max_body_size=1024, metrics=None)))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()


async def test_a_store_error_body_names_the_request_id_and_nothing_internal(
    failing_api: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    response = await failing_api.get("/promises/x", headers={"request-id": "req-42"})
    assert response.status == 500
    text = await response.text()
    assert "$8" not in text and "DataError" not in text and "udcff" not in text
    detail = json.loads(text)["error"]["details"][0]
    assert detail["@type"] == "ServerError"
    assert "req-42" in detail["message"] and detail["metadata"]["requestId"] == "req-42"
    logged = [record for record in caplog.records if "$8" in record.getMessage()]
    assert len(logged) == 1  # the detail goes to the log once, with the request id
    assert "req-42" in logged[0].getMessage() and logged[0].levelno == logging.ERROR
    assert logged[0].exc_info is not None  # with the driver's traceback


async def test_a_5xx_without_a_usable_request_id_gets_a_generated_one(
    failing_api: TestClient,
) -> None:
    response = await failing_api.get("/stats")  # no request-id header
    detail = (await response.json())["error"]["details"][0]
    uuid.UUID(detail["metadata"]["requestId"])


async def test_the_sqlite_store_keeps_driver_text_out_of_its_answer(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "s.db"))
    await store.open()
    try:

        async def hostile_statement(tx: Any) -> None:
            tx.conn.execute("SELECT ?", ("k\udcff",))  # UnicodeEncodeError, quoting the value

        with pytest.raises(ResonateError) as raised:
            await store.run(hostile_statement)
    finally:
        await store.close()
    answer = raised.value
    assert answer.code is Code.STORE_ERROR
    assert "Unicode" not in str(answer) and "udcff" not in str(answer)
    assert "UnicodeEncodeError" in answer.cause
    assert isinstance(answer.__cause__, UnicodeEncodeError)


async def test_the_postgres_store_keeps_driver_text_out_of_its_answer() -> None:
    if not pg.DSN:
        pytest.skip(pg.SKIP_REASON)
    from resonate.store.postgres.store import PostgresStore

    dsn = await pg.create_schema()
    store = PostgresStore(dsn, pool_size=1)
    await store.open()
    try:

        async def hostile_statement(tx: Any) -> None:
            await tx.conn.fetchval("SELECT $1::int", "secret-input")

        with pytest.raises(ResonateError) as raised:
            await store.run(hostile_statement)
    finally:
        await store.close()
        await pg.drop_schema(dsn)
    answer = raised.value
    assert answer.code is Code.STORE_ERROR
    assert "secret-input" not in str(answer)
    assert "secret-input" in answer.cause


# ---- §11.4: the OpenAPI document describes empty answers as empty ------------------------------

DOCUMENT = build_document(ROUTES)


def operations() -> Iterator[tuple[str, str, dict]]:
    for path, item in DOCUMENT["paths"].items():
        for method, operation in item.items():
            yield method.upper(), path, operation


def test_no_204_answer_has_content() -> None:
    no_content = [
        (method, path)
        for method, path, operation in operations()
        for status, response in operation["responses"].items()
        if status == "204"
    ]
    assert ("POST", "/locks/release") in no_content
    assert ("DELETE", "/schedules/{id}") in no_content
    for method, path, operation in operations():
        if "204" in operation["responses"]:
            assert "content" not in operation["responses"]["204"], (method, path)


@pytest.mark.parametrize("status", ["200", "201"])
def test_a_task_drop_answer_has_no_content(status: str) -> None:
    """§1.3: the 200/201 of task drop have no body."""
    for path in ("/tasks/drop", "/tasks/drop/{ref}"):
        operation = next(op for _, p, op in operations() if p == path)
        assert "content" not in operation["responses"][status], path


def test_the_poll_stream_is_an_event_stream() -> None:
    """§11.4: `GET /poll/{group}/{id}` is described as a `text/event-stream` response."""
    operation = DOCUMENT["paths"]["/poll/{path}"]["get"]
    assert set(operation["responses"]["200"]["content"]) == {"text/event-stream"}


def test_every_header_parameter_is_capped_at_1024() -> None:
    for method, path, operation in operations():
        for param in operation["parameters"]:
            if param["in"] == "header" and "enum" not in param["schema"]:
                schema = param["schema"]
                assert schema.get("maxLength") == 1024 or "pattern" in schema, (method, path)


def test_routes_that_read_headers_or_bodies_list_400_and_body_routes_408() -> None:
    for method, path, operation in operations():
        statuses = set(operation["responses"])
        if any(param["in"] == "header" for param in operation["parameters"]):
            assert "400" in statuses, (method, path)
        if "requestBody" in operation:
            assert "408" in statuses, (method, path)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("DELETE", "/schedules/{id}", None),
        ("POST", "/locks/release", '{"resourceId": "{id}", "executionId": "e"}'),
    ],
)
def test_the_204_answers_really_are_empty(
    hostile: ServerProcess, method: str, path: str, body: str | None
) -> None:
    resource = uid()
    if path.startswith("/schedules"):
        schedule = {"id": resource, "cron": "0 0 1 1 *", "promiseId": "p.{{.timestamp}}"}
        assert send(hostile, "POST", "/schedules", body=json.dumps(schedule).encode()).status == 201
    else:
        lock = {"resourceId": resource, "executionId": "e", "processId": "p", "ttl": 60_000}
        assert send(hostile, "POST", "/locks/acquire", body=json.dumps(lock).encode()).status == 201
    raw_body = body.replace("{id}", resource).encode() if body else None
    response = send(hostile, method, path.replace("{id}", resource), body=raw_body)
    assert response.status == 204 and response.body == b""
    assert "content-type" not in response.headers
