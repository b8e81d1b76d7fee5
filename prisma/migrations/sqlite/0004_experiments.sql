-- Online experiments (src/data/experiments.ts): shoppers on an experiment's
-- routes are split among its variants by a stable hash of their id with the
-- experiment's salt. At most one running experiment per route: the server
-- refuses an overlapping start (409), in a transaction.
CREATE TABLE experiments (
  id          INTEGER  PRIMARY KEY,
  name        TEXT     NOT NULL,
  salt        TEXT     NOT NULL,
  routes      JSONB    NOT NULL,
  status      TEXT     NOT NULL CHECK (status IN ('draft', 'running', 'stopped')),
  guardrail   JSONB,
  created_at  DATETIME NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER)),
  started_at  DATETIME,
  stopped_at  DATETIME,
  stop_reason TEXT
);

CREATE TABLE experiment_variants (
  experiment_id INTEGER NOT NULL REFERENCES experiments (id) ON DELETE CASCADE,
  name          TEXT    NOT NULL,
  strategy      TEXT    NOT NULL CHECK (strategy IN ('model', 'popular')),
  model_version INTEGER REFERENCES model_versions (id),
  share         REAL    NOT NULL CHECK (share > 0 AND share <= 1),
  control       BOOLEAN NOT NULL DEFAULT 0,
  PRIMARY KEY (experiment_id, name),
  CHECK ((strategy = 'model') = (model_version IS NOT NULL))
);

-- Which experiment an impression's variant belongs to (variant holds the variant's name).
ALTER TABLE impressions ADD COLUMN experiment_id INTEGER;
