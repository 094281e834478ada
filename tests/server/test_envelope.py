"""The 2026-04-01 protocol's envelope and promise kinds (protocol-2026.md §2, §3.1, §4.1, §4.4,
§7, P1, P3-P5), through real HTTP on every store: the envelope and its status table, the promise
kinds, the debug kinds refused outside debug mode, and the interplay with the REST API over the
one promises table."""

from __future__ import annotations

import base64
import time
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.server.promise_setup import now_ms

VERSION = "2026-04-01"
HOUR = 3_600_000
NOT_AN_OBJECT = "Invalid 'data' field — must be an object"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def nulls(value: Any, path: str = "$") -> list[str]:
    """The paths of every JSON null in ``value`` (P5: replies never carry one)."""
    if value is None:
        return [path]
    if isinstance(value, dict):
        return [p for key, item in value.items() for p in nulls(item, f"{path}.{key}")]
    if isinstance(value, list):
        return [p for index, item in enumerate(value) for p in nulls(item, f"{path}[{index}]")]
    return []


def checked(response: httpx.Response) -> dict[str, Any]:
    """The reply envelope, after the rules every reply keeps (§2, P5)."""
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"kind", "head", "data"}
    assert body["head"]["status"] == response.status_code
    assert body["head"]["version"] == VERSION
    assert set(body["head"]) == {"corrId", "status", "version"}
    assert nulls(body) == []
    if response.status_code == 200:
        assert isinstance(body["data"], dict)
    else:
        assert isinstance(body["data"], str)
    return body


def post_raw(api: httpx.Client, content: bytes, headers: dict[str, str] | None = None):
    response = api.post("/", content=content, headers=headers or {})
    return checked(response)


def send(api: httpx.Client, kind: str, data: Any, corr_id: str = "c-1") -> dict[str, Any]:
    body = {"kind": kind, "head": {"corrId": corr_id, "version": VERSION}, "data": data}
    reply = checked(api.post("/", json=body))
    assert reply["kind"] == kind
    assert reply["head"]["corrId"] == corr_id
    return reply


def status(reply: dict[str, Any]) -> int:
    return reply["head"]["status"]


def create(api, promise_id: str, timeout_at: int | None = None, **extra: Any) -> dict:
    data = {"id": promise_id, "timeoutAt": now_ms() + HOUR if timeout_at is None else timeout_at}
    return send(api, "promise.create", {**data, **extra})


# ---- §2: the envelope and its status table -------------------------------------------------

ENVELOPE_CASES = [
    # (rule, raw body, status, echoed kind, echoed corrId, data or its prefix)
    ("not JSON: nothing to echo", b"{nope", 400, "unknown", "0", None),
    ("a JSON array is no envelope", b"[1]", 400, "unknown", "0", None),
    (
        "kind missing",
        b'{"head":{"corrId":"k1","version":"2026-04-01"},"data":{}}',
        400,
        "unknown",
        "k1",
        None,
    ),
    (
        "kind empty",
        b'{"kind":"","head":{"corrId":"k2","version":"2026-04-01"},"data":{}}',
        400,
        "unknown",
        "k2",
        None,
    ),
    (
        "kind not a string",
        b'{"kind":7,"head":{"corrId":"k3","version":"2026-04-01"},"data":{}}',
        400,
        "unknown",
        "k3",
        None,
    ),
    ("head missing", b'{"kind":"promise.get","data":{}}', 400, "promise.get", "0", None),
    (
        "corrId required",
        b'{"kind":"promise.get","head":{"version":"2026-04-01"},"data":{"id":"x"}}',
        400,
        "promise.get",
        "0",
        None,
    ),
    (
        "corrId must be a string",
        b'{"kind":"promise.get","head":{"corrId":5,"version":"2026-04-01"},"data":{}}',
        400,
        "promise.get",
        "0",
        None,
    ),
    (
        "version required",
        b'{"kind":"promise.get","head":{"corrId":"v1"},"data":{"id":"x"}}',
        400,
        "promise.get",
        "v1",
        "Unsupported protocol version",
    ),
    (
        "version must be exactly 2026-04-01",
        b'{"kind":"promise.get","head":{"corrId":"v2","version":"2025-01-01"},"data":{}}',
        400,
        "promise.get",
        "v2",
        "Unsupported protocol version",
    ),
    (
        "unknown kind",
        b'{"kind":"promise.frobnicate","head":{"corrId":"u1","version":"2026-04-01"},"data":{}}',
        400,
        "promise.frobnicate",
        "u1",
        "Unknown operation: promise.frobnicate",
    ),
    (
        "data missing",
        b'{"kind":"promise.get","head":{"corrId":"d1","version":"2026-04-01"}}',
        400,
        "promise.get",
        "d1",
        NOT_AN_OBJECT,
    ),
    (
        "data an array",
        b'{"kind":"promise.get","head":{"corrId":"d2","version":"2026-04-01"},"data":[]}',
        400,
        "promise.get",
        "d2",
        NOT_AN_OBJECT,
    ),
    (
        "data a string",
        b'{"kind":"promise.get","head":{"corrId":"d3","version":"2026-04-01"},"data":"x"}',
        400,
        "promise.get",
        "d3",
        NOT_AN_OBJECT,
    ),
    (
        "unknown head fields are ignored",
        b'{"kind":"promise.get","head":{"corrId":"h1","version":"2026-04-01",'
        b'"resonate:origin":"x","auth":"t"},"data":{"id":"envelope-missing"}}',
        404,
        "promise.get",
        "h1",
        None,
    ),
]


@pytest.mark.parametrize(
    ("rule", "raw", "expected", "kind", "corr_id", "message"),
    ENVELOPE_CASES,
    ids=[case[0] for case in ENVELOPE_CASES],
)
def test_envelope_status_table(api, rule, raw, expected, kind, corr_id, message):
    reply = post_raw(api, raw)
    assert status(reply) == expected, rule
    assert reply["kind"] == kind, rule
    assert reply["head"]["corrId"] == corr_id, rule
    if message is not None:
        assert reply["data"].startswith(message), rule


DEBUG_KINDS = ["debug.start", "debug.stop", "debug.reset", "debug.snap", "debug.tick"]


@pytest.mark.parametrize("kind", DEBUG_KINDS)
def test_debug_kinds_are_forbidden_outside_debug_mode(api, kind):
    reply = send(api, kind, {})
    assert status(reply) == 403
    assert reply["data"].startswith("Forbidden")


def test_a_targeted_create_stores_the_promise_with_a_pending_task(api, uid):
    tags = {"resonate:target": "poll://any@default"}
    reply = create(api, uid, tags=tags)
    assert status(reply) == 200
    assert reply["data"]["promise"]["state"] == "pending"
    task = send(api, "task.get", {"id": uid})
    assert status(task) == 200
    assert task["data"]["task"] == {"id": uid, "state": "pending", "version": 0, "resumes": 0}


def test_the_reply_status_is_the_http_status_on_success(api, uid):
    reply = create(api, uid)
    assert status(reply) == 200
    assert reply["data"]["promise"]["id"] == uid


@pytest.mark.parametrize(("alias", "probe"), [("/health", "/healthz"), ("/ready", "/readyz")])
def test_health_and_ready_are_aliases(api, alias, probe):
    response = api.get(alias)
    assert response.status_code == 200
    assert response.json() == api.get(probe).json()


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    from tests.support.servers import ServerProcess

    process = ServerProcess(
        tmp_path_factory.mktemp("envelope-auth"), extra_args=["--api-http-auth", "alice=s3cret"]
    )
    process.start()
    yield process
    process.stop()


def test_basic_auth_as_for_rest(secured, uid):
    body = {
        "kind": "promise.get",
        "head": {"corrId": "a1", "version": VERSION},
        "data": {"id": uid},
    }
    denied = checked(httpx.post(secured.url + "/", json=body))
    assert (denied["head"]["status"], denied["data"], denied["kind"]) == (
        401,
        "Unauthorized",
        "promise.get",
    )
    good = "Basic " + base64.b64encode(b"alice:s3cret").decode()
    allowed = checked(httpx.post(secured.url + "/", json=body, headers={"Authorization": good}))
    assert allowed["head"]["status"] == 404  # authenticated: the promise does not exist
    for path in ("/health", "/ready"):
        assert httpx.get(secured.url + path).status_code == 200


# ---- §3.1, §4.1: promise.create -------------------------------------------------------------


def test_create_renders_the_2026_record(api, uid):
    before = now_ms()
    timeout_at = before + HOUR
    param = {"headers": {"h": "v"}, "data": b64('"hello"')}
    promise = create(api, uid, timeout_at, param=param, tags={"k": "v"})["data"]["promise"]
    assert set(promise) == {"id", "state", "param", "value", "tags", "timeoutAt", "createdAt"}
    assert promise["state"] == "pending"
    assert promise["param"] == param
    assert promise["value"] == {}
    assert promise["tags"] == {"k": "v"}
    assert promise["timeoutAt"] == timeout_at
    assert before <= promise["createdAt"] <= now_ms()


def test_create_without_tags_has_an_empty_tags_object(api, uid):
    assert create(api, uid)["data"]["promise"]["tags"] == {}


def test_create_of_an_existing_id_returns_the_stored_promise(api, uid):
    first = create(api, uid, param={"data": b64("1")})["data"]["promise"]
    again = create(api, uid, now_ms() + 2 * HOUR, param={"data": b64("2")}, tags={"x": "y"})
    assert status(again) == 200
    assert again["data"]["promise"] == first


@pytest.mark.parametrize(
    ("tags", "state"),
    [({}, "rejected_timedout"), ({"resonate:timer": "true"}, "resolved")],
    ids=["plain-times-out", "timer-resolves"],
)
def test_create_with_a_past_timeout_is_stored_settled(api, uid, tags, state):
    timeout_at = now_ms() - 1000
    promise = create(api, uid, timeout_at, tags=tags)["data"]["promise"]
    assert promise["state"] == state
    assert promise["createdAt"] == promise["settledAt"] == timeout_at
    assert promise["value"] == {}
    assert send(api, "promise.get", {"id": uid})["data"]["promise"] == promise


CREATE_INVALID = [
    ("id missing", {"timeoutAt": 1}),
    ("id empty", {"id": "", "timeoutAt": 1}),
    ("id not a string", {"id": 5, "timeoutAt": 1}),
    ("id with NUL", {"id": "a\u0000b", "timeoutAt": 1}),
    ("timeoutAt missing", {"id": "{uid}"}),
    ("timeoutAt negative", {"id": "{uid}", "timeoutAt": -1}),
    ("timeoutAt a string", {"id": "{uid}", "timeoutAt": "1"}),
    ("timeoutAt a boolean", {"id": "{uid}", "timeoutAt": True}),
    ("timeoutAt a float", {"id": "{uid}", "timeoutAt": 1.5}),
    ("param not an object", {"id": "{uid}", "timeoutAt": 1, "param": "x"}),
    ("param.data not base64", {"id": "{uid}", "timeoutAt": 1, "param": {"data": "%%"}}),
    ("tags not strings", {"id": "{uid}", "timeoutAt": 1, "tags": {"a": 1}}),
    ("tags not an object", {"id": "{uid}", "timeoutAt": 1, "tags": ["a"]}),
    (
        "delay without a target",
        {"id": "{uid}", "timeoutAt": 10**15, "tags": {"resonate:delay": "5"}},
    ),
]


@pytest.mark.parametrize(("rule", "data"), CREATE_INVALID, ids=[c[0] for c in CREATE_INVALID])
def test_create_refuses_invalid_data(api, uid, rule, data):
    data = {k: v.replace("{uid}", uid) if isinstance(v, str) else v for k, v in data.items()}
    reply = send(api, "promise.create", data)
    assert status(reply) == 400, rule
    if isinstance(data.get("id"), str) and data["id"]:
        assert api.get(f"/promises/{quote(data['id'], safe='')}").status_code in (400, 404)


# §4.4 in its lenient form (P4): `<tag>:` and `<tag>.` both continue a lineage.
ID_RULES = [
    ("id equals its origin", "{u}", {"resonate:origin": "{u}"}, 200),
    ("child after ':'", "{u}:1", {"resonate:origin": "{u}"}, 200),
    ("child after '.' (SDK <= 0.11.4)", "{u}.1", {"resonate:origin": "{u}"}, 200),
    ("dotted root, ':' child", "my.{u}:1", {"resonate:origin": "my.{u}"}, 200),
    ("origin must not contain ':'", "{u}:1", {"resonate:origin": "{u}:1"}, 400),
    ("id outside its origin", "{u}-x", {"resonate:origin": "{u}"}, 400),
    ("prefix without separator", "{u}1", {"resonate:origin": "{u}"}, 400),
    ("branch after ':'", "{u}:1:2", {"resonate:branch": "{u}:1"}, 200),
    ("branch after '.'", "{u}:1.2", {"resonate:branch": "{u}:1"}, 200),
    ("parent equal", "{u}:3", {"resonate:parent": "{u}:3"}, 200),
    ("parent after '.'", "{u}.1.2", {"resonate:parent": "{u}.1"}, 200),
    ("parent elsewhere", "{u}:2", {"resonate:parent": "{u}:1"}, 400),
    ("branch elsewhere", "{u}x:1", {"resonate:branch": "{u}"}, 400),
    ("unknown tags are accepted", "{u}", {"resonate:scope": "local", "a": "b"}, 200),
]


@pytest.mark.parametrize(
    ("rule", "promise_id", "tags", "expected"), ID_RULES, ids=[c[0] for c in ID_RULES]
)
def test_id_rules_lenient(api, uid, rule, promise_id, tags, expected):
    promise_id = promise_id.replace("{u}", uid)
    tags = {k: v.replace("{u}", uid) for k, v in tags.items()}
    reply = create(api, promise_id, tags=tags)
    assert status(reply) == expected, rule
    found = status(send(api, "promise.get", {"id": promise_id}))
    assert found == (200 if expected == 200 else 404), rule


# ---- promise.get, lazy timeout (§7) ---------------------------------------------------------


def test_get(api, uid):
    created = create(api, uid)["data"]["promise"]
    reply = send(api, "promise.get", {"id": uid}, corr_id="g-7")
    assert status(reply) == 200
    assert reply["data"]["promise"] == created


@pytest.mark.parametrize(
    ("data", "expected"),
    [({"id": "no-such-promise-envelope"}, 404), ({}, 400), ({"id": 3}, 400), ({"id": ""}, 400)],
    ids=["missing-404", "no-id-400", "id-not-string-400", "empty-id-400"],
)
def test_get_errors(api, data, expected):
    assert status(send(api, "promise.get", data)) == expected


@pytest.mark.parametrize(
    ("tags", "state"),
    [({}, "rejected_timedout"), ({"resonate:timer": "true"}, "resolved")],
    ids=["plain", "timer"],
)
def test_get_times_out_an_overdue_promise(api, uid, tags, state):
    timeout_at = now_ms() + 300
    assert create(api, uid, timeout_at, tags=tags)["data"]["promise"]["state"] == "pending"
    time.sleep(0.4)
    promise = send(api, "promise.get", {"id": uid})["data"]["promise"]
    assert (promise["state"], promise["settledAt"], promise["value"]) == (state, timeout_at, {})


# ---- promise.settle -------------------------------------------------------------------------


@pytest.mark.parametrize("state", ["resolved", "rejected", "rejected_canceled"])
def test_settle_a_pending_promise(api, uid, state):
    create(api, uid)
    before = now_ms()
    value = {"headers": {"a": "b"}, "data": b64('{"ok":1}')}
    reply = send(api, "promise.settle", {"id": uid, "state": state, "value": value})
    assert status(reply) == 200
    promise = reply["data"]["promise"]
    assert (promise["state"], promise["value"]) == (state, value)
    assert before <= promise["settledAt"] <= now_ms()


def test_settle_of_a_settled_promise_returns_it_unchanged(api, uid):
    create(api, uid)
    first = send(api, "promise.settle", {"id": uid, "state": "resolved"})["data"]["promise"]
    again = send(
        api, "promise.settle", {"id": uid, "state": "rejected", "value": {"data": b64("x")}}
    )
    assert status(again) == 200
    assert again["data"]["promise"] == first


def test_settle_of_a_timed_out_promise_returns_it(api, uid):
    timeout_at = now_ms() + 200
    create(api, uid, timeout_at)
    time.sleep(0.3)
    reply = send(api, "promise.settle", {"id": uid, "state": "resolved"})
    assert status(reply) == 200
    promise = reply["data"]["promise"]
    assert (promise["state"], promise["settledAt"]) == ("rejected_timedout", timeout_at)


@pytest.mark.parametrize(
    ("rule", "data", "expected"),
    [
        ("missing promise", {"id": "envelope-none", "state": "resolved"}, 404),
        ("state missing", {"id": "{uid}"}, 400),
        ("state pending", {"id": "{uid}", "state": "pending"}, 400),
        ("state timed out", {"id": "{uid}", "state": "rejected_timedout"}, 400),
        ("state upper-case", {"id": "{uid}", "state": "RESOLVED"}, 400),
        ("state an object", {"id": "{uid}", "state": {}}, 400),
        ("value not an object", {"id": "{uid}", "state": "resolved", "value": 1}, 400),
        ("id missing", {"state": "resolved"}, 400),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_settle_errors(api, uid, rule, data, expected):
    create(api, uid)
    data = {k: v.replace("{uid}", uid) if isinstance(v, str) else v for k, v in data.items()}
    assert status(send(api, "promise.settle", data)) == expected, rule
    assert send(api, "promise.get", {"id": uid})["data"]["promise"]["state"] == "pending"


# ---- promise.search -------------------------------------------------------------------------


def search(api, **data: Any) -> dict[str, Any]:
    reply = send(api, "promise.search", data)
    assert status(reply) == 200, reply
    return reply["data"]


def test_search_pages_by_id_ascending(api, uid):
    ids = [f"{uid}-{suffix}" for suffix in ("b", "D", "a", "C", "e")]
    for promise_id in ids:
        create(api, promise_id, tags={"group": uid})
    seen: list[str] = []
    cursors: list[str] = []
    data = search(api, tags={"group": uid}, limit=2)
    while True:
        seen += [p["id"] for p in data["promises"]]
        if "cursor" not in data:
            break
        assert data["cursor"] == data["promises"][-1]["id"]  # the last id of a full page
        cursors.append(data["cursor"])
        data = search(api, tags={"group": uid}, limit=2, cursor=data["cursor"])
    assert seen == sorted(ids)  # byte order of the id: upper case before lower case
    assert len(cursors) == 2


def test_search_cursor_only_when_more_rows_exist(api, uid):
    for index in range(4):
        create(api, f"{uid}-{index}", tags={"group": uid})
    first = search(api, tags={"group": uid}, limit=2)
    second = search(api, tags={"group": uid}, limit=2, cursor=first["cursor"])
    assert [p["id"] for p in second["promises"]] == [f"{uid}-2", f"{uid}-3"]
    assert "cursor" not in second  # a full page, but the last one
    everything = search(api, tags={"group": uid})  # default limit 100
    assert len(everything["promises"]) == 4
    assert "cursor" not in everything


def test_search_by_state_and_tags(api, uid):
    for name in ("p", "r", "c", "t"):
        create(api, f"{uid}-{name}", tags={"group": uid, "name": name})
    send(api, "promise.settle", {"id": f"{uid}-r", "state": "resolved"})
    send(api, "promise.settle", {"id": f"{uid}-c", "state": "rejected_canceled"})
    create(api, f"{uid}-x", now_ms() - 1, tags={"group": uid})
    by_state = {
        state: [p["id"] for p in search(api, tags={"group": uid}, state=state)["promises"]]
        for state in ("pending", "resolved", "rejected", "rejected_canceled", "rejected_timedout")
    }
    assert by_state == {
        "pending": [f"{uid}-p", f"{uid}-t"],
        "resolved": [f"{uid}-r"],
        "rejected": [],
        "rejected_canceled": [f"{uid}-c"],
        "rejected_timedout": [f"{uid}-x"],
    }
    both = search(api, tags={"group": uid, "name": "t"})["promises"]
    assert [p["id"] for p in both] == [f"{uid}-t"]
    assert search(api, tags={"group": uid, "name": "zzz"}) == {"promises": []}


@pytest.mark.parametrize(
    ("rule", "data"),
    [
        ("limit 0", {"limit": 0}),
        ("limit over 1000", {"limit": 1001}),
        ("limit a string", {"limit": "5"}),
        ("limit a boolean", {"limit": True}),
        ("state upper-case", {"state": "PENDING"}),
        ("state unknown", {"state": "done"}),
        ("tags not strings", {"tags": {"a": 1}}),
        ("cursor not a string", {"cursor": 5}),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_search_refuses_invalid_data(api, rule, data):
    assert status(send(api, "promise.search", data)) == 400, rule


def test_search_accepts_limit_1000(api, uid):
    assert search(api, tags={"group": uid}, limit=1000) == {"promises": []}


# ---- P3: one promises table for both protocols ----------------------------------------------


def test_rest_create_envelope_settle_rest_read(api, uid):
    param = {"headers": {"h": "1"}, "data": b64("p")}
    timeout = now_ms() + HOUR
    rest = api.post("/promises", json={"id": uid, "timeout": timeout, "param": param})
    assert rest.status_code == 201
    promise = send(api, "promise.get", {"id": uid})["data"]["promise"]
    assert (promise["state"], promise["param"], promise["timeoutAt"]) == (
        "pending",
        param,
        timeout,
    )
    value = {"data": b64("v")}
    settled = send(api, "promise.settle", {"id": uid, "state": "rejected", "value": value})
    read = api.get(f"/promises/{uid}").json()
    assert read["state"] == "REJECTED"
    assert read["value"] == value
    assert read["completedOn"] == settled["data"]["promise"]["settledAt"]


def test_envelope_create_rest_settle_envelope_read(api, uid):
    created = create(api, uid, tags={"group": uid}, param={"data": b64("p")})
    assert api.get(f"/promises/{uid}").json()["state"] == "PENDING"
    patched = api.patch(f"/promises/{uid}", json={"state": "RESOLVED", "value": {"data": b64("v")}})
    assert patched.status_code == 201
    promise = send(api, "promise.get", {"id": uid})["data"]["promise"]
    assert promise["state"] == "resolved"
    assert promise["value"] == {"data": b64("v")}
    assert promise["createdAt"] == created["data"]["promise"]["createdAt"]
    assert promise["settledAt"] == patched.json()["completedOn"]
    found = search(api, tags={"group": uid}, state="resolved")["promises"]
    assert found == [promise]


def test_rest_promise_with_key_is_returned_by_an_envelope_create(api, uid):
    api.post(
        "/promises", json={"id": uid, "timeout": now_ms() + HOUR}, headers={"idempotency-key": "k"}
    )
    reply = create(api, uid)
    assert status(reply) == 200
    assert set(reply["data"]["promise"]) == {
        "id",
        "state",
        "param",
        "value",
        "tags",
        "timeoutAt",
        "createdAt",
    }


def test_an_envelope_settlement_fires_rest_callbacks(api, uid):
    root, leaf = f"{uid}-root", f"{uid}-leaf"
    for promise_id in (root, leaf):
        api.post("/promises", json={"id": promise_id, "timeout": now_ms() + HOUR})
    registered = api.post(
        f"/promises/callback/{leaf}",
        json={"rootPromiseId": root, "recv": "poll://any@g", "timeout": now_ms() + HOUR},
    )
    assert registered.status_code == 201
    task_id = quote(f"__resume:{root}:{leaf}", safe="")
    assert api.get(f"/tasks/{task_id}").status_code == 404
    send(api, "promise.settle", {"id": leaf, "state": "resolved"})
    task = api.get(f"/tasks/{task_id}")
    assert task.status_code == 200
    assert task.json()["rootPromiseId"] == root


def test_an_envelope_timeout_is_seen_by_rest(api, uid):
    create(api, uid, now_ms() - 5, tags={"resonate:timer": "true"})
    read = api.get(f"/promises/{uid}").json()
    assert read["state"] == "RESOLVED"
    assert read["createdOn"] == read["completedOn"] == read["timeout"]
