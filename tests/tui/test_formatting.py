"""Cell text: relative times, countdowns, cron in words, next runs."""

from __future__ import annotations

import pytest

from resonate.cli.output import INT64_MAX
from resonate.tui.formatting import absolute, countdown, cron_in_words, next_runs, relative

NOW = 1_796_454_000_000  # 2026-12-05T07:00:00Z


@pytest.mark.parametrize(
    ("moment", "text"),
    [(NOW + 180_000, "in 3m"), (NOW - 300_000, "5m ago"), (INT64_MAX, "never"), (None, "")],
)
def test_relative(moment: int | None, text: str) -> None:
    assert relative(moment, NOW) == text


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (NOW + 4_200, "4.2s"),
        (NOW + 12_000, "12s"),
        (NOW + 65_000, "1m05s"),
        (NOW + 3_660_000, "1h01m"),
        (NOW - 3_000, "expired 3s ago"),
        (0, ""),
    ],
)
def test_countdown(moment: int, text: str) -> None:
    assert countdown(moment, NOW) == text


def test_absolute_in_a_zone() -> None:
    assert absolute(NOW) == "2026-12-05 07:00:00.000 UTC"
    assert absolute(NOW, "Europe/Paris") == "2026-12-05 08:00:00.000 Europe/Paris"


@pytest.mark.parametrize(
    ("cron", "words"),
    [
        ("*/5 * * * *", "every 5 minutes"),
        ("0 9 * * 1-5", "at 09:00, Monday through Friday"),
        ("*/10 * * * * *", "every 10 seconds"),
        ("@hourly", "every hour, at minute 0"),
        ("@every 30s", "every 30s"),
        ("CRON_TZ=Europe/Paris 0 9 * * *", "at 09:00 (Europe/Paris)"),
        ("not a cron", "not a cron"),
    ],
)
def test_cron_in_words(cron: str, words: str) -> None:
    assert cron_in_words(cron) == words


def test_next_runs_follow_the_servers_cron_rules() -> None:
    first = NOW  # a multiple of five minutes
    runs = next_runs({"cron": "*/5 * * * *", "nextRunTime": first})
    assert runs == [first + step * 300_000 for step in range(5)]
    paris = next_runs({"cron": "0 9 * * *", "timezone": "Europe/Paris", "nextRunTime": first})
    assert [absolute(run, "Europe/Paris")[11:16] for run in paris[1:]] == ["09:00"] * 4
    assert next_runs({"cron": "bogus", "nextRunTime": first}) == []
