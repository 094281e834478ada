"""Which promises get invoke tasks (the router, http-api.md §4.4) and where a task's recv
points (the sender's resolution, §4.5). Both are pure functions of the configuration."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

DEFAULT_SOURCE = {"name": "default", "type": "tag", "data": {"key": "resonate:invoke"}}
DEFAULT_TARGET = {"name": "default", "type": "poll", "data": {"cast": "any", "group": "default"}}


class Router:
    """Matches a new promise's tags against the configured tag sources, first match wins."""

    def __init__(self, sources: Iterable[Mapping[str, Any]] = ()) -> None:
        entries = list(sources)
        if not any(source.get("name") == "default" for source in entries):
            entries.append(DEFAULT_SOURCE)
        self.keys: tuple[str, ...] = tuple(
            str(source["data"]["key"]) for source in entries if source.get("type") == "tag"
        )

    def route(self, tags: Mapping[str, str]) -> Any | None:
        """The recv to store on the invoke task, or None when no source matches."""
        for key in self.keys:
            if key in tags:
                return recv_from_tag(tags[key])
        return None


def recv_from_tag(value: str) -> Any | None:
    """A tag value as a recv: valid JSON must be exactly ``{type, data}`` (physical); any other
    JSON does not match; a non-JSON string is a logical recv."""
    try:
        decoded = json.loads(value)
    except ValueError:
        return value
    if (
        isinstance(decoded, dict)
        and set(decoded) == {"type", "data"}
        and isinstance(decoded["type"], str)
        and decoded["type"]
    ):
        return decoded
    return None


@dataclass(frozen=True, slots=True)
class Destination:
    """A resolved recv: the plugin to use and its address data."""

    plugin: str  # "poll" | "http"
    data: dict[str, Any]


class Sender:
    """Resolves stored recvs into destinations for the enabled plugins."""

    def __init__(
        self, targets: Iterable[Mapping[str, Any]] = (), enabled: Iterable[str] = ("poll", "http")
    ) -> None:
        named: dict[str, Any] = {}
        for target in targets:
            named.setdefault(str(target["name"]), {"type": target["type"], "data": target["data"]})
        named.setdefault("default", {"type": "poll", "data": DEFAULT_TARGET["data"]})
        self.targets = named
        self.enabled = frozenset(enabled)

    def resolve(self, recv: Any) -> Destination | None:
        """The destination of ``recv``, or None for an unknown recv (§4.5)."""
        if isinstance(recv, str):
            physical = self.targets.get(recv)
            if physical is None:
                return self._from_url(recv)
            recv = physical
        if not isinstance(recv, dict):
            return None
        return self._physical(recv.get("type"), recv.get("data"))

    def _physical(self, kind: Any, data: Any) -> Destination | None:
        if kind not in self.enabled or not isinstance(data, dict):
            return None
        if kind == "poll":
            group = data.get("group")
            cast = data.get("cast", "any")
            target_id = data.get("id")
            if not isinstance(group, str) or not group or cast not in ("any", "uni"):
                return None
            out: dict[str, Any] = {"group": group, "cast": cast}
            if isinstance(target_id, str) and target_id:
                out["id"] = target_id
            return Destination("poll", out)
        if kind == "http":
            url = data.get("url")
            headers = data.get("headers") or {}
            if not isinstance(url, str) or not url or not isinstance(headers, dict):
                return None
            out = {"url": url}
            if headers:
                out["headers"] = {str(k): str(v) for k, v in headers.items()}
            return Destination("http", out)
        return None

    def _from_url(self, text: str) -> Destination | None:
        if text.startswith(("http://", "https://")):
            return self._physical("http", {"url": text})
        if not text.startswith("poll://"):
            return None
        rest = text[len("poll://") :]
        authority, _, path = rest.partition("/")
        cast, at, group = authority.rpartition("@")
        data: dict[str, Any] = {"group": group, "cast": cast.lower() if at else "any"}
        if path:
            data["id"] = path
        return self._physical("poll", data)
