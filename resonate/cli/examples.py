"""Example invocations per command: the one source for `--help` epilogs and man page EXAMPLES.

Keys are command paths as typed (`"resonate promises get"`); values are shell lines, each a
real invocation of that command (a line ending in ` \\` continues on the next). The tests check
that every command has examples, that every example starts with its command path and that every
option it uses exists on that command, so a renamed option cannot leave a stale example behind.

`attach_examples` writes them into the Typer app's registrations as epilogs; it is called once
by `resonate.cli.main` after every command is registered. Importing this module is free.
"""

from __future__ import annotations

import typer
from typer.main import get_command_name
from typer.models import DefaultPlaceholder

PROGRAM = "resonate"
EPILOG_TITLE = "Examples:"

EXAMPLES: dict[str, tuple[str, ...]] = {
    "resonate": (
        "resonate dev",
        "resonate -S https://resonate.internal promises get order/42",
    ),
    "resonate serve": (
        "resonate serve --config resonate.yml",
        "resonate serve --api-http-addr 127.0.0.1:8001 --log-level debug",
    ),
    "resonate dev": ("resonate dev --api-http-addr 127.0.0.1:8001 --log-format json",),
    "resonate invoke": (
        "resonate invoke sum/1 -f add --arg 1 --arg 2 --json-args --wait",
        "resonate invoke order/8 --func process_order --target poll://any@workflows",
    ),
    "resonate tree": (
        "resonate tree order/7",
        "resonate tree order/7 --depth 2 -o json",
    ),
    "resonate tui": (
        "resonate tui",
        'resonate tui -S https://resonate.internal:8001 -T "$TOKEN" --read-only',
    ),
    "resonate doctor": (
        "resonate doctor",
        "resonate doctor -S https://resonate.internal:8001 -o json --min-counter 10",
    ),
    "resonate version": ("resonate version -o json",),
    "resonate man": (
        "resonate man promises get",
        "resonate man serve > resonate-serve.1",
    ),
    "resonate db": ("resonate db backup /backups/resonate.db --config resonate.yml",),
    "resonate db backup": (
        "resonate db backup /backups/resonate.db --config resonate.yml",
        "resonate db backup backup.db --aio-store-sqlite-path resonate.db --force",
    ),
    "resonate db vacuum": ("resonate db vacuum --config resonate.yml",),
    "resonate migrate": ("resonate migrate status --config resonate.yml",),
    "resonate migrate status": ("resonate migrate status --config resonate.yml",),
    "resonate migrate dry-run": ("resonate migrate dry-run --config resonate.yml > pending.sql",),
    "resonate migrate up": ("resonate migrate up --config resonate.yml",),
    "resonate config": ("resonate config show --sources",),
    "resonate config show": (
        "resonate config show --sources",
        "resonate config show --config resonate.yml -o json",
    ),
    "resonate promises": ("resonate promises search 'orders/*' --state pending",),
    "resonate promises get": (
        "resonate promises get order/42 -o json",
        "resonate promises get order/7 --wait --timeout 10m",
    ),
    "resonate promises create": (
        "resonate promises create job/7 --timeout 1h --data 'hello' -k job-7",
    ),
    "resonate promises resolve": ("resonate promises resolve job/7 --data '{\"ok\": true}'",),
    "resonate promises reject": ("resonate promises reject job/7 --data 'out of stock'",),
    "resonate promises cancel": ("resonate promises cancel job/7 --yes",),
    "resonate promises search": (
        "resonate promises search 'orders/*' --state pending --tag env=prod",
        "resonate promises search --tag env=prod --all -o jsonl > prod.jsonl",
        "resonate promises search 'order-*' --state pending --watch -o jsonl",
    ),
    "resonate promises purge": (
        "resonate promises purge --older-than 30d --dry-run",
        "resonate promises purge --older-than 7d --state rejected_timedout \\",
        "    --id 'batch/*' --tag env=test --batch-size 500 --yes -o json",
    ),
    "resonate promises callback": (
        "resonate promises callback order/7.2 -r order/7 -t 1h \\",
        "    --recv poll://any@workflows",
    ),
    "resonate promises subscribe": (
        "resonate promises subscribe order/7 -i dashboard -t 10m \\",
        "    --recv http://hooks.internal/done",
    ),
    "resonate schedules": ("resonate schedules search --tag team=ops -o id",),
    "resonate schedules create": (
        "resonate schedules create nightly-report --cron '0 2 * * *' \\",
        "    --promise-id 'report.{{.timestamp}}' --promise-timeout 1h \\",
        "    --promise-tag resonate:invoke=poll://any@default",
    ),
    "resonate schedules get": ("resonate schedules get nightly-report",),
    "resonate schedules search": ("resonate schedules search --tag team=ops -o id",),
    "resonate schedules delete": ("resonate schedules delete nightly-report --yes",),
    "resonate tasks": ("resonate tasks search --root-promise-id order/7",),
    "resonate tasks get": ("resonate tasks get __invoke:order/7",),
    "resonate tasks search": (
        "resonate tasks search --state claimed --process-id ops",
        "resonate tasks search --state claimed --watch",
        "resonate tasks search --root-promise-id order/7",
    ),
    "resonate tasks claim": (
        "resonate tasks claim __invoke:order/7 -c 1 --process-id ops --ttl 5m -o json",
    ),
    "resonate tasks complete": ("resonate tasks complete __invoke:order/7 -c 1",),
    "resonate tasks drop": ("resonate tasks drop __invoke:order/7 -c 1 --yes",),
    "resonate tasks heartbeat": ("resonate tasks heartbeat --process-id ops",),
    "resonate locks": ("resonate locks search 'orders/*'",),
    "resonate locks get": (
        "resonate locks get orders/7",
        "resonate locks get orders/7 --watch -n 0.5",
    ),
    "resonate locks search": ("resonate locks search 'orders/*' --process-id ops",),
    "resonate locks acquire": (
        "resonate locks acquire orders/7 --execution-id ops-1 --process-id ops \\",
        "    --ttl 5m",
    ),
    "resonate locks release": ("resonate locks release orders/7 --execution-id ops-1 --yes",),
    "resonate locks heartbeat": ("resonate locks heartbeat --process-id ops",),
}


def examples_for(path: str) -> tuple[str, ...]:
    """The example lines of the command at `path` (`"resonate promises get"`); () when none."""
    return EXAMPLES.get(path, ())


def epilog_for(path: str) -> str | None:
    """The `--help` epilog of the command at `path`: a title and its example lines."""
    lines = examples_for(path)
    if not lines:
        return None
    return "\n".join([EPILOG_TITLE, *(f"  {line}" for line in lines)])


def attach_examples(app: typer.Typer, path: str = PROGRAM) -> None:
    """Give `app` and every command registered under it the epilog of its EXAMPLES.

    It walks Typer's registrations rather than click commands because Typer builds the click
    tree afresh on every run. An epilog given explicitly at registration is kept.
    """
    if isinstance(app.info.epilog, DefaultPlaceholder):
        app.info.epilog = epilog_for(path)
    for command in app.registered_commands:
        name = command.name or get_command_name(getattr(command.callback, "__name__", ""))
        if command.epilog is None:
            command.epilog = epilog_for(f"{path} {name}")
    for group in app.registered_groups:
        sub_app = group.typer_instance
        group_name: object = group.name
        if isinstance(group_name, DefaultPlaceholder) or group_name is None:
            group_name = None if sub_app is None else sub_app.info.name
        if sub_app is not None and isinstance(group_name, str):
            attach_examples(sub_app, f"{path} {group_name}")
