"""Resolving the configuration: every source, in precedence order, into one typed ``Config``.

Precedence per option: flag > environment variable > file > legacy key of the file > default.
Every value given by any source is validated, even one a higher source overrides.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from types import MappingProxyType
from typing import Any

from resonate.server.config.convert import copy_value, from_file, from_text
from resonate.server.config.errors import ConfigError
from resonate.server.config.file import FileContents, locate_config_file, read_config_file
from resonate.server.config.flags import parse_flags
from resonate.server.config.legacy import LegacyUse, legacy_warning
from resonate.server.config.options import OPTIONS, OPTIONS_BY_KEY, Option
from resonate.server.config.values import Address

_WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})

DEFAULT_ROUTER_SOURCE: Mapping[str, Any] = MappingProxyType(
    {"name": "default", "type": "tag", "data": {"key": "resonate:invoke"}}
)
DEFAULT_SENDER_TARGET: Mapping[str, Any] = MappingProxyType(
    {"name": "default", "type": "poll", "data": {"cast": "any", "group": "default"}}
)

DEV_STORE_VALUES: Mapping[str, Any] = MappingProxyType(
    {"aio.store.sqlite.path": ":memory:", "aio.store.postgres.enable": False}
)
DEV_SOURCE = "dev (in-memory store)"


@dataclass(frozen=True, slots=True)
class Config:
    """The effective configuration: every option of config.md §2, typed.

    Durations are int milliseconds, sizes int bytes, addresses ``Address``, lists of strings
    tuples, maps ``dict[str, str]``, lists of objects ``list[dict]``.
    """

    values: Mapping[str, Any]

    def __post_init__(self) -> None:
        missing = [option.key for option in OPTIONS if option.key not in self.values]
        unknown = [key for key in self.values if key not in OPTIONS_BY_KEY]
        if missing or unknown:
            raise ValueError(f"Config values: missing {missing}, unknown {unknown}")

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    @classmethod
    def default(cls, overrides: Mapping[str, Any] | None = None) -> Config:
        """The configuration of no sources, with some typed values replaced (for tests and
        embedding); like ``resolve_config``, it holds the implicit default source and target."""
        values = {option.key: copy_value(option.default) for option in OPTIONS}
        _add_defaults(values)
        values.update(overrides or {})
        return cls(MappingProxyType(values))

    @property
    def store_kind(self) -> str:
        return "postgres" if self.values["aio.store.postgres.enable"] else "sqlite"

    def system_url(self, bound_port: int | None = None) -> str:
        """Base of ``href`` links (D7), without a trailing ``/``; ``bound_port`` is the port
        the API listener actually got, when it was configured as 0."""
        configured: str = self.values["system.url"]
        if configured:
            return configured.rstrip("/")
        address: Address = self.values["api.http.addr"]
        port = bound_port if bound_port is not None and address.port == 0 else address.port
        if address.host in _WILDCARD_HOSTS:
            return f"http://localhost:{port}"
        host = f"[{address.host}]" if ":" in address.host else address.host
        return f"http://{host}:{port}"


@dataclass(frozen=True, slots=True)
class ResolvedConfig:
    """A ``Config`` and how it came about: each option's origin, warnings, the file read."""

    config: Config
    sources: Mapping[str, str]
    warnings: list[str] = field(default_factory=list)
    file: Path | None = None


class _Rank(IntEnum):
    """Higher wins."""

    LEGACY = 1
    FILE = 2
    ENV = 3
    FLAG = 4


@dataclass(frozen=True, slots=True)
class _Candidate:
    rank: _Rank
    raw: object
    source: str  # for ``sources``: "file resonate.yml", "env RESONATE_X", "flag --x", ...
    where: str  # prefix of error messages: "resonate.yml: aio.poll.ttc", "RESONATE_X", "--x"
    written: str = ""  # for file candidates, the key as written in the file
    priority: int = 0

    def parse(self, option: Option) -> Any:
        try:
            if self.rank in (_Rank.FILE, _Rank.LEGACY):
                return from_file(option, self.raw)
            assert isinstance(self.raw, tuple)
            return from_text(option, self.raw)
        except ValueError as error:
            raise ConfigError(f"{self.where}: {error}") from error


def resolve_config(
    args: Sequence[str], env: Mapping[str, str], cwd: Path, *, dev: bool = False
) -> ResolvedConfig:
    """The configuration ``resonate serve`` (or ``dev`` when ``dev``) would run with.

    ``args`` are the raw arguments after the command (``--config``, option flags); ``env`` the
    process environment; ``cwd`` where ``resonate.yml`` is looked for and relative paths start.
    """
    flags = parse_flags(args)
    located, warnings = locate_config_file(flags.config, flags.config_flag, env, cwd)
    contents = read_config_file(located) if located is not None else None

    candidates: dict[str, list[_Candidate]] = {option.key: [] for option in OPTIONS}
    if contents is not None:
        _add_file_candidates(contents, candidates)
    for option in OPTIONS:
        if option.env in env:
            text = env[option.env]
            candidates[option.key].append(
                _Candidate(_Rank.ENV, (text,), f"env {option.env}", option.env)
            )
    for key, flag_value in flags.values.items():
        candidates[key].append(
            _Candidate(_Rank.FLAG, flag_value.texts, f"flag {flag_value.flag}", flag_value.flag)
        )

    if dev:
        warnings.extend(_drop_store_options(candidates))

    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    winners: dict[str, _Candidate] = {}
    conflicts: list[str] = []
    for option in OPTIONS:
        parsed = [(candidate, candidate.parse(option)) for candidate in candidates[option.key]]
        if not parsed:
            values[option.key] = copy_value(option.default)
            sources[option.key] = "default"
            continue
        parsed.sort(key=lambda pair: (pair[0].rank, pair[0].priority))
        winner, value = parsed[-1]
        values[option.key], sources[option.key] = value, winner.source
        winners[option.key] = winner
        conflicts.extend(_legacy_conflicts(parsed))

    if dev:
        for key, value in DEV_STORE_VALUES.items():
            values[key], sources[key] = value, DEV_SOURCE

    _check_effective_values(values, winners)
    _add_defaults(values)
    if contents is not None and contents.is_legacy:
        warnings.append(_legacy_warning(contents, conflicts))
    return ResolvedConfig(
        config=Config(MappingProxyType(values)),
        sources=MappingProxyType(sources),
        warnings=warnings,
        file=located.path if located is not None else None,
    )


def _add_file_candidates(contents: FileContents, candidates: dict[str, list[_Candidate]]) -> None:
    name = contents.file.name
    for entry in contents.entries:
        if entry.legacy_key is None:
            rank, source, written = _Rank.FILE, f"file {name}", entry.where
        else:
            rank, source, written = _Rank.LEGACY, f"legacy {entry.legacy_key}", entry.legacy_key
        candidates[entry.key].append(
            _Candidate(rank, entry.value, source, f"{name}: {entry.where}", written, entry.priority)
        )


def _drop_store_options(candidates: dict[str, list[_Candidate]]) -> list[str]:
    """``resonate dev`` ignores store options from every source (config.md §4)."""
    ignored: list[str] = []
    for key, given in candidates.items():
        if OPTIONS_BY_KEY[key].is_store_option and given:
            ignored.extend(f"{key} ({candidate.source})" for candidate in given)
            given.clear()
    if not ignored:
        return []
    return [
        "config: resonate dev always uses an in-memory SQLite store; ignoring store options: "
        + ", ".join(ignored)
    ]


def _legacy_conflicts(parsed: list[tuple[_Candidate, Any]]) -> list[str]:
    """A canonical key and a legacy key of the same file (or two legacy keys) that disagree."""
    in_file = [pair for pair in parsed if pair[0].rank in (_Rank.FILE, _Rank.LEGACY)]
    if not any(candidate.rank is _Rank.LEGACY for candidate, _ in in_file):
        return []
    kept, kept_value = in_file[-1]
    return [
        f"{candidate.written} ignored, {kept.written} wins"
        for candidate, value in in_file[:-1]
        if value != kept_value
    ]


def _legacy_warning(contents: FileContents, conflicts: list[str]) -> str:
    mapped = [
        (entry.legacy_key, entry.key) for entry in contents.entries if entry.legacy_key is not None
    ]
    use = LegacyUse(mapped=mapped, ignored=contents.ignored, conflicts=conflicts)
    return legacy_warning(contents.file.name, use)


def _check_effective_values(values: Mapping[str, Any], winners: Mapping[str, _Candidate]) -> None:
    """Rules on the winning value of one option, reported against the source that set it."""

    def fail(key: str, message: str) -> ConfigError:
        winner = winners.get(key)
        return ConfigError(f"{winner.where if winner else key}: {message}")

    url: str = values["aio.store.postgres.url"]
    if url and not url.startswith(("postgres://", "postgresql://")):
        raise fail("aio.store.postgres.url", "expected a postgres:// or postgresql:// URL")
    system_url: str = values["system.url"]
    if system_url and not system_url.startswith(("http://", "https://")):
        raise fail("system.url", f"expected an http:// or https:// URL, got {system_url!r}")
    docs_url: str = values["api.errorDocsUrl"]
    if docs_url and not docs_url.startswith(("http://", "https://")):
        raise fail("api.errorDocsUrl", f"expected an http:// or https:// URL, got {docs_url!r}")
    if "#" in docs_url:
        raise fail("api.errorDocsUrl", "the URL must not have a #fragment: the code is appended")


def _add_defaults(values: dict[str, Any]) -> None:
    """The implicit ``default`` router source and sender target (http-api.md §4.4, §4.5)."""
    for key, default in (
        ("aio.router.sources", DEFAULT_ROUTER_SOURCE),
        ("aio.sender.targets", DEFAULT_SENDER_TARGET),
    ):
        entries: list[dict[str, Any]] = values[key]
        if not any(entry.get("name") == "default" for entry in entries):
            values[key] = [*entries, copy_value(dict(default))]
