"""`resonate promises …` end to end: the real CLI against a real `resonate serve` process.

Each test uses ids under its own `uid` prefix, so the session-wide server can be shared.
"""

from __future__ import annotations

import base64
import time
from pathlib import Path

import pytest
import yaml

from tests.cli.cli_runner import CliResult, RunCli
from tests.support.servers import ServerProcess

PROMISE_KEYS = {"id", "state", "param", "value", "timeout", "createdOn"}


@pytest.fixture
def cli(run_cli: RunCli, server: ServerProcess) -> RunCli:
    """`resonate ARGS…` with `-S <server>` given before the command group."""

    def run(*args: str, **options: object) -> CliResult:
        return run_cli("-S", server.url, *args, **options)

    return run


def b64(data: bytes | str) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return base64.b64encode(raw).decode()


def now_ms() -> int:
    return int(time.time() * 1000)


# --- create, complete, read -------------------------------------------------------------------


def test_create_resolve_get_shows_the_documented_json(cli: RunCli, uid: str) -> None:
    promise_id = f"{uid}/order"
    before = now_ms()
    created = cli(
        "promises", "create", promise_id, "--timeout", "1h",
        "--data", '{"amount": 42}', "--header", "content-type=application/json",
        "--tag", "env=prod", "--tag", "url=http://x/?a=b", "-k", "create-key",
    )  # fmt: skip
    after = now_ms()
    assert (created.exit_code, created.stderr) == (0, "created\n")

    resolved = cli(
        "promises", "resolve", promise_id, "--data", "done", "-k", "done-key", "-o", "json"
    )
    assert (resolved.exit_code, resolved.stderr) == (0, "resolved\n")
    assert resolved.json()["state"] == "RESOLVED"

    shown = cli("promises", "get", promise_id, "-o", "json")
    assert shown.exit_code == 0
    promise = shown.json()
    assert set(promise) == PROMISE_KEYS | {
        "tags",
        "completedOn",
        "idempotencyKeyForCreate",
        "idempotencyKeyForComplete",
    }
    assert promise["id"] == promise_id
    assert promise["state"] == "RESOLVED"
    assert promise["param"] == {
        "headers": {"content-type": "application/json"},
        "data": b64('{"amount": 42}'),
    }
    assert promise["value"] == {"data": b64("done")}
    assert promise["tags"] == {"env": "prod", "url": "http://x/?a=b"}
    assert promise["idempotencyKeyForCreate"] == "create-key"
    assert promise["idempotencyKeyForComplete"] == "done-key"
    # --timeout is sent as now + duration, in absolute milliseconds.
    assert before + 3_600_000 <= promise["timeout"] <= after + 3_600_000
    assert promise["createdOn"] <= promise["completedOn"]


@pytest.mark.parametrize(
    ("command", "state", "note"),
    [
        (["resolve"], "RESOLVED", "resolved"),
        (["reject"], "REJECTED", "rejected"),
        (["cancel", "--yes"], "REJECTED_CANCELED", "canceled"),
        (["cancel", "-y"], "REJECTED_CANCELED", "canceled"),
    ],
)
def test_completions_print_their_verb(
    cli: RunCli, uid: str, command: list[str], state: str, note: str
) -> None:
    assert cli("promises", "create", uid, "-t", "1m").exit_code == 0
    result = cli("promises", command[0], uid, *command[1:], "--data", "why", "-o", "json")
    assert (result.exit_code, result.stderr) == (0, f"{note}\n")
    assert result.json()["state"] == state
    assert result.json()["value"] == {"data": b64("why")}


def test_create_with_the_same_key_is_deduplicated_exit_0(cli: RunCli, uid: str) -> None:
    first = cli("promises", "create", uid, "-t", "1m", "-k", "k1", "-o", "json")
    again = cli("promises", "create", uid, "-t", "5m", "-k", "k1", "-o", "json")
    assert (again.exit_code, again.stderr) == (0, "deduplicated\n")
    assert again.json() == first.json()  # the stored promise, not the request


def test_complete_with_the_same_key_is_deduplicated_exit_0(cli: RunCli, uid: str) -> None:
    cli("promises", "create", uid, "-t", "1m")
    assert cli("promises", "resolve", uid, "-k", "r1").exit_code == 0
    again = cli("promises", "resolve", uid, "-k", "r1", "--strict")
    assert (again.exit_code, again.stderr.splitlines()[0]) == (0, "deduplicated")
    # Non-strict and a matching key: 200 whatever the requested state, and the note says so.
    other = cli("promises", "reject", uid, "-k", "r1")
    assert other.exit_code == 0
    assert other.stderr == "deduplicated: the promise is already RESOLVED\n"


def test_an_existing_promise_is_a_conflict_exit_7(cli: RunCli, uid: str) -> None:
    cli("promises", "create", uid, "-t", "1m")
    result = cli("promises", "create", uid, "-t", "1m")
    assert result.exit_code == 7
    assert result.stderr == ("error: The specified promise already exists (HTTP 409, code 40900)\n")
    assert result.stdout == ""


def test_strict_create_of_a_completed_promise_is_a_conflict(cli: RunCli, uid: str) -> None:
    cli("promises", "create", uid, "-t", "1m", "-k", "k")
    cli("promises", "resolve", uid)
    assert cli("promises", "create", uid, "-t", "1m", "-k", "k").exit_code == 0
    assert cli("promises", "create", uid, "-t", "1m", "-k", "k", "--strict").exit_code == 7


def test_completing_a_resolved_promise_is_a_conflict_exit_7(cli: RunCli, uid: str) -> None:
    cli("promises", "create", uid, "-t", "1m")
    cli("promises", "resolve", uid)
    result = cli("promises", "reject", uid)
    assert result.exit_code == 7
    assert result.stderr == (
        "error: The promise has already been resolved (HTTP 403, code 40301)\n"
    )


def test_a_missing_promise_exits_4(cli: RunCli, uid: str) -> None:
    result = cli("promises", "get", f"{uid}/missing")
    assert result.exit_code == 4
    assert result.stderr == ("error: The specified promise was not found (HTTP 404, code 40400)\n")
    assert cli("promises", "resolve", f"{uid}/missing").exit_code == 4


def test_a_server_400_exits_2(cli: RunCli, uid: str) -> None:
    too_long = uid + "x" * 1024  # ids are at most 1024 bytes
    result = cli("promises", "create", too_long, "-t", "1m")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and "(HTTP 400, code 40000)" in result.stderr
    assert cli("promises", "search", "--cursor", "not-a-cursor").exit_code == 2


def test_a_past_deadline_times_the_promise_out(cli: RunCli, uid: str) -> None:
    assert cli("promises", "create", uid, "-t", "0s").exit_code == 0
    time.sleep(0.05)
    assert cli("promises", "get", uid, "-o", "json").json()["state"] == "REJECTED_TIMEDOUT"
    # Non-strict completion of a timed-out promise is absorbed with 200.
    assert cli("promises", "resolve", uid).exit_code == 0
    assert cli("promises", "resolve", uid, "--strict").exit_code == 7


# --- ids and data -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "template",
    [
        "{uid}/a/b/c",
        "/{uid}/leading-slash",
        "{uid}/trailing-slash/",
        "{uid} with spaces",
        "{uid}?query=1#fragment",
        "{uid}100%",
        "{uid}%2F-already-encoded",
        "{uid}/../dots",
        "{uid}ü.:",
    ],
)
def test_ids_with_reserved_characters(cli: RunCli, uid: str, template: str) -> None:
    promise_id = template.format(uid=uid)
    assert cli("promises", "create", promise_id, "-t", "1m").exit_code == 0
    assert cli("promises", "get", promise_id, "-o", "id").stdout == f"{promise_id}\n"
    assert cli("promises", "resolve", promise_id, "-o", "json").json()["id"] == promise_id
    found = cli("promises", "search", f"*{uid}*", "-o", "id")
    assert found.stdout.splitlines() == [promise_id]


@pytest.mark.parametrize("promise_id", [".", ".."])
def test_dot_segment_ids(cli: RunCli, promise_id: str) -> None:
    created = cli("promises", "create", promise_id, "-t", "1h", "-k", "dots", "-o", "id")
    assert (created.exit_code, created.stdout) == (0, f"{promise_id}\n")
    assert cli("promises", "get", promise_id, "-o", "id").stdout == f"{promise_id}\n"


def test_data_file_sends_raw_bytes(cli: RunCli, uid: str, tmp_path: Path) -> None:
    payload = bytes(range(256))
    path = tmp_path / "payload.bin"
    path.write_bytes(payload)
    created = cli("promises", "create", uid, "-t", "1m", "--data-file", str(path), "-o", "json")
    assert created.json()["param"] == {"data": b64(payload)}
    resolved = cli("promises", "resolve", uid, "--data-file", "-", "-o", "json", input=b"\x00in")
    assert resolved.json()["value"] == {"data": b64(b"\x00in")}
    table = cli("promises", "get", uid)
    assert "<256 bytes, base64>" in table.stdout


# --- output formats -------------------------------------------------------------------------------


def test_every_output_format(cli: RunCli, uid: str) -> None:
    cli("promises", "create", uid, "-t", "1h", "--tag", "k=v", "--data", "hi")
    as_json = cli("promises", "get", uid, "-o", "json")
    promise = as_json.json()
    assert as_json.stdout.startswith("{\n  ")

    as_jsonl = cli("promises", "get", uid, "-o", "jsonl")
    assert as_jsonl.stdout.count("\n") == 1
    assert yaml.safe_load(as_jsonl.stdout) == promise

    assert yaml.safe_load(cli("promises", "get", uid, "-o", "yaml").stdout) == promise
    assert cli("promises", "get", uid, "-o", "id").stdout == f"{uid}\n"

    table = cli("promises", "get", uid, "--no-color").stdout
    assert "PENDING" in table and "k=v" in table and "data: hi" in table
    assert "(in 59m)" in table or "(in 1h)" in table
    assert "\x1b[" not in table


def test_output_option_after_the_command_wins(cli: RunCli, uid: str) -> None:
    cli("promises", "create", uid, "-t", "1m")
    assert cli("-o", "json", "promises", "get", uid, "-o", "id").stdout == f"{uid}\n"


def test_server_option_on_the_subcommand(run_cli: RunCli, server: ServerProcess, uid: str) -> None:
    result = run_cli("promises", "create", uid, "-t", "1m", "-S", server.url, "-o", "id")
    assert (result.exit_code, result.stdout) == (0, f"{uid}\n")
    from_env = run_cli("promises", "get", uid, "-o", "id", env={"RESONATE_SERVER": server.url})
    assert from_env.stdout == f"{uid}\n"


# --- search ---------------------------------------------------------------------------------------


@pytest.fixture
def five_promises(cli: RunCli, uid: str) -> list[str]:
    """uid/0 … uid/4, created in that order; 1 and 3 resolved; even ones tagged color=red."""
    ids = [f"{uid}/{index}" for index in range(5)]
    for index, promise_id in enumerate(ids):
        color = "red" if index % 2 == 0 else "blue"
        assert cli("promises", "create", promise_id, "-t", "1h", "--tag", f"color={color}",
                   "--tag", f"run={uid}").exit_code == 0  # fmt: skip
    for promise_id in ids[1::2]:
        assert cli("promises", "resolve", promise_id).exit_code == 0
    return ids


def search_ids(result: CliResult) -> list[str]:
    assert result.exit_code == 0, result.stderr
    return [promise["id"] for promise in result.json()["promises"]]


def test_search_newest_first(cli: RunCli, uid: str, five_promises: list[str]) -> None:
    page = cli("promises", "search", f"{uid}/*", "-o", "json")
    assert search_ids(page) == five_promises[::-1]
    assert page.json()["cursor"] is None


def test_search_by_state(cli: RunCli, uid: str, five_promises: list[str]) -> None:
    pending = cli("promises", "search", f"{uid}/*", "--state", "pending", "-o", "json")
    assert search_ids(pending) == [five_promises[4], five_promises[2], five_promises[0]]
    resolved = cli("promises", "search", f"{uid}/*", "--state", "RESOLVED", "-o", "json")
    assert search_ids(resolved) == [five_promises[3], five_promises[1]]
    rejected = cli("promises", "search", f"{uid}/*", "--state", "rejected", "-o", "json")
    assert search_ids(rejected) == []


def test_search_by_tag(cli: RunCli, uid: str, five_promises: list[str]) -> None:
    # Default pattern '*', narrowed to this test by the run tag.
    blue = cli("promises", "search", "--tag", f"run={uid}", "--tag", "color=blue", "-o", "json")
    assert search_ids(blue) == [five_promises[3], five_promises[1]]


def test_search_pages_with_limit_and_cursor(
    cli: RunCli, uid: str, five_promises: list[str]
) -> None:
    first = cli("promises", "search", f"{uid}/*", "--limit", "2", "-o", "json")
    assert search_ids(first) == [five_promises[4], five_promises[3]]
    cursor = first.json()["cursor"]
    assert cursor
    second = cli("promises", "search", "--cursor", cursor, "-o", "json")
    assert search_ids(second) == [five_promises[2], five_promises[1]]

    table = cli("promises", "search", f"{uid}/*", "--limit", "2")
    assert f"more results: --cursor {cursor}" in table.stderr
    assert table.stdout.splitlines()[0].split() == ["ID", "STATE", "TIMEOUT", "TAGS"]
    assert len(table.stdout.splitlines()) == 3


def test_search_all_follows_cursors(cli: RunCli, uid: str, five_promises: list[str]) -> None:
    everything = cli("promises", "search", f"{uid}/*", "--limit", "2", "--all", "-o", "json")
    assert everything.json() == {"cursor": None, "promises": everything.json()["promises"]}
    assert search_ids(everything) == five_promises[::-1]

    lines = cli("promises", "search", f"{uid}/*", "--limit", "2", "--all", "-o", "jsonl")
    assert [yaml.safe_load(line)["id"] for line in lines.stdout.splitlines()] == (
        five_promises[::-1]
    )
    assert lines.stderr == ""

    ids = cli("promises", "search", f"{uid}/*", "--all", "--limit", "3", "-o", "id")
    assert ids.stdout.splitlines() == five_promises[::-1]

    as_yaml = cli("promises", "search", f"{uid}/*", "--all", "-o", "yaml")
    assert yaml.safe_load(as_yaml.stdout)["cursor"] is None


def test_search_all_from_a_cursor(cli: RunCli, uid: str, five_promises: list[str]) -> None:
    cursor = cli("promises", "search", f"{uid}/*", "--limit", "2", "-o", "json").json()["cursor"]
    rest = cli("promises", "search", "--cursor", cursor, "--all", "-o", "id")
    assert rest.stdout.splitlines() == five_promises[2::-1]


# --- auth -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def basic_auth_server(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    process = ServerProcess(
        tmp_path_factory.mktemp("basic-auth"), extra_args=["--api-http-auth", "alice=secret"]
    ).start()
    try:
        yield process
    finally:
        process.stop()


def test_basic_auth(run_cli: RunCli, basic_auth_server: ServerProcess, uid: str) -> None:
    url = basic_auth_server.url
    ok = run_cli("promises", "create", uid, "-t", "1m", "-S", url, "-U", "alice", "-P", "secret")
    assert ok.exit_code == 0, ok.stderr
    from_env = run_cli(
        "-S", url, "promises", "get", uid,
        env={"RESONATE_USERNAME": "alice", "RESONATE_PASSWORD": "secret"},
    )  # fmt: skip
    assert from_env.exit_code == 0
    wrong = run_cli("-S", url, "promises", "get", uid, "-U", "alice", "-P", "wrong")
    assert wrong.exit_code == 6
    assert "(HTTP 401, code 40100)" in wrong.stderr
    assert run_cli("-S", url, "promises", "get", uid).exit_code == 6


@pytest.fixture(scope="module")
def jwt_server(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """JWT bearer auth with an Ed25519 key; yields the server and the private key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    private = ed25519.Ed25519PrivateKey.generate()
    workdir = tmp_path_factory.mktemp("jwt-auth")
    key_file = workdir / "public.pem"
    key_file.write_bytes(
        private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    process = ServerProcess(workdir, extra_args=["--api-auth-public-key", str(key_file)]).start()
    try:
        yield process, private
    finally:
        process.stop()


def test_token_auth_with_a_prefix(run_cli: RunCli, jwt_server, uid: str) -> None:  # type: ignore[no-untyped-def]
    import time

    import jwt

    server, private = jwt_server
    url = server.url
    token = jwt.encode(
        {"prefix": f"{uid}/a/", "exp": int(time.time()) + 600}, private, algorithm="EdDSA"
    )
    ok = run_cli("promises", "create", f"{uid}/a/x", "-t", "1m", "-S", url, "-T", token)
    assert ok.exit_code == 0, ok.stderr
    from_env = run_cli("-S", url, "promises", "get", f"{uid}/a/x", env={"RESONATE_TOKEN": token})
    assert from_env.exit_code == 0, from_env.stderr
    outside = run_cli("-S", url, "promises", "get", f"{uid}/b/x", "-T", token)
    assert outside.exit_code == 6
    assert "(HTTP 403, code 40300)" in outside.stderr
    assert token not in outside.stderr
    expired = jwt.encode({"prefix": "", "exp": int(time.time()) - 600}, private, algorithm="EdDSA")
    refused = run_cli("-S", url, "promises", "get", f"{uid}/a/x", "-T", expired)
    assert refused.exit_code == 6
    assert "(HTTP 401, code 40100)" in refused.stderr
