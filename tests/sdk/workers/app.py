"""The application the SDK end-to-end tests run: functions registered with resonate-sdk 0.4.12.

Runs ONLY under the SDK's own interpreter (tests/sdk/.venv-sdk), where `resonate` is the SDK,
never our server package. Every process (workflow workers, function workers, clients) registers
the same functions; the group a process joins decides what the server routes to it.

Side effects are appended to the record file ($SDK_RECORDS) as one line per event:
``<event> <key> <os pid> <sdk pid>``, so the tests can count executions across processes.
"""

# ruff: noqa: I001  (`resonate` here is the SDK; ruff takes it for our first-party package)

from __future__ import annotations

import logging
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from resonate import Context, Resonate
from resonate.stores import RemoteStore
from resonate.targets import poll
from resonate.task_sources import Poller

RECORDS = Path(os.environ["SDK_RECORDS"])
RELEASE = Path(os.environ.get("SDK_RELEASE", str(RECORDS.parent / "release")))
WORKERS = poll(os.environ.get("SDK_WORKERS_GROUP", "workers"))  # "poll://workers"

SDK_PID = ""  # set by make_resonate


def record(event: str, key: object) -> None:
    line = f"{event} {key} {os.getpid()} {SDK_PID}\n".encode()
    fd = os.open(RECORDS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------------------------
# Leaf functions (plain functions: run on the SDK's processor threads)


def local_step(ctx: Context, name: str, n: int) -> int:
    """A durable local step (ctx.lfc): must run once per workflow, even across a crash."""
    record("local", name)
    return n * 100


def square(ctx: Context, i: int) -> int:
    """The fan-out target, called remotely in the workers group."""
    record("square-start", i)
    record("square-finish", i)
    return i * i


def slow_step(ctx: Context, n: int) -> int:
    """Blocks until the test creates the release file, so a worker can be killed mid-call."""
    record("slow-start", n)
    deadline = time.monotonic() + 120
    while not RELEASE.exists():
        if time.monotonic() > deadline:
            raise TimeoutError("release file never appeared")
        time.sleep(0.05)
    record("slow-finish", n)
    return n * 1000


def current_promise_id() -> str:
    """The id of the promise whose function this processor thread is running.

    SDK 0.4.12 gives a function no way to learn its own promise id (Context carries none), and a
    schedule passes every firing the same args; but the processor thread runs each function as
    ``sqe.thunk()`` with ``sqe.id`` = the record's (promise's) id, so look for that frame."""
    frame = sys._getframe(1)
    while frame is not None:
        sqe = frame.f_locals.get("sqe")
        if sqe is not None and isinstance(getattr(sqe, "id", None), str):
            return sqe.id
        frame = frame.f_back
    raise RuntimeError("not running on an SDK processor thread")


def tick(ctx: Context, label: str) -> str:
    """The target of the schedule tests: records one execution under its own promise id (one
    per firing, e.g. `tick.1700000000000`) and returns it."""
    promise_id = current_promise_id()
    record(f"tick-{label}", promise_id)
    return promise_id


# ---------------------------------------------------------------------------------------------
# Generator functions (durable coroutines)


def fanout_workflow(ctx: Context, n: int) -> Any:
    """Local step, fan-out of n remote calls to the workers group, a 1 s durable sleep."""
    base = yield ctx.lfc(local_step, "base", n)
    promises = []
    for i in range(1, n + 1):
        promise = yield ctx.rfi("square", i).options(send_to=WORKERS)
        promises.append(promise)
    squares = []
    for promise in promises:
        squares.append((yield promise))
    yield ctx.sleep(1)
    after = yield ctx.lfc(local_step, "after-sleep", n)
    return {"base": base, "squares": squares, "after": after, "total": base + sum(squares) + after}


def process(ctx: Context, n: int) -> Any:
    """Runs in the workers group: a quick local step, then a slow one."""
    prepared = yield ctx.lfc(local_step, "prepare", n)
    slow = yield ctx.lfc(slow_step, n)
    return prepared + slow


def crash_workflow(ctx: Context, n: int) -> Any:
    """Runs in the workflows group: a local step, then one remote call to `process`."""
    before = yield ctx.lfc(local_step, "before", n)
    processed = yield ctx.rfc("process", n).options(send_to=WORKERS)
    return {"before": before, "processed": processed, "total": before + processed}


def sleepy_workflow(ctx: Context, n: int) -> Any:
    """A local step, a durable sleep, another local step."""
    before = yield ctx.lfc(local_step, "before-sleep", n)
    yield ctx.sleep(3)
    after = yield ctx.lfc(local_step, "after-sleep", n)
    return {"before": before, "after": after, "total": before + after}


FUNCTIONS = (
    local_step,
    square,
    slow_step,
    fanout_workflow,
    process,
    crash_workflow,
    sleepy_workflow,
    tick,
)


def make_resonate(group: str) -> Resonate:
    global SDK_PID
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO,
        format=f"%(asctime)s {group}/{os.getpid()} %(threadName)s %(levelname)s %(message)s",
    )
    SDK_PID = uuid.uuid4().hex  # what the SDK would pick itself; known here for the records
    resonate = Resonate(
        pid=SDK_PID,
        store=RemoteStore(url=os.environ["RESONATE_SERVER"]),
        task_source=Poller(url=os.environ["RESONATE_POLLER"], group=group),
    )
    for fn in FUNCTIONS:
        resonate.register(fn)
    return resonate
