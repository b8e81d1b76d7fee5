-- The table PostgreSQL servers share request budgets in (see the PostgreSQL
-- migration); SQLite servers keep budgets in memory, so it stays empty here.
CREATE TABLE rate_limits (
  key    TEXT    NOT NULL PRIMARY KEY,
  points INTEGER NOT NULL DEFAULT 0,
  expire BIGINT
);
