"""`resonate serve`, `resonate dev` and `resonate migrate`: the server-side commands.

Imported lazily by the CLI so that `resonate --help` never loads the server or store drivers.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from resonate.server.config import Config, ConfigError, ResolvedConfig, resolve_config

if TYPE_CHECKING:
    from resonate.store.base import SchemaStatus
    from resonate.store.migrations import Migration

DEV_BANNER = (
    "resonate dev: in-memory store (SQLite :memory:). All data is lost when this process exits."
)
log = logging.getLogger("resonate")


def _resolve(args: list[str], *, dev: bool = False) -> ResolvedConfig | None:
    try:
        resolved = resolve_config(args, os.environ, Path.cwd(), dev=dev)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return None
    return resolved


def _describe_store(config: Config) -> str:
    """The store for logs and `migrate status`: the SQLite path, or PostgreSQL host, port,
    database and user; never the password (nor the rest of a URL)."""
    if config.store_kind == "postgres":
        if config["aio.store.postgres.url"]:
            from resonate.store.postgres.connection import describe_url

            return f"postgres {describe_url(config['aio.store.postgres.url'])}"
        return (
            f"postgres host={config['aio.store.postgres.host']} "
            f"port={config['aio.store.postgres.port']} "
            f"database={config['aio.store.postgres.database']} "
            f"user={config['aio.store.postgres.username'] or '(default)'}"
        )
    return f"sqlite path={config['aio.store.sqlite.path']}"


def _describe_auth(config: Config) -> str:
    """Which auth modes are on, never a credential: user counts, key algorithms, claims."""
    modes = []
    users = config["api.http.auth"]
    if users:
        modes.append(f"basic ({len(users)} user{'s' if len(users) != 1 else ''})")
    if config["api.auth.publicKey"]:
        checks = [
            f"{claim} checked"
            for claim, key in (("iss", "api.auth.issuer"), ("aud", "api.auth.audience"))
            if config[key]
        ]
        modes.append("jwt bearer" + (f" ({', '.join(checks)})" if checks else ""))
    return ", ".join(modes) or "off (every request is allowed)"


def _describe_poll_auth(config: Config) -> str:
    users = config["aio.poll.auth"]
    modes = [f"basic ({len(users)} user{'s' if len(users) != 1 else ''})"] if users else []
    if config["api.auth.publicKey"]:
        modes.append("jwt bearer")
    return ", ".join(modes) or "off (every stream is allowed)"


def run_serve(args: list[str], dev: bool) -> int:
    if dev:
        print(DEV_BANNER, file=sys.stderr, flush=True)
    resolved = _resolve(args, dev=dev)
    if resolved is None:
        return 2
    from resonate.server.logs import configure_logging

    config = resolved.config
    from resonate.server.app import load_jwt_verifier

    try:
        load_jwt_verifier(config)  # a bad key is a configuration error (exit 2), in one line
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    configure_logging(config["logLevel"], config["logFormat"])
    for warning in resolved.warnings:
        log.warning("%s", warning)
    with asyncio.Runner(loop_factory=event_loop_factory(config["uvloop"])) as runner:
        return runner.run(_serve(resolved, debug=dev))


def event_loop_factory(use_uvloop: bool) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The event loop ``resonate serve`` runs on (the ``uvloop`` option), as a factory for
    ``asyncio.Runner``: uvloop's when asked for and importable (a dependency on CPython off
    Windows), else None, asyncio's own."""
    if use_uvloop:
        try:
            import uvloop
        except ImportError:
            return None
        return uvloop.new_event_loop
    return None


def describe_event_loop(loop: asyncio.AbstractEventLoop) -> str:
    """The running loop, for the banner: ``uvloop <version>`` or ``asyncio``."""
    package = type(loop).__module__.partition(".")[0]
    if package == "uvloop":
        version = getattr(sys.modules["uvloop"], "__version__", "")
        return f"uvloop {version}".strip()
    return package


async def _serve(resolved: ResolvedConfig, *, debug: bool = False) -> int:
    from resonate import __version__
    from resonate.server.app import Server, serve_until_signalled
    from resonate.store.base import MigrationError, StoreUnavailable

    config = resolved.config
    # The banner (docs/configuration.md, "Logs"): version, config file, store, listeners, auth.
    log.info("resonate %s (python %s)", __version__, sys.version.split()[0])
    log.info("config file: %s", resolved.file or "none")
    log.info("store: %s", _describe_store(config))
    log.info("event loop: %s", describe_event_loop(asyncio.get_running_loop()))
    server = Server(config, debug=debug)
    try:
        await server.start()
    except (MigrationError, StoreUnavailable) as error:
        log.error("%s", error)
        await server.stop()
        return 1
    except OSError as error:
        log.error("cannot listen: %s", error)
        await server.stop()
        return 1
    # Everything built so far (modules, the app, the config) lives as long as the process:
    # moved out of the collector's generations, a full collection no longer walks it. Those
    # walks were ~25 ms pauses of the event loop under load (pair p99 43 -> 21 ms,
    # docs/performance.md).
    gc.collect()
    gc.freeze()
    log.info("api listening on %s:%s", *(server.api_address or ("?", "?")))
    if server.grpc_address is not None:
        log.info("grpc listening on %s:%s", *server.grpc_address)
    if server.poll_address:
        log.info("poll listening on %s:%s", *server.poll_address)
    if server.metrics_address:
        log.info("metrics listening on %s:%s", *server.metrics_address)
    log.info("system.url: %s", server.context.base_url if server.context else config.system_url())
    log.info("api auth: %s", _describe_auth(config))
    if server.poll_address:
        log.info("poll auth: %s", _describe_poll_auth(config))
    return await serve_until_signalled(server)


def run_migrate(action: str, args: list[str]) -> int:
    resolved = _resolve(args)
    if resolved is None:
        return 2
    return asyncio.run(_migrate(action, resolved.config))


# `status` and `dry-run` only read: they must not leave a database behind where there was none.
READ_ONLY_ACTIONS = ("status", "dry-run")


def _missing_sqlite_file(config: Config) -> Path | None:
    """The configured SQLite file when it does not exist (opening it would create it)."""
    if config.store_kind != "sqlite":
        return None
    path = str(config["aio.store.sqlite.path"])
    if path == ":memory:" or not path:
        return None
    file = Path(path).expanduser()
    return None if file.exists() else file


async def _migrate(action: str, config: Config) -> int:
    from resonate.server.app import open_store
    from resonate.store.base import MigrationError, SchemaStatus, StoreUnavailable

    if action not in (*READ_ONLY_ACTIONS, "up"):
        print(f"error: unknown migrate action {action!r}", file=sys.stderr)
        return 2
    store = open_store(config)
    missing = _missing_sqlite_file(config) if action in READ_ONLY_ACTIONS else None
    if missing is not None:
        # Constructing the store touches no file; report a database at version 0.
        print(f"note: {missing} does not exist; nothing was created", file=sys.stderr)
        status = SchemaStatus(0, len(store.migrations))
        _report(action, config, status, store.pending_migrations(0))
        return 0
    try:
        await store.open(migrate_fresh=False)
        status = await store.schema_status()
        if action == "up":
            applied = await store.migrate_up()
            for migration in applied:
                print(f"applied {migration.version:03d}_{migration.name}.sql")
            if not applied:
                print("no pending migrations")
            await _backfill_tag_index(store)
        else:
            _report(action, config, status, store.pending_migrations(status.current))
    except (MigrationError, StoreUnavailable) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    finally:
        await store.close()
    return 0


async def _backfill_tag_index(store: object) -> None:
    """After `migrate up` on SQLite: index the tags of the promises stored before migration
    007, in batches, with a line of progress now and then (the server would otherwise do it
    in the background at its next start)."""
    from resonate.store.sqlite.store import SqliteStore

    if not isinstance(store, SqliteStore):
        return
    started = time.monotonic()
    last = [started]
    batches = [0]

    def progress(left: int) -> None:
        batches[0] += 1
        now = time.monotonic()
        if left and now - last[0] >= 2:
            last[0] = now
            print(f"indexing promise tags: {left} sort ids left", flush=True)

    if not await store.tags_backfill_pending():
        return
    await store.backfill_tags(on_batch=progress)
    print(f"indexed promise tags in {time.monotonic() - started:.1f} s")


def _report(action: str, config: Config, status: SchemaStatus, pending: list[Migration]) -> None:
    """What `migrate status` and `migrate dry-run` print."""
    if action == "status":
        print(f"store: {_describe_store(config)}")
        print(f"current version: {status.current}")
        print(f"latest version: {status.latest}")
        if status.current > status.latest:
            print("database is ahead of this server")
        for migration in pending:
            print(f"pending: {migration.version:03d}_{migration.name}.sql")
        if not pending:
            print("no pending migrations")
        return
    if not pending:
        print("-- no pending migrations")
    for migration in pending:
        print(f"-- {migration.version:03d}_{migration.name}.sql")
        print(migration.sql.rstrip())
