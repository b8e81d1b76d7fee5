-- One row per recommendation response: the items an impression showed move
-- from impression_items (a row per item, and two partial indexes, ~21 B-tree
-- inserts per response) into three JSON arrays on impressions, rank 1 first:
-- item_ids (internal item ids; null for an item the catalogue did not know),
-- probabilities and scores (null where the route has none). Measured: the
-- serve benchmark's impression cost (docs/serving-performance.md, "What
-- recording impressions costs"). Attribution now scans the event owner's
-- impressions in the window, newest first, through the owner indexes below
-- (src/data/attributions.ts). Impressions already stored keep their items and
-- their ranks (a rank with no stored item becomes null).
ALTER TABLE impressions ADD COLUMN item_ids TEXT NOT NULL DEFAULT '[]';
ALTER TABLE impressions ADD COLUMN probabilities TEXT NOT NULL DEFAULT '[]';
ALTER TABLE impressions ADD COLUMN scores TEXT NOT NULL DEFAULT '[]';

CREATE TEMP TABLE packed_impressions AS
  WITH RECURSIVE ranks (n) AS (
    SELECT 1 WHERE EXISTS (SELECT 1 FROM impression_items)
    UNION ALL
    SELECT n + 1 FROM ranks WHERE n < (SELECT MAX(rank) FROM impression_items)
  ),
  slots (id, n) AS (
    SELECT m.impression_id, r.n
      FROM (SELECT impression_id, MAX(rank) AS top FROM impression_items GROUP BY impression_id) m
      JOIN ranks r ON r.n <= m.top
  )
  SELECT s.id,
         json_group_array(ii.item_id ORDER BY s.n) AS item_ids,
         json_group_array(ii.probability ORDER BY s.n) AS probabilities,
         json_group_array(ii.score ORDER BY s.n) AS scores
    FROM slots s LEFT JOIN impression_items ii ON ii.impression_id = s.id AND ii.rank = s.n
   GROUP BY s.id;
UPDATE impressions SET item_ids = p.item_ids, probabilities = p.probabilities, scores = p.scores
  FROM packed_impressions p WHERE p.id = impressions.id;
DROP TABLE packed_impressions;

DROP TABLE impression_items;

-- Attribution by rule: "the owner's impressions between T - window and T,
-- newest first" is a range of one of these (the primary key, id, follows ts
-- in each entry); impressions without that kind of owner are left out.
CREATE INDEX impressions_user_id_ts_idx ON impressions (user_id, ts) WHERE user_id IS NOT NULL;
CREATE INDEX impressions_session_id_ts_idx ON impressions (session_id, ts) WHERE session_id IS NOT NULL;
