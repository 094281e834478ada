"""Numbered SQL migrations shipped inside the package (http-api.md §15)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

from resonate.store.base import MigrationError

_NAME = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations(package: str) -> list[Migration]:
    """The migrations in ``<package>/migrations``, ordered, checked to be 1, 2, 3, …"""
    folder = resources.files(package).joinpath("migrations")
    found = []
    for entry in folder.iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    for expected, migration in enumerate(found, start=1):
        if migration.version != expected:
            raise MigrationError(f"migration files are not consecutive at version {expected}")
    return found


def pending_after(migrations: list[Migration], current: int) -> list[Migration]:
    return [m for m in migrations if m.version > current]


def pending_message(current: int, latest: int) -> str:
    if current > latest:
        return (
            f"database schema is at version {current}, newer than the latest this server "
            f"knows ({latest}); upgrade resonate"
        )
    return (
        f"pending migrations (database at version {current}, latest {latest}); "
        f'run "resonate migrate up"'
    )
