-- Initial schema (http-api.md §14.2). Column names follow upstream.
CREATE TABLE IF NOT EXISTS promises (
    id                           TEXT UNIQUE NOT NULL,
    sort_id                      INTEGER PRIMARY KEY AUTOINCREMENT,
    state                        INTEGER NOT NULL DEFAULT 1,
    param_headers                TEXT,
    param_data                   BLOB,
    value_headers                TEXT,
    value_data                   BLOB,
    timeout                      INTEGER NOT NULL,
    idempotency_key_for_create   TEXT,
    idempotency_key_for_complete TEXT,
    tags                         TEXT,
    created_on                   INTEGER,
    completed_on                 INTEGER
);
CREATE INDEX IF NOT EXISTS idx_promises_pending_timeout ON promises (timeout) WHERE state = 1;

CREATE TABLE IF NOT EXISTS callbacks (
    id              TEXT UNIQUE NOT NULL,
    sort_id         INTEGER PRIMARY KEY AUTOINCREMENT,
    promise_id      TEXT NOT NULL,
    root_promise_id TEXT NOT NULL,
    recv            BLOB NOT NULL,
    mesg            BLOB NOT NULL,
    timeout         INTEGER NOT NULL,
    created_on      INTEGER
);
CREATE INDEX IF NOT EXISTS idx_callbacks_promise_id ON callbacks (promise_id);

CREATE TABLE IF NOT EXISTS tasks (
    id              TEXT UNIQUE NOT NULL,
    sort_id         INTEGER PRIMARY KEY AUTOINCREMENT,
    process_id      TEXT,
    state           INTEGER NOT NULL DEFAULT 1,
    root_promise_id TEXT NOT NULL,
    recv            BLOB NOT NULL,
    mesg            BLOB NOT NULL,
    timeout         INTEGER NOT NULL,
    counter         INTEGER NOT NULL DEFAULT 1,
    attempt         INTEGER NOT NULL DEFAULT 0,
    ttl             INTEGER NOT NULL DEFAULT 0,
    expires_at      INTEGER NOT NULL DEFAULT 0,
    created_on      INTEGER,
    completed_on    INTEGER
);
CREATE INDEX IF NOT EXISTS idx_tasks_process_id ON tasks (process_id);
CREATE INDEX IF NOT EXISTS idx_tasks_state_expires_at ON tasks (state, expires_at);
CREATE INDEX IF NOT EXISTS idx_tasks_root_promise_id ON tasks (root_promise_id);

CREATE TABLE IF NOT EXISTS schedules (
    id                    TEXT UNIQUE NOT NULL,
    sort_id               INTEGER PRIMARY KEY AUTOINCREMENT,
    description           TEXT,
    cron                  TEXT NOT NULL,
    tags                  TEXT,
    promise_id            TEXT NOT NULL,
    promise_timeout       INTEGER NOT NULL,
    promise_param_headers TEXT,
    promise_param_data    BLOB,
    promise_tags          TEXT,
    last_run_time         INTEGER,
    next_run_time         INTEGER,
    idempotency_key       TEXT,
    created_on            INTEGER
);
CREATE INDEX IF NOT EXISTS idx_schedules_next_run_time ON schedules (next_run_time);

CREATE TABLE IF NOT EXISTS locks (
    resource_id  TEXT UNIQUE NOT NULL,
    execution_id TEXT NOT NULL,
    process_id   TEXT NOT NULL,
    ttl          INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_locks_process_id ON locks (process_id);
CREATE INDEX IF NOT EXISTS idx_locks_expires_at ON locks (expires_at);
