"""How to reach PostgreSQL: asyncpg connect options from the `aio.store.postgres.*` settings,
and a description of the target that is safe to log (it never holds the password)."""

from __future__ import annotations

import logging
import urllib.parse
from typing import Any, Protocol

log = logging.getLogger(__name__)

# libpq parameters asyncpg does not know: left alone they would be sent to the server as
# settings and refused. `connect_timeout` becomes asyncpg's connect timeout; the rest only
# tune libpq's own socket handling and are dropped with a warning.
_LIBPQ_ONLY = frozenset(
    {
        "keepalives",
        "keepalives_idle",
        "keepalives_interval",
        "keepalives_count",
        "tcp_user_timeout",
        "channel_binding",
        "gssencmode",
        "requirepeer",
        "sslcompression",
        "sslsni",
        "load_balance_hosts",
    }
)


class Settings(Protocol):
    """The resolved configuration, read by key (resonate.server.config.Config)."""

    def __getitem__(self, key: str) -> Any: ...


def _connection_parameters(query: dict[str, str], options: dict[str, Any]) -> dict[str, str]:
    """The libpq parameters asyncpg should see; moves `connect_timeout` into ``options``."""
    kept: dict[str, str] = {}
    for key, value in query.items():
        if key == "connect_timeout":
            try:
                seconds = float(value)
            except ValueError:
                log.warning("ignoring connect_timeout=%r: not a number of seconds", value)
                continue
            if seconds > 0:
                options["timeout"] = seconds
        elif key == "fallback_application_name":
            kept.setdefault("application_name", value)
        elif key in _LIBPQ_ONLY:
            log.warning("ignoring PostgreSQL connection parameter %s (not supported)", key)
        else:
            kept[key] = value
    return kept


def describe_url(url: str) -> str:
    """host, port, database and user of a `postgres://` URL, without its password."""
    parts = urllib.parse.urlsplit(url)
    auth, _, hosts = parts.netloc.rpartition("@")
    user = urllib.parse.unquote(auth.partition(":")[0]) if auth else ""
    query = dict(urllib.parse.parse_qsl(parts.query))
    hosts = urllib.parse.unquote(hosts) or query.get("host", "localhost")
    database = urllib.parse.unquote(parts.path.lstrip("/")) or query.get("dbname", "")
    user = user or query.get("user", "")
    return f"host={hosts} database={database or '(default)'} user={user or '(default)'}"


def url_parameters(url: str) -> dict[str, str]:
    """The connection parameters in a URL's query."""
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query, keep_blank_values=True))


def url_password(url: str) -> str | None:
    auth = urllib.parse.urlsplit(url).netloc.rpartition("@")[0]
    if ":" not in auth:
        return None
    return urllib.parse.unquote(auth.partition(":")[2]) or None


def postgres_dsn_and_options(config: Settings) -> tuple[dict[str, Any], str]:
    """asyncpg connect keywords for the configured PostgreSQL, and a description that names
    host, port, database and user (never the password) for logs and errors.

    `aio.store.postgres.url`, when set, replaces host … query; its query parameters are read
    like `aio.store.postgres.query`, as libpq connection parameters (e.g. `sslmode=require`).
    """
    options: dict[str, Any] = {}
    url: str = config["aio.store.postgres.url"]
    if url:
        parts = urllib.parse.urlsplit(url)
        query = dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
        kept = _connection_parameters(query, options)
        options["dsn"] = urllib.parse.urlunsplit(parts._replace(query=_encode(kept)))
        return options, describe_url(url)
    host: str = config["aio.store.postgres.host"]
    port: int = config["aio.store.postgres.port"]
    user: str = config["aio.store.postgres.username"]
    password: str = config["aio.store.postgres.password"]
    database: str = config["aio.store.postgres.database"]
    kept = _connection_parameters(dict(config["aio.store.postgres.query"]), options)
    if kept:
        # Keywords below override the URL's parts; the URL carries only the parameters.
        options["dsn"] = "postgresql://?" + _encode(kept)
    options.update(host=host or "localhost", port=port, database=database)
    if user:
        options["user"] = user
    if password:
        options["password"] = password
    description = (
        f"host={host or 'localhost'} port={port} database={database} user={user or '(default)'}"
    )
    return options, description


def _encode(parameters: dict[str, str]) -> str:
    return urllib.parse.urlencode(parameters, quote_via=urllib.parse.quote)
