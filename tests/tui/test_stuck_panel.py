"""The overview's Stuck panel against a real server: the findings of `GET /doctor`, and, for a
server older than that route (it answers 404), `GET /stuck` in its own table as before. The
older server is the real one behind a small proxy that answers `/doctor` the way a server
without the route does (with the real server's own 404 for an unknown path)."""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from aiohttp import web

from resonate.client import ResonateClient, encode_value
from resonate.tui.app import ResonateApp
from resonate.tui.data import DOCTOR_RETRY_SECONDS, DataSource, Doctor, Stuck
from resonate.tui.screens.overview import OverviewScreen, doctor_title, finding_rows
from resonate.tui.screens.tasks import TaskDetailScreen
from resonate.tui.widgets.dialogs import TextViewer
from resonate.tui.widgets.resource_table import ResourceTable
from tests.support.servers import ServerProcess, free_port
from tests.support.tui import dashboard, screen_text, until
from tests.tui.test_pilot import make_claimed_task

HOUR_MS = 3_600_000


def now_ms() -> int:
    return int(time.time() * 1000)


class OlderServer:
    """A proxy to `server` that has no `GET /doctor`, counting the requests by path; with
    `version` set, `/stats` says that version instead of the server's."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.port = free_port()
        self.requests: Counter[str] = Counter()
        self.version: str | None = None
        self._http = httpx.AsyncClient(base_url=server.url, timeout=10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def forward(self, request: web.Request) -> web.Response:
        self.requests[request.path] += 1
        # No route there: the real server's answer for a path it does not know.
        target = "/no-such-route" if request.path == "/doctor" else request.path_qs
        skip = {"host", "content-length", "transfer-encoding"}
        answer = await self._http.request(
            request.method,
            target,
            content=await request.read(),
            headers={k: v for k, v in request.headers.items() if k.lower() not in skip},
        )
        body = answer.content
        if request.path == "/stats" and self.version is not None:
            body = json.dumps({**answer.json(), "version": self.version}).encode()
        content_type = answer.headers.get("content-type", "application/json")
        return web.Response(
            status=answer.status_code, body=body, headers={"Content-Type": content_type}
        )


@asynccontextmanager
async def older_server(server: ServerProcess) -> AsyncIterator[OlderServer]:
    proxy = OlderServer(server)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", proxy.forward)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", proxy.port).start()
    try:
        yield proxy
    finally:
        await runner.cleanup()
        await proxy._http.aclose()


async def test_a_server_without_doctor_shows_stuck_and_opens_a_row(server: ServerProcess) -> None:
    prefix = f"tui-{uuid.uuid4().hex[:8]}"
    with ResonateClient(server.url) as client:
        task = make_claimed_task(client, f"{prefix}-short", ttl_ms=8_000)
    async with older_server(server) as older:
        data = DataSource(older.url, None, server.metrics_url + "/metrics")
        app = ResonateApp(data, refresh_seconds=0.5)
        async with app.run_test(size=(120, 40)) as pilot:
            screen = app.screen
            assert isinstance(screen, OverviewScreen)
            key = f"task:{task['id']}"
            await until(pilot, lambda: key in screen.stuck_objects, "the stuck task")
            assert screen.legacy and not screen.findings
            assert app.connection.error is None  # a 404 for /doctor is not an outage
            text = screen_text(app)
            assert "lease < 10s or counter ≥ 3" in text and "no GET /doctor" in text
            await until(pilot, lambda: older.requests["/stuck"] >= 3, "three refreshes")
            assert older.requests["/doctor"] == 1  # asked once, not on every refresh

            table = screen.query_one("#stuck", ResourceTable)
            assert table.display and not screen.query_one("#findings").display
            table.move_cursor(row=table.get_row_index(key))
            table.focus()
            await pilot.press("enter")
            await until(pilot, lambda: isinstance(app.screen, TaskDetailScreen), "its detail")
            assert app.screen.object_id == task["id"]


async def test_doctor_is_asked_again_later_and_after_a_version_change(
    server: ServerProcess,
) -> None:
    clock = [1_000.0]
    async with older_server(server) as older:
        data = DataSource(older.url, monotonic=lambda: clock[0])
        try:
            await data.status()
            assert isinstance(await data.health(), Stuck)
            assert isinstance(await data.health(), Stuck)
            assert (older.requests["/doctor"], older.requests["/stuck"]) == (1, 2)

            clock[0] += DOCTOR_RETRY_SECONDS
            assert isinstance(await data.health(), Stuck)
            assert older.requests["/doctor"] == 2  # the server may have been upgraded since

            older.version = "9.9.9"  # another server now answers (an upgrade, a failover)
            await data.status()
            await data.health()
            assert older.requests["/doctor"] == 3
            await data.health()
            assert older.requests["/doctor"] == 3
        finally:
            await data.close()


async def test_doctor_findings_healthy_then_stuck_and_opened(server_factory, tmp_path) -> None:
    """A server of its own: a fresh one is healthy; a task for a poll group nobody polls makes
    two findings (the task, the group) and a worker group with one task queued."""
    fresh = server_factory(tmp_path).start()
    group = f"tui-{uuid.uuid4().hex[:8]}"
    promise_id = f"{group}-job"
    async with dashboard(fresh) as (app, pilot):
        screen = app.screen
        assert isinstance(screen, OverviewScreen)
        doctor = await until(pilot, lambda: screen.doctor, "the doctor's answer")
        assert not screen.legacy
        # A busy machine may find the store slow (or the disk short): that is not ours.
        if not [finding for finding in doctor.findings if finding.kind == "store"]:
            assert doctor.ok and not screen.findings
            text = screen_text(app)
            assert "nothing stuck · healthy" in text and "loops running" in text

        with ResonateClient(fresh.url) as client:
            client.create_promise(
                promise_id,
                now_ms() + HOUR_MS,
                encode_value(json.dumps({"func": "f"})),
                {"resonate:invoke": f"poll://any@{group}"},
            )
            task = next(iter(client.iter_tasks(root_promise_id=promise_id)))
        task_key = f"task.unroutable:{task['id']}"
        await until(pilot, lambda: task_key in screen.findings, "the task's finding")
        await until(pilot, lambda: f"group.no_connections:{group}" in screen.findings, "group")
        text = screen_text(app)
        assert "warnings" in text and "nothing stuck" not in text
        assert group in text and "worker groups" in text  # the groups, from /doctor
        assert app.connection.error is None

        table = screen.query_one("#findings", ResourceTable)
        table.move_cursor(row=table.get_row_index(task_key))
        await until(pilot, lambda: "(enter opens the task)" in screen_text(app), "its action")
        assert f"start a worker polling group {group}" in screen_text(app)
        await pilot.press("y")
        await until(pilot, lambda: isinstance(app.screen, TextViewer), "the JSON viewer")
        assert json.loads(app.clipboard)["check"] == "task.unroutable"
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is screen, "back")
        table.focus()
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, TaskDetailScreen), "the task")
        detail = app.screen
        assert isinstance(detail, TaskDetailScreen) and detail.object_id == task["id"]
        await until(pilot, lambda: detail.document is not None, "the task read")
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is screen, "back again")
        # A finding about a group has no detail to open: enter stays on the overview.
        table.move_cursor(row=table.get_row_index(f"group.no_connections:{group}"))
        await pilot.press("enter")
        await pilot.pause(0.2)
        assert app.screen is screen


async def test_health_reads_the_doctor_of_a_server_that_has_it(server: ServerProcess) -> None:
    data = DataSource(server.url)
    try:
        assert isinstance(await data.health(), Doctor)
    finally:
        await data.close()


# --- the records and the cells, without a server -------------------------------------------------


def test_a_doctor_answer_is_read_worst_first_and_leniently() -> None:
    doctor = Doctor.from_json(
        {
            "time": 5,
            "findings": [
                {"check": "store.slow", "severity": "info", "kind": "store", "id": None},
                {"check": "a.b", "severity": "surprising", "kind": "x", "id": 7},
                {"check": "task.unroutable", "severity": "error", "kind": "task", "id": "t"},
                "not an object",
            ],
            "groups": [{"group": "g", "connections": 2}],
            "store": {"kind": "sqlite"},
        }
    )
    assert [f.check for f in doctor.findings] == ["task.unroutable", "a.b", "store.slow"]
    assert doctor.findings[1].id == "7" and doctor.findings[1].message == ""
    assert not doctor.ok  # no "ok" in the answer: an error (and an unknown severity) is not ok
    assert doctor.groups[0].undelivered == 0
    assert Doctor.from_json({"ok": True, "findings": []}).ok


def test_finding_rows_fit_the_width_and_keep_every_finding() -> None:
    from tests.tui.fixed_data import DOCTOR

    twice = {
        **DOCTOR,
        "findings": [
            *DOCTOR["findings"],
            {"check": "promise.overdue", "severity": "info", "kind": "promise", "id": None},
            {"check": "promise.overdue", "severity": "info", "kind": "promise", "id": None},
        ],
    }
    doctor = Doctor.from_json(twice)
    for width in (80, 120, 200):
        rows = finding_rows(doctor, width)
        assert len({key for key, _, _ in rows}) == len(doctor.findings)
        widest = sum(max(len(str(cells[i])) for _, cells, _ in rows) + 2 for i in range(4))
        assert widest <= width - 2  # room for the scrollbar: no horizontal scrolling
    long_id = {**DOCTOR["findings"][0], "id": "x" * 80}
    rows = finding_rows(Doctor.from_json({**DOCTOR, "findings": [long_id]}), 80)
    assert str(rows[0][1][2]).endswith("…") and rows[0][2].id == "x" * 80


def test_the_title_counts_by_severity() -> None:
    def title(ok: bool, *severities: str) -> str:
        findings = [{"check": "c", "severity": s, "kind": "k", "id": None} for s in severities]
        return doctor_title(Doctor.from_json({"ok": ok, "findings": findings})).plain

    assert title(True) == " Stuck · nothing stuck · healthy"
    assert title(True, "info") == " Stuck · nothing stuck · healthy · 1 info"
    assert title(False, "error", "warning", "warning", "info") == (
        " Stuck · 1 error · 2 warnings · 1 info"
    )


async def test_the_findings_fit_the_terminal_after_a_resize() -> None:
    from tests.tui.test_snapshots import fixed_app, settled

    app = fixed_app()
    async with app.run_test(size=(160, 40)) as pilot:
        await settled(pilot)
        table = app.screen.query_one("#findings", ResourceTable)
        for size in ((80, 24), (120, 40), (100, 30)):
            await pilot.resize_terminal(*size)
            await pilot.pause()
            await until(pilot, lambda w=size[0]: app.size.width == w, "the resize")
            await pilot.pause()
            assert table.virtual_size.width <= table.size.width, size  # no sideways scrolling
