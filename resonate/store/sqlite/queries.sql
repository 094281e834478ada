-- Named statements for the SQLite store. Parameters are positional (`?`).

-- name: select_promises
SELECT sort_id, id, state, param_headers, param_data, value_headers, value_data, timeout,
       idempotency_key_for_create, idempotency_key_for_complete, tags, created_on, completed_on
FROM promises

-- name: insert_promise
INSERT INTO promises (id, state, param_headers, param_data, value_headers, value_data, timeout,
                      idempotency_key_for_create, idempotency_key_for_complete, tags,
                      created_on, completed_on)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO NOTHING

-- name: complete_promise
UPDATE promises
SET state = ?, value_headers = ?, value_data = ?, idempotency_key_for_complete = ?,
    completed_on = ?
WHERE id = ? AND state = 1 AND (? IS NULL OR timeout > ?)
RETURNING sort_id, id, state, param_headers, param_data, value_headers, value_data, timeout,
          idempotency_key_for_create, idempotency_key_for_complete, tags, created_on,
          completed_on

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

-- name: complete_root_tasks
UPDATE tasks SET state = 8, completed_on = ?
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
