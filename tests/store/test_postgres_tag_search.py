"""Tag search on PostgreSQL (migration 007): `tags[k]=v` reads the promise_tags index of the
first tag, in the order each search pages in (newest first for GET /promises, id order for the
2026 protocol's promise.search), in custom and generic plans alike, for a tag few promises hold
and for one most of them hold; answers match a reference filter; the index follows inserts,
deletes, tag updates, debug wipes, and indexes the promises stored before the migration.

Needs RESONATE_TEST_POSTGRES_DSN (see test_postgres_store.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from resonate.core.promise import Promise, PromiseState, Value
from resonate.core.search import PromiseIdQuery, PromiseQuery
from resonate.store.postgres import transaction
from resonate.store.postgres.store import STATEMENTS, PostgresStore
from resonate.store.postgres.transaction import promise_search, promise_search_by_id
from tests.support import pg

FAR = 2**62
BULK = 20_000  # promises in the plan tests: enough for the planner to care


@pytest.fixture
async def database() -> AsyncIterator[str]:
    if not pg.DSN:
        pytest.skip(pg.SKIP_REASON)
    dsn = await pg.create_database()
    try:
        yield dsn
    finally:
        await pg.drop_database(dsn)


@pytest.fixture
async def store(database: str) -> AsyncIterator[PostgresStore]:
    opened = PostgresStore(database, pool_size=4)
    await opened.open()
    yield opened
    await opened.close()


def promise(pid: str, tags: dict[str, str], state: PromiseState = PromiseState.PENDING) -> Promise:
    value = Value() if state is PromiseState.PENDING else Value({}, b"v")
    completed = None if state is PromiseState.PENDING else 2
    return Promise(pid, state, Value(), value, FAR, None, None, tags, 1, completed)


async def insert(store: PostgresStore, *records: Promise) -> None:
    async def op(tx: Any) -> None:
        for record in records:
            assert await tx.insert_promise(record)

    await store.run(op)


async def bulk(conn: asyncpg.Connection, count: int = BULK) -> None:
    """``count`` promises: `root` r<n // 10> (ten promises each), `scope` held by all but every
    twentieth one, which holds `scope` local; every hundredth one PENDING."""
    await conn.execute(
        "INSERT INTO promises (id, state, timeout, tags, created_on)"
        " SELECT 'bulk-' || lpad(n::text, 6, '0'), CASE WHEN n % 100 = 0 THEN 1 ELSE 2 END, $1,"
        " jsonb_build_object('root', 'r' || (n / 10),"
        "   'scope', CASE WHEN n % 20 = 0 THEN 'local' ELSE 'global' END), 0"
        " FROM generate_series(1, $2) AS n",
        FAR,
        count,
    )


def literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "'{" + ",".join(str(v) for v in value) + "}'"
    return "'" + str(value).replace("'", "''") + "'"


async def plan(conn: asyncpg.Connection, sql: str, params: list[Any], generic: bool) -> str:
    """The plan PostgreSQL runs ``sql`` with: a prepared statement's generic plan (what
    asyncpg's statements end up with), or the custom plan for these parameters."""
    mode = "force_generic_plan" if generic else "force_custom_plan"
    await conn.execute(f"SET plan_cache_mode = {mode}")
    await conn.execute(f"PREPARE searched AS {sql}")
    try:
        arguments = ", ".join(literal(p) for p in params)
        rows = await conn.fetch(f"EXPLAIN (COSTS OFF) EXECUTE searched({arguments})")
    finally:
        await conn.execute("DEALLOCATE searched")
    return "\n".join(row[0] for row in rows)


SEARCHES = {
    "few hold it": {"root": "r77"},
    "most hold it": {"scope": "global"},
    "none holds it": {"root": "nope"},
    "two tags": {"root": "r1234", "scope": "global"},  # as the store orders them: rarest first
}


@pytest.mark.parametrize("analyzed", [False, True], ids=["no statistics", "analyzed"])
@pytest.mark.parametrize("generic", [False, True], ids=["custom plan", "generic plan"])
async def test_tag_searches_walk_the_tag_index_in_page_order(
    store: PostgresStore, database: str, generic: bool, analyzed: bool
) -> None:
    """No sort, no bitmap of every holder, no walk of the whole table with a filter: a page
    reads the first tag's index range from the cursor on, whatever the plan or statistics."""
    conn = await asyncpg.connect(database)
    try:
        await bulk(conn)
        if analyzed:
            await conn.execute("ANALYZE")
        for name, tags in SEARCHES.items():
            queries = [
                ("newest first", *promise_search(STATEMENTS, PromiseQuery("*", tags=tags))),
                (
                    "newest first, page 2",
                    *promise_search(
                        STATEMENTS, PromiseQuery("*", tags=tags, before_sort_id=BULK // 2)
                    ),
                ),
                (
                    "newest first, pending",  # few are: the search starts from them
                    *promise_search(
                        STATEMENTS, PromiseQuery("*", state="pending", tags=tags), state_first=True
                    ),
                ),
                ("by id", *promise_search_by_id(STATEMENTS, PromiseIdQuery(tags=tags))),
                (
                    "by id, page 2",
                    *promise_search_by_id(
                        STATEMENTS, PromiseIdQuery(tags=tags, after_id="bulk-010000")
                    ),
                ),
            ]
            for kind, sql, params in queries:
                shown = await plan(conn, sql, params, generic)
                where = f"{name}, {kind}:\n{shown}"
                assert "Seq Scan" not in shown, where
                if "pending" in kind:  # the PENDING promises' partial index, then a sort
                    assert "idx_promises_pending_timeout" in shown, where
                    assert "Index Cond: (sort_id = ANY ($0))" in shown, where  # their sort ids
                    continue
                assert "Bitmap" not in shown, where
                index = "idx_promise_tags_id" if kind.startswith("by id") else "idx_promises_tags"
                assert f"using {index} on promise_tags" in shown, where
                assert "Sort" not in shown and "Hash" not in shown, where
    finally:
        await conn.close()


async def test_a_search_by_several_tags_walks_the_rarest(
    store: PostgresStore, database: str
) -> None:
    conn = await asyncpg.connect(database)
    try:
        await bulk(conn)
    finally:
        await conn.close()

    async def ordered(tx: Any, tags: dict[str, str]) -> list[str]:
        return list(await tx._rarest_first(tags))

    for tags in ({"scope": "global", "root": "r1234"}, {"root": "r1234", "scope": "global"}):
        assert await store.run(lambda tx, t=tags: ordered(tx, t)) == ["root", "scope"]
    assert await store.run(lambda tx: ordered(tx, {"scope": "global", "nope": "x"})) == [
        "nope",
        "scope",
    ]


async def test_branch_preload_reads_the_tag_index(store: PostgresStore, database: str) -> None:
    conn = await asyncpg.connect(database)
    try:
        await bulk(conn)
        for generic in (False, True):
            shown = await plan(conn, STATEMENTS["branch_promises"], ["b1", "x"], generic)
            assert "idx_promise_tags_id on promise_tags" in shown, shown
            assert "Sort" not in shown and "Seq Scan" not in shown, shown
    finally:
        await conn.close()


# ---- answers ------------------------------------------------------------------------------------


RECORDS = [
    promise("a1", {"root": "a", "scope": "global"}),
    promise("a2", {"root": "a", "scope": "local"}, PromiseState.RESOLVED),
    promise("a3", {"root": "a", "scope": "global", "x": "1"}, PromiseState.REJECTED),
    promise("b1", {"root": "b", "scope": "global"}),
    promise("b2", {"root": "b"}, PromiseState.RESOLVED),
    promise("c1", {}),
    promise("c2", {"scope": "global"}, PromiseState.REJECTED_TIMEDOUT),
    promise("é1", {"root": "a", "ключ": "значение"}),
    promise("z9", {"root": "a'; DROP TABLE promises; --", "scope": "global"}),
]
STATE_GROUPS = {
    None: None,
    "pending": {PromiseState.PENDING},
    "resolved": {PromiseState.RESOLVED},
    "rejected": {
        PromiseState.REJECTED,
        PromiseState.REJECTED_CANCELED,
        PromiseState.REJECTED_TIMEDOUT,
    },
}
TAG_QUERIES = [
    {"root": "a"},
    {"root": "b"},
    {"scope": "global"},
    {"root": "a", "scope": "global"},
    {"scope": "global", "root": "a"},
    {"ключ": "значение"},
    {"root": "a'; DROP TABLE promises; --"},
    {"x": "1"},
    {"root": "zz"},
]


def holds(record: Promise, tags: dict[str, str]) -> bool:
    return all(record.tags.get(k) == v for k, v in tags.items())


@pytest.mark.parametrize("state_first_upto", [2000, 0], ids=["state first", "tag walk"])
async def test_tag_searches_answer_as_the_reference(
    store: PostgresStore, monkeypatch: pytest.MonkeyPatch, state_first_upto: int
) -> None:
    """Both ways of a search by tag and state: from the few promises in the state, and
    walking the tag's index (when many promises are in the state)."""
    monkeypatch.setattr(transaction, "STATE_FIRST_UPTO", state_first_upto)
    await insert(store, *RECORDS)
    sort_ids = {record.id: n for n, record in enumerate(RECORDS, start=1)}

    async def newest_first(tx: Any, query: PromiseQuery) -> list[str]:
        return [p.id for _, p in await tx.search_promises(query)]

    async def by_id(tx: Any, query: PromiseIdQuery) -> list[str]:
        return [p.id for p in await tx.search_promises_by_id(query)]

    for tags in TAG_QUERIES:
        for state, states in STATE_GROUPS.items():
            matching = [r for r in RECORDS if holds(r, tags) and (not states or r.state in states)]
            expected = [r.id for r in sorted(matching, key=lambda r: -sort_ids[r.id])]
            for limit in (1, 2, 10):
                pages: list[str] = []
                before: int | None = None
                while True:
                    query = PromiseQuery("*", state, tags, limit, before)
                    page = await store.run(lambda tx, q=query: newest_first(tx, q))
                    pages.extend(page)
                    if len(page) < limit:
                        break
                    before = sort_ids[page[-1]]
                assert pages == expected, (tags, state, limit)
            assert await store.run(
                lambda tx, t=tags, s=state: newest_first(tx, PromiseQuery("a*", s, t))
            ) == [i for i in expected if i.startswith("a")]

        for exact in (None, PromiseState.PENDING, PromiseState.RESOLVED):
            matching = [r for r in RECORDS if holds(r, tags) and exact in (None, r.state)]
            expected = sorted(r.id for r in matching)  # code point order: the UTF-8 bytes
            for after in (None, "a1", "b", "z"):
                want = [i for i in expected if after is None or i > after][:3]
                query = PromiseIdQuery(exact, tags, 2, after)  # limit + 1 rows
                assert await store.run(lambda tx, q=query: by_id(tx, q)) == want, (tags, after)


async def test_the_tag_index_follows_deletes_updates_and_wipes(
    store: PostgresStore, database: str
) -> None:
    await insert(store, promise("p1", {"k": "v", "n": "1"}), promise("p2", {"k": "v"}))
    conn = await asyncpg.connect(database)
    try:

        async def indexed() -> list[tuple[str, str, str]]:
            rows = await conn.fetch("SELECT key, value, id FROM promise_tags ORDER BY 3, 1")
            return [tuple(row) for row in rows]

        assert await indexed() == [("k", "v", "p1"), ("n", "1", "p1"), ("k", "v", "p2")]
        await conn.execute("""UPDATE promises SET tags = '{"k": "w", "m": 2}' WHERE id = 'p1'""")
        assert await indexed() == [("k", "w", "p1"), ("k", "v", "p2")]  # text values only
        await conn.execute("DELETE FROM promises WHERE id = 'p2'")
        assert await indexed() == [("k", "w", "p1")]
        await conn.execute("UPDATE promises SET state = 2 WHERE id = 'p1'")  # tags untouched
        assert await indexed() == [("k", "w", "p1")]

        async def wipe(tx: Any) -> None:
            await tx.debug_wipe()

        await store.run(wipe)
        assert await indexed() == []
    finally:
        await conn.close()


async def test_the_migration_indexes_the_promises_stored_before_it(database: str) -> None:
    old = PostgresStore(database)
    old.migrations = [m for m in old.migrations if m.version < 7]
    await old.open()
    try:
        conn = await asyncpg.connect(database)
        try:
            await bulk(conn, 1000)
            await conn.execute(
                "INSERT INTO promises (id, state, timeout, tags) VALUES"
                """ ('odd', 1, 1, '{"k": 1, "t": "x"}'), ('none', 1, 1, NULL)"""
            )
        finally:
            await conn.close()
    finally:
        await old.close()

    store = PostgresStore(database)
    assert (await store.open(migrate_fresh=False)).pending
    try:
        assert [m.version for m in await store.migrate_up()] == [7, 8, 9, 10]

        async def search(tx: Any) -> tuple[list[str], list[str], list[str]]:
            newest = await tx.search_promises(PromiseQuery("*", tags={"root": "r42"}))
            by_id = await tx.search_promises_by_id(PromiseIdQuery(tags={"scope": "local"}))
            odd = await tx.search_promises(PromiseQuery("*", tags={"t": "x"}))
            return [p.id for _, p in newest], [p.id for p in by_id], [p.id for _, p in odd]

        newest, by_id, odd = await store.run(search)
        assert newest == [f"bulk-{n:06d}" for n in range(429, 419, -1)]
        assert by_id == [f"bulk-{n:06d}" for n in range(20, 1001, 20)]
        assert odd == ["odd"]
        conn = await asyncpg.connect(database)
        try:
            count = await conn.fetchval("SELECT count(*) FROM promise_tags")
            gin = await conn.fetchval(
                "SELECT count(*) FROM pg_indexes WHERE tablename = 'promises'"
                " AND indexdef LIKE '%USING gin%'"
            )
        finally:
            await conn.close()
        assert count == 2 * 1000 + 1  # root and scope of each, and odd's text tag
        assert gin == 0
    finally:
        await store.close()


async def test_a_search_tag_is_compared_as_text(store: PostgresStore) -> None:
    """The index holds text values only; the containment test of the other tags sees the
    stored JSON: a tag stored as a number is not the text of that number, on either side."""
    await insert(store, promise("t", {"k": "1", "j": "2"}))

    async def found(tx: Any, tags: dict[str, str]) -> list[str]:
        return [p.id for _, p in await tx.search_promises(PromiseQuery("*", tags=tags))]

    assert await store.run(lambda tx: found(tx, {"k": "1", "j": "2"})) == ["t"]
    assert await store.run(lambda tx: found(tx, {"j": "2", "k": "1"})) == ["t"]
    assert await store.run(lambda tx: found(tx, {"k": "1", "j": "3"})) == []
