-- Indexed tag search: one row per text tag of every promise, so that `tags[k]=v` is an index
-- range in the order each search pages in, whatever the number of promises stored and however
-- many of them hold the tag (the twin of the SQLite 007, which keys the same rows).
--
-- The GIN index of migration 001 answered `tags @> '{"k":"v"}'` with a bitmap of every
-- promise holding the tag, which then had to be sorted by sort_id (REST searches, newest
-- first) or by id (the 2026 protocol's promise.search). Fine for a tag a few promises hold; for
-- one most hold (a scope, a target), a page of 10 fetched and sorted most of the table, and in
-- a generic plan (asyncpg prepares every statement) or with stale statistics the planner picked
-- either that or the opposite (walking the sort_id index with a filter, which reads the whole
-- table for a tag few promises hold) without knowing which one it faced. Here a page is a range
-- of (key, value, sort_id) read backwards, or of (key, value, id) read forwards: it costs about
-- its own rows in either case, in any plan.
--
-- Rows are written by a trigger in the statement that inserts the promise (tags never change
-- afterwards; a trigger on UPDATE OF tags keeps the index right should one ever be written). Its
-- WHEN clause skips untagged promises without calling the function. The GIN index goes: every
-- promise tag lookup now reads this table (branch preload included), and it cost every insert
-- and every completion (a non-HOT update) an entry, tags or not.
--
-- Promises stored before this migration are indexed by it, in the migration's transaction:
-- about a minute per million promises holding four tags each, on the benchmark machine.
CREATE TABLE IF NOT EXISTS promise_tags (
    key     TEXT COLLATE "C" NOT NULL,
    value   TEXT COLLATE "C" NOT NULL,
    sort_id BIGINT NOT NULL,
    id      TEXT COLLATE "C" NOT NULL
);

CREATE OR REPLACE FUNCTION resonate_promise_tags() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND jsonb_typeof(OLD.tags) = 'object' THEN
        DELETE FROM promise_tags AS t
        USING jsonb_each(OLD.tags) AS e
        WHERE t.key = e.key AND t.value = e.value #>> '{}' AND t.sort_id = OLD.sort_id;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND jsonb_typeof(NEW.tags) = 'object' THEN
        INSERT INTO promise_tags (key, value, sort_id, id)
        SELECT e.key, e.value #>> '{}', NEW.sort_id, NEW.id
        FROM jsonb_each(NEW.tags) AS e
        WHERE jsonb_typeof(e.value) = 'string';
    END IF;
    RETURN NULL;
END;
$$;

DROP TRIGGER IF EXISTS promise_tags_after_insert ON promises;
CREATE TRIGGER promise_tags_after_insert AFTER INSERT ON promises
FOR EACH ROW WHEN (NEW.tags IS NOT NULL AND NEW.tags <> '{}'::jsonb)
EXECUTE FUNCTION resonate_promise_tags();

DROP TRIGGER IF EXISTS promise_tags_after_update ON promises;
CREATE TRIGGER promise_tags_after_update AFTER UPDATE OF tags ON promises
FOR EACH ROW WHEN (OLD.tags IS DISTINCT FROM NEW.tags)
EXECUTE FUNCTION resonate_promise_tags();

DROP TRIGGER IF EXISTS promise_tags_after_delete ON promises;
CREATE TRIGGER promise_tags_after_delete AFTER DELETE ON promises
FOR EACH ROW WHEN (OLD.tags IS NOT NULL AND OLD.tags <> '{}'::jsonb)
EXECUTE FUNCTION resonate_promise_tags();

-- The promises stored so far (none in a fresh database), before the indexes: a bulk build is
-- faster than one insert at a time.
INSERT INTO promise_tags (key, value, sort_id, id)
SELECT e.key, e.value #>> '{}', p.sort_id, p.id
FROM promises AS p, jsonb_each(p.tags) AS e
WHERE jsonb_typeof(p.tags) = 'object' AND jsonb_typeof(e.value) = 'string';

-- The name stays that of the index serving tag search; it is now this one.
DROP INDEX IF EXISTS idx_promises_tags;
CREATE UNIQUE INDEX IF NOT EXISTS idx_promises_tags ON promise_tags (key, value, sort_id);
CREATE UNIQUE INDEX IF NOT EXISTS idx_promise_tags_id ON promise_tags (key, value, id);
ANALYZE promise_tags;

-- The completion (migrations 003 and 006) does less when there is nothing to follow up, as for
-- most promises: one statement probes for root tasks, callbacks, 2026 awaiters and listeners
-- (four index probes, one executor start) instead of four statements, two of them
-- data-modifying CTEs, that usually touch nothing; each follow-up runs only when its probe
-- found rows. The result row is assigned and returned with RETURN NEXT instead of a RETURN
-- QUERY statement. Measured in a PL/pgSQL loop (backend CPU per call, a promise with nothing
-- to follow up): 38-41 us before, 26-29 us after; a bare guarded UPDATE costs 12-14 us.
--
-- The probe sees what the statements it replaces saw: it runs after the promise's UPDATE, in a
-- fresh snapshot (VOLATILE, READ COMMITTED). Registrations (callbacks, 2026 callbacks and
-- listeners) share-lock the PENDING promise, so the UPDATE waited for those in flight and the
-- probe sees them committed; later ones find the promise completed and register nothing.
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
    has_tasks BOOLEAN;
    has_callbacks BOOLEAN;
    has_awaiters BOOLEAN;
    has_listeners BOOLEAN;
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
    IF done.tags ? 'resonate:target' THEN
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

    r_sort_id := done.sort_id; r_id := done.id; r_state := done.state;
    r_param_headers := done.param_headers; r_param_data := done.param_data;
    r_value_headers := done.value_headers; r_value_data := done.value_data;
    r_timeout := done.timeout; r_idempotency_key_for_create := done.idempotency_key_for_create;
    r_idempotency_key_for_complete := done.idempotency_key_for_complete; r_tags := done.tags;
    r_created_on := done.created_on; r_completed_on := done.completed_on;
    r_tasks_completed := completed; r_tasks_created := created; r_tasks_woken := woken;
    r_unblocks := unblocks;
    RETURN NEXT;
END;
$$;


