-- The 2026-04-01 protocol's own records (protocol-2026.md §4), next to the REST ones: promises
-- stay one table for both protocols; tasks, callbacks and listeners of the new protocol live
-- here, because their model differs (one versioned task per promise, keyed by its id).
CREATE TABLE IF NOT EXISTS tasks_2026 (
    id         TEXT PRIMARY KEY,
    state      TEXT NOT NULL,
    version    INTEGER NOT NULL,
    target     TEXT NOT NULL,
    pid        TEXT,
    ttl        INTEGER,
    lease_at   INTEGER,
    retry_at   INTEGER,
    resumes    INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
-- The timers: pending tasks due for an execute, acquired tasks whose lease lapses.
CREATE INDEX IF NOT EXISTS idx_tasks_2026_retry_at ON tasks_2026 (retry_at)
    WHERE retry_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS idx_tasks_2026_lease_at ON tasks_2026 (lease_at)
    WHERE lease_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS idx_tasks_2026_state ON tasks_2026 (state, id);

-- awaited -> awaiter: when `awaited` settles, the awaiter's task wakes.
CREATE TABLE IF NOT EXISTS callbacks_2026 (
    awaited    TEXT NOT NULL,
    awaiter    TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (awaited, awaiter)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idx_callbacks_2026_awaiter ON callbacks_2026 (awaiter);

-- One `unblock` to `address` when the promise settles.
CREATE TABLE IF NOT EXISTS listeners_2026 (
    promise_id TEXT NOT NULL,
    address    TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (promise_id, address)
) WITHOUT ROWID;

-- Unblock messages written by a settlement, sent after it committed.
CREATE TABLE IF NOT EXISTS outbox_2026 (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    promise_id TEXT NOT NULL,
    address    TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

-- The preload of a task (§3.2): the promises of one branch, by id.
CREATE INDEX IF NOT EXISTS idx_promises_branch
    ON promises (json_extract(tags, '$."resonate:branch"'), id)
    WHERE json_extract(tags, '$."resonate:branch"') IS NOT NULL;
