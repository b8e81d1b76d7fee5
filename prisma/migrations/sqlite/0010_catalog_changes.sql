-- Changes to items already stored (updates and deletes, by any writer: the
-- API, an import, a statement typed by hand), counted by triggers, so an API
-- server can tell whether the catalogue it holds in memory is still the
-- store's without reading every item (src/serve/catalog-cache.ts, refresh).
-- New items are not counted: a server tells them by the number of items.
-- Internal (a leading underscore), like _attnrec_migrations: no Prisma model.
CREATE TABLE _attnrec_catalog_changes (
  id INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
  changes INTEGER NOT NULL
);
INSERT INTO _attnrec_catalog_changes (id, changes) VALUES (1, 0);
CREATE TRIGGER items_updated_count AFTER UPDATE ON items
BEGIN
  UPDATE _attnrec_catalog_changes SET changes = changes + 1 WHERE id = 1;
END;
CREATE TRIGGER items_deleted_count AFTER DELETE ON items
BEGIN
  UPDATE _attnrec_catalog_changes SET changes = changes + 1 WHERE id = 1;
END;
