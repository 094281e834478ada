"""Schedules: cron-driven promise creation (http-api.md §7). The record and the promise-id
template (D4); cron parsing lives in ``resonate.server.cron``."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from resonate.core.errors import invalid
from resonate.core.promise import EMPTY_VALUE, Value
from resonate.core.schema import MAX_ID_BYTES

SCHEDULE_TAG = "resonate:schedule"
INVOCATION_TAG = "resonate:invocation"

# `{{` + optional spaces/tabs + `.id` or `.timestamp` + optional spaces/tabs + `}}`.
_PLACEHOLDER = re.compile(r"\{\{[ \t]*\.(id|timestamp)[ \t]*\}\}")
_LONGEST_TIMESTAMP = 20  # characters of the longest int64 rendering, with its sign


def _template_parts(template: str) -> list[str | tuple[str]]:
    """Literal text and ``(name,)`` placeholders; raises a 400 naming ``promiseId``."""
    parts: list[str | tuple[str]] = []
    position = 0
    while True:
        start = template.find("{{", position)
        literal = template[position : start if start >= 0 else len(template)]
        if "}}" in literal:
            break
        if literal:
            parts.append(literal)
        if start < 0:
            return parts
        match = _PLACEHOLDER.match(template, start)
        if match is None:
            break
        parts.append((match.group(1),))
        position = match.end()
    raise invalid("promiseId", "The field promiseId must be a valid template.")


def check_template(template: str, schedule_id: str) -> str:
    """Validate a promise-id template at schedule creation (§7.4)."""
    parts = _template_parts(template)
    longest = render_parts(parts, schedule_id, "9" * _LONGEST_TIMESTAMP)
    if not longest or len(longest.encode("utf-8")) > MAX_ID_BYTES:
        raise invalid(
            "promiseId",
            f"The field promiseId must render to an id of 1 to {MAX_ID_BYTES} bytes.",
        )
    return template


def template_fixed_prefix(template: str, schedule_id: str) -> str:
    """What every promise id the template renders to starts with: the template rendered up to
    its first ``{{.timestamp}}`` (authorisation of a schedule's promises by prefix)."""
    parts = _template_parts(template)
    fixed: list[str | tuple[str]] = []
    for part in parts:
        if part == ("timestamp",):
            break
        fixed.append(part)
    return render_parts(fixed, schedule_id, "")


def render_parts(parts: list[str | tuple[str]], schedule_id: str, timestamp: str) -> str:
    values = {"id": schedule_id, "timestamp": timestamp}
    return "".join(part if isinstance(part, str) else values[part[0]] for part in parts)


def render_template(template: str, schedule_id: str, timestamp: int) -> str:
    """The promise id of the firing at ``timestamp`` (no escaping of any kind)."""
    return render_parts(_template_parts(template), schedule_id, str(timestamp))


@dataclass(frozen=True, slots=True)
class Schedule:
    id: str
    cron: str  # as given
    promise_id: str  # the template
    promise_timeout: int
    next_run_time: int
    created_on: int
    description: str | None = None
    timezone: str | None = None  # the `timezone` field, when given (a cron prefix wins)
    tags: dict[str, str] = field(default_factory=dict)
    promise_param: Value = EMPTY_VALUE
    promise_tags: dict[str, str] = field(default_factory=dict)
    last_run_time: int | None = None
    idempotency_key: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id}
        if self.description is not None:
            out["description"] = self.description
        out["cron"] = self.cron
        if self.timezone is not None:
            out["timezone"] = self.timezone
        out.update(
            tags=self.tags,
            promiseId=self.promise_id,
            promiseTimeout=self.promise_timeout,
            promiseParam=self.promise_param.to_json(),
        )
        if self.promise_tags:
            out["promiseTags"] = self.promise_tags
        if self.last_run_time is not None:
            out["lastRunTime"] = self.last_run_time
        out["nextRunTime"] = self.next_run_time
        if self.idempotency_key is not None:
            out["idempotencyKey"] = self.idempotency_key
        out["createdOn"] = self.created_on
        return out
