"""Retention (docs/operations.md, "Retention"): completed promises older than
``system.retention.promises`` are deleted with their tasks, in bounded batches, unless something
still refers to them."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from resonate.core.promise import PromiseState
from resonate.core.task import Task, TaskState
from resonate.core.task2026 import Task2026, Task2026State
from resonate.server.config import ConfigError, resolve_config
from resonate.server.config.convert import to_display
from resonate.server.config.options import OPTIONS_BY_KEY
from resonate.server.loops import RetentionLoop
from resonate.server.retention import promise_retention
from resonate.store.base import FINAL_STATES
from tests.support.live import START_MS, LiveServer

DAY = 86_400_000
FAR = START_MS + 1000 * DAY
RECV = "poll://any@g"


async def create(live, pid: str, tags: dict[str, str] | None = None, timeout: int = FAR) -> None:
    response = await live.client.post(
        "/promises", json={"id": pid, "timeout": timeout, "tags": tags or {}}
    )
    assert response.status_code == 201, response.text


async def resolve(live, pid: str) -> None:
    response = await live.client.patch(f"/promises/{pid}", json={"state": "RESOLVED"})
    assert response.status_code in (200, 201), response.text


async def completed(live, *pids: str) -> None:
    for pid in pids:
        await create(live, pid)
        await resolve(live, pid)


def retention(
    live,
    *,
    retention_ms: int | dict[str, int] = DAY,
    tasks_ms: int = 0,
    batch_size: int = 500,
) -> RetentionLoop:
    return RetentionLoop(
        live.server.store,
        live.clock,
        promises=promise_retention(retention_ms),
        tasks_ms=tasks_ms,
        batch_size=batch_size,
        metrics=live.server.metrics,
    )


async def promise_ids(live) -> set[str]:
    rows = await live.server.store.run(lambda tx: tx.debug_rows("promises"))
    return {str(row[0]) for row in rows}


async def count(live, table: str) -> int:
    return len(await live.server.store.run(lambda tx: tx.debug_rows(table)))


def purged(live, kind: str) -> float:
    value = live.server.metrics.registry.get_sample_value("retention_purged_total", {"kind": kind})
    return value or 0.0


async def test_old_completed_promises_go_in_bounded_batches(live):
    await completed(live, *(f"old{i}" for i in range(7)))
    await create(live, "pending")
    await create(live, "overdue", timeout=START_MS + 10)  # past its timeout, not yet timed out
    live.clock.advance(DAY)
    await completed(live, "young")  # completed after the others: not old enough yet
    loop = retention(live, batch_size=3)

    assert await loop.run_batch() == 3  # one transaction never deletes more than a batch
    assert len({pid for pid in await promise_ids(live) if pid.startswith("old")}) == 4
    assert await loop.run_once() == 4  # a pass runs batches until one comes back short
    assert await promise_ids(live) >= {"pending", "young"}
    assert not {pid for pid in await promise_ids(live) if pid.startswith("old")}
    assert purged(live, "promises") == 7
    stored = await live.server.store.run(lambda tx: tx.get_promise("overdue"))
    assert stored is not None  # the timeout loop times it out; it ages from then on

    live.clock.advance(DAY)
    assert await loop.run_once() == 1  # now "young" too; pending ones never
    assert "young" not in await promise_ids(live)
    assert "pending" in await promise_ids(live)


async def test_a_backlog_is_purged_pass_after_pass_without_the_idle_wait(live):
    await completed(live, *(f"old{i}" for i in range(5)))
    live.clock.advance(DAY)
    loop = RetentionLoop(
        live.server.store,
        live.clock,
        promises=promise_retention(DAY),
        batch_size=2,
        max_iterations=2,
        metrics=live.server.metrics,
    )
    assert await loop.run_once() == 4  # two full batches: the pass ends with work left
    assert await loop.seconds_until_next_pass() == 0.0
    assert await loop.run_once() == 1
    assert await loop.seconds_until_next_pass() >= 60.0  # idle: the minute's tick again
    batches = live.server.metrics.registry.get_sample_value(
        "retention_batch_duration_seconds_count", {"kind": "promises"}
    )
    assert batches == 3  # each delete transaction timed


async def test_completed_tasks_go_with_their_promise(live):
    await create(live, "wf", tags={"resonate:invoke": RECV})
    assert await count(live, "tasks") == 1
    live.clock.advance(2 * DAY)
    assert await retention(live).run_once() == 0  # pending, with an INIT task
    await resolve(live, "wf")  # completes the invoke task
    live.clock.advance(2 * DAY)
    assert await retention(live).run_once() == 1
    assert await count(live, "tasks") == 0
    assert purged(live, "tasks") == 1
    assert (await live.client.get("/promises/wf")).status_code == 404


@pytest.mark.parametrize("state", [TaskState.INIT, TaskState.ENQUEUED, TaskState.CLAIMED])
async def test_a_promise_rooting_a_live_task_is_kept(live, state):
    await completed(live, "root", "done")
    now = live.clock.now_ms()

    def task(task_id: str, root: str, task_state: TaskState) -> Task:
        message = {"type": "resume", "root": root, "leaf": "leaf"}
        return Task(task_id, task_state, root, RECV, message, FAR, created_on=now)

    async def insert(tx):
        await tx.insert_task(task("live", "root", state))
        await tx.insert_task(task("finished", "done", TaskState.COMPLETED))

    await live.server.store.run(insert)
    live.clock.advance(2 * DAY)
    assert await retention(live).run_once() == 1
    assert await promise_ids(live) == {"root"}
    assert await count(live, "tasks") == 1  # the live one; the completed one went with "done"


async def insert_rows(live, rows: list[tuple[str, tuple[object, ...]]]) -> None:
    """Raw inserts (``?`` placeholders): the operations register references only on pending
    promises, and a completion clears them; retention must not rely on that."""
    postgres = live.server.config.store_kind == "postgres"

    async def insert(tx):
        for sql, params in rows:
            if postgres:
                for index in range(1, len(params) + 1):
                    sql = sql.replace("?", f"${index}", 1)
                await tx.conn.execute(sql, *params)
            else:
                tx.conn.execute(sql, params)

    await live.server.store.run(insert)


async def test_promises_still_referred_to_are_kept(live):
    kept = ["callback", "subscription", "awaited", "listened", "outboxed", "pending26"]
    await completed(live, *kept, "fulfilled26", "free")
    now = live.clock.now_ms()
    callback = (
        "INSERT INTO callbacks (id, promise_id, root_promise_id, recv, mesg, timeout, created_on)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)"
    )
    mesg = '{"type": "notify", "root": "elsewhere"}'
    recv = f'"{RECV}"'

    def blob(text: str) -> bytes:
        return text.encode()

    await insert_rows(
        live,
        [
            (callback, ("cb", "callback", "elsewhere", blob(recv), blob(mesg), FAR, now)),
            (callback, ("sub", "subscription", "elsewhere", blob(recv), blob(mesg), FAR, now)),
            (
                "INSERT INTO callbacks_2026 (awaited, awaiter, created_at) VALUES (?, ?, ?)",
                ("awaited", "someone", now),
            ),
            (
                "INSERT INTO listeners_2026 (promise_id, address, created_at) VALUES (?, ?, ?)",
                ("listened", RECV, now),
            ),
            (
                "INSERT INTO outbox_2026 (promise_id, address, created_at) VALUES (?, ?, ?)",
                ("outboxed", RECV, now),
            ),
        ],
    )

    async def insert_tasks(tx):
        for tid, state in (
            ("pending26", Task2026State.PENDING),
            ("fulfilled26", Task2026State.FULFILLED),
        ):
            await tx.insert_task_2026(Task2026(tid, state, 1, RECV, now, now, retry_at=FAR))

    await live.server.store.run(insert_tasks)
    live.clock.advance(2 * DAY)
    assert await retention(live).run_once() == 2
    assert await promise_ids(live) == set(kept)
    tasks_2026 = await live.server.store.run(lambda tx: tx.debug_rows("tasks_2026"))
    assert [row[0] for row in tasks_2026] == ["pending26"]
    assert purged(live, "tasks") == 1  # the fulfilled 2026 task


async def test_steps_of_a_running_call_tree_are_kept(live):
    """A replay of a running function reads its completed steps: a completed promise whose
    root, origin or parent is still pending stays, whatever its age; once the tree is done,
    the steps age out like any promise."""
    await create(live, "root")
    for name, tag in (("by-root", "resonate:root"), ("by-origin", "resonate:origin")):
        await create(live, name, tags={tag: "root"})
        await resolve(live, name)
    await create(live, "parent")
    await create(live, "by-parent", tags={"resonate:parent": "parent"})
    await resolve(live, "by-parent")
    await completed(live, "alone")
    live.clock.advance(2 * DAY)
    assert await retention(live).run_once() == 1  # "alone" only
    assert await promise_ids(live) == {"root", "by-root", "by-origin", "parent", "by-parent"}
    await resolve(live, "root")
    await resolve(live, "parent")
    live.clock.advance(2 * DAY)
    assert await retention(live).run_once() == 5
    assert await promise_ids(live) == set()


async def test_a_promise_a_callback_will_resume_is_kept(live):
    """A callback registered on a pending promise names the root whose function its task
    resumes: that root stays while the callback waits."""
    await completed(live, "done-root")
    await create(live, "awaited-step")
    registered = await live.client.post(
        "/callbacks",
        json={
            "promiseId": "awaited-step",
            "rootPromiseId": "done-root",
            "timeout": FAR,
            "recv": RECV,
        },
    )
    assert registered.status_code == 201, registered.text
    live.clock.advance(2 * DAY)
    assert await retention(live).run_once() == 0
    assert "done-root" in await promise_ids(live)


async def test_retention_off_by_default_deletes_nothing(live):
    await completed(live, "a", "b")
    live.clock.advance(10_000 * DAY)
    loop = live.server.retention_loop
    assert loop is not None and loop in live.server.loops  # there to measure, not to delete
    assert (loop.promise_retention, loop.task_retention_ms) == ({}, 0)  # the default
    assert await loop.run_once() == 0
    assert await retention(live, retention_ms=0).run_once() == 0
    assert await promise_ids(live) == {"a", "b"}


async def test_the_server_runs_the_loop_when_configured(tmp_path: Path):
    server = LiveServer(
        tmp_path / "r.db",
        "--system-retention-promises",
        "24h",
        "--system-retention-batch-size",
        "2",
    )
    await server.start()
    try:
        loop = server.server.retention_loop
        assert loop is not None
        assert loop in server.server.loops
        assert loop.promise_retention == dict.fromkeys(FINAL_STATES, DAY)
        assert loop.batch_size == 2
        await completed(server, "x", "y", "z")
        server.clock.advance(DAY)
        assert await loop.run_batch() == 2
        assert await loop.run_once() == 1
        assert await promise_ids(server) == set()
    finally:
        await server.stop()


def _resolve(tmp_path: Path, args=(), env=None, file=None):
    if file is not None:
        (tmp_path / "resonate.yml").write_text(yaml.safe_dump(file), encoding="utf-8")
    return resolve_config(list(args), dict(env or {}), tmp_path).config


def test_config_flag_env_and_file(tmp_path: Path):
    config = _resolve(tmp_path)
    assert (config["system.retention.promises"], config["system.retention.batchSize"]) == (0, 500)

    config = _resolve(
        tmp_path, ["--system-retention-promises", "720h", "--system-retention-batch-size", "50"]
    )
    assert config["system.retention.promises"] == 720 * 3_600_000
    assert config["system.retention.batchSize"] == 50

    env = {"RESONATE_SYSTEM_RETENTION_PROMISES": "1h", "RESONATE_SYSTEM_RETENTION_BATCH_SIZE": "7"}
    config = _resolve(tmp_path, env=env)
    assert (config["system.retention.promises"], config["system.retention.batchSize"]) == (
        3_600_000,
        7,
    )

    file = {"system": {"retention": {"promises": "30m", "batchSize": 9}}}
    config = _resolve(tmp_path, file=file)
    assert (config["system.retention.promises"], config["system.retention.batchSize"]) == (
        1_800_000,
        9,
    )


def test_config_rejects_a_zero_batch(tmp_path: Path):
    with pytest.raises(Exception, match="batch"):
        _resolve(tmp_path, ["--system-retention-batch-size", "0"])


# ---- per-state retention ------------------------------------------------------------------------


async def test_each_final_state_has_its_own_cutoff(live):
    for state in ("RESOLVED", "REJECTED", "REJECTED_CANCELED"):
        await create(live, state.lower())
        response = await live.client.patch(f"/promises/{state.lower()}", json={"state": state})
        assert response.status_code == 201, response.text
    await create(live, "timedout", timeout=START_MS + 1)
    live.clock.advance(1)
    assert await live.time_out_promises() == 1
    loop = retention(live, retention_ms={"resolved": DAY, "rejected": 3 * DAY})
    assert loop.promise_retention == {
        PromiseState.RESOLVED: DAY,
        PromiseState.REJECTED: 3 * DAY,
    }  # rejected_canceled and rejected_timedout: not named, kept forever

    live.clock.advance(2 * DAY)
    assert await loop.run_once() == 1
    assert await promise_ids(live) == {"rejected", "rejected_canceled", "timedout"}
    live.clock.advance(2 * DAY)
    assert await loop.run_once() == 1
    live.clock.advance(1000 * DAY)
    assert await loop.run_once() == 0
    assert await promise_ids(live) == {"rejected_canceled", "timedout"}


async def test_one_duration_covers_every_final_state(live):
    loop = retention(live, retention_ms=DAY)
    assert loop.promise_retention == dict.fromkeys(FINAL_STATES, DAY)
    assert retention(live, retention_ms={"resolved": 0}).promise_retention == {}


# ---- retention of tasks -------------------------------------------------------------------------


async def insert_tasks(live, *tasks: Task) -> None:
    async def insert(tx):
        for task in tasks:
            assert await tx.insert_task(task)

    await live.server.store.run(insert)


def task(task_id: str, state: TaskState, completed_on: int | None = None) -> Task:
    message = {"type": "resume", "root": "root", "leaf": "leaf"}
    return Task(
        task_id,
        state,
        "root",
        RECV,
        message,
        FAR,
        created_on=START_MS,
        completed_on=completed_on,
    )


async def task_ids(live) -> set[str]:
    rows = await live.server.store.run(lambda tx: tx.debug_rows("tasks"))
    return {str(row[0]) for row in rows}


async def test_completed_and_timed_out_tasks_go_after_their_retention(live):
    """Independently of their root promise (pending here): a finished task is history no
    request reads again. Live ones stay, whatever their age."""
    await create(live, "root")
    done = [task(f"done{n}", TaskState.COMPLETED, START_MS + n) for n in range(3)]
    lapsed = [task(f"lapsed{n}", TaskState.TIMEDOUT, START_MS + 10 + n) for n in range(2)]
    live_tasks = [task(f"live-{s.name}", s) for s in (TaskState.INIT, TaskState.ENQUEUED)]
    claimed = replace(task("live-CLAIMED", TaskState.CLAIMED), process_id="p", expires_at=FAR)
    await insert_tasks(live, *done, *lapsed, *live_tasks, claimed)
    await insert_tasks(live, task("recent", TaskState.COMPLETED, START_MS + 2 * DAY))
    loop = retention(live, retention_ms=0, tasks_ms=DAY, batch_size=2)
    assert loop.promise_retention == {}

    live.clock.advance(DAY + 100)
    assert await loop.run_batch() == 2  # bounded: the two oldest
    assert not {"done0", "done1"} & await task_ids(live)
    assert await loop.run_once() == 3  # batches until one comes back short
    assert await task_ids(live) == {"live-INIT", "live-ENQUEUED", "live-CLAIMED", "recent"}
    assert purged(live, "tasks") == 5
    assert purged(live, "promises") == 0
    assert await promise_ids(live) == {"root"}
    live.clock.advance(2 * DAY)
    assert await loop.run_once() == 1
    assert await task_ids(live) == {"live-INIT", "live-ENQUEUED", "live-CLAIMED"}


async def test_promises_and_tasks_retention_in_one_pass(live):
    await completed(live, "p1", "p2", "p3")
    await insert_tasks(live, *(task(f"t{n}", TaskState.COMPLETED, START_MS) for n in range(5)))
    live.clock.advance(DAY)
    loop = retention(live, retention_ms=DAY, tasks_ms=DAY, batch_size=2)
    assert await loop.run_once() == 8
    assert await promise_ids(live) == set()
    assert await task_ids(live) == set()
    assert (purged(live, "promises"), purged(live, "tasks")) == (3, 5)


# ---- the oldest completed record's age ----------------------------------------------------------


def oldest_age(live, kind: str) -> float | None:
    return live.server.metrics.registry.get_sample_value(
        "retention_oldest_completed_age_seconds", {"kind": kind}
    )


async def test_the_oldest_completed_ages_are_measured_even_with_retention_off(live):
    loop = live.server.retention_loop
    assert loop is not None
    assert (oldest_age(live, "promises"), oldest_age(live, "tasks")) == (0.0, 0.0)
    await create(live, "pending")
    await insert_tasks(live, task("init", TaskState.INIT))
    assert await loop.run_once() == 0
    assert (oldest_age(live, "promises"), oldest_age(live, "tasks")) == (0.0, 0.0)  # none yet

    await completed(live, "first")
    await insert_tasks(live, task("lapsed", TaskState.TIMEDOUT, START_MS - 5_000))
    live.clock.advance(60_000)
    await completed(live, "second")
    await loop.run_once()
    assert oldest_age(live, "promises") == 60.0
    assert oldest_age(live, "tasks") == 65.0
    live.clock.advance(DAY)
    await loop.run_once()
    assert oldest_age(live, "promises") == 60.0 + DAY / 1000
    assert await promise_ids(live) == {"pending", "first", "second"}  # measured, not deleted

    # With retention on, the age is measured after the pass: what is left.
    purging = retention(live, retention_ms=DAY, tasks_ms=DAY)
    assert await purging.run_once() == 3  # "first", "second" and the timed-out task
    assert (oldest_age(live, "promises"), oldest_age(live, "tasks")) == (0.0, 0.0)


# ---- configuration ------------------------------------------------------------------------------


def test_per_state_config_by_flag_env_and_file(tmp_path: Path):
    per_state = {"resolved": DAY, "rejected": 3 * DAY}
    config = _resolve(tmp_path, ["--system-retention-promises", "resolved=24h,rejected=72h"])
    assert config["system.retention.promises"] == per_state
    config = _resolve(
        tmp_path,
        [
            "--system-retention-promises",
            "resolved=24h",
            "--system-retention-promises",
            "REJECTED=72h",
        ],
    )
    assert config["system.retention.promises"] == per_state  # repeated flags add up
    env = {"RESONATE_SYSTEM_RETENTION_PROMISES": "resolved=24h, rejected=72h"}
    assert _resolve(tmp_path, env=env)["system.retention.promises"] == per_state
    file = {"system": {"retention": {"promises": {"resolved": "24h", "rejected": "72h"}}}}
    assert _resolve(tmp_path, file=file)["system.retention.promises"] == per_state
    file = {"system": {"retention": {"promises": "24h", "tasks": "48h"}}}
    config = _resolve(tmp_path, file=file)
    assert (config["system.retention.promises"], config["system.retention.tasks"]) == (
        DAY,
        2 * DAY,
    )
    (tmp_path / "resonate.yml").unlink()
    config = _resolve(tmp_path, ["--system-retention-tasks", "1h"])
    assert (config["system.retention.tasks"], config["system.retention.promises"]) == (
        3_600_000,
        0,
    )


@pytest.mark.parametrize(
    ("args", "env", "file", "message"),
    [
        (["--system-retention-promises", "done=24h"], {}, None, "unknown state 'done'"),
        (["--system-retention-promises", "pending=24h"], {}, None, "unknown state 'pending'"),
        (["--system-retention-promises", "resolved=1x"], {}, None, "resolved: invalid duration"),
        (["--system-retention-promises", "resolved"], {}, None, "invalid duration"),
        (
            ["--system-retention-promises", "resolved=1h,resolved=2h"],
            {},
            None,
            "given twice",
        ),
        ([], {"RESONATE_SYSTEM_RETENTION_PROMISES": "rejected=7"}, None, "needs a unit"),
        (
            [],
            {},
            {"system": {"retention": {"promises": {"resolved": "24h", "later": "1h"}}}},
            r"resonate.yml: system.retention.promises: unknown state 'later'",
        ),
        (
            [],
            {},
            {"system": {"retention": {"promises": {"resolved": ["24h"]}}}},
            "resolved: expected a duration",
        ),
        ([], {}, {"system": {"retention": {"promises": True}}}, "expected a duration"),
        (["--system-retention-tasks", "resolved=1h"], {}, None, "invalid duration"),
    ],
)
def test_config_errors_name_the_source_and_the_problem(tmp_path: Path, args, env, file, message):
    with pytest.raises(ConfigError, match=message):
        _resolve(tmp_path, args, env, file)


def test_config_show_round_trips_a_per_state_map(tmp_path: Path):
    option = OPTIONS_BY_KEY["system.retention.promises"]
    per_state = {"resolved": DAY, "rejected_timedout": 90 * 60_000}
    shown = to_display(option, per_state)
    assert shown == {"resolved": "24h", "rejected_timedout": "1h30m"}
    file = {"system": {"retention": {"promises": shown}}}
    assert _resolve(tmp_path, file=file)["system.retention.promises"] == per_state
    assert to_display(option, 0) == 0


async def test_the_server_reads_a_per_state_map(tmp_path: Path):
    server = LiveServer(
        tmp_path / "r.db",
        "--system-retention-promises",
        "rejected_timedout=1h",
        "--system-retention-tasks",
        "2h",
    )
    await server.start()
    try:
        loop = server.server.retention_loop
        assert loop is not None
        assert loop.promise_retention == {PromiseState.REJECTED_TIMEDOUT: 3_600_000}
        assert loop.task_retention_ms == 7_200_000
    finally:
        await server.stop()
