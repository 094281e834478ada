-- Indexes for the operator dashboard reads (GET /stats, GET /stuck), so that each of their
-- statements is an index scan rather than a table scan (docs/server.md, "Dashboard reads").
--
-- Completed promises counted by state. Partial, so a create never writes it and a completion
-- writes one entry; PENDING promises are counted from idx_promises_pending_timeout.
CREATE INDEX IF NOT EXISTS idx_promises_completed_state ON promises (state) WHERE state <> 1;
-- Active tasks by counter: the tasks re-issued many times come first.
CREATE INDEX IF NOT EXISTS idx_tasks_active_counter ON tasks (counter) WHERE state IN (1, 2, 4);
-- Locks by the midpoint of their lease, expires_at - ceil(ttl / 2): past it, the holder has not
-- renewed the lock for more than half its ttl. The expression matches stale_locks exactly.
CREATE INDEX IF NOT EXISTS idx_locks_lease_midpoint ON locks ((expires_at - (ttl - ttl / 2)));
