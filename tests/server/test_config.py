"""The configuration loader against config.md: each case names the rule it checks."""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from resonate.cli.config_cmd import run_config_show
from resonate.server.config import (
    OPTIONS,
    Address,
    Config,
    ConfigError,
    Option,
    OptionType,
    ResolvedConfig,
    format_options_help,
    key_to_env,
    key_to_flag,
    render_config,
    resolve_config,
)

SPEC_EXAMPLES = Path("/work/shared/spec/config-examples")

# config-examples/postgres.yml, verbatim (config.md §3).
POSTGRES_YML = """\
aio:
  store:
    postgres:
      enable: true
      host: "postgres.example.com"
      database: "resonate"
      username: "resonate"
      password: "secret"
      query: "sslmode=require"
"""

# config-examples/legacy-defaults.yml, verbatim (config.md §5).
LEGACY_DEFAULTS_YML = """\
api:
  baseUrl: http://localhost:8001
  size: 100
  subsystems:
    http:
      addr: "0.0.0.0:8001"
      timeout: 10s
    grpc:
      addr: "0.0.0.0:50051"
aio:
  size: 100
  subsystems:
    store:
      subsystem:
        size: 100
        workers: 1
        batchSize: 100
      config:
        kind: sqlite # also: postgres
        sqlite:
          path: resonate.db
          txTimeout: 250ms
        postgres:
          host: localhost
          port: 5432
          username: ""
          password: ""
          database: resonate
          txTimeout: 250ms
    network:
      subsystem:
        size: 100
        workers: 3
        batchSize: 100
      config:
        timeout: 10s
    queuing:
      config:
        connections:
        routes:
system:
  notificationCacheSize: 100
  submissionBatchSize: 100
  completionBatchSize: 100
metrics:
  port: 9090
"""

# config.md §3, the flag invocation that MUST work, verbatim.
POSTGRES_INVOCATION = """\
resonate serve --aio-store-postgres-enable --aio-store-postgres-host localhost \\
  --aio-store-postgres-database resonate --aio-store-postgres-username resonate \\
  --aio-store-postgres-password secret
"""
POSTGRES_FLAGS = shlex.split(POSTGRES_INVOCATION.replace("\\\n", " "))[2:]


def resolve(
    tmp_path: Path,
    args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    *,
    file: str | None = None,
    file_name: str = "resonate.yml",
    dev: bool = False,
) -> ResolvedConfig:
    if file is not None:
        (tmp_path / file_name).write_text(file, encoding="utf-8")
    return resolve_config(list(args), dict(env or {}), tmp_path, dev=dev)


def resolve_error(
    tmp_path: Path,
    args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    *,
    file: str | None = None,
) -> str:
    with pytest.raises(ConfigError) as caught:
        resolve(tmp_path, args, env, file=file)
    message = str(caught.value)
    assert "\n" not in message, "a configuration error is one line"
    return message


# --- naming rule (config.md §1) -------------------------------------------------------------

NAMING_EXAMPLES = [
    ("logLevel", "--log-level", "RESONATE_LOG_LEVEL"),
    ("api.http.maxBodySize", "--api-http-max-body-size", "RESONATE_API_HTTP_MAX_BODY_SIZE"),
    (
        "api.http.cors.allowOrigins",
        "--api-http-cors-allow-origins",
        "RESONATE_API_HTTP_CORS_ALLOW_ORIGINS",
    ),
    (
        "aio.store.postgres.enable",
        "--aio-store-postgres-enable",
        "RESONATE_AIO_STORE_POSTGRES_ENABLE",
    ),
    (
        "aio.store.sqlite.txTimeout",
        "--aio-store-sqlite-tx-timeout",
        "RESONATE_AIO_STORE_SQLITE_TX_TIMEOUT",
    ),
    ("system.signalTimeout", "--system-signal-timeout", "RESONATE_SYSTEM_SIGNAL_TIMEOUT"),
]


@pytest.mark.parametrize(
    ("key", "flag", "env"), NAMING_EXAMPLES, ids=[k for k, _, _ in NAMING_EXAMPLES]
)
def test_naming_rule_spec_table(key: str, flag: str, env: str) -> None:
    """Naming rule: key a.bC <=> flag --a-b-c <=> env RESONATE_A_B_C (the spec's table)."""
    assert key_to_flag(key) == flag
    assert key_to_env(key) == env


def test_naming_rule_every_option_has_distinct_flag_and_env() -> None:
    """Naming rule: no two options share a flag or an environment variable."""
    assert len({option.flag for option in OPTIONS}) == len(OPTIONS)
    assert len({option.env for option in OPTIONS}) == len(OPTIONS)


SAMPLE_TEXT: dict[OptionType, tuple[str, Any]] = {
    OptionType.BOOL: ("true", True),
    OptionType.INT: ("7", 7),
    OptionType.STRING: ("some-text", "some-text"),
    OptionType.DURATION: ("1h30m", 5_400_000),
    OptionType.SIZE: ("2MiB", 2 * 1024 * 1024),
    OptionType.ADDRESS: ("127.0.0.1:7000", Address("127.0.0.1", 7000)),
    OptionType.STRING_LIST: ("a,b", ("a", "b")),
    OptionType.STRING_MAP: ("u=p", {"u": "p"}),
    OptionType.QUERY: ("sslmode=require", {"sslmode": "require"}),
    OptionType.RETENTION: (
        "resolved=1h,rejected=2h",
        {"resolved": 3_600_000, "rejected": 7_200_000},
    ),
}
SAMPLE_ENUM = {
    "logLevel": ("debug", "debug"),
    "logFormat": ("json", "json"),
    "aio.store.sqlite.synchronous": ("NORMAL", "NORMAL"),
}


def _sample(option: Option) -> tuple[str, Any]:
    if option.type is OptionType.ENUM:
        return SAMPLE_ENUM[option.key]
    if option.key == "aio.router.sources":
        text = '[{"name":"r","type":"tag","data":{"key":"k"}}]'
        return text, [json.loads(text)[0], _DEFAULT_SOURCE]
    if option.key == "aio.sender.targets":
        text = '[{"name":"t","type":"http","data":{"url":"http://w"}}]'
        return text, [json.loads(text)[0], _DEFAULT_TARGET]
    if option.key in ("system.url", "api.errorDocsUrl"):
        return "http://example.com", "http://example.com"
    if option.key == "aio.store.postgres.url":
        return "postgres://u@h/db", "postgres://u@h/db"
    if option.key == "api.auth.leeway":  # at most 30s
        return "5s", 5_000
    return SAMPLE_TEXT[option.type]


_DEFAULT_SOURCE = {"name": "default", "type": "tag", "data": {"key": "resonate:invoke"}}
_DEFAULT_TARGET = {"name": "default", "type": "poll", "data": {"cast": "any", "group": "default"}}
_SETTABLE = list(OPTIONS)


@pytest.mark.parametrize("option", _SETTABLE, ids=[option.key for option in _SETTABLE])
def test_naming_rule_every_option_reads_its_flag_and_env(tmp_path: Path, option: Option) -> None:
    """Naming rule: every option of §2 is set by its flag and by its environment variable."""
    text, expected = _sample(option)
    by_flag = resolve(tmp_path, [f"{option.flag}={text}"])
    assert by_flag.config[option.key] == expected
    assert by_flag.sources[option.key] == f"flag {option.flag}"
    by_env = resolve(tmp_path, env={option.env: text})
    assert by_env.config[option.key] == expected
    assert by_env.sources[option.key] == f"env {option.env}"


# --- defaults (config.md §2) ----------------------------------------------------------------

DEFAULTS = [
    ("logLevel", "info"),
    ("logFormat", "text"),
    ("uvloop", True),
    ("api.http.addr", Address("0.0.0.0", 8001)),
    ("api.http.timeout", 10_000),
    ("api.http.auth", {}),
    ("api.http.cors.allowOrigins", ()),
    ("api.http.lane", True),
    ("api.http.maxBodySize", 10 * 1024 * 1024),
    ("api.http.headerTimeout", 10_000),
    ("api.http.idleTimeout", 75_000),
    ("api.http.maxConnections", 4096),
    ("api.http.taskFrequency", 60_000),
    ("api.errorDocsUrl", ""),
    ("api.auth.publicKey", ""),
    ("api.auth.issuer", ""),
    ("api.auth.audience", ""),
    ("api.auth.leeway", 30_000),
    ("api.grpc.enable", True),
    ("api.grpc.addr", Address("0.0.0.0", 50051)),
    ("aio.store.sqlite.path", "resonate.db"),
    ("aio.store.sqlite.synchronous", "FULL"),
    ("aio.store.sqlite.txTimeout", 10_000),
    ("aio.store.postgres.enable", False),
    ("aio.store.postgres.host", "localhost"),
    ("aio.store.postgres.port", 5432),
    ("aio.store.postgres.username", ""),
    ("aio.store.postgres.password", ""),
    ("aio.store.postgres.database", "resonate"),
    ("aio.store.postgres.query", {}),
    ("aio.store.postgres.url", ""),
    ("aio.store.postgres.poolSize", 10),
    ("aio.store.postgres.txTimeout", 10_000),
    ("aio.poll.enable", True),
    ("aio.poll.addr", Address("0.0.0.0", 8002)),
    ("aio.poll.bufferSize", 100),
    ("aio.poll.maxConnections", 1000),
    ("aio.poll.disconnectAfter", 0),
    ("aio.poll.keepAlive", 15_000),
    ("aio.poll.auth", {}),
    ("aio.poll.cors.allowOrigins", ()),
    ("aio.poll.ttr", 15_000),
    ("aio.poll.ttc", 60_000),
    ("aio.http.enable", True),
    ("aio.http.timeout", 30_000),
    ("aio.http.connTimeout", 10_000),
    ("aio.http.ttr", 15_000),
    ("aio.http.ttc", 60_000),
    ("aio.http.concurrency", 10),
    ("aio.router.sources", [_DEFAULT_SOURCE]),
    ("aio.sender.targets", [_DEFAULT_TARGET]),
    ("system.url", ""),
    ("system.signalTimeout", 1_000),
    ("tasks.retryTimeout", 30_000),
    ("system.submissionBatchSize", 1000),
    ("system.completionBatchSize", 1000),
    ("system.promiseBatchSize", 100),
    ("system.promiseMaxIterations", 1000),
    ("system.scheduleBatchSize", 100),
    ("system.scheduleMaxIterations", 1000),
    ("system.scheduleMaxCatchUp", 100),
    ("system.retention.promises", 0),
    ("system.retention.tasks", 0),
    ("system.retention.batchSize", 500),
    ("system.taskBatchSize", 100),
    ("system.taskMaxIterations", 1000),
    ("metrics.enable", True),
    ("metrics.addr", Address("0.0.0.0", 9090)),
]


def test_defaults_cover_every_option_of_the_table() -> None:
    """§2: the DEFAULTS table of this test names every option exactly once."""
    assert [key for key, _ in DEFAULTS] == [option.key for option in OPTIONS]


@pytest.mark.parametrize(("key", "expected"), DEFAULTS, ids=[key for key, _ in DEFAULTS])
def test_defaults(tmp_path: Path, key: str, expected: Any) -> None:
    """§2 defaults apply with no file, no env, no flags; the source is `default`."""
    resolved = resolve(tmp_path)
    assert resolved.config[key] == expected
    assert resolved.sources[key] == "default"
    assert resolved.file is None and resolved.warnings == []


def test_config_default_matches_resolved_defaults(tmp_path: Path) -> None:
    """Config.default() is the same as resolving with no sources."""
    assert Config.default().values == resolve(tmp_path).config.values


# --- precedence (config.md §1) --------------------------------------------------------------

PRECEDENCE = [
    pytest.param({}, {}, [], "info", "default", id="default when nothing is given"),
    pytest.param(
        {"logLevel": "debug"}, {}, [], "debug", "file resonate.yml", id="file over default"
    ),
    pytest.param(
        {"logLevel": "debug"},
        {"RESONATE_LOG_LEVEL": "error"},
        [],
        "error",
        "env RESONATE_LOG_LEVEL",
        id="env over file",
    ),
    pytest.param(
        {"logLevel": "debug"},
        {"RESONATE_LOG_LEVEL": "error"},
        ["--log-level", "warning"],
        "warning",
        "flag --log-level",
        id="flag over env",
    ),
    pytest.param(
        {},
        {},
        ["--log-level=debug", "--log-level=error"],
        "error",
        "flag --log-level",
        id="last repeated scalar flag wins",
    ),
]


@pytest.mark.parametrize(("file", "env", "args", "expected", "source"), PRECEDENCE)
def test_precedence(
    tmp_path: Path,
    file: dict[str, Any],
    env: dict[str, str],
    args: list[str],
    expected: str,
    source: str,
) -> None:
    """Precedence per option: flag > environment variable > file > default."""
    resolved = resolve(tmp_path, args, env, file=yaml.safe_dump(file) if file else None)
    assert resolved.config["logLevel"] == expected
    assert resolved.sources["logLevel"] == source


REPLACE_WHOLE = [
    pytest.param(
        "api:\n  http:\n    auth: {a: '1', b: '2'}\n",
        {"RESONATE_API_HTTP_AUTH": "c=3"},
        [],
        "api.http.auth",
        {"c": "3"},
        id="env map replaces file map whole",
    ),
    pytest.param(
        "api:\n  http:\n    auth: {a: '1'}\n",
        {},
        ["--api-http-auth", "b=2", "--api-http-auth", "c=3"],
        "api.http.auth",
        {"b": "2", "c": "3"},
        id="repeated map flags combine and replace the file map",
    ),
    pytest.param(
        "aio:\n  poll:\n    cors:\n      allowOrigins: [a, b]\n",
        {"RESONATE_AIO_POLL_CORS_ALLOW_ORIGINS": "c"},
        [],
        "aio.poll.cors.allowOrigins",
        ("c",),
        id="env list replaces file list whole",
    ),
    pytest.param(
        "aio:\n  poll:\n    cors:\n      allowOrigins: [a, b]\n",
        {},
        ["--aio-poll-cors-allow-origins", "x", "--aio-poll-cors-allow-origins", "y"],
        "aio.poll.cors.allowOrigins",
        ("x", "y"),
        id="repeated list flags combine and replace the file list",
    ),
    pytest.param(
        "aio:\n  poll:\n    cors:\n      allowOrigins: [a, b]\n",
        {"RESONATE_AIO_POLL_CORS_ALLOW_ORIGINS": ""},
        [],
        "aio.poll.cors.allowOrigins",
        (),
        id="empty env list empties the file list",
    ),
]


@pytest.mark.parametrize(("file", "env", "args", "key", "expected"), REPLACE_WHOLE)
def test_maps_and_lists_are_replaced_never_merged(
    tmp_path: Path, file: str, env: dict[str, str], args: list[str], key: str, expected: Any
) -> None:
    """Maps and lists are replaced as a whole by a higher source, never merged."""
    assert resolve(tmp_path, args, env, file=file).config[key] == expected


# --- value syntax (config.md §1, value syntax table) ----------------------------------------

GOOD_TEXT = [
    # bool (env words, any case)
    *[
        pytest.param("metrics.enable", word, value, id=f"bool env word {word}")
        for word, value in [
            ("true", True),
            ("false", False),
            ("1", True),
            ("0", False),
            ("yes", True),
            ("no", False),
            ("on", True),
            ("off", False),
            ("TRUE", True),
            ("Off", False),
        ]
    ],
    # int
    pytest.param("aio.store.postgres.port", "6543", 6543, id="int decimal"),
    # durations
    pytest.param("aio.poll.ttc", "250ms", 250, id="duration ms"),
    pytest.param("aio.poll.ttc", "10s", 10_000, id="duration s"),
    pytest.param("aio.poll.ttc", "1m", 60_000, id="duration m"),
    pytest.param("aio.poll.ttc", "1h", 3_600_000, id="duration h"),
    pytest.param("aio.poll.ttc", "1h30m", 5_400_000, id="duration compound 1h30m"),
    pytest.param("aio.poll.ttc", "1m30s500ms", 90_500, id="duration compound with ms"),
    pytest.param("aio.poll.ttc", "0", 0, id="duration 0 alone"),
    pytest.param("aio.poll.ttc", "1.5s", 1_500, id="duration decimal number"),
    # sizes
    pytest.param("api.http.maxBodySize", "1048576", 1_048_576, id="size bare bytes"),
    pytest.param("api.http.maxBodySize", "100B", 100, id="size B"),
    pytest.param("api.http.maxBodySize", "5KB", 5_000, id="size KB powers of 1000"),
    pytest.param("api.http.maxBodySize", "5MB", 5_000_000, id="size MB"),
    pytest.param("api.http.maxBodySize", "1GB", 1_000_000_000, id="size GB"),
    pytest.param("api.http.maxBodySize", "5KiB", 5_120, id="size KiB powers of 1024"),
    pytest.param("api.http.maxBodySize", "10MiB", 10_485_760, id="size MiB"),
    pytest.param("api.http.maxBodySize", "1GiB", 1_073_741_824, id="size GiB"),
    # addresses
    pytest.param("api.http.addr", "0.0.0.0:8001", Address("0.0.0.0", 8001), id="address ipv4"),
    pytest.param("api.http.addr", "[::]:8001", Address("::", 8001), id="address ipv6 brackets"),
    pytest.param("api.http.addr", ":8001", Address("", 8001), id="address empty host"),
    pytest.param("api.http.addr", "localhost:0", Address("localhost", 0), id="address name"),
    # enums
    pytest.param("logLevel", "warn", "warning", id="logLevel warn is warning"),
    pytest.param("logLevel", "ERROR", "error", id="logLevel any case, normalised lower"),
    pytest.param("logFormat", "JSON", "json", id="logFormat normalised lower"),
    pytest.param("aio.store.sqlite.synchronous", "normal", "NORMAL", id="synchronous upper"),
    pytest.param("aio.store.sqlite.synchronous", "Extra", "EXTRA", id="synchronous EXTRA"),
    # lists and maps
    pytest.param("api.http.cors.allowOrigins", "a, b,,c", ("a", "b", "c"), id="list comma"),
    pytest.param("api.http.cors.allowOrigins", "*", ("*",), id="list any origin"),
    pytest.param("api.http.auth", "k1=v1,k2=v2", {"k1": "v1", "k2": "v2"}, id="map k=v,k=v"),
    pytest.param("api.http.auth", "u=a=b", {"u": "a=b"}, id="map splits at first ="),
    # query
    pytest.param(
        "aio.store.postgres.query",
        "sslmode=require&connect_timeout=10",
        {"sslmode": "require", "connect_timeout": "10"},
        id="query k=v&k=v",
    ),
    pytest.param("aio.store.postgres.query", "", {}, id="query empty"),
    pytest.param("aio.sender.targets", "", [_DEFAULT_TARGET], id="objects empty text"),
    # list of objects
    pytest.param(
        "aio.router.sources",
        '[{"name":"default","type":"tag","data":{"key":"resonate:invoke"}}]',
        [_DEFAULT_SOURCE],
        id="objects JSON text of the spec",
    ),
]


@pytest.mark.parametrize(("key", "text", "expected"), GOOD_TEXT)
def test_value_syntax_good_flag_and_env(tmp_path: Path, key: str, text: str, expected: Any) -> None:
    """Value syntax: the same text is accepted by the flag and by the environment variable."""
    option = next(option for option in OPTIONS if option.key == key)
    assert resolve(tmp_path, [f"{option.flag}={text}"]).config[key] == expected
    if option.type is not OptionType.BOOL:  # a bool flag takes no separate value
        assert resolve(tmp_path, [option.flag, text]).config[key] == expected
    assert resolve(tmp_path, env={option.env: text}).config[key] == expected


BAD_TEXT = [
    pytest.param("metrics.enable", "maybe", "invalid bool", id="bool bad word"),
    pytest.param("aio.store.postgres.port", "54.3", "invalid integer", id="int not decimal"),
    pytest.param("aio.store.postgres.port", "70000", "above the maximum", id="int port range"),
    pytest.param("aio.store.postgres.poolSize", "0", "below the minimum", id="int minimum"),
    pytest.param("aio.poll.ttc", "10", "needs a unit", id="duration bare number rejected"),
    pytest.param("aio.poll.ttc", "1.5", "needs a unit", id="duration bare decimal rejected"),
    pytest.param("aio.poll.ttc", "x", "invalid duration", id="duration garbage"),
    pytest.param("aio.poll.ttc", "1d", "invalid duration", id="duration unknown unit"),
    pytest.param("aio.poll.ttc", "-1s", "invalid duration", id="duration negative"),
    pytest.param("aio.poll.ttc", "0.5ms", "whole number of milliseconds", id="duration sub-ms"),
    pytest.param("aio.poll.ttc", "", "invalid duration", id="duration empty"),
    pytest.param("system.signalTimeout", "0", "below the minimum", id="duration minimum"),
    pytest.param("api.http.maxBodySize", "10XB", "invalid size", id="size unknown unit"),
    pytest.param("api.http.maxBodySize", "MiB", "invalid size", id="size no number"),
    pytest.param("api.http.maxBodySize", "-1", "invalid size", id="size negative"),
    pytest.param("api.http.addr", "8001", "expected host:port", id="address no colon"),
    pytest.param("api.http.addr", "::1:8001", "brackets", id="address ipv6 needs brackets"),
    pytest.param("api.http.addr", "h:99999", "0 to 65535", id="address port range"),
    pytest.param("api.http.addr", "h:x", "0 to 65535", id="address port not a number"),
    pytest.param("api.http.addr", "[::1:8001", "brackets", id="address unbalanced brackets"),
    pytest.param("logLevel", "verbose", "one of debug, info, warning, error", id="enum logLevel"),
    pytest.param("logFormat", "xml", "one of text, json", id="enum logFormat"),
    pytest.param("aio.store.sqlite.synchronous", "OFF", "FULL, EXTRA, NORMAL", id="enum sync"),
    pytest.param("api.http.auth", "novalue", "expected key=value", id="map entry without ="),
    pytest.param("aio.store.postgres.query", "sslmode", "expected k=v&k=v", id="query bad"),
    pytest.param("aio.router.sources", "[{", "invalid JSON", id="objects bad JSON"),
    pytest.param("aio.router.sources", "{}", "'name'", id="objects need a name"),
    pytest.param("aio.router.sources", '"x"', "JSON array", id="objects not an array"),
    pytest.param(
        "aio.router.sources",
        '[{"name":"x","type":"queue","data":{"key":"k"}}]',
        "only 'tag'",
        id="router source type must be tag",
    ),
    pytest.param(
        "aio.sender.targets", '[{"type":"poll","data":{}}]', "'name'", id="target needs a name"
    ),
    pytest.param(
        "aio.sender.targets",
        '[{"name":"a","type":"poll","data":{},"x":1}]',
        "unknown field 'x'",
        id="target unknown field",
    ),
    pytest.param("aio.store.postgres.url", "mysql://h/db", "postgres://", id="url scheme"),
    pytest.param("system.url", "localhost:8001", "http://", id="system.url needs a scheme"),
    pytest.param(
        "api.errorDocsUrl", "docs/errors.md", "http://", id="api.errorDocsUrl needs a scheme"
    ),
    pytest.param(
        "api.errorDocsUrl",
        "https://docs.example.com/errors#top",
        "#fragment",
        id="api.errorDocsUrl has no fragment",
    ),
]


@pytest.mark.parametrize(("key", "text", "fragment"), BAD_TEXT)
def test_value_syntax_bad_names_flag_and_env(
    tmp_path: Path, key: str, text: str, fragment: str
) -> None:
    """A value of the wrong type is a configuration error naming its source (flag, env)."""
    option = next(option for option in OPTIONS if option.key == key)
    by_flag = resolve_error(tmp_path, [f"{option.flag}={text}"])
    assert by_flag.startswith(f"{option.flag}: ") and fragment in by_flag
    by_env = resolve_error(tmp_path, env={option.env: text})
    assert by_env.startswith(f"{option.env}: ") and fragment in by_env


GOOD_FILE = [
    pytest.param("metrics.enable", False, False, id="file bool"),
    pytest.param("metrics.enable", "off", False, id="file bool as string word"),
    pytest.param("aio.store.postgres.port", 6543, 6543, id="file int"),
    pytest.param("aio.store.postgres.port", "6543", 6543, id="file int quoted"),
    pytest.param("aio.store.postgres.password", 1234, "1234", id="file string from a number"),
    pytest.param("aio.poll.ttc", "1h30m", 5_400_000, id="file duration string"),
    pytest.param("aio.poll.ttc", 0, 0, id="file duration 0"),
    pytest.param("api.http.maxBodySize", 2048, 2048, id="file size integer bytes"),
    pytest.param("api.http.maxBodySize", "2KiB", 2048, id="file size with unit"),
    pytest.param("api.http.addr", "[::]:8001", Address("::", 8001), id="file address"),
    pytest.param("api.http.cors.allowOrigins", ["a", "b"], ("a", "b"), id="file list"),
    pytest.param("api.http.auth", {"u": "p", "n": 5}, {"u": "p", "n": "5"}, id="file map"),
    pytest.param(
        "aio.store.postgres.query",
        {"sslmode": "require", "connect_timeout": 10},
        {"sslmode": "require", "connect_timeout": "10"},
        id="file query as mapping",
    ),
    pytest.param(
        "aio.store.postgres.query", "sslmode=require", {"sslmode": "require"}, id="file query str"
    ),
    pytest.param(
        "aio.sender.targets",
        [{"name": "default", "type": "http", "data": {"url": "http://w"}}],
        [{"name": "default", "type": "http", "data": {"url": "http://w"}}],
        id="file objects; a target named default replaces the implicit one",
    ),
    pytest.param("logLevel", None, "info", id="file null means not set"),
]


def _nest(key: str, value: Any) -> dict[str, Any]:
    document: Any = value
    for segment in reversed(key.split(".")):
        document = {segment: document}
    result: dict[str, Any] = document
    return result


@pytest.mark.parametrize(("key", "value", "expected"), GOOD_FILE)
def test_value_syntax_good_file(tmp_path: Path, key: str, value: Any, expected: Any) -> None:
    """Value syntax in the file: YAML types, or the same text as flags."""
    resolved = resolve(tmp_path, file=yaml.safe_dump(_nest(key, value)))
    assert resolved.config[key] == expected


BAD_FILE = [
    pytest.param("metrics.enable", 1, "expected true or false", id="file bool from int"),
    pytest.param("aio.store.postgres.port", 1.5, "expected an integer", id="file int from float"),
    pytest.param("aio.store.postgres.port", True, "expected an integer", id="file int from bool"),
    pytest.param("aio.poll.ttc", 10, "needs a unit", id="file duration bare number"),
    pytest.param("aio.poll.ttc", "10", "needs a unit", id="file duration bare string"),
    pytest.param("api.http.addr", 8001, "expected host:port", id="file address from int"),
    pytest.param("api.http.cors.allowOrigins", {"a": 1}, "list of strings", id="file list"),
    pytest.param("api.http.auth", ["a"], "mapping of strings", id="file map from list"),
    pytest.param("aio.router.sources", "[]", "list of objects", id="file objects from string"),
    pytest.param("aio.store.postgres.host", ["h"], "expected a string", id="file string list"),
    pytest.param("logLevel", 3, "expected one of", id="file enum from int"),
]


@pytest.mark.parametrize(("key", "value", "fragment"), BAD_FILE)
def test_value_syntax_bad_file_names_file_and_key(
    tmp_path: Path, key: str, value: Any, fragment: str
) -> None:
    """A wrong value in the file is an error naming `resonate.yml: <key>`."""
    message = resolve_error(tmp_path, file=yaml.safe_dump(_nest(key, value)))
    assert message.startswith(f"resonate.yml: {key}: "), message
    assert fragment in message


def test_file_error_names_key_as_written(tmp_path: Path) -> None:
    """Errors in the file name the key path as the file spells it (case-insensitive keys)."""
    message = resolve_error(tmp_path, file="AIO:\n  Poll:\n    TTC: x\n")
    assert message.startswith("resonate.yml: AIO.Poll.TTC: invalid duration 'x'")


def test_values_overridden_by_a_higher_source_are_still_validated(tmp_path: Path) -> None:
    """Every given value is checked, even one a flag overrides."""
    message = resolve_error(tmp_path, ["--aio-poll-ttc", "1m"], file="aio:\n  poll:\n    ttc: 10\n")
    assert message.startswith("resonate.yml: aio.poll.ttc:")


# --- flags (config.md §1) -------------------------------------------------------------------

FLAG_FORMS = [
    pytest.param(
        ["--api-http-addr", "127.0.0.1:9000"],
        "api.http.addr",
        Address("127.0.0.1", 9000),
        id="value as next argument",
    ),
    pytest.param(["--log-level=warning"], "logLevel", "warning", id="value after ="),
    pytest.param(["--metrics-enable"], "metrics.enable", True, id="bool flag sets true"),
    pytest.param(["--no-metrics-enable"], "metrics.enable", False, id="--no-x sets false"),
    pytest.param(
        ["--no-metrics-enable", "--metrics-enable"],
        "metrics.enable",
        True,
        id="later bool flag wins",
    ),
    pytest.param(
        ["--system-url=http://a/?x=1"],
        "system.url",
        "http://a/?x=1",
        id="value after = keeps further =",
    ),
]


@pytest.mark.parametrize(("args", "key", "expected"), FLAG_FORMS)
def test_flag_forms(tmp_path: Path, args: list[str], key: str, expected: Any) -> None:
    """A flag takes its value as the next argument or after `=`; a bool flag takes none."""
    assert resolve(tmp_path, args).config[key] == expected


BAD_FLAGS = [
    pytest.param(
        ["--api-http-adr", "x"],
        "unknown flag --api-http-adr (did you mean --api-http-addr?)",
        id="unknown flag suggests the closest",
    ),
    pytest.param(["--no-log-level"], "unknown flag --no-log-level", id="--no- only for bools"),
    pytest.param(["--no-metrics-enable=true"], "takes no value", id="--no-x takes no value"),
    pytest.param(["--log-level"], "--log-level: missing value", id="missing value at the end"),
    pytest.param(["serve"], "unexpected argument 'serve'", id="positional argument"),
    pytest.param(["--config"], "--config: missing value", id="--config without a path"),
    pytest.param(["--config="], "--config: missing value", id="--config with an empty path"),
    pytest.param(
        ["--api-base-url", "http://x"], "unknown flag --api-base-url", id="no flags for legacy keys"
    ),
]


@pytest.mark.parametrize(("args", "fragment"), BAD_FLAGS)
def test_bad_flags(tmp_path: Path, args: list[str], fragment: str) -> None:
    """Unknown flags and malformed arguments are configuration errors."""
    assert fragment in resolve_error(tmp_path, args)


def test_unrelated_resonate_env_vars_are_ignored(tmp_path: Path) -> None:
    """Unrelated RESONATE_* variables (client, SDK, tests) are ignored, whatever they hold."""
    env = {
        name: "{not valid for anything"
        for name in (
            "RESONATE_SERVER",
            "RESONATE_TOKEN",
            "RESONATE_POLLER",
            "RESONATE_GROUP",
            "RESONATE_USERNAME",
            "RESONATE_PASSWORD",
            "RESONATE_TEST_POSTGRES_DSN",
            "RESONATE_LOG",
            "RESONATE_API",
            "RESONATE_AIO_STORE",
        )
    }
    resolved = resolve(tmp_path, env=env)
    assert set(resolved.sources.values()) == {"default"}


# --- file discovery (config.md §1) ----------------------------------------------------------


def test_discovery_no_file_is_fine(tmp_path: Path) -> None:
    """No file: defaults apply and no file is reported."""
    resolved = resolve(tmp_path)
    assert resolved.file is None


def test_discovery_resonate_yml(tmp_path: Path) -> None:
    """resonate.yml in the working directory is read."""
    resolved = resolve(tmp_path, file="logLevel: debug\n")
    assert resolved.file == tmp_path / "resonate.yml"
    assert resolved.sources["logLevel"] == "file resonate.yml"


def test_discovery_resonate_yaml(tmp_path: Path) -> None:
    """resonate.yaml is read when there is no resonate.yml."""
    resolved = resolve(tmp_path, file="logLevel: debug\n", file_name="resonate.yaml")
    assert resolved.file == tmp_path / "resonate.yaml"
    assert resolved.sources["logLevel"] == "file resonate.yaml"


def test_discovery_both_exist_yml_wins_with_warning(tmp_path: Path) -> None:
    """If both exist, resonate.yml wins and a warning names the other."""
    (tmp_path / "resonate.yaml").write_text("logLevel: error\n")
    resolved = resolve(tmp_path, file="logLevel: debug\n")
    assert resolved.config["logLevel"] == "debug"
    assert len(resolved.warnings) == 1
    assert "resonate.yaml" in resolved.warnings[0] and "using resonate.yml" in resolved.warnings[0]


EXPLICIT = [
    pytest.param(["--config", "conf/x.yml"], {}, id="--config PATH relative to cwd"),
    pytest.param(["-c", "conf/x.yml"], {}, id="-c PATH"),
    pytest.param(["--config=conf/x.yml"], {}, id="--config=PATH"),
    pytest.param([], {"RESONATE_CONFIG": "conf/x.yml"}, id="RESONATE_CONFIG"),
    pytest.param(
        ["-c", "conf/x.yml"],
        {"RESONATE_CONFIG": "missing.yml"},
        id="--config beats RESONATE_CONFIG",
    ),
]


@pytest.mark.parametrize(("args", "env"), EXPLICIT)
def test_discovery_explicit_file(tmp_path: Path, args: list[str], env: dict[str, str]) -> None:
    """--config/-c or RESONATE_CONFIG name the file; the default names are then not read."""
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "x.yml").write_text("logLevel: error\n")
    (tmp_path / "resonate.yml").write_text("logLevel: debug\n")
    resolved = resolve(tmp_path, args, env)
    assert resolved.config["logLevel"] == "error"
    assert resolved.file == tmp_path / "conf" / "x.yml"
    assert resolved.sources["logLevel"] == "file conf/x.yml"


def test_discovery_absolute_config_path(tmp_path: Path) -> None:
    """An absolute --config path is used as is."""
    path = tmp_path / "abs.yml"
    path.write_text("logFormat: json\n")
    other = tmp_path / "elsewhere"
    other.mkdir()
    resolved = resolve_config(["--config", str(path)], {}, other)
    assert resolved.config["logFormat"] == "json" and resolved.file == path


BAD_FILES = [
    pytest.param(
        ["--config", "nope.yml"],
        None,
        "--config: config file nope.yml does not exist",
        id="explicit missing file",
    ),
    pytest.param(["-c", "."], None, "is not a file", id="explicit directory"),
    pytest.param([], "- a\n- b\n", "expected a mapping of options", id="not a mapping"),
    pytest.param([], "just text\n", "expected a mapping of options", id="scalar document"),
    pytest.param([], "a: [\n", "invalid YAML", id="invalid YAML"),
    pytest.param([], "logLevel: info\nlogLevel: debug\n", "appears twice", id="duplicate key"),
    pytest.param([], "api: 5\n", "resonate.yml: api: expected a mapping", id="section not map"),
]


@pytest.mark.parametrize(("args", "file", "fragment"), BAD_FILES)
def test_discovery_bad_file(
    tmp_path: Path, args: list[str], file: str | None, fragment: str
) -> None:
    """An explicit missing file, or a file that is not a YAML mapping, is an error."""
    assert fragment in resolve_error(tmp_path, args, file=file)


def test_discovery_explicit_missing_via_env(tmp_path: Path) -> None:
    """RESONATE_CONFIG naming a missing file is an error naming the variable."""
    message = resolve_error(tmp_path, env={"RESONATE_CONFIG": "gone.yml"})
    assert message == "RESONATE_CONFIG: config file gone.yml does not exist"


def test_empty_file_is_no_options(tmp_path: Path) -> None:
    """An empty (or comments-only) file sets nothing."""
    resolved = resolve(tmp_path, file="# nothing yet\n")
    assert resolved.file is not None and set(resolved.sources.values()) == {"default"}


# --- keys: case-insensitive, unknown ones (config.md §1) ------------------------------------

CASE_INSENSITIVE = [
    pytest.param("LOGLEVEL: debug\n", "logLevel", "debug", id="top-level key upper case"),
    pytest.param(
        "Api:\n  HTTP:\n    MaxBodySize: 1KiB\n",
        "api.http.maxBodySize",
        1024,
        id="nested keys mixed case",
    ),
    pytest.param(
        "aio:\n  store:\n    postgres:\n      POOLSIZE: 3\n",
        "aio.store.postgres.poolSize",
        3,
        id="leaf key upper case",
    ),
]


@pytest.mark.parametrize(("file", "key", "expected"), CASE_INSENSITIVE)
def test_file_keys_case_insensitive(tmp_path: Path, file: str, key: str, expected: Any) -> None:
    """File keys are matched case-insensitively; sources use the canonical spelling."""
    resolved = resolve(tmp_path, file=file)
    assert resolved.config[key] == expected
    assert resolved.sources[key] == "file resonate.yml"


def test_file_key_twice_in_different_case_is_an_error(tmp_path: Path) -> None:
    """The same key spelled twice in different case is ambiguous: an error."""
    message = resolve_error(tmp_path, file="logLevel: debug\nloglevel: info\n")
    assert "set twice" in message


UNKNOWN_KEYS = [
    pytest.param(
        "api:\n  htp:\n    addr: ':1'\n",
        "unknown key 'api.htp.addr'",
        "api.http.addr",
        id="unknown section suggests the option",
    ),
    pytest.param(
        "aio:\n  poll:\n    tcc: 1m\n",
        "unknown key 'aio.poll.tcc'",
        "aio.poll.ttc",
        id="unknown leaf suggests the option",
    ),
    pytest.param("logLevle: debug\n", "unknown key 'logLevle'", "logLevel", id="typo top level"),
    pytest.param(
        "aio:\n  store:\n    postgres:\n      pasword: x\n",
        "unknown key 'aio.store.postgres.pasword'",
        "aio.store.postgres.password",
        id="typo deep",
    ),
]


@pytest.mark.parametrize(("file", "fragment", "suggestion"), UNKNOWN_KEYS)
def test_unknown_file_key_names_closest(
    tmp_path: Path, file: str, fragment: str, suggestion: str
) -> None:
    """An unknown key is an error naming the key and the closest valid one."""
    message = resolve_error(tmp_path, file=file)
    assert message.startswith("resonate.yml: ") and fragment in message
    assert f"did you mean {suggestion!r}" in message


# --- config.md §3: invocations that MUST work -----------------------------------------------

POSTGRES_EXPECTED = {
    "aio.store.postgres.enable": True,
    "aio.store.postgres.host": "postgres.example.com",
    "aio.store.postgres.database": "resonate",
    "aio.store.postgres.username": "resonate",
    "aio.store.postgres.password": "secret",
    "aio.store.postgres.query": {"sslmode": "require"},
    "aio.store.postgres.port": 5432,
}


def test_postgres_yml_example(tmp_path: Path) -> None:
    """§3: `resonate serve` with the postgres.yml example selects PostgreSQL."""
    resolved = resolve(tmp_path, file=POSTGRES_YML)
    for key, expected in POSTGRES_EXPECTED.items():
        assert resolved.config[key] == expected, key
    assert resolved.config.store_kind == "postgres"
    assert resolved.warnings == []


def test_postgres_yml_example_with_config_flag(tmp_path: Path) -> None:
    """§3: the same file given with --config <file>."""
    (tmp_path / "pg.yml").write_text(POSTGRES_YML)
    resolved = resolve(tmp_path, ["--config", "pg.yml"])
    assert resolved.config["aio.store.postgres.host"] == "postgres.example.com"
    assert resolved.config.store_kind == "postgres"


def test_postgres_flag_invocation(tmp_path: Path) -> None:
    """§3: the verbatim flag invocation resolves to a PostgreSQL store."""
    resolved = resolve(tmp_path, POSTGRES_FLAGS)
    config = resolved.config
    assert config.store_kind == "postgres"
    assert config["aio.store.postgres.enable"] is True
    assert config["aio.store.postgres.host"] == "localhost"
    assert config["aio.store.postgres.database"] == "resonate"
    assert config["aio.store.postgres.username"] == "resonate"
    assert config["aio.store.postgres.password"] == "secret"
    assert resolved.sources["aio.store.postgres.password"] == "flag --aio-store-postgres-password"


@pytest.mark.skipif(not SPEC_EXAMPLES.is_dir(), reason="spec examples not available")
@pytest.mark.parametrize("name", ["postgres.yml", "legacy-defaults.yml"])
def test_spec_example_files_match_the_copies_here(name: str) -> None:
    """The verbatim copies in this test are those of config-examples/."""
    copies = {"postgres.yml": POSTGRES_YML, "legacy-defaults.yml": LEGACY_DEFAULTS_YML}
    assert (SPEC_EXAMPLES / name).read_text() == copies[name]


# --- config.md §5: legacy layout ------------------------------------------------------------

LEGACY_EXPECTED = [
    ("system.url", "http://localhost:8001", "legacy api.baseUrl"),
    ("api.http.addr", Address("0.0.0.0", 8001), "legacy api.subsystems.http.addr"),
    ("api.http.timeout", 10_000, "legacy api.subsystems.http.timeout"),
    ("api.grpc.addr", Address("0.0.0.0", 50051), "legacy api.subsystems.grpc.addr"),
    ("api.grpc.enable", True, "default"),
    ("aio.store.postgres.enable", False, "legacy aio.subsystems.store.config.kind"),
    ("aio.store.sqlite.path", "resonate.db", "legacy aio.subsystems.store.config.sqlite.path"),
    ("aio.store.sqlite.txTimeout", 250, "legacy aio.subsystems.store.config.sqlite.txTimeout"),
    ("aio.store.postgres.host", "localhost", "legacy aio.subsystems.store.config.postgres.host"),
    ("aio.store.postgres.port", 5432, "legacy aio.subsystems.store.config.postgres.port"),
    ("aio.store.postgres.txTimeout", 250, "legacy aio.subsystems.store.config.postgres.txTimeout"),
    ("aio.http.timeout", 10_000, "legacy aio.subsystems.network.config.timeout"),
    ("system.submissionBatchSize", 100, "file resonate.yml"),
    ("system.completionBatchSize", 100, "file resonate.yml"),
    ("metrics.addr", Address("0.0.0.0", 9090), "legacy metrics.port"),
    ("aio.store.postgres.poolSize", 10, "default"),
]


@pytest.mark.parametrize(
    ("key", "expected", "source"), LEGACY_EXPECTED, ids=[key for key, _, _ in LEGACY_EXPECTED]
)
def test_legacy_defaults_loads(tmp_path: Path, key: str, expected: Any, source: str) -> None:
    """§5: legacy-defaults.yml MUST load; its keys map to canonical ones."""
    resolved = resolve(tmp_path, file=LEGACY_DEFAULTS_YML)
    assert resolved.config[key] == expected
    assert resolved.sources[key] == source


def test_legacy_defaults_single_warning(tmp_path: Path) -> None:
    """§5: exactly one warning, listing the file, the mapped keys and the ignored keys."""
    resolved = resolve(tmp_path, file=LEGACY_DEFAULTS_YML)
    assert len(resolved.warnings) == 1
    warning = resolved.warnings[0]
    assert warning.startswith("config: resonate.yml uses the deprecated legacy layout; mapped: ")
    for mapped in [
        "api.baseUrl→system.url",
        "api.subsystems.http.addr→api.http.addr",
        "aio.subsystems.store.config.kind→aio.store.postgres.enable",
        "aio.subsystems.store.subsystem.batchSize→system.submissionBatchSize",
        "aio.subsystems.network.config.timeout→aio.http.timeout",
        "metrics.port→metrics.addr",
    ]:
        assert mapped in warning
    ignored = warning.split("; ignored: ")[1]
    for key in [
        "api.size",
        "aio.size",
        "aio.subsystems.store.subsystem.size",
        "aio.subsystems.store.subsystem.workers",
        "aio.subsystems.network.subsystem",
        "aio.subsystems.queuing",
        "system.notificationCacheSize",
    ]:
        assert key in ignored
    assert "conflicts" not in warning, "equal values are no conflict"
    assert "\n" not in warning


LEGACY_CASES = [
    pytest.param(
        "api:\n  baseUrl: http://old:1\n  http:\n    addr: '127.0.0.1:2'\n"
        "  subsystems:\n    http:\n      addr: '0.0.0.0:3'\nsystem:\n  url: http://new:1\n",
        {"system.url": "http://new:1", "api.http.addr": Address("127.0.0.1", 2)},
        [
            "conflicts: ",
            "api.baseUrl ignored, system.url wins",
            "api.subsystems.http.addr ignored, api.http.addr wins",
        ],
        id="canonical keys in the same file win; the conflict is named",
    ),
    pytest.param(
        "aio:\n  subsystems:\n    store:\n      subsystem:\n        batchSize: 7\n",
        {"system.submissionBatchSize": 7},
        ["aio.subsystems.store.subsystem.batchSize→system.submissionBatchSize"],
        id="batchSize maps to submissionBatchSize",
    ),
    pytest.param(
        "aio:\n  subsystems:\n    store:\n      subsystem:\n        batchSize: 7\n"
        "system:\n  submissionBatchSize: 9\n",
        {"system.submissionBatchSize": 9},
        ["batchSize ignored, system.submissionBatchSize wins"],
        id="batchSize unless the file also sets submissionBatchSize",
    ),
    pytest.param(
        "aio:\n  subsystems:\n    store:\n      config:\n        kind: postgres\n",
        {"aio.store.postgres.enable": True},
        [],
        id="kind postgres enables postgres",
    ),
    pytest.param(
        "metricsAddr: '127.0.0.1:9999'\n",
        {"metrics.addr": Address("127.0.0.1", 9999)},
        ["metricsAddr→metrics.addr"],
        id="metricsAddr maps to metrics.addr",
    ),
    pytest.param(
        "metrics:\n  port: 9100\n",
        {"metrics.addr": Address("0.0.0.0", 9100)},
        ["metrics.port→metrics.addr"],
        id="metrics.port maps to 0.0.0.0:<port>",
    ),
    pytest.param(
        "api:\n  subsystems:\n    http:\n      cors: x\n      addr: ':5'\n"
        "aio:\n  subsystems:\n    sqs:\n      enabled: true\n",
        {"api.http.addr": Address("", 5)},
        ["ignored: api.subsystems.http.cors, aio.subsystems.sqs"],
        id="other keys inside subsystems are ignored and listed",
    ),
    pytest.param(
        "api:\n  subsystems:\n    http:\n      auth: {u: p}\n"
        "aio:\n  subsystems:\n    store:\n      config:\n        postgres:\n"
        "          query: {sslmode: disable}\n",
        {"api.http.auth": {"u": "p"}, "aio.store.postgres.query": {"sslmode": "disable"}},
        [],
        id="legacy auth map and query mapping",
    ),
    pytest.param(
        "Api:\n  BaseURL: http://x:1\n",
        {"system.url": "http://x:1"},
        ["api.baseUrl→system.url"],
        id="legacy keys are case-insensitive too",
    ),
]


@pytest.mark.parametrize(("file", "expected", "fragments"), LEGACY_CASES)
def test_legacy_layout_rules(
    tmp_path: Path, file: str, expected: dict[str, Any], fragments: list[str]
) -> None:
    """§5 mapping rules; still exactly one warning."""
    resolved = resolve(tmp_path, file=file)
    for key, value in expected.items():
        assert resolved.config[key] == value, key
    assert len(resolved.warnings) == 1
    for fragment in fragments:
        assert fragment in resolved.warnings[0]


def test_legacy_env_and_flags_still_win(tmp_path: Path) -> None:
    """Legacy values are file values: env and flags override them."""
    resolved = resolve(
        tmp_path,
        ["--api-http-addr", ":7"],
        {"RESONATE_SYSTEM_URL": "http://e:1"},
        file=LEGACY_DEFAULTS_YML,
    )
    assert resolved.config["api.http.addr"] == Address("", 7)
    assert resolved.config["system.url"] == "http://e:1"


BAD_LEGACY = [
    pytest.param(
        "aio:\n  subsystems:\n    store:\n      config:\n        kind: mysql\n",
        "resonate.yml: aio.subsystems.store.config.kind: invalid store kind 'mysql'",
        id="store kind other than sqlite/postgres",
    ),
    pytest.param(
        "api:\n  subsystems:\n    http:\n      timeout: 10\n",
        "resonate.yml: api.subsystems.http.timeout: invalid duration",
        id="wrong type under a legacy key names it",
    ),
    pytest.param(
        "metrics:\n  port: 70000\n",
        "resonate.yml: metrics.port: invalid port",
        id="metrics.port range",
    ),
]


@pytest.mark.parametrize(("file", "fragment"), BAD_LEGACY)
def test_legacy_layout_errors(tmp_path: Path, file: str, fragment: str) -> None:
    """§5: bad legacy values are errors naming the legacy key."""
    assert fragment in resolve_error(tmp_path, file=file)


# --- config.md §4: dev ----------------------------------------------------------------------


def test_dev_in_memory_store(tmp_path: Path) -> None:
    """§4: dev uses sqlite :memory: with PostgreSQL off; no warning when no store option."""
    resolved = resolve(tmp_path, dev=True)
    assert resolved.config["aio.store.sqlite.path"] == ":memory:"
    assert resolved.config["aio.store.postgres.enable"] is False
    assert resolved.config.store_kind == "sqlite"
    assert resolved.warnings == []


def test_dev_ignores_store_options_from_any_source_with_a_warning(tmp_path: Path) -> None:
    """§4: store options from file, env and flags are ignored, named in one warning; other
    options are read as for serve."""
    resolved = resolve(
        tmp_path,
        [*POSTGRES_FLAGS, "--log-level", "debug"],
        {"RESONATE_AIO_STORE_SQLITE_PATH": "x.db"},
        file="aio:\n  store:\n    sqlite:\n      txTimeout: 5s\n",
        dev=True,
    )
    config = resolved.config
    assert config["aio.store.sqlite.path"] == ":memory:"
    assert config["aio.store.postgres.enable"] is False
    assert config["aio.store.postgres.host"] == "localhost"
    assert config["aio.store.sqlite.txTimeout"] == 10_000
    assert config["logLevel"] == "debug"
    assert len(resolved.warnings) == 1
    warning = resolved.warnings[0]
    for named in [
        "aio.store.postgres.host (flag --aio-store-postgres-host)",
        "aio.store.sqlite.path (env RESONATE_AIO_STORE_SQLITE_PATH)",
        "aio.store.sqlite.txTimeout (file resonate.yml)",
    ]:
        assert named in warning


# --- derived values -------------------------------------------------------------------------

SYSTEM_URL = [
    pytest.param([], "http://localhost:8001", id="default wildcard 0.0.0.0 -> localhost"),
    pytest.param(["--api-http-addr", "[::]:9000"], "http://localhost:9000", id="wildcard ::"),
    pytest.param(["--api-http-addr", ":9000"], "http://localhost:9000", id="empty host"),
    pytest.param(
        ["--api-http-addr", "127.0.0.1:9000"], "http://127.0.0.1:9000", id="specific IPv4 host"
    ),
    pytest.param(
        ["--api-http-addr", "[::1]:9000"], "http://[::1]:9000", id="IPv6 host in brackets"
    ),
    pytest.param(["--api-http-addr", "api.internal:80"], "http://api.internal:80", id="host name"),
    pytest.param(
        ["--system-url", "https://r.example.com/"],
        "https://r.example.com",
        id="configured system.url wins, trailing slash dropped",
    ),
]


@pytest.mark.parametrize(("args", "expected"), SYSTEM_URL)
def test_system_url_d7(tmp_path: Path, args: list[str], expected: str) -> None:
    """http-api.md D7: system.url default from api.http.addr."""
    assert resolve(tmp_path, args).config.system_url() == expected


ROUTER_SENDER = [
    pytest.param([], "aio.router.sources", [_DEFAULT_SOURCE], id="default source appended"),
    pytest.param(
        ['--aio-router-sources={"name":"a","type":"tag","data":{"key":"t"}}'],
        "aio.router.sources",
        [{"name": "a", "type": "tag", "data": {"key": "t"}}, _DEFAULT_SOURCE],
        id="default source appended after the configured ones",
    ),
    pytest.param(
        ['--aio-router-sources=[{"name":"default","type":"tag","data":{"key":"t"}}]'],
        "aio.router.sources",
        [{"name": "default", "type": "tag", "data": {"key": "t"}}],
        id="no default source added when one is named default",
    ),
    pytest.param([], "aio.sender.targets", [_DEFAULT_TARGET], id="default target added"),
    pytest.param(
        ['--aio-sender-targets=[{"name":"default","type":"http","data":{"url":"http://w"}}]'],
        "aio.sender.targets",
        [{"name": "default", "type": "http", "data": {"url": "http://w"}}],
        id="no default target added when one is named default",
    ),
]


@pytest.mark.parametrize(("args", "key", "expected"), ROUTER_SENDER)
def test_router_sources_and_sender_targets_defaults(
    tmp_path: Path, args: list[str], key: str, expected: Any
) -> None:
    """http-api.md §4.4/§4.5: the implicit `default` source and target."""
    assert resolve(tmp_path, args).config[key] == expected


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        ([], {}, True),
        (["--no-api-grpc-enable"], {}, False),
        ([], {"RESONATE_API_GRPC_ENABLE": "false"}, False),
        (["--api-grpc-enable"], {"RESONATE_API_GRPC_ENABLE": "false"}, True),
    ],
    ids=["default on", "flag off", "env off", "flag wins over env"],
)
def test_grpc_enable_is_on_by_default_and_switchable(
    tmp_path: Path, args: list[str], env: dict[str, str], expected: bool
) -> None:
    """api.grpc.enable: true by default now that the gRPC adapter exists (docs/grpc.md)."""
    assert resolve(tmp_path, args, env=env).config["api.grpc.enable"] is expected


def test_grpc_enable_overridden_to_false_is_fine(tmp_path: Path) -> None:
    """Only the effective value counts: a flag turning gRPC off wins over the file."""
    resolved = resolve(tmp_path, ["--no-api-grpc-enable"], file="api:\n  grpc:\n    enable: true\n")
    assert resolved.config["api.grpc.enable"] is False


def test_config_is_immutable_and_complete(tmp_path: Path) -> None:
    """Config holds every option; its mapping cannot be changed; Config.default overrides."""
    config = resolve(tmp_path).config
    assert set(config.values) == {option.key for option in OPTIONS}
    with pytest.raises(TypeError):
        config.values["logLevel"] = "x"  # type: ignore[index]
    assert Config.default({"aio.store.postgres.enable": True}).store_kind == "postgres"
    with pytest.raises(ValueError):
        Config({"logLevel": "info"})


# --- config.md §6: rendering ----------------------------------------------------------------

SECRET_FILE = """\
api:
  http:
    auth: {admin: hunter2}
  auth:
    publicKey: |
      -----BEGIN PUBLIC KEY-----
      MIIB
      -----END PUBLIC KEY-----
aio:
  poll:
    auth: {worker: pollpass}
  store:
    postgres:
      password: pgpass
      url: postgres://u:urlpass@h/db
"""


@pytest.mark.parametrize("output", ["yaml", "json"])
def test_render_masks_secrets(tmp_path: Path, output: str) -> None:
    """§6: passwords, auth map values, the postgres url and inline PEM print as ***."""
    text = render_config(resolve(tmp_path, file=SECRET_FILE), output=output)
    for secret in ["hunter2", "pollpass", "pgpass", "urlpass", "MIIB"]:
        assert secret not in text
    document = yaml.safe_load(text) if output == "yaml" else json.loads(text)
    assert document["api"]["http"]["auth"] == {"admin": "***"}
    assert document["aio"]["poll"]["auth"] == {"worker": "***"}
    assert document["aio"]["store"]["postgres"]["password"] == "***"
    assert document["aio"]["store"]["postgres"]["url"] == "***"
    assert document["api"]["auth"]["publicKey"] == "***"


def test_render_shows_public_key_path(tmp_path: Path) -> None:
    """§6: a PEM file path is not a secret; only inline PEM is masked."""
    text = render_config(resolve(tmp_path, ["--api-auth-public-key", "/etc/key.pem"]))
    assert yaml.safe_load(text)["api"]["auth"]["publicKey"] == "/etc/key.pem"


def test_render_yaml_reads_back_as_the_same_config(tmp_path: Path) -> None:
    """config show prints canonical keys in file syntax: read back, it is the same config."""
    first = resolve(
        tmp_path,
        ["--aio-poll-ttc", "1h30m", "--api-http-addr", "[::1]:9000", "--log-level", "warn"],
        file=POSTGRES_YML.replace('password: "secret"', 'password: ""'),
    )
    (tmp_path / "shown").mkdir()
    (tmp_path / "shown" / "resonate.yml").write_text(render_config(first, with_sources=True))
    second = resolve_config([], {}, tmp_path / "shown")
    assert second.config.values == first.config.values


def test_render_sources_comments(tmp_path: Path) -> None:
    """§6 --sources: a comment per option naming its origin."""
    resolved = resolve(
        tmp_path,
        ["--log-level", "debug"],
        {"RESONATE_LOG_FORMAT": "json"},
        file="metrics:\n  enable: false\napi:\n  baseUrl: http://x:1\n",
    )
    lines = render_config(resolved, with_sources=True).splitlines()
    assert "logLevel: debug  # flag --log-level" in lines
    assert "logFormat: json  # env RESONATE_LOG_FORMAT" in lines
    assert "  enable: false  # file resonate.yml" in lines
    assert "  url: http://x:1  # legacy api.baseUrl" in lines
    assert "    timeout: 10s  # default" in lines


def test_render_json_with_sources(tmp_path: Path) -> None:
    """-o json --sources: {"config": ..., "sources": {key: origin}}."""
    document = json.loads(
        render_config(resolve(tmp_path, ["--log-level=debug"]), output="json", with_sources=True)
    )
    assert document["config"]["logLevel"] == "debug"
    assert document["sources"]["logLevel"] == "flag --log-level"
    assert document["sources"]["logFormat"] == "default"


def test_render_unknown_output_format(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        render_config(resolve(tmp_path), output="toml")


def test_options_help_lists_every_flag_and_env() -> None:
    """`serve --help` epilog: every flag with its default and environment variable."""
    text = format_options_help()
    assert "--config" in text and "RESONATE_CONFIG" in text
    for option in OPTIONS:
        assert option.flag.removeprefix("--") in text
        assert option.env in text
    assert "[" not in text, "square brackets would be eaten by Rich markup"


# --- resonate config show -------------------------------------------------------------------


def test_config_show_prints_yaml_and_warnings(
    clean_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """§6: YAML on stdout, legacy warning on stderr, exit 0."""
    (clean_env / "resonate.yml").write_text(LEGACY_DEFAULTS_YML)
    assert run_config_show(["--sources"]) == 0
    captured = capsys.readouterr()
    assert "addr: 0.0.0.0:8001  # legacy api.subsystems.http.addr" in captured.out
    assert "deprecated legacy layout" in captured.err
    assert captured.err.count("\n") == 1


def test_config_show_json_and_flags(
    clean_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """§6: -o json, and every serve flag and the environment are honoured."""
    monkeypatch.setenv("RESONATE_LOG_FORMAT", "json")
    assert run_config_show(["-o", "json", *POSTGRES_FLAGS]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["aio"]["store"]["postgres"]["password"] == "***"
    assert document["aio"]["store"]["postgres"]["enable"] is True
    assert document["logFormat"] == "json"


BAD_SHOW = [
    pytest.param(
        ["--aio-poll-ttc", "10"], "error: --aio-poll-ttc: invalid duration", id="bad value"
    ),
    pytest.param(["-o", "toml"], "error: -o: unknown output format 'toml'", id="bad format"),
    pytest.param(["--nope"], "error: unknown flag --nope", id="unknown flag"),
]


@pytest.mark.parametrize(("args", "fragment"), BAD_SHOW)
def test_config_show_errors_exit_2(
    clean_env: Path, capsys: pytest.CaptureFixture[str], args: list[str], fragment: str
) -> None:
    """§6: a configuration error prints `error: <message>` and exits 2."""
    assert run_config_show(args) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(fragment)
