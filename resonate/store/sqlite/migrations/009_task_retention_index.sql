-- Completed and timed-out REST tasks by completion time, for the retention of tasks
-- (system.retention.tasks, docs/operations.md "Retention"): each batch deletes the oldest ones
-- past the cutoff, an index range scan, and the oldest one's age (a metric) is one probe.
-- Partial: a task enters it once, when it completes or times out, and never leaves it but
-- by deletion.
CREATE INDEX IF NOT EXISTS idx_tasks_completed_on ON tasks (completed_on) WHERE state IN (8, 16);
