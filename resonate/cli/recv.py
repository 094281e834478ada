"""The recvs `--recv` and `invoke --target` accept (cli.md §2, http-api.md §4.5).

The server stores a recv as given and resolves it only when it sends a task; one it cannot
resolve is retried every 15 s until the task times out, so a typo would leave an invocation
waiting in INIT for its whole timeout. The CLI therefore checks the documented forms first.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import typer

if TYPE_CHECKING:
    from resonate.client import Recv

RECV_FORMS = (
    "poll://[cast@]group[/id], http(s)://…, a target name such as default, "
    'or a JSON object {"type": "poll"|"http", "data": …}'
)
# A name in the server's `aio.sender.targets` (`default` always exists).
_TARGET_NAME = re.compile(r"[\w.-]+")
_POLL_CASTS = ("any", "uni")


def parse_recv(text: str, option: str = "--recv") -> Recv:
    """A logical recv as given, or a physical recv written as a JSON object; a usage error
    (exit 2) naming `option` for anything the server could not deliver to."""
    try:
        return recv_from_text(text)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint=f"'{option}'") from None


def recv_from_text(text: str) -> Recv:
    """The recv `text` stands for; ValueError with a one-line reason when it is none."""
    if not text.strip():
        raise ValueError("a recv must not be empty")
    if text.lstrip().startswith("{"):
        return _physical_recv(text)
    if any(character.isspace() for character in text):
        raise ValueError(f"{text!r} is not a recv (it contains a blank); expected {RECV_FORMS}")
    if "://" in text:
        _check_url(text)
        return text
    if not _TARGET_NAME.fullmatch(text):
        raise ValueError(f"{text!r} is not a recv; expected {RECV_FORMS}")
    return text


def _check_url(text: str) -> None:
    scheme, _, rest = text.partition("://")
    if scheme in ("http", "https"):
        if not urlsplit(text).netloc:
            raise ValueError(f"{text!r} is not a recv: the URL has no host")
        return
    if scheme != "poll":
        raise ValueError(
            f"{text!r} is not a recv: this server delivers to poll:// and http(s):// only"
        )
    authority = rest.partition("/")[0]
    cast, at, group = authority.rpartition("@")
    if at and cast.lower() not in _POLL_CASTS:
        raise ValueError(f"{text!r} is not a recv: the cast {cast!r} is neither any nor uni")
    if not group:
        raise ValueError(f"{text!r} is not a recv: poll://[cast@]group[/id] needs a group")


def _physical_recv(text: str) -> dict[str, Any]:
    try:
        recv = json.loads(text)
    except ValueError as error:
        raise ValueError(f"invalid JSON: {error}") from None
    if (
        not isinstance(recv, dict)
        or set(recv) != {"type", "data"}
        or not isinstance(recv["type"], str)
        or not recv["type"]
    ):
        raise ValueError('a physical recv is a JSON object {"type": …, "data": …}, no other keys')
    kind, data = recv["type"], recv["data"]
    if kind == "poll":
        _check_poll_data(data)
    elif kind == "http":
        _check_http_data(data)
    else:
        raise ValueError(f"recv type {kind!r} is not delivered by this server (poll or http)")
    return recv


def _check_poll_data(data: Any) -> None:
    if not isinstance(data, dict) or not isinstance(data.get("group"), str) or not data["group"]:
        raise ValueError('a poll recv needs "data": {"group": <non-empty string>, …}')
    if "cast" in data and data["cast"] not in _POLL_CASTS:
        raise ValueError('the "cast" of a poll recv is "any" or "uni"')
    if "id" in data and not isinstance(data["id"], str):
        raise ValueError('the "id" of a poll recv is a string')


def _check_http_data(data: Any) -> None:
    url = data.get("url") if isinstance(data, dict) else None
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ValueError('an http recv needs "data": {"url": "http(s)://…", …}')
    headers = data.get("headers", {})
    if not isinstance(headers, dict) or not all(
        isinstance(value, str) for value in headers.values()
    ):
        raise ValueError('the "headers" of an http recv map names to strings')
