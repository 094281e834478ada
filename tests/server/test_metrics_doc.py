"""The monitoring kit cannot drift from the server: docs/metrics.md lists exactly the metrics a
live server exports, with their types and label names, and every metric that the alert rules
(deploy/prometheus/alerts.yml) and the Grafana dashboard (deploy/grafana/resonate.json) query
is exported. `promtool` checks the rules; it skips when missing, except in CI (`.ci/run`
installs it)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.support.servers import ServerProcess, wait_until

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "metrics.md"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
PROMETHEUS_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "resonate.json"

TABLE_HEADER = "| Name | Type | Labels | Meaning |"
ROW = re.compile(r"^\| `(?P<name>[a-z_:][a-z0-9_:]*)` \| (?P<type>\w+) \| (?P<labels>[^|]*) \|")
# Series the alerts use that come from Prometheus itself or the blackbox exporter.
EXTERNAL_METRICS = {"up", "probe_success"}
# PromQL functions, aggregations and keywords the alerts and the dashboard use.
PROMQL_WORDS = {
    "and",
    "or",
    "unless",
    "offset",
    "bool",
    "sum",
    "max",
    "min",
    "avg",
    "count",
    "rate",
    "irate",
    "increase",
    "histogram_quantile",
    "max_over_time",
    "min_over_time",
    "label_replace",
    "vector",
    "time",
}
GROUP = "workers"


# ---- the documented metrics --------------------------------------------------------------------


def documented() -> dict[str, tuple[str, set[str]]]:
    """Exported name -> (type, label names), from every `Name | Type | Labels | Meaning` table."""
    rows: dict[str, tuple[str, set[str]]] = {}
    in_table = False
    for line in DOC.read_text().splitlines():
        if line.strip() == TABLE_HEADER:
            in_table = True
            continue
        if not line.startswith("|"):
            in_table = False
            continue
        if not in_table or line.startswith("| ---"):
            continue
        match = ROW.match(line)
        assert match, f"docs/metrics.md: a metrics table row that does not parse: {line}"
        name = match["name"]
        assert name not in rows, f"docs/metrics.md lists {name} twice"
        labels = set(re.findall(r"`([a-z_][a-z0-9_]*)`", match["labels"]))
        rows[name] = (match["type"], labels)
    assert rows, "docs/metrics.md has no metrics table"
    return rows


# ---- a live, exercised server -------------------------------------------------------------------


def exported_name(family) -> str:
    """The name a query uses: prometheus-client's parser drops a counter's `_total`."""
    return family.name + "_total" if family.type == "counter" else family.name


def scrape(server: ServerProcess) -> dict[str, object]:
    text = httpx.get(server.metrics_url + "/metrics", timeout=10).text
    return {exported_name(family): family for family in text_string_to_metric_families(text)}


def hold_poll_stream(
    server: ServerProcess, received: list[str], stop: threading.Event, url: str | None = None
) -> None:
    """A worker of GROUP: an open SSE stream on the poll listener (or at ``url``: the 2026
    stream on the API port), read until `stop`."""
    try:
        with httpx.stream("GET", url or f"{server.poll_url}/{GROUP}/w1", timeout=None) as response:
            for line in response.iter_lines():
                received.append(line)
                if stop.is_set():
                    return
    except httpx.HTTPError:
        pass


@pytest.fixture(scope="module")
def families(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    """A fresh SQLite server, exercised until every documented labelled metric has a series:
    promises created, resolved and timed out, a task delivered to a poll worker, a schedule
    firing every second, a lock acquired."""
    server = ServerProcess(tmp_path_factory.mktemp("metrics-doc")).start()
    stop = threading.Event()
    received: list[str] = []
    worker = threading.Thread(target=hold_poll_stream, args=(server, received, stop), daemon=True)
    stream_2026 = f"{server.url}/poll/{GROUP}/w2"
    worker_2026 = threading.Thread(
        target=hold_poll_stream, args=(server, received, stop, stream_2026), daemon=True
    )
    try:
        worker.start()
        worker_2026.start()
        wait_until(
            lambda: (
                scrape(server)["poll_connections"].samples
                and scrape(server)["poll_2026_connections"].samples
            ),
            time.monotonic() + 10,
            what="the poll workers to connect",
        )
        with httpx.Client(base_url=server.url, timeout=10) as api:
            now = int(time.time() * 1000)
            hour = now + 3_600_000

            def ok(response: httpx.Response) -> None:
                assert response.status_code in (200, 201), response.text

            ok(api.post("/promises", json={"id": "doc.resolved", "timeout": hour}))
            ok(api.patch("/promises/doc.resolved", json={"state": "RESOLVED"}))
            ok(api.post("/promises", json={"id": "doc.timeout", "timeout": now + 200}))
            invoke = {"resonate:invoke": f"poll://any@{GROUP}"}
            ok(api.post("/promises", json={"id": "doc.invoke", "timeout": hour, "tags": invoke}))
            schedule = {
                "id": "doc.schedule",
                "cron": "* * * * * *",
                "promiseId": "doc.schedule.{{.timestamp}}",
                "promiseTimeout": 60_000,
            }
            ok(api.post("/schedules", json=schedule))
            lock = {"resourceId": "doc.lock", "executionId": "e1", "processId": "p1", "ttl": 60_000}
            ok(api.post("/locks/acquire", json=lock))
            assert api.get("/promises/doc.missing").status_code == 404
            # A 2026-protocol promise with a target: its task and an execute on the 2026 stream.
            envelope = {
                "kind": "promise.create",
                "head": {"corrId": "doc", "version": "2026-04-01"},
                "data": {
                    "id": "doc.2026",
                    "timeoutAt": hour,
                    "tags": {"resonate:target": f"poll://any@{GROUP}"},
                },
            }
            ok(api.post("/", json=envelope))

        docs = documented()

        def every_labelled_family_has_series() -> dict[str, object] | None:
            scraped = scrape(server)
            ready = all(
                name in scraped and scraped[name].samples
                for name, (_, labels) in docs.items()
                if labels
            )
            timed_out = any(
                s.labels.get("state") == "rejected_timedout"
                for s in scraped["promises_total"].samples
            )
            delivered = any(
                s.labels.get("outcome") == "success"
                for s in scraped["task_deliveries_total"].samples
            )
            return scraped if ready and timed_out and delivered else None

        try:
            yield wait_until(
                every_labelled_family_has_series,
                time.monotonic() + 20,
                interval=0.2,
                what="a series of every documented labelled metric",
            )
        except TimeoutError:
            missing = [
                name
                for name, (_, labels) in docs.items()
                if labels and not getattr(scrape(server).get(name), "samples", None)
            ]
            pytest.fail(f"no series for {missing}; server log:\n{server.log()}")
    finally:
        stop.set()
        server.stop()
        worker.join(timeout=5)
        worker_2026.join(timeout=5)


# ---- the doc -------------------------------------------------------------------------------------


def test_doc_lists_exactly_the_exported_metrics(families: dict[str, object]) -> None:
    docs = set(documented())
    exported = set(families)
    if not sys.platform.startswith("linux"):  # the process collector exports nothing there
        docs = {name for name in docs if not name.startswith("process_")}
    assert exported - docs == set(), "exported but not in docs/metrics.md"
    assert docs - exported == set(), "in docs/metrics.md but not exported"


def test_doc_types_and_label_names_match(families: dict[str, object]) -> None:
    for name, (kind, labels) in documented().items():
        family = families.get(name)
        if family is None:
            continue  # reported by the test above
        assert kind == family.type, f"{name}: documented as {kind}, exported as {family.type}"
        exported = {label for sample in family.samples for label in sample.labels} - {"le"}
        assert labels == exported, f"{name}: documented labels {labels}, exported {exported}"


# ---- alerts and dashboard --------------------------------------------------------------------


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (label matchers, grouping lists, ranges and
    strings removed; what is left is functions, keywords, numbers and metric names)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    expr = re.sub(r"\boffset\s+\w+", "", expr)
    tokens = set(re.findall(r"(?<![\w.$])[a-zA-Z_:][\w:]*", expr))
    return tokens - PROMQL_WORDS


def test_metric_names_parses_promql() -> None:
    expr = (
        'sum by (instance) (rate(a_total{x="y{}", z=~"5.."}[5m] offset 1h)) / '
        "histogram_quantile(0.99, sum without (pod) (rate(b_bucket[$__rate_interval]))) "
        "and max_over_time(c[1h]) > 1e3"
    )
    assert metric_names(expr) == {"a_total", "b_bucket", "c"}


def exported_series(families: dict[str, object]) -> set[str]:
    return {sample.name for family in families.values() for sample in family.samples}


def alert_rules() -> list[dict[str, object]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_alert_rules_are_complete() -> None:
    rules = alert_rules()
    assert len({rule["alert"] for rule in rules}) == len(rules)
    for rule in rules:
        assert "for" in rule, rule["alert"]
        assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
        assert {"summary", "description"} <= set(rule["annotations"]), rule["alert"]


def test_alerts_use_exported_metrics(families: dict[str, object]) -> None:
    series = exported_series(families) | EXTERNAL_METRICS
    for rule in alert_rules():
        unknown = metric_names(str(rule["expr"])) - series
        assert not unknown, f"{rule['alert']} uses {unknown}, which the server does not export"


def dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def test_dashboard_loads_with_unique_panel_ids() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["schemaVersion"] >= 36
    assert any(item["name"] == "DS_PROMETHEUS" for item in dashboard["__inputs"])
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert ids and len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]
        assert panel["targets"], panel["title"]


def test_dashboard_uses_exported_metrics(families: dict[str, object]) -> None:
    series = exported_series(families)
    for expr in dashboard_exprs():
        names = metric_names(expr)
        assert names, expr
        assert names <= series, f"{expr} uses {names - series}, which the server does not export"


def require_promtool() -> str:
    """promtool's path; a missing promtool skips the test locally and fails it in CI."""
    promtool = shutil.which("promtool")
    if promtool is None:
        message = "promtool is not installed (Debian: apt-get install -y prometheus)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return promtool


def promtool(*arguments: str) -> None:
    command = [require_promtool(), *arguments]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_checks_rules_and_config() -> None:
    promtool("check", "rules", str(ALERTS))
    promtool("check", "config", str(PROMETHEUS_CONFIG))


def test_promtool_parses_the_dashboard_queries(tmp_path: Path) -> None:
    """Each dashboard query, its Grafana variables filled in, as a recording rule."""
    rules = [
        {
            "record": f"dashboard:query_{index}",
            "expr": expr.replace("$__rate_interval", "5m").replace("$instance", ".*"),
        }
        for index, expr in enumerate(dashboard_exprs())
    ]
    path = tmp_path / "dashboard-rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    promtool("check", "rules", str(path))
