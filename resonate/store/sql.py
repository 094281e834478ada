"""Named SQL statements kept in one ``.sql`` file per dialect.

A file holds blocks introduced by ``-- name: <statement_name>``; everything up to the next
such line is the statement.
"""

from __future__ import annotations

from importlib import resources


def load_statements(package: str, filename: str = "queries.sql") -> dict[str, str]:
    text = resources.files(package).joinpath(filename).read_text(encoding="utf-8")
    statements: dict[str, str] = {}
    name: str | None = None
    lines: list[str] = []
    for line in text.splitlines():
        if line.startswith("-- name:"):
            if name:
                statements[name] = "\n".join(lines).strip()
            name, lines = line.removeprefix("-- name:").strip(), []
        elif name is not None:
            lines.append(line)
    if name:
        statements[name] = "\n".join(lines).strip()
    return statements
