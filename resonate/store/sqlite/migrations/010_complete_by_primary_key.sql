-- PostgreSQL's migration 010 makes its completion function read the promise by primary key
-- whatever plan the session caches. SQLite plans each statement with the id's unique index
-- (EXPLAIN QUERY PLAN: `SEARCH promises USING INDEX sqlite_autoindex_promises_1 (id=?)`) and
-- has no stored functions: nothing to change. The version is kept so that a schema version
-- names the same set of changes on both stores.
SELECT 1;
