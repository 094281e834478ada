"""The gRPC transport of the *_over_grpc suites (tests/grpc/transport.py): its requests really
go over gRPC, it answers as the HTTP API does (the same script of REST requests, over HTTP and
over gRPC on one server, gets the same statuses and bodies), and what gRPC cannot carry raises
instead of answering."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import httpx
import pytest

from tests.grpc.transport import GrpcLiveServer, NotRepresentable, RouteNotOverGrpc, grpc_live

T = 2**53
CREATE = {
    "id": "{p}wf",
    "timeout": T,
    "param": {"headers": {"a": "b"}, "data": "eA=="},
    "tags": {"resonate:invoke": "poll://any@g"},
}
FENCE = {"task-id": "__invoke:{p}wf", "task-counter": "1"}
LOCK = {"resourceId": "{p}r", "executionId": "e1", "processId": "{p}p", "ttl": 1000}
SCHEDULE = {
    "id": "{p}s",
    "cron": "*/5 * * * *",
    "promiseId": "{{{{.id}}}}.{{{{.timestamp}}}}",
    "description": "d",
    "tags": {"a": "b"},
    "promiseTags": {"k": "v"},
    "promiseParam": {"data": "eQ=="},
}

# (method, path, JSON body, headers): every route of the transport, answers and errors both.
SCRIPT: list[tuple[str, str, Any, dict[str, str]]] = [
    ("POST", "/promises", CREATE, {"idempotency-key": "k", "request-id": "r1"}),
    ("POST", "/promises", CREATE, {"idempotency-key": "k"}),
    ("POST", "/promises", CREATE, {"idempotency-key": "k", "strict": "true"}),
    ("POST", "/promises", CREATE, {}),
    ("POST", "/promises", {"id": "", "timeout": 1}, {}),
    ("GET", "/promises/{p}wf", None, {}),
    ("GET", "/promises/{p}missing", None, {}),
    ("GET", "/promises?id={p}*&state=PENDING&tags[resonate:invoke]=poll://any@g", None, {}),
    ("GET", "/promises?id={p}*&limit=1", None, {}),
    ("GET", "/promises?id={p}*&state=bogus", None, {}),
    ("GET", "/promises", None, {}),
    ("POST", "/tasks/claim", {"id": "__invoke:{p}wf", "counter": 2, "processId": "{p}p"}, {}),
    (
        "POST",
        "/tasks/claim",
        {"id": "__invoke:{p}wf", "counter": 1, "processId": "{p}p", "ttl": 9},
        {},
    ),
    ("POST", "/tasks/claim", {"id": "__invoke:{p}wf", "counter": 1, "processId": "other"}, {}),
    ("GET", "/tasks/__invoke:{p}wf", None, {}),
    ("GET", "/tasks/__invoke:{p}nope", None, {}),
    ("GET", "/tasks?rootPromiseId={p}wf&state=claimed", None, {}),
    ("GET", "/tasks?state=running", None, {}),
    ("GET", "/tasks?cursor=xyz", None, {}),
    ("POST", "/tasks/heartbeat", {"processId": "{p}p"}, {}),
    ("POST", "/tasks/heartbeat", {}, {}),
    ("POST", "/promises", {"id": "{p}child", "timeout": T}, FENCE),
    ("POST", "/promises", {"id": "{p}child2", "timeout": T}, {**FENCE, "task-counter": "2"}),
    (
        "POST",
        "/promises/callback/{p}child",
        {"rootPromiseId": "{p}wf", "recv": "poll://any@g", "timeout": T},
        FENCE,
    ),
    (
        "POST",
        "/promises/callback/{p}child",
        {"rootPromiseId": "{p}wf", "recv": "poll://any@g", "timeout": T},
        {},
    ),
    ("POST", "/callbacks", {"promiseId": "{p}child", "rootPromiseId": "{p}child", "recv": "x"}, {}),
    ("POST", "/callbacks", {"promiseId": "{p}nope", "rootPromiseId": "{p}wf", "recv": "x"}, {}),
    (
        "POST",
        "/promises/subscribe/{p}child",
        {"id": "s1", "recv": {"type": "http", "data": {"url": "http://h/x"}}, "timeout": T},
        {},
    ),
    ("POST", "/subscriptions", {"promiseId": "{p}child", "Id": "s2", "recv": "poll://any@g"}, {}),
    ("POST", "/subscriptions", {"promiseId": "{p}child", "id": "s3"}, {}),
    (
        "PATCH",
        "/promises/{p}child",
        {"state": "resolved", "value": {"data": "eQ=="}},
        {**FENCE, "idempotency-key": "c"},
    ),
    ("PATCH", "/promises/{p}child", {"state": "RESOLVED"}, {"idempotency-key": "c"}),
    ("PATCH", "/promises/{p}child", {"state": "REJECTED"}, {}),
    ("PATCH", "/promises/{p}child2", {"state": "rejected_canceled"}, {}),
    ("PATCH", "/promises/{p}wf", {"state": "nope"}, {}),
    ("PATCH", "/promises/{p}wf", {"value": {}}, {}),
    ("POST", "/tasks/complete", {"id": "__invoke:{p}wf", "counter": 3}, {}),
    ("POST", "/tasks/drop", {"id": "__invoke:{p}wf", "counter": 1}, {}),
    ("POST", "/tasks/drop", {"id": "__invoke:{p}wf", "counter": 2}, {}),
    ("POST", "/tasks/claim", {"id": "__invoke:{p}wf", "counter": 2, "processId": "{p}p"}, {}),
    ("POST", "/tasks/complete", {"id": "__invoke:{p}wf", "counter": 2}, {}),
    ("POST", "/tasks/complete", {"id": "__invoke:{p}wf", "counter": 0}, {}),
    (
        "POST",
        "/promises/task",
        {
            "promise": {"id": "{p}w2", "timeout": T, "tags": CREATE["tags"]},
            "task": {"processId": "{p}q", "ttl": 5},
        },
        {"idempotency-key": "k"},
    ),
    (
        "POST",
        "/promises/task",
        {"promise": {"id": "{p}w2", "timeout": T}, "task": {"processId": "{p}z"}},
        {"idempotency-key": "k"},
    ),
    ("POST", "/promises/task", {"promise": {"id": "{p}w3", "timeout": T}}, {}),
    ("POST", "/locks/acquire", LOCK, {}),
    ("POST", "/locks/acquire", {**LOCK, "executionId": "e2"}, {}),
    ("POST", "/locks/acquire", {**LOCK, "resourceId": ""}, {}),
    ("GET", "/locks/{p}r", None, {}),
    ("GET", "/locks/{p}nope", None, {}),
    ("GET", "/locks?resourceId={p}*&processId={p}p", None, {}),
    ("GET", "/locks?limit=101", None, {}),
    ("POST", "/locks/heartbeat", {"processId": "{p}p"}, {}),
    ("POST", "/locks/release", {"resourceId": "{p}r", "executionId": "e1"}, {}),
    ("POST", "/locks/release", {"resourceId": "{p}r", "executionId": "e1"}, {}),
    ("POST", "/schedules", SCHEDULE, {"idempotency-key": "k"}),
    ("POST", "/schedules", {**SCHEDULE, "cron": "@daily"}, {"idempotency-key": "k"}),
    ("POST", "/schedules", SCHEDULE, {}),
    ("POST", "/schedules", {**SCHEDULE, "id": "{p}s2", "cron": "hello"}, {}),
    ("POST", "/schedules", {**SCHEDULE, "id": "{p}s3", "promiseId": "{{{{.foo}}}}"}, {}),
    ("POST", "/schedules", {**SCHEDULE, "id": "{p}s4", "description": None, "desc": "old"}, {}),
    ("GET", "/schedules/{p}s", None, {}),
    ("GET", "/schedules?id={p}*&tags[a]=b", None, {}),
    ("GET", "/schedules", None, {}),
    ("DELETE", "/schedules/{p}s", None, {}),
    ("DELETE", "/schedules/{p}s", None, {}),
    ("GET", "/schedules/{p}s", None, {}),
]


def fill(value: Any, prefix: str) -> Any:
    if isinstance(value, str):
        return value.format(p=prefix)
    if isinstance(value, dict):
        return {fill(k, prefix): fill(v, prefix) for k, v in value.items()}
    return value


# A refused state names the values of its protocol: the REST strings (`resolved`, `init`) over
# HTTP, the enum's over gRPC (an unknown name there is a value out of the enum, and an absent
# state is the enum's UNSPECIFIED, which proto3 cannot tell from a missing one).
STATE_CHOICES = re.compile(
    r"The field state (?:is required|must be (?:one of [^.]*|a task state))\."
)


def normal(response: httpx.Response, prefix: str) -> tuple[int, Any]:
    """The status and body, the id prefix and the port of the links blanked, cursors (which
    encode the ids) reduced to their presence, the choices of a refused state left out."""
    if not response.content:
        return response.status_code, None
    body = response.json()
    if isinstance(body, dict) and "cursor" in body:
        body["cursor"] = body["cursor"] is not None
    text = json.dumps(body, sort_keys=True).replace(prefix, "<p>")
    text = STATE_CHOICES.sub("The field state must be one of its states.", text)
    return response.status_code, json.loads(re.sub(r"127\.0\.0\.1:\d+", "<host>", text))


async def test_both_protocols_answer_alike(live: GrpcLiveServer) -> None:
    """The script over HTTP (ids prefixed `h`) and over gRPC (prefixed `g`) on one server and
    one clock: every answer the same, errors' codes, messages and details included."""
    async with httpx.AsyncClient(base_url=live.server.api_url) as http:
        for method, path, body, headers in SCRIPT:
            answers = []
            for client, prefix in ((http, "hh"), (live.client, "gg")):
                response = await client.request(
                    method,
                    fill(path, prefix),
                    json=fill(body, prefix),
                    headers=fill(headers, prefix),
                )
                answers.append(normal(response, prefix))
            assert answers[0] == answers[1], (method, path, body, headers)


async def test_requests_go_over_grpc(live: GrpcLiveServer) -> None:
    await live.client.post("/locks/acquire", json={**LOCK, "resourceId": "r"})
    await live.client.get("/locks/r")
    text = live.server.metrics.render().decode()
    assert 'api_requests_total{protocol="grpc",status="20100",type="AcquireLock"} 1.0' in text
    assert 'api_requests_total{protocol="grpc",status="20000",type="ReadLock"} 1.0' in text
    assert 'protocol="http"' not in text


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/callbacks?promiseId=p"),
        ("GET", "/tasks/claim/__invoke:p/1"),
        ("POST", "/"),
        ("GET", "/stats"),
        ("GET", "/readyz"),
        ("PUT", "/locks/acquire"),
        ("GET", "/nowhere"),
    ],
)
async def test_routes_without_a_grpc_method_raise(live: GrpcLiveServer, method, path) -> None:
    with pytest.raises(RouteNotOverGrpc, match=re.escape(path.partition("?")[0])):
        await live.client.request(method, path, json={})


@pytest.mark.parametrize(
    ("path", "sent"),
    [
        ("/locks/acquire", {"content": b"[]"}),
        ("/locks/acquire", {"json": {**LOCK, "ttl": "5"}}),
        ("/locks/acquire", {"json": {**LOCK, "ttl": 2**63}}),
        ("/locks/acquire", {"json": {**LOCK, "processId": 5}}),
        ("/schedules", {"json": {**SCHEDULE, "timezone": "UTC"}}),
        ("/promises", {"json": CREATE, "headers": {"strict": "maybe"}}),
        ("/promises", {"json": {**CREATE, "param": {"data": "not base64!"}}}),
    ],
)
async def test_what_grpc_cannot_carry_raises(live: GrpcLiveServer, path, sent) -> None:
    with pytest.raises(NotRepresentable):
        await live.client.post(path, **sent)
    with pytest.raises(NotRepresentable):
        await live.client.get("/locks", params={"cursor": ""})


async def test_credentials_travel_and_a_refusal_answers_as_http(tmp_path, store_kind) -> None:
    """``Authorization`` is the ``authorization`` metadata; a 401 has the HTTP body and the
    challenge header."""
    async with grpc_live(tmp_path, store_kind, "--api-http-auth", "user=pass") as live:
        good = {"Authorization": "Basic " + base64.b64encode(b"user:pass").decode()}
        async with httpx.AsyncClient(base_url=live.server.api_url) as http:
            for headers in ({}, {"Authorization": "Basic eDp5"}, good):
                over_http = await http.get("/locks/r", headers=headers)
                over_grpc = await live.client.get("/locks/r", headers=headers)
                assert over_grpc.status_code == over_http.status_code
                assert over_grpc.json() == over_http.json()
                challenge = over_http.headers.get("www-authenticate")
                assert over_grpc.headers.get("www-authenticate") == challenge
        assert over_grpc.status_code == 404  # authenticated: no such lock
