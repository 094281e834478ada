"""The table of canonical options (config.md §2) and the naming rule that links keys, flags and
environment variables."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from resonate.server.config.values import parse_address, parse_duration, parse_size


class OptionType(Enum):
    BOOL = "bool"
    INT = "int"
    STRING = "string"
    ENUM = "enum"
    DURATION = "duration"
    SIZE = "size"
    ADDRESS = "address"
    STRING_LIST = "list"
    STRING_MAP = "map"
    QUERY = "query"
    OBJECT_LIST = "objects"
    RETENTION = "retention"  # a duration, or a map of final promise state -> duration


class EnumCase(Enum):
    LOWER = "lower"
    UPPER = "upper"


@dataclass(frozen=True, slots=True)
class Option:
    """One canonical option.

    ``default`` is the typed value (durations in milliseconds, sizes in bytes, addresses as
    ``Address``); ``secret`` options are masked by ``config show``.
    """

    key: str
    type: OptionType
    default: Any
    help: str
    secret: bool = False
    choices: tuple[str, ...] = ()
    aliases: Mapping[str, str] = field(default_factory=dict)
    enum_case: EnumCase = EnumCase.LOWER
    minimum: int | None = None
    maximum: int | None = None

    @property
    def flag(self) -> str:
        return key_to_flag(self.key)

    @property
    def env(self) -> str:
        return key_to_env(self.key)

    @property
    def is_store_option(self) -> bool:
        return self.key.startswith("aio.store.")


_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def _segment_words(segment: str) -> list[str]:
    return [word.lower() for word in _CAMEL_BOUNDARY.split(segment)]


def key_to_flag(key: str) -> str:
    """``api.http.maxBodySize`` -> ``--api-http-max-body-size``."""
    return "--" + "-".join(word for segment in key.split(".") for word in _segment_words(segment))


def key_to_env(key: str) -> str:
    """``api.http.maxBodySize`` -> ``RESONATE_API_HTTP_MAX_BODY_SIZE``."""
    words = (word for segment in key.split(".") for word in _segment_words(segment))
    return "RESONATE_" + "_".join(word.upper() for word in words)


def _option(
    key: str,
    option_type: OptionType,
    default: Any,
    help_text: str,
    **extra: Any,
) -> Option:
    return Option(key=key, type=option_type, default=default, help=help_text, **extra)


_B = OptionType.BOOL
_I = OptionType.INT
_S = OptionType.STRING
_D = OptionType.DURATION

# Counts, limits and timeouts where 0 would stall or break the server must be at least 1.
_AT_LEAST_ONE: dict[str, Any] = {"minimum": 1}

OPTIONS: tuple[Option, ...] = (
    _option(
        "logLevel",
        OptionType.ENUM,
        "info",
        "log level",
        choices=("debug", "info", "warning", "error"),
        aliases={"warn": "warning"},
    ),
    _option(
        "logFormat",
        OptionType.ENUM,
        "text",
        "log format; json = one object per line",
        choices=("text", "json"),
    ),
    _option(
        "uvloop",
        _B,
        True,
        "run the server on uvloop where it is installed (CPython, not Windows); false = "
        "asyncio's own event loop",
    ),
    _option("api.http.addr", OptionType.ADDRESS, parse_address("0.0.0.0:8001"), "API listener"),
    _option("api.http.timeout", _D, parse_duration("10s"), "graceful-shutdown drain limit"),
    _option(
        "api.http.auth",
        OptionType.STRING_MAP,
        {},
        "Basic auth users (user=password); empty = off",
        secret=True,
    ),
    _option(
        "api.http.cors.allowOrigins",
        OptionType.STRING_LIST,
        (),
        "CORS origins allowed on the API; * = any origin",
    ),
    _option(
        "api.http.lane",
        _B,
        True,
        "serve plain requests (small, complete, no query string) without aiohttp's request "
        "pipeline; false = every request through aiohttp",
    ),
    _option(
        "api.http.maxBodySize",
        OptionType.SIZE,
        parse_size("10MiB"),
        "largest request body; larger bodies get 413",
        **_AT_LEAST_ONE,
    ),
    _option(
        "api.http.headerTimeout",
        _D,
        parse_duration("10s"),
        "a connection must send a request line and headers within this time (else it is "
        "closed); a request body that pauses this long gets 408",
        **_AT_LEAST_ONE,
    ),
    _option(
        "api.http.idleTimeout",
        _D,
        parse_duration("75s"),
        "keep-alive connections waiting for a request are closed after this long",
        **_AT_LEAST_ONE,
    ),
    _option(
        "api.http.maxConnections",
        _I,
        4096,
        "open connections per listener (API, poll, metrics); at the cap the oldest idle "
        "one is closed, or the new one refused",
        **_AT_LEAST_ONE,
    ),
    _option(
        "api.http.taskFrequency",
        _D,
        parse_duration("1m"),
        "lease of claims made through GET task links",
        **_AT_LEAST_ONE,
    ),
    _option(
        "api.errorDocsUrl",
        _S,
        "",
        "base URL of a hosted copy of docs/errors.md; 4xx error details then link "
        "<base>#<code>; empty = no link",
    ),
    _option(
        "api.auth.publicKey",
        _S,
        "",
        "public key (RSA, EC or Ed25519; PEM file path or PEM text) for JWT bearer auth; "
        "empty = off",
        secret=True,
    ),
    _option(
        "api.auth.issuer",
        _S,
        "",
        "JWT bearer auth: the required iss claim; empty = not checked",
    ),
    _option(
        "api.auth.audience",
        _S,
        "",
        "JWT bearer auth: the required aud claim; empty = not checked",
    ),
    _option(
        "api.auth.leeway",
        _D,
        parse_duration("30s"),
        "JWT bearer auth: clock skew tolerated on exp, nbf and iat (at most 30s)",
        maximum=30_000,
    ),
    _option(
        "api.grpc.enable",
        _B,
        True,
        "gRPC API (docs/grpc.md)",
    ),
    _option(
        "api.grpc.addr",
        OptionType.ADDRESS,
        parse_address("0.0.0.0:50051"),
        "gRPC listener",
    ),
    _option(
        "aio.store.sqlite.path", _S, "resonate.db", "SQLite database file; :memory: = in-memory"
    ),
    _option(
        "aio.store.sqlite.synchronous",
        OptionType.ENUM,
        "FULL",
        "SQLite synchronous mode; NORMAL may lose acknowledged writes on power loss",
        choices=("FULL", "EXTRA", "NORMAL"),
        enum_case=EnumCase.UPPER,
    ),
    _option(
        "aio.store.sqlite.txTimeout",
        _D,
        parse_duration("10s"),
        "longest SQLite transaction",
        **_AT_LEAST_ONE,
    ),
    _option("aio.store.postgres.enable", _B, False, "use PostgreSQL instead of SQLite"),
    _option("aio.store.postgres.host", _S, "localhost", "PostgreSQL host"),
    _option("aio.store.postgres.port", _I, 5432, "PostgreSQL port", minimum=1, maximum=65535),
    _option("aio.store.postgres.username", _S, "", "PostgreSQL user"),
    _option("aio.store.postgres.password", _S, "", "PostgreSQL password", secret=True),
    _option("aio.store.postgres.database", _S, "resonate", "PostgreSQL database"),
    _option(
        "aio.store.postgres.query",
        OptionType.QUERY,
        {},
        "PostgreSQL connection parameters k=v&k=v, e.g. sslmode=require",
    ),
    _option(
        "aio.store.postgres.url",
        _S,
        "",
        "full postgres:// DSN; when set it replaces host, port, username, password, "
        "database and query",
        secret=True,
    ),
    _option("aio.store.postgres.poolSize", _I, 10, "PostgreSQL connections", **_AT_LEAST_ONE),
    _option(
        "aio.store.postgres.txTimeout",
        _D,
        parse_duration("10s"),
        "longest PostgreSQL transaction",
        **_AT_LEAST_ONE,
    ),
    _option("aio.poll.enable", _B, True, "poll (SSE) transport"),
    _option("aio.poll.addr", OptionType.ADDRESS, parse_address("0.0.0.0:8002"), "poll listener"),
    _option("aio.poll.bufferSize", _I, 100, "messages buffered per poll connection", minimum=0),
    _option("aio.poll.maxConnections", _I, 1000, "open poll streams", **_AT_LEAST_ONE),
    _option("aio.poll.disconnectAfter", _D, 0, "end poll streams after this long; 0 = never"),
    _option("aio.poll.keepAlive", _D, parse_duration("15s"), "idle comment-line interval; 0 = off"),
    _option(
        "aio.poll.auth",
        OptionType.STRING_MAP,
        {},
        "Basic auth users (user=password) on the poll listener",
        secret=True,
    ),
    _option(
        "aio.poll.cors.allowOrigins",
        OptionType.STRING_LIST,
        (),
        "CORS origins allowed on the poll listener",
    ),
    _option("aio.poll.ttr", _D, parse_duration("15s"), "retry delay after a failed poll delivery"),
    _option("aio.poll.ttc", _D, parse_duration("1m"), "claim deadline after delivery; 0 = none"),
    _option("aio.http.enable", _B, True, "HTTP push transport"),
    _option("aio.http.timeout", _D, parse_duration("30s"), "whole push request", **_AT_LEAST_ONE),
    _option(
        "aio.http.connTimeout", _D, parse_duration("10s"), "push connect timeout", **_AT_LEAST_ONE
    ),
    _option("aio.http.ttr", _D, parse_duration("15s"), "retry delay after a failed push"),
    _option("aio.http.ttc", _D, parse_duration("1m"), "claim deadline after a push; 0 = none"),
    _option("aio.http.concurrency", _I, 10, "pushes in flight", **_AT_LEAST_ONE),
    _option(
        "aio.router.sources",
        OptionType.OBJECT_LIST,
        [],
        'router sources [{"name", "type": "tag", "data": {"key"}}]; '
        "a default source on resonate:invoke is appended unless one is named default",
    ),
    _option(
        "aio.sender.targets",
        OptionType.OBJECT_LIST,
        [],
        'sender targets [{"name", "type", "data"}]; a default poll target '
        "(cast any, group default) is added unless one is named default",
    ),
    _option(
        "system.url",
        _S,
        "",
        "base of href links; empty = derived from api.http.addr",
    ),
    _option(
        "system.signalTimeout",
        _D,
        parse_duration("1s"),
        "idle tick of the background loops",
        **_AT_LEAST_ONE,
    ),
    _option(
        "tasks.retryTimeout",
        _D,
        parse_duration("30s"),
        "2026-protocol tasks: a pending task's execute is sent again this often until acquired",
        **_AT_LEAST_ONE,
    ),
    _option(
        "system.submissionBatchSize",
        _I,
        1000,
        "most API operations per group-commit transaction",
        **_AT_LEAST_ONE,
    ),
    _option(
        "system.completionBatchSize",
        _I,
        1000,
        "most delivery outcomes recorded per transaction",
        **_AT_LEAST_ONE,
    ),
    _option("system.promiseBatchSize", _I, 100, "promise timeout loop batch", **_AT_LEAST_ONE),
    _option(
        "system.promiseMaxIterations", _I, 1000, "promise timeout loop iterations", **_AT_LEAST_ONE
    ),
    _option("system.scheduleBatchSize", _I, 100, "schedule loop batch", **_AT_LEAST_ONE),
    _option("system.scheduleMaxIterations", _I, 1000, "schedule loop iterations", **_AT_LEAST_ONE),
    _option(
        "system.scheduleMaxCatchUp",
        _I,
        100,
        "after downtime, fire at most this many missed slots per schedule (the most recent); "
        "older ones are skipped and counted; 0 = fire them all",
        minimum=0,
    ),
    _option(
        "system.retention.promises",
        OptionType.RETENTION,
        0,
        "delete completed promises (and their tasks) this long after completion, unless "
        "something still refers to them: one duration for every final state, or "
        "state=duration pairs (resolved, rejected, rejected_canceled, rejected_timedout; a "
        "state not named is kept); 0 = keep forever",
    ),
    _option(
        "system.retention.tasks",
        _D,
        0,
        "delete COMPLETED and TIMEDOUT tasks this long after completion; 0 = keep forever",
    ),
    _option(
        "system.retention.batchSize",
        _I,
        500,
        "retention loop: most promises (or tasks) deleted per transaction",
        **_AT_LEAST_ONE,
    ),
    _option("system.taskBatchSize", _I, 100, "task loops batch", **_AT_LEAST_ONE),
    _option("system.taskMaxIterations", _I, 1000, "task loops iterations", **_AT_LEAST_ONE),
    _option("metrics.enable", _B, True, "Prometheus metrics listener"),
    _option(
        "metrics.addr", OptionType.ADDRESS, parse_address("0.0.0.0:9090"), "GET /metrics listener"
    ),
)

OPTIONS_BY_KEY: Mapping[str, Option] = {option.key: option for option in OPTIONS}
OPTIONS_BY_FLAG: Mapping[str, Option] = {option.flag: option for option in OPTIONS}
OPTIONS_BY_ENV: Mapping[str, Option] = {option.env: option for option in OPTIONS}

CONFIG_FLAG = "--config"
CONFIG_SHORT_FLAG = "-c"
CONFIG_ENV = "RESONATE_CONFIG"


def negated_flag(option: Option) -> str:
    """``--metrics-enable`` -> ``--no-metrics-enable`` (bool options only)."""
    return "--no-" + option.flag.removeprefix("--")


def all_flags() -> list[str]:
    """Every flag ``resolve_config`` accepts, for suggestions and help."""
    flags = [CONFIG_FLAG, CONFIG_SHORT_FLAG]
    for option in OPTIONS:
        flags.append(option.flag)
        if option.type is OptionType.BOOL:
            flags.append(negated_flag(option))
    return flags
