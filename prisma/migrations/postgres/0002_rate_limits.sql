-- Request budgets shared by the API's replicas (src/serve/rate-limit.ts,
-- rate-limiter-flexible's RateLimiterPostgres: it upserts one row per key and
-- window, and deletes rows that expired an hour ago every 5 minutes).
CREATE TABLE rate_limits (
  key    TEXT    PRIMARY KEY,
  points INTEGER NOT NULL DEFAULT 0,
  expire BIGINT
);
