-- Exploration (issue 20): the ranks (1-based) of the items a response showed
-- because of its exploration share rather than its ranking, so what those
-- slots earn can be told apart from the ranked ones (events are attributed
-- to an impression and a rank). Most impressions have none: '[]'.
ALTER TABLE impressions ADD COLUMN explored JSONB NOT NULL DEFAULT '[]';
