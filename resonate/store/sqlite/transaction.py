"""SQLite implementation of the Transaction interface.

Its methods are coroutines only so that operations are written once for every backend; here
they never suspend (see ``run_to_completion`` in store.py).
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from resonate.core.callback import Callback, CallbackQuery
from resonate.core.lock import Lock, LockQuery
from resonate.core.promise import Promise, PromiseState, Value
from resonate.core.schedule import Schedule
from resonate.core.search import (
    PromiseIdQuery,
    PromiseQuery,
    ScheduleQuery,
    TaskQuery,
    glob_pattern,
)
from resonate.core.task import Task, TaskState
from resonate.core.task2026 import TARGET_TAG, Task2026
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


# One `tags[k]=v` filter on a JSON column. json_each compares the decoded key, so every key is
# literal: a JSON path cannot name keys holding `"`, and SQLite < 3.45 compares path labels with
# the stored (escaped) key text, which misses non-ASCII keys.
def _tag_filter(table: str, column: str) -> str:
    return (
        f"EXISTS (SELECT 1 FROM json_each({table}.{column}) AS tag"
        " WHERE tag.key = ? AND tag.type = 'text' AND tag.value = ?)"
    )


# An id-ordered tag search reads every promise holding its tag from the index and sorts them
# when there are at most this many; beyond, it walks the promises in id order instead.
SORT_IN_MEMORY_UPTO = 2000


def _pattern_filter(column: str, pattern: str, where: list[str], params: list[Any]) -> None:
    """A D6 `*` pattern on ``column``: equality without `*`, else a case-sensitive GLOB."""
    if pattern == "*":
        return
    if "*" in pattern:
        where.append(f"{column} GLOB ?")
        params.append(glob_pattern(pattern))
    else:
        where.append(f"{column} = ?")
        params.append(pattern)


class SqliteTransaction:
    __slots__ = ("conn", "events", "statements")

    def __init__(self, conn: sqlite3.Connection, statements: dict[str, str]) -> None:
        self.conn = conn
        self.statements = statements
        self.events: list[Event] = []

    def _newest_first(
        self, select: str, where: list[str], params: list[Any], before: int | None, limit: int
    ) -> sqlite3.Cursor:
        """One search page: the filters, then rows older than the cursor, newest first."""
        if before is not None:
            where = [*where, "sort_id < ?"]
            params = [*params, before]
        sql = select + (" WHERE " + " AND ".join(where) if where else "")
        return self.conn.execute(sql + " ORDER BY sort_id DESC LIMIT ?", [*params, limit])

    def emit(self, event: Event) -> None:
        self.events.append(event)

    async def get_promise(self, promise_id: str) -> Promise | None:
        row = self.conn.execute(
            self.statements["select_promises"] + " WHERE id = ?", (promise_id,)
        ).fetchone()
        return promise_from_row(row)[1] if row else None

    async def insert_promise(self, promise: Promise, invoke: Task | None = None) -> bool:
        cursor = self.conn.execute(self.statements["insert_promise"], promise_values(promise))
        if cursor.rowcount != 1:
            return False
        if invoke is not None:
            # A plain INSERT: a task already there is an integrity error that rolls the
            # operation back, promise included.
            self.conn.execute(self.statements["insert_invoke_task"], task_values(invoke))
        return True

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
        row = self.conn.execute(
            self.statements["complete_promise"],
            (
                int(state),
                dump_map(value.headers),
                value.data,
                idempotency_key,
                completed_on,
                promise_id,
                unless_overdue_at,
            ),
        ).fetchone()
        if row is None:
            return None
        promise = promise_from_row(row[:13])[1]
        has_tasks, has_callbacks, awaited, listened = row[13:]
        run = self.conn.execute
        completed = created = 0
        if has_tasks:
            completed = run(self.statements["complete_root_tasks"], (now, promise_id)).rowcount
        if has_callbacks:
            created = run(self.statements["tasks_from_callbacks"], (now, promise_id)).rowcount
            run(self.statements["delete_callbacks"], (promise_id,))
        woken, unblocks = self._cascade_2026(promise, now, awaited, listened)
        return Completion(promise, completed, created, woken, unblocks)

    def _cascade_2026(
        self, promise: Promise, now: int, awaited: bool, listened: bool
    ) -> tuple[int, int]:
        """The 2026 steps of a completion (protocol-2026.md §5); (tasks woken, unblocks)."""
        run = self.conn.execute
        statements = self.statements
        if TARGET_TAG in promise.tags:
            run(statements["fulfil_task_2026"], (now, promise.id))
            run(statements["delete_callbacks_2026_of_awaiter"], (promise.id,))
        woken = unblocks = 0
        if awaited:
            # Resumes are counted first: a task woken below is pending and must not count twice.
            run(statements["count_resumes_2026"], (now, promise.id))
            woken = run(statements["wake_tasks_2026"], (now, now, promise.id)).rowcount
            run(statements["delete_callbacks_2026_of_awaited"], (promise.id,))
        if listened:
            unblocks = run(statements["queue_unblocks_2026"], (now, promise.id)).rowcount
            run(statements["delete_listeners_2026"], (promise.id,))
        return woken, unblocks

    # ---- the 2026-04-01 protocol ----

    async def get_task_2026(self, task_id: str) -> Task2026 | None:
        row = self.conn.execute(
            self.statements["select_tasks_2026"] + " WHERE id = ?", (task_id,)
        ).fetchone()
        return task_2026_from_row(row) if row else None

    async def insert_task_2026(self, task: Task2026) -> bool:
        cursor = self.conn.execute(self.statements["insert_task_2026"], task_2026_values(task))
        return cursor.rowcount == 1

    async def swap_task_2026(self, old: Task2026, new: Task2026) -> bool:
        values = task_2026_values(new)
        cursor = self.conn.execute(
            self.statements["swap_task_2026"], (*values[1:], old.id, old.state.value, old.version)
        )
        return cursor.rowcount == 1

    async def search_tasks_2026(
        self, state: str | None, after_id: str | None, limit: int
    ) -> list[Task2026]:
        where: list[str] = []
        params: list[Any] = []
        if state is not None:
            where.append("state = ?")
            params.append(state)
        if after_id is not None:
            where.append("id > ?")
            params.append(after_id)
        sql = self.statements["select_tasks_2026"]
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = self.conn.execute(sql + " ORDER BY id LIMIT ?", [*params, limit])
        return [task_2026_from_row(row) for row in rows]

    async def leases_ending_2026(self, before: int, limit: int) -> list[Task2026]:
        rows = self.conn.execute(self.statements["leases_ending_2026"], (before, limit))
        return [task_2026_from_row(row) for row in rows]

    async def heartbeat_task_2026(self, task_id: str, version: int, pid: str, now: int) -> bool:
        cursor = self.conn.execute(
            self.statements["heartbeat_task_2026"], (now, now, task_id, version, pid)
        )
        return cursor.rowcount == 1

    async def insert_callback_2026(self, awaited: str, awaiter: str, now: int) -> bool:
        cursor = self.conn.execute(self.statements["insert_callback_2026"], (awaited, awaiter, now))
        return cursor.rowcount == 1

    async def delete_callbacks_2026_of_awaiter(self, awaiter: str) -> None:
        self.conn.execute(self.statements["delete_callbacks_2026_of_awaiter"], (awaiter,))

    async def insert_listener_2026(self, promise_id: str, address: str, now: int) -> bool:
        cursor = self.conn.execute(
            self.statements["insert_listener_2026"], (promise_id, address, now)
        )
        return cursor.rowcount == 1

    async def branch_promises(self, branch: str, except_id: str) -> list[Promise]:
        rows = self.conn.execute(self.statements["branch_promises"], (branch, except_id))
        return [promise_from_row(row)[1] for row in rows]

    async def due_tasks_2026(self, now: int, limit: int, next_retry_at: int) -> list[Task2026]:
        rows = self.conn.execute(
            self.statements["due_tasks_2026"], (next_retry_at, now, now, limit)
        ).fetchall()
        return [task_2026_from_row(row) for row in rows]

    async def expire_leases_2026(self, now: int, limit: int) -> int:
        cursor = self.conn.execute(self.statements["expire_leases_2026"], (now, now, now, limit))
        return cursor.rowcount

    async def take_unblocks_2026(self, limit: int) -> list[tuple[str, Promise]]:
        taken = self.conn.execute(self.statements["take_unblocks_2026"], (limit,)).fetchall()
        unblocks = []
        for promise_id, address in taken:
            promise = await self.get_promise(promise_id)
            if promise is not None:
                unblocks.append((address, promise))
        return unblocks

    async def count_tasks_2026(self) -> dict[str, int]:
        rows = self.conn.execute(self.statements["count_tasks_2026"])
        return {state: int(count) for state, count in rows}

    def _filters(self, query: PromiseQuery) -> tuple[list[str], list[Any]]:
        where: list[str] = []
        params: list[Any] = []
        _pattern_filter("id", query.id, where, params)
        for key, value in query.tags.items():
            where.append(_tag_filter("promises", "tags"))
            params.extend((key, value))
        return where, params

    def tags_indexed(self) -> bool:
        """Whether every stored promise is in the tag index (its backfill has finished)."""
        return self.conn.execute(self.statements["tags_backfill_pending"]).fetchone() is None

    async def search_promises(self, query: PromiseQuery) -> list[tuple[int, Promise]]:
        if query.tags and self.tags_indexed():
            return self._search_promises_by_tag(query)
        where, params = self._filters(query)
        states = query.states
        if states:
            where.append(f"state IN ({','.join('?' * len(states))})")
            params.extend(int(s) for s in states)
        rows = self._newest_first(
            self.statements["select_promises"], where, params, query.before_sort_id, query.limit
        )
        return [promise_from_row(row) for row in rows]

    def _search_promises_by_tag(self, query: PromiseQuery) -> list[tuple[int, Promise]]:
        """The newest-first search walking the index of its first tag backwards from the
        cursor: each step is a promise holding that tag, so a page costs about its own rows
        when the other filters match them, however many promises are stored."""
        (key, value), *others = query.tags.items()
        where = ["t.key = ?", "t.value = ?"]
        params: list[Any] = [key, value]
        if query.before_sort_id is not None:
            where.append("t.sort_id < ?")
            params.append(query.before_sort_id)
        _pattern_filter("p.id", query.id, where, params)
        for other_key, other_value in others:
            where.append(_tag_filter("p", "tags"))
            params.extend((other_key, other_value))
        states = query.states
        if states:
            where.append(f"p.state IN ({','.join('?' * len(states))})")
            params.extend(int(s) for s in states)
        sql = (
            self.statements["select_promises_by_tag"]
            + " WHERE "
            + " AND ".join(where)
            + " ORDER BY t.sort_id DESC LIMIT ?"
        )
        rows = self.conn.execute(sql, [*params, query.limit])
        return [promise_from_row(row) for row in rows]

    async def search_promises_by_id(self, query: PromiseIdQuery) -> list[Promise]:
        state = None if query.state is None else int(query.state)
        wanted = json.dumps(query.tags, separators=(",", ":"))
        if query.tags and self.tags_indexed():
            key, value = next(iter(query.tags.items()))
            held = self.conn.execute(
                self.statements["count_tag_rows_upto"], (key, value, SORT_IN_MEMORY_UPTO + 1)
            ).fetchone()[0]
            if held <= SORT_IN_MEMORY_UPTO:
                # Few promises hold the tag: read them all from the index and sort by id.
                rows = self.conn.execute(
                    self.statements["search_promises_by_id_tagged"],
                    (state, query.after_id, wanted, query.limit + 1, key, value),
                )
                return [promise_from_row(row)[1] for row in rows]
            # Many do: walking the ids in order meets matches soon enough.
        rows = self.conn.execute(
            self.statements["search_promises_by_id"],
            (state, query.after_id, wanted, query.limit + 1),
        )
        return [promise_from_row(row)[1] for row in rows]

    def backfill_tag_index(self, size: int) -> int:
        """Index the tags of up to ``size`` sort ids below the backfill's position (migration
        007); how many sort ids are left to visit below the new position, 0 when it ended."""
        run = self.conn.execute
        row = run(self.statements["tags_backfill_pending"]).fetchone()
        if row is None:
            return 0
        below = int(row[0])
        first = run("SELECT min(sort_id) FROM promises").fetchone()[0]
        low = below - size if first is None else max(below - size, int(first))
        run(self.statements["backfill_promise_tags"], (low, below))
        if first is None or low <= int(first):
            run(self.statements["end_tags_backfill"])
            return 0
        run(self.statements["move_tags_backfill"], (low,))
        return low - int(first)

    async def overdue_promises(
        self, now: int, limit: int, query: PromiseQuery | None = None
    ) -> list[Promise]:
        where, params = self._filters(query) if query else ([], [])
        where[:0] = ["state = 1", "timeout <= ?"]
        params.insert(0, now)
        sql = (
            self.statements["select_promises"]
            + " WHERE "
            + " AND ".join(where)
            + " ORDER BY timeout LIMIT ?"
        )
        params.append(limit)
        return [promise_from_row(row)[1] for row in self.conn.execute(sql, params)]

    async def earliest_pending_timeout(self) -> int | None:
        row = self.conn.execute(self.statements["earliest_pending_timeout"]).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    async def task_is_claimed(self, task_id: str, counter: int) -> bool:
        row = self.conn.execute(self.statements["task_is_claimed"], (task_id, counter)).fetchone()
        return row is not None

    async def get_callback(self, callback_id: str) -> Callback | None:
        row = self.conn.execute(self.statements["get_callback"], (callback_id,)).fetchone()
        return callback_from_row(row) if row is not None else None

    async def insert_callback(self, callback: Callback) -> bool:
        cursor = self.conn.execute(self.statements["insert_callback"], callback_values(callback))
        return cursor.rowcount == 1

    async def list_callbacks(self, query: CallbackQuery) -> list[tuple[int, Callback]]:
        rows = self.conn.execute(
            self.statements["list_callbacks"],
            (query.promise_id, query.after_sort_id, query.limit),
        )
        return [listed_callback_from_row(row) for row in rows]

    # ---- tasks --------------------------------------------------------------------------------

    async def get_task(self, task_id: str) -> Task | None:
        row = self.conn.execute(
            self.statements["select_tasks"] + " WHERE id = ?", (task_id,)
        ).fetchone()
        return task_from_row(row)[1] if row else None

    async def insert_task(self, task: Task) -> bool:
        cursor = self.conn.execute(self.statements["insert_task"], task_values(task))
        return cursor.rowcount == 1

    async def swap_task(self, old: Task, new: Task) -> bool:
        cursor = self.conn.execute(self.statements["swap_task"], swap_task_values(old, new))
        return cursor.rowcount == 1

    async def heartbeat_tasks(self, process_id: str, now: int) -> int:
        return self.conn.execute(self.statements["heartbeat_tasks"], (now, process_id)).rowcount

    async def search_tasks(self, query: TaskQuery) -> list[tuple[int, Task]]:
        where: list[str] = []
        params: list[Any] = []
        _pattern_filter("id", query.id, where, params)
        if query.state is not None:
            where.append("state = ?")
            params.append(int(TaskState[query.state.upper()]))
        if query.process_id is not None:
            where.append("process_id = ?")
            params.append(query.process_id)
        if query.root_promise_id is not None:
            where.append("root_promise_id = ?")
            params.append(query.root_promise_id)
        rows = self._newest_first(
            self.statements["select_tasks"], where, params, query.before_sort_id, query.limit
        )
        return [task_from_row(row) for row in rows]

    async def sendable_tasks(self, now: int, limit: int) -> list[Task]:
        rows = self.conn.execute(self.statements["sendable_tasks"], (now, limit))
        return [task_from_row(row)[1] for row in rows]

    async def expired_tasks(self, now: int, limit: int) -> list[Task]:
        rows = self.conn.execute(self.statements["expired_tasks"], (now, now, limit))
        return [task_from_row(row)[1] for row in rows]

    # ---- locks --------------------------------------------------------------------------------

    async def get_lock(self, resource_id: str) -> Lock | None:
        row = self.conn.execute(
            self.statements["select_locks"] + " WHERE resource_id = ?", (resource_id,)
        ).fetchone()
        return Lock(*row) if row else None

    async def acquire_lock(self, lock: Lock, now: int) -> bool:
        cursor = self.conn.execute(
            self.statements["acquire_lock"],
            (lock.resource_id, lock.execution_id, lock.process_id, lock.ttl, lock.expires_at, now),
        )
        return cursor.rowcount == 1

    async def release_lock(self, resource_id: str, execution_id: str) -> bool:
        cursor = self.conn.execute(self.statements["release_lock"], (resource_id, execution_id))
        return cursor.rowcount == 1

    async def heartbeat_locks(self, process_id: str, now: int) -> int:
        return self.conn.execute(self.statements["heartbeat_locks"], (now, process_id)).rowcount

    async def search_locks(self, query: LockQuery) -> list[Lock]:
        where: list[str] = []
        params: list[Any] = []
        _pattern_filter("resource_id", query.resource_id, where, params)
        if query.process_id is not None:
            where.append("process_id = ?")
            params.append(query.process_id)
        if query.execution_id is not None:
            where.append("execution_id = ?")
            params.append(query.execution_id)
        if query.after_resource_id is not None:
            where.append("resource_id > ?")
            params.append(query.after_resource_id)
        sql = self.statements["select_locks"]
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY resource_id LIMIT ?"
        params.append(query.limit)
        return [Lock(*row) for row in self.conn.execute(sql, params)]

    async def delete_expired_locks(self, now: int, limit: int) -> int:
        return self.conn.execute(self.statements["delete_expired_locks"], (now, limit)).rowcount

    async def count_locks(self) -> int:
        return int(self.conn.execute(self.statements["count_locks"]).fetchone()[0])

    # ---- retention ----------------------------------------------------------------------------

    def _purgeable(self, query: PurgeQuery) -> tuple[str, list[Any]]:
        """``FROM promises AS p WHERE ...``: the promises ``query`` selects that the keep rules
        let go, shared by the purge and its dry run so that both count the same rows.

        A batch walks idx_promises_completed_on (migration 008) in completion order and stops
        at its limit, however large the backlog, unless a filter names few promises: an exact
        id, an id prefix or a tag held by at most SORT_IN_MEMORY_UPTO of them (counted that
        far, on their indexes), which are then read and sorted instead. The choice is made
        here, not left to the planner: without statistics it would start from any id prefix
        or tag, and sort a tenant's millions of promises on every batch."""
        groups = query.by_cutoff()
        where = ["p.state <> 1", "p.completed_on <= ?"]
        params: list[Any] = [groups[-1][0]]
        if not query.all_states:
            alternatives = []
            for cutoff, states in groups:
                alternatives.append(
                    f"(p.state IN ({', '.join(str(int(s)) for s in states)})"
                    " AND p.completed_on <= ?)"
                )
                params.append(cutoff)
            where.append("(" + " OR ".join(alternatives) + ")")
        few = "*" not in query.id or self._few_ids(query.id.partition("*")[0])
        _pattern_filter("p.id", query.id, where, params)
        tags = list(query.tags.items())
        if tags and self.tags_indexed():
            key, value = tags.pop(0)
            if not few and self._few_holders(key, value):
                few = True
                where.append(
                    "p.sort_id IN (SELECT sort_id FROM promise_tags WHERE key = ? AND value = ?)"
                )
            else:
                # A probe of the tag index per promise met (a correlated test, which cannot
                # lead the plan).
                where.append(
                    "EXISTS (SELECT 1 FROM promise_tags AS t"
                    " WHERE t.key = ? AND t.value = ? AND t.sort_id = p.sort_id)"
                )
            params.extend((key, value))
        for key, value in tags:
            where.append(_tag_filter("p", "tags"))
            params.extend((key, value))
        where.append(self.statements["purge_keep"])
        lead = "" if few else " INDEXED BY idx_promises_completed_on"
        return f"FROM promises AS p{lead} WHERE " + "\n  AND ".join(where) + "\n", params

    def _few_ids(self, prefix: str) -> bool:
        """At most SORT_IN_MEMORY_UPTO promise ids start with ``prefix`` (a range of the id
        index, counted no further)."""
        if not prefix:
            return False
        row = self.conn.execute(
            "SELECT count(*) FROM (SELECT 1 FROM promises WHERE id GLOB ? LIMIT ?)",
            (glob_pattern(prefix) + "*", SORT_IN_MEMORY_UPTO + 1),
        ).fetchone()
        return int(row[0]) <= SORT_IN_MEMORY_UPTO

    def _few_holders(self, key: str, value: str) -> bool:
        row = self.conn.execute(
            self.statements["count_tag_rows_upto"], (key, value, SORT_IN_MEMORY_UPTO + 1)
        ).fetchone()
        return int(row[0]) <= SORT_IN_MEMORY_UPTO

    async def purge_promises(self, query: PurgeQuery, limit: int) -> Purged:
        if not query.cutoffs:
            return Purged()
        # The single writer thread runs this transaction alone: the candidates cannot change
        # between the select and the deletes.
        source, params = self._purgeable(query)
        rows = self.conn.execute(
            f"SELECT p.sort_id, p.id {source} ORDER BY p.completed_on, p.sort_id LIMIT ?",
            [*params, limit],
        ).fetchall()
        if not rows:
            return Purged()
        ids = json.dumps([promise_id for _, promise_id in rows])
        tasks = self.conn.execute(self.statements["purge_tasks"], (ids,)).rowcount
        tasks += self.conn.execute(self.statements["purge_tasks_2026"], (ids,)).rowcount
        self.conn.execute(self.statements["purge_callbacks_2026"], (ids,))
        sort_ids = json.dumps([sort_id for sort_id, _ in rows])
        promises = self.conn.execute(self.statements["purge_promises"], (sort_ids,)).rowcount
        return Purged(promises=promises, tasks=tasks)

    async def count_purgeable(self, query: PurgeQuery, sample: int) -> tuple[int, list[str]]:
        if not query.cutoffs:
            return 0, []
        source, params = self._purgeable(query)
        count = int(self.conn.execute(f"SELECT count(*) {source}", params).fetchone()[0])
        ids: list[str] = []
        if count and sample > 0:
            rows = self.conn.execute(
                f"SELECT p.id {source} ORDER BY p.completed_on, p.sort_id LIMIT ?",
                [*params, sample],
            )
            ids = [str(row[0]) for row in rows]
        return count, ids

    async def purge_tasks(self, before: int, limit: int) -> int:
        cursor = self.conn.execute(self.statements["purge_completed_tasks"], (before, limit))
        return int(cursor.rowcount)

    async def oldest_completed(self) -> tuple[int | None, int | None]:
        run = self.conn.execute
        promise = run(self.statements["oldest_completed_promise"]).fetchone()[0]
        task = run(self.statements["oldest_completed_task"]).fetchone()[0]
        return (
            None if promise is None else int(promise),
            None if task is None else int(task),
        )

    # ---- schedules ----------------------------------------------------------------------------

    async def get_schedule(self, schedule_id: str) -> Schedule | None:
        row = self.conn.execute(
            self.statements["select_schedules"] + " WHERE id = ?", (schedule_id,)
        ).fetchone()
        return schedule_from_row(row)[1] if row else None

    async def insert_schedule(self, schedule: Schedule) -> bool:
        cursor = self.conn.execute(self.statements["insert_schedule"], schedule_values(schedule))
        return cursor.rowcount == 1

    async def delete_schedule(self, schedule_id: str) -> bool:
        return self.conn.execute(self.statements["delete_schedule"], (schedule_id,)).rowcount == 1

    async def search_schedules(self, query: ScheduleQuery) -> list[tuple[int, Schedule]]:
        where: list[str] = []
        params: list[Any] = []
        _pattern_filter("id", query.id, where, params)
        for key, value in query.tags.items():
            where.append(_tag_filter("schedules", "tags"))
            params.extend((key, value))
        rows = self._newest_first(
            self.statements["select_schedules"], where, params, query.before_sort_id, query.limit
        )
        return [schedule_from_row(row) for row in rows]

    async def search_schedules_by_id(
        self, promise_tags: dict[str, str], after_id: str | None, limit: int
    ) -> list[Schedule]:
        where: list[str] = []
        params: list[Any] = []
        if after_id is not None:
            where.append("id > ?")
            params.append(after_id)
        for key, value in promise_tags.items():
            where.append(_tag_filter("schedules", "promise_tags"))
            params.extend((key, value))
        sql = self.statements["select_schedules"]
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = self.conn.execute(sql + " ORDER BY id LIMIT ?", [*params, limit])
        return [schedule_from_row(row)[1] for row in rows]

    async def due_schedules(self, now: int, limit: int) -> list[Schedule]:
        sql = (
            self.statements["select_schedules"]
            + " WHERE next_run_time <= ? ORDER BY next_run_time, sort_id LIMIT ?"
        )
        return [schedule_from_row(row)[1] for row in self.conn.execute(sql, (now, limit))]

    async def advance_schedule(
        self, schedule_id: str, expected_next: int, last_run_time: int, next_run_time: int
    ) -> bool:
        cursor = self.conn.execute(
            self.statements["advance_schedule"],
            (last_run_time, next_run_time, schedule_id, expected_next),
        )
        return cursor.rowcount == 1

    # ---- debug mode ----------------------------------------------------------------------------

    async def debug_rows(self, table: str) -> list[tuple[object, ...]]:
        if table not in DEBUG_TABLES:
            raise ValueError(f"not a table: {table}")
        return [tuple(row) for row in self.conn.execute(f"SELECT * FROM {table}")]

    async def debug_wipe(self) -> None:
        for table in DEBUG_TABLES:
            self.conn.execute(f"DELETE FROM {table}")

    # ---- operator dashboard reads ---------------------------------------------------------------

    async def count_records(self, now: int) -> Counts:
        return counts_from_rows(
            self.conn.execute(self.statements["count_records"], (now,)).fetchall()
        )

    async def stuck_promises(self, now: int, limit: int) -> list[Promise]:
        rows = self.conn.execute(self.statements["stuck_promises"], (now, limit))
        return [promise_from_row(row)[1] for row in rows]

    async def tasks_with_lease_ending(self, until: int, limit: int) -> list[Task]:
        rows = self.conn.execute(self.statements["tasks_with_lease_ending"], (until, limit))
        return [task_from_row(row)[1] for row in rows]

    async def reissued_tasks(self, min_counter: int, limit: int) -> list[Task]:
        rows = self.conn.execute(self.statements["reissued_tasks"], (min_counter, limit))
        return [task_from_row(row)[1] for row in rows]

    async def waiting_tasks(self, limit: int) -> list[Task]:
        rows = self.conn.execute(self.statements["waiting_tasks"], (limit,))
        return [task_from_row(row)[1] for row in rows]

    async def overdue_schedules(self, now: int, limit: int) -> list[Schedule]:
        rows = self.conn.execute(self.statements["overdue_schedules"], (now, limit))
        return [schedule_from_row(row)[1] for row in rows]

    async def stale_locks(self, now: int, limit: int) -> list[Lock]:
        return [
            Lock(*row) for row in self.conn.execute(self.statements["stale_locks"], (now, limit))
        ]
