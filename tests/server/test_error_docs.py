"""docs/errors.md explains every code the server can answer, and error bodies link it.

The link of a 4xx detail is ``<api.errorDocsUrl>#<code>``: no link by default (the server does
not know where its documentation is hosted), the operator's base when one is configured.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from resonate.cli.config_cmd import run_config_show
from resonate.core.errors import Code, ResonateError, invalid
from resonate.server.http.protocol import error_body
from tests.support.servers import ServerProcess

ERRORS_DOC = Path(__file__).resolve().parents[2] / "docs" / "errors.md"
HEADING = re.compile(r"^### (\S+)\s*$", re.MULTILINE)
DOCS_BASE = "https://docs.example.com/resonate/errors.md"


def documented_codes() -> list[str]:
    return HEADING.findall(ERRORS_DOC.read_text(encoding="utf-8"))


# --- the page -------------------------------------------------------------------------------


@pytest.mark.parametrize("code", list(Code), ids=[str(int(code)) for code in Code])
def test_every_code_of_the_catalogue_has_an_entry(code: Code) -> None:
    """Every code has a `### <code>` heading, whose anchor is `#<code>`."""
    assert str(int(code)) in documented_codes()


def test_the_page_documents_only_codes_of_the_catalogue_each_once() -> None:
    headings = documented_codes()
    assert sorted(headings) == sorted(str(int(code)) for code in Code)


@pytest.mark.parametrize("code", list(Code), ids=[str(int(code)) for code in Code])
def test_each_entry_states_the_status_and_message_of_its_code(code: Code) -> None:
    """The entry's first line names the HTTP status and the code's fixed message."""
    text = ERRORS_DOC.read_text(encoding="utf-8")
    entry = text.split(f"### {int(code)}\n", 1)[1].lstrip().split("\n\n", 1)[0]
    assert entry.startswith(f"**{code.http_status} ")
    assert f"*{code.message}*" in entry


def test_in_page_links_point_at_existing_anchors() -> None:
    text = ERRORS_DOC.read_text(encoding="utf-8")
    anchors = set(documented_codes()) | {"the-2026-04-01-envelope"}
    assert set(re.findall(r"\]\(#([^)]+)\)", text)) <= anchors


# --- the body -------------------------------------------------------------------------------

BODY_CASES = [
    pytest.param(ResonateError(Code.PROMISE_NOT_FOUND), "request error", id="RequestError"),
    pytest.param(invalid("id", "The field id is required."), "field", id="FieldValidationError"),
]


@pytest.mark.parametrize(("error", "kind"), BODY_CASES)
def test_a_4xx_detail_links_the_code_under_the_configured_base(
    error: ResonateError, kind: str
) -> None:
    detail = error_body(error, docs_url=DOCS_BASE)["error"]["details"][0]
    assert detail["metadata"]["url"] == f"{DOCS_BASE}#{int(error.code)}"


@pytest.mark.parametrize(("error", "kind"), BODY_CASES)
def test_without_a_base_no_detail_links_anywhere(error: ResonateError, kind: str) -> None:
    detail = error_body(error)["error"]["details"][0]
    assert "url" not in detail.get("metadata", {})


def test_a_5xx_detail_names_the_request_id_not_a_link() -> None:
    body = error_body(ResonateError(Code.STORE_ERROR, "store error"), "r-1", DOCS_BASE)
    assert body["error"]["details"][0]["metadata"] == {"requestId": "r-1"}


# --- a real server ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def default_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path_factory.mktemp("docs-default")).start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def linked_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    args = ["--api-error-docs-url", DOCS_BASE]
    process = ServerProcess(tmp_path_factory.mktemp("docs-linked"), extra_args=args).start()
    yield process
    process.stop()


def _details(response: httpx.Response, code: Code) -> list[dict[str, object]]:
    assert response.status_code == code.http_status, response.text
    error = response.json()["error"]
    assert error["code"] == int(code)
    details: list[dict[str, object]] = error["details"]
    return details


REQUESTS = [
    pytest.param("GET", "/promises/no-such-promise", None, Code.PROMISE_NOT_FOUND, id="40400"),
    pytest.param("GET", "/schedules/no-such-schedule", None, Code.SCHEDULE_NOT_FOUND, id="40401"),
    pytest.param("GET", "/no/such/route", None, Code.ROUTE_NOT_FOUND, id="40405"),
    pytest.param("POST", "/promises", {"timeout": 1}, Code.INVALID_REQUEST, id="40000 field"),
]


@pytest.mark.parametrize(("method", "path", "body", "code"), REQUESTS)
def test_a_real_server_links_the_code_under_the_flag_base(
    linked_server: ServerProcess, method: str, path: str, body: object, code: Code
) -> None:
    response = httpx.request(method, linked_server.url + path, json=body, timeout=10)
    for detail in _details(response, code):
        assert detail["metadata"]["url"] == f"{DOCS_BASE}#{int(code)}"  # type: ignore[index]


@pytest.mark.parametrize(("method", "path", "body", "code"), REQUESTS)
def test_a_real_server_sends_no_link_by_default(
    default_server: ServerProcess, method: str, path: str, body: object, code: Code
) -> None:
    response = httpx.request(method, default_server.url + path, json=body, timeout=10)
    for detail in _details(response, code):
        assert "url" not in detail.get("metadata", {})  # type: ignore[operator]
        assert "github.com" not in json.dumps(response.json())


def test_the_poll_listener_links_under_the_same_base(linked_server: ServerProcess) -> None:
    response = httpx.post(linked_server.poll_url + "/group/id", timeout=10)
    (detail,) = _details(response, Code.METHOD_NOT_ALLOWED)
    assert detail["metadata"] == {"url": f"{DOCS_BASE}#40500"}


def test_the_environment_variable_sets_the_base(tmp_path: Path) -> None:
    env = {"RESONATE_API_ERROR_DOCS_URL": DOCS_BASE}
    process = ServerProcess(tmp_path, env=env).start()
    try:
        response = httpx.get(process.url + "/locks/nobody", timeout=10)
        (detail,) = _details(response, Code.LOCK_NOT_FOUND)
        assert detail["metadata"] == {"url": f"{DOCS_BASE}#40402"}
    finally:
        process.stop()


# --- resonate config show ---------------------------------------------------------------------


def test_config_show_lists_the_option_with_its_default(
    clean_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_config_show(["-o", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["api"]["errorDocsUrl"] == ""


def test_config_show_lists_the_value_set_by_flag_and_its_source(
    clean_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_config_show(["--sources", "--api-error-docs-url", DOCS_BASE]) == 0
    out = capsys.readouterr().out
    assert re.search(rf"errorDocsUrl: {re.escape(DOCS_BASE)}\s+# flag --api-error-docs-url", out)


def test_the_yaml_file_sets_the_base(clean_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (clean_env / "resonate.yml").write_text(f"api:\n  errorDocsUrl: {DOCS_BASE}\n")
    assert run_config_show(["-o", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["api"]["errorDocsUrl"] == DOCS_BASE
