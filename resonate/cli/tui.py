"""`resonate tui`: start the live dashboard (resonate.tui), imported only when it runs."""

from __future__ import annotations

from typing import Annotated

import typer

from resonate.cli.arguments import parse_duration, usage_error
from resonate.cli.options import GlobalOptions, client_command


def tui(
    options: GlobalOptions,
    refresh: Annotated[
        str,
        typer.Option(
            "--refresh",
            "-r",
            metavar="DUR",
            envvar="RESONATE_TUI_REFRESH",
            help="Live refresh interval (250ms, 2s, 1m); + and - change it while running.",
        ),
    ] = "2s",
    metrics_url: Annotated[
        str | None,
        typer.Option(
            "--metrics-url",
            metavar="URL",
            envvar="RESONATE_METRICS_URL",
            help="Prometheus endpoint (default: the server's host, port 9090, /metrics).",
            show_default=False,
        ),
    ] = None,
    read_only: Annotated[
        bool,
        typer.Option(
            "--read-only",
            envvar="RESONATE_TUI_READ_ONLY",
            help="Hide and refuse every write (resolve, reject, cancel, drop, delete, release).",
        ),
    ] = False,
) -> None:
    """Live dashboard: overview, promises, tasks, schedules and locks (press ? inside)."""
    try:
        refresh_ms = parse_duration(refresh)
    except ValueError as error:
        raise usage_error(error, "--refresh") from None
    if refresh_ms < 250:
        raise typer.BadParameter("must be at least 250ms", param_hint="'--refresh'")
    if metrics_url is not None and not metrics_url.startswith(("http://", "https://")):
        raise typer.BadParameter(
            f"{metrics_url!r} is not an http:// or https:// URL", param_hint="'--metrics-url'"
        )
    options.client().close()  # validates --server and the credentials (exit 2 when wrong)
    from resonate.tui import run

    run(
        options.server,
        token=options.token,
        username=options.username,
        password=options.password,
        metrics_url=metrics_url,
        refresh_seconds=refresh_ms / 1000,
        read_only=read_only,
    )


tui_command = client_command(tui)
