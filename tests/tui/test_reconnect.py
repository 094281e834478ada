"""The server goes away while the dashboard runs, and comes back: the status bar says so, the
data stays on screen greyed, and the dashboard recovers by itself (no traceback, no exit)."""

from __future__ import annotations

from pathlib import Path

from resonate.client import Credentials
from resonate.tui.screens.promises import PromisesScreen
from tests.support.servers import ServerProcess
from tests.support.tui import dashboard, screen_text, until


async def test_stopping_and_restarting_the_server(server_factory, tmp_path: Path) -> None:
    first = server_factory(tmp_path).start()
    async with dashboard(first) as (app, pilot):
        await pilot.press("2")
        screen = await until(
            pilot, lambda: isinstance(app.screen, PromisesScreen) and app.screen, "2"
        )
        first.kill()
        await until(pilot, lambda: app.connection.error is not None, "the error")
        text = screen_text(app)
        assert "cannot reach" in text and "retrying in" in text
        assert screen.has_class("-stale")
        assert app.is_running

        second = server_factory(tmp_path, db_path=first.db_path)
        second.port, second.metrics_port, second.poll_port = (
            first.port,
            first.metrics_port,
            first.poll_port,
        )
        second.start()
        await until(pilot, lambda: app.connection.error is None, "the recovery")
        assert not screen.has_class("-stale")
        assert "live" in screen_text(app)
        assert app.connection.failures == 0


async def test_a_401_is_one_clear_line(server_factory, tmp_path: Path) -> None:
    guarded = server_factory(
        tmp_path,
        extra_args=["--api-http-auth", "admin=secret"],
    ).start()
    async with dashboard(guarded) as (app, pilot):
        await until(pilot, lambda: app.connection.error, "the error")
        assert "unauthorized (HTTP 401)" in screen_text(app)
    async with dashboard(guarded, credentials=Credentials(None, "admin", "secret")) as (app, _):
        assert app.connection.error is None
        assert app.connection.status is not None and app.connection.status.ready


async def test_a_server_that_never_answered(tmp_path: Path) -> None:
    absent = ServerProcess(tmp_path)  # never started: nothing listens on its port
    from resonate.tui.app import ResonateApp
    from resonate.tui.data import DataSource

    app = ResonateApp(DataSource(absent.url), refresh_seconds=0.5)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.connection.failures >= 2, "two attempts")
        assert app.connection.status is None
        assert "cannot reach" in screen_text(app)
        assert app.is_running
