"""GET /doctor (docs/operations.md, "Doctor"; docs/server.md, "Dashboard reads"): one case of
each finding on an in-process server with a manual clock, on both stores (loops run only when a
test asks), and a clean report on a healthy one. Parameters, credentials and the OpenAPI
document on the session server process."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from resonate.server import doctor
from resonate.store.base import SchemaStatus
from tests.server.test_dashboard import task_call
from tests.support.live import START_MS
from tests.support.sse import Worker

HOUR = 3_600_000
# Keep the store checks out of a test about something else: a busy test machine must not make
# the store "slow" nor its disk "low".
QUIET_STORE = {"slowBatchMs": 60_000, "minDiskFree": 0}
# And the loops too (they run only when a test asks).
QUIET_LOOPS = {**QUIET_STORE, "loopStalledAfter": 10 * HOUR}


async def diagnose(live, **params: Any) -> dict[str, Any]:
    response = await live.client.get("/doctor", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def found(body: dict[str, Any], check: str | None = None) -> list[tuple[str, str, str | None]]:
    """(check, severity, id) of the findings, in order; only ``check``'s when given."""
    return [
        (f["check"], f["severity"], f["id"])
        for f in body["findings"]
        if check is None or f["check"] == check
    ]


def finding(body: dict[str, Any], check: str, subject: str | None) -> dict[str, Any]:
    matches = [f for f in body["findings"] if f["check"] == check and f["id"] == subject]
    assert len(matches) == 1, body["findings"]
    return matches[0]


async def envelope(live, kind: str, data: dict[str, Any]) -> dict[str, Any]:
    body = {"kind": kind, "head": {"corrId": "c", "version": "2026-04-01"}, "data": data}
    response = await live.client.post("/", json=body)
    assert response.status_code == 200, response.text
    return dict(response.json()["data"])


async def create(live, promise_id: str, timeout: int = START_MS + HOUR, **tags: str) -> None:
    body = {"id": promise_id, "timeout": timeout, "tags": tags}
    response = await live.client.post("/promises", json=body)
    assert response.status_code == 201, response.text


async def create_claimed(live, promise_id: str, ttl: int, group: str = "g") -> None:
    body = {
        "promise": {
            "id": promise_id,
            "timeout": START_MS + 10 * HOUR,
            "tags": {"resonate:invoke": f"poll://any@{group}"},
        },
        "task": {"processId": "p1", "ttl": ttl},
    }
    response = await live.client.post("/promises/task", json=body)
    assert response.status_code == 201, response.text


async def run_every_loop(live) -> None:
    for loop in live.server.loops:
        await loop.run_once()


# ---- a healthy server ---------------------------------------------------------------------------


async def test_a_healthy_server_is_ok(live, store_kind):
    await create(live, "fine")
    live.clock.advance(5)
    body = await diagnose(live, **QUIET_STORE)
    assert body["time"] == START_MS + 5
    assert body["ok"] is True
    assert body["findings"] == []
    assert body["groups"] == []
    names = [loop.name for loop in live.server.loops]
    assert [loop["name"] for loop in body["loops"]] == names
    assert all(loop["ok"] and loop["lastSuccessAt"] is None for loop in body["loops"])
    store = body["store"]
    assert (store["kind"], store["migrationsPending"]) == (store_kind, 0)
    assert isinstance(store["batchP99Ms"], float)  # the create was a batch
    if store_kind == "sqlite":
        assert store["diskFreeBytes"] > 0
    else:
        assert store["diskFreeBytes"] is None

    await run_every_loop(live)
    body = await diagnose(live, **QUIET_STORE)
    assert [loop["lastSuccessAt"] for loop in body["loops"]] == [START_MS + 5] * len(names)
    assert body["ok"] is True


# ---- one case of each finding -------------------------------------------------------------------


async def test_a_promise_past_its_timeout_that_the_loop_has_not_reached(live):
    await create(live, "late", START_MS + 1000)
    live.clock.advance(11_000)  # 10 s past its timeout: not yet reported
    assert found(await diagnose(live, **QUIET_LOOPS)) == []
    live.clock.advance(1)
    body = await diagnose(live, **QUIET_LOOPS)
    assert found(body) == [("promise.overdue", "warning", "late")]
    assert body["ok"] is False
    item = finding(body, "promise.overdue", "late")
    assert item["kind"] == "promise"
    assert "timeout_promises has completed no pass yet" in item["message"]
    assert "\n" not in item["message"] + item["action"]
    assert found(await diagnose(live, overdueAfter=100_000, **QUIET_LOOPS)) == []

    assert await live.time_out_promises() == 1
    assert found(await diagnose(live, **QUIET_LOOPS)) == []


async def test_a_task_issued_many_times(live):
    await create_claimed(live, "wf", ttl=HOUR)
    for counter in range(1, 5):
        await task_call(live, "drop", "__invoke:wf", counter)
        await task_call(live, "claim", "__invoke:wf", counter + 1, processId="p1", ttl=HOUR)
    body = await diagnose(live, **QUIET_LOOPS)
    assert found(body) == [("task.reissued", "warning", "__invoke:wf")]
    item = finding(body, "task.reissued", "__invoke:wf")
    assert item["message"].startswith("issued 5 times for root promise wf")
    assert "process p1" in item["message"]
    assert found(await diagnose(live, minCounter=6, **QUIET_LOOPS)) == []


async def test_a_claimed_task_whose_holder_stopped_heartbeating(live):
    await create_claimed(live, "wf", ttl=20_000)
    live.clock.advance(15_000)  # a quarter of the lease left: not yet
    assert found(await diagnose(live, **QUIET_LOOPS)) == []
    live.clock.advance(1)
    body = await diagnose(live, **QUIET_LOOPS)
    assert found(body) == [("task.lease_expired", "warning", "__invoke:wf")]
    assert "no heartbeat for 15 s" in body["findings"][0]["message"]
    assert found(await diagnose(live, leaseWithin=4_000, **QUIET_LOOPS)) == []

    live.clock.advance(5_000)  # lapsed, not yet re-issued by the task timeout loop
    body = await diagnose(live, **QUIET_LOOPS)
    assert found(body) == [("task.lease_expired", "error", "__invoke:wf")]
    assert "timeout_tasks has completed no pass yet" in body["findings"][0]["message"]
    assert await live.time_out_tasks() == 1
    body = await diagnose(live, **QUIET_LOOPS)
    assert found(body, "task.lease_expired") == []


async def test_an_acquired_2026_task_whose_holder_stopped_heartbeating(live):
    target = {"resonate:target": "poll://any@g26"}
    await envelope(
        live, "promise.create", {"id": "wf", "timeoutAt": START_MS + HOUR, "tags": target}
    )
    await envelope(live, "task.acquire", {"id": "wf", "version": 0, "pid": "w1", "ttl": 20_000})
    live.clock.advance(15_000)  # a quarter of the lease left: not yet
    assert found(await diagnose(live, **QUIET_LOOPS), "task.lease_expired") == []
    live.clock.advance(1)
    body = await diagnose(live, **QUIET_LOOPS)
    assert found(body, "task.lease_expired") == [("task.lease_expired", "warning", "wf")]
    assert finding(body, "task.lease_expired", "wf")["message"].startswith(
        "acquired by process w1, no heartbeat for 15 s"
    )

    live.clock.advance(5_000)  # lapsed, not yet set back to pending by the delivery loop
    body = await diagnose(live, **QUIET_LOOPS)
    assert found(body, "task.lease_expired") == [("task.lease_expired", "error", "wf")]
    message = finding(body, "task.lease_expired", "wf")["message"]
    assert "deliver_2026 has completed no pass yet" in message
    await run_every_loop(live)
    body = await diagnose(live, **QUIET_LOOPS)
    assert found(body, "task.lease_expired") == []


async def test_tasks_for_a_group_without_connections(live):
    await create(live, "wf", **{"resonate:invoke": "poll://any@nobody"})  # INIT, group nobody
    await envelope(
        live,
        "promise.create",
        {"id": "wf26", "timeoutAt": START_MS + HOUR, "tags": {"resonate:target": "poll://any@g26"}},
    )
    body = await diagnose(live, **QUIET_LOOPS)
    assert found(body) == [
        ("task.unroutable", "warning", "__invoke:wf"),
        ("task.unroutable", "warning", "wf26"),
        ("group.no_connections", "warning", "g26"),
        ("group.no_connections", "warning", "nobody"),
    ]
    assert "each server knows only its own connections" in body["findings"][0]["message"]
    assert body["groups"] == [
        {"group": "g26", "connections": 0, "undelivered": 1},
        {"group": "nobody", "connections": 0, "undelivered": 1},
    ]

    async with (
        Worker(f"{live.poll_url}/nobody/w1"),
        Worker(f"{live.server.api_url}/poll/g26/w2"),
        Worker(f"{live.server.api_url}/poll/idle/w3"),
    ):
        body = await diagnose(live, **QUIET_LOOPS)
        assert found(body) == []
        assert body["groups"] == [
            {"group": "g26", "connections": 1, "undelivered": 1},
            {"group": "idle", "connections": 1, "undelivered": 0},
            {"group": "nobody", "connections": 1, "undelivered": 1},
        ]


async def test_a_task_whose_recv_names_no_destination(live):
    await create(live, "lost", START_MS + HOUR, **{"resonate:invoke": "no-such-target"})
    body = await diagnose(live, **QUIET_LOOPS)
    assert found(body) == [("task.unroutable", "error", "__invoke:lost")]
    assert "no-such-target names no destination" in body["findings"][0]["message"]
    assert body["groups"] == []


async def test_a_schedule_late_by_more_than_one_interval(live):
    body = {"id": "s", "cron": "* * * * *", "promiseId": "{{.id}}.{{.timestamp}}"}
    response = await live.client.post("/schedules", json=body)
    assert response.status_code == 201
    next_run = response.json()["nextRunTime"]
    live.clock.set(next_run + 60_000)  # one interval late: not yet
    assert found(await diagnose(live, **QUIET_LOOPS)) == []
    live.clock.set(next_run + 60_001)
    body = await diagnose(live, **QUIET_LOOPS)
    assert found(body) == [("schedule.late", "warning", "s")]
    assert "schedule_promises has completed no pass yet" in body["findings"][0]["message"]
    assert await live.fire_schedules() >= 1
    assert found(await diagnose(live, **QUIET_LOOPS), "schedule.late") == []


async def test_a_lock_whose_holder_stopped_heartbeating(live):
    body = {"resourceId": "r", "executionId": "e1", "processId": "p1", "ttl": 10_000}
    assert (await live.client.post("/locks/acquire", json=body)).status_code == 201
    live.clock.advance(5_000)
    assert found(await diagnose(live, **QUIET_LOOPS)) == []
    live.clock.advance(1)
    body = await diagnose(live, **QUIET_LOOPS)
    assert found(body) == [("lock.stale", "warning", "r")]
    assert "most likely stopped heart-beating" in body["findings"][0]["message"]
    assert "resonate locks release r --execution-id e1" in body["findings"][0]["action"]
    live.clock.advance(10_000)
    body = await diagnose(live, **QUIET_LOOPS)
    assert "not deleted yet" in body["findings"][0]["message"]
    assert await live.time_out_locks() == 1
    assert found(await diagnose(live, **QUIET_LOOPS)) == []


async def test_loops_without_a_recent_successful_pass_are_stalled(live):
    live.clock.advance(60_000)
    assert found(await diagnose(live, **QUIET_STORE)) == []
    live.clock.advance(1)
    body = await diagnose(live, **QUIET_STORE)
    stalled = {f["id"] for f in body["findings"] if f["check"] == "loop.stalled"}
    # The retention loop (when on) idles for a minute: stalled only after two of its ticks.
    assert stalled == {loop.name for loop in live.server.loops if loop.name != "retention"}
    assert {f["severity"] for f in body["findings"]} == {"error"}
    assert not any(loop["ok"] for loop in body["loops"] if loop["name"] in stalled)

    await run_every_loop(live)
    live.clock.advance(1000)
    assert found(await diagnose(live, **QUIET_STORE)) == []
    assert (
        found(await diagnose(live, loopStalledAfter=999, **QUIET_STORE)) == []
    )  # twice the 1 s tick
    live.clock.advance(1001)
    assert len(
        found(await diagnose(live, loopStalledAfter=0, **QUIET_STORE), "loop.stalled")
    ) == len(stalled)


async def test_a_failing_loop_names_its_last_error(live):
    loop = live.server.timeout_loop
    assert loop is not None

    async def failing() -> int:
        raise RuntimeError("the disk is on fire")

    loop.run_batch = failing  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        await loop.run_once()
    body = await diagnose(live, loopStalledAfter=0, **QUIET_STORE)
    assert found(body) == []  # within two 1 s ticks of the start
    live.clock.advance(2001)
    body = await diagnose(live, loopStalledAfter=0, **QUIET_STORE)
    item = finding(body, "loop.stalled", "timeout_promises")
    assert "last error: the disk is on fire" in item["message"]
    row = next(row for row in body["loops"] if row["name"] == "timeout_promises")
    assert row["lastError"] == "the disk is on fire"


async def test_store_findings_latency_disk_and_migrations(live, store_kind):
    await create(live, "one")  # at least one batch
    body = await diagnose(live, **{**QUIET_LOOPS, "slowBatchMs": 0, "minDiskFree": 2**62})
    expected = [("store.slow", "warning", None)]
    if store_kind == "sqlite":
        expected.insert(0, ("store.disk_low", "error", None))
    assert sorted(found(body)) == sorted(expected)
    assert finding(body, "store.slow", None)["kind"] == "store"

    await live.server.store.run(_forget_last_migration)
    live.server.context.ready_cache = None  # shared with /readyz for a second
    body = await diagnose(live, **QUIET_LOOPS)
    assert found(body) == [("store.migrations_pending", "error", None)]
    assert body["store"]["migrationsPending"] == 1
    assert "resonate migrate up" in body["findings"][0]["action"]


async def _forget_last_migration(tx: Any) -> None:
    statement = "DELETE FROM migrations WHERE id = (SELECT max(id) FROM migrations)"
    if hasattr(tx, "conn") and hasattr(tx.conn, "execute") and not hasattr(tx.conn, "fetch"):
        tx.conn.execute(statement)
    else:
        await tx.conn.execute(statement)


async def test_each_list_keeps_to_the_limit_and_says_so(live):
    for name in ("a", "b", "c"):
        await create(live, name, START_MS)
    live.clock.advance(20_000)
    body = await diagnose(live, limit=2, **QUIET_LOOPS)
    assert found(body) == [
        ("promise.overdue", "warning", "a"),
        ("promise.overdue", "warning", "b"),
        ("promise.overdue", "info", None),
    ]
    assert body["findings"][-1]["message"] == "2 or more items found, the first 2 listed"


# ---- the diagnosis on its own: severity order and the migrations of a newer schema ------------


def test_findings_come_errors_first_then_warnings_then_infos():
    rows = doctor.Rows([], [], [], [], [], [], [], [])
    env = doctor.Environment(
        "sqlite",
        0,
        batch_p99_ms=500.0,
        recent_batches=10,
        sqlite_path="/data/resonate.db",
        disk_free=1,
        schema=SchemaStatus(current=9, latest=8),
    )
    report = doctor.diagnose(rows, env, doctor.DoctorQuery(), 0)
    assert [(f.check, f.severity) for f in report.findings] == [
        ("store.disk_low", "error"),
        ("store.migrations_pending", "error"),
        ("store.slow", "warning"),
    ]
    assert "newer than this server knows (8)" in report.findings[1].message
    assert report.to_json()["store"]["migrationsPending"] == 0
    assert report.ok is False


# ---- parameters, credentials, the OpenAPI document (the session server process) ---------------


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"overdueAfter": "-1"}, "overdueAfter"),
        ({"leaseWithin": "1e3"}, "leaseWithin"),
        ({"minCounter": "x"}, "minCounter"),
        ({"loopStalledAfter": str(2**63)}, "loopStalledAfter"),
        ({"slowBatchMs": "1.5"}, "slowBatchMs"),
        ({"minDiskFree": " 3"}, "minDiskFree"),
    ],
)
def test_bad_doctor_parameters_are_400_naming_the_field(api, params, field):
    response = api.get("/doctor", params=params)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["details"][0]["metadata"]["field"] == field


def test_the_session_server_answers_every_part(api, store_kind):
    body = api.get("/doctor", params={"limit": "100"}).json()
    assert set(body) == {"time", "ok", "findings", "groups", "loops", "store"}
    assert body["store"]["kind"] == store_kind
    assert {loop["name"] for loop in body["loops"]} >= {"timeout_promises", "enqueue_tasks"}
    for item in body["findings"]:
        assert item["check"] in doctor.CHECKS and item["severity"] in doctor.SEVERITIES


def test_doctor_is_in_the_openapi_document(api):
    document = api.get("/openapi.json").json()
    operation = document["paths"]["/doctor"]["get"]
    response = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert response == {"$ref": "#/components/schemas/Doctor"}
    params = {p["name"]: p["schema"] for p in operation["parameters"]}
    assert params["limit"] == {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}
    assert params["minCounter"]["default"] == doctor.DEFAULT_MIN_COUNTER
    schemas = document["components"]["schemas"]
    assert schemas["DoctorFinding"]["properties"]["check"]["enum"] == list(doctor.CHECKS)


def test_doctor_needs_credentials_when_auth_is_on(server_factory, tmp_path):
    secured = server_factory(tmp_path, extra_args=["--api-http-auth", "alice=s3cret"]).start()
    assert httpx.get(secured.url + "/doctor").status_code == 401
    answer = httpx.get(secured.url + "/doctor", auth=("alice", "s3cret"))
    assert answer.status_code == 200, answer.text
