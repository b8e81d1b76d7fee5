-- What each recommendation response showed (src/data/impressions.ts has the
-- design). Both primary keys lead with the response's recommendationId, a
-- UUIDv7, so rows are stored in time order (WITHOUT ROWID: the table is its
-- primary key's B-tree): inserts append, and retention deletes a range of
-- each primary key, with no index on ts to maintain.
CREATE TABLE impressions (
  id            TEXT     NOT NULL PRIMARY KEY,
  ts            DATETIME NOT NULL,
  route         TEXT     NOT NULL,
  strategy      TEXT     NOT NULL,
  model_version INTEGER,
  variant       TEXT,
  user_id       TEXT,
  session_id    TEXT
) WITHOUT ROWID;

-- item_id has no foreign key, as in events (items are never hard-deleted).
CREATE TABLE impression_items (
  impression_id TEXT     NOT NULL REFERENCES impressions (id) ON DELETE CASCADE,
  rank          INTEGER  NOT NULL CHECK (rank >= 1),
  item_id       INTEGER  NOT NULL,
  probability   REAL,
  score         REAL,
  user_id       TEXT,
  session_id    TEXT,
  ts            DATETIME NOT NULL,
  PRIMARY KEY (impression_id, rank)
) WITHOUT ROWID;
-- Attribution: "the latest impression that showed item X to user U since T"
-- is one descent of these; rows without that kind of owner are left out.
CREATE INDEX impression_items_user_id_item_id_ts_idx ON impression_items (user_id, item_id, ts) WHERE user_id IS NOT NULL;
CREATE INDEX impression_items_session_id_item_id_ts_idx ON impression_items (session_id, item_id, ts) WHERE session_id IS NOT NULL;
