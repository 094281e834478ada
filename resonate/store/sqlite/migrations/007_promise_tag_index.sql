-- Indexed tag search: one row per text tag of every promise, keyed (key, value, sort_id), so
-- that `tags[k]=v` is an index range in sort_id order whatever the number of promises stored.
-- Triggers keep it in the transaction that writes the promise (tags never change after the
-- insert). Promises stored before this migration are indexed afterwards, in batches, by the
-- server (or `resonate migrate up`): until `promise_tags_backfill` is empty, searches read the
-- JSON column as before.
CREATE TABLE IF NOT EXISTS promise_tags (
    key     TEXT NOT NULL,
    value   TEXT NOT NULL,
    sort_id INTEGER NOT NULL,
    PRIMARY KEY (key, value, sort_id)
) WITHOUT ROWID;

CREATE TRIGGER IF NOT EXISTS promise_tags_after_insert AFTER INSERT ON promises
WHEN NEW.tags IS NOT NULL AND NEW.tags <> '{}'
BEGIN
    INSERT OR IGNORE INTO promise_tags (key, value, sort_id)
    SELECT key, value, NEW.sort_id FROM json_each(NEW.tags) WHERE type = 'text';
END;

CREATE TRIGGER IF NOT EXISTS promise_tags_after_delete AFTER DELETE ON promises
WHEN OLD.tags IS NOT NULL AND OLD.tags <> '{}'
BEGIN
    DELETE FROM promise_tags
    WHERE (key, value, sort_id) IN (
        SELECT key, value, OLD.sort_id FROM json_each(OLD.tags) WHERE type = 'text');
END;

-- The backfill's position: promises with sort_id below `below` are not indexed yet. No row:
-- every promise is indexed (a fresh database never has one).
CREATE TABLE IF NOT EXISTS promise_tags_backfill (
    below INTEGER NOT NULL
);
INSERT INTO promise_tags_backfill (below)
SELECT max(sort_id) + 1 FROM promises HAVING count(*) > 0;
