"""The application the resonate-sdk 0.8.1 end-to-end tests run (2026-04-01 protocol).

Runs ONLY under the SDK's own interpreter (tests/sdk2026/.venv-sdk, Python >= 3.12), where
`resonate` is the SDK, never our server package. Every process registers the same functions;
the group a process joins decides what the server routes to it.

Side effects are appended to the record file ($SDK_RECORDS), one line per event:
``<event> <key> <os pid> <sdk pid>``, so the tests can count executions across processes.

Environment (set by tests/sdk2026/conftest.py): RESONATE_URL (the server's API port: `POST /`
and the SSE stream `GET /poll/{group}/{pid}`), SDK_RECORDS, SDK_RELEASE (a file whose
existence releases `slow_step`), SDK_TTL_MS (task lease; heartbeats every ttl/2),
SDK_REMOTE_GROUP (the group remote calls go to), SDK_CLIENTS_GROUP (the group of client.py's
rpc clients).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from resonate.context import Context
from resonate.resonate import Resonate
from resonate.retry import Never

RECORDS = Path(os.environ["SDK_RECORDS"])
RELEASE = Path(os.environ.get("SDK_RELEASE", str(RECORDS.parent / "release")))
REMOTE_GROUP = os.environ.get("SDK_REMOTE_GROUP", "remote")
TTL_MS = int(os.environ.get("SDK_TTL_MS", "4000"))

# This process's SDK pid: what it leases tasks under and the id of its SSE stream. Chosen here
# (the SDK would pick the same kind of value) so the records can name it.
SDK_PID = uuid.uuid4().hex


def record(event: str, key: object) -> None:
    line = f"{event} {key} {os.getpid()} {SDK_PID}\n".encode()
    fd = os.open(RECORDS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------------------------
# Leaf functions


async def local_step(ctx: Context, name: str, n: int) -> int:
    """A durable local step (ctx.run): must run once per workflow, even across a crash."""
    record("local", name)
    return n * 100


async def describe(ctx: Context, n: int) -> str:
    """The single remote call of `main_workflow`, served in the remote group."""
    record("describe", n)
    return f"n={n}"


async def square(ctx: Context, i: int) -> int:
    """The fan-out target, called remotely in the remote group."""
    record("square", i)
    return i * i


async def slow_step(ctx: Context, n: int) -> int:
    """Blocks (without blocking the event loop, so heartbeats go on) until the test creates the
    release file, so the worker can be killed mid-step."""
    record("slow-start", n)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 120
    while not RELEASE.exists():
        if loop.time() > deadline:
            raise TimeoutError("the release file never appeared")
        await asyncio.sleep(0.05)
    record("slow-finish", n)
    return n * 1000


async def explode(ctx: Context, n: int) -> int:
    """Fails (registered without retries): its promise is rejected with the error."""
    record("explode", n)
    raise ValueError(f"boom {n}")


async def tick(ctx: Context, label: str) -> str:
    """The target of the schedule test: records one execution under its own promise id (one
    per firing, `<schedule>-<timestamp>`) and returns it."""
    record(f"tick-{label}", ctx.info.id)
    return ctx.info.id


# ---------------------------------------------------------------------------------------------
# Workflows


async def main_workflow(ctx: Context, n: int) -> Any:
    """A local step, a remote call, a 1 s durable sleep, a fan-out of n remote calls gathered,
    and a last local step. Child ids: :1 local, :2 describe, :3 sleep, :4..:n+3 squares,
    :n+4 local."""
    remote = ctx.options(target=REMOTE_GROUP)
    base = await ctx.run(local_step, "base", n)
    described = await remote.rpc("describe", n)
    await ctx.sleep(timedelta(seconds=1))
    futures = [remote.rpc("square", i) for i in range(1, n + 1)]
    squares = [await future for future in futures]
    after = await ctx.run(local_step, "after", n)
    return {
        "base": base,
        "described": described,
        "squares": squares,
        "after": after,
        "total": base + sum(squares) + after,
    }


async def crash_workflow(ctx: Context, n: int) -> Any:
    """Local step (:1), a slow local step that blocks on the release file (:2), local step (:3)."""
    before = await ctx.run(local_step, "before", n)
    slow = await ctx.run(slow_step, n)
    after = await ctx.run(local_step, "after", n)
    return {"before": before, "slow": slow, "after": after, "total": before + slow + after}


async def sleepy_workflow(ctx: Context, n: int, seconds: float) -> Any:
    """Local step (:1), durable sleep (:2), local step (:3)."""
    before = await ctx.run(local_step, "before-sleep", n)
    await ctx.sleep(timedelta(seconds=seconds))
    after = await ctx.run(local_step, "after-sleep", n)
    return {"before": before, "after": after, "total": before + after}


async def remote_slow_workflow(ctx: Context, n: int) -> Any:
    """Local step (:1), then `slow_step` called remotely in the remote group (:2)."""
    before = await ctx.run(local_step, "before-remote", n)
    slow = await ctx.options(target=REMOTE_GROUP).rpc("slow_step", n)
    return {"before": before, "slow": slow, "total": before + slow}


async def error_workflow(ctx: Context, n: int) -> Any:
    """Calls `explode` remotely (:1), catches its error, then raises: a workflow is never
    retried, so its promise is rejected with that error."""
    try:
        await ctx.options(target=REMOTE_GROUP).rpc("explode", n)
    except Exception as exc:
        caught = f"{type(exc).__name__}: {exc}"
    else:
        caught = "nothing"
    record("caught", caught.replace(" ", "_"))
    raise RuntimeError(f"workflow failed after {caught}")


async def approval_workflow(ctx: Context, n: int) -> Any:
    """Local step (:1), then waits on a bare durable promise (:2, ctx.promise) that someone
    outside settles, then a local step (:3)."""
    before = await ctx.run(local_step, "before-approval", n)
    approval = ctx.promise()
    record("awaiting", await approval.id())
    decision = await approval
    after = await ctx.run(local_step, "after-approval", n)
    return {"before": before, "decision": decision, "after": after}


FUNCTIONS = (
    local_step,
    describe,
    square,
    slow_step,
    tick,
    main_workflow,
    crash_workflow,
    sleepy_workflow,
    remote_slow_workflow,
    error_workflow,
    approval_workflow,
)


# ---------------------------------------------------------------------------------------------
# Starting the SDK


def setup_logging(group: str) -> None:
    """The SDK's own debug log on stderr: it includes every request and reply
    (`http_connection http_req/http_res`) and every SSE message, so a failing test's report
    shows what went over the wire."""
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO,
        format=f"%(asctime)s {group}/{os.getpid()} %(name)s %(levelname)s %(message)s",
    )
    logging.getLogger("resonate").setLevel(logging.DEBUG)


class _Connected(logging.Handler):
    """Sets an event when the SDK logs that its SSE stream is open (the SDK has no hook for
    it). Log records are emitted on the event loop's thread, so setting the event is safe."""

    def __init__(self, event: asyncio.Event) -> None:
        super().__init__(level=logging.INFO)
        self.event = event

    def emit(self, log_record: logging.LogRecord) -> None:
        if log_record.getMessage().startswith("SSE connection established"):
            self.event.set()


async def start(group: str, *, listen: bool = True, timeout: float = 30) -> Resonate:
    """A started Resonate in `group` with every function registered. With `listen`, waits
    until its SSE stream is open (so no message addressed to it is sent before it listens);
    without, a send-only client (no stream, no address)."""
    setup_logging(group)
    url = os.environ["RESONATE_URL"]
    if not listen:
        return Resonate(url=url, sources=[], group=group, pid=SDK_PID, subscription_refresh_secs=0)
    connected = asyncio.Event()
    logging.getLogger("resonate.connections.sse").addHandler(_Connected(connected))
    resonate = Resonate(url=url, group=group, pid=SDK_PID, ttl=timedelta(milliseconds=TTL_MS))
    for fn in FUNCTIONS:
        resonate.register(fn)
    resonate.register(explode, retry_policy=Never())
    await asyncio.wait_for(connected.wait(), timeout)
    return resonate


def exit_now(code: int = 0) -> None:
    """Leave without waiting for the SDK's background loops."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
