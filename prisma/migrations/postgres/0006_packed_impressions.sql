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
ALTER TABLE impressions
  ADD COLUMN item_ids      JSONB NOT NULL DEFAULT '[]',
  ADD COLUMN probabilities JSONB NOT NULL DEFAULT '[]',
  ADD COLUMN scores        JSONB NOT NULL DEFAULT '[]';

UPDATE impressions i SET item_ids = p.item_ids, probabilities = p.probabilities, scores = p.scores
  FROM (
    SELECT m.impression_id AS id,
           jsonb_agg(ii.item_id ORDER BY s.n) AS item_ids,
           jsonb_agg(ii.probability ORDER BY s.n) AS probabilities,
           jsonb_agg(ii.score ORDER BY s.n) AS scores
      FROM (SELECT impression_id, MAX(rank) AS top FROM impression_items GROUP BY impression_id) m
      CROSS JOIN LATERAL generate_series(1, m.top) AS s (n)
      LEFT JOIN impression_items ii ON ii.impression_id = m.impression_id AND ii.rank = s.n
     GROUP BY m.impression_id
  ) p
 WHERE p.id = i.id;

DROP TABLE impression_items;

-- Attribution by rule: "the owner's impressions between T - window and T,
-- newest first" is a range of one of these; impressions without that kind of
-- owner are left out.
CREATE INDEX impressions_user_id_ts_idx ON impressions (user_id, ts, id) WHERE user_id IS NOT NULL;
CREATE INDEX impressions_session_id_ts_idx ON impressions (session_id, ts, id) WHERE session_id IS NOT NULL;
