"""Harness for the end-to-end tests with the current official SDKs, which speak the 2026-04-01
protocol (`POST /` envelopes and the SSE stream `GET /poll/{group}/{pid}` on the API port;
shared/spec/protocol-2026.md).

Shared by the Python (test_py_sdk.py) and TypeScript (test_ts_sdk.py) suites:

- `start_sdk2026_server`: a `resonate serve` of its own on a store (a fresh SQLite file, or a
  fresh PostgreSQL database when RESONATE_TEST_POSTGRES_DSN is set), with free ports and
  SERVER_ARGS (fast task re-delivery, debug log), for a test that needs its own (e.g. JWT auth).
  Its log is attached to the report of a failing test; `add_report_section` attaches more
  (process outputs, records).
- `sdk2026_servers`: a `ServerPool`, the servers the tests of a suite share, one per store,
  started on first use and kept for the session (per pytest-xdist worker); `py_sdk_server` is
  the Python SDK suite's. Each test keeps apart by groups of its own (and promise ids no other
  test uses), so a leftover task of one test never reaches another test's workers.

Python SDK (`resonate-sdk` 0.8.1, Python >= 3.12):

- The SDK's top-level package is also called `resonate`, so it never shares an interpreter
  with our server package: it lives in its own virtualenv, tests/sdk2026/.venv-sdk
  (gitignored), built on first use (under a file lock, for pytest-xdist) from a Python >= 3.12
  found as `find_base_python` says, then reused while its marker file names 0.8.1 and that
  interpreter and it imports. No interpreter or a failed install skips the tests, or fails them when
  RESONATE_TEST_REQUIRE_SDK is set (CI).
- `py_sdk`: a `PySdkCluster` against `py_sdk_server` that starts SDK processes
  (tests/sdk2026/workers_py/) with that interpreter and a clean environment, in groups suffixed
  for the test, reads their record file, and kills every process it started when the test ends.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import glob
import itertools
import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import pg
from tests.support.sdk import Record, SdkProcess, read_records, sdk_env
from tests.support.servers import ServerProcess, wait_until

PY_SDK_VERSION = "0.8.1"
PROTOCOL_VERSION = "2026-04-01"
HERE = Path(__file__).resolve().parent
PY_WORKERS_DIR = HERE / "workers_py"
PY_VENV = HERE / ".venv-sdk"
PY_MARKER = PY_VENV / ".resonate-sdk-ok"

# `--tasks-retry-timeout 2s`: a pending 2026 task whose execute found no worker (e.g. sent
# while its group's only worker was dead or still connecting) is re-sent after 2 s instead of
# 30 s. Debug log: the server's side of every exchange, for the failure report.
SERVER_ARGS = ["--tasks-retry-timeout", "2s", "--log-level", "debug"]

# Task lease of the Python SDK processes (the SDK's default is 60 s): a SIGKILLed worker's task
# goes back to pending within this, and the SDK heartbeats every ttl/2.
PY_SDK_TTL_MS = 4000

# Every test using `py_sdk` must be done within this (its waits never go past it).
TEST_BUDGET = 60.0


# ---------------------------------------------------------------------------------------------
# Failure reports


def add_report_section(node: pytest.Item, title: str, render: Callable[[], str]) -> None:
    """Attach `render()` to the report of `node` if its test fails (rendered then)."""
    sections = node.__dict__.setdefault("_sdk2026_sections", [])
    sections.append((title, render))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    outcome = yield
    report = outcome.get_result()
    if not report.failed:
        return
    for title, render in item.__dict__.get("_sdk2026_sections", []):
        try:
            text = render()
        except Exception as exc:  # a report must never hide the failure itself
            text = f"(could not render: {exc!r})"
        report.sections.append((title, text))


# ---------------------------------------------------------------------------------------------
# The server


@contextlib.contextmanager
def start_sdk2026_server(
    request: pytest.FixtureRequest,
    server_factory: type[ServerProcess],
    store_kind: str,
    workdir: Path,
    extra_args: list[str] | tuple[str, ...] = (),
) -> Iterator[ServerProcess]:
    """A fresh `resonate serve` in `workdir` on `store_kind` (a fresh PostgreSQL database,
    dropped afterwards), with SERVER_ARGS + `extra_args`; its log goes to the failure report."""
    workdir.mkdir(parents=True, exist_ok=True)
    dsn = pg.create_database_sync("resonate_sdk2026") if store_kind == "postgres" else None
    store_args = pg.store_args(dsn) if dsn is not None else []
    try:
        server = server_factory(workdir, extra_args=[*SERVER_ARGS, *store_args, *extra_args])
        add_report_section(
            request.node,
            f"resonate serve log ({store_kind}, {server.log_path})",
            lambda: server.log()[-80000:],
        )
        server.start()
        try:
            yield server
        finally:
            server.stop()
    finally:
        if dsn is not None:
            pg.drop_database_sync(dsn)


@contextlib.contextmanager
def shared_server(
    workdir: Path, store_kind: str, extra_args: list[str] | tuple[str, ...] = ()
) -> Iterator[ServerProcess]:
    """`resonate serve` with SERVER_ARGS + `extra_args` on `store_kind` (a SQLite file in
    `workdir`, or a fresh PostgreSQL database, dropped afterwards). Free ports are picked before
    the server binds them, so another suite running at the same time may take one first: then
    it starts again on new ports (3 tries)."""
    dsn = pg.create_database_sync("resonate_sdk2026") if store_kind == "postgres" else None
    args = [*SERVER_ARGS, *(pg.store_args(dsn) if dsn is not None else []), *extra_args]
    server: ServerProcess | None = None
    try:
        for attempt in range(3):
            candidate = ServerProcess(workdir, extra_args=args)
            try:
                server = candidate.start()
                break
            except RuntimeError as exc:
                candidate.stop()
                if "address already in use" not in str(exc) or attempt == 2:
                    raise
        assert server is not None
        yield server
    finally:
        if server is not None:
            server.stop()
        if dsn is not None:
            pg.drop_database_sync(dsn)


class ServerPool:
    """Servers shared by the tests of a suite, one per (suite, store): each is started on first
    use and kept until the session ends (per pytest-xdist worker). A session-scoped fixture
    parametrized by the store would do, but pytest keeps one instance of it at a time, and
    pytest-xdist hands a worker the tests of both stores in turns: it would start them again
    and again."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        self.tmp_path_factory = tmp_path_factory
        self.servers: dict[tuple[str, str], ServerProcess] = {}
        self.stack = contextlib.ExitStack()

    def get(self, suite: str, store_kind: str) -> ServerProcess:
        """The running server of `suite` on `store_kind`; fails the test when it has exited."""
        key = (suite, store_kind)
        if key not in self.servers:
            workdir = self.tmp_path_factory.mktemp(f"{suite}-server-{store_kind}")
            self.servers[key] = self.stack.enter_context(shared_server(workdir, store_kind))
        server = self.servers[key]
        if server.process is None or server.process.poll() is not None:
            pytest.fail(f"the shared server exited:\n{server.log()[-20000:]}")
        return server


@pytest.fixture(scope="session")
def sdk2026_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerPool]:
    """The shared servers of the 2026 suites (`ServerPool`)."""
    pool = ServerPool(tmp_path_factory)
    with pool.stack:
        yield pool


@pytest.fixture
def py_sdk_server(sdk2026_servers: ServerPool, store_kind: str) -> ServerProcess:
    """The server of the store shared by the Python SDK tests that need no server of their own
    (a TypeScript SDK test never uses it). The SDKs talk to `server.url` only (`POST /` and
    `GET /poll/{group}/{pid}`)."""
    return sdk2026_servers.get("py-sdk", store_kind)


def call_2026(
    client: httpx.Client,
    kind: str,
    data: dict[str, Any],
    corr_id: str = "t-0",
    auth: str | None = None,
) -> tuple[int, Any]:
    """One `POST /` of the 2026 protocol; (head.status, data). Checks the envelope echo.
    `auth`: a JWT for `head.auth`."""
    head: dict[str, Any] = {"corrId": corr_id, "version": PROTOCOL_VERSION}
    if auth is not None:
        head["auth"] = auth
    body = {"kind": kind, "head": head, "data": data}
    response = client.post("/", json=body)
    envelope = response.json()
    assert envelope["kind"] == kind and envelope["head"]["corrId"] == corr_id, envelope
    assert envelope["head"]["status"] == response.status_code, envelope
    return response.status_code, envelope["data"]


# ---------------------------------------------------------------------------------------------
# The Python SDK's interpreter


def _python_version(python: str | Path) -> tuple[int, int] | None:
    try:
        result = subprocess.run(
            [str(python), "-c", "import sys; print(*sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
            cwd="/",
            env=sdk_env(),
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if result.returncode != 0:
        return None
    major, minor = result.stdout.split()
    return int(major), int(minor)


def _pyenv_roots() -> list[str]:
    roots = []
    if os.environ.get("PYENV_ROOT"):
        roots.append(os.environ["PYENV_ROOT"])
    pyenv = shutil.which("pyenv")
    if pyenv:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pyenv, "root"], capture_output=True, text=True, timeout=30
            ).stdout.strip()
            if out:
                roots.append(out)
    roots.append(os.path.expanduser("~/.pyenv"))
    return list(dict.fromkeys(roots))


def find_base_python() -> tuple[Path | None, str]:
    """A Python >= 3.12 to build the SDK's virtualenv with, and how it was found (or why
    none was): $RESONATE_SDK2026_PYTHON, else pyenv's 3.12*/3.13* (`pyenv root`, $PYENV_ROOT
    or ~/.pyenv), else python3.12 / python3.13 on PATH."""
    override = os.environ.get("RESONATE_SDK2026_PYTHON")
    if override:
        version = _python_version(override)
        if version is None or version < (3, 12):
            return None, f"RESONATE_SDK2026_PYTHON={override} is not a Python >= 3.12 ({version})"
        return Path(override), f"RESONATE_SDK2026_PYTHON={override}"
    candidates: list[str] = []
    for root in _pyenv_roots():
        for series in ("3.12", "3.13"):
            candidates += sorted(glob.glob(f"{root}/versions/{series}*/bin/python3"))
    candidates += [p for p in (shutil.which("python3.12"), shutil.which("python3.13")) if p]
    for candidate in candidates:
        version = _python_version(candidate)
        if version is not None and version >= (3, 12):
            return Path(candidate), candidate
    return None, f"no Python >= 3.12 found (tried {candidates or 'nothing'})"


def _venv_python() -> Path:
    return PY_VENV / "bin" / "python"


def _py_sdk_ok(python: Path) -> bool:
    """True when `python` imports the SDK (not our package) at the pinned version."""
    check = (
        "import importlib.metadata as m, resonate.resonate, resonate.context;"
        f"assert m.version('resonate-sdk') == {PY_SDK_VERSION!r}, m.version('resonate-sdk');"
        "assert hasattr(resonate.resonate, 'Resonate')"
    )
    try:
        result = subprocess.run(
            [str(python), "-c", check], capture_output=True, cwd="/", timeout=60, env=sdk_env()
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def _build_venv(base: Path) -> None:
    if PY_VENV.exists():
        shutil.rmtree(PY_VENV)
    env = sdk_env()
    subprocess.run(
        [str(base), "-m", "venv", str(PY_VENV)],
        check=True,
        capture_output=True,
        timeout=300,
        cwd="/",
        env=env,
    )
    subprocess.run(
        [
            str(_venv_python()),
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--quiet",
            f"resonate-sdk=={PY_SDK_VERSION}",
        ],
        check=True,
        capture_output=True,
        timeout=600,
        cwd="/",
        env=env,
    )


def _unavailable(reason: str) -> None:
    if os.environ.get("RESONATE_TEST_REQUIRE_SDK"):  # CI: never skip silently
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def py_sdk_python() -> Path:
    """An interpreter whose `resonate` is resonate-sdk 0.8.1 (its own virtualenv, built once
    and then reused)."""
    HERE.mkdir(exist_ok=True)
    with open(HERE / ".venv-sdk.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            base, how = find_base_python()
            if base is None:
                _unavailable(f"resonate-sdk {PY_SDK_VERSION} needs Python >= 3.12: {how}")
            assert base is not None
            marker = f"{PY_SDK_VERSION}\n{base}\n"  # rebuilt when either changes
            if (
                PY_MARKER.exists()
                and PY_MARKER.read_text() == marker
                and _py_sdk_ok(_venv_python())
            ):
                return _venv_python()
            PY_MARKER.unlink(missing_ok=True)
            try:
                _build_venv(base)
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
                output = (getattr(exc, "stderr", b"") or b"").decode(errors="replace")[-3000:]
                _unavailable(
                    f"cannot install resonate-sdk=={PY_SDK_VERSION} in {PY_VENV} "
                    f"with {how}: {output}"
                )
            if not _py_sdk_ok(_venv_python()):
                pytest.fail(f"{PY_VENV} was built but does not import resonate-sdk 0.8.1")
            PY_MARKER.write_text(marker)
            return _venv_python()
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


# ---------------------------------------------------------------------------------------------
# Python SDK processes and their records


class PySdkCluster:
    """resonate-sdk 0.8.1 processes against one server. Everything it starts is killed by
    `close`. Every wait is bounded by its own timeout and by the test's overall deadline.

    Groups are named by the tests as `workflows`, `remote`, `workers`, `clients`; the processes
    join them suffixed for this cluster (`group`), since tests share a server: a leftover task
    of one test (e.g. re-sent to a group whose workers were killed) never reaches another's.
    `SdkProcess.group` is the name the test gave."""

    def __init__(
        self,
        python: Path,
        server: ServerProcess,
        workdir: Path,
        token: str | None = None,
        *,
        shared_server: bool = False,
    ) -> None:
        self.python = python
        self.server = server
        self.workdir = workdir
        self.suffix = uuid.uuid4().hex[:8]
        # A shared server's log is reported from where this cluster began.
        self.shared_server = shared_server
        self.server_log_offset = server.log_path.stat().st_size if server.log_path.exists() else 0
        # A JWT: SDK processes get it as RESONATE_TOKEN, the test's own requests send it.
        self.token = token
        self.records_path = workdir / "records.log"
        self.release_path = workdir / "release"
        self.processes: list[SdkProcess] = []
        self.deadline = time.monotonic() + TEST_BUDGET
        self.api = httpx.Client(
            base_url=server.url,
            timeout=10,
            trust_env=False,
            headers={"Authorization": f"Bearer {token}"} if token else None,
        )
        self._corr = itertools.count(1)
        self._names = itertools.count(1)

    # -- groups -------------------------------------------------------------------------------

    def group(self, name: str) -> str:
        """The group the processes of this cluster join for the test's group `name`."""
        return f"{name}-{self.suffix}"

    def target(self, name: str) -> str:
        """The `resonate:target` of a promise sent to any member of the group `name`."""
        return f"poll://any@{self.group(name)}"

    # -- waiting ------------------------------------------------------------------------------

    def wait_for(self, predicate: Callable[[], Any], timeout: float, what: str) -> Any:
        """Poll `predicate` until truthy; at most `timeout` s and never past the deadline."""
        deadline = min(time.monotonic() + timeout, self.deadline)
        return wait_until(predicate, deadline, 0.05, what)

    # -- processes ----------------------------------------------------------------------------

    def _env(self) -> dict[str, str]:
        env = sdk_env()
        env.update(
            RESONATE_URL=self.server.url,
            SDK_RECORDS=str(self.records_path),
            SDK_RELEASE=str(self.release_path),
            SDK_TTL_MS=str(PY_SDK_TTL_MS),
            SDK_REMOTE_GROUP=self.group("remote"),
            SDK_CLIENTS_GROUP=self.group("clients"),
        )
        if self.token:
            env["RESONATE_TOKEN"] = self.token
        return env

    def _spawn(self, name: str, group: str, script: str, *args: str) -> SdkProcess:
        """`script` with `args`; `group` (the test's name of it) only labels the process."""
        log_path = self.workdir / f"{name}.log"
        with log_path.open("ab") as log:
            popen = subprocess.Popen(
                [str(self.python), str(PY_WORKERS_DIR / script), *args],
                cwd=self.workdir,
                env=self._env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        process = SdkProcess(name, group, popen, log_path)
        self.processes.append(process)
        return process

    def start_worker(self, group: str, name: str | None = None) -> SdkProcess:
        name = name or f"{group}-{next(self._names)}"
        return self._spawn(name, group, "worker.py", self.group(group))

    def start_workers(self, *groups: str) -> list[SdkProcess]:
        """Start one worker per group given (all at once), and wait until each has its SSE
        stream open."""
        started = [self.start_worker(group) for group in groups]
        for process in started:
            self.wait_ready(process)
        return started

    def wait_ready(self, process: SdkProcess, timeout: float = 30) -> Record:
        def ready() -> Record | None:
            self.check_alive(process)
            return next((r for r in self.records("ready") if r.os_pid == process.pid), None)

        return self.wait_for(ready, timeout, f"{process.name} to open its SSE stream")

    def start_client(
        self, mode: str, promise_id: str, where: str, func: str, *args: Any
    ) -> SdkProcess:
        """A client process (workers_py/client.py) that starts one workflow (`rpc`: in the
        group `where`, from the group `clients`; `run`: itself, joining the group `where`) and
        writes its outcome."""
        out = self.workdir / f"result-{promise_id}.json"
        process = self._spawn(
            f"client-{promise_id}",
            "clients" if mode == "rpc" else where,
            "client.py",
            mode,
            str(out),
            promise_id,
            self.group(where),
            func,
            json.dumps(list(args)),
        )
        process.result_path = out
        return process

    def run_ops(self, op: str, *args: str, timeout: float = 30) -> Any:
        """Run workers_py/ops.py to completion; its JSON output."""
        out = self.workdir / f"ops-{next(self._names)}.json"
        process = self._spawn(f"ops-{op}-{next(self._names)}", "ops", "ops.py", op, str(out), *args)
        process.result_path = out
        self.wait_for(lambda: not process.alive(), timeout, f"ops.py {op} to finish")
        assert process.popen.returncode == 0, f"ops.py {op} exited {process.popen.returncode}"
        return json.loads(out.read_text())

    def wait_outcome(self, client: SdkProcess, timeout: float) -> dict[str, Any]:
        """The client's {"result": ...} or {"error": ...}."""
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

        self.wait_for(done, timeout, f"the result of {client.name}")
        outcome: dict[str, Any] = json.loads(out.read_text())
        return outcome

    def wait_result(self, client: SdkProcess, timeout: float) -> Any:
        outcome = self.wait_outcome(client, timeout)
        assert "result" in outcome, f"{client.name}: the workflow failed: {outcome}"
        return outcome["result"]

    def live(self) -> list[SdkProcess]:
        return [p for p in self.processes if p.alive()]

    def check_alive(self, *processes: SdkProcess) -> None:
        """Fail fast when an SDK process died by itself (not by our SIGKILL, not a finished
        one-shot client)."""
        for process in processes or tuple(self.processes):
            code = process.popen.poll()
            if code not in (None, 0, -signal.SIGKILL):
                raise AssertionError(
                    f"{process.name} ({process.group}, pid {process.pid}) exited with {code}; "
                    "see its log below"
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

    def sdk_errors(self) -> list[str]:
        """What the SDK processes logged as going wrong: every reply with a status >= 400
        (the SDK logs each reply, `http_connection http_res: <envelope>`, and each SSE message,
        `sse_recv: <message>`), every reply or message holding a JSON null (P5: fields are
        omitted, never null; this SDK tolerates nulls, the TypeScript one does not), and every
        ERROR log line (e.g. a task released after a failed request, a failed background
        task). A server bug the SDK survives by retrying shows up here."""
        problems = []
        for process in self.processes:
            for line in process.log().splitlines():
                if " ERROR " in line:
                    problems.append(f"{process.name}: {line[:600]}")
                    continue
                for marker in ("http_res: ", "sse_recv: "):
                    if marker not in line:
                        continue
                    try:
                        message = json.loads(line.split(marker, 1)[1])
                    except ValueError:
                        problems.append(f"{process.name}: not JSON: {line[:600]}")
                        continue
                    status = message.get("head", {}).get("status", 200)
                    if not isinstance(status, int) or status >= 400 or _has_null(message):
                        problems.append(f"{process.name}: {line[:600]}")
        return problems

    def by_pid(self, os_pid: int) -> SdkProcess:
        matches = [p for p in self.processes if p.pid == os_pid]
        assert matches, f"pid {os_pid} is none of {[(p.name, p.pid) for p in self.processes]}"
        return matches[0]

    def call(self, kind: str, data: dict[str, Any]) -> tuple[int, Any]:
        """One request of the 2026 protocol (`POST /`): (status, data)."""
        return call_2026(self.api, kind, data, f"test-{next(self._corr)}", self.token)

    def promise(self, promise_id: str) -> dict[str, Any]:
        """The promise as the 2026 protocol shows it (`promise.get`)."""
        status, data = self.call("promise.get", {"id": promise_id})
        assert status == 200, (promise_id, status, data)
        return data["promise"]

    def find_promise(self, promise_id: str) -> dict[str, Any] | None:
        status, data = self.call("promise.get", {"id": promise_id})
        if status == 404:
            return None
        assert status == 200, (promise_id, status, data)
        return data["promise"]

    def task(self, task_id: str) -> dict[str, Any] | None:
        """The task as the 2026 protocol shows it (`task.get`); None when it has none."""
        status, data = self.call("task.get", {"id": task_id})
        if status == 404:
            return None
        assert status == 200, (task_id, status, data)
        return data["task"]

    def rest_promise(self, promise_id: str) -> dict[str, Any]:
        """The promise as the REST API shows it (`GET /promises/{id}`)."""
        response = self.api.get(f"/promises/{promise_id}")
        assert response.status_code == 200, (promise_id, response.status_code, response.text)
        return response.json()

    def server_log(self) -> str:
        """The server's log since this cluster began."""
        with self.server.log_path.open("rb") as log:
            log.seek(self.server_log_offset)
            return log.read().decode(errors="replace")

    def report(self) -> str:
        parts = []
        if self.shared_server:
            parts.append(
                f"===== resonate serve log since the test began ({self.server.log_path}) "
                f"=====\n{self.server_log()[-80000:]}"
            )
        for process in self.processes:
            parts.append(
                f"===== {process.name} (group {process.group}, pid {process.pid}, "
                f"exit {process.popen.poll()}) =====\n{process.log()[-30000:]}"
            )
        records = self.records_path.read_text() if self.records_path.exists() else "(none)"
        parts.append(f"===== records =====\n{records}")
        return "\n".join(parts)


def _has_null(obj: Any) -> bool:
    if obj is None:
        return True
    if isinstance(obj, dict):
        return any(_has_null(v) for v in obj.values())
    if isinstance(obj, list):
        return any(_has_null(v) for v in obj)
    return False


def decode_value(value: dict[str, Any] | None) -> Any:
    """The JSON a Value carries (base64 of JSON, either protocol), or None without data."""
    data = (value or {}).get("data")
    return None if data is None else json.loads(base64.b64decode(data))


def encode_value(obj: Any) -> str:
    return base64.b64encode(json.dumps(obj).encode()).decode()


@contextlib.contextmanager
def py_sdk_cluster(
    request: pytest.FixtureRequest,
    python: Path,
    server: ServerProcess,
    workdir: Path,
    token: str | None = None,
    *,
    shared_server: bool = False,
) -> Iterator[PySdkCluster]:
    """A PySdkCluster whose processes' logs and records (and, with `shared_server`, the
    server's log since it began) go to the failure report."""
    workdir.mkdir(parents=True, exist_ok=True)
    cluster = PySdkCluster(python, server, workdir, token, shared_server=shared_server)
    add_report_section(request.node, "resonate-sdk 0.8.1 processes", cluster.report)
    try:
        yield cluster
    finally:
        cluster.close()


@pytest.fixture
def py_sdk(
    request: pytest.FixtureRequest, py_sdk_python: Path, py_sdk_server: ServerProcess, tmp_path
) -> Iterator[PySdkCluster]:
    """A PySdkCluster (groups of its own) against the session's server of the store. On
    failure, the server's log since the test began, every SDK process's log (which carries the
    SDK's requests and replies) and the record file are attached."""
    with py_sdk_cluster(
        request, py_sdk_python, py_sdk_server, tmp_path / "py-sdk", shared_server=True
    ) as cluster:
        yield cluster


# Re-exported for test modules.
__all__ = [
    "PROTOCOL_VERSION",
    "PY_SDK_VERSION",
    "SERVER_ARGS",
    "PySdkCluster",
    "Record",
    "SdkProcess",
    "ServerPool",
    "add_report_section",
    "call_2026",
    "decode_value",
    "encode_value",
    "find_base_python",
    "py_sdk_cluster",
    "shared_server",
    "start_sdk2026_server",
]
