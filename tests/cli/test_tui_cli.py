"""`resonate tui`'s options: bad values are usage errors (exit 2) before any screen is drawn."""

from __future__ import annotations

import pytest

from tests.cli.cli_runner import invoke


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--refresh", "soon"], "invalid duration"),
        (["--refresh", "100ms"], "at least 250ms"),
        (["--metrics-url", "localhost:9090"], "not an http:// or https:// URL"),
        (["-S", "localhost:8001"], "not an http:// or https:// URL"),
        (["-T", "token", "-U", "user"], "exclusive"),
    ],
)
def test_bad_options_are_usage_errors(args: list[str], message: str) -> None:
    result = invoke("tui", *args)
    assert result.exit_code == 2, result
    assert message in " ".join(result.stderr.replace("│", " ").split())


def test_help_names_the_options() -> None:
    result = invoke("tui", "--help")
    assert result.exit_code == 0
    for option in ("--refresh", "--metrics-url", "--read-only", "--server", "--token"):
        assert option in result.stdout


def test_read_only_env_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    started: dict[str, object] = {}

    def fake_run(server_url: str, **options: object) -> None:
        started.update(options, server_url=server_url)

    monkeypatch.setattr("resonate.tui.run", fake_run)
    result = invoke("tui", "-S", "http://127.0.0.1:1", env={"RESONATE_TUI_READ_ONLY": "1"})
    assert result.exit_code == 0, result
    assert started["read_only"] is True
    assert started["refresh_seconds"] == 2.0
    assert started["server_url"] == "http://127.0.0.1:1"
