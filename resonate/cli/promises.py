"""`resonate promises`: read, create, complete and search promises (cli.md §5)."""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from resonate.cli.arguments import (
    parse_duration,
    parse_key_values,
    read_data,
    usage_error,
)
from resonate.cli.errors import Aborted, ConfirmationRequired
from resonate.cli.options import GlobalOptions, client_command
from resonate.cli.output import PROMISE_VIEW, now_ms

if TYPE_CHECKING:
    from resonate.client import ApiResponse, CompletionState, SearchState

app = typer.Typer(
    name="promises",
    help="Read, create, complete and search promises.",
    no_args_is_help=True,
)


class SearchStateChoice(StrEnum):
    pending = "pending"
    resolved = "resolved"
    rejected = "rejected"


PromiseId = Annotated[str, typer.Argument(metavar="ID", help="Promise id.")]
DataOption = Annotated[
    str | None,
    typer.Option("--data", metavar="TEXT", help="Value data as UTF-8 text (sent base64-encoded)."),
]
DataFileOption = Annotated[
    str | None,
    typer.Option(
        "--data-file",
        metavar="PATH",
        help="Read the value data from a file, raw bytes ('-' = stdin).",
    ),
]
HeaderOption = Annotated[
    list[str] | None,
    typer.Option("--header", metavar="K=V", help="Value header; repeatable."),
]
TagOption = Annotated[
    list[str] | None,
    typer.Option("--tag", metavar="K=V", help="Tag; repeatable."),
]
IdempotencyKeyOption = Annotated[
    str | None,
    typer.Option("--idempotency-key", "-k", metavar="KEY", help="Idempotency key."),
]
StrictOption = Annotated[
    bool, typer.Option("--strict", help="Deduplicate only when the stored state matches.")
]
YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]


def _key_values(pairs: list[str] | None, option: str) -> dict[str, str]:
    try:
        return parse_key_values(pairs or [])
    except ValueError as error:
        raise usage_error(error, option) from None


def _value(data: str | None, data_file: str | None, headers: list[str] | None) -> dict[str, Any]:
    """The API value from `--data`/`--data-file` and `--header` (empty dict when none)."""
    from resonate.client import encode_value

    value_headers = _key_values(headers, "--header")
    try:
        raw = read_data(data, data_file)
    except ValueError as error:
        raise usage_error(error, "--data-file") from None
    return encode_value(raw, value_headers)


def _show_write_result(
    options: GlobalOptions, response: ApiResponse, created_note: str, expected_state: str
) -> None:
    """The note (`created`/verb on 201, `deduplicated` on 200) and the promise."""
    printer = options.printer()
    promise = response.body
    if response.created:
        printer.note(created_note)
    elif promise.get("state") == expected_state:
        printer.note("deduplicated")
    else:
        printer.note(f"deduplicated: the promise is already {promise.get('state')}")
    printer.show_object(promise, PROMISE_VIEW)


@app.command("get")
@client_command
def get_promise(options: GlobalOptions, promise_id: PromiseId) -> None:
    """Read a promise."""
    with options.client() as client:
        response = client.get_promise(promise_id)
    options.printer().show_object(response.body, PROMISE_VIEW)


@app.command("create")
@client_command
def create_promise(
    options: GlobalOptions,
    promise_id: PromiseId,
    timeout: Annotated[
        str,
        typer.Option(
            "--timeout",
            "-t",
            metavar="DURATION",
            help="Time until the promise times out (250ms, 30s, 1m, 1h30m).",
            show_default=False,
        ),
    ],
    data: DataOption = None,
    data_file: DataFileOption = None,
    header: HeaderOption = None,
    tag: TagOption = None,
    idempotency_key: IdempotencyKeyOption = None,
    strict: StrictOption = False,
) -> None:
    """Create a promise."""
    try:
        timeout_ms = parse_duration(timeout)
    except ValueError as error:
        raise usage_error(error, "--timeout") from None
    tags = _key_values(tag, "--tag")
    param = _value(data, data_file, header)
    with options.client() as client:
        response = client.create_promise(
            promise_id,
            now_ms() + timeout_ms,
            param=param,
            tags=tags,
            idempotency_key=idempotency_key,
            strict=strict,
        )
    _show_write_result(options, response, "created", "PENDING")


def _complete(
    options: GlobalOptions,
    promise_id: str,
    state: CompletionState,
    value: dict[str, Any],
    idempotency_key: str | None,
    strict: bool,
) -> None:
    with options.client() as client:
        response = client.complete_promise(promise_id, state, value, idempotency_key, strict)
    verb = {"RESOLVED": "resolved", "REJECTED": "rejected", "REJECTED_CANCELED": "canceled"}
    _show_write_result(options, response, verb[state], state)


@app.command("resolve")
@client_command
def resolve_promise(
    options: GlobalOptions,
    promise_id: PromiseId,
    data: DataOption = None,
    data_file: DataFileOption = None,
    header: HeaderOption = None,
    idempotency_key: IdempotencyKeyOption = None,
    strict: StrictOption = False,
) -> None:
    """Resolve a pending promise."""
    value = _value(data, data_file, header)
    _complete(options, promise_id, "RESOLVED", value, idempotency_key, strict)


@app.command("reject")
@client_command
def reject_promise(
    options: GlobalOptions,
    promise_id: PromiseId,
    data: DataOption = None,
    data_file: DataFileOption = None,
    header: HeaderOption = None,
    idempotency_key: IdempotencyKeyOption = None,
    strict: StrictOption = False,
) -> None:
    """Reject a pending promise."""
    value = _value(data, data_file, header)
    _complete(options, promise_id, "REJECTED", value, idempotency_key, strict)


def stdin_is_terminal() -> bool:
    return sys.stdin.isatty()


def confirm_destructive(question: str, yes: bool) -> None:
    """Ask on a TTY; without one, refuse unless `--yes` was given (exit code 3)."""
    if yes:
        return
    if not stdin_is_terminal():
        raise ConfirmationRequired("confirmation required: pass --yes to run without a terminal")
    if not typer.confirm(question, default=False, err=True):
        raise Aborted("aborted")


@app.command("cancel")
@client_command
def cancel_promise(
    options: GlobalOptions,
    promise_id: PromiseId,
    data: DataOption = None,
    data_file: DataFileOption = None,
    header: HeaderOption = None,
    idempotency_key: IdempotencyKeyOption = None,
    strict: StrictOption = False,
    yes: YesOption = False,
) -> None:
    """Cancel a pending promise (destructive: asks for confirmation)."""
    value = _value(data, data_file, header)
    confirm_destructive(f"Cancel promise {promise_id!r}?", yes)
    _complete(options, promise_id, "REJECTED_CANCELED", value, idempotency_key, strict)


@app.command("search")
@client_command
def search_promises(
    options: GlobalOptions,
    pattern: Annotated[
        str, typer.Argument(metavar="PATTERN", help="Id pattern; '*' is a wildcard.")
    ] = "*",
    state: Annotated[
        SearchStateChoice | None,
        typer.Option("--state", case_sensitive=False, help="Only promises in this state."),
    ] = None,
    tag: TagOption = None,
    limit: Annotated[
        int | None,
        typer.Option("--limit", min=1, max=100, metavar="N", help="Page size (at most 100)."),
    ] = None,
    cursor: Annotated[
        str | None, typer.Option("--cursor", metavar="CURSOR", help="Continue a search.")
    ] = None,
    all_pages: Annotated[
        bool, typer.Option("--all", help="Follow cursors and print every match.")
    ] = False,
) -> None:
    """Search promises by id pattern, state and tags (newest first)."""
    tags = _key_values(tag, "--tag")
    search_state: SearchState | None = state.value if state else None
    with options.client() as client:
        if all_pages:
            items = list(client.iter_promises(pattern, search_state, tags, limit, cursor))
            page: dict[str, Any] = {"cursor": None, "promises": items}
        else:
            page = client.search_promises(pattern, search_state, tags, limit, cursor).body
    options.printer().show_page(page, PROMISE_VIEW)
