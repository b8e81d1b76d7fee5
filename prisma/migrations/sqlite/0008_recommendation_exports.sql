-- Batch exports (npm run export -- --format table): every user's recommendations
-- for an email campaign, say, one row per user and export. position orders an
-- export (the user's internal id for --users all, the line for a users file) so
-- an interrupted export resumes after its last stored row.
CREATE TABLE recommendation_exports (
  export_name   TEXT     NOT NULL,
  position      INTEGER  NOT NULL,
  user_id       TEXT     NOT NULL,
  strategy      TEXT     NOT NULL,
  model_version INTEGER,
  items         JSONB    NOT NULL,
  created_at    DATETIME NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER)),
  PRIMARY KEY (export_name, position)
);
