-- attnrec initial schema, SQLite. Mirrors prisma/models.prisma
-- (test/schema-sync.test.ts checks tables and columns).
-- DateTime columns hold integer milliseconds since the epoch (UTC): the Prisma
-- adapter is opened with timestampFormat 'unixepoch-ms', and the raw bulk
-- paths write the same integers.

CREATE TABLE items (
  id          INTEGER PRIMARY KEY,
  external_id TEXT     NOT NULL,
  title       TEXT,
  category    TEXT,
  price       REAL,
  created_at  DATETIME NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER)),
  active      BOOLEAN  NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX items_external_id_key ON items (external_id);
CREATE INDEX items_category_idx ON items (category);

CREATE TABLE users (
  id          INTEGER PRIMARY KEY,
  external_id TEXT     NOT NULL,
  created_at  DATETIME NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER))
);
CREATE UNIQUE INDEX users_external_id_key ON users (external_id);

-- sessions.user_id has no foreign key for the same reason as events (below):
-- sessions are created by the bulk import and ingestion paths, which resolve
-- the user in the same transaction; a trigger per session cost ~4 µs on
-- PostgreSQL, a fifth of a million-event import.
CREATE TABLE sessions (
  id          INTEGER PRIMARY KEY,
  external_id TEXT     NOT NULL,
  user_id     INTEGER,
  created_at  DATETIME NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER))
);
CREATE UNIQUE INDEX sessions_external_id_key ON sessions (external_id);

CREATE TABLE event_types (
  id   INTEGER PRIMARY KEY CHECK (id BETWEEN 1 AND 255),
  name TEXT    NOT NULL
);
CREATE UNIQUE INDEX event_types_name_key ON event_types (name);
INSERT INTO event_types (id, name) VALUES (1, 'view'), (2, 'cart'), (3, 'purchase');

-- No foreign keys on events, by measurement: on PostgreSQL the four
-- referential-integrity triggers took 16 of 27 s per million inserted events.
-- They could never fire: every writer (bulk import, HTTP ingestion) resolves
-- user, session, item and type ids inside the transaction that writes the
-- events, and attnrec never hard-deletes users, sessions, items (they are
-- deactivated) or event types. The relations stay declared in Prisma.
CREATE TABLE events (
  id         INTEGER  PRIMARY KEY,
  user_id    INTEGER,
  session_id INTEGER,
  item_id    INTEGER  NOT NULL,
  type_id    INTEGER  NOT NULL,
  ts         DATETIME NOT NULL,
  value      REAL,
  quantity   INTEGER,
  event_id   TEXT,
  CHECK (user_id IS NOT NULL OR session_id IS NOT NULL)
);
-- Client event ids are unique; most bulk-imported events have none, and a
-- partial index spends nothing on them.
CREATE UNIQUE INDEX events_event_id_key ON events (event_id) WHERE event_id IS NOT NULL;
-- The content key: an event is the same event when its owner, item, type and
-- timestamp (ms) are equal, whether or not the client sent an event id. The
-- owner is the user when there is one (a session adds nothing to the identity
-- of a known user's event), else the session. The user key leads with
-- (user_id, ts), so the same index serves "history of user X ordered by time":
-- one index where there would be two, on the hot path of every insert.
CREATE UNIQUE INDEX events_user_content_key ON events (user_id, ts, item_id, type_id) WHERE user_id IS NOT NULL;
-- Anonymous events are keyed by session; leading with (session_id, ts) this
-- index is also the history of an anonymous session. A session that belongs
-- to a user is read through the user's history (filtered by session_id): no
-- separate session index, which would cost every insert ~0.6 µs.
CREATE UNIQUE INDEX events_anonymous_content_key ON events (session_id, ts, item_id, type_id) WHERE user_id IS NULL;
CREATE INDEX events_ts_idx ON events (ts);

CREATE TABLE model_versions (
  id            INTEGER  PRIMARY KEY,
  created_at    DATETIME NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER)),
  status        TEXT     NOT NULL CHECK (status IN ('training', 'ready', 'failed')),
  config        JSONB    NOT NULL,
  data_hash     TEXT     NOT NULL,
  metrics       JSONB,
  artifact_path TEXT     NOT NULL,
  active        BOOLEAN  NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX model_versions_one_active ON model_versions (active) WHERE active = 1;

CREATE TABLE item_embeddings (
  model_version_id INTEGER NOT NULL REFERENCES model_versions (id) ON DELETE CASCADE,
  item_id          INTEGER NOT NULL REFERENCES items (id),
  vector           BLOB    NOT NULL,
  PRIMARY KEY (model_version_id, item_id)
) WITHOUT ROWID;
