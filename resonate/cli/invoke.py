"""`resonate invoke`: start a function on a worker by creating its root promise (cli.md §9).

`--wait` is ours: it polls the promise until it completes and prints the function's result.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer

from resonate.cli.arguments import parse_duration, usage_error
from resonate.cli.errors import CliError
from resonate.cli.options import GlobalOptions, client_command
from resonate.cli.output import PROMISE_VIEW, OutputFormat, now_ms
from resonate.cli.promises import (
    IdempotencyKeyOption,
    PromiseId,
    TagOption,
    key_values,
    parse_recv,
    show_write_result,
)

if TYPE_CHECKING:
    from resonate.client import ResonateClient

DEFAULT_TARGET = "poll://any@default"
INVOKE_TAG = "resonate:invoke"
DELAY_TAG = "resonate:delay"

# Polling of `--wait`: start fast, so short functions answer quickly, then back off.
FIRST_POLL_INTERVAL_SECONDS = 0.05
MAX_POLL_INTERVAL_SECONDS = 1.0


class InvocationFailed(CliError):
    """The invoked function's promise ended in a state other than RESOLVED."""


class WaitTimedOut(CliError):
    """`--wait-timeout` passed while the promise was still pending."""


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


def wait_for_completion(
    client: ResonateClient,
    promise_id: str,
    timeout_seconds: float,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Read the promise until it is no longer PENDING or `timeout_seconds` have passed; the
    last promise read.

    A read times an overdue promise out on the server (http-api.md §2.2), so a function that
    never answers still ends, at the latest, at its promise's timeout.
    """
    deadline = clock() + timeout_seconds
    interval = FIRST_POLL_INTERVAL_SECONDS
    while True:
        promise: dict[str, Any] = client.get_promise(promise_id).body
        remaining = deadline - clock()
        if promise.get("state") != "PENDING" or remaining <= 0:
            return promise
        sleep(min(interval, remaining))
        interval = min(interval * 2, MAX_POLL_INTERVAL_SECONDS)


def result_text(value: dict[str, Any] | None) -> str:
    """A completed promise's value for humans: its data as text (SDKs store JSON), else base64."""
    from resonate.client import decode_value_text

    if not value or not value.get("data"):
        return ""
    text = decode_value_text(value)
    return text if text is not None else str(value["data"])


def _show_result(options: GlobalOptions, promise: dict[str, Any]) -> None:
    """The result: its decoded value in table format, the completed promise in the others."""
    printer = options.printer()
    state = promise.get("state")
    if options.output is OutputFormat.table:
        if state == "RESOLVED":
            printer.show_document(promise, result_text(promise.get("value")))
    else:
        printer.show_object(promise, PROMISE_VIEW)
    if state != "RESOLVED":
        reason = result_text(promise.get("value"))
        detail = f": {reason}" if reason else ""
        raise InvocationFailed(f"promise {promise.get('id')!r} is {state}{detail}")


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
        typer.Option("--wait", help="Wait until the function completes and print its result."),
    ] = False,
    wait_timeout: Annotated[
        str,
        typer.Option(
            "--wait-timeout", metavar="DURATION", help="How long --wait waits before giving up."
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
        promise = wait_for_completion(client, promise_id, wait_ms / 1000)
    if promise.get("state") == "PENDING":
        raise WaitTimedOut(
            f"promise {promise_id!r} is still PENDING after {wait_timeout}; the invocation goes "
            f"on (see: resonate promises get {promise_id})"
        )
    _show_result(options, promise)


invoke_command = client_command(invoke)
