-- PostgreSQL's migration 005 indexes callbacks on (promise_id, sort_id) for GET /callbacks, a
-- page of one promise's callbacks oldest first. Here sort_id is the rowid, which every SQLite
-- index already holds after its columns, so idx_callbacks_promise_id (001) serves that page as
-- one range, in order, and there is nothing to change. The version is kept so that a schema
-- version names the same set of changes on both stores (`resonate migrate status`, /readyz).
SELECT 1;
