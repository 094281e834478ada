"""Harness for the end-to-end tests with the official TypeScript SDK, @resonatehq/sdk 0.11.5
(the 2026-04-01 protocol: `POST /` envelopes and the `GET /poll/{group}/{pid}` stream).

The SDK lives in tests/sdk2026/ts/node_modules (gitignored), installed with `npm ci` from the
committed package-lock.json on first use, under a file lock (pytest-xdist), and reused while
its marker matches the lock file. No node/npm, or a failed install, skips the tests locally
and fails them when RESONATE_TEST_REQUIRE_SDK is set (CI). The SDK declares Node >= 22 but
runs on Node 20 with a `Promise.withResolvers` stand-in (tests/sdk2026/ts/lib.mjs).

The tests of the module share one `resonate serve` per store (conftest's ServerPool: started on
first use, kept for the session; a fresh SQLite file, or a fresh PostgreSQL database when
RESONATE_TEST_POSTGRES_DSN is set, with `--tasks-retry-timeout 2s`);
each test gets a `NodeCluster` with groups and SDK pids of its own, which starts Node processes
(worker.mjs, client.mjs, shape.mjs, ops.mjs), reads their records file and kills every process
it started (a few tests start a server of their own: restart, auth). On failure the server's
log of that test, every process's log (it traces each POST / with its reply) and the records
are attached to the report.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import pg
from tests.support.sdk import Record, SdkProcess, read_records, sdk_env, wait_for
from tests.support.servers import ServerProcess

SDK_PACKAGE = "@resonatehq/sdk"
SDK_VERSION = "0.11.5"
PROTOCOL_VERSION = "2026-04-01"
# `--tasks-retry-timeout 2s`: a pending task whose execute found no worker (none connected
# yet, or a dead one) is re-sent after 2 s instead of 30 s. Debug log for the failure report.
SERVER_ARGS = ["--tasks-retry-timeout", "2s", "--log-level", "debug"]
TS_DIR = Path(__file__).resolve().parent / "ts"
NODE_MODULES = TS_DIR / "node_modules"
MARKER = NODE_MODULES / ".resonate-sdk-ok"
LOCK_FILE = TS_DIR / "package-lock.json"

# ---------------------------------------------------------------------------------------------
# Node and the SDK


def _lock_digest() -> str:
    return hashlib.sha256(LOCK_FILE.read_bytes()).hexdigest()


def _sdk_ok(node: str) -> bool:
    """True when node imports the pinned SDK from tests/sdk2026/ts (through lib.mjs, so with
    the Promise.withResolvers stand-in) and its guards are there."""
    check = (
        "const m = await import('./lib.mjs');"
        "const pkg = JSON.parse(require('node:fs').readFileSync("
        f"'node_modules/{SDK_PACKAGE}/package.json', 'utf8'));"
        f"if (pkg.version !== '{SDK_VERSION}') throw new Error('version ' + pkg.version);"
        "for (const g of ['isResponse', 'isTaskFenceRes', 'isExecuteMsg', 'isUnblockMsg'])"
        "  if (typeof m.sdk[g] !== 'function') throw new Error('no ' + g);"
        "if (typeof m.Resonate !== 'function') throw new Error('no Resonate');"
        "process.exit(0);"
    )
    script = (
        f"(async () => {{ {check} }})().catch((e) => {{ console.error(e); process.exit(1); }});"
    )
    try:
        result = subprocess.run(
            [node, "--input-type=commonjs", "-e", script],
            cwd=TS_DIR,
            capture_output=True,
            timeout=60,
            env={
                **sdk_env(drop_prefixes=("RESONATE_", "NODE_"), python=False),
                "SDK_WRAP_FETCH": "0",
            },
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def _unavailable(reason: str) -> None:
    if os.environ.get("RESONATE_TEST_REQUIRE_SDK"):  # CI: never skip silently
        pytest.fail(reason)
    pytest.skip(reason)


def ensure_sdk() -> str:
    """The node binary, with the pinned SDK installed in tests/sdk2026/ts/node_modules."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        _unavailable("node/npm not found: the TypeScript SDK tests need Node 20+ and npm")
        raise AssertionError("unreachable")
    version = subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()
    if not version.startswith("v") or int(version[1:].split(".")[0]) < 20:
        _unavailable(f"node {version} is too old: the TypeScript SDK tests need Node 20+")
    # A file lock (pytest-xdist workers install once), taken on package.json itself so that
    # no lock file is left in the tree.
    with open(TS_DIR / "package.json", "rb") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            digest = _lock_digest()
            if MARKER.exists() and MARKER.read_text().strip() == digest and _sdk_ok(node):
                return node
            MARKER.unlink(missing_ok=True)
            try:
                subprocess.run(
                    [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                    cwd=TS_DIR,
                    check=True,
                    capture_output=True,
                    timeout=600,
                    env=sdk_env(drop_prefixes=("RESONATE_", "NODE_"), python=False),
                )
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
                output = (getattr(exc, "stderr", b"") or b"").decode(errors="replace")[-3000:]
                _unavailable(f"npm ci of {SDK_PACKAGE}@{SDK_VERSION} in {TS_DIR} failed: {output}")
            if not _sdk_ok(node):
                pytest.fail(f"{NODE_MODULES} was installed but does not import {SDK_PACKAGE}")
            MARKER.write_text(digest + "\n")
            return node
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


# ---------------------------------------------------------------------------------------------
# Processes, records and the server's view


def decode(value: dict[str, Any]) -> Any:
    """The JSON a Value carries (base64 of JSON), or None when it has no data."""
    data = value.get("data")
    return None if not data else json.loads(base64.b64decode(data))


class NodeCluster:
    """Node processes of the TypeScript SDK against one server; `close` kills them all."""

    def __init__(self, node: str, server: ServerProcess, workdir: Path) -> None:
        self.node = node
        self.server = server
        self.workdir = workdir
        self.records_path = workdir / "records.log"
        self.release_path = workdir / "release"
        self.processes: list[SdkProcess] = []
        self.api = httpx.Client(base_url=server.url, timeout=10, trust_env=False)
        # Groups and SDK pids of this test only: tests share a server (one per store), and a
        # leftover task of one test must never reach another test's workers.
        self.suffix = uuid.uuid4().hex[:6]
        self.main = f"sdkts-main-{self.suffix}"  # runs the workflows
        self.remote = f"sdkts-remote-{self.suffix}"  # runs what they call with ctx.rpc
        self.clients = f"sdkts-clients-{self.suffix}"  # starts workflows with resonate.rpc
        self.server_log_offset = server.log_path.stat().st_size if server.log_path.exists() else 0
        self.extra_env: dict[str, str] = {}  # for every process started from now on

    # -- processes ----------------------------------------------------------------------------

    def _env(self, name: str, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = sdk_env(drop_prefixes=("RESONATE_", "NODE_"), python=False)
        env.update(
            RESONATE_URL=self.server.url,
            SDK_RECORDS=str(self.records_path),
            SDK_RELEASE=str(self.release_path),
            SDK_NAME=name,
            SDK_REMOTE_GROUP=self.remote,
        )
        env.update(self.extra_env)
        env.update(extra or {})
        return env

    def spawn(
        self,
        name: str,
        group: str,
        sdk_pid: str,
        script: str,
        *args: str,
        env: dict[str, str] | None = None,
    ) -> SdkProcess:
        log_path = self.workdir / f"{name}.log"
        with log_path.open("ab") as log:
            popen = subprocess.Popen(
                [self.node, str(TS_DIR / script), *args],
                cwd=TS_DIR,
                env=self._env(name, env),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        process = SdkProcess(name, group, popen, log_path, sdk_pid=sdk_pid)
        self.processes.append(process)
        return process

    def start_worker(self, name: str, group: str, ttl_ms: int = 60_000) -> SdkProcess:
        sdk_pid = f"{name}-{self.suffix}"
        return self.spawn(name, group, sdk_pid, "worker.mjs", group, sdk_pid, str(ttl_ms))

    def start_workers(self, specs: list[tuple[str, str]], ttl_ms: int = 60_000) -> list[SdkProcess]:
        """Start several workers at once; return once each has its message stream open."""
        started = [self.start_worker(name, group, ttl_ms) for name, group in specs]
        for process in started:
            self.wait_ready(process)
        return started

    def wait_ready(self, process: SdkProcess, timeout: float = 20) -> Record:
        def ready() -> Record | None:
            self.check_alive(process)
            return next((r for r in self.records("ready") if r.os_pid == process.pid), None)

        return wait_for(ready, timeout, f"{process.name} to open its message stream")

    def start_client(
        self,
        mode: str,
        promise_id: str,
        func: str,
        args: list[Any],
        *,
        group: str,
        target: str = "",
        ttl_ms: int = 60_000,
    ) -> SdkProcess:
        """client.mjs in `mode`: `run` (joins `group` and runs the workflow itself), `rpc`
        (calls it on `target`), `run-async` (`run` on the async/await engine) or `rpc-many`
        (args = [count, ...]: count concurrent rpc); its result lands in
        ``process.result_path``."""
        name = f"client-{promise_id}"
        sdk_pid = f"{name}-{self.suffix}"
        out = self.workdir / f"result-{promise_id}.json"
        process = self.spawn(
            name,
            group,
            sdk_pid,
            "client.mjs",
            mode,
            str(out),
            group,
            sdk_pid,
            promise_id,
            func,
            json.dumps(args),
            target,
            env={"SDK_TTL": str(ttl_ms)},
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
                raise AssertionError(f"{client.name} exited with {client.popen.returncode}")
            return False

        wait_for(done, timeout, f"the result of {client.name}")
        payload = json.loads(out.read_text())
        assert "result" in payload, f"{client.name} failed: {payload}"
        return payload["result"]

    def check_alive(self, *processes: SdkProcess) -> None:
        """A worker never exits by itself, a client exits 0 once it has its result: any other
        exit (other than by our SIGKILL) is a crash."""
        for process in processes or tuple(self.processes):
            code = process.popen.poll()
            if code is None or code == -signal.SIGKILL:
                continue
            if process.result_path is not None and code == 0:
                continue
            raise AssertionError(f"{process.name} exited with {code}; see its log")

    def kill(self, process: SdkProcess) -> None:
        if process.alive():
            os.killpg(process.pid, signal.SIGKILL)
        process.popen.wait(timeout=10)

    def close(self) -> None:
        for process in self.processes:
            with contextlib.suppress(ProcessLookupError, subprocess.TimeoutExpired):
                self.kill(process)
        self.api.close()

    def restart_server(self) -> None:
        """SIGKILL the server and start it again on the same ports and store."""
        self.server.kill()
        self.server.start()
        self.api.close()
        self.api = httpx.Client(base_url=self.server.url, timeout=10, trust_env=False)

    # -- observation --------------------------------------------------------------------------

    def records(self, event: str | None = None, key: object | None = None) -> list[Record]:
        return read_records(self.records_path, event, key)

    def assert_no_invalid_replies(self) -> None:
        """Every reply and stream message the SDK processes got passed the SDK's guards, with
        no null in it and a status the SDK takes as an answer (see lib.mjs)."""
        bad = self.records("invalid-reply")
        assert not bad, f"replies the SDK cannot take: {[r.key for r in bad]}"

    def call(self, kind: str, data: dict[str, Any]) -> dict[str, Any]:
        """One envelope to POST / (the server's view, through the 2026 protocol)."""
        corr = uuid.uuid4().hex
        response = self.api.post(
            "/",
            json={
                "kind": kind,
                "head": {"corrId": corr, "version": PROTOCOL_VERSION},
                "data": data,
            },
        )
        body = response.json()
        assert body["head"]["status"] == response.status_code, body
        assert body["kind"] == kind and body["head"]["corrId"] == corr, body
        return body

    def promise(self, promise_id: str) -> dict[str, Any]:
        body = self.call("promise.get", {"id": promise_id})
        assert body["head"]["status"] == 200, body
        return body["data"]["promise"]

    def find_promise(self, promise_id: str) -> dict[str, Any] | None:
        body = self.call("promise.get", {"id": promise_id})
        if body["head"]["status"] == 404:
            return None
        assert body["head"]["status"] == 200, body
        return body["data"]["promise"]

    def task(self, task_id: str) -> dict[str, Any] | None:
        body = self.call("task.get", {"id": task_id})
        return body["data"]["task"] if body["head"]["status"] == 200 else None

    def server_log(self) -> str:
        """The server's log since this test started."""
        with self.server.log_path.open("rb") as log:
            log.seek(self.server_log_offset)
            return log.read().decode(errors="replace")

    def report(self) -> str:
        """The server's log of this test, every Node process's log (each traces its POST /
        exchanges) and the records."""
        parts = [f"===== server log ({self.server.log_path}) =====\n{self.server_log()[-80000:]}"]
        for process in self.processes:
            parts.append(
                f"===== {process.name} (group {process.group}, pid {process.pid}, "
                f"exit {process.popen.poll()}) =====\n{process.log()[-40000:]}"
            )
        records = self.records_path.read_text() if self.records_path.exists() else "(none)"
        parts.append(f"===== records =====\n{records}")
        return "\n".join(parts)


@contextlib.contextmanager
def module_server(
    workdir: Path, store_kind: str, extra_args: list[str] | None = None
) -> Iterator[ServerProcess]:
    """`resonate serve` with SERVER_ARGS on `store_kind` (a SQLite file in `workdir`, or a
    fresh PostgreSQL database, dropped afterwards). Free ports are picked before the server
    binds them, so another suite running at the same time may take one first: then it starts
    again on new ports (3 tries)."""
    dsn = pg.create_database_sync("resonate_sdkts") if store_kind == "postgres" else None
    args = [*SERVER_ARGS, *(pg.store_args(dsn) if dsn else []), *(extra_args or [])]
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
        if dsn:
            pg.drop_database_sync(dsn)
