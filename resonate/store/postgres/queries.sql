-- Named statements for the PostgreSQL store. Parameters are numbered (`$1`).
--
-- Every state change is a guarded statement (READ COMMITTED: a concurrent writer of the same
-- row waits, then the guard is evaluated again on the committed row), so two requests or two
-- servers cannot both win. Background loops select due rows FOR UPDATE SKIP LOCKED, so two
-- servers do not work on the same row at once (http-api.md §14.1).

-- name: select_promises
SELECT sort_id, id, state, param_headers, param_data, value_headers, value_data, timeout,
       idempotency_key_for_create, idempotency_key_for_complete, tags, created_on, completed_on
FROM promises

-- name: select_promises_of_tag
-- Promises holding one tag (migration 007): `t` is the promise_tags range of the tag, `p` the
-- promise of each row; the search adds its conditions and the order it pages in (t.sort_id or
-- t.id, each an index range of the tag).
SELECT p.sort_id, p.id, p.state, p.param_headers, p.param_data, p.value_headers, p.value_data,
       p.timeout, p.idempotency_key_for_create, p.idempotency_key_for_complete, p.tags,
       p.created_on, p.completed_on
FROM promise_tags AS t JOIN promises AS p ON p.sort_id = t.sort_id

-- name: select_promises_in_state
-- A search by tag and state when few promises are in the state: the search adds the sort ids
-- of those promises as an array (`p.sort_id = ANY (ARRAY (…))`) and the other conditions.
SELECT p.sort_id, p.id, p.state, p.param_headers, p.param_data, p.value_headers, p.value_data,
       p.timeout, p.idempotency_key_for_create, p.idempotency_key_for_complete, p.tags,
       p.created_on, p.completed_on
FROM promises AS p

-- name: insert_promise
INSERT INTO promises (id, state, param_headers, param_data, value_headers, value_data, timeout,
                      idempotency_key_for_create, idempotency_key_for_complete, tags,
                      created_on, completed_on)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
ON CONFLICT (id) DO NOTHING

-- name: insert_promise_and_invoke_task
-- A new promise and its invoke task in one statement (both or neither). The task is inserted
-- only when the promise was, and without ON CONFLICT: its id derives from the new promise's,
-- and should it exist the whole statement fails rather than store the promise alone.
WITH promise AS (
    INSERT INTO promises (id, state, param_headers, param_data, value_headers, value_data,
                          timeout, idempotency_key_for_create, idempotency_key_for_complete,
                          tags, created_on, completed_on)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
    ON CONFLICT (id) DO NOTHING
    RETURNING 1
), task AS (
    INSERT INTO tasks (id, process_id, state, root_promise_id, recv, mesg, timeout, counter,
                       attempt, ttl, expires_at, created_on, completed_on)
    SELECT $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25 FROM promise
)
SELECT count(*) FROM promise

-- name: complete_promise
-- The function of migration 003: the guarded update, the root tasks, the callbacks.
SELECT * FROM resonate_complete_promise($1, $2, $3, $4, $5, $6, $7, $8)

-- name: earliest_pending_timeout
SELECT min(timeout) FROM promises WHERE state = 1

-- name: task_is_claimed
SELECT 1 FROM tasks WHERE id = $1 AND counter = $2 AND state = 4

-- name: create_migrations_table
CREATE TABLE IF NOT EXISTS migrations (
    id         INTEGER PRIMARY KEY,
    name       TEXT,
    applied_on BIGINT
)

-- name: migrations_table_exists
SELECT to_regclass('migrations') IS NOT NULL

-- name: schema_version
SELECT coalesce(max(id), 0) FROM migrations

-- name: record_migration
INSERT INTO migrations (id, name, applied_on) VALUES ($1, $2, $3)

-- name: migration_lock
-- Held until the migrating transaction ends: two servers starting at once never both migrate.
SELECT pg_advisory_xact_lock($1)

-- name: get_callback
SELECT id, promise_id, root_promise_id, recv, mesg, timeout, created_on
FROM callbacks WHERE id = $1

-- name: insert_callback
-- Registers only on a promise still PENDING, holding a share lock on it until commit: a
-- completion running at the same time either waits for this registration (and then fires it)
-- or has already completed the promise (and then nothing is inserted; `pending` is 0).
WITH pending AS (
    SELECT 1 FROM promises WHERE id = $2 AND state = 1 FOR SHARE
), inserted AS (
    INSERT INTO callbacks (id, promise_id, root_promise_id, recv, mesg, timeout, created_on)
    SELECT $1, $2, $3, $4, $5, $6, $7 FROM pending
    ON CONFLICT (id) DO NOTHING
    RETURNING 1
)
SELECT (SELECT count(*) FROM pending) AS pending, (SELECT count(*) FROM inserted) AS inserted

-- name: list_callbacks
-- A page of GET /callbacks, oldest first: one range of idx_callbacks_promise_id_sort_id
-- (migration 005), in order.
SELECT sort_id, id, promise_id, root_promise_id, recv, mesg, timeout, created_on
FROM callbacks
WHERE promise_id = $1 AND sort_id > $2
ORDER BY sort_id
LIMIT $3

-- name: select_tasks
SELECT sort_id, id, process_id, state, root_promise_id, recv, mesg, timeout, counter, attempt,
       ttl, expires_at, created_on, completed_on
FROM tasks

-- name: insert_task
INSERT INTO tasks (id, process_id, state, root_promise_id, recv, mesg, timeout, counter,
                   attempt, ttl, expires_at, created_on, completed_on)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
ON CONFLICT (id) DO NOTHING

-- name: swap_task
UPDATE tasks
SET process_id = $1, state = $2, counter = $3, attempt = $4, ttl = $5, expires_at = $6,
    completed_on = $7
WHERE id = $8 AND state = $9 AND counter = $10

-- name: heartbeat_tasks
UPDATE tasks SET expires_at = least($1::numeric + ttl, 9223372036854775807)::bigint
WHERE process_id = $2 AND state = 4

-- name: sendable_tasks
-- `t.state = 1 AND t.expires_at <= $1` repeats the subquery's condition on purpose: a row that
-- another server sent meanwhile is locked in its new version, and only conditions on `t` itself
-- are checked again on that version.
SELECT t.sort_id, t.id, t.process_id, t.state, t.root_promise_id, t.recv, t.mesg, t.timeout,
       t.counter, t.attempt, t.ttl, t.expires_at, t.created_on, t.completed_on
FROM tasks AS t
WHERE t.sort_id IN (SELECT min(sort_id) FROM tasks
                    WHERE state = 1 AND expires_at <= $1 GROUP BY root_promise_id)
  AND t.state = 1 AND t.expires_at <= $1
  AND NOT EXISTS (SELECT 1 FROM tasks AS busy
                  WHERE busy.root_promise_id = t.root_promise_id AND busy.state IN (2, 4))
ORDER BY t.sort_id
LIMIT $2
FOR UPDATE OF t SKIP LOCKED

-- name: expired_tasks
SELECT sort_id, id, process_id, state, root_promise_id, recv, mesg, timeout, counter, attempt,
       ttl, expires_at, created_on, completed_on
FROM tasks
WHERE state IN (2, 4) AND ((expires_at <> 0 AND expires_at <= $1) OR timeout <= $1)
ORDER BY sort_id
LIMIT $2
FOR UPDATE SKIP LOCKED

-- name: select_locks
SELECT resource_id, execution_id, process_id, ttl, expires_at FROM locks

-- name: acquire_lock
-- Writes only when the resource is free, already held by this execution, or expired (D5).
INSERT INTO locks (resource_id, execution_id, process_id, ttl, expires_at)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (resource_id) DO UPDATE
SET execution_id = excluded.execution_id, process_id = excluded.process_id,
    ttl = excluded.ttl, expires_at = excluded.expires_at
WHERE locks.execution_id = excluded.execution_id OR locks.expires_at <= $6

-- name: release_lock
DELETE FROM locks WHERE resource_id = $1 AND execution_id = $2

-- name: heartbeat_locks
UPDATE locks SET expires_at = least($1::numeric + ttl, 9223372036854775807)::bigint
WHERE process_id = $2

-- name: delete_expired_locks
-- The outer condition is checked again on a row a concurrent acquire renewed meanwhile.
DELETE FROM locks
WHERE resource_id IN (SELECT resource_id FROM locks WHERE expires_at <= $1
                      ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED)
  AND expires_at <= $1

-- name: count_locks
SELECT count(*) FROM locks

-- name: select_schedules
SELECT sort_id, id, description, cron, timezone, tags, promise_id, promise_timeout,
       promise_param_headers, promise_param_data, promise_tags, last_run_time, next_run_time,
       idempotency_key, created_on
FROM schedules

-- name: due_schedules
SELECT sort_id, id, description, cron, timezone, tags, promise_id, promise_timeout,
       promise_param_headers, promise_param_data, promise_tags, last_run_time, next_run_time,
       idempotency_key, created_on
FROM schedules
WHERE next_run_time <= $1
ORDER BY next_run_time, sort_id
LIMIT $2
FOR UPDATE SKIP LOCKED

-- name: insert_schedule
INSERT INTO schedules (id, description, cron, timezone, tags, promise_id, promise_timeout,
                       promise_param_headers, promise_param_data, promise_tags, last_run_time,
                       next_run_time, idempotency_key, created_on)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
ON CONFLICT (id) DO NOTHING

-- name: delete_schedule
DELETE FROM schedules WHERE id = $1

-- name: advance_schedule
UPDATE schedules SET last_run_time = $1, next_run_time = $2
WHERE id = $3 AND next_run_time = $4

-- ---- operator dashboard reads (GET /stats, GET /stuck); migration 004 has their indexes ----

-- name: count_records
-- Rows of (table, state, count); 0 as the state of schedules and held locks. PENDING promises
-- come from idx_promises_pending_timeout, completed ones from idx_promises_completed_state,
-- tasks from idx_tasks_state_expires_at, held locks from idx_locks_expires_at (index-only
-- scans where the visibility map allows: autovacuum keeps it current).
SELECT 'promises', 1, count(*) FROM promises WHERE state = 1
UNION ALL
SELECT 'promises', state, count(*) FROM promises WHERE state <> 1 GROUP BY state
UNION ALL
SELECT 'tasks', state, count(*) FROM tasks GROUP BY state
UNION ALL
SELECT 'schedules', 0, count(*) FROM schedules
UNION ALL
SELECT 'locks', 0, count(*) FROM locks WHERE expires_at > $1

-- name: stuck_promises
SELECT sort_id, id, state, param_headers, param_data, value_headers, value_data, timeout,
       idempotency_key_for_create, idempotency_key_for_complete, tags, created_on, completed_on
FROM promises
WHERE state = 1 AND timeout <= $1
ORDER BY timeout, id
LIMIT $2

-- name: tasks_with_lease_ending
SELECT sort_id, id, process_id, state, root_promise_id, recv, mesg, timeout, counter, attempt,
       ttl, expires_at, created_on, completed_on
FROM tasks
WHERE state = 4 AND expires_at <= $1
ORDER BY expires_at, id
LIMIT $2

-- name: reissued_tasks
SELECT sort_id, id, process_id, state, root_promise_id, recv, mesg, timeout, counter, attempt,
       ttl, expires_at, created_on, completed_on
FROM tasks
WHERE state IN (1, 2, 4) AND counter >= $1
ORDER BY counter DESC, id
LIMIT $2

-- name: waiting_tasks
-- GET /doctor: the INIT tasks soonest due, by the (state, expires_at) index.
SELECT sort_id, id, process_id, state, root_promise_id, recv, mesg, timeout, counter, attempt,
       ttl, expires_at, created_on, completed_on
FROM tasks
WHERE state = 1
ORDER BY expires_at, sort_id
LIMIT $1

-- name: overdue_schedules
SELECT sort_id, id, description, cron, timezone, tags, promise_id, promise_timeout,
       promise_param_headers, promise_param_data, promise_tags, last_run_time, next_run_time,
       idempotency_key, created_on
FROM schedules
WHERE next_run_time < $1
ORDER BY next_run_time, id
LIMIT $2

-- name: stale_locks
-- Past the lease's midpoint (strictly, or at it for a ttl of 0, which is then its expiry).
SELECT resource_id, execution_id, process_id, ttl, expires_at
FROM locks
WHERE (expires_at - (ttl - ttl / 2)) <= $1
  AND ((expires_at - (ttl - ttl / 2)) < $1 OR ttl = 0)
ORDER BY (expires_at - (ttl - ttl / 2)), resource_id
LIMIT $2

-- ---- the 2026-04-01 protocol (migration 006) ----

-- name: select_tasks_2026
SELECT id, state, version, target, pid, ttl, lease_at, retry_at, resumes, created_at, updated_at
FROM tasks_2026

-- name: insert_task_2026
INSERT INTO tasks_2026 (id, state, version, target, pid, ttl, lease_at, retry_at, resumes,
                        created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
ON CONFLICT (id) DO NOTHING

-- name: swap_task_2026
UPDATE tasks_2026
SET state = $1, version = $2, target = $3, pid = $4, ttl = $5, lease_at = $6, retry_at = $7,
    resumes = $8, created_at = $9, updated_at = $10
WHERE id = $11 AND state = $12 AND version = $13

-- name: heartbeat_task_2026
UPDATE tasks_2026 SET lease_at = $1 + ttl, updated_at = $1
WHERE id = $2 AND version = $3 AND state = 'acquired' AND pid = $4

-- name: insert_callback_2026
-- As insert_callback: only on a promise still PENDING, holding a share lock on it until commit,
-- so that a concurrent settlement either waits and fires it or came first (`pending` is 0).
WITH pending AS (
    SELECT 1 FROM promises WHERE id = $1 AND state = 1 FOR SHARE
), inserted AS (
    INSERT INTO callbacks_2026 (awaited, awaiter, created_at)
    SELECT $1, $2, $3 FROM pending
    ON CONFLICT (awaited, awaiter) DO NOTHING
    RETURNING 1
)
SELECT (SELECT count(*) FROM pending) AS pending, (SELECT count(*) FROM inserted) AS inserted

-- name: delete_callbacks_2026_of_awaiter
DELETE FROM callbacks_2026 WHERE awaiter = $1

-- name: insert_listener_2026
WITH pending AS (
    SELECT 1 FROM promises WHERE id = $1 AND state = 1 FOR SHARE
), inserted AS (
    INSERT INTO listeners_2026 (promise_id, address, created_at)
    SELECT $1, $2, $3 FROM pending
    ON CONFLICT (promise_id, address) DO NOTHING
    RETURNING 1
)
SELECT (SELECT count(*) FROM pending) AS pending, (SELECT count(*) FROM inserted) AS inserted

-- name: branch_promises
-- One range of idx_promise_tags_id (migration 007), in id order.
SELECT p.sort_id, p.id, p.state, p.param_headers, p.param_data, p.value_headers, p.value_data,
       p.timeout, p.idempotency_key_for_create, p.idempotency_key_for_complete, p.tags,
       p.created_on, p.completed_on
FROM promise_tags AS t JOIN promises AS p ON p.sort_id = t.sort_id
WHERE t.key = 'resonate:branch' AND t.value = $1 AND t.id <> $2
ORDER BY t.id

-- name: due_tasks_2026
UPDATE tasks_2026 SET retry_at = $1, updated_at = $2
WHERE id IN (SELECT id FROM tasks_2026
             WHERE retry_at <= $2 AND state = 'pending'
             ORDER BY retry_at LIMIT $3 FOR UPDATE SKIP LOCKED)
RETURNING id, state, version, target, pid, ttl, lease_at, retry_at, resumes, created_at,
          updated_at

-- name: leases_ending_2026
-- GET /doctor: acquired tasks whose lease ends by $1 (idx_tasks_2026_lease_at), soonest first.
SELECT id, state, version, target, pid, ttl, lease_at, retry_at, resumes, created_at, updated_at
FROM tasks_2026 WHERE lease_at <= $1 AND state = 'acquired' ORDER BY lease_at LIMIT $2

-- name: expire_leases_2026
UPDATE tasks_2026
SET state = 'pending', pid = NULL, ttl = NULL, lease_at = NULL, retry_at = $1, updated_at = $1
WHERE id IN (SELECT id FROM tasks_2026
             WHERE lease_at <= $1 AND state = 'acquired'
             ORDER BY lease_at LIMIT $2 FOR UPDATE SKIP LOCKED)

-- name: take_unblocks_2026
WITH taken AS (
    DELETE FROM outbox_2026
    WHERE seq IN (SELECT seq FROM outbox_2026 ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED)
    RETURNING seq, promise_id, address
)
SELECT t.address, p.sort_id, p.id, p.state, p.param_headers, p.param_data, p.value_headers,
       p.value_data, p.timeout, p.idempotency_key_for_create, p.idempotency_key_for_complete,
       p.tags, p.created_on, p.completed_on
FROM taken AS t JOIN promises AS p ON p.id = t.promise_id
ORDER BY t.seq

-- name: count_tasks_2026
SELECT state, count(*) FROM tasks_2026 GROUP BY state

-- name: purge_keep
-- Retention and purge (docs/operations.md): the keep rules, a condition on the completed
-- promise `p`. Nothing may still refer to it: no active task rooted at it, no callback or
-- subscription, no 2026 awaiter or listener, no 2026 task that is not fulfilled, no unblock
-- message waiting in the outbox. The store adds the conditions of the query before these.
NOT EXISTS (SELECT 1 FROM tasks AS t
            WHERE t.root_promise_id = p.id AND t.state IN (1, 2, 4))
  AND NOT EXISTS (SELECT 1 FROM callbacks AS c WHERE c.promise_id = p.id)
  AND NOT EXISTS (SELECT 1 FROM callbacks_2026 AS c WHERE c.awaited = p.id)
  AND NOT EXISTS (SELECT 1 FROM listeners_2026 AS l WHERE l.promise_id = p.id)
  AND NOT EXISTS (SELECT 1 FROM tasks_2026 AS t WHERE t.id = p.id AND t.state <> 'fulfilled')
  -- (outbox_2026 has no index on promise_id: one list per statement, not a scan per row)
  AND p.id NOT IN (SELECT o.promise_id FROM outbox_2026 AS o)
  -- a callback whose task will resume this promise's function
  AND NOT EXISTS (SELECT 1 FROM callbacks AS c WHERE c.root_promise_id = p.id)
  -- a step of a call tree still running: its root, origin or parent is pending (a replay
  -- of the running function reads its completed steps)
  AND NOT EXISTS (
      SELECT 1 FROM promises AS r
      WHERE r.state = 1 AND r.id IN (p.tags ->> 'resonate:root', p.tags ->> 'resonate:origin',
                                     p.tags ->> 'resonate:parent'))

-- name: purge_promises
-- After the doomed promises (a CTE the store builds from the query, rows locked by a
-- concurrent transaction skipped for the next batch): their tasks, their fulfilled 2026 task
-- and the 2026 callbacks they registered as awaiter go with them.
gone_tasks AS (
    DELETE FROM tasks WHERE root_promise_id IN (SELECT id FROM doomed) RETURNING 1
), gone_tasks_2026 AS (
    DELETE FROM tasks_2026 WHERE id IN (SELECT id FROM doomed) RETURNING 1
), gone_callbacks_2026 AS (
    DELETE FROM callbacks_2026 WHERE awaiter IN (SELECT id FROM doomed) RETURNING 1
), gone AS (
    DELETE FROM promises WHERE sort_id IN (SELECT sort_id FROM doomed) RETURNING 1
)
SELECT (SELECT count(*) FROM gone), (SELECT count(*) FROM gone_tasks),
       (SELECT count(*) FROM gone_callbacks_2026), (SELECT count(*) FROM gone_tasks_2026)

-- name: purge_completed_tasks
-- Retention of REST tasks: the oldest COMPLETED and TIMEDOUT ones past the cutoff, one range
-- of idx_tasks_completed_on (migration 009); rows a concurrent transaction holds wait for the
-- next batch.
WITH doomed AS (
    SELECT sort_id FROM tasks WHERE state IN (8, 16) AND completed_on <= $1
    ORDER BY completed_on LIMIT $2
    FOR UPDATE SKIP LOCKED
)
DELETE FROM tasks WHERE sort_id IN (SELECT sort_id FROM doomed)

-- name: oldest_completed_promise
SELECT min(completed_on) FROM promises WHERE state <> 1

-- name: oldest_completed_task
SELECT min(completed_on) FROM tasks WHERE state IN (8, 16)
