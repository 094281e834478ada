-- A promise's completion as one server-side call (http-api.md §2.8): the guarded update, then
-- its root tasks completed, then its callbacks and subscriptions turned into INIT tasks and
-- deleted. Sent as separate statements these cost three round trips inside an open
-- transaction (five with BEGIN and COMMIT); as one call they cost one, and a request that does
-- nothing else runs it on its own (autocommit), as one atomic statement.
--
-- Behaviour is that of the separate statements: the function is VOLATILE, so under READ
-- COMMITTED each statement in it takes a fresh snapshot. A callback registered concurrently
-- (insert_callback holds a share lock on the pending promise) makes the UPDATE wait for its
-- commit, and the DELETE that follows then sees and fires it.
--
-- Returns no row when the promise is not PENDING (or, with p_unless_overdue_at, is overdue at
-- that time); otherwise the completed promise in the select_promises column order, then how
-- many tasks were completed and how many were created.
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
    r_tasks_created                BIGINT
)
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    done promises%ROWTYPE;
    completed BIGINT;
    created BIGINT;
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

    RETURN QUERY SELECT done.sort_id, done.id, done.state, done.param_headers, done.param_data,
                        done.value_headers, done.value_data, done.timeout,
                        done.idempotency_key_for_create, done.idempotency_key_for_complete,
                        done.tags, done.created_on, done.completed_on, completed, created;
END;
$$;
