"""HTTP conventions of http-api.md: fencing (transitions.md §7: F2, F5, F7), routing errors
(§1.2, D13), response headers (§1.5), health and readiness (§11.1-§11.3, D1), the OpenAPI
document (§11.4, D12) and the metrics listener (§13).

F1, F3 and F4 need tasks in the store and live with the task tests.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from resonate import __version__
from resonate.core.clock import ManualClock
from resonate.core.schema import to_openapi
from resonate.server.http.app import create_api_app
from resonate.server.http.routes import ROUTES, Context
from resonate.store.migrations import load_migrations
from tests.server.promise_setup import HOUR_MS, create, now_ms
from tests.support.servers import ServerProcess

FUTURE = 4_102_444_800_000  # 2100-01-01
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def assert_error(response: httpx.Response, code: int) -> dict:
    assert response.status_code == code // 100, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert body["error"]["details"]
    return body["error"]


# ---- transitions.md §7: fencing headers -----------------------------------------------------

UNKNOWN_TASK = {"task-id": "__invoke:no-such-task", "task-counter": "1"}


def fencing_cases() -> list[pytest.param]:
    """(setup of promise `uid`, request, expected code); "no change" is checked for each."""

    def nothing(api, uid):
        pass

    def pending(api, uid):
        assert create(api, uid, key="k").status_code == 201

    def resolved(api, uid):
        pending(api, uid)
        assert api.patch(f"/promises/{uid}", json={"state": "RESOLVED"}).status_code == 201

    def create_request(api, uid, headers):
        body = {"id": uid, "timeout": FUTURE}
        return api.post("/promises", json=body, headers={"idempotency-key": "k", **headers})

    def complete_request(api, uid, headers):
        return api.patch(f"/promises/{uid}", json={"state": "REJECTED"}, headers=headers)

    def invalid_create(api, uid, headers):
        return api.post("/promises", json={"id": uid, "timeout": "soon"}, headers=headers)

    without_counter = {"task-id": UNKNOWN_TASK["task-id"]}
    return [
        pytest.param(nothing, create_request, UNKNOWN_TASK, 41200, id="F2-create-new"),
        pytest.param(pending, create_request, UNKNOWN_TASK, 41200, id="F2-create-would-dedup"),
        pytest.param(
            resolved, create_request, UNKNOWN_TASK, 41200, id="F2-create-of-a-completed-promise"
        ),
        pytest.param(pending, complete_request, UNKNOWN_TASK, 41200, id="F2-complete-pending"),
        pytest.param(
            nothing, complete_request, UNKNOWN_TASK, 41200, id="F2-complete-missing-is-412-not-404"
        ),
        pytest.param(resolved, complete_request, UNKNOWN_TASK, 41200, id="F2-complete-would-403"),
        pytest.param(
            nothing, create_request, without_counter, 41200, id="F2-counter-absent-means-0"
        ),
        pytest.param(
            nothing, invalid_create, UNKNOWN_TASK, 40000, id="1.4-validation-comes-before-fencing"
        ),
        *(
            pytest.param(
                state,
                request,
                {**UNKNOWN_TASK, "task-counter": counter},
                40000,
                id=f"F5-{request.__name__.split('_')[0]}-counter-{counter!r}",
            )
            for state, request in ((nothing, create_request), (pending, complete_request))
            for counter in (
                "x",
                "1.5",
                "1e3",
                "0x1",
                "",
                "one",
                "9223372036854775808",
                "-9223372036854775809",
            )
        ),
    ]


@pytest.mark.parametrize(("given", "request_", "headers", "code"), fencing_cases())
def test_fencing(api, uid, given, request_, headers, code):
    given(api, uid)
    before = api.get(f"/promises/{uid}")

    assert_error(request_(api, uid, headers), code)

    after = api.get(f"/promises/{uid}")
    assert after.status_code == before.status_code
    assert after.json() == before.json()


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"task-id": ""}, id="F7-empty-task-id"),
        pytest.param({"task-id": "", "task-counter": "7"}, id="F7-empty-task-id-with-counter"),
    ],
)
def test_f7_empty_task_id_means_no_fencing(api, uid, headers):
    response = api.post("/promises", json={"id": uid, "timeout": FUTURE}, headers=headers)
    assert response.status_code == 201, response.text
    response = api.patch(f"/promises/{uid}", json={"state": "RESOLVED"}, headers=headers)
    assert response.status_code == 201, response.text


# ---- §1.2 and D13: unknown routes and wrong methods ----------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/nothing"),
        ("POST", "/nothing"),
        ("GET", "/promisesx"),
        ("GET", "/promise/x"),
        ("DELETE", "/nothing/deeper/still"),
        ("GET", "/healthz/"),
        ("GET", "/PROMISES"),
    ],
)
def test_unknown_route_is_404_40405_json(api, method, path):
    error = assert_error(api.request(method, path), 40405)
    assert error["message"] == "The requested route does not exist"


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/promises", {"GET", "POST"}),
        ("PUT", "/promises", {"GET", "POST"}),
        ("PATCH", "/promises", {"GET", "POST"}),
        ("OPTIONS", "/promises", {"GET", "POST"}),  # CORS is off (§1.2)
        ("PUT", "/promises/x", {"GET", "PATCH"}),
        ("POST", "/promises/x", {"GET", "PATCH"}),
        ("DELETE", "/promises/a/b", {"GET", "PATCH"}),
        ("POST", "/healthz", {"GET"}),
        ("DELETE", "/openapi.json", {"GET"}),
        ("GET", "/", {"POST"}),  # `/` serves the 2026-04-01 envelope (POST) only
    ],
)
def test_wrong_method_is_405_40500_json_with_allow(api, method, path, allowed):
    response = api.request(method, path)
    error = assert_error(response, 40500)
    assert error["message"] == "The method is not allowed on this route"
    assert {m.strip() for m in response.headers["allow"].split(",")} == allowed


# ---- §1.5: Resonate-Version on every response of the API listener --------------------------


def version_cases() -> list[pytest.param]:
    def call(method: str, path: str, **kwargs: Any):
        return lambda api, uid: api.request(method, path.format(uid=uid), **kwargs)

    def conflict(api, uid):
        create(api, uid)
        return create(api, uid)

    return [
        pytest.param(call("GET", "/healthz"), 200, id="200-healthz"),
        pytest.param(call("GET", "/ping"), 200, id="200-ping"),
        pytest.param(call("GET", "/readyz"), 200, id="200-readyz"),
        pytest.param(call("GET", "/openapi.json"), 200, id="200-openapi"),
        pytest.param(call("GET", "/promises", params={"id": "{uid}"}), 200, id="200-search"),
        pytest.param(
            call("POST", "/promises", json={"id": "{uid}", "timeout": FUTURE}), 201, id="201-create"
        ),
        pytest.param(call("POST", "/promises", content=b"[]"), 400, id="400"),
        pytest.param(call("GET", "/promises/{uid}"), 404, id="404-promise"),
        pytest.param(call("GET", "/nothing"), 404, id="404-route"),
        pytest.param(call("DELETE", "/promises"), 405, id="405"),
        pytest.param(conflict, 409, id="409"),
        pytest.param(
            call("POST", "/promises", json={"id": "{uid}"}, headers=UNKNOWN_TASK), 412, id="412"
        ),
    ]


@pytest.mark.parametrize(("send", "status"), version_cases())
def test_resonate_version_header_on_every_response(api, uid, send, status):
    response = send(api, uid)
    assert response.status_code == status, response.text
    assert response.headers["resonate-version"] == __version__


def test_resonate_version_header_on_413(server_factory, tmp_path):
    small = server_factory(tmp_path, extra_args=["--api-http-max-body-size", "64"]).start()
    response = httpx.post(small.url + "/promises", content=b"x" * 1000, timeout=30)
    assert_error(response, 41300)
    assert response.headers["resonate-version"] == __version__


# ---- §11.1-§11.3, D1: health and readiness --------------------------------------------------


@pytest.mark.parametrize("path", ["/healthz", "/ping"])
def test_liveness(api, path):
    response = api.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"status": "ok"}


def test_readiness(api, store_kind):
    response = api.get("/readyz")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {
        "status": "ok",
        "store": store_kind,
        "schemaVersion": len(load_migrations(f"resonate.store.{store_kind}")),
    }


# ---- §11.4, D12: the OpenAPI document --------------------------------------------------------


@pytest.fixture(scope="module")
def registered_app():
    """The API app built in-process from the route table, as the server builds it."""
    ctx = Context(store=None, clock=ManualClock())  # type: ignore[arg-type]  # never queried
    app = create_api_app(ctx, max_body_size=1024, metrics=None)
    return app, ctx


@pytest.fixture
def document(api) -> dict:
    response = api.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    return response.json()


def operations(document: dict) -> Iterator[tuple[str, str, dict]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield method.upper(), path, operation


def test_openapi_is_3_1(document):
    assert document["openapi"].startswith("3.1.")
    assert document["info"]["version"] == __version__


def test_openapi_is_the_document_built_from_the_route_table(document, registered_app):
    _, ctx = registered_app
    assert document == ctx.openapi_document


def test_openapi_covers_exactly_the_registered_routes(document, registered_app):
    app, _ = registered_app
    registered = {(route.method, route.resource.canonical) for route in app.router.routes()}
    documented = {(method, path) for method, path, _ in operations(document)}
    assert documented - registered == set(), "documented but not served"
    assert registered - documented == set(), "served but not documented"


def test_openapi_request_bodies_are_the_validation_schemas(document):
    for route in ROUTES:
        operation = document["paths"][route.path][route.method.lower()]
        if route.body is None:
            assert "requestBody" not in operation, route.path
            continue
        request_body = operation["requestBody"]
        assert request_body["required"] is True
        schema = request_body["content"]["application/json"]["schema"]
        assert schema == to_openapi(route.body), f"{route.method} {route.path}"
        assert schema.get("additionalProperties", True) is not False  # D15


def test_openapi_error_responses_use_the_error_schema(document):
    for method, path, operation in operations(document):
        statuses = {int(status) for status in operation["responses"]}
        assert any(200 <= s < 300 for s in statuses), f"{method} {path}: no success response"
        for status, response in operation["responses"].items():
            if int(status) >= 400:
                schema = response["content"]["application/json"]["schema"]
                # The 2026 envelope answers its errors as envelopes (head.status = HTTP status).
                allowed = [{"$ref": "#/components/schemas/Error"}]
                if operation["operationId"] == "Envelope":
                    allowed.append({"$ref": "#/components/schemas/EnvelopeReply"})
                assert schema in allowed, f"{method} {path} {status}"
    error = document["components"]["schemas"]["Error"]
    assert error["required"] == ["error"]
    assert set(error["properties"]["error"]["required"]) == {"code", "message", "details"}


def applicable_errors(route) -> set[int]:
    """Errors a route can produce whatever the request (§11.4 "as applicable")."""
    headers = {p.name for p in route.params if p.location == "header"}
    expected = set()
    if route.body is not None:
        expected |= {400, 413}  # §1.3: invalid or oversized bodies
    if "task-id" in headers:
        expected.add(412)  # §1.4: fencing
    if route.authenticated:
        expected |= {401, 403}  # §9
    if route.path not in ("/healthz", "/health"):
        expected.add(503)  # §12: draining answers 503 everywhere but /healthz (and its alias)
    return expected


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method}-{r.path}")
def test_openapi_lists_the_errors_a_route_can_produce(document, route):
    operation = document["paths"][route.path][route.method.lower()]
    listed = {int(status) for status in operation["responses"]}
    assert applicable_errors(route) <= listed


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method}-{r.path}")
def test_openapi_path_parameters_match_the_path(document, route):
    operation = document["paths"][route.path][route.method.lower()]
    in_path = set(re.findall(r"{(\w+)}", route.path))
    parameters = {p["name"]: p for p in operation["parameters"] if p["in"] == "path"}
    assert set(parameters) == in_path
    assert all(p["required"] is True for p in parameters.values())


# §1.4: the headers each promise route reads.
ROUTE_HEADERS = [
    (
        "POST",
        "/promises",
        {
            "request-id",
            "idempotency-key",
            "strict",
            "task-id",
            "task-counter",
            "traceparent",
            "tracestate",
        },
    ),
    (
        "PATCH",
        "/promises/{id}",
        {"request-id", "idempotency-key", "strict", "task-id", "task-counter"},
    ),
    ("GET", "/promises/{id}", {"request-id"}),
    ("GET", "/promises", {"request-id"}),
]


@pytest.mark.parametrize(("method", "path", "headers"), ROUTE_HEADERS)
def test_openapi_documents_the_headers_a_route_reads(document, method, path, headers):
    operation = document["paths"][path][method.lower()]
    documented = {p["name"] for p in operation["parameters"] if p["in"] == "header"}
    assert headers <= documented


def test_openapi_references_resolve(document):
    text = repr(document)
    for name in set(re.findall(r"#/components/schemas/(\w+)", text)):
        assert name in document["components"]["schemas"], name


def test_openapi_search_limit_bounds(document):
    """§11.4: `minimum: 0`, `maximum: 100` for `limit`."""
    operation = document["paths"]["/promises"]["get"]
    limit = next(p for p in operation["parameters"] if p["name"] == "limit")
    assert limit["schema"]["minimum"] == 0
    assert limit["schema"]["maximum"] == 100


# ---- §13: metrics ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def metrics_server(tmp_path_factory) -> Iterator[ServerProcess]:
    """A server of its own, so that counter deltas are exactly this module's requests."""
    process = ServerProcess(tmp_path_factory.mktemp("metrics")).start()
    yield process
    process.stop()


@pytest.fixture
def mapi(metrics_server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=metrics_server.url, timeout=30) as client:
        yield client


class Scrape:
    def __init__(self, server: ServerProcess) -> None:
        response = httpx.get(server.metrics_url + "/metrics", timeout=30)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        self.text = response.text
        self.samples = [
            sample
            for family in text_string_to_metric_families(response.text)
            for sample in family.samples
        ]

    def value(self, name: str, **labels: str) -> float:
        """The sample ``name`` with exactly ``labels`` (0 when absent: not yet incremented)."""
        found = [s.value for s in self.samples if s.name == name and s.labels == labels]
        assert len(found) <= 1, (name, labels)
        return found[0] if found else 0.0

    def labels(self, name: str) -> list[dict[str, str]]:
        return [s.labels for s in self.samples if s.name == name]


def delta(server: ServerProcess, action, name: str, **labels: str) -> float:
    before = Scrape(server).value(name, **labels)
    action()
    return Scrape(server).value(name, **labels) - before


HTTP_REQUESTS = [
    # (method, path, path label, status)
    ("GET", "/promises/{uid}", "/promises/{id}", "404"),
    ("GET", "/promises/{uid}/a/b", "/promises/{id}", "404"),
    ("PATCH", "/promises/{uid}", "/promises/{id}", "400"),
    ("GET", "/promises?id={uid}", "/promises", "200"),
    ("GET", "/healthz", "/healthz", "200"),
    ("GET", "/nothing/{uid}", "<unmatched>", "404"),
    ("POST", "/{uid}", "<unmatched>", "404"),
]


@pytest.mark.parametrize(("method", "path", "label", "status"), HTTP_REQUESTS)
def test_http_requests_total_counts_by_route_template(
    metrics_server, mapi, uid, method, path, label, status
):
    def send():
        response = mapi.request(method, path.format(uid=uid), content=b"{}")
        assert response.status_code == int(status)

    counted = delta(
        metrics_server, send, "http_requests_total", method=method, path=label, status=status
    )
    assert counted == 1
    # The label is the template, never the id: no series per promise.
    scrape = Scrape(metrics_server)
    assert all(uid not in labels["path"] for labels in scrape.labels("http_requests_total"))


def test_http_requests_duration_seconds_is_a_histogram_by_route(metrics_server, mapi, uid):
    labels = {"method": "GET", "path": "/promises/{id}"}
    counted = delta(
        metrics_server,
        lambda: mapi.get(f"/promises/{uid}"),
        "http_requests_duration_seconds_count",
        **labels,
    )
    assert counted == 1
    scrape = Scrape(metrics_server)
    buckets = [
        b
        for b in scrape.labels("http_requests_duration_seconds_bucket")
        if b["method"] == "GET" and b["path"] == "/promises/{id}"
    ]
    assert {b["le"] for b in buckets} >= {"+Inf"} and len(buckets) > 1


def promise_actions() -> list[pytest.param]:
    future = now_ms() + HOUR_MS

    def created(api, uid):
        assert create(api, uid, timeout=future).status_code == 201

    def completed(state):
        def act(api, uid):
            created(api, uid)
            assert api.patch(f"/promises/{uid}", json={"state": state}).status_code == 201

        return act

    def timed_out(tags):
        def act(api, uid):
            assert create(api, uid, timeout=1, tags=tags).status_code == 201
            api.get(f"/promises/{uid}")  # lazily, unless the eager loop came first

        return act

    return [
        pytest.param(created, {"created"}, id="create"),
        pytest.param(completed("RESOLVED"), {"created", "resolved"}, id="resolve"),
        pytest.param(completed("REJECTED"), {"created", "rejected"}, id="reject"),
        pytest.param(completed("REJECTED_CANCELED"), {"created", "rejected_canceled"}, id="cancel"),
        pytest.param(timed_out(None), {"created", "rejected_timedout"}, id="timeout"),
        pytest.param(
            timed_out({"resonate:timeout": "true"}), {"created", "resolved"}, id="timer-timeout"
        ),
    ]


PROMISE_STATES = ["created", "resolved", "rejected", "rejected_canceled", "rejected_timedout"]


@pytest.mark.parametrize(("act", "incremented"), promise_actions())
def test_promises_total_by_state(metrics_server, mapi, uid, act, incremented):
    before = Scrape(metrics_server)
    act(mapi, uid)
    after = Scrape(metrics_server)
    for state in PROMISE_STATES:
        change = after.value("promises_total", state=state) - before.value(
            "promises_total", state=state
        )
        assert change == (1 if state in incremented else 0), state


def test_dedup_and_refusals_count_no_promise(metrics_server, mapi, uid):
    assert create(mapi, uid, key="k", timeout=FUTURE).status_code == 201
    before = Scrape(metrics_server)
    assert create(mapi, uid, key="k", timeout=FUTURE).status_code == 200
    assert create(mapi, uid, timeout=FUTURE).status_code == 409
    assert mapi.post("/promises", content=b"[]").status_code == 400
    after = Scrape(metrics_server)
    for state in PROMISE_STATES:
        assert after.value("promises_total", state=state) == before.value(
            "promises_total", state=state
        )


def test_api_requests_total_by_operation_and_code(metrics_server, mapi, uid):
    counted = delta(
        metrics_server,
        lambda: create(mapi, uid, timeout=FUTURE),
        "api_requests_total",
        type="CreatePromise",
        protocol="http",
        status="20100",
    )
    assert counted == 1


def test_store_batch_operations_histogram(metrics_server, mapi, uid):
    labels = {"store": "sqlite"}
    count = delta(
        metrics_server,
        lambda: create(mapi, uid, timeout=FUTURE),
        "store_batch_operations_count",
        **labels,
    )
    assert count >= 1  # one write; a batch may also carry concurrent operations
    scrape = Scrape(metrics_server)
    buckets = [
        b["le"] for b in scrape.labels("store_batch_operations_bucket") if b["store"] == "sqlite"
    ]
    assert "+Inf" in buckets and "1.0" in buckets
    # Each group-commit transaction carries at least one operation.
    assert scrape.value("store_batch_operations_sum", **labels) >= scrape.value(
        "store_batch_operations_count", **labels
    )


def test_resonate_info(metrics_server):
    scrape = Scrape(metrics_server)
    assert scrape.value("resonate_info", version=__version__, store="sqlite") == 1
    assert len(scrape.labels("resonate_info")) == 1
