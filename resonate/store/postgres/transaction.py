"""PostgreSQL implementation of the Transaction interface, over one pooled asyncpg connection
inside an open READ COMMITTED transaction.

Rows come back in the SQLite store's column order, so both stores share the row decoders.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import asyncpg

from resonate.core.callback import Callback, CallbackQuery
from resonate.core.lock import Lock, LockQuery
from resonate.core.promise import Promise, PromiseState, Value
from resonate.core.schedule import Schedule
from resonate.core.search import PromiseIdQuery, PromiseQuery, ScheduleQuery, TaskQuery
from resonate.core.task import Task, TaskState
from resonate.core.task2026 import Task2026
from resonate.store.base import DEBUG_TABLES, Completion, Counts, Event, Purged, PurgeQuery
from resonate.store.rows import (
    callback_from_row,
    callback_values,
    counts_from_rows,
    dump_map,
    listed_callback_from_row,
    promise_from_row,
    promise_values,
    schedule_from_row,
    schedule_values,
    swap_task_values,
    task_2026_from_row,
    task_2026_values,
    task_from_row,
    task_values,
)

# Highest code point that is a character; comparisons under the "C" collation follow code
# points (UTF-8 byte order).
_MAX_CODE_POINT = 0x10FFFF
_SURROGATES = range(0xD800, 0xE000)


# A search by tag and state starts from the promises in that state when at most this many are.
STATE_FIRST_UPTO = 2000


class RetryOperation(Exception):
    """The operation acted on a state that changed under it: roll back and run it again."""


def _affected(status: str) -> int:
    """Rows touched, from a command status such as ``UPDATE 3`` or ``INSERT 0 1``."""
    return int(status.rsplit(" ", 1)[-1])


def like_pattern(pattern: str) -> str:
    """A D6 pattern as a LIKE pattern (escape `\\`): `*` is the only wildcard."""
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%")


def prefix_upper_bound(prefix: str) -> str | None:
    """The smallest string above every string starting with ``prefix`` (code point order), or
    None when there is none."""
    chars = list(prefix)
    while chars:
        code = ord(chars.pop()) + 1
        if code in _SURROGATES:
            code = _SURROGATES.stop
        if code <= _MAX_CODE_POINT:
            return "".join(chars) + chr(code)
    return None


class Filters:
    """A WHERE clause under construction, with its numbered parameters."""

    __slots__ = ("clauses", "params")

    def __init__(self) -> None:
        self.clauses: list[str] = []
        self.params: list[Any] = []

    def param(self, value: Any) -> str:
        self.params.append(value)
        return f"${len(self.params)}"

    def add(self, clause: str) -> None:
        self.clauses.append(clause)

    def where(self) -> str:
        return " WHERE " + " AND ".join(self.clauses) if self.clauses else ""

    def pattern(self, column: str, pattern: str) -> None:
        """A D6 `*` pattern: equality without `*`, else a case-sensitive LIKE. A literal prefix
        also becomes a range on the column, which the id index serves even in a generic plan
        (where LIKE on a parameter cannot use it)."""
        if pattern == "*":
            return
        if "*" not in pattern:
            self.add(f"{column} = {self.param(pattern)}")
            return
        prefix = pattern.split("*", 1)[0]
        if prefix:
            self.add(f"{column} >= {self.param(prefix)}")
            upper = prefix_upper_bound(prefix)
            if upper is not None:
                self.add(f"{column} < {self.param(upper)}")
        self.add(f"{column} LIKE {self.param(like_pattern(pattern))} ESCAPE E'\\\\'")

    def tags(self, column: str, tags: dict[str, str]) -> None:
        """Every `tags[k]=v` filter as one containment test (a filter on rows found otherwise:
        tag searches of promises start from the tag index, see _of_tag)."""
        if tags:
            self.add(f"{column} @> {self.param(json.dumps(tags, separators=(',', ':')))}::jsonb")


def has_nul(*values: object) -> bool:
    """PostgreSQL text cannot hold U+0000, so no stored value equals one that has it."""
    for value in values:
        if isinstance(value, str) and "\x00" in value:
            return True
        if isinstance(value, dict) and has_nul(*value.keys(), *value.values()):
            return True
    return False


def promise_search(
    statements: dict[str, str], query: PromiseQuery, *, state_first: bool = False
) -> tuple[str, list[Any]]:
    """The SQL of one search page, newest first (also used by tests to check the plan).

    With tags, the page walks the tag index (migration 007) of the first tag backwards from
    the cursor: each step is a promise holding that tag, so a page costs about its own rows
    when the other conditions hold for them, however many promises are stored or hold it.
    ``state_first`` (at most STATE_FIRST_UPTO promises are in the wanted states): the page is
    taken from those promises instead, all read and sorted."""
    if state_first and query.tags and query.states:
        filters = Filters()
        wanted = [f"state IN ({', '.join(str(int(s)) for s in query.states)})"]
        if query.before_sort_id is not None:
            wanted.append(f"sort_id < {filters.param(query.before_sort_id)}")
        filters.pattern("p.id", query.id)
        filters.tags("p.tags", query.tags)
        # An array of sort ids, computed first: each row of it is one probe of the sort_id
        # index, whatever the planner thinks of the conditions.
        filters.add(
            f"p.sort_id = ANY (ARRAY (SELECT sort_id FROM promises WHERE {' AND '.join(wanted)}))"
        )
        sql = (
            f"{statements['select_promises_in_state']}{filters.where()}"
            f" ORDER BY p.sort_id DESC LIMIT {filters.param(query.limit)}"
        )
        return sql, filters.params
    if not query.tags:
        filters = Filters()
        filters.pattern("id", query.id)
        _states(filters, "state", query.states)
        return _newest_first(
            statements["select_promises"], filters, query.before_sort_id, query.limit
        )
    filters = _of_tag(query.tags)
    if query.before_sort_id is not None:
        filters.add(f"t.sort_id < {filters.param(query.before_sort_id)}")
    filters.pattern("p.id", query.id)
    _states(filters, "p.state", query.states)
    sql = (
        f"{statements['select_promises_of_tag']}{filters.where()}"
        f" ORDER BY t.sort_id DESC LIMIT {filters.param(query.limit)}"
    )
    return sql, filters.params


def promise_search_by_id(
    statements: dict[str, str], query: PromiseIdQuery
) -> tuple[str, list[Any]]:
    """The SQL of one page of the 2026 protocol's search, in id order (byte order: the ids are
    COLLATE "C"), one row more than the page. With tags, one range of the first tag's id index
    (migration 007) from the cursor on."""
    state = None if query.state is None else int(query.state)
    if not query.tags:
        filters = Filters()
        if state is not None:
            filters.add(f"state = {filters.param(state)}")
        if query.after_id is not None:
            filters.add(f"id > {filters.param(query.after_id)}")
        sql = (
            f"{statements['select_promises']}{filters.where()}"
            f" ORDER BY id LIMIT {filters.param(query.limit + 1)}"
        )
        return sql, filters.params
    filters = _of_tag(query.tags)
    if query.after_id is not None:
        filters.add(f"t.id > {filters.param(query.after_id)}")
    if state is not None:
        filters.add(f"p.state = {filters.param(state)}")
    sql = (
        f"{statements['select_promises_of_tag']}{filters.where()}"
        f" ORDER BY t.id LIMIT {filters.param(query.limit + 1)}"
    )
    return sql, filters.params


def _of_tag(tags: dict[str, str]) -> Filters:
    """The promises holding the first of ``tags`` (its index range, walked in page order), and
    each other tag as one probe of the same index per row of it: never a test of the JSON
    column of every promise. The store puts the rarest tag first (_rarest_first)."""
    (key, value), *others = tags.items()
    filters = Filters()
    filters.add(f"t.key = {filters.param(key)} AND t.value = {filters.param(value)}")
    for n, (other_key, other_value) in enumerate(others, start=1):
        held = (
            f"t{n}.key = {filters.param(other_key)} AND t{n}.value = {filters.param(other_value)}"
        )
        # OFFSET 0 keeps it a probe per row of the first tag: never a join the planner could
        # start from a tag most promises hold (see _rarest_first).
        filters.add(
            f"EXISTS (SELECT 1 FROM promise_tags AS t{n}"
            f" WHERE {held} AND t{n}.sort_id = t.sort_id OFFSET 0)"
        )
    return filters


def _states(filters: Filters, column: str, states: tuple[PromiseState, ...]) -> None:
    """The states as literals (integers of an enum, never input text): the planner then knows
    them in a generic plan too, and can read the partial index of PENDING or of completed
    promises when they are the few."""
    if states:
        filters.add(f"{column} IN ({', '.join(str(int(s)) for s in states)})")


def _newest_first(
    select: str, filters: Filters, before: int | None, limit: int
) -> tuple[str, list[Any]]:
    """One search page: the filters, then rows older than the cursor, newest first."""
    if before is not None:
        filters.add(f"sort_id < {filters.param(before)}")
    sql = f"{select}{filters.where()} ORDER BY sort_id DESC LIMIT {filters.param(limit)}"
    return sql, filters.params


class PostgresTransaction:
    __slots__ = ("conn", "events", "statements")

    def __init__(self, conn: asyncpg.Connection, statements: dict[str, str]) -> None:
        self.conn = conn
        self.statements = statements
        self.events: list[Event] = []

    def emit(self, event: Event) -> None:
        self.events.append(event)

    async def _rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in await self.conn.fetch(sql, *params)]

    async def _row(self, sql: str, *params: Any) -> tuple[Any, ...] | None:
        row = await self.conn.fetchrow(sql, *params)
        return None if row is None else tuple(row)

    async def _count(self, sql: str, *params: Any) -> int:
        return _affected(await self.conn.execute(sql, *params))

    # ---- promises -----------------------------------------------------------------------------

    async def get_promise(self, promise_id: str) -> Promise | None:
        if has_nul(promise_id):
            return None
        row = await self._row(self.statements["select_promises"] + " WHERE id = $1", promise_id)
        return promise_from_row(row)[1] if row else None

    async def insert_promise(self, promise: Promise, invoke: Task | None = None) -> bool:
        if invoke is None:
            inserted = await self._count(
                self.statements["insert_promise"], *promise_values(promise)
            )
            return inserted == 1
        inserted = await self.conn.fetchval(
            self.statements["insert_promise_and_invoke_task"],
            *promise_values(promise),
            *task_values(invoke),
        )
        return bool(inserted)

    async def complete_promise(
        self,
        promise_id: str,
        state: PromiseState,
        value: Value,
        idempotency_key: str | None,
        completed_on: int,
        *,
        now: int,
        unless_overdue_at: int | None = None,
    ) -> Completion | None:
        # One call to the stored function of migration 003: one round trip for what would
        # otherwise be three statements.
        row = await self._row(
            self.statements["complete_promise"],
            promise_id,
            int(state),
            dump_map(value.headers),
            value.data,
            idempotency_key,
            completed_on,
            unless_overdue_at,
            now,
        )
        if row is None:
            return None
        return Completion(promise_from_row(row[:13])[1], row[13], row[14], row[15], row[16])

    async def _rarest_first(self, tags: dict[str, str]) -> dict[str, str]:
        """``tags``, the one fewest promises hold first (counted up to STATE_FIRST_UPTO + 1
        holders each, in one statement): a search walks the index of its first tag."""
        if len(tags) < 2:
            return tags
        filters = Filters()
        counts = [
            f"(SELECT count(*) FROM (SELECT 1 FROM promise_tags WHERE key = {filters.param(k)}"
            f" AND value = {filters.param(v)} LIMIT {STATE_FIRST_UPTO + 1}) AS c)"
            for k, v in tags.items()
        ]
        row = await self.conn.fetchrow(f"SELECT {', '.join(counts)}", *filters.params)
        order = sorted(range(len(tags)), key=lambda n: int(row[n]))
        items = list(tags.items())
        return dict(items[n] for n in order)

    async def search_promises(self, query: PromiseQuery) -> list[tuple[int, Promise]]:
        if has_nul(query.id, query.tags):
            return []
        if len(query.tags) > 1:
            query = replace(query, tags=await self._rarest_first(query.tags))
        few = False
        if query.tags and query.states:
            # A tag and a state: walking the tag's index meets the state soon enough unless
            # few promises are in that state (PENDING ones, typically), and then not at all
            # when none of those holds the tag. Count them (at most one more than the bound,
            # from their partial index); when few, start from them.
            states = ", ".join(str(int(s)) for s in query.states)
            few = await self.conn.fetchval(
                f"SELECT count(*) <= {STATE_FIRST_UPTO} FROM (SELECT 1 FROM promises"
                f" WHERE state IN ({states}) LIMIT {STATE_FIRST_UPTO + 1}) AS s"
            )
        sql, params = promise_search(self.statements, query, state_first=bool(few))
        return [promise_from_row(row) for row in await self._rows(sql, *params)]

    async def search_promises_by_id(self, query: PromiseIdQuery) -> list[Promise]:
        if has_nul(query.after_id or "", query.tags):
            return []  # PostgreSQL text cannot hold U+0000: no stored id or tag has one
        if len(query.tags) > 1:
            query = replace(query, tags=await self._rarest_first(query.tags))
        sql, params = promise_search_by_id(self.statements, query)
        return [promise_from_row(row)[1] for row in await self._rows(sql, *params)]

    async def overdue_promises(
        self, now: int, limit: int, query: PromiseQuery | None = None
    ) -> list[Promise]:
        if query is not None and has_nul(query.id, query.tags):
            return []
        filters = Filters()
        filters.add(f"state = 1 AND timeout <= {filters.param(now)}")
        if query is not None:
            filters.pattern("id", query.id)
            filters.tags("tags", query.tags)
        # The eager loop (no query) skips rows another transaction holds. A search must not:
        # a row skipped here because the loop is timing it out would then be read back as
        # PENDING. It waits for that lock instead; in READ COMMITTED the row is re-checked
        # after the wait and drops out once the loop's timeout has committed.
        locking = "FOR UPDATE SKIP LOCKED" if query is None else "FOR UPDATE"
        sql = (
            f"{self.statements['select_promises']}{filters.where()}"
            f" ORDER BY timeout, id LIMIT {filters.param(limit)} {locking}"
        )
        return [promise_from_row(row)[1] for row in await self._rows(sql, *filters.params)]

    async def earliest_pending_timeout(self) -> int | None:
        value = await self.conn.fetchval(self.statements["earliest_pending_timeout"])
        return None if value is None else int(value)

    async def task_is_claimed(self, task_id: str, counter: int) -> bool:
        if has_nul(task_id):
            return False
        row = await self._row(self.statements["task_is_claimed"], task_id, counter)
        return row is not None

    # ---- callbacks ----------------------------------------------------------------------------

    async def get_callback(self, callback_id: str) -> Callback | None:
        if has_nul(callback_id):
            return None
        row = await self._row(self.statements["get_callback"], callback_id)
        return callback_from_row(row) if row is not None else None

    async def insert_callback(self, callback: Callback) -> bool:
        row = await self._row(self.statements["insert_callback"], *callback_values(callback))
        assert row is not None
        pending, inserted = row
        if not pending:
            # Callers register on a promise they just read as PENDING; it completed since (or
            # never existed), so their decision is stale: run the operation again.
            raise RetryOperation(f"promise {callback.promise_id} changed during registration")
        return bool(inserted)

    async def list_callbacks(self, query: CallbackQuery) -> list[tuple[int, Callback]]:
        if has_nul(query.promise_id):
            return []
        rows = await self._rows(
            self.statements["list_callbacks"], query.promise_id, query.after_sort_id, query.limit
        )
        return [listed_callback_from_row(row) for row in rows]

    # ---- the 2026-04-01 protocol --------------------------------------------------------------

    async def get_task_2026(self, task_id: str) -> Task2026 | None:
        if has_nul(task_id):
            return None
        row = await self._row(self.statements["select_tasks_2026"] + " WHERE id = $1", task_id)
        return task_2026_from_row(row) if row else None

    async def insert_task_2026(self, task: Task2026) -> bool:
        inserted = await self._count(self.statements["insert_task_2026"], *task_2026_values(task))
        return inserted == 1

    async def swap_task_2026(self, old: Task2026, new: Task2026) -> bool:
        values = task_2026_values(new)
        swapped = await self._count(
            self.statements["swap_task_2026"], *values[1:], old.id, old.state.value, old.version
        )
        return swapped == 1

    async def search_tasks_2026(
        self, state: str | None, after_id: str | None, limit: int
    ) -> list[Task2026]:
        if has_nul(after_id or ""):
            return []
        filters = Filters()
        if state is not None:
            filters.add(f"state = {filters.param(state)}")
        if after_id is not None:
            filters.add(f"id > {filters.param(after_id)}")
        sql = (
            f"{self.statements['select_tasks_2026']}{filters.where()}"
            f" ORDER BY id LIMIT {filters.param(limit)}"
        )
        return [task_2026_from_row(row) for row in await self._rows(sql, *filters.params)]

    async def leases_ending_2026(self, before: int, limit: int) -> list[Task2026]:
        rows = await self._rows(self.statements["leases_ending_2026"], before, limit)
        return [task_2026_from_row(row) for row in rows]

    async def heartbeat_task_2026(self, task_id: str, version: int, pid: str, now: int) -> bool:
        if has_nul(task_id, pid):
            return False
        beaten = await self._count(
            self.statements["heartbeat_task_2026"], now, task_id, version, pid
        )
        return beaten == 1

    async def _insert_on_pending(self, statement: str, promise_id: str, *params: Any) -> bool:
        row = await self._row(self.statements[statement], promise_id, *params)
        assert row is not None
        pending, inserted = row
        if not pending:
            raise RetryOperation(f"promise {promise_id} changed during registration")
        return bool(inserted)

    async def insert_callback_2026(self, awaited: str, awaiter: str, now: int) -> bool:
        return await self._insert_on_pending("insert_callback_2026", awaited, awaiter, now)

    async def delete_callbacks_2026_of_awaiter(self, awaiter: str) -> None:
        await self.conn.execute(self.statements["delete_callbacks_2026_of_awaiter"], awaiter)

    async def insert_listener_2026(self, promise_id: str, address: str, now: int) -> bool:
        return await self._insert_on_pending("insert_listener_2026", promise_id, address, now)

    async def branch_promises(self, branch: str, except_id: str) -> list[Promise]:
        if has_nul(branch):
            return []
        rows = await self._rows(self.statements["branch_promises"], branch, except_id)
        return [promise_from_row(row)[1] for row in rows]

    async def due_tasks_2026(self, now: int, limit: int, next_retry_at: int) -> list[Task2026]:
        rows = await self._rows(self.statements["due_tasks_2026"], next_retry_at, now, limit)
        return [task_2026_from_row(row) for row in rows]

    async def expire_leases_2026(self, now: int, limit: int) -> int:
        return await self._count(self.statements["expire_leases_2026"], now, limit)

    async def take_unblocks_2026(self, limit: int) -> list[tuple[str, Promise]]:
        rows = await self._rows(self.statements["take_unblocks_2026"], limit)
        return [(row[0], promise_from_row(row[1:])[1]) for row in rows]

    async def count_tasks_2026(self) -> dict[str, int]:
        rows = await self._rows(self.statements["count_tasks_2026"])
        return {state: int(count) for state, count in rows}

    # ---- tasks --------------------------------------------------------------------------------

    async def get_task(self, task_id: str) -> Task | None:
        if has_nul(task_id):
            return None
        row = await self._row(self.statements["select_tasks"] + " WHERE id = $1", task_id)
        return task_from_row(row)[1] if row else None

    async def insert_task(self, task: Task) -> bool:
        inserted = await self._count(self.statements["insert_task"], *task_values(task))
        return inserted == 1

    async def swap_task(self, old: Task, new: Task) -> bool:
        swapped = await self._count(self.statements["swap_task"], *swap_task_values(old, new))
        return swapped == 1

    async def heartbeat_tasks(self, process_id: str, now: int) -> int:
        if has_nul(process_id):
            return 0
        return await self._count(self.statements["heartbeat_tasks"], now, process_id)

    async def search_tasks(self, query: TaskQuery) -> list[tuple[int, Task]]:
        if has_nul(query.id, query.process_id, query.root_promise_id):
            return []
        filters = Filters()
        filters.pattern("id", query.id)
        if query.state is not None:
            filters.add(f"state = {filters.param(int(TaskState[query.state.upper()]))}")
        if query.process_id is not None:
            filters.add(f"process_id = {filters.param(query.process_id)}")
        if query.root_promise_id is not None:
            filters.add(f"root_promise_id = {filters.param(query.root_promise_id)}")
        sql, params = _newest_first(
            self.statements["select_tasks"], filters, query.before_sort_id, query.limit
        )
        return [task_from_row(row) for row in await self._rows(sql, *params)]

    async def sendable_tasks(self, now: int, limit: int) -> list[Task]:
        rows = await self._rows(self.statements["sendable_tasks"], now, limit)
        return [task_from_row(row)[1] for row in rows]

    async def expired_tasks(self, now: int, limit: int) -> list[Task]:
        rows = await self._rows(self.statements["expired_tasks"], now, limit)
        return [task_from_row(row)[1] for row in rows]

    # ---- locks --------------------------------------------------------------------------------

    async def get_lock(self, resource_id: str) -> Lock | None:
        if has_nul(resource_id):
            return None
        row = await self._row(
            self.statements["select_locks"] + " WHERE resource_id = $1", resource_id
        )
        return Lock(*row) if row else None

    async def acquire_lock(self, lock: Lock, now: int) -> bool:
        written = await self._count(
            self.statements["acquire_lock"],
            lock.resource_id,
            lock.execution_id,
            lock.process_id,
            lock.ttl,
            lock.expires_at,
            now,
        )
        return written == 1

    async def release_lock(self, resource_id: str, execution_id: str) -> bool:
        if has_nul(resource_id, execution_id):
            return False
        deleted = await self._count(self.statements["release_lock"], resource_id, execution_id)
        return deleted == 1

    async def heartbeat_locks(self, process_id: str, now: int) -> int:
        if has_nul(process_id):
            return 0
        return await self._count(self.statements["heartbeat_locks"], now, process_id)

    async def search_locks(self, query: LockQuery) -> list[Lock]:
        searched = (query.resource_id, query.process_id, query.execution_id)
        if has_nul(*searched, query.after_resource_id):
            return []
        filters = Filters()
        filters.pattern("resource_id", query.resource_id)
        if query.process_id is not None:
            filters.add(f"process_id = {filters.param(query.process_id)}")
        if query.execution_id is not None:
            filters.add(f"execution_id = {filters.param(query.execution_id)}")
        if query.after_resource_id is not None:
            filters.add(f"resource_id > {filters.param(query.after_resource_id)}")
        sql = (
            f"{self.statements['select_locks']}{filters.where()}"
            f" ORDER BY resource_id LIMIT {filters.param(query.limit)}"
        )
        return [Lock(*row) for row in await self._rows(sql, *filters.params)]

    async def delete_expired_locks(self, now: int, limit: int) -> int:
        return await self._count(self.statements["delete_expired_locks"], now, limit)

    async def count_locks(self) -> int:
        return int(await self.conn.fetchval(self.statements["count_locks"]))

    # ---- retention ----------------------------------------------------------------------------

    def _purgeable(self, query: PurgeQuery, filters: Filters) -> str:
        """``FROM promises AS p WHERE ...``: the promises ``query`` selects that the keep rules
        let go, shared by the purge and its dry run so that both count the same rows. The
        first conditions are a range of idx_promises_completed_on (migration 008), walked in
        completion order; with a tag, the tag index (migration 007) offers the planner the
        other way in, which it takes when the tag is the rarer."""
        groups = query.by_cutoff()
        filters.add("p.state <> 1")
        filters.add(f"p.completed_on <= {filters.param(groups[-1][0])}")
        if not query.all_states:
            alternatives = [
                f"(p.state IN ({', '.join(str(int(s)) for s in states)})"
                f" AND p.completed_on <= {filters.param(cutoff)})"
                for cutoff, states in groups
            ]
            filters.add("(" + " OR ".join(alternatives) + ")")
        filters.pattern("p.id", query.id)
        tags = list(query.tags.items())
        if tags:
            (key, value), *others = tags
            filters.add(
                "p.sort_id IN (SELECT sort_id FROM promise_tags"
                f" WHERE key = {filters.param(key)} AND value = {filters.param(value)})"
            )
            filters.tags("p.tags", dict(others))
        filters.add(self.statements["purge_keep"])
        return f"FROM promises AS p{filters.where()}\n"

    @staticmethod
    def _matches_nothing(query: PurgeQuery) -> bool:
        # PostgreSQL text cannot hold U+0000: no stored id or tag has one.
        return not query.cutoffs or has_nul(query.id, dict(query.tags))

    async def purge_promises(self, query: PurgeQuery, limit: int) -> Purged:
        if self._matches_nothing(query):
            return Purged()
        filters = Filters()
        source = self._purgeable(query, filters)
        sql = (
            f"WITH doomed AS (SELECT p.sort_id, p.id {source}"
            f" ORDER BY p.completed_on, p.sort_id LIMIT {filters.param(limit)}"
            " FOR UPDATE OF p SKIP LOCKED),\n" + self.statements["purge_promises"]
        )
        row = await self._row(sql, *filters.params)
        assert row is not None
        promises, tasks, _callbacks, tasks_2026 = row
        return Purged(promises=int(promises), tasks=int(tasks) + int(tasks_2026))

    async def count_purgeable(self, query: PurgeQuery, sample: int) -> tuple[int, list[str]]:
        if self._matches_nothing(query):
            return 0, []
        filters = Filters()
        source = self._purgeable(query, filters)
        count = int(await self.conn.fetchval(f"SELECT count(*) {source}", *filters.params))
        ids: list[str] = []
        if count and sample > 0:
            sql = (
                f"SELECT p.id {source}"
                f" ORDER BY p.completed_on, p.sort_id LIMIT {filters.param(sample)}"
            )
            ids = [str(row[0]) for row in await self._rows(sql, *filters.params)]
        return count, ids

    async def purge_tasks(self, before: int, limit: int) -> int:
        return await self._count(self.statements["purge_completed_tasks"], before, limit)

    async def oldest_completed(self) -> tuple[int | None, int | None]:
        promise = await self.conn.fetchval(self.statements["oldest_completed_promise"])
        task = await self.conn.fetchval(self.statements["oldest_completed_task"])
        return (
            None if promise is None else int(promise),
            None if task is None else int(task),
        )

    # ---- schedules ----------------------------------------------------------------------------

    async def get_schedule(self, schedule_id: str) -> Schedule | None:
        if has_nul(schedule_id):
            return None
        row = await self._row(self.statements["select_schedules"] + " WHERE id = $1", schedule_id)
        return schedule_from_row(row)[1] if row else None

    async def insert_schedule(self, schedule: Schedule) -> bool:
        inserted = await self._count(self.statements["insert_schedule"], *schedule_values(schedule))
        return inserted == 1

    async def delete_schedule(self, schedule_id: str) -> bool:
        if has_nul(schedule_id):
            return False
        return await self._count(self.statements["delete_schedule"], schedule_id) == 1

    async def search_schedules(self, query: ScheduleQuery) -> list[tuple[int, Schedule]]:
        if has_nul(query.id, query.tags):
            return []
        filters = Filters()
        filters.pattern("id", query.id)
        filters.tags("tags", query.tags)
        sql, params = _newest_first(
            self.statements["select_schedules"], filters, query.before_sort_id, query.limit
        )
        return [schedule_from_row(row) for row in await self._rows(sql, *params)]

    async def search_schedules_by_id(
        self, promise_tags: dict[str, str], after_id: str | None, limit: int
    ) -> list[Schedule]:
        if has_nul(after_id or "", promise_tags):
            return []
        filters = Filters()
        if after_id is not None:
            filters.add(f"id > {filters.param(after_id)}")
        filters.tags("promise_tags", promise_tags)
        sql = (
            f"{self.statements['select_schedules']}{filters.where()}"
            f" ORDER BY id LIMIT {filters.param(limit)}"
        )
        return [schedule_from_row(row)[1] for row in await self._rows(sql, *filters.params)]

    async def due_schedules(self, now: int, limit: int) -> list[Schedule]:
        rows = await self._rows(self.statements["due_schedules"], now, limit)
        return [schedule_from_row(row)[1] for row in rows]

    async def advance_schedule(
        self, schedule_id: str, expected_next: int, last_run_time: int, next_run_time: int
    ) -> bool:
        advanced = await self._count(
            self.statements["advance_schedule"],
            last_run_time,
            next_run_time,
            schedule_id,
            expected_next,
        )
        return advanced == 1

    # ---- debug mode ----------------------------------------------------------------------------

    async def debug_rows(self, table: str) -> list[tuple[object, ...]]:
        if table not in DEBUG_TABLES:
            raise ValueError(f"not a table: {table}")
        return await self._rows(f"SELECT * FROM {table}")

    async def debug_wipe(self) -> None:
        # promise_tags (migration 007) is the index of promises' tags: wiped with them.
        await self.conn.execute(f"TRUNCATE {', '.join(DEBUG_TABLES)}, promise_tags")

    # ---- operator dashboard reads ---------------------------------------------------------------

    async def count_records(self, now: int) -> Counts:
        return counts_from_rows(await self._rows(self.statements["count_records"], now))

    async def stuck_promises(self, now: int, limit: int) -> list[Promise]:
        rows = await self._rows(self.statements["stuck_promises"], now, limit)
        return [promise_from_row(row)[1] for row in rows]

    async def tasks_with_lease_ending(self, until: int, limit: int) -> list[Task]:
        rows = await self._rows(self.statements["tasks_with_lease_ending"], until, limit)
        return [task_from_row(row)[1] for row in rows]

    async def reissued_tasks(self, min_counter: int, limit: int) -> list[Task]:
        rows = await self._rows(self.statements["reissued_tasks"], min_counter, limit)
        return [task_from_row(row)[1] for row in rows]

    async def waiting_tasks(self, limit: int) -> list[Task]:
        rows = await self._rows(self.statements["waiting_tasks"], limit)
        return [task_from_row(row)[1] for row in rows]

    async def overdue_schedules(self, now: int, limit: int) -> list[Schedule]:
        rows = await self._rows(self.statements["overdue_schedules"], now, limit)
        return [schedule_from_row(row)[1] for row in rows]

    async def stale_locks(self, now: int, limit: int) -> list[Lock]:
        return [Lock(*row) for row in await self._rows(self.statements["stale_locks"], now, limit)]
