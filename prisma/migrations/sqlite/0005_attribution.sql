-- Attribution (src/data/attributions.ts has the design): which recommendation
-- response, if any, an event follows from.
-- An event may name the response it follows (POST /v1/events recommendationId,
-- the import's recommendation_id column); most events do not, and a NULL
-- costs nothing. Adding a nullable column without a default rewrites nothing.
ALTER TABLE events ADD COLUMN recommendation_id TEXT;

-- One row per attributed event: the event (event_key = events.id, unique, so
-- an event is attributed at most once however often the attributor meets it),
-- the impression and the item's rank in it, the event's type, value, quantity
-- and time, and how it was attributed (explicit: the event named the
-- recommendationId; rule: the latest impression that showed the item to the
-- same user or session within --attribution-window). The impression's route,
-- strategy, model version, variant and experiment are copied in, so that online metrics
-- per model version, variant and route read this table alone. The primary key
-- leads with the impression's id, a UUIDv7: the rows of the impressions shown
-- in a period are one range of it (beside the same range of impressions, the
-- denominator), and retention deletes a range, as for the impression tables.
-- No foreign keys: events are never deleted, and retention deletes these rows
-- before their impressions.
CREATE TABLE attributions (
  impression_id TEXT     NOT NULL,
  event_key     INTEGER  NOT NULL,
  kind          TEXT     NOT NULL CHECK (kind IN ('explicit', 'rule')),
  rank          INTEGER  NOT NULL CHECK (rank >= 1),
  item_id       INTEGER  NOT NULL,
  type_id       INTEGER  NOT NULL,
  value         REAL,
  quantity      INTEGER,
  ts            DATETIME NOT NULL,
  route         TEXT     NOT NULL,
  strategy      TEXT     NOT NULL,
  model_version INTEGER,
  variant       TEXT,
  experiment_id INTEGER,
  PRIMARY KEY (impression_id, event_key)
) WITHOUT ROWID;
CREATE UNIQUE INDEX attributions_event_key_key ON attributions (event_key);

-- How far the attributor has walked the events (events.id); advanced in the
-- transaction that writes a batch's attributions. It starts at the events
-- already stored: those were stored before any attribution existed.
CREATE TABLE attribution_cursors (
  name       TEXT     NOT NULL PRIMARY KEY,
  event_key  INTEGER  NOT NULL,
  updated_at DATETIME NOT NULL
);
INSERT INTO attribution_cursors (name, event_key, updated_at)
  SELECT 'events', COALESCE(MAX(id), 0), CAST(unixepoch('subsec') * 1000 AS INTEGER) FROM events;
