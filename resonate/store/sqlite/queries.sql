-- Named statements for the SQLite store. Parameters are positional (`?`).

-- name: select_promises
SELECT sort_id, id, state, param_headers, param_data, value_headers, value_data, timeout,
       idempotency_key_for_create, idempotency_key_for_complete, tags, created_on, completed_on
FROM promises

-- name: select_promises_by_tag
-- A search driven by the tag index (migration 007): the rows of one (key, value), joined to
-- their promises; the caller adds `t.key = ? AND t.value = ?`, the other filters and the order.
SELECT p.sort_id, p.id, p.state, p.param_headers, p.param_data, p.value_headers, p.value_data,
       p.timeout, p.idempotency_key_for_create, p.idempotency_key_for_complete, p.tags,
       p.created_on, p.completed_on
FROM promise_tags AS t CROSS JOIN promises AS p ON p.sort_id = t.sort_id

-- name: tags_backfill_pending
SELECT below FROM promise_tags_backfill LIMIT 1

-- name: count_tag_rows_upto
-- How many promises hold one tag, counting no further than the limit.
SELECT count(*) FROM (SELECT 1 FROM promise_tags WHERE key = ? AND value = ? LIMIT ?)

-- name: backfill_promise_tags
INSERT OR IGNORE INTO promise_tags (key, value, sort_id)
SELECT tag.key, tag.value, p.sort_id
FROM promises AS p, json_each(p.tags) AS tag
WHERE p.sort_id >= ? AND p.sort_id < ? AND p.tags IS NOT NULL AND tag.type = 'text'

-- name: move_tags_backfill
UPDATE promise_tags_backfill SET below = ?

-- name: end_tags_backfill
DELETE FROM promise_tags_backfill

-- name: search_promises_by_id
-- The 2026 protocol's search (protocol-2026.md §3.1): the exact state (NULL: any), every
-- wanted tag present with that text value, the ids after the cursor (NULL: from the first),
-- in id order (BINARY: the bytes of the UTF-8 id, as PostgreSQL's COLLATE "C").
SELECT sort_id, id, state, param_headers, param_data, value_headers, value_data, timeout,
       idempotency_key_for_create, idempotency_key_for_complete, tags, created_on, completed_on
FROM promises
WHERE (?1 IS NULL OR state = ?1)
  AND (?2 IS NULL OR id > ?2)
  AND NOT EXISTS (
      SELECT 1 FROM json_each(?3) AS wanted
      WHERE NOT EXISTS (
          SELECT 1 FROM json_each(promises.tags) AS tag
          WHERE tag.key = wanted.key AND tag.type = 'text' AND tag.value = wanted.value))
ORDER BY id
LIMIT ?4

-- name: search_promises_by_id_tagged
-- The same search taking its rows from the tag index of one wanted tag (?5, ?6), for a tag few
-- promises hold: they are all read from the index and sorted by id.
SELECT p.sort_id, p.id, p.state, p.param_headers, p.param_data, p.value_headers, p.value_data,
       p.timeout, p.idempotency_key_for_create, p.idempotency_key_for_complete, p.tags,
       p.created_on, p.completed_on
FROM promise_tags AS t CROSS JOIN promises AS p ON p.sort_id = t.sort_id
WHERE t.key = ?5 AND t.value = ?6
  AND (?1 IS NULL OR p.state = ?1)
  AND (?2 IS NULL OR p.id > ?2)
  AND NOT EXISTS (
      SELECT 1 FROM json_each(?3) AS wanted
      WHERE NOT EXISTS (
          SELECT 1 FROM json_each(p.tags) AS tag
          WHERE tag.key = wanted.key AND tag.type = 'text' AND tag.value = wanted.value))
ORDER BY p.id
LIMIT ?4

-- name: insert_promise
INSERT INTO promises (id, state, param_headers, param_data, value_headers, value_data, timeout,
                      idempotency_key_for_create, idempotency_key_for_complete, tags,
                      created_on, completed_on)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO NOTHING

-- name: complete_promise
-- The guarded completion, and in its RETURNING row which follow-ups it needs (http-api.md
-- §2.8, protocol-2026.md §5): live tasks rooted at it, callbacks or subscriptions, 2026
-- awaiters, 2026 listeners. A promise with none of them (most) costs this one statement.
UPDATE promises
SET state = ?1, value_headers = ?2, value_data = ?3, idempotency_key_for_complete = ?4,
    completed_on = ?5
WHERE id = ?6 AND state = 1 AND (?7 IS NULL OR timeout > ?7)
RETURNING sort_id, id, state, param_headers, param_data, value_headers, value_data, timeout,
          idempotency_key_for_create, idempotency_key_for_complete, tags, created_on,
          completed_on,
          EXISTS (SELECT 1 FROM tasks WHERE root_promise_id = ?6 AND state IN (1, 2, 4)),
          EXISTS (SELECT 1 FROM callbacks WHERE promise_id = ?6),
          EXISTS (SELECT 1 FROM callbacks_2026 WHERE awaited = ?6),
          EXISTS (SELECT 1 FROM listeners_2026 WHERE promise_id = ?6)

-- name: earliest_pending_timeout
SELECT min(timeout) FROM promises WHERE state = 1

-- name: task_is_claimed
SELECT 1 FROM tasks WHERE id = ? AND counter = ? AND state = 4

-- name: create_migrations_table
CREATE TABLE IF NOT EXISTS migrations (
    id         INTEGER PRIMARY KEY,
    name       TEXT,
    applied_on INTEGER
)

-- name: migrations_table_exists
SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'migrations'

-- name: schema_version
SELECT coalesce(max(id), 0) FROM migrations

-- name: record_migration
INSERT INTO migrations (id, name, applied_on) VALUES (?, ?, ?)

-- name: get_callback
SELECT id, promise_id, root_promise_id, recv, mesg, timeout, created_on
FROM callbacks WHERE id = ?

-- name: insert_callback
INSERT INTO callbacks (id, promise_id, root_promise_id, recv, mesg, timeout, created_on)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO NOTHING

-- name: list_callbacks
-- A page of GET /callbacks, oldest first. idx_callbacks_promise_id holds (promise_id, rowid),
-- and sort_id is the rowid, so the page is one range of that index, in order.
SELECT sort_id, id, promise_id, root_promise_id, recv, mesg, timeout, created_on
FROM callbacks
WHERE promise_id = ? AND sort_id > ?
ORDER BY sort_id
LIMIT ?

-- name: complete_root_tasks
UPDATE tasks SET state = 8, process_id = NULL, attempt = 0, ttl = 0, expires_at = 0,
                 completed_on = ?
WHERE root_promise_id = ? AND state IN (1, 2, 4)

-- name: tasks_from_callbacks
INSERT INTO tasks (id, process_id, state, root_promise_id, recv, mesg, timeout, counter,
                   attempt, ttl, expires_at, created_on)
SELECT id, NULL, 1, root_promise_id, recv, mesg, timeout, 1, 0, 0, 0, ?
FROM callbacks WHERE promise_id = ?
ORDER BY sort_id
ON CONFLICT (id) DO NOTHING

-- name: delete_callbacks
DELETE FROM callbacks WHERE promise_id = ?

-- name: select_tasks
SELECT sort_id, id, process_id, state, root_promise_id, recv, mesg, timeout, counter, attempt,
       ttl, expires_at, created_on, completed_on
FROM tasks

-- name: insert_task
INSERT INTO tasks (id, process_id, state, root_promise_id, recv, mesg, timeout, counter,
                   attempt, ttl, expires_at, created_on, completed_on)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO NOTHING

-- name: insert_invoke_task
-- The invoke task of a promise inserted by the same operation (no ON CONFLICT: see base.py).
INSERT INTO tasks (id, process_id, state, root_promise_id, recv, mesg, timeout, counter,
                   attempt, ttl, expires_at, created_on, completed_on)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)

-- name: swap_task
UPDATE tasks
SET process_id = ?, state = ?, counter = ?, attempt = ?, ttl = ?, expires_at = ?,
    completed_on = ?
WHERE id = ? AND state = ? AND counter = ?

-- name: heartbeat_tasks
UPDATE tasks SET expires_at = min(? + ttl, 9223372036854775807)
WHERE process_id = ? AND state = 4

-- name: sendable_tasks
SELECT t.sort_id, t.id, t.process_id, t.state, t.root_promise_id, t.recv, t.mesg, t.timeout,
       t.counter, t.attempt, t.ttl, t.expires_at, t.created_on, t.completed_on
FROM tasks AS t
WHERE t.sort_id IN (SELECT min(sort_id) FROM tasks
                    WHERE state = 1 AND expires_at <= ? GROUP BY root_promise_id)
  AND NOT EXISTS (SELECT 1 FROM tasks AS busy
                  WHERE busy.root_promise_id = t.root_promise_id AND busy.state IN (2, 4))
ORDER BY t.sort_id
LIMIT ?

-- name: expired_tasks
SELECT sort_id, id, process_id, state, root_promise_id, recv, mesg, timeout, counter, attempt,
       ttl, expires_at, created_on, completed_on
FROM tasks
WHERE state IN (2, 4) AND ((expires_at != 0 AND expires_at <= ?) OR timeout <= ?)
ORDER BY sort_id
LIMIT ?

-- name: select_locks
SELECT resource_id, execution_id, process_id, ttl, expires_at FROM locks

-- name: acquire_lock
-- Writes only when the resource is free, already held by this execution, or expired (D5).
INSERT INTO locks (resource_id, execution_id, process_id, ttl, expires_at)
VALUES (?, ?, ?, ?, ?)
ON CONFLICT (resource_id) DO UPDATE
SET execution_id = excluded.execution_id, process_id = excluded.process_id,
    ttl = excluded.ttl, expires_at = excluded.expires_at
WHERE locks.execution_id = excluded.execution_id OR locks.expires_at <= ?

-- name: release_lock
DELETE FROM locks WHERE resource_id = ? AND execution_id = ?

-- name: heartbeat_locks
UPDATE locks SET expires_at = min(? + ttl, 9223372036854775807) WHERE process_id = ?

-- name: delete_expired_locks
DELETE FROM locks
WHERE resource_id IN (SELECT resource_id FROM locks WHERE expires_at <= ?
                      ORDER BY expires_at LIMIT ?)

-- name: count_locks
SELECT count(*) FROM locks

-- name: select_schedules
SELECT sort_id, id, description, cron, timezone, tags, promise_id, promise_timeout,
       promise_param_headers, promise_param_data, promise_tags, last_run_time, next_run_time,
       idempotency_key, created_on
FROM schedules

-- name: insert_schedule
INSERT INTO schedules (id, description, cron, timezone, tags, promise_id, promise_timeout,
                       promise_param_headers, promise_param_data, promise_tags, last_run_time,
                       next_run_time, idempotency_key, created_on)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO NOTHING

-- name: delete_schedule
DELETE FROM schedules WHERE id = ?

-- name: advance_schedule
UPDATE schedules SET last_run_time = ?, next_run_time = ?
WHERE id = ? AND next_run_time = ?

-- ---- operator dashboard reads (GET /stats, GET /stuck); migration 004 has their indexes ----

-- name: count_records
-- Rows of (table, state, count); 0 as the state of schedules and held locks. PENDING promises
-- come from idx_promises_pending_timeout, completed ones from idx_promises_completed_state,
-- tasks from idx_tasks_state_expires_at, held locks from idx_locks_expires_at.
SELECT 'promises', 1, count(*) FROM promises WHERE state = 1
UNION ALL
SELECT 'promises', state, count(*) FROM promises WHERE state <> 1 GROUP BY state
UNION ALL
SELECT 'tasks', state, count(*) FROM tasks GROUP BY state
UNION ALL
SELECT 'schedules', 0, count(*) FROM schedules
UNION ALL
SELECT 'locks', 0, count(*) FROM locks WHERE expires_at > ?

-- name: stuck_promises
SELECT sort_id, id, state, param_headers, param_data, value_headers, value_data, timeout,
       idempotency_key_for_create, idempotency_key_for_complete, tags, created_on, completed_on
FROM promises
WHERE state = 1 AND timeout <= ?
ORDER BY timeout, id
LIMIT ?

-- name: tasks_with_lease_ending
SELECT sort_id, id, process_id, state, root_promise_id, recv, mesg, timeout, counter, attempt,
       ttl, expires_at, created_on, completed_on
FROM tasks
WHERE state = 4 AND expires_at <= ?
ORDER BY expires_at, id
LIMIT ?

-- name: reissued_tasks
-- Without ANALYZE statistics SQLite would rather scan every active task by state and sort them.
SELECT sort_id, id, process_id, state, root_promise_id, recv, mesg, timeout, counter, attempt,
       ttl, expires_at, created_on, completed_on
FROM tasks INDEXED BY idx_tasks_active_counter
WHERE state IN (1, 2, 4) AND counter >= ?
ORDER BY counter DESC, id
LIMIT ?

-- name: waiting_tasks
-- GET /doctor: the INIT tasks soonest due, by the (state, expires_at) index (its rowid orders ties).
SELECT sort_id, id, process_id, state, root_promise_id, recv, mesg, timeout, counter, attempt,
       ttl, expires_at, created_on, completed_on
FROM tasks INDEXED BY idx_tasks_state_expires_at
WHERE state = 1
ORDER BY expires_at, sort_id
LIMIT ?

-- name: overdue_schedules
SELECT sort_id, id, description, cron, timezone, tags, promise_id, promise_timeout,
       promise_param_headers, promise_param_data, promise_tags, last_run_time, next_run_time,
       idempotency_key, created_on
FROM schedules
WHERE next_run_time < ?
ORDER BY next_run_time, id
LIMIT ?

-- name: stale_locks
-- Past the lease's midpoint (strictly, or at it for a ttl of 0, which is then its expiry).
SELECT resource_id, execution_id, process_id, ttl, expires_at
FROM locks
WHERE (expires_at - (ttl - ttl / 2)) <= ?1
  AND ((expires_at - (ttl - ttl / 2)) < ?1 OR ttl = 0)
ORDER BY (expires_at - (ttl - ttl / 2)), resource_id
LIMIT ?2

-- ---- the 2026-04-01 protocol (migration 006) ----

-- name: select_tasks_2026
SELECT id, state, version, target, pid, ttl, lease_at, retry_at, resumes, created_at, updated_at
FROM tasks_2026

-- name: insert_task_2026
INSERT INTO tasks_2026 (id, state, version, target, pid, ttl, lease_at, retry_at, resumes,
                        created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO NOTHING

-- name: swap_task_2026
UPDATE tasks_2026
SET state = ?, version = ?, target = ?, pid = ?, ttl = ?, lease_at = ?, retry_at = ?,
    resumes = ?, created_at = ?, updated_at = ?
WHERE id = ? AND state = ? AND version = ?

-- name: heartbeat_task_2026
UPDATE tasks_2026 SET lease_at = ? + ttl, updated_at = ?
WHERE id = ? AND version = ? AND state = 'acquired' AND pid = ?

-- name: insert_callback_2026
INSERT INTO callbacks_2026 (awaited, awaiter, created_at) VALUES (?, ?, ?)
ON CONFLICT (awaited, awaiter) DO NOTHING

-- name: insert_listener_2026
INSERT INTO listeners_2026 (promise_id, address, created_at) VALUES (?, ?, ?)
ON CONFLICT (promise_id, address) DO NOTHING

-- name: branch_promises
-- The preload of a task: every promise of one branch, by id (idx_promises_branch).
SELECT sort_id, id, state, param_headers, param_data, value_headers, value_data, timeout,
       idempotency_key_for_create, idempotency_key_for_complete, tags, created_on, completed_on
FROM promises
WHERE json_extract(tags, '$."resonate:branch"') = ? AND id <> ?
ORDER BY id

-- name: fulfil_task_2026
UPDATE tasks_2026
SET state = 'fulfilled', pid = NULL, ttl = NULL, lease_at = NULL, retry_at = NULL,
    updated_at = ?
WHERE id = ? AND state <> 'fulfilled'

-- name: delete_callbacks_2026_of_awaiter
DELETE FROM callbacks_2026 WHERE awaiter = ?

-- name: count_resumes_2026
UPDATE tasks_2026 SET resumes = resumes + 1, updated_at = ?
WHERE state IN ('pending', 'acquired', 'halted')
  AND id IN (SELECT awaiter FROM callbacks_2026 WHERE awaited = ?)

-- name: wake_tasks_2026
UPDATE tasks_2026
SET state = 'pending', retry_at = ?, resumes = resumes + 1, updated_at = ?
WHERE state = 'suspended' AND id IN (SELECT awaiter FROM callbacks_2026 WHERE awaited = ?)

-- name: delete_callbacks_2026_of_awaited
DELETE FROM callbacks_2026 WHERE awaited = ?

-- name: queue_unblocks_2026
INSERT INTO outbox_2026 (promise_id, address, created_at)
SELECT promise_id, address, ? FROM listeners_2026 WHERE promise_id = ?

-- name: delete_listeners_2026
DELETE FROM listeners_2026 WHERE promise_id = ?

-- name: due_tasks_2026
UPDATE tasks_2026 SET retry_at = ?, updated_at = ?
WHERE id IN (SELECT id FROM tasks_2026
             WHERE retry_at <= ? AND state = 'pending' ORDER BY retry_at LIMIT ?)
RETURNING id, state, version, target, pid, ttl, lease_at, retry_at, resumes, created_at,
          updated_at

-- name: leases_ending_2026
-- GET /doctor: acquired tasks whose lease ends by ? (idx_tasks_2026_lease_at), soonest first.
-- `+state` keeps the planner, which has no statistics, off idx_tasks_2026_state: the lease
-- index gives the order without a sort and only the leases ending soon.
SELECT id, state, version, target, pid, ttl, lease_at, retry_at, resumes, created_at, updated_at
FROM tasks_2026 WHERE lease_at <= ? AND +state = 'acquired' ORDER BY lease_at LIMIT ?

-- name: expire_leases_2026
UPDATE tasks_2026
SET state = 'pending', pid = NULL, ttl = NULL, lease_at = NULL, retry_at = ?, updated_at = ?
WHERE id IN (SELECT id FROM tasks_2026
             WHERE lease_at <= ? AND state = 'acquired' ORDER BY lease_at LIMIT ?)

-- name: take_unblocks_2026
DELETE FROM outbox_2026
WHERE seq IN (SELECT seq FROM outbox_2026 ORDER BY seq LIMIT ?)
RETURNING promise_id, address

-- name: count_tasks_2026
SELECT state, count(*) FROM tasks_2026 GROUP BY state

-- name: purge_keep
-- Retention and purge (docs/operations.md): the keep rules, a condition on the completed
-- promise `p`. Nothing may still refer to it: no active task rooted at it, no callback or
-- subscription, no 2026 awaiter or listener, no 2026 task that is not fulfilled, no unblock
-- message waiting in the outbox. The store adds the conditions of the query before these.
NOT EXISTS (SELECT 1 FROM tasks AS t WHERE t.root_promise_id = p.id AND t.state IN (1, 2, 4))
  AND NOT EXISTS (SELECT 1 FROM callbacks AS c WHERE c.promise_id = p.id)
  AND NOT EXISTS (SELECT 1 FROM callbacks_2026 AS c WHERE c.awaited = p.id)
  AND NOT EXISTS (SELECT 1 FROM listeners_2026 AS l WHERE l.promise_id = p.id)
  AND NOT EXISTS (SELECT 1 FROM tasks_2026 AS t WHERE t.id = p.id AND t.state <> 'fulfilled')
  -- (outbox_2026 has no index on promise_id: one list per statement, not a scan per row)
  AND p.id NOT IN (SELECT o.promise_id FROM outbox_2026 AS o)
  -- a callback whose task will resume this promise's function
  AND NOT EXISTS (SELECT 1 FROM callbacks AS c WHERE c.root_promise_id = p.id)
  -- a step of a call tree still running: its root, origin or parent is pending (a replay of
  -- the running function reads its completed steps)
  AND NOT EXISTS (
      SELECT 1 FROM promises AS r
      WHERE r.state = 1 AND r.id IN (json_extract(p.tags, '$."resonate:root"'),
                                     json_extract(p.tags, '$."resonate:origin"'),
                                     json_extract(p.tags, '$."resonate:parent"')))

-- name: purge_tasks
DELETE FROM tasks WHERE root_promise_id IN (SELECT value FROM json_each(?))

-- name: purge_tasks_2026
DELETE FROM tasks_2026 WHERE id IN (SELECT value FROM json_each(?))

-- name: purge_callbacks_2026
DELETE FROM callbacks_2026 WHERE awaiter IN (SELECT value FROM json_each(?))

-- name: purge_promises
DELETE FROM promises WHERE sort_id IN (SELECT value FROM json_each(?))

-- name: purge_completed_tasks
-- Retention of REST tasks: the oldest COMPLETED and TIMEDOUT ones past the cutoff, one range
-- of idx_tasks_completed_on (migration 009). Named: left to itself, the planner would rather
-- read every completed task from the (state, expires_at) index and sort them.
DELETE FROM tasks WHERE sort_id IN (
    SELECT sort_id FROM tasks INDEXED BY idx_tasks_completed_on
    WHERE state IN (8, 16) AND completed_on <= ?
    ORDER BY completed_on LIMIT ?)

-- name: oldest_completed_promise
SELECT min(completed_on) FROM promises WHERE state <> 1

-- name: oldest_completed_task
SELECT min(completed_on) FROM tasks INDEXED BY idx_tasks_completed_on WHERE state IN (8, 16)
