"""The 2026-04-01 protocol's status table (protocol-2026.md §2) row by row, through real HTTP on
every store: 200 (idempotent repeats included), 300, 400, 401, 403, 404, 409 and 422, each
reply checked for the envelope rules (HTTP status = head.status, JSON, kind and corrId echoed,
error data a bare string, no null anywhere: P5). Schedule kinds are out of scope here."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.server.promise_setup import now_ms
from tests.server.protocol_2026_support import (
    HOUR,
    NOT_AN_OBJECT,
    Api,
    any_at,
    callback_action,
    checked,
    create_action,
    create_data,
    envelope,
    lineage,
    settle_action,
    status,
)
from tests.support import pg


@pytest.fixture
def v(api: httpx.Client) -> Api:
    return Api(api)


def later() -> int:
    return now_ms() + HOUR


def target(uid: str) -> str:
    """A group no worker listens to: executes are dropped, states stay put."""
    return any_at(f"nobody-{uid}")


def tags_of(uid: str, promise_id: str, root: str | None = None) -> dict[str, str]:
    return {**lineage(promise_id, root or promise_id), "resonate:target": target(uid)}


# ---- scenario builders: a task in each state --------------------------------------------------


def pending_task(v: Api, uid: str, task_id: str) -> dict[str, Any]:
    created = v.ok("promise.create", create_data(task_id, later(), tags_of(uid, task_id)))
    return created["promise"]


def held_task(v: Api, uid: str, task_id: str, pid: str = "p1") -> dict[str, Any]:
    action = create_action(task_id, later(), tags_of(uid, task_id))
    data = v.ok("task.create", {"pid": pid, "ttl": HOUR, "action": action})
    assert (data["task"]["state"], data["task"]["version"]) == ("acquired", 1)
    return data["task"]


def suspended_task(v: Api, uid: str, task_id: str) -> str:
    """A task suspended on its pending child `<id>:1`; returns the child's id."""
    held_task(v, uid, task_id)
    child = f"{task_id}:1"
    v.ok("promise.create", create_data(child, later(), lineage(child, task_id, child)))
    reply = v.send(
        "task.suspend", {"id": task_id, "version": 1, "actions": [callback_action(child, task_id)]}
    )
    assert (status(reply), reply["data"]) == (200, {})
    return child


def halted_task(v: Api, uid: str, task_id: str) -> None:
    pending_task(v, uid, task_id)
    assert v.ok("task.halt", {"id": task_id}) == {}


def fulfilled_task(v: Api, uid: str, task_id: str) -> None:
    held_task(v, uid, task_id)
    v.ok("task.fulfill", {"id": task_id, "version": 1, "action": settle_action(task_id)})


def task_of(v: Api, task_id: str) -> dict[str, Any]:
    return v.ok("task.get", {"id": task_id})["task"]


# ---- 200: success, including every idempotent repeat ------------------------------------------


def test_200_promise_create_repeat_returns_the_stored_promise(v, uid):
    first = v.ok("promise.create", create_data(uid, later(), {"a": "1"}))
    again = v.send("promise.create", create_data(uid, later() + 5, {"b": "2"}))
    assert (status(again), again["data"]) == (200, first)


def test_200_promise_settle_repeat_returns_the_stored_promise(v, uid):
    v.ok("promise.create", create_data(uid, later()))
    first = v.ok("promise.settle", {"id": uid, "state": "resolved"})
    again = v.send("promise.settle", {"id": uid, "state": "rejected"})
    assert (status(again), again["data"]) == (200, first)


def test_200_register_listener_and_callback_repeats(v, uid):
    awaited, awaiter = f"{uid}:1", uid
    pending_task(v, uid, awaiter)
    v.ok("promise.create", create_data(awaited, later()))
    for _ in range(2):
        listened = v.ok("promise.register_listener", {"awaited": awaited, "address": target(uid)})
        assert listened["promise"]["id"] == awaited
        called = v.ok("promise.register_callback", {"awaited": awaited, "awaiter": awaiter})
        assert called["promise"]["id"] == awaited


def test_200_task_halt_repeat(v, uid):
    halted_task(v, uid, uid)
    assert v.ok("task.halt", {"id": uid}) == {}
    assert task_of(v, uid)["state"] == "halted"


def test_200_heartbeat_of_unknown_tasks(v, uid):
    data = {"pid": "p", "tasks": [{"id": f"{uid}-none", "version": 3}]}
    assert v.ok("task.heartbeat", data) == {}


def test_200_task_create_of_a_fulfilled_task_reads_the_result(v, uid):
    fulfilled_task(v, uid, uid)
    action = create_action(uid, later(), tags_of(uid, uid))
    data = v.ok("task.create", {"pid": "p2", "ttl": 1000, "action": action})
    assert data["task"] == {"id": uid, "state": "fulfilled", "version": 1, "resumes": 0}
    assert data["promise"]["state"] == "resolved"
    assert data["preload"] == []


def test_200_suspend_collapses_duplicate_awaited(v, uid):
    held_task(v, uid, uid)
    child = f"{uid}:1"
    v.ok("promise.create", create_data(child, later()))
    actions = [callback_action(child, uid), callback_action(child, uid)]
    reply = v.send("task.suspend", {"id": uid, "version": 1, "actions": actions})
    assert (status(reply), reply["data"]) == (200, {})
    assert task_of(v, uid)["state"] == "suspended"


# ---- 300: task.suspend when an awaited promise is already settled ----------------------------


def test_300_suspend_with_a_settled_awaited(v, uid):
    held_task(v, uid, uid)
    local = f"{uid}:1"  # a local child: same branch as the workflow, so preloaded
    v.ok("promise.create", create_data(local, later(), lineage(local, uid, uid)))
    v.ok("promise.settle", {"id": local, "state": "resolved", "value": {"data": "InYi"}})
    pending_child = f"{uid}:2"
    v.ok("promise.create", create_data(pending_child, later(), lineage(pending_child, uid)))
    actions = [callback_action(pending_child, uid), callback_action(local, uid)]
    reply = v.send("task.suspend", {"id": uid, "version": 1, "actions": actions})
    assert status(reply) == 300
    assert set(reply["data"]) == {"preload"}
    assert [p["id"] for p in reply["data"]["preload"]] == [local]
    assert reply["data"]["preload"][0]["value"] == {"data": "InYi"}
    task = task_of(v, uid)
    assert (task["state"], task["version"], task["pid"]) == ("acquired", 1, "p1")
    # Nothing was registered: settling the pending child leaves the held task alone.
    v.ok("promise.settle", {"id": pending_child, "state": "resolved"})
    task = task_of(v, uid)
    assert (task["state"], task["version"]) == ("acquired", 1)
    # ... and the worker carries on: it can still fulfil at its version.
    v.ok("task.fulfill", {"id": uid, "version": 1, "action": settle_action(uid)})


# ---- 400: the envelope ------------------------------------------------------------------------

RAW_400 = [
    # (rule, raw body, echoed kind, echoed corrId, exact message or prefix or None)
    ("unparsable body", b"{nope", "unknown", "0", None),
    ("body not an object", b'"x"', "unknown", "0", None),
    (
        "corrId missing",
        b'{"kind":"promise.get","head":{"version":"2026-04-01"},"data":{}}',
        "promise.get",
        "0",
        None,
    ),
    ("head missing", b'{"kind":"promise.get","data":{}}', "promise.get", "0", None),
    (
        "kind empty",
        b'{"kind":"","head":{"corrId":"k","version":"2026-04-01"},"data":{}}',
        "unknown",
        "k",
        None,
    ),
    (
        "version wrong",
        b'{"kind":"promise.get","head":{"corrId":"v","version":"2025-01-01"},"data":{"id":"x"}}',
        "promise.get",
        "v",
        "Unsupported protocol version",
    ),
    (
        "version missing",
        b'{"kind":"task.get","head":{"corrId":"v"},"data":{"id":"x"}}',
        "task.get",
        "v",
        "Unsupported protocol version",
    ),
    (
        "data an array",
        b'{"kind":"task.get","head":{"corrId":"d","version":"2026-04-01"},"data":[]}',
        "task.get",
        "d",
        NOT_AN_OBJECT,
    ),
    (
        "data a string",
        b'{"kind":"task.fence","head":{"corrId":"d","version":"2026-04-01"},"data":"x"}',
        "task.fence",
        "d",
        NOT_AN_OBJECT,
    ),
    (
        "data missing",
        b'{"kind":"task.heartbeat","head":{"corrId":"d","version":"2026-04-01"}}',
        "task.heartbeat",
        "d",
        NOT_AN_OBJECT,
    ),
    (
        "data null",
        b'{"kind":"promise.create","head":{"corrId":"d","version":"2026-04-01"},"data":null}',
        "promise.create",
        "d",
        NOT_AN_OBJECT,
    ),
    (
        "unknown kind",
        b'{"kind":"promise.frobnicate","head":{"corrId":"u","version":"2026-04-01"},"data":{}}',
        "promise.frobnicate",
        "u",
        "Unknown operation: promise.frobnicate",
    ),
    (
        "unknown task kind",
        b'{"kind":"task.claim","head":{"corrId":"u","version":"2026-04-01"},"data":{}}',
        "task.claim",
        "u",
        "Unknown operation: task.claim",
    ),
]


@pytest.mark.parametrize(
    ("rule", "raw", "kind", "corr_id", "message"), RAW_400, ids=[c[0] for c in RAW_400]
)
def test_400_envelope(api, rule, raw, kind, corr_id, message):
    reply = checked(api.post("/", content=raw, headers={"content-type": "application/json"}))
    assert (status(reply), reply["kind"], reply["head"]["corrId"]) == (400, kind, corr_id), rule
    if message is not None:
        if message.endswith("version"):
            assert reply["data"].startswith(message), reply
        else:
            assert reply["data"] == message, reply


# ---- 400: data that fails to validate ---------------------------------------------------------
# Each case gets the uid of a task held at version 1 by pid "p1" (task id = uid, origin uid),
# so that the only right answer is the 400; the task must be untouched afterwards.

Case = Callable[[str], tuple[str, dict[str, Any]]]


def _create(promise_id: str, tags: dict[str, str], timeout_at: int | None = None) -> dict:
    return create_data(promise_id, timeout_at or later(), tags)


def _fence(uid: str, action: Any) -> tuple[str, dict[str, Any]]:
    return "task.fence", {"id": uid, "version": 1, "action": action}


def _task_create(uid: str, action: Any, **extra: Any) -> tuple[str, dict[str, Any]]:
    return "task.create", {"pid": "p9", "ttl": 1000, "action": action, **extra}


def _suspend(uid: str, actions: Any) -> tuple[str, dict[str, Any]]:
    return "task.suspend", {"id": uid, "version": 1, "actions": actions}


T = "resonate:target"
BAD_ADDRESSES = [
    "poll://g",
    "poll://all@g",
    "poll://uni@g",
    "poll://any@",
    "poll://any@g/",
    "poll:/any@g",
    "ftp://host/x",
    "http://",
    "group-name",
    "",
]

DATA_400: list[tuple[str, Case]] = [
    # bad addresses (§6.1)
    *[
        (f"create target {a!r}", lambda u, a=a: ("promise.create", _create(f"{u}-a", {T: a})))
        for a in BAD_ADDRESSES
    ],
    *[
        (
            f"listener address {a!r}",
            lambda u, a=a: ("promise.register_listener", {"awaited": u, "address": a}),
        )
        for a in BAD_ADDRESSES[:4]
    ],
    ("listener address missing", lambda u: ("promise.register_listener", {"awaited": u})),
    (
        "task.create target bad",
        lambda u: _task_create(u, create_action(f"{u}-n", later(), {T: "poll://g"})),
    ),
    (
        "fenced create target bad",
        lambda u: _fence(u, create_action(f"{u}:7", later(), {T: "poll://uni@g"})),
    ),
    # limit > 1000 (and other bad search data)
    ("promise.search limit 1001", lambda u: ("promise.search", {"limit": 1001})),
    ("promise.search limit 0", lambda u: ("promise.search", {"limit": 0})),
    ("task.search limit 1001", lambda u: ("task.search", {"limit": 1001})),
    ("task.search limit 0", lambda u: ("task.search", {"limit": 0})),
    ("task.search state unknown", lambda u: ("task.search", {"state": "running"})),
    ("task.search cursor not a string", lambda u: ("task.search", {"cursor": 3})),
    # id rules (§4.4, lenient P4)
    (
        "origin with ':'",
        lambda u: ("promise.create", _create(f"{u}:1", {"resonate:origin": f"{u}:1"})),
    ),
    ("id outside origin", lambda u: ("promise.create", _create(f"{u}x", {"resonate:origin": u}))),
    ("id outside branch", lambda u: ("promise.create", _create(f"{u}-b", {"resonate:branch": u}))),
    (
        "id outside parent",
        lambda u: ("promise.create", _create(f"{u}:2", {"resonate:parent": f"{u}:1"})),
    ),
    ("id with NUL", lambda u: ("promise.create", _create(f"{u}\u0000", {}))),
    ("id empty", lambda u: ("promise.create", _create("", {}))),
    (
        "task.create id outside origin",
        lambda u: _task_create(
            u, create_action(f"{u}q", later(), {T: "poll://any@g", "resonate:origin": u})
        ),
    ),
    (
        "fenced create id outside branch",
        lambda u: _fence(u, create_action(f"{u}-x", later(), {"resonate:branch": u})),
    ),
    # delay (§3.1)
    (
        "delay not below timeoutAt",
        lambda u: (
            "promise.create",
            _create(f"{u}-d", {T: "poll://any@g", "resonate:delay": str(10**15)}, 10**15),
        ),
    ),
    (
        "delay not an integer",
        lambda u: (
            "promise.create",
            _create(f"{u}-d", {T: "poll://any@g", "resonate:delay": "soon"}),
        ),
    ),
    # task.create's nested action
    ("task.create action missing", lambda u: ("task.create", {"pid": "p", "ttl": 1})),
    ("task.create action not an object", lambda u: _task_create(u, "promise.create")),
    ("task.create action a settle", lambda u: _task_create(u, settle_action(u))),
    (
        "task.create action data not an object",
        lambda u: _task_create(u, {"kind": "promise.create", "head": {}, "data": [1]}),
    ),
    (
        "task.create action without target",
        lambda u: _task_create(u, create_action(f"{u}-n", later(), {})),
    ),
    (
        "task.create action with delay",
        lambda u: _task_create(
            u, create_action(f"{u}-n", later(), {T: "poll://any@g", "resonate:delay": "1"})
        ),
    ),
    (
        "task.create action timeoutAt negative",
        lambda u: _task_create(u, create_action(f"{u}-n", -1, {T: "poll://any@g"})),
    ),
    (
        "task.create ttl 0",
        lambda u: _task_create(u, create_action(f"{u}-n", later(), {T: "poll://any@g"}), ttl=0),
    ),
    (
        "task.create pid missing",
        lambda u: (
            "task.create",
            {"ttl": 5, "action": create_action(f"{u}-n", later(), {T: "poll://any@g"})},
        ),
    ),
    # task.fulfill's nested action
    (
        "fulfill action a create",
        lambda u: ("task.fulfill", {"id": u, "version": 1, "action": create_action(u, later())}),
    ),
    (
        "fulfill settles another promise",
        lambda u: ("task.fulfill", {"id": u, "version": 1, "action": settle_action(f"{u}:1")}),
    ),
    (
        "fulfill state pending",
        lambda u: ("task.fulfill", {"id": u, "version": 1, "action": settle_action(u, "pending")}),
    ),
    ("fulfill action missing", lambda u: ("task.fulfill", {"id": u, "version": 1})),
    # task.suspend's nested actions
    ("suspend actions missing", lambda u: ("task.suspend", {"id": u, "version": 1})),
    ("suspend actions empty", lambda u: _suspend(u, [])),
    ("suspend actions not a list", lambda u: _suspend(u, callback_action(f"{u}:1", u))),
    (
        "suspend action a listener",
        lambda u: _suspend(
            u,
            [
                envelope(
                    "promise.register_listener", {"awaited": f"{u}:1", "address": "poll://any@g"}
                )
            ],
        ),
    ),
    ("suspend awaiter not the task", lambda u: _suspend(u, [callback_action(f"{u}:1", f"{u}:2")])),
    ("suspend awaited is the task", lambda u: _suspend(u, [callback_action(u, u)])),
    ("suspend awaited of another origin", lambda u: _suspend(u, [callback_action(f"{u}x:1", u)])),
    # task.fence's nested action
    ("fence action a callback", lambda u: _fence(u, callback_action(f"{u}:1", u))),
    ("fence action missing", lambda u: ("task.fence", {"id": u, "version": 1})),
    ("fence create of the task's promise", lambda u: _fence(u, create_action(u, later()))),
    ("fence settle of the task's promise", lambda u: _fence(u, settle_action(u))),
    (
        "fence create timeoutAt not an integer",
        lambda u: _fence(u, envelope("promise.create", {"id": f"{u}:1", "timeoutAt": "x"})),
    ),
    ("fence settle state invalid", lambda u: _fence(u, settle_action(f"{u}:1", "done"))),
    # plain field validation of the task kinds
    (
        "acquire version negative",
        lambda u: ("task.acquire", {"id": u, "version": -1, "pid": "p", "ttl": 1}),
    ),
    (
        "acquire version a string",
        lambda u: ("task.acquire", {"id": u, "version": "1", "pid": "p", "ttl": 1}),
    ),
    ("acquire ttl 0", lambda u: ("task.acquire", {"id": u, "version": 1, "pid": "p", "ttl": 0})),
    ("acquire pid missing", lambda u: ("task.acquire", {"id": u, "version": 1, "ttl": 1})),
    ("release version missing", lambda u: ("task.release", {"id": u})),
    ("get id missing", lambda u: ("task.get", {})),
    ("halt id not a string", lambda u: ("task.halt", {"id": 1})),
    ("heartbeat tasks empty", lambda u: ("task.heartbeat", {"pid": "p1", "tasks": []})),
    ("heartbeat tasks not a list", lambda u: ("task.heartbeat", {"pid": "p1", "tasks": {"id": u}})),
    ("heartbeat item not an object", lambda u: ("task.heartbeat", {"pid": "p1", "tasks": [u]})),
    (
        "heartbeat item without version",
        lambda u: ("task.heartbeat", {"pid": "p1", "tasks": [{"id": u}]}),
    ),
    ("heartbeat pid missing", lambda u: ("task.heartbeat", {"tasks": [{"id": u, "version": 1}]})),
    # callbacks
    (
        "callback awaited = awaiter",
        lambda u: ("promise.register_callback", {"awaited": u, "awaiter": u}),
    ),
    (
        "callback across origins",
        lambda u: ("promise.register_callback", {"awaited": f"{u}x", "awaiter": u}),
    ),
    ("callback awaiter missing field", lambda u: ("promise.register_callback", {"awaited": u})),
]


@pytest.mark.parametrize(("rule", "case"), DATA_400, ids=[c[0] for c in DATA_400])
def test_400_invalid_data(v, uid, rule, case):
    held_task(v, uid, uid)
    kind, data = case(uid)
    reply = v.send(kind, data)
    assert status(reply) == 400, (rule, reply)
    task = task_of(v, uid)
    assert (task["state"], task["version"], task["pid"]) == ("acquired", 1, "p1"), rule
    # Nothing was created under the uid's names by the refused request.
    found = v.ok("promise.search", {"tags": {"resonate:origin": uid}})["promises"]
    assert [p["id"] for p in found] == [uid], rule


# ---- 401: basic auth on the API listener ---------------------------------------------------


@pytest.fixture
async def secured(tmp_path: Path, store_kind: str) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process server with `--api-http-auth user=pass` on the store (a fresh schema for
    PostgreSQL: much cheaper than a server process on a fresh database)."""
    from tests.support.live import LiveServer

    dsn = await pg.create_schema() if store_kind == "postgres" else None
    args = [*(pg.store_args(dsn) if dsn else ()), "--api-http-auth", "user=pass"]
    server = LiveServer(tmp_path / "auth.db", *args)
    await server.start()
    try:
        yield server.client
    finally:
        await server.stop()
        if dsn:
            await pg.drop_schema(dsn)


BASIC = "Basic " + base64.b64encode(b"user:pass").decode()


@pytest.mark.parametrize(
    "authorization",
    [None, "Basic " + base64.b64encode(b"user:nope").decode(), "Bearer abc", "Basic !!!"],
    ids=["missing", "wrong-password", "bearer", "garbage"],
)
async def test_401_without_valid_credentials(secured, uid, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    body = envelope("promise.create", create_data(uid, later()), "auth-1")
    reply = checked(await secured.post("/", json=body, headers=headers))
    assert (status(reply), reply["kind"], reply["head"]["corrId"]) == (
        401,
        "promise.create",
        "auth-1",
    )
    assert reply["data"] == "Unauthorized"
    get = envelope("promise.get", {"id": uid}, "auth-2")
    read = checked(await secured.post("/", json=get, headers={"Authorization": BASIC}))
    assert status(read) == 404  # the refused create stored nothing


async def test_401_credentials_accepted(secured, uid):
    body = envelope("promise.create", create_data(uid, later()), "auth-3")
    reply = checked(await secured.post("/", json=body, headers={"Authorization": BASIC}))
    assert status(reply) == 200


async def test_401_on_the_stream_too(secured):
    async with secured.stream("GET", "/poll/g/p") as response:
        assert response.status_code == 401
    headers = {"Authorization": BASIC}
    async with secured.stream("GET", "/poll/g/p", headers=headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")


# ---- 403: debug kinds outside debug mode (P7) ----------------------------------------------


@pytest.mark.parametrize(
    ("kind", "data"),
    [
        ("debug.start", {}),
        ("debug.stop", {}),
        ("debug.reset", {}),
        ("debug.snap", {}),
        ("debug.tick", {"time": 1}),
    ],
)
def test_403_debug_kinds(v, kind, data):
    reply = v.send(kind, data, corr_id=f"dbg-{kind}")
    assert status(reply) == 403
    assert isinstance(reply["data"], str) and reply["data"]


def test_403_debug_tick_does_not_move_time(v, uid):
    v.send("debug.tick", {"time": 10**15})
    v.ok("promise.create", create_data(uid, later()))
    assert v.ok("promise.get", {"id": uid})["promise"]["state"] == "pending"


# ---- 404: the addressed promise or task does not exist -------------------------------------

MISSING_404: list[tuple[str, Case]] = [
    ("promise.get", lambda m: ("promise.get", {"id": m})),
    ("promise.settle", lambda m: ("promise.settle", {"id": m, "state": "resolved"})),
    (
        "register_listener",
        lambda m: ("promise.register_listener", {"awaited": m, "address": "poll://any@g"}),
    ),
    ("task.get", lambda m: ("task.get", {"id": m})),
    ("task.acquire", lambda m: ("task.acquire", {"id": m, "version": 0, "pid": "p", "ttl": 5})),
    ("task.release", lambda m: ("task.release", {"id": m, "version": 1})),
    (
        "task.fulfill",
        lambda m: ("task.fulfill", {"id": m, "version": 1, "action": settle_action(m)}),
    ),
    ("task.suspend", lambda m: _suspend(m, [callback_action(f"{m}:1", m)])),
    ("task.fence create", lambda m: _fence(m, create_action(f"{m}:1", later()))),
    ("task.fence settle", lambda m: _fence(m, settle_action(f"{m}:1"))),
    ("task.halt", lambda m: ("task.halt", {"id": m})),
    ("task.continue", lambda m: ("task.continue", {"id": m})),
]


@pytest.mark.parametrize(("rule", "case"), MISSING_404, ids=[c[0] for c in MISSING_404])
def test_404_nothing_there(v, uid, rule, case):
    kind, data = case(f"{uid}-missing")
    assert status(v.send(kind, data)) == 404, rule


@pytest.mark.parametrize(("rule", "case"), MISSING_404[3:], ids=[c[0] for c in MISSING_404[3:]])
def test_404_task_kinds_on_a_promise_without_task(v, uid, rule, case):
    v.ok("promise.create", create_data(uid, later()))
    kind, data = case(uid)
    assert status(v.send(kind, data)) == 404, rule


def test_404_register_callback_awaited_missing(v, uid):
    pending_task(v, uid, uid)
    reply = v.send("promise.register_callback", {"awaited": f"{uid}:1", "awaiter": uid})
    assert status(reply) == 404


# ---- 409: a task in the wrong state, or another version ------------------------------------

Setup = Callable[[Api, str], None]


def _pending(v: Api, uid: str) -> None:
    pending_task(v, uid, uid)


def _held(v: Api, uid: str) -> None:
    held_task(v, uid, uid)


def _suspended(v: Api, uid: str) -> None:
    suspended_task(v, uid, uid)


def _halted(v: Api, uid: str) -> None:
    halted_task(v, uid, uid)


def _fulfilled(v: Api, uid: str) -> None:
    fulfilled_task(v, uid, uid)


def _acquire(u: str, version: int) -> tuple[str, dict[str, Any]]:
    return "task.acquire", {"id": u, "version": version, "pid": "p2", "ttl": 1000}


def _recreate(u: str) -> tuple[str, dict[str, Any]]:
    return _task_create(u, create_action(u, later(), tags_of(u, u)))


CONFLICT_409: list[tuple[str, Setup, Case, str | None]] = [
    ("acquire acquired", _held, lambda u: _acquire(u, 1), "Task is not pending"),
    ("acquire suspended", _suspended, lambda u: _acquire(u, 1), "Task is not pending"),
    ("acquire halted", _halted, lambda u: _acquire(u, 0), "Task is not pending"),
    ("acquire fulfilled", _fulfilled, lambda u: _acquire(u, 1), "Task is not pending"),
    ("acquire other version", _pending, lambda u: _acquire(u, 1), "Version mismatch"),
    ("release pending", _pending, lambda u: ("task.release", {"id": u, "version": 0}), None),
    ("release other version", _held, lambda u: ("task.release", {"id": u, "version": 2}), None),
    ("release fulfilled", _fulfilled, lambda u: ("task.release", {"id": u, "version": 1}), None),
    (
        "fulfill pending",
        _pending,
        lambda u: ("task.fulfill", {"id": u, "version": 0, "action": settle_action(u)}),
        None,
    ),
    (
        "fulfill other version",
        _held,
        lambda u: ("task.fulfill", {"id": u, "version": 0, "action": settle_action(u)}),
        None,
    ),
    (
        "fulfill fulfilled",
        _fulfilled,
        lambda u: ("task.fulfill", {"id": u, "version": 1, "action": settle_action(u)}),
        None,
    ),
    ("suspend pending", _pending, lambda u: _suspend(u, [callback_action(f"{u}:1", u)]), None),
    (
        "suspend other version",
        _held,
        lambda u: (
            "task.suspend",
            {"id": u, "version": 2, "actions": [callback_action(f"{u}:1", u)]},
        ),
        None,
    ),
    ("suspend suspended", _suspended, lambda u: _suspend(u, [callback_action(f"{u}:1", u)]), None),
    (
        "fence other version",
        _held,
        lambda u: (
            "task.fence",
            {"id": u, "version": 0, "action": create_action(f"{u}:5", later())},
        ),
        "Version mismatch",
    ),
    (
        "fence pending",
        _pending,
        lambda u: (
            "task.fence",
            {"id": u, "version": 0, "action": create_action(f"{u}:5", later())},
        ),
        "Version mismatch",
    ),
    (
        "fence suspended",
        _suspended,
        lambda u: _fence(u, settle_action(f"{u}:1")),
        "Version mismatch",
    ),
    ("task.create acquired", _held, _recreate, "Already exists"),
    ("task.create suspended", _suspended, _recreate, "Already exists"),
    ("task.create halted", _halted, _recreate, "Already exists"),
    ("halt fulfilled", _fulfilled, lambda u: ("task.halt", {"id": u}), "Task is fulfilled"),
    ("continue pending", _pending, lambda u: ("task.continue", {"id": u}), "Task is not halted"),
    ("continue acquired", _held, lambda u: ("task.continue", {"id": u}), "Task is not halted"),
]


@pytest.mark.parametrize(
    ("rule", "setup", "case", "message"), CONFLICT_409, ids=[c[0] for c in CONFLICT_409]
)
def test_409_wrong_state_or_version(v, uid, rule, setup, case, message):
    setup(v, uid)
    before = task_of(v, uid)
    kind, data = case(uid)
    reply = v.send(kind, data)
    assert status(reply) == 409, (rule, reply)
    if message is not None:
        assert reply["data"] == message, rule
    assert task_of(v, uid) == before, rule
    # A refused fence ran nothing.
    assert status(v.send("promise.get", {"id": f"{uid}:5"})) == 404


# ---- 422: another referenced entity is missing or unusable ----------------------------------


def test_422_register_callback_awaiter_missing(v, uid):
    v.ok("promise.create", create_data(f"{uid}:1", later()))
    reply = v.send("promise.register_callback", {"awaited": f"{uid}:1", "awaiter": uid})
    assert status(reply) == 422


def test_422_register_callback_awaiter_without_target(v, uid):
    v.ok("promise.create", create_data(f"{uid}:1", later()))
    v.ok("promise.create", create_data(uid, later()))
    reply = v.send("promise.register_callback", {"awaited": f"{uid}:1", "awaiter": uid})
    assert status(reply) == 422


def test_422_suspend_with_a_missing_awaited(v, uid):
    held_task(v, uid, uid)
    v.ok("promise.create", create_data(f"{uid}:1", later()))
    actions = [callback_action(f"{uid}:1", uid), callback_action(f"{uid}:2", uid)]
    reply = v.send("task.suspend", {"id": uid, "version": 1, "actions": actions})
    assert status(reply) == 422
    task = task_of(v, uid)
    assert (task["state"], task["version"]) == ("acquired", 1)
    # Nothing was registered: settling the existing awaited leaves the task alone.
    v.ok("promise.settle", {"id": f"{uid}:1", "state": "resolved"})
    assert task_of(v, uid)["state"] == "acquired"


def test_422_task_create_on_a_promise_without_task(v, uid):
    v.ok("promise.create", create_data(uid, later()))
    reply = v.send(
        "task.create",
        {"pid": "p", "ttl": 10, "action": create_action(uid, later(), tags_of(uid, uid))},
    )
    assert status(reply) == 422
    assert status(v.send("task.get", {"id": uid})) == 404


# ---- 500 is for store errors only ------------------------------------------------------------


@pytest.mark.parametrize("kind", ["task.create", "task.acquire"])
def test_a_huge_ttl_is_not_a_store_error(v, uid, kind):
    huge = 2**63 - 1
    if kind == "task.create":
        data = {"pid": "p", "ttl": huge, "action": create_action(uid, later(), tags_of(uid, uid))}
    else:
        pending_task(v, uid, uid)
        data = {"id": uid, "version": 0, "pid": "p", "ttl": huge}
    reply = v.send(kind, data)
    assert status(reply) == 400
    assert "ttl" in reply["data"]
    data["ttl"] = 2**53 - 1  # the largest accepted: the lease still fits 64 bits
    assert status(v.send(kind, data)) == 200


# ---- echoes, content type, no nulls -----------------------------------------------------------


@pytest.mark.parametrize("corr_id", ["", "sr-0a1b", 'ü/\u2603 "quoted"', "x" * 300])
def test_kind_and_corr_id_are_echoed(api, uid, corr_id):
    for kind, data in [
        ("promise.get", {"id": uid}),
        ("task.get", {"id": uid}),
        ("promise.search", {"limit": 1}),
        ("task.heartbeat", {"pid": "p", "tasks": [{"id": uid, "version": 0}]}),
    ]:
        response = api.post("/", json=envelope(kind, data, corr_id))
        reply = checked(response)
        assert (reply["kind"], reply["head"]["corrId"]) == (kind, corr_id)


def test_unknown_head_fields_are_ignored(api, uid):
    body = envelope(
        "promise.create",
        create_data(uid, later()),
        "h",
        **{"resonate:origin": uid, "auth": "x", "resonate:debug_time": 1},
    )
    reply = checked(api.post("/", json=body, headers={"resonate": "origin: x"}))
    assert status(reply) == 200
    assert reply["data"]["promise"]["state"] == "pending"  # debug_time ignored


def test_no_nulls_while_pending(v, uid):
    pending_task(v, uid, uid)
    promise = v.ok("promise.get", {"id": uid})["promise"]
    assert "settledAt" not in promise
    task = task_of(v, uid)
    assert set(task) == {"id", "state", "version", "resumes"}
    page = v.ok("promise.search", {"tags": {"resonate:origin": uid}})
    assert "cursor" not in page and len(page["promises"]) == 1
    tasks_page = v.ok("task.search", {"state": "pending", "cursor": uid, "limit": 5})
    assert all(set(t) == {"id", "state", "version", "resumes"} for t in tasks_page["tasks"])
    held = held_task(v, uid, f"{uid}-held")
    assert (held["pid"], held["ttl"]) == ("p1", HOUR)


def test_task_search_pages_by_id_with_a_cursor(v, uid):
    """The server is shared: page from the uid on (cursor = the last id, exclusive)."""
    for suffix in ("c", "a", "b"):
        halted_task(v, uid, f"{uid}-{suffix}")
    seen: list[str] = []
    data = v.ok("task.search", {"state": "halted", "limit": 1, "cursor": uid})
    while data["tasks"] and data["tasks"][0]["id"].startswith(uid):
        assert len(data["tasks"]) == 1
        seen.append(data["tasks"][0]["id"])
        if "cursor" not in data:
            break
        assert data["cursor"] == data["tasks"][-1]["id"]
        data = v.ok("task.search", {"state": "halted", "limit": 1, "cursor": data["cursor"]})
    assert seen == [f"{uid}-a", f"{uid}-b", f"{uid}-c"]


def test_http_status_equals_head_status_for_every_family(api, uid):
    bodies = [
        envelope("promise.get", {"id": f"{uid}-none"}),
        envelope("debug.snap", {}),
        envelope("promise.frobnicate", {}),
        envelope("task.continue", {"id": f"{uid}-none"}),
    ]
    statuses = []
    for body in bodies:
        response = api.post("/", json=body)
        statuses.append(checked(response)["head"]["status"])
    assert statuses == [404, 403, 400, 404]


@pytest.mark.parametrize(
    ("param", "value"),
    [
        (None, None),
        ({"headers": None, "data": None}, {"headers": None, "data": None}),
        ({"headers": {}, "data": ""}, {"headers": {"a": "b"}}),
    ],
    ids=["absent", "nulls", "empty"],
)
def test_rest_written_records_read_without_nulls(api, v, uid, param, value):
    """P3/P5: a promise written through REST (nulls allowed there) reads back null-free."""
    body: dict[str, Any] = {"id": uid, "timeout": later(), "tags": None}
    if param is not None:
        body["param"] = param
    assert api.post("/promises", json=body).status_code == 201
    promise = v.ok("promise.get", {"id": uid})["promise"]  # `checked` refuses any null
    assert promise["tags"] == {}
    patch: dict[str, Any] = {"state": "RESOLVED"}
    if value is not None:
        patch["value"] = value
    assert api.patch(f"/promises/{uid}", json=patch).status_code == 201
    settled = v.ok("promise.get", {"id": uid})["promise"]
    assert settled["state"] == "resolved"
