"""Rates from successive scrapes of /metrics (the overview's sparklines)."""

from __future__ import annotations

import pytest

from resonate.tui.metrics import RateHistory, histogram_quantile, parse_scrape, rates


def scrape(
    at: float,
    created: float,
    resolved: float,
    ok: float,
    bad: float,
    err: float,
    buckets: dict[str, float],
    delivered: float = 0,
    reissued: float = 0,
    groups: dict[str, int] | None = None,
) -> str:
    lines = [
        "# TYPE promises_total counter",
        f'promises_total{{state="created"}} {created}',
        f'promises_total{{state="resolved"}} {resolved}',
        "# TYPE http_requests_total counter",
        f'http_requests_total{{method="POST",path="/promises",status="201"}} {ok}',
        f'http_requests_total{{method="GET",path="/promises/{{id}}",status="404"}} {bad}',
        f'http_requests_total{{method="GET",path="/promises/{{id}}",status="503"}} {err}',
        "# TYPE http_requests_duration_seconds histogram",
    ]
    total = 0.0
    for bound, count in buckets.items():
        labels = f'method="POST",path="/promises",le="{bound}"'
        lines.append(f"http_requests_duration_seconds_bucket{{{labels}}} {count}")
        total = count
    lines.append(f'http_requests_duration_seconds_count{{method="POST",path="/promises"}} {total}')
    lines.append('http_requests_duration_seconds_sum{method="POST",path="/promises"} 1.0')
    lines += [
        "# TYPE task_deliveries_total counter",
        f'task_deliveries_total{{plugin="poll",outcome="success"}} {delivered}',
        'task_deliveries_total{plugin="poll",outcome="failure"} 7',
        "# TYPE tasks_total counter",
        f'tasks_total{{state="reissued"}} {reissued}',
        "# TYPE poll_connections gauge",
    ]
    for group, count in (groups or {}).items():
        lines.append(f'poll_connections{{group="{group}"}} {count}')
    return "\n".join(lines) + "\n"


BUCKETS_BEFORE = {"0.005": 0, "0.01": 0, "0.1": 0, "+Inf": 0}


def test_rates_between_two_scrapes() -> None:
    first = parse_scrape(scrape(10, 100, 50, 100, 2, 0, BUCKETS_BEFORE), at=10.0)
    second = parse_scrape(
        scrape(
            12,
            120,
            60,
            120,
            6,
            2,
            {"0.005": 90, "0.01": 99, "0.1": 100, "+Inf": 100},
            delivered=10,
            reissued=4,
        ),
        at=12.0,
    )
    got = rates(second, first)
    assert got["created"] == pytest.approx(10.0)
    assert got["completed"] == pytest.approx(5.0)
    assert got["requests"] == pytest.approx((20 + 4 + 2) / 2)
    assert got["errors_4xx"] == pytest.approx(2.0)
    assert got["errors_5xx"] == pytest.approx(1.0)
    assert got["delivered"] == pytest.approx(5.0)  # failures are not deliveries
    assert got["reissued"] == pytest.approx(2.0)
    assert got["p99"] == pytest.approx(10.0)  # the 99th of 100 lands at the 10 ms bound


def test_a_server_restart_counts_from_zero_not_negative() -> None:
    before = parse_scrape(scrape(0, 1000, 500, 900, 0, 0, {"0.01": 900, "+Inf": 900}), at=0.0)
    after = parse_scrape(scrape(0, 10, 0, 10, 0, 0, {"0.01": 10, "+Inf": 10}), at=1.0)
    got = rates(after, before)
    assert got["created"] == 10 and got["requests"] == 10
    assert got["p99"] > 0


def test_histogram_quantile_interpolates_and_handles_no_data() -> None:
    assert histogram_quantile(0.5, [(1.0, 0.0), (float("inf"), 0.0)]) is None
    assert histogram_quantile(0.5, [(1.0, 50.0), (2.0, 100.0), (float("inf"), 100.0)]) == 1.0
    assert histogram_quantile(0.75, [(1.0, 50.0), (2.0, 100.0), (float("inf"), 100.0)]) == 1.5
    # beyond the last finite bound: the last finite bound
    assert histogram_quantile(0.99, [(1.0, 10.0), (float("inf"), 100.0)]) == 1.0


def test_history_keeps_the_last_points_and_poll_connections() -> None:
    history = RateHistory(length=3)
    for step in range(6):
        history.add(
            parse_scrape(
                scrape(step, step * 10, 0, 0, 0, 0, BUCKETS_BEFORE, groups={"workers": step}),
                at=float(step),
            )
        )
    assert history.values("created") == [10.0, 10.0, 10.0]
    assert history.latest("created") == 10.0
    assert history.poll_connections() == {"workers": 5.0}


def test_text_that_is_not_the_format_is_refused() -> None:
    with pytest.raises(ValueError):
        parse_scrape("<html>not metrics</html>\n{", at=0.0)
