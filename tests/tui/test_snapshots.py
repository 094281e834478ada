"""Every screen and the detail views as pictures (pytest-textual-snapshot), at 120x40 and 80x24,
with fixed data and a frozen clock. After a deliberate change to the look, regenerate with
`scripts/test tests/tui/test_snapshots.py --snapshot-update` and review the SVGs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from resonate.tui.app import ResonateApp
from resonate.tui.screens.promise_detail import PromiseDetailScreen
from resonate.tui.screens.resources import ResourceListScreen
from tests.support.tui import until
from tests.tui.fixed_data import (
    DOCTOR_HEALTHY,
    LOCKS,
    NOW_MS,
    SCHEDULES,
    TASKS,
    TASKS_2026,
    FixedData,
    fixed_history,
)

SIZES = [(120, 40), (80, 24)]


def fixed_app(read_only: bool = False, data: FixedData | None = None) -> ResonateApp:
    app = ResonateApp(
        data or FixedData(),  # type: ignore[arg-type]
        refresh_seconds=3600,
        read_only=read_only,
        clock=lambda: NOW_MS / 1000,
    )
    app.history = fixed_history()
    return app


async def settled(pilot: Any) -> None:
    app = pilot.app
    await until(pilot, lambda: app.refresh_count > 0, "the first refresh")
    screen = app.screen
    if isinstance(screen, ResourceListScreen):
        await until(pilot, lambda: screen.loaded_once, "rows")
    if isinstance(screen, PromiseDetailScreen):
        await until(pilot, lambda: screen.detail is not None, "the detail")
    await until(pilot, lambda: not app._in_flight, "no refresh in flight")
    await pilot.pause()


def view(*keys: str) -> Callable[[Any], Awaitable[None]]:
    async def run_before(pilot: Any) -> None:
        await settled(pilot)
        for key in keys:
            await pilot.press(key)
            await settled(pilot)

    return run_before


def opened(screen_factory: Callable[[], Any], *keys: str) -> Callable[[Any], Awaitable[None]]:
    async def run_before(pilot: Any) -> None:
        await settled(pilot)
        for key in keys:
            await pilot.press(key)
            await settled(pilot)
        pilot.app.push_screen(screen_factory())
        await until(pilot, lambda: pilot.app.screen.is_current, "the screen")
        pilot.app.refresh_now()
        await settled(pilot)

    return run_before


def _task_detail() -> Any:
    from resonate.tui.screens.tasks import TaskDetailScreen

    return TaskDetailScreen(TASKS[0]["id"], TASKS[0])


def _task_2026_detail() -> Any:
    from resonate.tui.screens.tasks import TaskDetailScreen

    return TaskDetailScreen(TASKS_2026[0]["id"], TASKS_2026[0])


def _schedule_detail() -> Any:
    from resonate.tui.screens.schedules import ScheduleDetailScreen

    return ScheduleDetailScreen(SCHEDULES[0]["id"], SCHEDULES[0])


def _lock_detail() -> Any:
    from resonate.tui.screens.locks import LockDetailScreen

    return LockDetailScreen(LOCKS[1]["resourceId"], LOCKS[1])


SCREENS: dict[str, Callable[[Any], Awaitable[None]]] = {
    "overview": view(),
    "promises": view("2"),
    "promise_detail": opened(lambda: PromiseDetailScreen("order-7.1"), "2"),
    "tasks": view("3"),
    "task_detail": opened(_task_detail, "3"),
    "task_2026_detail": opened(_task_2026_detail, "3"),
    "schedules": view("4"),
    "schedule_detail": opened(_schedule_detail, "4"),
    "locks": view("5"),
    "lock_detail": opened(_lock_detail, "5"),
    "help": view("question_mark"),
}


@pytest.mark.parametrize("size", SIZES, ids=lambda size: f"{size[0]}x{size[1]}")
@pytest.mark.parametrize("name", list(SCREENS))
def test_screen(snap_compare: Any, name: str, size: tuple[int, int]) -> None:
    assert snap_compare(fixed_app(), terminal_size=size, run_before=SCREENS[name])


@pytest.mark.parametrize("size", SIZES, ids=lambda size: f"{size[0]}x{size[1]}")
def test_overview_healthy(snap_compare: Any, size: tuple[int, int]) -> None:
    """`GET /doctor` says ok: the panel says nothing is stuck, and what was checked."""
    app = fixed_app(data=FixedData(doctor=DOCTOR_HEALTHY))
    assert snap_compare(app, terminal_size=size, run_before=view())


@pytest.mark.parametrize("size", SIZES, ids=lambda size: f"{size[0]}x{size[1]}")
def test_overview_server_without_doctor(snap_compare: Any, size: tuple[int, int]) -> None:
    """A server older than `GET /doctor`: the panel shows `GET /stuck` as it always did."""
    app = fixed_app(data=FixedData(doctor=None))
    assert snap_compare(app, terminal_size=size, run_before=view())


def test_read_only_footer(snap_compare: Any) -> None:
    assert snap_compare(fixed_app(read_only=True), terminal_size=(120, 40), run_before=view("2"))
