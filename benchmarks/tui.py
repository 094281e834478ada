"""The dashboard (`resonate tui`) on a server holding many promises: time to first data, and
memory over a long session.

    python benchmarks/tui.py                                # 100k promises, 5 rounds, 600 s
    python benchmarks/tui.py --promises 100000 --duration 60   # a quick run
    python benchmarks/tui.py --keep                         # keep the temp dir (db, logs)

Setup. A real `python -m resonate serve` on free loopback ports and a SQLite file in a temp dir:
started once so that it migrates the fresh database, stopped, filled by bulk SQL in one
transaction (`--promises` promises: 20% PENDING, 60% RESOLVED, 12% REJECTED, 4% CANCELED,
4% TIMEDOUT; one in ten has an invoke task, mostly COMPLETED, some ENQUEUED or CLAIMED on a
day-long lease), started again, and given 20 schedules and 20 locks through the API. Every
timeout, lease and next run is hours or days away, so the server's loops write nothing while
the dashboard is measured.

Time to first data (`--rounds` rounds, each a fresh app, in this process, headless with
`App.run_test(size=(120, 40))`):

- overview: from constructing the app (its DataSource and ResonateApp) until
  `app.refresh_count >= 1` and the counts panel holds the counts;
- promises: from the `2` key (sent with `App.simulate_key`, so that the pilot's own idle waits
  are not counted) until the promises view holds its first page (`PromisesScreen.items`).

"Holds" means the widget has been given the data; it is painted in the next frame. Each round
also measures bare baselines with a fresh `httpx.Client`: `GET /readyz` then `GET /stats` (the
least the first refresh must pay), and one `GET /promises?id=*&limit=50` (the promises view's
first page). The server caches `/stats` counts briefly, so every measurement waits `--settle`
seconds first and the report says how many of them got a freshly taken count.

Memory over time, in a fresh child process (so the earlier rounds' apps are not in it): one
app on the promises view, refreshing every `--refresh` seconds, `end` pressed `--pages` times
at the start to load more pages, then run for `--duration` seconds while the process RSS
(/proc/self/status VmRSS) is sampled every `--sample-every` seconds. That RSS includes the
Python interpreter, the Textual test driver (`run_test`, headless) and the benchmark code, not
only the dashboard; the RSS before the app was built is reported for reference. Also reported:
refresh cycles and skipped ticks in the window, the number of gc-tracked objects, the server's
RSS, and the event loop's lag (how late a 100 ms sleep wakes up: while the loop is late, the
dashboard answers no key and paints nothing).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import platform
import shlex
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

import httpx  # noqa: E402

from tests.support.servers import ServerProcess  # noqa: E402

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
PARAM = b'{"func":"bench","args":[1,2,3],"kwargs":{}}'
VALUE = b'{"result":42}'
WAIT_DEADLINE = 30.0  # longest wait for the dashboard to show something
POLL_SECONDS = 0.002  # how often the measuring loop looks at the app
HEARTBEAT_SECONDS = 0.1  # the loop-lag probe of the memory session
SIZE = (120, 40)
SCHEDULES = 20
LOCKS = 20

# States by `i % 100` (stored encodings: 1 PENDING, 2 RESOLVED, 4 REJECTED, 8 CANCELED,
# 16 TIMEDOUT). Promises with `i % 10 = 0` have an invoke task: ENQUEUED (i % 100 = 0) or
# CLAIMED (i % 100 = 10) for pending ones, COMPLETED for the others.
PROMISE_STATE = (
    "CASE WHEN i % 100 < 20 THEN 1 WHEN i % 100 < 80 THEN 2 WHEN i % 100 < 92 THEN 4"
    " WHEN i % 100 < 96 THEN 8 ELSE 16 END"
)
TASK_STATE = "CASE i % 100 WHEN 0 THEN 2 WHEN 10 THEN 4 ELSE 8 END"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def machine() -> dict[str, Any]:
    """The benchmark machine as `benchmarks/promises.py` reports it, plus the TUI's libraries."""
    import textual

    from benchmarks.promises import machine as base_machine

    info = base_machine()
    info.update(
        platform=platform.platform(),
        textual=textual.__version__,
        httpx=httpx.__version__,
    )
    return info


def rss_kib(pid: int | str = "self") -> int | None:
    """VmRSS of a process, KiB (None when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def mib(kib: float | None) -> str:
    return "n/a" if kib is None else f"{kib / 1024:.1f} MiB"


# ---- the server -------------------------------------------------------------------------------


class Server(ServerProcess):
    """The tests' `python -m resonate serve` on a SQLite file and free loopback ports."""

    @property
    def metrics_endpoint(self) -> str:
        return self.metrics_url + "/metrics"

    def log_tail(self, lines: int = 25) -> str:
        return "\n".join(self.log().splitlines()[-lines:])


def seed_sqlite(db_path: Path, promises: int, now: int) -> dict[str, int]:
    """`promises` promises and their tasks, in one transaction, into a migrated database whose
    server is stopped. Created times spread over the day before the last hour."""
    step = max(1, DAY_MS // max(promises, 1))
    first_created = now - DAY_MS - HOUR_MS
    series = "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?)"
    conn = sqlite3.connect(db_path, isolation_level=None)
    try:
        conn.execute("BEGIN")
        conn.execute(
            f"{series} INSERT INTO promises (id, state, param_headers, param_data, value_headers,"
            " value_data, timeout, tags, created_on, completed_on)"
            " SELECT 'bench-' || i, s, NULL, ?, NULL, CASE s WHEN 1 THEN NULL ELSE ? END,"
            # pending: due two days after creation (at least a day from now); timed out: an
            # hour after creation, completed then; the others: completed a second after.
            " CASE s WHEN 16 THEN c + ? ELSE c + 2 * ? END,"
            " CASE WHEN i % 10 = 0 THEN json_object("
            "     'resonate:invoke', 'poll://any@bench', 'resonate:root', 'bench-' || i)"
            "   ELSE json_object('app', 'bench', 'shard', '' || (i % 16)) END,"
            " c, CASE s WHEN 1 THEN NULL WHEN 16 THEN c + ? ELSE c + 1000 END"
            f" FROM (SELECT i, {PROMISE_STATE} AS s, ? + i * ? AS c FROM n)",
            (promises, PARAM, VALUE, HOUR_MS, DAY_MS, HOUR_MS, first_created, step),
        )
        conn.execute(
            f"{series} INSERT INTO tasks (id, process_id, state, root_promise_id, recv, mesg,"
            " timeout, counter, attempt, ttl, expires_at, created_on, completed_on)"
            " SELECT '__invoke:bench-' || i, CASE t WHEN 4 THEN 'worker-1' END, t,"
            " 'bench-' || i, json_quote('poll://any@bench'),"
            " json_object('type', 'invoke', 'root', 'bench-' || i, 'leaf', 'bench-' || i),"
            " c + 2 * ?, 1, CASE t WHEN 2 THEN 0 ELSE 1 END, CASE t WHEN 4 THEN ? ELSE 0 END,"
            " CASE t WHEN 8 THEN 0 ELSE ? END, c, CASE t WHEN 8 THEN c + 1000 END"
            f" FROM (SELECT i, {TASK_STATE} AS t, ? + i * ? AS c FROM n WHERE i % 10 = 0)",
            (promises, DAY_MS, DAY_MS, now + DAY_MS, first_created, step),
        )
        conn.execute("COMMIT")
        counts = {
            "promises": conn.execute("SELECT count(*) FROM promises").fetchone()[0],
            "tasks": conn.execute("SELECT count(*) FROM tasks").fetchone()[0],
        }
    finally:
        conn.close()
    return counts


def seed_api(url: str) -> dict[str, int]:
    """Schedules (yearly cron) and locks (hour-long ttl) through the API."""
    made = {"schedules": 0, "locks": 0}
    with httpx.Client(base_url=url, timeout=10) as client:
        for i in range(SCHEDULES):
            body = {
                "id": f"bench-schedule-{i}",
                "description": "benchmarks/tui.py",
                "cron": "0 0 1 1 *",
                "promiseId": f"bench-scheduled-{i}.{{{{.timestamp}}}}",
                "promiseTimeout": HOUR_MS,
                "tags": {"app": "bench"},
            }
            answer = client.post("/schedules", json=body)
            if answer.status_code not in (200, 201):
                raise RuntimeError(f"POST /schedules: {answer.status_code} {answer.text}")
            made["schedules"] += 1
        for i in range(LOCKS):
            body = {
                "resourceId": f"bench-lock-{i}",
                "executionId": f"bench-execution-{i}",
                "processId": "worker-1",
                "ttl": HOUR_MS,
            }
            answer = client.post("/locks/acquire", json=body)
            if answer.status_code not in (200, 201):
                raise RuntimeError(f"POST /locks/acquire: {answer.status_code} {answer.text}")
            made["locks"] += 1
    return made


# ---- baselines ---------------------------------------------------------------------------------


def baseline_status(url: str) -> tuple[float, float, bool]:
    """ms for a fresh client's GET /readyz then GET /stats (as the dashboard's status read):
    with the client's construction, and the requests alone; and whether the server counted
    afresh for it."""
    asked_at = now_ms()
    started = time.perf_counter()
    with httpx.Client(base_url=url, timeout=10) as client:
        requested = time.perf_counter()
        client.get("/readyz").raise_for_status()
        answer = client.get("/stats")
        answer.raise_for_status()
        done = time.perf_counter()
    fresh = int(answer.json().get("countedAt") or 0) >= asked_at
    return (done - started) * 1000, (done - requested) * 1000, fresh


def baseline_page(url: str) -> tuple[float, float]:
    """ms for a fresh client's GET of the promises view's first page: with the client's
    construction, and the request alone."""
    started = time.perf_counter()
    with httpx.Client(base_url=url, timeout=10) as client:
        requested = time.perf_counter()
        answer = client.get("/promises", params={"id": "*", "limit": "50"})
        answer.raise_for_status()
        done = time.perf_counter()
    return (done - started) * 1000, (done - requested) * 1000


# ---- the dashboard -----------------------------------------------------------------------------


def make_app(url: str, metrics_url: str, refresh: float, on_stats: Callable[[Any], None]) -> Any:
    from resonate.tui.app import ResonateApp
    from resonate.tui.data import DataSource

    data = DataSource(url, metrics_url=metrics_url)
    # Note each /stats answer's countedAt (one extra await around the real call).
    client: Any = data._client
    get_stats = client.get_stats

    async def observed_get_stats() -> Any:
        answer = await get_stats()
        on_stats(answer.body)
        return answer

    client.get_stats = observed_get_stats
    return ResonateApp(data, refresh_seconds=refresh)


def counts_shown(app: Any) -> bool:
    from resonate.tui.screens.overview import OverviewScreen

    screen = app.screen
    if app.refresh_count < 1 or not isinstance(screen, OverviewScreen):
        return False
    return screen.query_one("#count-promises").content != ""


def promises_shown(app: Any) -> bool:
    from resonate.tui.screens.promises import PromisesScreen

    screen = app.screen
    return isinstance(screen, PromisesScreen) and bool(screen.items)


async def until(condition: Callable[[], bool], what: str, within: float = WAIT_DEADLINE) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(POLL_SECONDS)


async def first_data_round(url: str, metrics_url: str, refresh: float) -> dict[str, Any]:
    asked_at = now_ms()
    counted: list[int] = []
    started = time.perf_counter()
    app = make_app(url, metrics_url, refresh, lambda body: counted.append(body.get("countedAt")))
    async with app.run_test(size=SIZE):
        await until(lambda: counts_shown(app), "the overview's counts")
        overview_ms = (time.perf_counter() - started) * 1000
        pressed = time.perf_counter()
        app.simulate_key("2")
        await until(lambda: promises_shown(app), "the promises view's first page")
        promises_ms = (time.perf_counter() - pressed) * 1000
        rows = len(app.screen.items)
    return {
        "overview_ms": overview_ms,
        "promises_ms": promises_ms,
        "rows": rows,
        "fresh_count": bool(counted) and int(counted[0] or 0) >= asked_at,
    }


async def load_pages(app: Any, pilot: Any, pages: int) -> None:
    """`end` moves to the last row, which asks for one page more."""
    from resonate.tui.data import PAGE_SIZE

    for _ in range(pages):
        before = len(app.screen.items)
        if app.screen.next_cursor is None:
            return
        await pilot.press("end")
        await until(lambda before=before: len(app.screen.items) >= before + PAGE_SIZE, "a page")


class LoopLag:
    """How late a `HEARTBEAT_SECONDS` sleep wakes up: the time the event loop (the UI) was
    busy and could not answer a key."""

    def __init__(self) -> None:
        self.lags: list[float] = []  # seconds, every beat of the session
        self.window_max = 0.0  # since the last sample
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._beat())

    async def _beat(self) -> None:
        while True:
            before = time.monotonic()
            await asyncio.sleep(HEARTBEAT_SECONDS)
            lag = time.monotonic() - before - HEARTBEAT_SECONDS
            self.lags.append(lag)
            self.window_max = max(self.window_max, lag)

    def take_window_max(self) -> float:
        value, self.window_max = self.window_max, 0.0
        return value

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def summary(self) -> dict[str, float]:
        ordered = sorted(self.lags) or [0.0]
        return {
            "beats": len(self.lags),
            "p50_ms": ordered[len(ordered) // 2] * 1000,
            "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
            "max_ms": ordered[-1] * 1000,
            "blocked_s": sum(lag for lag in self.lags if lag > 0.1),
        }


async def memory_session(options: argparse.Namespace) -> dict[str, Any]:
    gc.collect()
    before_app = rss_kib()
    app = make_app(options.server_url, options.metrics_url, options.refresh, lambda body: None)
    server_pid = options.server_pid
    samples: list[dict[str, Any]] = []
    lag = LoopLag()

    def sample(at: float) -> dict[str, Any]:
        entry = {
            "t_s": round(at, 1),
            "rss_kib": rss_kib(),
            "server_rss_kib": rss_kib(server_pid) if server_pid else None,
            "refreshes": app.refresh_count,
            "skipped_ticks": app.skipped_ticks,
            "rows": len(getattr(app.screen, "items", ())),
            "gc_objects": len(gc.get_objects()),
            "max_lag_ms": round(lag.take_window_max() * 1000),
        }
        samples.append(entry)
        log(
            f"  t={entry['t_s']:>6.1f}s rss {mib(entry['rss_kib'])}"
            f" refreshes {entry['refreshes']} skipped {entry['skipped_ticks']}"
            f" rows {entry['rows']} objects {entry['gc_objects']:,}"
            f" loop lag max {entry['max_lag_ms']} ms"
        )
        return entry

    async with app.run_test(size=SIZE) as pilot:
        await until(lambda: counts_shown(app), "the overview's counts")
        app.simulate_key("2")
        await until(lambda: promises_shown(app), "the promises view's first page")
        after_first = rss_kib()
        first_refreshes = app.refresh_count
        await load_pages(app, pilot, options.pages)
        lag.start()
        started = time.monotonic()
        start = sample(0.0)
        next_at = options.sample_every
        while True:
            await asyncio.sleep(max(0.0, started + next_at - time.monotonic()))
            elapsed = time.monotonic() - started
            end = sample(elapsed)
            if elapsed >= options.duration - 1e-6:
                break
            # A busy loop wakes late: keep to the schedule rather than catching up.
            while next_at <= elapsed:
                next_at += options.sample_every
            next_at = min(next_at, options.duration)
        await lag.stop()
    rss_values = [s["rss_kib"] for s in samples if s["rss_kib"] is not None]
    return {
        "rss_before_app_kib": before_app,
        "rss_after_first_refresh_kib": after_first,
        "refreshes_before_window": first_refreshes,
        "start": start,
        "end": end,
        "max_rss_kib": max(rss_values) if rss_values else None,
        "window_s": end["t_s"],
        "refreshes_in_window": end["refreshes"] - start["refreshes"],
        "skipped_in_window": end["skipped_ticks"] - start["skipped_ticks"],
        "loop_lag": lag.summary(),
        "samples": samples,
    }


def run_memory_child(options: argparse.Namespace, server: Server) -> dict[str, Any]:
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--memory-child",
        "--server-url",
        server.url,
        "--metrics-url",
        server.metrics_endpoint,
        "--server-pid",
        str(server.process.pid if server.process else 0),
        "--refresh",
        str(options.refresh),
        "--duration",
        str(options.duration),
        "--pages",
        str(options.pages),
        "--sample-every",
        str(options.sample_every),
    ]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, cwd=REPO_ROOT)
    try:
        out, _ = child.communicate()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    if child.returncode != 0:
        raise RuntimeError(f"memory session failed with exit status {child.returncode}")
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result


# ---- the run -----------------------------------------------------------------------------------


def summary(values: list[float]) -> str:
    return (
        f"median {statistics.median(values):7.1f} ms   max {max(values):7.1f} ms"
        f"   (min {min(values):.1f}; rounds: {', '.join(f'{v:.0f}' for v in values)})"
    )


def run(options: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    # Import the dashboard before anything is timed (a user's start pays it, but once, and it
    # is not what this measures).
    import resonate.tui.app  # noqa: F401

    server = Server(workdir)
    try:
        log(f"server: {shlex.join(server.command())}")
        started = time.perf_counter()
        server.start()  # migrates the fresh database
        server.stop()
        now = now_ms()
        seeded = seed_sqlite(server.db_path, options.promises, now)
        seed_s = time.perf_counter() - started
        log(f"seeded {seeded['promises']:,} promises, {seeded['tasks']:,} tasks in {seed_s:.1f} s")
        server.start()
        seeded |= seed_api(server.url)
        with httpx.Client(base_url=server.url, timeout=30) as client:
            stats = client.get("/stats").json()
        log(f"server up: /stats promises {stats.get('promises')} tasks {stats.get('tasks')}")

        rounds: list[dict[str, Any]] = []
        for index in range(1, options.rounds + 1):
            time.sleep(options.settle)
            status_ms, status_requests_ms, status_fresh = baseline_status(server.url)
            page_ms, page_request_ms = baseline_page(server.url)
            time.sleep(options.settle)
            measured = asyncio.run(
                first_data_round(server.url, server.metrics_endpoint, options.refresh)
            )
            measured |= {
                "baseline_status_ms": status_ms,
                "baseline_status_requests_ms": status_requests_ms,
                "baseline_status_fresh_count": status_fresh,
                "baseline_page_ms": page_ms,
                "baseline_page_request_ms": page_request_ms,
            }
            rounds.append(measured)
            log(
                f"round {index}: overview {measured['overview_ms']:.0f} ms"
                f" (count {'fresh' if measured['fresh_count'] else 'cached'}),"
                f" promises {measured['promises_ms']:.0f} ms ({measured['rows']} rows);"
                f" baseline readyz+stats {status_ms:.1f} ms"
                f" (count {'fresh' if status_fresh else 'cached'}), page {page_ms:.1f} ms"
            )

        log(
            f"memory session: {options.duration:g} s on the promises view, refresh"
            f" {options.refresh:g} s, {options.pages} pages loaded with `end`"
        )
        memory = run_memory_child(options, server)
        return {
            "seeded": seeded,
            "seed_s": seed_s,
            "stats": stats,
            "rounds": rounds,
            "memory": memory,
        }
    except Exception:
        if server.process is not None:
            log(f"server log tail:\n{server.log_tail()}")
        raise
    finally:
        server.stop()


def report(options: argparse.Namespace, argv: list[str], result: dict[str, Any]) -> None:
    info = machine()
    rounds = result["rounds"]
    memory = result["memory"]
    seeded = result["seeded"]
    start, end, lag = memory["start"], memory["end"], memory["loop_lag"]
    lines = [
        "resonate tui benchmark",
        f"command:  {shlex.join([sys.executable, *argv])}",
        f"machine:  {info['cpus']} cores ({info['cpu_model'] or 'cpu model unknown'}),"
        f" {info['memory_gib']} GiB, {info['platform']}",
        f"software: Python {info['python']}, Textual {info['textual']}, httpx {info['httpx']},"
        f" SQLite {info['sqlite']}; {info['date']}",
        f"data:     {seeded['promises']:,} promises, {seeded['tasks']:,} tasks (bulk SQL in"
        f" {result['seed_s']:.1f} s incl. one server start/stop), {seeded['schedules']}"
        f" schedules, {seeded['locks']} locks (API)",
        "",
        f"Time to first data ({len(rounds)} rounds, headless run_test {SIZE[0]}x{SIZE[1]},"
        f" each after {options.settle:g} s idle)",
        "  overview  construct app -> refresh_count >= 1 and counts panel filled:",
        f"            {summary([r['overview_ms'] for r in rounds])}",
        "  promises  key '2' -> PromisesScreen.items filled (first page):",
        f"            {summary([r['promises_ms'] for r in rounds])}",
        "  baseline  fresh httpx.Client, GET /readyz then GET /stats (incl. making the client):",
        f"            {summary([r['baseline_status_ms'] for r in rounds])}",
        "            the two requests alone:",
        f"            {summary([r['baseline_status_requests_ms'] for r in rounds])}",
        "  baseline  fresh httpx.Client, GET /promises?id=*&limit=50 (incl. making the client):",
        f"            {summary([r['baseline_page_ms'] for r in rounds])}",
        "            the request alone:",
        f"            {summary([r['baseline_page_request_ms'] for r in rounds])}",
        f"  /stats count taken afresh: dashboard {sum(r['fresh_count'] for r in rounds)}"
        f"/{len(rounds)} rounds, baseline"
        f" {sum(r['baseline_status_fresh_count'] for r in rounds)}/{len(rounds)}",
        "",
        f"Memory over time (child process; promises view, refresh {options.refresh:g} s,"
        f" `end` x{options.pages}, sampled every {options.sample_every:g} s)",
        *(
            f"  {label + ':':<38} {value}"
            for label, value in (
                ("RSS before the app was built", mib(memory["rss_before_app_kib"])),
                ("RSS after the first refresh", mib(memory["rss_after_first_refresh_kib"])),
                (
                    f"RSS at start ({start['rows']} rows loaded)",
                    mib(start["rss_kib"]),
                ),
                (
                    f"RSS at end ({memory['window_s']:g} s later)",
                    f"{mib(end['rss_kib'])} (change {mib(end['rss_kib'] - start['rss_kib'])})",
                ),
                ("RSS max", mib(memory["max_rss_kib"])),
                (
                    "refresh cycles in the window",
                    f"{memory['refreshes_in_window']} (one per"
                    f" {memory['window_s'] / max(1, memory['refreshes_in_window']):.2f} s;"
                    f" {options.refresh:g} s asked)",
                ),
                ("skipped ticks in the window", str(memory["skipped_in_window"])),
                (
                    f"event-loop lag ({HEARTBEAT_SECONDS * 1000:.0f} ms probe)",
                    f"p50 {lag['p50_ms']:.0f} ms, p99 {lag['p99_ms']:.0f} ms,"
                    f" max {lag['max_ms']:.0f} ms",
                ),
                (
                    "time lost in stalls over 100 ms",
                    f"{lag['blocked_s']:.1f} s of {memory['window_s']:g} s",
                ),
                (
                    "gc-tracked objects start -> end",
                    f"{start['gc_objects']:,} -> {end['gc_objects']:,}",
                ),
                (
                    "server RSS start -> end",
                    f"{mib(start['server_rss_kib'])} -> {mib(end['server_rss_kib'])}",
                ),
            )
        ),
        textwrap.fill(
            ", ".join(
                f"{sample['t_s']:g}: {sample['rss_kib'] / 1024:.1f}"
                for sample in memory["samples"]
                if sample["rss_kib"] is not None
            ),
            width=96,
            initial_indent="  RSS samples (s: MiB): ",
            subsequent_indent="    ",
        ),
        "",
        textwrap.fill(
            "Note: RSS is that of the whole Python process running the app: the interpreter,"
            " the imports, Textual's headless test driver (App.run_test and its pilot) and this"
            " script, not the dashboard alone; 'before the app was built' is that floor.",
            width=96,
        ),
    ]
    print("\n".join(lines), flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Time to first data and memory over time of `resonate tui`, on a real server.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--promises", type=int, default=100_000, help="promises in the store")
    parser.add_argument("--rounds", type=int, default=5, help="time-to-first-data rounds")
    parser.add_argument("--duration", type=float, default=600.0, help="memory session, seconds")
    parser.add_argument("--refresh", type=float, default=2.0, help="refresh interval, seconds")
    parser.add_argument("--pages", type=int, default=4, help="`end` presses (pages) at start")
    parser.add_argument("--sample-every", type=float, default=10.0, help="RSS sample, seconds")
    parser.add_argument(
        "--settle", type=float, default=2.0, help="idle seconds before each measurement"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (db, server log)")
    parser.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--server-url", help=argparse.SUPPRESS)
    parser.add_argument("--metrics-url", help=argparse.SUPPRESS)
    parser.add_argument("--server-pid", type=int, default=0, help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.promises < 1 or options.rounds < 1 or options.duration <= 0:
        parser.error("--promises, --rounds and --duration must be positive")
    if options.refresh < 0.25 or options.sample_every <= 0:
        parser.error("--refresh must be at least 0.25 and --sample-every positive")
    return options


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv if argv is None else [sys.argv[0], *argv]
    options = parse_args(argv[1:])
    if options.memory_child:
        try:
            result = asyncio.run(memory_session(options))
        except KeyboardInterrupt:
            return 130
        print(json.dumps(result), flush=True)
        return 0
    signal.signal(signal.SIGTERM, _terminate)
    workdir = Path(tempfile.mkdtemp(prefix="resonate-bench-tui-"))
    log(f"temp dir: {workdir}")
    try:
        result = run(options, workdir)
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        if options.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    report(options, argv, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
