-- The 2026-04-01 protocol's own records (protocol-2026.md §4), next to the REST ones: promises
-- stay one table for both protocols; tasks, callbacks and listeners of the new protocol live
-- here, because their model differs (one versioned task per promise, keyed by its id).
CREATE TABLE IF NOT EXISTS tasks_2026 (
    id         TEXT COLLATE "C" PRIMARY KEY,
    state      TEXT NOT NULL,
    version    BIGINT NOT NULL,
    target     TEXT NOT NULL,
    pid        TEXT,
    ttl        BIGINT,
    lease_at   BIGINT,
    retry_at   BIGINT,
    resumes    BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_tasks_2026_retry_at ON tasks_2026 (retry_at)
    WHERE retry_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS idx_tasks_2026_lease_at ON tasks_2026 (lease_at)
    WHERE lease_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS idx_tasks_2026_state ON tasks_2026 (state, id);

CREATE TABLE IF NOT EXISTS callbacks_2026 (
    awaited    TEXT COLLATE "C" NOT NULL,
    awaiter    TEXT COLLATE "C" NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (awaited, awaiter)
);
CREATE INDEX IF NOT EXISTS idx_callbacks_2026_awaiter ON callbacks_2026 (awaiter);

CREATE TABLE IF NOT EXISTS listeners_2026 (
    promise_id TEXT COLLATE "C" NOT NULL,
    address    TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (promise_id, address)
);

CREATE TABLE IF NOT EXISTS outbox_2026 (
    seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    promise_id TEXT COLLATE "C" NOT NULL,
    address    TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- Preload (§3.2) reads one branch: `tags @> '{"resonate:branch": …}'` is served by the GIN
-- index of migration 001.

-- The settlement cascade (§5) grows the 2026 steps: the promise's own task is fulfilled (and
-- its callbacks as awaiter dropped), the tasks awaiting it are woken (suspended -> pending, due
-- at once) or counted (`resumes`), its listeners become unblock messages. Still one call, so
-- a completion that does nothing else stays one round trip. Two counts more come back: tasks
-- woken (due for an execute) and unblocks queued.
DROP FUNCTION IF EXISTS resonate_complete_promise(TEXT, INTEGER, JSONB, BYTEA, TEXT, BIGINT, BIGINT, BIGINT);
CREATE OR REPLACE FUNCTION resonate_complete_promise(
    p_id                 TEXT,
    p_state              INTEGER,
    p_value_headers      JSONB,
    p_value_data         BYTEA,
    p_idempotency_key    TEXT,
    p_completed_on       BIGINT,
    p_unless_overdue_at  BIGINT,
    p_now                BIGINT
) RETURNS TABLE (
    r_sort_id                      BIGINT,
    r_id                           TEXT,
    r_state                        INTEGER,
    r_param_headers                JSONB,
    r_param_data                   BYTEA,
    r_value_headers                JSONB,
    r_value_data                   BYTEA,
    r_timeout                      BIGINT,
    r_idempotency_key_for_create   TEXT,
    r_idempotency_key_for_complete TEXT,
    r_tags                         JSONB,
    r_created_on                   BIGINT,
    r_completed_on                 BIGINT,
    r_tasks_completed              BIGINT,
    r_tasks_created                BIGINT,
    r_tasks_woken                  BIGINT,
    r_unblocks                     BIGINT
)
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    done promises%ROWTYPE;
    completed BIGINT;
    created BIGINT;
    woken BIGINT := 0;
    unblocks BIGINT := 0;
BEGIN
    UPDATE promises AS p
    SET state = p_state, value_headers = p_value_headers, value_data = p_value_data,
        idempotency_key_for_complete = p_idempotency_key, completed_on = p_completed_on
    WHERE p.id = p_id AND p.state = 1
      AND (p_unless_overdue_at IS NULL OR p.timeout > p_unless_overdue_at)
    RETURNING p.* INTO done;
    IF NOT FOUND THEN
        RETURN;
    END IF;

    UPDATE tasks AS t
    SET state = 8, process_id = NULL, attempt = 0, ttl = 0, expires_at = 0,
        completed_on = p_now
    WHERE t.root_promise_id = p_id AND t.state IN (1, 2, 4);
    GET DIAGNOSTICS completed = ROW_COUNT;

    WITH fired AS (
        DELETE FROM callbacks AS c WHERE c.promise_id = p_id
        RETURNING c.sort_id, c.id, c.root_promise_id, c.recv, c.mesg, c.timeout
    )
    INSERT INTO tasks (id, process_id, state, root_promise_id, recv, mesg, timeout, counter,
                       attempt, ttl, expires_at, created_on)
    SELECT f.id, NULL, 1, f.root_promise_id, f.recv, f.mesg, f.timeout, 1, 0, 0, 0, p_now
    FROM fired AS f
    ORDER BY f.sort_id
    ON CONFLICT (id) DO NOTHING;
    GET DIAGNOSTICS created = ROW_COUNT;

    -- The 2026 steps only when the promise has 2026 records (a REST-only promise pays one
    -- index probe per table).
    IF done.tags ? 'resonate:target' THEN
        UPDATE tasks_2026 AS t
        SET state = 'fulfilled', pid = NULL, ttl = NULL, lease_at = NULL, retry_at = NULL,
            updated_at = p_now
        WHERE t.id = p_id AND t.state <> 'fulfilled';
        DELETE FROM callbacks_2026 AS c WHERE c.awaiter = p_id;
    END IF;
    IF EXISTS (SELECT 1 FROM callbacks_2026 AS c WHERE c.awaited = p_id) THEN
        UPDATE tasks_2026 AS t
        SET resumes = t.resumes + 1, updated_at = p_now
        WHERE t.state IN ('pending', 'acquired', 'halted')
          AND t.id IN (SELECT c.awaiter FROM callbacks_2026 AS c WHERE c.awaited = p_id);
        UPDATE tasks_2026 AS t
        SET state = 'pending', retry_at = p_now, resumes = t.resumes + 1, updated_at = p_now
        WHERE t.state = 'suspended'
          AND t.id IN (SELECT c.awaiter FROM callbacks_2026 AS c WHERE c.awaited = p_id);
        GET DIAGNOSTICS woken = ROW_COUNT;
        DELETE FROM callbacks_2026 AS c WHERE c.awaited = p_id;
    END IF;
    WITH fired AS (
        DELETE FROM listeners_2026 AS l WHERE l.promise_id = p_id
        RETURNING l.promise_id, l.address
    )
    INSERT INTO outbox_2026 (promise_id, address, created_at)
    SELECT f.promise_id, f.address, p_now FROM fired AS f;
    GET DIAGNOSTICS unblocks = ROW_COUNT;

    RETURN QUERY SELECT done.sort_id, done.id, done.state, done.param_headers, done.param_data,
                        done.value_headers, done.value_data, done.timeout,
                        done.idempotency_key_for_create, done.idempotency_key_for_complete,
                        done.tags, done.created_on, done.completed_on, completed, created,
                        woken, unblocks;
END;
$$;
