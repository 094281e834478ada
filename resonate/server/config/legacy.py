"""The deprecated legacy file layout (config.md §5): which old keys map to which canonical ones.

Only the YAML file can use these keys; flags and environment variables exist for canonical keys
only. A file holding any marker key is read as the legacy layout and produces exactly one
warning (built by ``legacy_warning``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from resonate.server.config.values import parse_int

# Keys whose presence marks a file as the legacy layout.
LEGACY_MARKERS: tuple[str, ...] = (
    "api.baseUrl",
    "api.size",
    "api.subsystems",
    "aio.size",
    "aio.subsystems",
    "system.notificationCacheSize",
    "metrics.port",
    "metricsAddr",
)

# Sections in which any key not listed below is ignored (and named in the warning).
LEGACY_OPEN_SECTIONS: tuple[str, ...] = ("api.subsystems", "aio.subsystems")


@dataclass(frozen=True, slots=True)
class LegacyKey:
    """A legacy key (or, when ``target`` is None, a whole ignored subtree).

    ``convert`` turns the old YAML value into one the target option accepts; when two legacy
    keys feed one target, the higher ``priority`` wins.
    """

    key: str
    target: str | None
    convert: Callable[[object], object] | None = None
    note: str = ""
    priority: int = 0


def _store_kind_to_postgres_enable(value: object) -> object:
    kind = str(value).strip().lower() if isinstance(value, str) else None
    if kind == "sqlite":
        return False
    if kind == "postgres":
        return True
    raise ValueError(f"invalid store kind {value!r} (sqlite or postgres)")


def _metrics_port_to_address(value: object) -> object:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"expected a port number, got {value!r}")
    port = parse_int(str(value))
    if not 0 <= port <= 65535:
        raise ValueError(f"invalid port {value!r} (0 to 65535)")
    return f"0.0.0.0:{port}"


_STORE = "aio.subsystems.store"
_POSTGRES = f"{_STORE}.config.postgres"

LEGACY_KEYS: tuple[LegacyKey, ...] = (
    LegacyKey("api.baseUrl", "system.url"),
    LegacyKey("api.size", None),
    LegacyKey("api.subsystems.http.addr", "api.http.addr"),
    LegacyKey("api.subsystems.http.timeout", "api.http.timeout"),
    LegacyKey("api.subsystems.http.auth", "api.http.auth"),
    LegacyKey("api.subsystems.grpc.addr", "api.grpc.addr"),
    LegacyKey("aio.size", None),
    LegacyKey(f"{_STORE}.subsystem.size", None),
    LegacyKey(f"{_STORE}.subsystem.workers", None, note="use aio.store.postgres.poolSize"),
    LegacyKey(f"{_STORE}.subsystem.batchSize", "system.submissionBatchSize"),
    LegacyKey(
        f"{_STORE}.config.kind", "aio.store.postgres.enable", convert=_store_kind_to_postgres_enable
    ),
    LegacyKey(f"{_STORE}.config.sqlite.path", "aio.store.sqlite.path"),
    LegacyKey(f"{_STORE}.config.sqlite.txTimeout", "aio.store.sqlite.txTimeout"),
    LegacyKey(f"{_POSTGRES}.host", "aio.store.postgres.host"),
    LegacyKey(f"{_POSTGRES}.port", "aio.store.postgres.port"),
    LegacyKey(f"{_POSTGRES}.username", "aio.store.postgres.username"),
    LegacyKey(f"{_POSTGRES}.password", "aio.store.postgres.password"),
    LegacyKey(f"{_POSTGRES}.database", "aio.store.postgres.database"),
    LegacyKey(f"{_POSTGRES}.query", "aio.store.postgres.query"),
    LegacyKey(f"{_POSTGRES}.txTimeout", "aio.store.postgres.txTimeout"),
    LegacyKey("aio.subsystems.network.subsystem", None),
    LegacyKey("aio.subsystems.network.config.timeout", "aio.http.timeout"),
    LegacyKey(
        "aio.subsystems.queuing",
        None,
        note="use aio.router.sources / aio.sender.targets",
    ),
    LegacyKey("system.notificationCacheSize", None),
    LegacyKey("metrics.port", "metrics.addr", convert=_metrics_port_to_address),
    LegacyKey("metricsAddr", "metrics.addr", priority=1),
)


@dataclass(frozen=True, slots=True)
class LegacyUse:
    """What one legacy file did: mapped ``(old key, canonical key)`` pairs, ignored keys (with
    an optional note) and conflicts (a canonical key of the same file won over an old one)."""

    mapped: Sequence[tuple[str, str]]
    ignored: Sequence[str]
    conflicts: Sequence[str]


def legacy_warning(file_name: str, use: LegacyUse) -> str:
    """The single warning of config.md §5, on one line."""
    mapped = ", ".join(f"{old}→{new}" for old, new in use.mapped) or "nothing"
    ignored = ", ".join(use.ignored) or "nothing"
    message = (
        f"config: {file_name} uses the deprecated legacy layout; mapped: {mapped}; "
        f"ignored: {ignored}"
    )
    if use.conflicts:
        message += f"; conflicts: {', '.join(use.conflicts)}"
    return message
