"""Harness for the end-to-end tests with the official Python SDK, resonate-sdk 0.4.12.

The SDK's top-level module is also called `resonate`, so it can never share an interpreter
with our server package. It lives in its own virtualenv, tests/sdk/.venv-sdk (gitignored),
created on first use and reused afterwards; the application code (tests/sdk/workers/) runs
in subprocesses with that interpreter. Set RESONATE_SDK_PYTHON to an interpreter that already
has resonate-sdk==0.4.12 to skip the virtualenv.

Each test runs once per store, against a `resonate serve` on a fresh SQLite file, or on a fresh
PostgreSQL database when RESONATE_TEST_POSTGRES_DSN is set, with free ports for the API, the
poll listener and metrics, through a `SdkCluster` that starts SDK processes, reads their record
file and kills every process it started when the test ends. `sdk`: the server of the store is
shared by the tests (started on first use, kept for the session, per pytest-xdist worker), and
each test's processes join groups suffixed for it (`sdk.group`, `sdk.target`) and use promise
ids no other test uses, so a leftover task of one test never reaches another's workers.
`fresh_sdk`: a server of the test's own (e.g. to stop and restart it), with the groups as named.
On failure, the server log (of a shared one: since the test began), every process's output and
the record file are attached to the report.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import pg
from tests.support.sdk import Record, SdkProcess, read_records, sdk_env, wait_for
from tests.support.servers import ServerProcess

SDK_VERSION = "0.4.12"
HERE = Path(__file__).resolve().parent
WORKERS_DIR = HERE / "workers"
VENV = HERE / ".venv-sdk"
MARKER = VENV / ".resonate-sdk-ok"

# Server settings that make the scenarios fast: a delivered but unclaimed task (e.g. written
# to a SIGKILLed worker's socket) is re-issued after 5 s instead of 1 min; a delivery that
# found no connection (worker still connecting) is retried after 1 s instead of 15 s.
SERVER_ARGS = ["--aio-poll-ttc", "5s", "--aio-poll-ttr", "1s", "--log-level", "debug"]


# ---------------------------------------------------------------------------------------------
# The SDK interpreter


def _venv_python() -> Path:
    return VENV / "bin" / "python"


def _sdk_ok(python: Path) -> bool:
    """True when `python` imports the SDK (not our package) at the pinned version."""
    check = (
        "import importlib.metadata as m, resonate, resonate.task_sources, resonate.stores;"
        f"assert m.version('resonate-sdk') == {SDK_VERSION!r}, m.version('resonate-sdk');"
        "assert hasattr(resonate, 'Resonate')"
    )
    try:
        result = subprocess.run(
            [str(python), "-c", check], capture_output=True, cwd="/", timeout=60, env=sdk_env()
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def _build_venv() -> None:
    if VENV.exists():
        shutil.rmtree(VENV)
    subprocess.run(
        [sys.executable, "-m", "venv", str(VENV)], check=True, capture_output=True, timeout=300
    )
    subprocess.run(
        [
            str(_venv_python()),
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--quiet",
            f"resonate-sdk=={SDK_VERSION}",
        ],
        check=True,
        capture_output=True,
        timeout=600,
        cwd="/",
        env=sdk_env(),
    )


@pytest.fixture(scope="session")
def sdk_python() -> Path:
    """An interpreter whose `resonate` is the SDK 0.4.12 (created once, then cached)."""
    override = os.environ.get("RESONATE_SDK_PYTHON")
    if override:
        if not _sdk_ok(Path(override)):
            pytest.fail(f"RESONATE_SDK_PYTHON={override} has no resonate-sdk=={SDK_VERSION}")
        return Path(override)
    HERE.mkdir(exist_ok=True)
    # A file lock, so pytest-xdist workers build the virtualenv once.
    with open(HERE / ".venv-sdk.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if MARKER.exists() and _sdk_ok(_venv_python()):
                return _venv_python()
            MARKER.unlink(missing_ok=True)
            try:
                _build_venv()
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
                output = (getattr(exc, "stderr", b"") or b"").decode(errors="replace")[-3000:]
                reason = f"cannot install resonate-sdk=={SDK_VERSION} in {VENV}: {output}"
                if os.environ.get("RESONATE_TEST_REQUIRE_SDK"):  # CI: never skip silently
                    pytest.fail(reason)
                pytest.skip(reason)
            if not _sdk_ok(_venv_python()):
                pytest.fail(f"{VENV} was built but does not import resonate-sdk {SDK_VERSION}")
            MARKER.write_text(SDK_VERSION + "\n")
            return _venv_python()
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


# ---------------------------------------------------------------------------------------------
# Processes and records


class SdkCluster:
    """SDK processes against one server. Everything it starts is killed by `close`.

    The tests name the groups `workflows`, `workers`, `clients`, `default`; on a shared server
    the processes join them suffixed for this cluster (`group`), so that a leftover task of
    another test never reaches them. `SdkProcess.group` is the name the test gave."""

    def __init__(
        self, python: Path, server: ServerProcess, workdir: Path, *, shared_server: bool = False
    ) -> None:
        self.python = python
        self.server = server
        self.workdir = workdir
        self.records_path = workdir / "records.log"
        self.release_path = workdir / "release"
        self.processes: list[SdkProcess] = []
        self.api = httpx.Client(base_url=server.url, timeout=10, trust_env=False)
        self.shared_server = shared_server
        self.suffix = f"-{uuid.uuid4().hex[:8]}" if shared_server else ""
        self.server_log_offset = server.log_path.stat().st_size if server.log_path.exists() else 0
        self.groups: set[str] = set()  # the groups its processes joined

    # -- groups -------------------------------------------------------------------------------

    def group(self, name: str) -> str:
        """The group this cluster's processes join for the test's group `name`."""
        return f"{name}{self.suffix}"

    def target(self, name: str) -> str:
        """The SDK's target (`poll://<group>`) for the test's group `name`."""
        return f"poll://{self.group(name)}"

    # -- processes ----------------------------------------------------------------------------

    def _env(self) -> dict[str, str]:
        env = sdk_env()
        env.update(
            RESONATE_SERVER=self.server.url,
            RESONATE_POLLER=self.server.poll_url,
            SDK_RECORDS=str(self.records_path),
            SDK_RELEASE=str(self.release_path),
            SDK_WORKERS_GROUP=self.group("workers"),
            SDK_CLIENTS_GROUP=self.group("clients"),
        )
        return env

    def _spawn(self, name: str, group: str, script: str, *args: str) -> SdkProcess:
        """`script` with `args`, in the test's group `group` (the process joins
        `self.group(group)`)."""
        self.groups.add(self.group(group))
        log_path = self.workdir / f"{name}.log"
        with log_path.open("ab") as log:
            popen = subprocess.Popen(
                [str(self.python), str(WORKERS_DIR / script), *args],
                cwd=self.workdir,
                env=self._env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        process = SdkProcess(name, group, popen, log_path)
        self.processes.append(process)
        return process

    def start_worker(self, name: str, group: str) -> SdkProcess:
        return self._spawn(name, group, "worker.py", self.group(group))

    def start_workers(self, names_groups: list[tuple[str, str]]) -> list[SdkProcess]:
        """Start several workers at once; wait until each has started its SDK and the server
        counts every poll stream (so no delivery finds an empty group)."""
        started = [self.start_worker(name, group) for name, group in names_groups]
        for process in started:
            self.wait_ready(process)
        self.wait_poll_connections(len(self.live()))
        return started

    def wait_ready(self, process: SdkProcess, timeout: float = 30) -> Record:
        def ready() -> Record | None:
            self.check_alive(process)
            return next(
                (r for r in self.records("ready") if r.os_pid == process.pid),
                None,
            )

        return wait_for(ready, timeout, f"{process.name} to start")

    def run_client(
        self, mode: str, promise_id: str, where: str, func: str, *args: Any
    ) -> SdkProcess:
        """Start a client process (see workers/client.py) that starts one workflow and writes
        its result to ``process.result_path``. `where`: for `trigger`, the target (e.g.
        `self.target("workflows")`); for `run`, the test's group the client joins."""
        out = self.workdir / f"result-{promise_id}.json"
        process = self._spawn(
            f"client-{promise_id}",
            "clients" if mode == "trigger" else where,
            "client.py",
            mode,
            str(out),
            promise_id,
            where if mode == "trigger" else self.group(where),
            func,
            json.dumps(list(args)),
        )
        process.result_path = out
        return process

    def wait_result(self, client: SdkProcess, timeout: float) -> Any:
        out = client.result_path
        assert out is not None

        def done() -> bool:
            if out.exists():
                return True
            self.check_alive()
            if not client.alive():
                raise AssertionError(
                    f"{client.name} exited with {client.popen.returncode} without a result"
                )
            return False

        wait_for(done, timeout, f"the result of {client.name}")
        return json.loads(out.read_text())["result"]

    def live(self) -> list[SdkProcess]:
        return [p for p in self.processes if p.alive()]

    def check_alive(self, *processes: SdkProcess) -> None:
        """An SDK 0.4.12 process exits 1 when the server answers something it cannot take
        (e.g. a 4xx to a claim): fail fast and say so."""
        for process in processes or tuple(self.processes):
            if not process.alive() and process.popen.returncode not in (0, -signal.SIGKILL):
                raise AssertionError(
                    f"{process.name} ({process.group}, pid {process.pid}) exited with "
                    f"{process.popen.returncode}; see its log below"
                )

    def kill(self, process: SdkProcess) -> None:
        if process.alive():
            os.kill(process.pid, signal.SIGKILL)
        process.popen.wait(timeout=10)

    def close(self) -> None:
        for process in self.processes:
            with contextlib.suppress(ProcessLookupError, subprocess.TimeoutExpired):
                self.kill(process)
        self.api.close()

    # -- observation --------------------------------------------------------------------------

    def records(self, event: str | None = None, key: object | None = None) -> list[Record]:
        return read_records(self.records_path, event, key)

    def poll_connections(self) -> int | None:
        """The open poll streams of this cluster's groups, by the server's gauge
        poll_connections{group=...}, or None if not exported."""
        try:
            text = httpx.get(self.server.metrics_url + "/metrics", timeout=2, trust_env=False).text
        except httpx.HTTPError:
            return None
        if not re.search(r"^# TYPE poll_connections gauge$", text, re.M):
            return None
        gauges = re.findall(r'^poll_connections\{group="([^"]*)"\} ([0-9.e+]+)$', text, re.M)
        return sum(int(float(value)) for group, value in gauges if group in self.groups)

    def wait_poll_connections(self, expected: int, timeout: float = 15) -> None:
        """Wait until the server counts `expected` open poll streams in this cluster's groups.
        Only a convenience (the server retries deliveries that found no connection after ttr),
        so a server that does not export the gauge is not failed here."""
        if self.poll_connections() is None:
            return
        wait_for(
            lambda: self.check_alive() or (self.poll_connections() or 0) >= expected,
            timeout,
            f"{expected} poll connections (server reports {self.poll_connections()})",
        )

    def promise(self, promise_id: str) -> dict[str, Any]:
        response = self.api.get(f"/promises/{promise_id}")
        assert response.status_code == 200, (promise_id, response.status_code, response.text)
        return response.json()

    def find_promise(self, promise_id: str) -> dict[str, Any] | None:
        response = self.api.get(f"/promises/{promise_id}")
        if response.status_code == 404:
            return None
        assert response.status_code == 200, (promise_id, response.status_code, response.text)
        return response.json()

    def task(self, task_id: str) -> dict[str, Any] | None:
        """GET /tasks/{id} (operator extension); None when not available."""
        response = self.api.get(f"/tasks/{task_id}")
        return response.json() if response.status_code == 200 else None

    def server_log(self) -> str:
        """The server's log since this cluster began."""
        with self.server.log_path.open("rb") as log:
            log.seek(self.server_log_offset)
            return log.read().decode(errors="replace")

    def report(self) -> str:
        log = self.server_log() if self.shared_server else self.server.log()
        since = ", since the test began" if self.shared_server else ""
        parts = [f"===== server log ({self.server.log_path}{since}) =====\n{log[-60000:]}"]
        for process in self.processes:
            parts.append(
                f"===== {process.name} (group {process.group}, pid {process.pid}, "
                f"exit {process.popen.poll()}) =====\n{process.log()[-30000:]}"
            )
        records = self.records_path.read_text() if self.records_path.exists() else "(none)"
        parts.append(f"===== records =====\n{records}")
        return "\n".join(parts)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    outcome = yield
    report = outcome.get_result()
    cluster: SdkCluster | None = getattr(item, "_sdk_cluster", None)
    if cluster is not None and report.failed:
        with contextlib.suppress(Exception):
            report.sections.append(("resonate-sdk e2e logs", cluster.report()))


@contextlib.contextmanager
def sdk_server(workdir: Path, store_kind: str) -> Iterator[ServerProcess]:
    """`resonate serve` with SERVER_ARGS on `store_kind` (a SQLite file in `workdir`, or a fresh
    PostgreSQL database, dropped afterwards)."""
    dsn = pg.create_database_sync("resonate_sdk") if store_kind == "postgres" else None
    store_args = pg.store_args(dsn) if dsn is not None else []
    try:
        server = ServerProcess(workdir, extra_args=[*SERVER_ARGS, *store_args]).start()
        try:
            yield server
        finally:
            server.stop()
    finally:
        if dsn is not None:
            pg.drop_database_sync(dsn)


class SharedServers:
    """The shared servers, one per store, each started on first use and kept until the session
    ends (per pytest-xdist worker). Not a session fixture parametrized by the store: pytest
    keeps one instance of such a fixture at a time, and pytest-xdist hands a worker the tests
    of both stores in turns, so it would start them again and again."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        self.tmp_path_factory = tmp_path_factory
        self.servers: dict[str, ServerProcess] = {}
        self.stack = contextlib.ExitStack()

    def get(self, store_kind: str) -> ServerProcess:
        """The running server of `store_kind`; fails the test when it has exited."""
        if store_kind not in self.servers:
            workdir = self.tmp_path_factory.mktemp(f"sdk-server-{store_kind}")
            self.servers[store_kind] = self.stack.enter_context(sdk_server(workdir, store_kind))
        server = self.servers[store_kind]
        if server.process is None or server.process.poll() is not None:
            pytest.fail(f"the shared server exited:\n{server.log()[-20000:]}")
        return server


@pytest.fixture(scope="session")
def sdk_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedServers]:
    pool = SharedServers(tmp_path_factory)
    with pool.stack:
        yield pool


@pytest.fixture
def sdk(
    request: pytest.FixtureRequest,
    sdk_python: Path,
    sdk_servers: SharedServers,
    store_kind: str,
    tmp_path: Path,
) -> Iterator[SdkCluster]:
    """An SdkCluster (groups of its own) against the store's shared server."""
    server = sdk_servers.get(store_kind)
    cluster = SdkCluster(sdk_python, server, tmp_path, shared_server=True)
    request.node._sdk_cluster = cluster
    try:
        yield cluster
    finally:
        cluster.close()


@pytest.fixture
def fresh_sdk(
    request: pytest.FixtureRequest,
    sdk_python: Path,
    server_factory: type[ServerProcess],
    store_kind: str,
    tmp_path: Path,
) -> Iterator[SdkCluster]:
    """A fresh server of the test's own (on each store: a fresh SQLite file, or a fresh
    PostgreSQL database) plus an SdkCluster to start SDK processes against it."""
    server_dir = tmp_path / "server"
    server_dir.mkdir()
    dsn = pg.create_database_sync("resonate_sdk") if store_kind == "postgres" else None
    store_args = pg.store_args(dsn) if dsn is not None else []
    try:
        server = server_factory(server_dir, extra_args=[*SERVER_ARGS, *store_args]).start()
        cluster = SdkCluster(sdk_python, server, tmp_path)
        request.node._sdk_cluster = cluster
        try:
            yield cluster
        finally:
            cluster.close()
            server.stop()
    finally:
        if dsn is not None:
            pg.drop_database_sync(dsn)
