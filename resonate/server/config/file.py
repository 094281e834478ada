"""The configuration file: finding it, reading its YAML, and matching its keys to options.

Keys are matched case-insensitively against the canonical option tree and the legacy layout;
the result is a flat list of ``(option key, YAML value)`` entries, still untyped.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from resonate.server.config.errors import ConfigError
from resonate.server.config.legacy import LEGACY_KEYS, LEGACY_OPEN_SECTIONS, LegacyKey
from resonate.server.config.options import CONFIG_ENV, OPTIONS, Option

DEFAULT_FILE_NAMES: tuple[str, str] = ("resonate.yml", "resonate.yaml")


@dataclass(frozen=True, slots=True)
class LocatedFile:
    """A configuration file to read. ``name`` is how messages and sources refer to it."""

    path: Path
    name: str


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One option value found in the file.

    ``where`` is the key path as written (for messages); ``legacy_key`` is the canonical
    spelling of the legacy key it came from, None for a canonical key.
    """

    key: str
    value: object
    where: str
    legacy_key: str | None = None
    priority: int = 0


@dataclass(slots=True)
class FileContents:
    file: LocatedFile
    entries: list[FileEntry] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    is_legacy: bool = False


def locate_config_file(
    explicit: str | None, explicit_source: str, env: Mapping[str, str], cwd: Path
) -> tuple[LocatedFile | None, list[str]]:
    """The file to read and any warning: ``--config`` (given as ``explicit``), else
    ``RESONATE_CONFIG``, else ``resonate.yml``, else ``resonate.yaml`` in ``cwd``."""
    if explicit is None and env.get(CONFIG_ENV):
        explicit, explicit_source = env[CONFIG_ENV], CONFIG_ENV
    if explicit is not None:
        path = Path(explicit).expanduser()
        if not path.is_absolute():
            path = cwd / path
        if not path.exists():
            raise ConfigError(f"{explicit_source}: config file {explicit} does not exist")
        if not path.is_file():
            raise ConfigError(f"{explicit_source}: config file {explicit} is not a file")
        return LocatedFile(path, explicit), []
    found = [cwd / name for name in DEFAULT_FILE_NAMES if (cwd / name).is_file()]
    if not found:
        return None, []
    warnings: list[str] = []
    if len(found) == 2:
        warnings.append(
            f"config: both {DEFAULT_FILE_NAMES[0]} and {DEFAULT_FILE_NAMES[1]} exist; "
            f"using {DEFAULT_FILE_NAMES[0]}, ignoring {DEFAULT_FILE_NAMES[1]}"
        )
    return LocatedFile(found[0], found[0].name), warnings


def read_config_file(file: LocatedFile) -> FileContents:
    """Parse the YAML and match every key, raising ``ConfigError`` for unknown keys."""
    document = _load_yaml(file)
    contents = FileContents(file)
    _walk(_SCHEMA, document, [], contents)
    return contents


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that rejects a key written twice in one mapping."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[object] = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node)
        try:
            duplicate = key in seen
            seen.add(key)
        except TypeError:  # an unhashable key; PyYAML reports it
            continue
        if duplicate:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} appears twice", key_node.start_mark
            )
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,
)


def _load_yaml(file: LocatedFile) -> Mapping[Any, Any]:
    try:
        text = file.path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(f"{file.name}: not UTF-8 text") from error
    except OSError as error:
        raise ConfigError(f"{file.name}: cannot read: {error.strerror or error}") from error
    try:
        document = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as error:
        raise ConfigError(f"{file.name}: invalid YAML: {_yaml_problem(error)}") from error
    if document is None:
        return {}
    if not isinstance(document, Mapping):
        raise ConfigError(
            f"{file.name}: expected a mapping of options at the top level, "
            f"got a {type(document).__name__}"
        )
    return document


def _yaml_problem(error: yaml.YAMLError) -> str:
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    mark = getattr(error, "problem_mark", None)
    if mark is not None:
        return f"{problem} (line {mark.line + 1}, column {mark.column + 1})"
    return str(problem)


@dataclass(slots=True)
class _Section:
    """A mapping level of the file. ``open`` sections ignore unknown keys (legacy subsystems)."""

    path: str
    children: dict[str, tuple[str, _Node]] = field(default_factory=dict)
    legacy: bool = False
    open: bool = False


_Node = _Section | Option | LegacyKey


def _build_schema() -> _Section:
    root = _Section("")
    for option in OPTIONS:
        _insert(root, option.key, option, legacy=False)
    for legacy_key in LEGACY_KEYS:
        _insert(root, legacy_key.key, legacy_key, legacy=True)
    return root


def _insert(root: _Section, key: str, leaf: Option | LegacyKey, *, legacy: bool) -> None:
    section = root
    segments = key.split(".")
    for depth, segment in enumerate(segments[:-1]):
        lower = segment.lower()
        if lower not in section.children:
            path = ".".join(segments[: depth + 1])
            is_open = any(
                path == open_path or path.startswith(open_path + ".")
                for open_path in LEGACY_OPEN_SECTIONS
            )
            section.children[lower] = (segment, _Section(path, legacy=legacy, open=is_open))
        child = section.children[lower][1]
        assert isinstance(child, _Section), f"{key} nests under the option {segment}"
        section = child
    last = segments[-1]
    assert last.lower() not in section.children, f"{key} is defined twice"
    section.children[last.lower()] = (last, leaf)


def _canonical_paths() -> list[str]:
    """Every option key and every section of canonical keys, for suggestions."""
    paths: dict[str, None] = {}
    for option in OPTIONS:
        segments = option.key.split(".")
        for depth in range(1, len(segments) + 1):
            paths[".".join(segments[:depth])] = None
    return list(paths)


_SCHEMA = _build_schema()
_CANONICAL_PATHS = _canonical_paths()


def _walk(
    section: _Section, mapping: Mapping[Any, Any], prefix: list[str], out: FileContents
) -> None:
    name = out.file.name
    seen: dict[str, str] = {}
    for raw_key, value in mapping.items():
        key = str(raw_key)
        written = [*prefix, key]
        where = ".".join(written)
        lower = key.lower()
        if lower in seen:
            raise ConfigError(
                f"{name}: key {where!r} is set twice (as {seen[lower]!r} and {key!r}; "
                "keys are case-insensitive)"
            )
        seen[lower] = key
        child = section.children.get(lower)
        if child is None:
            if section.open:
                out.ignored.append(where)
                continue
            raise ConfigError(_unknown_key_message(name, written, value))
        node = child[1]
        if isinstance(node, Option):
            if value is not None:
                out.entries.append(FileEntry(node.key, value, where))
        elif isinstance(node, LegacyKey):
            out.is_legacy = True
            _add_legacy(node, value, where, out)
        else:
            out.is_legacy = out.is_legacy or node.legacy
            if value is None:
                continue
            if not isinstance(value, Mapping):
                raise ConfigError(f"{name}: {where}: expected a mapping of options, got {value!r}")
            _walk(node, value, written, out)


def _add_legacy(legacy_key: LegacyKey, value: object, where: str, out: FileContents) -> None:
    if legacy_key.target is None:
        note = f" ({legacy_key.note})" if legacy_key.note else ""
        out.ignored.append(legacy_key.key + note)
        return
    if value is None:
        return
    if legacy_key.convert is not None:
        try:
            value = legacy_key.convert(value)
        except ValueError as error:
            raise ConfigError(f"{out.file.name}: {where}: {error}") from error
    out.entries.append(
        FileEntry(legacy_key.target, value, where, legacy_key.key, legacy_key.priority)
    )


def _unknown_key_message(file_name: str, written: list[str], value: object) -> str:
    """Name the unknown key down to a leaf (``api.htp.addr``), with the closest valid key."""
    path = list(written)
    while isinstance(value, Mapping) and len(value) == 1:
        only_key, value = next(iter(value.items()))
        path.append(str(only_key))
    where = ".".join(path)
    by_lower = {key.lower(): key for key in _CANONICAL_PATHS}
    close = difflib.get_close_matches(where.lower(), list(by_lower), n=1, cutoff=0.6)
    hint = f" (did you mean {by_lower[close[0]]!r}?)" if close else ""
    return f"{file_name}: unknown key {where!r}{hint}"
