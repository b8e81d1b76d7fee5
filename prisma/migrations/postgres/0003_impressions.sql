-- What each recommendation response showed (src/data/impressions.ts has the
-- design). Both primary keys lead with the response's recommendationId, a
-- UUIDv7, so their order is time order: retention deletes a range of each
-- primary key, with no index on ts to maintain. The ids compare in byte
-- order (COLLATE "C") whatever the database's locale, which that relies on.
CREATE TABLE impressions (
  id            TEXT COLLATE "C" PRIMARY KEY,
  ts            TIMESTAMP(3)     NOT NULL,
  route         TEXT             NOT NULL,
  strategy      TEXT             NOT NULL,
  model_version INTEGER,
  variant       TEXT,
  user_id       TEXT,
  session_id    TEXT
);

-- item_id has no foreign key, as in events (items are never hard-deleted).
CREATE TABLE impression_items (
  impression_id TEXT COLLATE "C" NOT NULL REFERENCES impressions (id) ON DELETE CASCADE,
  rank          INTEGER          NOT NULL CHECK (rank >= 1),
  item_id       INTEGER          NOT NULL,
  probability   DOUBLE PRECISION,
  score         DOUBLE PRECISION,
  user_id       TEXT,
  session_id    TEXT,
  ts            TIMESTAMP(3)     NOT NULL,
  PRIMARY KEY (impression_id, rank)
);
-- Attribution: "the latest impression that showed item X to user U since T"
-- is one descent of these; rows without that kind of owner are left out.
CREATE INDEX impression_items_user_id_item_id_ts_idx ON impression_items (user_id, item_id, ts) WHERE user_id IS NOT NULL;
CREATE INDEX impression_items_session_id_item_id_ts_idx ON impression_items (session_id, item_id, ts) WHERE session_id IS NOT NULL;
