-- The completion function's guarded UPDATE reads the promise by its primary key, always.
--
-- PL/pgSQL runs its statements with generic plans once a session has called them a few times.
-- For `id = $1 AND state = 1 AND timeout > $2` a generic plan may pick the partial index of
-- pending promises by timeout (idx_promises_pending_timeout, whose predicate `state = 1` the
-- WHERE clause matches) and walk every pending promise due after now, filtering by id: seen on
-- a table without statistics (a new database, or autovacuum off), where it read about 36 index
-- entries per completion with 64 completions in flight (every pending promise, so the cost grows
-- with the number pending). `state + 0 = 1` means the same but does not match the index's
-- predicate, so the only plan left is the primary key's: one entry. The function is otherwise
-- migration 007's, except that the updated row is returned straight into the result columns
-- (no row variable copied field by field: 13 assignments fewer per call).
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
    completed BIGINT;
    created BIGINT;
    woken BIGINT := 0;
    unblocks BIGINT := 0;
    has_tasks BOOLEAN;
    has_callbacks BOOLEAN;
    has_awaiters BOOLEAN;
    has_listeners BOOLEAN;
BEGIN
    UPDATE promises AS p
    SET state = p_state, value_headers = p_value_headers, value_data = p_value_data,
        idempotency_key_for_complete = p_idempotency_key, completed_on = p_completed_on
    WHERE p.id = p_id AND p.state + 0 = 1
      AND (p_unless_overdue_at IS NULL OR p.timeout > p_unless_overdue_at)
    RETURNING p.sort_id, p.id, p.state, p.param_headers, p.param_data, p.value_headers,
              p.value_data, p.timeout, p.idempotency_key_for_create,
              p.idempotency_key_for_complete, p.tags, p.created_on, p.completed_on
    INTO r_sort_id, r_id, r_state, r_param_headers, r_param_data, r_value_headers,
         r_value_data, r_timeout, r_idempotency_key_for_create,
         r_idempotency_key_for_complete, r_tags, r_created_on, r_completed_on;
    IF NOT FOUND THEN
        RETURN;
    END IF;

    SELECT EXISTS (SELECT 1 FROM tasks AS t
                   WHERE t.root_promise_id = p_id AND t.state IN (1, 2, 4)),
           EXISTS (SELECT 1 FROM callbacks AS c WHERE c.promise_id = p_id),
           EXISTS (SELECT 1 FROM callbacks_2026 AS c WHERE c.awaited = p_id),
           EXISTS (SELECT 1 FROM listeners_2026 AS l WHERE l.promise_id = p_id)
    INTO has_tasks, has_callbacks, has_awaiters, has_listeners;
    completed := 0; created := 0;
    IF has_tasks THEN
        UPDATE tasks AS t
        SET state = 8, process_id = NULL, attempt = 0, ttl = 0, expires_at = 0,
            completed_on = p_now
        WHERE t.root_promise_id = p_id AND t.state IN (1, 2, 4);
        GET DIAGNOSTICS completed = ROW_COUNT;
    END IF;
    IF has_callbacks THEN
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
    END IF;
    IF r_tags ? 'resonate:target' THEN
        UPDATE tasks_2026 AS t
        SET state = 'fulfilled', pid = NULL, ttl = NULL, lease_at = NULL, retry_at = NULL,
            updated_at = p_now
        WHERE t.id = p_id AND t.state <> 'fulfilled';
        DELETE FROM callbacks_2026 AS c WHERE c.awaiter = p_id;
    END IF;
    IF has_awaiters THEN
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
    IF has_listeners THEN
        WITH fired AS (
            DELETE FROM listeners_2026 AS l WHERE l.promise_id = p_id
            RETURNING l.promise_id, l.address
        )
        INSERT INTO outbox_2026 (promise_id, address, created_at)
        SELECT f.promise_id, f.address, p_now FROM fired AS f;
        GET DIAGNOSTICS unblocks = ROW_COUNT;
    END IF;

    r_tasks_completed := completed; r_tasks_created := created; r_tasks_woken := woken;
    r_unblocks := unblocks;
    RETURN NEXT;
END;
$$;
