"""`resonate doctor`: ask the server what is wrong (GET /doctor) and print each finding with its
severity and a suggested action; exit 0 when nothing is, 1 otherwise (docs/cli.md)."""

from __future__ import annotations

import re
import sys
from typing import Annotated, Any

import typer

from resonate.cli.arguments import parse_duration, usage_error
from resonate.cli.options import GlobalOptions, client_command
from resonate.cli.output import OutputFormat, color_enabled, write_line

SEVERITY_COLORS = {"error": "red", "warning": "yellow", "info": "blue"}
LABEL_WIDTH = len("warning")
NO_PROBLEMS = "no problems found"

_SIZE = re.compile(r"(\d+)\s*([kmgt]?)(i?b?)", re.IGNORECASE)
_SIZE_UNITS = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4}


def parse_size(text: str) -> int:
    """Bytes in `1073741824`, `500M`, `2G`, `1GiB` or `10GB` (binary units: 1K = 1024)."""
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"invalid size {text!r} (examples: 500M, 2G, 1GiB, 1073741824)")
    return int(match.group(1)) << (10 * _SIZE_UNITS[match.group(2).lower()])


def doctor_params(
    limit: int | None,
    overdue_after: str | None,
    lease_within: str | None,
    min_counter: int | None,
    loop_stalled_after: str | None,
    slow_batch: str | None,
    min_disk_free: str | None,
) -> tuple[tuple[str, str], ...]:
    """The query of GET /doctor: only what was given (the server has the defaults)."""
    given: list[tuple[str, str]] = []
    if limit is not None:
        given.append(("limit", str(limit)))
    for name, option, text in (
        ("overdueAfter", "--overdue-after", overdue_after),
        ("leaseWithin", "--lease-within", lease_within),
        ("loopStalledAfter", "--loop-stalled-after", loop_stalled_after),
        ("slowBatchMs", "--slow-batch", slow_batch),
    ):
        if text is not None:
            try:
                given.append((name, str(parse_duration(text))))
            except ValueError as error:
                raise usage_error(error, option) from None
    if min_counter is not None:
        given.append(("minCounter", str(min_counter)))
    if min_disk_free is not None:
        try:
            given.append(("minDiskFree", str(parse_size(min_disk_free))))
        except ValueError as error:
            raise usage_error(error, "--min-disk-free") from None
    return tuple(given)


def doctor(
    options: GlobalOptions,
    limit: Annotated[
        int | None,
        typer.Option(
            "--limit", min=1, max=100, metavar="N", help="Most findings of each check (20)."
        ),
    ] = None,
    overdue_after: Annotated[
        str | None,
        typer.Option(
            "--overdue-after",
            metavar="DURATION",
            help="Report promises this far past their timeout, schedules past their run (10s).",
            show_default=False,
        ),
    ] = None,
    lease_within: Annotated[
        str | None,
        typer.Option(
            "--lease-within",
            metavar="DURATION",
            help="Report claimed or acquired tasks whose lease ends this soon, a quarter of it "
            "left (10s).",
            show_default=False,
        ),
    ] = None,
    min_counter: Annotated[
        int | None,
        typer.Option(
            "--min-counter", min=0, metavar="N", help="Report tasks issued this many times (5)."
        ),
    ] = None,
    loop_stalled_after: Annotated[
        str | None,
        typer.Option(
            "--loop-stalled-after",
            metavar="DURATION",
            help="A background loop without a successful pass this long is stalled (1m).",
            show_default=False,
        ),
    ] = None,
    slow_batch: Annotated[
        str | None,
        typer.Option(
            "--slow-batch",
            metavar="DURATION",
            help="Store transactions slower than this at the p99 are too slow (100ms).",
            show_default=False,
        ),
    ] = None,
    min_disk_free: Annotated[
        str | None,
        typer.Option(
            "--min-disk-free",
            metavar="SIZE",
            help="Less free space than this by the SQLite file is too little (1G).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Check the server: stuck work, background loops, worker groups and the store; exit 1
    when anything is wrong."""
    params = doctor_params(
        limit,
        overdue_after,
        lease_within,
        min_counter,
        loop_stalled_after,
        slow_batch,
        min_disk_free,
    )
    from resonate.client import doctor_report, get_doctor_request

    with options.client() as client:
        body = doctor_report(client.send(get_doctor_request(params)).body)
    output = options.output
    if output is OutputFormat.table:
        print_report(body, color_enabled(options.no_color, sys.stdout))
    elif output is OutputFormat.id:
        for finding in body["findings"]:
            if finding.get("id") is not None:
                write_line(str(finding["id"]))
    else:
        options.printer().show_document(body, "")
    raise typer.Exit(0 if body["ok"] else 1)


def finding_lines(finding: dict[str, Any], color: bool) -> list[str]:
    """A finding as two lines: severity, check, subject and message; then the action."""
    severity = str(finding["severity"])
    label = severity.ljust(LABEL_WIDTH)
    if color:
        label = typer.style(label, fg=SEVERITY_COLORS.get(severity), bold=severity == "error")
    subject = f" {finding['id']}" if finding.get("id") is not None else ""
    indent = " " * (LABEL_WIDTH + 1)
    return [
        f"{label} {finding['check']}{subject}: {finding['message']}",
        f"{indent}-> {finding['action']}",
    ]


def print_report(body: dict[str, Any], color: bool) -> None:
    for finding in body["findings"]:
        for line in finding_lines(finding, color):
            write_line(line)
    if body["ok"]:
        write_line(NO_PROBLEMS)
    groups = body.get("groups") or []
    if groups:
        write_line("")
        rows = [("GROUP", "CONNECTIONS", "UNDELIVERED")] + [
            (str(g["group"]), str(g["connections"]), str(g["undelivered"])) for g in groups
        ]
        widths = [max(len(row[column]) for row in rows) for column in range(3)]
        for number, row in enumerate(rows):
            line = "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
            line = line.rstrip()
            if number == 0 and color:
                line = typer.style(line, bold=True)
            write_line(line)


doctor_command = client_command(doctor)
