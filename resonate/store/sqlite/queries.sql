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
