"""`resonate invoke`: start a function on a worker by creating its root promise (cli.md §9).

`--wait` is ours: it waits for the promise like `promises get --wait` (the one wait of
`resonate.cli.watch`) and prints the function's result.
"""

from __future__ import annotations

import base64
import json
from typing import Annotated, Any

import typer

from resonate.cli.arguments import parse_duration, usage_error
from resonate.cli.options import GlobalOptions, client_command
from resonate.cli.output import PROMISE_VIEW, OutputFormat, now_ms
from resonate.cli.promises import (
    IdempotencyKeyOption,
    PromiseId,
    TagOption,
    key_values,
    show_write_result,
)
from resonate.cli.recv import parse_recv
from resonate.cli.watch import result_text, wait_and_show

DEFAULT_TARGET = "poll://any@default"
INVOKE_TAG = "resonate:invoke"
DELAY_TAG = "resonate:delay"


def _duration(text: str, option: str) -> int:
    try:
        return parse_duration(text)
    except ValueError as error:
        raise usage_error(error, option) from None


def _argument_value(text: str, as_json: bool, option: str) -> Any:
    if not as_json:
        return text
    try:
        return json.loads(text)
    except ValueError as error:
        raise typer.BadParameter(
            f"{text!r} is not JSON ({error})", param_hint=f"'{option}'"
        ) from None


def invocation_data(
    func: str, args: list[Any], kwargs: dict[str, Any], version: int
) -> dict[str, Any]:
    """The param value an SDK worker decodes: base64 of `{"func", "args", "kwargs", "version"}`.

    `kwargs` is always present: Python SDK workers require it.
    """
    document = {"func": func, "args": args, "kwargs": kwargs, "version": version}
    encoded = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return {"data": base64.b64encode(encoded).decode("ascii")}


def _show_result(options: GlobalOptions, promise: dict[str, Any]) -> None:
    """The result: its decoded value in table format (nothing when it failed: the error line
    has it), the completed promise in the other formats."""
    printer = options.printer()
    if options.output is not OutputFormat.table:
        printer.show_object(promise, PROMISE_VIEW)
    elif promise.get("state") == "RESOLVED":
        printer.show_document(promise, result_text(promise.get("value")))


def invoke(
    options: GlobalOptions,
    promise_id: PromiseId,
    func: Annotated[
        str,
        typer.Option(
            "--func", "-f", metavar="NAME", help="Registered function name.", show_default=False
        ),
    ],
    arg: Annotated[
        list[str] | None,
        typer.Option("--arg", metavar="V", help="Positional argument, in order; repeatable."),
    ] = None,
    kwarg: Annotated[
        list[str] | None,
        typer.Option("--kwarg", metavar="K=V", help="Keyword argument; repeatable."),
    ] = None,
    json_args: Annotated[
        bool,
        typer.Option(
            "--json-args", help="Parse every --arg/--kwarg value as JSON (default: strings)."
        ),
    ] = False,
    version: Annotated[
        int, typer.Option("--version", min=1, metavar="N", help="Function version.")
    ] = 1,
    target: Annotated[
        str,
        typer.Option(
            "--target",
            metavar="RECV",
            help='Where the invoke task goes (a recv, or a JSON {"type": …, "data": …}).',
        ),
    ] = DEFAULT_TARGET,
    timeout: Annotated[
        str,
        typer.Option(
            "--timeout", "-t", metavar="DURATION", help="Time the function has, after --delay."
        ),
    ] = "1h",
    delay: Annotated[
        str | None,
        typer.Option(
            "--delay", metavar="DURATION", help="Start the function only after this delay."
        ),
    ] = None,
    tag: TagOption = None,
    idempotency_key: IdempotencyKeyOption = None,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait",
            help="Wait until the function completes and print its result; exit 0 when "
            "RESOLVED, 9 when rejected, canceled or timed out.",
        ),
    ] = False,
    wait_timeout: Annotated[
        str,
        typer.Option(
            "--wait-timeout",
            metavar="DURATION",
            help="How long --wait waits before giving up (exit 10).",
        ),
    ] = "1m",
) -> None:
    """Start a function on a worker by creating its root promise."""
    timeout_ms = _duration(timeout, "--timeout")
    delay_ms = _duration(delay, "--delay") if delay is not None else 0
    wait_ms = _duration(wait_timeout, "--wait-timeout")
    parse_recv(target, "--target")
    args = [_argument_value(value, json_args, "--arg") for value in arg or []]
    kwargs = {
        key: _argument_value(value, json_args, "--kwarg")
        for key, value in key_values(kwarg, "--kwarg").items()
    }
    tags = key_values(tag, "--tag")

    now = now_ms()
    tags[INVOKE_TAG] = target
    if delay is not None:
        tags[DELAY_TAG] = str(now + delay_ms)
    param = invocation_data(func, args, kwargs, version)
    with options.client() as client:
        response = client.create_promise(
            promise_id,
            now + delay_ms + timeout_ms,
            param=param,
            tags=tags,
            idempotency_key=idempotency_key,
        )
        if not wait:
            show_write_result(options, response, "created", "PENDING")
            return
        options.printer().note("created" if response.created else "deduplicated")
        wait_and_show(
            options,
            client,
            promise_id,
            wait_ms,
            wait_timeout,
            lambda promise: _show_result(options, promise),
        )


invoke_command = client_command(invoke)
