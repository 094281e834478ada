"""`resonate schedules …` end to end, against a real `resonate serve` process (cli.md §6,
http-api.md §7).

Schedules fire in the background; every test but the firing one uses a yearly cron, so nothing
fires while it runs, and the firing test deletes its schedule when done.
"""

from __future__ import annotations

import base64
import time
from pathlib import Path

import pytest

from tests.cli.cli_runner import CliResult, RunCli
from tests.support.servers import ServerProcess, wait_until

YEARLY = "@yearly"
TEMPLATE = "{{.id}}.{{.timestamp}}"
SCHEDULE_KEYS = {
    "id",
    "cron",
    "tags",
    "promiseId",
    "promiseTimeout",
    "promiseParam",
    "nextRunTime",
    "createdOn",
}
# The schedule loop runs about once a second (system.signalTimeout).
FIRING_DEADLINE_SECONDS = 5.0


def now_ms() -> int:
    return int(time.time() * 1000)


def b64(data: bytes | str) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return base64.b64encode(raw).decode()


def create(
    cli: RunCli, schedule_id: str, *extra: str, cron: str = YEARLY, **options: object
) -> CliResult:
    """`schedules create` with a cron, the TEMPLATE and a 1h promise timeout."""
    return cli(
        "schedules", "create", schedule_id, "--cron", cron,
        "--promise-id", TEMPLATE, "--promise-timeout", "1h", *extra, **options,
    )  # fmt: skip


def get_schedule(cli: RunCli, schedule_id: str) -> dict:
    result = cli("schedules", "get", schedule_id, "-o", "json")
    assert result.exit_code == 0, result.stderr
    return dict(result.json())


def schedule_ids(result: CliResult) -> list[str]:
    assert result.exit_code == 0, result.stderr
    return [schedule["id"] for schedule in result.json()["schedules"]]


def field_rows(result: CliResult) -> dict[str, str]:
    """A field/value table as a dict (multi-line values keep their first line)."""
    rows: dict[str, str] = {}
    for line in result.stdout.splitlines():
        if not line.startswith(" "):
            name, _, value = line.partition(" ")
            rows[name] = value.strip()
    return rows


# --- create and get -----------------------------------------------------------------------------


def test_create_sends_every_option_and_get_reads_it_back(cli: RunCli, uid: str) -> None:
    created = cli(
        "schedules", "create", uid, "--cron", "0 9 * * MON", "--promise-id", TEMPLATE,
        "--promise-timeout", "1h30m", "--description", "weekly report",
        "--timezone", "Europe/Paris", "--tag", "team=ops", "--tag", "url=http://x/?a=b",
        "--promise-data", '{"week": 1}', "--promise-header", "content-type=application/json",
        "--promise-tag", "resonate:invoke=poll://any@nobody", "-k", "create-key", "-o", "json",
    )  # fmt: skip
    assert (created.exit_code, created.stderr) == (0, "created\n")
    schedule = created.json()
    assert set(schedule) == SCHEDULE_KEYS | {
        "description",
        "timezone",
        "promiseTags",
        "idempotencyKey",
    }
    assert schedule["id"] == uid
    assert (schedule["cron"], schedule["timezone"]) == ("0 9 * * MON", "Europe/Paris")
    assert schedule["description"] == "weekly report"
    assert schedule["tags"] == {"team": "ops", "url": "http://x/?a=b"}
    assert schedule["promiseId"] == TEMPLATE
    # --promise-timeout is sent as relative milliseconds.
    assert schedule["promiseTimeout"] == 90 * 60_000
    assert schedule["promiseParam"] == {
        "headers": {"content-type": "application/json"},
        "data": b64('{"week": 1}'),
    }
    assert schedule["promiseTags"] == {"resonate:invoke": "poll://any@nobody"}
    assert schedule["idempotencyKey"] == "create-key"
    assert schedule["nextRunTime"] > now_ms()
    assert "lastRunTime" not in schedule

    assert get_schedule(cli, uid) == schedule
    assert cli("schedules", "get", uid, "-o", "id").stdout == f"{uid}\n"
    assert cli("schedules", "get", uid, "-o", "jsonl").json() == schedule


def test_create_table_shows_times_values_and_tags(cli: RunCli, uid: str) -> None:
    created = create(cli, uid, "--tag", "a=1", "--tag", "b=2", "--promise-data", "hi", "--no-color")
    assert (created.exit_code, created.stderr) == (0, "created\n")
    rows = field_rows(created)
    assert (rows["id"], rows["cron"], rows["promiseId"]) == (uid, YEARLY, TEMPLATE)
    assert rows["promiseTimeout"] == "3600000"
    assert rows["promiseParam"] == "data: hi"
    assert rows["tags"] == "a=1"
    assert "b=2" in created.stdout
    # Times in UTC ISO-8601 with a relative hint, like every other time column.
    next_year = time.gmtime().tm_year + 1
    assert rows["nextRunTime"].startswith(f"{next_year}-01-01T00:00:00.000Z (in ")
    assert rows["createdOn"].endswith(("(now)", "ago)"))
    assert "lastRunTime" not in rows


def test_create_from_a_data_file_sends_raw_bytes(cli: RunCli, uid: str, tmp_path: Path) -> None:
    payload = bytes(range(256))
    path = tmp_path / "param.bin"
    path.write_bytes(payload)
    created = create(cli, uid, "--promise-data-file", str(path), "-o", "json")
    assert created.exit_code == 0, created.stderr
    assert created.json()["promiseParam"] == {"data": b64(payload)}

    from_stdin = create(cli, f"{uid}-stdin", "--promise-data-file", "-", "-o", "json", input="x")
    assert from_stdin.json()["promiseParam"] == {"data": b64("x")}


def test_a_repeated_create_deduplicates_by_idempotency_key(cli: RunCli, uid: str) -> None:
    first = create(cli, uid, "-k", "k1", "-o", "json")
    assert (first.exit_code, first.stderr) == (0, "created\n")
    again = create(cli, uid, "--idempotency-key", "k1", "-o", "json")
    assert (again.exit_code, again.stderr) == (0, "deduplicated\n")
    assert again.json() == first.json()

    for other_key in ([], ["-k", "k2"]):
        conflict = create(cli, uid, *other_key)
        assert conflict.exit_code == 7
        assert conflict.stderr == (
            "error: The specified schedule already exists (HTTP 409, code 40901)\n"
        )
        assert conflict.stdout == ""


def test_schedule_ids_with_reserved_characters(cli: RunCli, uid: str) -> None:
    schedule_id = f"{uid}/a b?c#d%"
    assert create(cli, schedule_id).exit_code == 0
    assert get_schedule(cli, schedule_id)["id"] == schedule_id
    assert cli("schedules", "search", f"{uid}/*", "-o", "id").stdout == f"{schedule_id}\n"
    assert cli("schedules", "delete", schedule_id, "-y").exit_code == 0


# --- search -------------------------------------------------------------------------------------


def test_search_by_pattern_and_tags(cli: RunCli, uid: str) -> None:
    create(cli, f"{uid}/a", "--tag", "env=prod")
    create(cli, f"{uid}/b", "--tag", "env=dev")
    create(cli, f"{uid}-other", "--tag", "env=prod")

    assert schedule_ids(cli("schedules", "search", f"{uid}/*", "-o", "json")) == [
        f"{uid}/b",
        f"{uid}/a",
    ]
    prod = cli("schedules", "search", f"{uid}*", "--tag", "env=prod", "-o", "json")
    assert schedule_ids(prod) == [f"{uid}-other", f"{uid}/a"]
    # Search pages hold full schedule objects (D3).
    assert set(prod.json()["schedules"][0]) >= SCHEDULE_KEYS
    none = cli("schedules", "search", f"{uid}*", "--tag", "env=test", "-o", "json")
    assert none.json() == {"cursor": None, "schedules": []}


def test_search_table_pages_and_all(cli: RunCli, uid: str) -> None:
    ids = [f"{uid}/{index}" for index in range(3)]
    for schedule_id in ids:
        assert create(cli, schedule_id, cron="0 12 * * *").exit_code == 0

    table = cli("schedules", "search", f"{uid}/*", "--no-color")
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["ID", "CRON", "NEXT", "RUN", "LAST", "RUN", "PROMISE", "ID"]
    row = next(line for line in lines if line.startswith(ids[0]))
    # No LAST RUN yet: the row is id, the cron's five fields, the next run and the template.
    cells = row.split()
    assert cells[:6] == [ids[0], "0", "12", "*", "*", "*"]
    assert cells[6].endswith("T12:00:00.000Z")
    assert cells[7] == "(in"
    assert cells[-1] == TEMPLATE

    first = cli("schedules", "search", f"{uid}/*", "--limit", "2", "-o", "json")
    assert schedule_ids(first) == ids[:0:-1]
    cursor = first.json()["cursor"]
    assert cursor
    assert schedule_ids(cli("schedules", "search", "--cursor", cursor, "-o", "json")) == [ids[0]]
    paged = cli("schedules", "search", f"{uid}/*", "--limit", "2", "--all", "-o", "json")
    assert paged.json()["cursor"] is None
    assert schedule_ids(paged) == ids[::-1]
    noted = cli("schedules", "search", f"{uid}/*", "--limit", "2", "-o", "id")
    assert noted.stdout.splitlines() == ids[:0:-1]
    assert f"more results: --cursor {cursor}" in noted.stderr
    # With --all there is no next cursor to mention.
    every = cli("schedules", "search", f"{uid}/*", "--limit", "1", "--all", "-o", "jsonl")
    assert (len(every.stdout.splitlines()), every.stderr) == (3, "")


# --- delete -------------------------------------------------------------------------------------


def test_delete_needs_yes_without_a_terminal(cli: RunCli, uid: str) -> None:
    create(cli, uid)
    refused = cli("schedules", "delete", uid)
    assert refused.exit_code == 3
    assert refused.stderr == "error: confirmation required: pass --yes to run without a terminal\n"
    assert get_schedule(cli, uid)["id"] == uid

    deleted = cli("schedules", "delete", uid, "--yes")
    assert (deleted.exit_code, deleted.stdout, deleted.stderr) == (0, "", "deleted\n")
    gone = cli("schedules", "get", uid)
    assert gone.exit_code == 4
    again = cli("schedules", "delete", uid, "-y")
    assert again.exit_code == 4
    assert again.stderr == "error: The specified schedule was not found (HTTP 404, code 40401)\n"


@pytest.mark.parametrize(
    ("answer", "exit_code", "still_there"), [("n\n", 1, True), ("y\n", 0, False)]
)
def test_delete_on_a_terminal_asks(
    cli: RunCli,
    uid: str,
    monkeypatch: pytest.MonkeyPatch,
    answer: str,
    exit_code: int,
    still_there: bool,
) -> None:
    create(cli, uid)
    monkeypatch.setattr("resonate.cli.promises.stdin_is_terminal", lambda: True)
    result = cli("schedules", "delete", uid, input=answer)
    assert f"Delete schedule '{uid}'?" in result.stderr
    assert result.exit_code == exit_code
    assert (cli("schedules", "get", uid).exit_code == 0) is still_there


# --- firing -------------------------------------------------------------------------------------


def fired_schedule(cli: RunCli, schedule_id: str) -> dict | None:
    """The schedule once it has a `lastRunTime`, else None."""
    schedule = get_schedule(cli, schedule_id)
    return schedule if "lastRunTime" in schedule else None


def test_get_shows_the_last_and_next_run_once_the_server_fired(cli: RunCli, uid: str) -> None:
    created = create(
        cli, uid, "--promise-tag", "origin=cli", "--promise-data", "tick", "-o", "json",
        cron="* * * * * *",
    )  # fmt: skip
    assert created.exit_code == 0, created.stderr
    try:
        fired = wait_until(
            lambda: fired_schedule(cli, uid),
            time.monotonic() + FIRING_DEADLINE_SECONDS,
            interval=0.1,
            what="the schedule to fire",
        )
        last_run = fired["lastRunTime"]
        assert last_run >= created.json()["nextRunTime"]
        assert fired["nextRunTime"] > last_run
        assert last_run % 1000 == 0 and fired["nextRunTime"] % 1000 == 0

        rows = field_rows(cli("schedules", "get", uid, "--no-color"))
        last_run_iso = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(last_run / 1000))
        assert rows["lastRunTime"].startswith(f"{last_run_iso} (")
        assert rows["lastRunTime"].endswith("ago)") or rows["lastRunTime"].endswith("(now)")
        row = cli("schedules", "search", uid, "--no-color").stdout.splitlines()[1]
        assert row.split()[-1] == TEMPLATE
        assert row.count("Z (") == 2  # NEXT RUN and LAST RUN are both filled in

        # The firing created a promise from the template, with the schedule's param and tags.
        promise_id = f"{uid}.{last_run}"
        promise = cli("promises", "get", promise_id, "-o", "json")
        assert promise.exit_code == 0, promise.stderr
        assert promise.json()["param"] == {"data": b64("tick")}
        assert promise.json()["timeout"] == last_run + 3_600_000
        assert promise.json()["tags"] == {
            "origin": "cli",
            "resonate:schedule": uid,
            "resonate:invocation": "true",
        }
    finally:
        assert cli("schedules", "delete", uid, "-y").exit_code == 0


# --- errors from the server ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--cron", "not a cron"], "The field cron must be a valid cron expression."),
        (["--cron", "61 * * * *"], "The field cron must be a valid cron expression."),
        (["--timezone", "Mars/Olympus"], "The field timezone must be an IANA time zone name."),
        (["--promise-id", "{{.nope}}"], "The field promiseId must be a valid template."),
    ],
)
def test_invalid_input_is_a_usage_error(
    cli: RunCli, uid: str, options: list[str], message: str
) -> None:
    given = dict(zip(options[::2], options[1::2], strict=True))
    arguments = {"--cron": YEARLY, "--promise-id": TEMPLATE, "--promise-timeout": "1m"} | given
    flat = [part for pair in arguments.items() for part in pair]
    result = cli("schedules", "create", uid, *flat)
    assert result.exit_code == 2
    assert result.stderr == f"error: The request is invalid: {message} (HTTP 400, code 40000)\n"
    assert result.stdout == ""
    assert cli("schedules", "get", uid).exit_code == 4


def test_an_unknown_schedule_exits_4(cli: RunCli, uid: str) -> None:
    result = cli("schedules", "get", f"{uid}/missing")
    assert result.exit_code == 4
    assert result.stderr == "error: The specified schedule was not found (HTTP 404, code 40401)\n"
    assert result.stdout == ""


# --- usage errors (no server needed) ------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["create", "s", "--promise-id", "p", "--promise-timeout", "1m"], "--cron"),
        (["create", "s", "--cron", YEARLY, "--promise-timeout", "1m"], "--promise-id"),
        (["create", "s", "--cron", YEARLY, "--promise-id", "p"], "--promise-timeout"),
        (["create", "s", "--cron", YEARLY, "--promise-id", "p", "--promise-timeout", "soon"],
         "invalid duration"),
        (["create", "s", "--cron", YEARLY, "--promise-id", "p", "--promise-timeout", "1m",
          "--promise-data", "x", "--promise-data-file", "-"], "exclusive"),
        (["create", "s", "--cron", YEARLY, "--promise-id", "p", "--promise-timeout", "1m",
          "--tag", "novalue"], "k=v"),
        (["create", "s", "--cron", YEARLY, "--promise-id", "p", "--promise-timeout", "1m",
          "--promise-tag", "=v"], "--promise-tag"),
        (["create", "s", "--cron", YEARLY, "--promise-id", "p", "--promise-timeout", "1m",
          "--promise-header", "h"], "--promise-header"),
        (["search", "--limit", "101"], "--limit"),
        (["search", "--limit", "0"], "--limit"),
        (["search", "--tag", "x"], "k=v"),
        (["get"], "ID"),
        (["delete", "-y"], "ID"),
    ],
)  # fmt: skip
def test_usage_errors_exit_2(
    run_cli: RunCli, closed_port_url: str, args: list[str], complaint: str
) -> None:
    result = run_cli("schedules", *args, "-S", closed_port_url)
    assert result.exit_code == 2, result.stderr
    assert complaint in result.stderr
    assert result.stdout == ""


def test_a_missing_data_file_exits_1(run_cli: RunCli, closed_port_url: str) -> None:
    result = run_cli(
        "schedules", "create", "s", "--cron", YEARLY, "--promise-id", "p",
        "--promise-timeout", "1m", "--promise-data-file", "/nope", "-S", closed_port_url,
    )  # fmt: skip
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and "/nope" in result.stderr


def test_an_unreachable_server_exits_5(run_cli: RunCli, closed_port_url: str) -> None:
    result = run_cli("schedules", "delete", "s", "-y", "-S", closed_port_url)
    assert result.exit_code == 5
    assert result.stderr.startswith(f"error: cannot reach {closed_port_url}")


@pytest.mark.parametrize("arguments", [["schedules", "--help"], ["schedules", "create", "--help"]])
def test_help_loads_no_server_store_or_tui_code(arguments: list[str]) -> None:
    from tests.cli.test_import_hygiene import forbidden_among, modules_loaded_after

    code = f"""
        from resonate.cli.main import app
        try:
            app({arguments!r}, prog_name="resonate")
        except SystemExit:
            pass
    """
    assert forbidden_among(modules_loaded_after(code)) == []


def test_create_help_documents_every_option(run_cli: RunCli) -> None:
    result = run_cli("schedules", "create", "--help", env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for option in (
        "--cron", "--promise-id", "--promise-timeout", "--description", "--timezone", "--tag",
        "--promise-data", "--promise-data-file", "--promise-header", "--promise-tag",
        "--idempotency-key", "--server", "--output",
    ):  # fmt: skip
        assert option in result.stdout, option


# --- the asynchronous client (used by the TUI) --------------------------------------------------


async def test_async_client_schedule_methods(server: ServerProcess, uid: str) -> None:
    from resonate.client import AsyncResonateClient, encode_value

    async with AsyncResonateClient(server.url) as client:
        created = await client.create_schedule(
            f"{uid}/a",
            YEARLY,
            TEMPLATE,
            60_000,
            description="d",
            timezone="UTC",
            tags={"k": "v"},
            promise_param=encode_value("x"),
            promise_tags={"p": "q"},
            idempotency_key="key",
        )
        assert created.status == 201
        assert (created.body["promiseTimeout"], created.body["timezone"]) == (60_000, "UTC")
        repeated = await client.create_schedule(
            f"{uid}/a", YEARLY, TEMPLATE, 60_000, idempotency_key="key"
        )
        assert (repeated.status, repeated.body) == (200, created.body)
        await client.create_schedule(f"{uid}/b", YEARLY, TEMPLATE, 0)

        assert (await client.get_schedule(f"{uid}/a")).body == created.body
        page = (await client.search_schedules(f"{uid}/*", limit=1)).body
        assert [schedule["id"] for schedule in page["schedules"]] == [f"{uid}/b"]
        tagged = (await client.search_schedules(f"{uid}/*", tags={"k": "v"})).body
        assert [schedule["id"] for schedule in tagged["schedules"]] == [f"{uid}/a"]
        every = [s["id"] async for s in client.iter_schedules(f"{uid}/*", limit=1)]
        assert every == [f"{uid}/b", f"{uid}/a"]

        deleted = await client.delete_schedule(f"{uid}/a")
        assert (deleted.status, deleted.body) == (204, None)


def test_sync_client_iterates_every_page(server: ServerProcess, uid: str) -> None:
    from resonate.client import ResonateClient

    with ResonateClient(server.url) as client:
        for index in range(3):
            assert client.create_schedule(f"{uid}/{index}", YEARLY, TEMPLATE, 0).created
        every = [schedule["id"] for schedule in client.iter_schedules(f"{uid}/*", limit=2)]
        assert every == [f"{uid}/2", f"{uid}/1", f"{uid}/0"]
        assert client.delete_schedule(f"{uid}/0").status == 204
        assert [s["id"] for s in client.iter_schedules(f"{uid}/*")] == [f"{uid}/2", f"{uid}/1"]
