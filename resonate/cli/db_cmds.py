"""`resonate db backup` and `resonate db vacuum`: housekeeping of a SQLite store.

Both take the store options of `serve` and `migrate` (`--config`, `--aio-store-sqlite-path`,
the environment, `resonate.yml`), resolved by the server's configuration parser. Imported
lazily by the CLI so that `resonate --help` never loads sqlite3 or the configuration machinery.

Exit codes (docs/cli.md, "resonate db"): 0 success; 1 the database cannot be read, the backup
cannot be written, PATH exists (without --force), or `vacuum` finds the database in use; 2 a
usage or configuration error, including a store that is not a SQLite file (PostgreSQL:
pg_dump).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from resonate.server.config import Config, ConfigError, resolve_config
from resonate.server.config.values import human_size

# Pages copied per step of the backup (4 KiB pages: 16 MiB a step), between two progress lines.
BACKUP_STEP_PAGES = 4096
# Progress on stderr only for a backup this large or larger, at most once a second.
PROGRESS_MIN_PAGES = 25_000
PROGRESS_INTERVAL = 1.0
# How long `vacuum` waits for the database to be free before it reports it in use.
VACUUM_BUSY_TIMEOUT = 0.2

BACKUP_USAGE = "usage: resonate db backup PATH [--force] [--config PATH] [store flags]"
POSTGRES_MESSAGE = (
    "resonate db {command} works on SQLite stores only; back up PostgreSQL with pg_dump "
    '(docs/operations.md, "Backups")'
)


class DbError(Exception):
    """A failure with its exit code, reported as one `error: …` line."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _fail(error: DbError) -> int:
    print(f"error: {error}", file=sys.stderr)
    return error.exit_code


# --- arguments ----------------------------------------------------------------------------------


def split_positionals(args: Sequence[str]) -> tuple[list[str], list[str]]:
    """The positional arguments, and the rest for the configuration parser: a flag that takes
    a value (`--config`, `-c`, a non-bool option) keeps the argument after it."""
    from resonate.server.config.options import (
        CONFIG_FLAG,
        CONFIG_SHORT_FLAG,
        OPTIONS_BY_FLAG,
        OptionType,
    )

    positionals: list[str] = []
    rest: list[str] = []
    index = 0
    while index < len(args):
        argument = args[index]
        index += 1
        if argument == "--":
            positionals.extend(args[index:])
            break
        if argument == "-" or not argument.startswith("-"):
            positionals.append(argument)
            continue
        rest.append(argument)
        name, equals, _ = argument.partition("=")
        option = OPTIONS_BY_FLAG.get(name)
        takes_value = name in (CONFIG_FLAG, CONFIG_SHORT_FLAG) or (
            option is not None and option.type is not OptionType.BOOL
        )
        if takes_value and not equals and index < len(args):
            rest.append(args[index])
            index += 1
    return positionals, rest


def _sqlite_file(args: Sequence[str], command: str) -> Path:
    """The store's SQLite file, which must exist; DbError(exit 2) for another store."""
    try:
        resolved = resolve_config(list(args), os.environ, Path.cwd())
    except ConfigError as error:
        raise DbError(str(error), 2) from error
    config: Config = resolved.config
    if config.store_kind != "sqlite":
        raise DbError(POSTGRES_MESSAGE.format(command=command), 2)
    path = str(config["aio.store.sqlite.path"])
    if not path or path == ":memory:":
        raise DbError(
            f"the store is in memory ({path or 'no path'}); there is no file to {command}", 2
        )
    file = Path(path).expanduser()
    if not file.is_file():
        raise DbError(f"no SQLite database at {file}")
    return file


def _open(file: Path, *, timeout: float) -> sqlite3.Connection:
    """An existing database, never created (mode=rw), in autocommit mode."""
    uri = "file:" + _uri_path(file) + "?mode=rw"
    return sqlite3.connect(uri, uri=True, isolation_level=None, timeout=timeout)


def _uri_path(file: Path) -> str:
    from urllib.parse import quote

    return quote(str(file.resolve()), safe="/")


# --- backup -------------------------------------------------------------------------------------


def run_backup(args: list[str], *, force: bool) -> int:
    try:
        positionals, rest = split_positionals(args)
        if len(positionals) != 1:
            what = "missing PATH" if not positionals else f"unexpected argument {positionals[1]!r}"
            raise DbError(f"{what}; {BACKUP_USAGE}", 2)
        source = _sqlite_file(rest, "backup")
        target = Path(positionals[0]).expanduser()
        pages, seconds = backup(source, target, force=force)
    except DbError as error:
        return _fail(error)
    size = human_size(target.stat().st_size)
    print(f"backed up {source} to {target}: {size}, {pages} pages, {seconds:.2f} s")
    return 0


def backup(source: Path, target: Path, *, force: bool = False) -> tuple[int, float]:
    """Copy `source` to `target` with SQLite's online backup API; (pages, seconds).

    The copy is the snapshot of the database when the backup starts: the source connection
    holds one read transaction across every step, so the server's writes meanwhile (WAL mode:
    readers never block the writer) neither end up in the copy nor make it restart. It is
    written to a temporary file next to `target`, renamed to `target` only when complete.
    """
    if target.is_dir():
        raise DbError(f"{target} is a directory; give the path of the backup file")
    if target.exists() and not force:
        raise DbError(f"{target} exists; pass --force to overwrite it")
    if target.resolve() == source.resolve():
        raise DbError(f"{target} is the database itself")
    if not target.parent.is_dir():
        raise DbError(f"no directory {target.parent}")
    started = time.monotonic()
    try:
        source_conn = _open(source, timeout=5.0)
    except sqlite3.Error as error:
        raise DbError(f"cannot open {source}: {error}") from error
    fd, temporary_name = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=".tmp", dir=target.parent
    )
    os.close(fd)
    temporary = Path(temporary_name)
    try:
        try:
            source_conn.execute("BEGIN")
            # The read transaction starts at the first read: from here on the copy is fixed.
            source_conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            target_conn = sqlite3.connect(temporary, isolation_level=None)
            try:
                progress = _Progress()
                source_conn.backup(target_conn, pages=BACKUP_STEP_PAGES, progress=progress)
                # One self-contained file: no -wal/-shm needed to read or restore it.
                target_conn.execute("PRAGMA journal_mode=DELETE")
                pages = int(target_conn.execute("PRAGMA page_count").fetchone()[0])
            finally:
                target_conn.close()
            source_conn.execute("COMMIT")
        except sqlite3.Error as error:
            raise DbError(f"backup of {source} failed: {error}") from error
        finally:
            source_conn.close()
        try:
            with temporary.open("rb+") as handle:
                os.fsync(handle.fileno())
            if force:
                os.replace(temporary, target)
            else:
                # link + unlink: fails instead of overwriting a PATH created meanwhile.
                os.link(temporary, target)
                temporary.unlink()
        except FileExistsError as error:
            raise DbError(f"{target} exists; pass --force to overwrite it") from error
        except OSError as error:
            raise DbError(f"cannot write {target}: {error.strerror or error}") from error
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
    return pages, time.monotonic() - started


class _Progress:
    """The backup's progress callback: a line on stderr now and then, for big databases."""

    def __init__(self) -> None:
        self.last = time.monotonic()

    def __call__(self, status: int, remaining: int, total: int) -> None:
        now = time.monotonic()
        if total < PROGRESS_MIN_PAGES or remaining == 0 or now - self.last < PROGRESS_INTERVAL:
            return
        self.last = now
        done = total - remaining
        print(f"backup: {done}/{total} pages ({100 * done // total}%)", file=sys.stderr, flush=True)


# --- vacuum -------------------------------------------------------------------------------------


def run_vacuum(args: list[str]) -> int:
    try:
        positionals, rest = split_positionals(args)
        if positionals:
            raise DbError(
                f"unexpected argument {positionals[0]!r}; "
                "usage: resonate db vacuum [--config PATH] [store flags]",
                2,
            )
        file = _sqlite_file(rest, "vacuum")
        before, after, seconds = vacuum(file)
    except DbError as error:
        return _fail(error)
    print(f"vacuumed {file}: {human_size(before)} -> {human_size(after)}, {seconds:.2f} s")
    return 0


def vacuum(file: Path) -> tuple[int, int, float]:
    """VACUUM the database when no other connection has it open; (bytes before, after, s).

    A server keeps its connections open, and in WAL mode every open connection holds a shared
    lock on the database file: taking the exclusive lock (locking_mode=EXCLUSIVE) fails at
    once then, and the database is left alone. Holding that lock, no server can start
    meanwhile either.
    """
    started = time.monotonic()
    before = _footprint(file)
    try:
        conn = _open(file, timeout=VACUUM_BUSY_TIMEOUT)
    except sqlite3.Error as error:
        raise DbError(f"cannot open {file}: {error}") from error
    try:
        try:
            conn.execute("PRAGMA locking_mode=EXCLUSIVE")
            conn.execute("BEGIN EXCLUSIVE")
            conn.execute("COMMIT")
        except sqlite3.OperationalError as error:
            if "locked" in str(error) or "busy" in str(error):
                raise DbError(
                    f"{file} is in use (a running server?); stop it and run vacuum again"
                ) from error
            raise DbError(f"cannot lock {file}: {error}") from error
        try:
            conn.execute("VACUUM")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as error:
            raise DbError(f"vacuum of {file} failed: {error}") from error
    finally:
        conn.close()
    return before, _footprint(file), time.monotonic() - started


def _footprint(file: Path) -> int:
    """The bytes the database takes: the file and its -wal."""
    total = 0
    for path in (file, file.with_name(file.name + "-wal")):
        with contextlib.suppress(FileNotFoundError):
            total += path.stat().st_size
    return total
