"""The dashboard's detail view shows the call tree of a real SDK workflow (resonate-sdk 0.4.12):
the same graph `resonate tree` prints, found from the root or from any of its steps."""

from __future__ import annotations

import json

import pytest

from resonate.tui.screens.promise_detail import PromiseDetailScreen
from tests.sdk.conftest import SdkCluster
from tests.sdk.test_sdk_cli import invoke_fanout, run_cli
from tests.support.tui import dashboard, screen_text, tree_ids, until

pytestmark = pytest.mark.sdk


def expected_tree(node: dict, depth: int = 0) -> list[tuple[int, str]]:
    rows = [(depth, node["id"])]
    for child in node["children"]:
        rows.extend(expected_tree(child, depth + 1))
    return rows


async def test_call_tree_of_an_sdk_workflow(sdk: SdkCluster) -> None:
    sdk.start_workers([("workflows-1", "workflows"), ("workers-1", "workers")])
    wf = "tui-fanout"
    invoked = invoke_fanout(sdk, wf)
    assert invoked.returncode == 0, (invoked.stdout, invoked.stderr)
    shown = run_cli(sdk, "tree", wf, "-o", "json")
    assert shown.returncode == 0, shown.stderr
    graph = json.loads(shown.stdout)
    expected = expected_tree(graph)
    assert len(expected) == 7

    async with dashboard(sdk.server) as (app, pilot):
        for opened in (wf, f"{wf}.3"):  # the root, then a step: both show the root's tree
            app.push_screen(PromiseDetailScreen(opened))
            await until(
                pilot,
                lambda o=opened: (
                    isinstance(app.screen, PromiseDetailScreen)
                    and app.screen.promise_id == o
                    and app.screen.detail is not None
                ),
                f"the detail of {opened}",
            )
            assert tree_ids(app) == expected
            text = screen_text(app)
            assert "fanout_workflow" in text and "square" in text and "(sleep)" in text
            await pilot.press("escape")
        sdk.check_alive()
