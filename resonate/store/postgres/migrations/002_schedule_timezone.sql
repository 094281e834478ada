-- Schedules may name the time zone their cron is computed in (the `timezone` field).
ALTER TABLE schedules ADD COLUMN IF NOT EXISTS timezone TEXT;
