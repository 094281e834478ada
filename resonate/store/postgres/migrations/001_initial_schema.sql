-- Initial schema (http-api.md §14.2), the PostgreSQL twin of the SQLite 001. Column names
-- follow upstream.
--
-- Ids use the "C" collation: they compare byte by byte, as SQLite's BINARY does, so lock pages
-- (ordered by resource_id) come in the same order on both stores, and the primary-key index
-- serves D6 prefix patterns (`id LIKE 'abc%'`) under any database collation; it takes the
-- place of the `id text_pattern_ops` index the spec suggests for non-C collations.
-- sort_id is a 64-bit identity (upstream's 32-bit SERIAL overflows) with its own index, so a
-- search page (ORDER BY sort_id DESC LIMIT n) does not sort the whole table.
-- Task counter and attempt are BIGINT: they hold what SQLite's 64-bit INTEGER holds, and a
-- fencing header may carry any int64 counter.
CREATE TABLE IF NOT EXISTS promises (
    id                           TEXT COLLATE "C" PRIMARY KEY,
    sort_id                      BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
    state                        INTEGER NOT NULL DEFAULT 1,
    param_headers                JSONB,
    param_data                   BYTEA,
    value_headers                JSONB,
    value_data                   BYTEA,
    timeout                      BIGINT NOT NULL,
    idempotency_key_for_create   TEXT,
    idempotency_key_for_complete TEXT,
    tags                         JSONB,
    created_on                   BIGINT,
    completed_on                 BIGINT
);
CREATE INDEX IF NOT EXISTS idx_promises_pending_timeout ON promises (timeout) WHERE state = 1;
-- Serves `tags @> '{"k":"v"}'` (tag search, e.g. resonate:root for `resonate tree`).
CREATE INDEX IF NOT EXISTS idx_promises_tags ON promises USING GIN (tags jsonb_path_ops);

CREATE TABLE IF NOT EXISTS callbacks (
    id              TEXT COLLATE "C" PRIMARY KEY,
    sort_id         BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
    promise_id      TEXT COLLATE "C" NOT NULL,
    root_promise_id TEXT COLLATE "C" NOT NULL,
    recv            BYTEA NOT NULL,
    mesg            BYTEA NOT NULL,
    timeout         BIGINT NOT NULL,
    created_on      BIGINT
);
CREATE INDEX IF NOT EXISTS idx_callbacks_promise_id ON callbacks (promise_id);

CREATE TABLE IF NOT EXISTS tasks (
    id              TEXT COLLATE "C" PRIMARY KEY,
    sort_id         BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
    process_id      TEXT,
    state           INTEGER NOT NULL DEFAULT 1,
    root_promise_id TEXT COLLATE "C" NOT NULL,
    recv            BYTEA NOT NULL,
    mesg            BYTEA NOT NULL,
    timeout         BIGINT NOT NULL,
    counter         BIGINT NOT NULL DEFAULT 1,
    attempt         BIGINT NOT NULL DEFAULT 0,
    ttl             BIGINT NOT NULL DEFAULT 0,
    expires_at      BIGINT NOT NULL DEFAULT 0,
    created_on      BIGINT,
    completed_on    BIGINT
);
CREATE INDEX IF NOT EXISTS idx_tasks_process_id ON tasks (process_id);
CREATE INDEX IF NOT EXISTS idx_tasks_state_expires_at ON tasks (state, expires_at);
CREATE INDEX IF NOT EXISTS idx_tasks_root_promise_id ON tasks (root_promise_id);

CREATE TABLE IF NOT EXISTS schedules (
    id                    TEXT COLLATE "C" PRIMARY KEY,
    sort_id               BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
    description           TEXT,
    cron                  TEXT NOT NULL,
    tags                  JSONB,
    promise_id            TEXT NOT NULL,
    promise_timeout       BIGINT NOT NULL,
    promise_param_headers JSONB,
    promise_param_data    BYTEA,
    promise_tags          JSONB,
    last_run_time         BIGINT,
    next_run_time         BIGINT,
    idempotency_key       TEXT,
    created_on            BIGINT
);
CREATE INDEX IF NOT EXISTS idx_schedules_next_run_time ON schedules (next_run_time);

CREATE TABLE IF NOT EXISTS locks (
    resource_id  TEXT COLLATE "C" PRIMARY KEY,
    execution_id TEXT NOT NULL,
    process_id   TEXT NOT NULL,
    ttl          BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_locks_process_id ON locks (process_id);
CREATE INDEX IF NOT EXISTS idx_locks_expires_at ON locks (expires_at);
