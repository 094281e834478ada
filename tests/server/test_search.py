"""transitions.md §5 (S1-S16): `GET /promises`, with the conventions of http-api.md §1.8, §2.3
and D6, one case per row.

The session server is shared, so every search is scoped to an id prefix of its own; the
lazy-timeout rows run on an in-process server with a manual clock (no background loop).
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.server.promise_setup import STATE_AFTER, TIMER_TAGS, create, setup
from tests.support.live import START_MS, LiveServer

FUTURE = 4_102_444_800_000  # 2100-01-01


def search(api: httpx.Client, **params: Any) -> httpx.Response:
    return api.get("/promises", params=params)


def page(api: httpx.Client, **params: Any) -> dict:
    response = search(api, **params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"cursor", "promises"}, body
    return body


def ids(api: httpx.Client, **params: Any) -> list[str]:
    return [p["id"] for p in page(api, **params)["promises"]]


def walk(api: httpx.Client, **params: Any) -> list[dict]:
    """Every page of a search, following cursors until one is null."""
    pages = [page(api, **params)]
    while pages[-1]["cursor"] is not None:
        assert len(pages) <= 1000, "cursor never ended"
        pages.append(page(api, cursor=pages[-1]["cursor"]))
    return pages


def assert_400(response: httpx.Response, field: str | None = None) -> None:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == 40000
    if field is not None:
        fields = [d for d in error["details"] if d["@type"] == "FieldValidationError"]
        assert any(f"field {field} " in d["message"] for d in fields), error


@pytest.fixture(scope="module")
def client(server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as api:
        yield api


def prefix() -> str:
    return f"s{uuid.uuid4().hex[:12]}"


# ---- S8-S11, D6: id patterns ----------------------------------------------------------------

PATTERN_IDS = [
    "a",
    "ab",
    "a/b",
    "Ab",
    "A",
    "ba",
    "abc",
    "a_c",
    "a%",
    "a?c",
    "a[b]c",
    "a\\c",
    "a*c",
    "a b",
]


@pytest.fixture(scope="module")
def pattern_corpus(client) -> str:
    base = prefix()
    for pid in PATTERN_IDS:
        assert create(client, base + pid).status_code == 201
    return base


PATTERNS = [
    # (rule, pattern after the prefix, ids matched after the prefix)
    ("S8", "a*", {"a", "ab", "a/b", "abc", "a_c", "a%", "a?c", "a[b]c", "a\\c", "a*c", "a b"}),
    ("S8", "A*", {"A", "Ab"}),
    ("S8", "*b", {"ab", "a/b", "Ab", "a b"}),
    ("S8", "a/*", {"a/b"}),
    ("S8", "*", set(PATTERN_IDS)),
    ("S8", "a*c", {"abc", "a_c", "a?c", "a[b]c", "a\\c", "a*c"}),
    ("S8", "**b", {"ab", "a/b", "Ab", "a b"}),
    ("S8", "a**", {"a", "ab", "a/b", "abc", "a_c", "a%", "a?c", "a[b]c", "a\\c", "a*c", "a b"}),
    ("S9", "a%", {"a%"}),
    ("S9", "a%*", {"a%"}),
    ("S10", "a_c", {"a_c"}),
    ("S10", "a_*", {"a_c"}),
    ("S11", "A", {"A"}),
    ("S11", "a", {"a"}),
    ("S11", "AB", set()),
    ("D6", "a?c", {"a?c"}),
    ("D6", "a?*", {"a?c"}),
    ("D6", "a[b]c", {"a[b]c"}),
    ("D6", "a[*", {"a[b]c"}),
    ("D6", "a[bc]*", set()),
    ("D6", "a\\c", {"a\\c"}),
    ("D6", "a\\*", {"a\\c"}),
    ("D6", "a b", {"a b"}),
    ("D6", "nothing*", set()),
]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [pytest.param(p, e, id=f"{rule}-{p}") for rule, p, e in PATTERNS],
)
def test_id_pattern(client, pattern_corpus, pattern, expected):
    found = ids(client, id=pattern_corpus + pattern)
    assert {pid.removeprefix(pattern_corpus) for pid in found} == expected
    assert len(found) == len(expected)


def test_s8_star_alone_matches_everything(client, uid):
    """`*` alone is no id filter at all; a tag unique to this test scopes the answer."""
    for suffix in ("x", "Y/z"):
        create(client, uid + suffix, tags={"scope": uid})
    create(client, "other" + uid, tags={"scope": uid})
    assert set(ids(client, id="*", **{"tags[scope]": uid})) == {
        uid + "x",
        uid + "Y/z",
        "other" + uid,
    }


# ---- S1-S6: the state filter ----------------------------------------------------------------

STATE_BEFORES = ["P", "R", "J", "C", "T", "Rt", "P!", "P!t"]


@pytest.fixture(scope="module")
def state_corpus(client) -> str:
    base = prefix()
    for before in STATE_BEFORES:
        setup(client, base + before, before)
    return base


STATE_FILTERS = [
    # (rule, state parameter or None, the "befores" it returns)
    ("S1", "pending", {"P"}),
    ("S2", "resolved", {"R", "Rt", "P!t"}),
    ("S3", "rejected", {"J", "C", "T", "P!"}),
    ("S4", None, set(STATE_BEFORES)),
    ("S5", "PENDING", {"P"}),
    ("S5", "Resolved", {"R", "Rt", "P!t"}),
    ("S5", "rEJECTED", {"J", "C", "T", "P!"}),
]


@pytest.mark.parametrize(
    ("state", "expected"),
    [pytest.param(s, e, id=f"{rule}-{s}") for rule, s, e in STATE_FILTERS],
)
def test_state_filter(client, state_corpus, state, expected):
    params = {"id": state_corpus + "*"}
    if state is not None:
        params["state"] = state
    found = page(client, **params)["promises"]
    assert {p["id"].removeprefix(state_corpus) for p in found} == expected
    for promise in found:  # overdue ones come back timed out, never PENDING
        assert promise["state"] == STATE_AFTER[promise["id"].removeprefix(state_corpus)]


@pytest.mark.parametrize(
    "state",
    [
        "canceled",
        "rejected_canceled",
        "REJECTED_TIMEDOUT",
        "timedout",
        "all",
        "pending,resolved",
        "pending ",
        "0",
        "1",
    ],
)
def test_s6_unknown_state_is_400(client, uid, state):
    assert_400(search(client, id=uid + "*", state=state), "state")


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({}, id="S7-no-params"),
        pytest.param({"id": ""}, id="S7-empty-id"),
        pytest.param({"state": "pending"}, id="S7-state-only"),
        pytest.param({"limit": "10", "tags[a]": "b"}, id="S7-limit-and-tags-only"),
    ],
)
def test_s7_id_is_required_without_cursor(client, params):
    assert_400(search(client, **params), "id")


def test_unknown_query_parameters_are_ignored(client, uid):
    create(client, uid)
    assert ids(client, id=uid, foo="bar", **{"Id": "x", "tag[a]": "b"}) == [uid]


def test_empty_result_page(client, uid):
    assert page(client, id=uid + "*") == {"cursor": None, "promises": []}


def test_search_returns_full_promise_objects(client, uid):
    create(client, uid, key="k", tags={"a": "b"}, data="YQ==")
    client.patch(f"/promises/{uid}", json={"state": "RESOLVED", "value": {"data": "Yg=="}})
    assert page(client, id=uid)["promises"] == [client.get(f"/promises/{uid}").json()]


# ---- S15: tag filters -----------------------------------------------------------------------

TAGGED = {
    "both": {"a.b": "1", "c": "2"},
    "dotted": {"a.b": "1"},
    "plain": {"c": "2", "a": "1"},
    "quote": {'q"uote': "v", "back\\slash": "w"},
    "unicode": {"é": "ü", "日本": "語"},
    "brackets": {"k[0]": "v", "k": "[0]"},
    "empty": {"e": ""},
}


@pytest.fixture(scope="module")
def tag_corpus(client) -> str:
    base = prefix()
    for name, tags in TAGGED.items():
        assert create(client, base + name, tags=tags).status_code == 201
    assert create(client, base + "untagged").status_code == 201
    return base


TAG_FILTERS = [
    # (rule, name, filters, names of the promises that match)
    ("S15", "and", {"a.b": "1", "c": "2"}, {"both"}),
    ("S15", "dotted-key", {"a.b": "1"}, {"both", "dotted"}),
    ("S15", "one-key", {"c": "2"}, {"both", "plain"}),
    ("S15", "dot-is-not-a-path", {"a": "1"}, {"plain"}),
    ("S15", "other-value", {"c": "3"}, set()),
    ("S15", "keys-case-sensitive", {"C": "2"}, set()),
    ("S15", "and-one-fails", {"a.b": "1", "c": "3"}, set()),
    ("S15", "key-with-quote", {'q"uote': "v"}, {"quote"}),
    ("S15", "key-with-backslash", {"back\\slash": "w"}, {"quote"}),
    ("S15", "non-ascii-key", {"é": "ü"}, {"unicode"}),
    ("S15", "non-ascii-and", {"日本": "語", "é": "ü"}, {"unicode"}),
    ("S15", "key-with-brackets", {"k[0]": "v"}, {"brackets"}),
    ("S15", "value-with-brackets", {"k": "[0]"}, {"brackets"}),
    ("S15", "empty-value", {"e": ""}, {"empty"}),
    ("S15", "empty-value-differs", {"e": "x"}, set()),
]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [pytest.param(f, e, id=f"{rule}-{name}") for rule, name, f, e in TAG_FILTERS],
)
def test_s15_tag_filters(client, tag_corpus, filters, expected):
    params = {"id": tag_corpus + "*", **{f"tags[{k}]": v for k, v in filters.items()}}
    assert {pid.removeprefix(tag_corpus) for pid in ids(client, **params)} == expected


# ---- S12, S13, S16: limit, cursors, order ---------------------------------------------------


def create_in_order(api: httpx.Client, base: str, count: int, **kwargs: Any) -> list[str]:
    created = [f"{base}{i:03d}" for i in range(count)]
    for pid in created:
        assert create(api, pid, **kwargs).status_code == 201
    return created


@pytest.fixture(scope="module")
def hundred_and_one(client) -> str:
    """101 promises, to tell `limit` 0 (= 100) from "no limit"; created concurrently."""
    base = prefix()
    with ThreadPoolExecutor(8) as pool:
        statuses = list(
            pool.map(lambda i: create(client, f"{base}{i:03d}").status_code, range(101))
        )
    assert statuses == [201] * 101
    return base


@pytest.mark.parametrize(
    ("limit", "size", "has_cursor"),
    [
        pytest.param(None, 100, True, id="S12-absent-means-100"),
        pytest.param("0", 100, True, id="S12-0-means-100"),
        pytest.param("100", 100, True, id="S12-100-ok"),
        pytest.param("1", 1, True, id="S12-1"),
        pytest.param("99", 99, True, id="S12-99"),
        pytest.param("007", 7, True, id="S12-leading-zeros-are-decimal"),
    ],
)
def test_s12_limit(client, hundred_and_one, limit, size, has_cursor):
    params = {"id": hundred_and_one + "*"}
    if limit is not None:
        params["limit"] = limit
    first = page(client, **params)
    assert len(first["promises"]) == size
    assert isinstance(first["cursor"], str) == has_cursor
    every = [p["id"] for pg in walk(client, **params) for p in pg["promises"]]
    assert sorted(every) == [f"{hundred_and_one}{i:03d}" for i in range(101)]


@pytest.mark.parametrize(
    "limit", ["101", "-1", "x", "1.5", "1e2", "0x10", "10 0", "99999999999999999999"]
)
def test_s12_invalid_limit_is_400(client, uid, limit):
    assert_400(search(client, id=uid + "*", limit=limit), "limit")


@pytest.mark.parametrize(
    ("count", "limit", "sizes"),
    [
        pytest.param(25, 10, [10, 10, 5], id="S13-short-last-page"),
        pytest.param(20, 5, [5, 5, 5, 5, 0], id="S13-full-last-page-then-empty"),
        pytest.param(3, 100, [3], id="S13-single-short-page"),
        pytest.param(7, 1, [1] * 7 + [0], id="S13-one-per-page"),
    ],
)
def test_s13_s16_pagination(client, uid, count, limit, sizes):
    """Newest first, no duplicates or gaps; a cursor only on full pages."""
    created = create_in_order(client, uid, count)
    pages = walk(client, id=uid + "*", limit=str(limit))
    assert [len(pg["promises"]) for pg in pages] == sizes
    assert [pg["cursor"] is not None for pg in pages] == [s == limit for s in sizes]
    walked = [p["id"] for pg in pages for p in pg["promises"]]
    assert walked == list(reversed(created))  # S16 newest first; no duplicate, no gap
    created_on = [p["createdOn"] for pg in pages for p in pg["promises"]]
    assert created_on == sorted(created_on, reverse=True)


def test_s13_new_promises_do_not_shift_a_walk(client, uid):
    """A cursor is a position: promises created mid-walk (newer) never appear on later pages."""
    created = create_in_order(client, uid, 6)
    first = page(client, id=uid + "*", limit="3")
    create_in_order(client, uid + "new", 3)
    second = page(client, cursor=first["cursor"])
    walked = [p["id"] for p in first["promises"] + second["promises"]]
    assert walked == list(reversed(created))


def test_s13_cursor_continues_the_stored_query(client, uid):
    """State and tag filters and the limit travel in the cursor."""
    resolved = []
    for i in range(12):
        pid = f"{uid}{i:03d}"
        create(client, pid, tags={"n": "even" if i % 2 == 0 else "odd"})
        if i % 3 != 0:
            assert client.patch(f"/promises/{pid}", json={"state": "RESOLVED"}).status_code == 201
            if i % 2 == 0:
                resolved.append(pid)
    pages = walk(client, id=uid + "*", state="resolved", limit="2", **{"tags[n]": "even"})
    assert all(len(p["promises"]) <= 2 for p in pages)
    walked = [p for pg in pages for p in pg["promises"]]
    assert [p["id"] for p in walked] == list(reversed(resolved))
    assert {p["state"] for p in walked} == {"RESOLVED"}


def test_s13_cursor_ignores_the_other_parameters(client, uid):
    create_in_order(client, uid, 5)
    cursor = page(client, id=uid + "*", limit="2")["cursor"]
    alone = page(client, cursor=cursor)
    noisy = page(
        client, cursor=cursor, id="nothing", state="canceled", limit="x", **{"tags[a]": "b"}
    )
    assert noisy == alone
    assert [p["id"] for p in alone["promises"]] == [f"{uid}002", f"{uid}001"]


# ---- S14: invalid cursors --------------------------------------------------------------------


def decode(cursor: str) -> dict:
    """The cursor's content. Cursors are opaque to clients; this test knows they are base64url
    JSON, to tamper with them the way a client could."""
    return json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))


def encode(content: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(content).encode()).decode().rstrip("=")


DROP = object()  # remove the key
TAMPERED = [
    # (cursor key, tampered value)
    ("kind", "schedules"),
    ("kind", DROP),
    ("id", ""),
    ("id", 5),
    ("id", "\ud800*"),
    ("id", DROP),
    ("state", "canceled"),
    ("state", ["pending"]),
    ("state", {}),
    ("tags", ["a"]),
    ("tags", {"a": 1}),
    ("tags", {"\udc00": "v"}),
    ("limit", 0),
    ("limit", 101),
    ("limit", "2"),
    ("limit", True),
    ("limit", 2.0),
    ("before", "9"),  # the page position
    ("before", True),
    ("before", 9.5),
    ("before", None),
    ("before", 2**63),
    ("before", -(2**63) - 1),
    ("before", DROP),
]


@pytest.fixture(scope="module")
def real_cursor(client) -> str:
    base = prefix()
    create_in_order(client, base, 2)
    cursor = page(client, id=base + "*", limit="1")["cursor"]
    assert isinstance(cursor, str)
    return cursor


@pytest.mark.parametrize(
    ("key", "value"),
    [
        pytest.param(k, v, id=f"S14-tampered-{k}-{'dropped' if v is DROP else v!r}")
        for k, v in TAMPERED
    ],
)
def test_s14_tampered_cursor_is_400(client, real_cursor, key, value):
    content = decode(real_cursor)
    assert key in content, f"the cursor format changed, update this table: {content}"
    if value is DROP:
        del content[key]
    else:
        content[key] = value
    assert_400(search(client, cursor=encode(content)))


@pytest.mark.parametrize(
    "cursor",
    [
        pytest.param("garbage!!", id="S14-garbage"),
        pytest.param("%%%", id="S14-percent"),
        pytest.param("é", id="S14-non-ascii"),
        pytest.param(encode([1, 2]), id="S14-json-array"),
        pytest.param(encode("promises"), id="S14-json-string"),
        pytest.param(encode(None), id="S14-json-null"),
        pytest.param(base64.urlsafe_b64encode(b"\xff\xfe{").decode(), id="S14-not-utf8"),
        pytest.param(base64.urlsafe_b64encode(b"hello").decode(), id="S14-not-json"),
        pytest.param(encode({"kind": "promises"}), id="S14-fields-missing"),
    ],
)
def test_s14_undecodable_cursor_is_400(client, cursor):
    assert_400(search(client, cursor=cursor))


def test_s14_truncated_cursor_is_400(client, real_cursor):
    assert_400(search(client, cursor=real_cursor[: len(real_cursor) // 2]))


# ---- S1-S3: lazy timeouts in search (manual clock, no background loop) ---------------------


async def live_create(live: LiveServer, pid: str, timeout: int, tags: dict | None = None) -> None:
    response = await live.client.post(
        "/promises", json={"id": pid, "timeout": timeout, "tags": tags}
    )
    assert response.status_code == 201, response.text


async def live_ids(live: LiveServer, **params: str) -> dict[str, dict]:
    response = await live.client.get("/promises", params=params)
    assert response.status_code == 200, response.text
    return {p["id"]: p for p in response.json()["promises"]}


LAZY = [
    # (rule, state parameter, ids returned) after "due" and "timer" passed their deadline
    ("S1", "pending", {"later"}),
    ("S3", "rejected", {"due"}),
    ("S2", "resolved", {"timer"}),
    ("S4", None, {"due", "timer", "later"}),
]


@pytest.mark.parametrize(
    ("state", "expected"), [pytest.param(s, e, id=f"{r}-lazy-{s}") for r, s, e in LAZY]
)
async def test_search_times_out_overdue_promises_first(live, state, expected):
    await live_create(live, "due", START_MS + 1_000)
    await live_create(live, "timer", START_MS + 1_000, TIMER_TAGS)
    await live_create(live, "later", START_MS + 60_000)
    live.clock.advance(1_000)  # now == deadline: overdue (§2.1)

    params = {"id": "*"} if state is None else {"id": "*", "state": state}
    found = await live_ids(live, **params)

    assert set(found) == expected
    for pid, promise in found.items():
        if pid != "later":
            assert promise["state"] == ("RESOLVED" if pid == "timer" else "REJECTED_TIMEDOUT")
            assert promise["completedOn"] == START_MS + 1_000
            assert promise["value"] == {}
            assert "idempotencyKeyForComplete" not in promise
    # The timeouts were persisted by the search (§2.3), whatever the filter.
    assert await live.time_out_promises() == 0
    for pid in ("due", "timer"):
        stored = await live.server.store.run(lambda tx, pid=pid: tx.get_promise(pid))
        assert stored.state.name != "PENDING"


async def test_search_lazy_timeouts_cover_more_than_one_batch(tmp_path):
    """With a batch size of 2, all 7 overdue promises are timed out before the page."""
    live = LiveServer(tmp_path / "batch.db", "--system-promise-batch-size", "2")
    await live.start()
    try:
        for i in range(7):
            await live_create(live, f"o{i}", START_MS + i)
        await live_create(live, "p", START_MS + 60_000)
        live.clock.advance(10)
        assert set(await live_ids(live, id="*", state="pending")) == {"p"}
        assert len(await live_ids(live, id="o*", state="rejected")) == 7
        assert await live.time_out_promises() == 0
    finally:
        await live.stop()
