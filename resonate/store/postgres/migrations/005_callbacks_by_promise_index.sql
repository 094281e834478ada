-- GET /callbacks lists the callbacks of one promise oldest first, a page at a time
-- (`promise_id = $1 AND sort_id > $2 ORDER BY sort_id`). With an index on promise_id alone the
-- planner either sorts every callback of the promise or, in a generic plan, walks the sort_id
-- index of the whole table; on (promise_id, sort_id) each page is one range, in order. The new
-- index serves everything the old one did (completions look callbacks up by promise_id), so the
-- old one goes rather than cost every registration a second index write.
CREATE INDEX IF NOT EXISTS idx_callbacks_promise_id_sort_id ON callbacks (promise_id, sort_id);
DROP INDEX IF EXISTS idx_callbacks_promise_id;
