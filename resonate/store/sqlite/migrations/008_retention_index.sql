-- Completed promises by completion time, for the retention loop (docs/operations.md,
-- "Retention"): each pass takes the oldest completed promises first, an index range scan.
-- Partial like idx_promises_completed_state: a create never writes it, a completion adds one
-- entry.
CREATE INDEX IF NOT EXISTS idx_promises_completed_on ON promises (completed_on) WHERE state <> 1;
-- Callbacks by the promise their task resumes: retention keeps such a root (see above).
CREATE INDEX IF NOT EXISTS idx_callbacks_root_promise_id ON callbacks (root_promise_id);
