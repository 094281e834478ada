"""Property-based tests of every operation in the served `/openapi.json` (http-api.md §11.4),
with schemathesis, on each store: whatever the fuzzer sends, valid or not, the answer is never a
5xx, its status code is one the document lists for the operation, its content type is the one
documented for that status, and its body matches the documented schema.

Each store gets a server of its own (the fuzzer deletes, completes and heartbeats whatever it
finds), seeded with real data first (`seed.py`). Hooks aim path parameters, bodies, search
filters and idempotency and fencing headers at those records part of the time, so that the
success and conflict paths are exercised, not only 400 and 404. Bounded and deterministic: a
fixed seed, derandomized Hypothesis, `MAX_EXAMPLES` per operation, no deadline."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import hypothesis.strategies as st
import pytest
import requests
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.fuzz.seed import YEARLY_CRON, Seeded, seed
from tests.support.servers import ServerProcess, store_server

pytestmark = pytest.mark.fuzz

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
MAX_EXAMPLES = 75
SEED = 20_260_412
REQUEST_TIMEOUT_S = 10
POLL_PATH = "/poll/{path}"
# A 200 on the poll route is a worker's event stream, silent until a message comes: the fuzzer
# reads it this long, then cuts it short and checks what it got (status, content type).
POLL_READ_S = 0.25

CONFIG = {
    "seed": SEED,
    "request-timeout": REQUEST_TIMEOUT_S,
    "generation": {
        "mode": "all",  # valid requests and invalid ones
        "max-examples": MAX_EXAMPLES,
        "deterministic": True,
        "database": "none",
        # Failures are reported as first found: shrinking can replay requests for minutes.
        "no-shrink": True,
    },
    "phases": {
        "examples": {"enabled": True},
        "coverage": {"enabled": True},
        "fuzzing": {"enabled": True},
        "stateful": {"enabled": False},
    },
    # Failure reports show the real idempotency-key and the whole body.
    "output": {"sanitization": {"enabled": False}, "truncation": {"enabled": False}},
    "operations": [
        {
            "include-path": POLL_PATH,
            "request-timeout": POLL_READ_S,
            "generation": {"max-examples": 10},
        }
    ],
}
# Header values whose bytes are not UTF-8 on the wire (requests sends str headers as Latin-1);
# every string must be valid Unicode or the request is 400 (http-api.md §1.3).
NOT_UTF8_HEADER_VALUES = ["\u00e9t\u00e9", "\u00ff"]


@pytest.fixture(scope="module")
def fuzzed_server(
    store_kind: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    workdir = tmp_path_factory.mktemp(f"fuzz-{store_kind}")
    with store_server(workdir, store_kind, "resonate_fuzz") as process:
        yield process


@pytest.fixture(scope="module")
def seeded(fuzzed_server: ServerProcess) -> Seeded:
    return seed(fuzzed_server.url, f"fz{uuid.uuid4().hex[:8]}")


@pytest.fixture
def api_schema(fuzzed_server: ServerProcess, seeded: Seeded) -> Any:
    config = SchemathesisConfig.from_dict(CONFIG)
    api = schemathesis.openapi.from_url(f"{fuzzed_server.url}/openapi.json", config=config)
    aim_at(api, seeded)
    return api


@pytest.fixture(scope="module")
def http_session() -> Iterator[requests.Session]:
    """One keep-alive session for all requests: a connection per request would go through
    thousands of ephemeral ports, the range the test servers' free ports come from too."""
    with requests.Session() as session:
        yield session


def merged(container: Any, *record_groups: list[dict[str, Any]]) -> st.SearchStrategy[Any]:
    """``container`` as generated, or with a record of one of ``record_groups`` written over it
    (each group about as often as the generated value alone). ``container`` is a dict of path
    parameters, query parameters or headers, or a JSON body; negative cases may be anything."""
    groups = [group for group in record_groups if group]
    if not isinstance(container, dict) or not groups:
        return st.just(container)
    return st.one_of(
        st.just(container),
        *(st.sampled_from(group).map(lambda record: {**container, **record}) for group in groups),
    )


def aim_at(api: Any, seeded: Seeded) -> None:
    """Register the hooks that draw ids, filters and headers from ``seeded`` part of the time."""
    promises = [{"id": promise_id} for promise_id in seeded.promise_ids]
    tasks = [{"id": task_id, "counter": counter} for task_id, counter in seeded.tasks]
    claimed_id, claimed_counter = seeded.claimed_task
    claimer = f"{seeded.prefix}-claimer"
    processes = [{"processId": process_id} for process_id in seeded.process_ids]
    locks = [
        {"resourceId": resource, "executionId": execution, "processId": process}
        for resource, execution, process in seeded.locks
    ]
    leaf_root_pairs = [
        {"promiseId": leaf, "rootPromiseId": root}
        for leaf in seeded.promise_ids
        for root in seeded.promise_ids[:2]
        if leaf != root
    ]
    schedule_bodies = [
        {"cron": YEARLY_CRON, "promiseId": "{{.id}}.{{.timestamp}}"},
        {"cron": YEARLY_CRON, "promiseId": "{{.id}}.{{.timestamp}}", "id": seeded.schedule_ids[0]},
    ]
    patterns = [{"id": f"{seeded.prefix}*"}, {"id": "*"}]

    path_records: dict[str, list[dict[str, Any]]] = {
        "/promises/{id}": promises,
        "/promises/callback/{id}": promises,
        "/promises/subscribe/{id}": promises,
        "/schedules/{id}": [{"id": schedule_id} for schedule_id in seeded.schedule_ids],
        "/locks/{resourceId}": [{"resourceId": lock["resourceId"]} for lock in locks],
        "/tasks/{id}": [{"id": task["id"]} for task in tasks],
        **{
            f"/tasks/{verb}/{{ref}}": [{"ref": f"{t['id']}/{t['counter']}"} for t in tasks]
            for verb in ("claim", "complete", "drop", "heartbeat")
        },
    }
    query_records: dict[str, list[dict[str, Any]]] = {
        "/promises": patterns,
        "/schedules": patterns,
        "/tasks": [{"id": "__*"}, {"rootPromiseId": seeded.promise_ids[0]}, *processes],
        "/locks": [{"resourceId": f"{seeded.prefix}*"}, *processes],
        "/callbacks": [{"promiseId": promise_id} for promise_id in seeded.promise_ids],
    }
    body_records: dict[tuple[str, str], list[dict[str, Any]]] = {
        ("POST", "/promises"): promises,
        ("POST", "/promises/callback/{id}"): [
            {"rootPromiseId": pair["rootPromiseId"]} for pair in leaf_root_pairs
        ],
        ("POST", "/callbacks"): leaf_root_pairs,
        ("POST", "/subscriptions"): [{"promiseId": leaf["id"]} for leaf in promises],
        # Claims of the INIT tasks by a new process, and the claimer's retry of its claim (D17).
        ("POST", "/tasks/claim"): [{**task, "processId": claimer} for task in tasks]
        + [{"id": claimed_id, "counter": claimed_counter, **processes[0]}],
        ("POST", "/tasks/complete"): tasks,
        ("POST", "/tasks/drop"): tasks,
        ("POST", "/tasks/heartbeat"): processes,
        ("POST", "/locks/acquire"): locks,
        ("POST", "/locks/release"): locks,
        ("POST", "/locks/heartbeat"): processes,
        ("POST", "/schedules"): schedule_bodies,
    }
    header_records = [
        *({"idempotency-key": key} for key in seeded.idempotency_keys),
        {"task-id": claimed_id},
        # The fencing pair that passes the check (a CLAIMED task and its counter).
        {"task-id": claimed_id, "task-counter": str(claimed_counter)},
    ]
    hostile_headers = [
        {name: value}
        for name in ("idempotency-key", "task-id", "request-id")
        for value in NOT_UTF8_HEADER_VALUES
    ]

    def operation_key(context: Any) -> tuple[str, str]:
        return context.operation.method.upper(), context.operation.path

    @api.hook
    def flatmap_path_parameters(context: Any, path_parameters: Any) -> st.SearchStrategy[Any]:
        return merged(path_parameters, path_records.get(context.operation.path, []))

    @api.hook
    def flatmap_query(context: Any, query: Any) -> st.SearchStrategy[Any]:
        method, path = operation_key(context)
        return merged(query, query_records.get(path, []) if method == "GET" else [])

    @api.hook
    def flatmap_body(context: Any, body: Any) -> st.SearchStrategy[Any]:
        if operation_key(context) == ("POST", "/promises/task") and isinstance(body, dict):
            return merged(body.get("promise"), promises).map(
                lambda promise: {**body, "promise": promise}
            )
        return merged(body, body_records.get(operation_key(context), []))

    @api.hook
    def flatmap_headers(context: Any, headers: Any) -> st.SearchStrategy[Any]:
        declared = {parameter.name for parameter in context.operation.headers}

        def applicable(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
            return [record for record in records if set(record) <= declared]

        return merged(
            headers if headers is not None else {},
            applicable(header_records),
            applicable(hostile_headers),
        )


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
def test_openapi_operations(case: Any, http_session: requests.Session) -> None:
    case.call_and_validate(session=http_session, checks=CHECKS)
