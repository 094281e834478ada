-- PostgreSQL's migration 003 adds resonate_complete_promise, a stored function that runs a
-- promise's completion (the guarded update, its root tasks, its callbacks) in one round trip.
-- SQLite runs the same statements in-process inside the writer's transaction and has no
-- stored functions, so there is nothing to change here. The version is kept so that a schema
-- version names the same set of changes on both stores (`resonate migrate status`, /readyz).
SELECT 1;
