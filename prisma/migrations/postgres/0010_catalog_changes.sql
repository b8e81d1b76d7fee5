-- Changes to items already stored (updates and deletes, by any writer: the
-- API, an import, a statement typed by hand), counted by triggers, so an API
-- server can tell whether the catalogue it holds in memory is still the
-- store's without reading every item (src/serve/catalog-cache.ts, refresh).
-- New items are not counted: a server tells them by the number of items.
-- One count per statement (an import's upsert of thousands of items is one).
-- Internal (a leading underscore), like _attnrec_migrations: no Prisma model.
CREATE TABLE _attnrec_catalog_changes (
  id INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
  changes BIGINT NOT NULL
);
INSERT INTO _attnrec_catalog_changes (id, changes) VALUES (1, 0);
CREATE FUNCTION _attnrec_count_catalog_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE _attnrec_catalog_changes SET changes = changes + 1 WHERE id = 1;
  RETURN NULL;
END
$$;
CREATE TRIGGER items_changed_count AFTER UPDATE OR DELETE OR TRUNCATE ON items
  FOR EACH STATEMENT EXECUTE FUNCTION _attnrec_count_catalog_change();
