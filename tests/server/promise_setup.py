"""Bring a promise into each "state before" of transitions.md over the real HTTP API.

Overdue states are made with deadlines already in the past, so these helpers work against a
server process on the system clock.
"""

from __future__ import annotations

import time

import httpx

HOUR_MS = 3_600_000
STATE_NAMES = {"R": "RESOLVED", "J": "REJECTED", "C": "REJECTED_CANCELED"}

# The stored state a promise set up as each "state before" has once read: overdue promises
# ("P!", "P!t") have been timed out by then.
STATE_AFTER = {
    "P": "PENDING",
    "R": "RESOLVED",
    "J": "REJECTED",
    "C": "REJECTED_CANCELED",
    "T": "REJECTED_TIMEDOUT",
    "Rt": "RESOLVED",
    "P!": "REJECTED_TIMEDOUT",
    "P!t": "RESOLVED",
}
TIMER_TAGS = {"resonate:timeout": "true"}


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def headers(key: str | None = None, strict: bool | None = None) -> dict[str, str]:
    out: dict[str, str] = {}
    if key is not None:
        out["idempotency-key"] = key
    if strict is not None:
        out["strict"] = "true" if strict else "false"
    return out


def create(
    api: httpx.Client,
    pid: str,
    *,
    timeout: int | None = None,
    key: str | None = None,
    strict: bool | None = None,
    tags: dict[str, str] | None = None,
    data: str | None = None,
) -> httpx.Response:
    body: dict[str, object] = {
        "id": pid,
        "timeout": now_ms() + HOUR_MS if timeout is None else timeout,
    }
    if tags:
        body["tags"] = tags
    if data is not None:
        body["param"] = {"data": data}
    return api.post("/promises", json=body, headers=headers(key, strict))


def complete(
    api: httpx.Client,
    pid: str,
    state: str,
    *,
    key: str | None = None,
    strict: bool | None = None,
    data: str | None = None,
) -> httpx.Response:
    body: dict[str, object] = {"state": state}
    if data is not None:
        body["value"] = {"data": data}
    return api.patch(f"/promises/{pid}", json=body, headers=headers(key, strict))


def setup(
    api: httpx.Client,
    pid: str,
    before: str,
    *,
    create_key: str | None = None,
    complete_key: str | None = None,
) -> None:
    """Make promise ``pid`` be in state ``before`` (the notation of transitions.md)."""
    if before == "∅":
        return
    overdue = before in ("P!", "P!t", "T", "Rt")
    timer = before in ("P!t", "Rt")
    response = create(
        api,
        pid,
        key=create_key,
        tags=TIMER_TAGS if timer else None,
        timeout=now_ms() - 1000 if overdue else None,
    )
    assert response.status_code == 201, response.text
    if before in STATE_NAMES:
        response = complete(api, pid, STATE_NAMES[before], key=complete_key)
        assert response.status_code == 201, response.text
    if before in ("T", "Rt"):
        response = api.get(f"/promises/{pid}")  # lazy timeout
        expected = "RESOLVED" if before == "Rt" else "REJECTED_TIMEDOUT"
        assert response.json()["state"] == expected


# Key relations of transitions.md: (stored key, request key).
KEY_RELATIONS: dict[str, tuple[str | None, str | None]] = {
    "=": ("k", "k"),
    "≠": ("k", "other"),
    "-k": ("k", None),
    "k-": (None, "k"),
    "--": (None, None),
}
NOT_MATCHING = ("≠", "-k", "k-", "--")
