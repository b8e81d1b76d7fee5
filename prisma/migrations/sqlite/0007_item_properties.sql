-- Items carry arbitrary properties (brand, stock, margin, tags, ...): one JSON
-- object per item, written by PUT /v1/items and the catalogue import, read
-- with the catalogue into memory and used by the recommendation routes'
-- filter and boost rules (src/data/item-rules/). NULL: no properties.
ALTER TABLE items ADD COLUMN properties JSONB;
