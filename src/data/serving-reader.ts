import type Database from 'better-sqlite3';
import { BoundedMap } from './committed-ids.js';
import { readProperties, type ItemProperties } from './item-properties.js';
import { openSqlite, type Store } from './store.js';

/** One item of the catalogue as the API shows it. */
export interface CatalogItem {
  readonly id: number;
  readonly externalId: string;
  readonly title: string | null;
  readonly category: string | null;
  readonly price: number | null;
  readonly active: boolean;
  /** When the item entered the catalogue (epoch ms): the rules' `age`. */
  readonly createdAt: number;
  readonly properties: ItemProperties | null;
}

/**
 * What tells a catalogue read earlier from the store's now without reading every item: the number of items,
 * and a count of the changes to stored items that triggers keep (prisma/migrations/<provider>/0010_catalog_changes.sql).
 */
export interface CatalogState {
  readonly items: number;
  readonly changes: number;
}

/** The most frequent items of a recent window, and how many events the window holds. */
export interface PopularItems {
  readonly items: { readonly itemId: number; readonly count: number }[];
  readonly windowEvents: number;
}

/** A shopper's whole history, oldest first (the model reads its tail; filters read all of it). */
export interface History {
  readonly items: Int32Array;
  readonly types: Int32Array;
  /** Milliseconds since the epoch. */
  readonly timestamps: Float64Array;
}

/**
 * The reads the API makes on every request, as parameterised raw SQL on the
 * drivers (Prisma would add ~0.3 ms to each). On SQLite they go through a
 * connection of their own, so a read never sees another request's
 * uncommitted write.
 */
export interface ServingReader {
  userId(externalId: string): Promise<number | undefined>;
  userHistory(userId: number): Promise<History>;
  /** Items by number of events in the `days` before the newest event, most first. */
  popularItems(days: number, limit: number): Promise<PopularItems>;
  /** Catalogue items in id order: those with an id above `afterId`, at most `limit` of them (all when no limit). */
  catalog(afterId?: number, limit?: number): Promise<CatalogItem[]>;
  /** The catalogue items with these external ids (those that exist), in id order. */
  catalogItems(externalIds: readonly string[]): Promise<CatalogItem[]>;
  /** How many items the store holds, and how many changes to stored items (updates, deletes) it has counted ever. */
  catalogState(): Promise<CatalogState>;
  /** Event-type name → id. */
  eventTypes(): Promise<Map<string, number>>;
  ping(): Promise<void>;
  close(): void;
}

const HISTORY_SQL = 'SELECT item_id, type_id, ts FROM events WHERE user_id = $1 ORDER BY ts, item_id, type_id';
const HISTORY_SQL_PG = 'SELECT item_id, type_id, (EXTRACT(EPOCH FROM ts) * 1000)::float8 FROM events WHERE user_id = $1 ORDER BY ts, item_id, type_id';
const CATALOG_COLUMNS = 'id, external_id, title, category, price, active, created_at, properties';
const CATALOG_COLUMNS_PG = CATALOG_COLUMNS.replace('created_at', '(EXTRACT(EPOCH FROM created_at) * 1000)::float8 AS created_at');
const CATALOG_SQL = `SELECT ${CATALOG_COLUMNS} FROM items WHERE id > ? ORDER BY id LIMIT ?`;
const CATALOG_SQL_PG = `SELECT ${CATALOG_COLUMNS_PG} FROM items WHERE id > $1 ORDER BY id LIMIT $2`;
const CATALOG_ITEMS_SQL = `SELECT ${CATALOG_COLUMNS} FROM items WHERE external_id IN (SELECT value FROM json_each(?)) ORDER BY id`;
const CATALOG_ITEMS_SQL_PG = `SELECT ${CATALOG_COLUMNS_PG} FROM items WHERE external_id = ANY($1::text[]) ORDER BY id`;
const CATALOG_STATE_SQL = 'SELECT (SELECT COUNT(*) FROM items), (SELECT changes FROM _attnrec_catalog_changes WHERE id = 1)';
const DAY_MS = 86_400_000;

export function servingReader(store: Store): ServingReader {
  if (store.provider === 'postgresql') return rememberingUserIds(postgresReader(store));
  const file = store.target.provider === 'sqlite' ? store.target.file : ':memory:';
  return rememberingUserIds(sqliteReader(file === ':memory:' ? store.db : openSqlite(file), store.db));
}

/**
 * A user's internal id never changes once the user exists (attnrec never deletes users nor changes their
 * ids: src/data/committed-ids.ts), so the ids found are remembered, up to KNOWN_USERS of them; an id not
 * found is looked up again next time. On SQLite the look-up cost ~18 µs of the event loop, ~1 µs once
 * remembered (bench/scratch probe on the serve benchmark's store, look-ups between one-event writes):
 * every commit of another connection empties the reader's page cache, and the index is read again.
 */
function rememberingUserIds(reader: ServingReader): ServingReader {
  const known = new BoundedMap<number>(KNOWN_USERS);
  return {
    ...reader,
    async userId(externalId) {
      const remembered = known.get(externalId);
      if (remembered !== undefined) return remembered;
      const id = await reader.userId(externalId);
      if (id !== undefined) known.set(externalId, id);
      return id;
    },
  };
}

const KNOWN_USERS = 200_000;

function sqliteReader(db: Database.Database, writer: Database.Database): ServingReader {
  const user = db.prepare('SELECT id FROM users WHERE external_id = ?').pluck();
  const history = db.prepare(HISTORY_SQL.replace('$1', '?')).raw(true);
  const newest = db.prepare('SELECT MAX(ts) FROM events').pluck();
  const popular = db.prepare('SELECT item_id, COUNT(*) AS n FROM events WHERE ts >= ? GROUP BY item_id ORDER BY n DESC, item_id LIMIT ?').raw(true);
  const catalog = db.prepare(CATALOG_SQL).raw(true);
  const catalogItems = db.prepare(CATALOG_ITEMS_SQL).raw(true);
  const catalogState = db.prepare(CATALOG_STATE_SQL).raw(true);
  const windowCount = db.prepare('SELECT COUNT(*) FROM events WHERE ts >= ?').pluck();
  return {
    async userId(externalId) {
      return user.get(externalId) as number | undefined;
    },
    async userHistory(userId) {
      const rows = history.all(userId) as [number, number, number][];
      return { items: Int32Array.from(rows, (r) => r[0]), types: Int32Array.from(rows, (r) => r[1]), timestamps: Float64Array.from(rows, (r) => r[2]) };
    },
    async popularItems(days, limit) {
      const max = newest.get() as number | null;
      if (max === null) return { items: [], windowEvents: 0 };
      const since = max - days * DAY_MS;
      return {
        items: (popular.all(since, limit) as [number, number][]).map(([itemId, count]) => ({ itemId, count })),
        windowEvents: windowCount.get(since) as number,
      };
    },
    async catalog(afterId = 0, limit = -1) {
      return (catalog.all(afterId, limit) as SqliteCatalogRow[]).map(sqliteCatalogItem);
    },
    async catalogItems(externalIds) {
      return externalIds.length === 0 ? [] : (catalogItems.all(JSON.stringify(externalIds)) as SqliteCatalogRow[]).map(sqliteCatalogItem);
    },
    async catalogState() {
      const [items, changes] = catalogState.get() as [number, number];
      return { items, changes };
    },
    async eventTypes() {
      return new Map((db.prepare('SELECT name, id FROM event_types').raw(true).all() as [string, number][]));
    },
    async ping() {
      db.prepare('SELECT 1').get();
    },
    close() {
      if (db !== writer && db.open) db.close();
    },
  };
}

function postgresReader(store: Extract<Store, { provider: 'postgresql' }>): ServingReader {
  const { pool } = store;
  return {
    async userId(externalId) {
      const { rows } = await pool.query<{ id: number }>({ name: 'attnrec_user_id', text: 'SELECT id FROM users WHERE external_id = $1', values: [externalId] });
      return rows[0]?.id;
    },
    async userHistory(userId) {
      const { rows } = await pool.query<[number, number, number]>({ name: 'attnrec_history', text: HISTORY_SQL_PG, values: [userId], rowMode: 'array' });
      return { items: Int32Array.from(rows, (r) => r[0]), types: Int32Array.from(rows, (r) => r[1]), timestamps: Float64Array.from(rows, (r) => r[2]) };
    },
    async popularItems(days, limit) {
      const window = `(SELECT MAX(ts) FROM events) - $1 * INTERVAL '1 day'`;
      const { rows } = await pool.query<[number, string]>({
        text: `SELECT item_id, COUNT(*) AS n FROM events WHERE ts >= ${window} GROUP BY item_id ORDER BY n DESC, item_id LIMIT $2`,
        values: [days, limit],
        rowMode: 'array',
      });
      const total = await pool.query<[string]>({ text: `SELECT COUNT(*) FROM events WHERE ts >= ${window}`, values: [days], rowMode: 'array' });
      return { items: rows.map(([itemId, count]) => ({ itemId, count: Number(count) })), windowEvents: Number(total.rows[0]![0]) };
    },
    async catalog(afterId = 0, limit?: number) {
      const { rows } = await pool.query<PostgresCatalogRow>({
        text: CATALOG_SQL_PG,
        values: [afterId, limit ?? null],
      });
      return rows.map(postgresCatalogItem);
    },
    async catalogItems(externalIds) {
      if (externalIds.length === 0) return [];
      const { rows } = await pool.query<PostgresCatalogRow>({ text: CATALOG_ITEMS_SQL_PG, values: [externalIds] });
      return rows.map(postgresCatalogItem);
    },
    async catalogState() {
      // COUNT(*) and BIGINT arrive as text: exact integers below 2^53 either way.
      const { rows } = await pool.query<[string, string]>({ text: CATALOG_STATE_SQL, rowMode: 'array' });
      return { items: Number(rows[0]![0]), changes: Number(rows[0]![1]) };
    },
    async eventTypes() {
      const { rows } = await pool.query<[string, number]>({ text: 'SELECT name, id FROM event_types', rowMode: 'array' });
      return new Map(rows);
    },
    async ping() {
      await pool.query('SELECT 1');
    },
    close() {},
  };
}

/**
 * Up to `limit` users with events, internal and external ids: those of the store's first events (by
 * event id, so the read is an index walk however large the store), where the user-cache warm-up, which
 * goes most recently active first, comes last. The server's start-up warm-up asks for them.
 */
export async function earliestShoppers(store: Store, limit: number): Promise<{ readonly id: number; readonly externalId: string }[]> {
  const sql = (p: (n: number) => string): string =>
    `SELECT u.id, u.external_id FROM users u JOIN (SELECT DISTINCT user_id FROM (SELECT user_id FROM events WHERE user_id IS NOT NULL ORDER BY id LIMIT ${p(1)}) f) e ON e.user_id = u.id ORDER BY u.id LIMIT ${p(2)}`;
  const scan = limit * 20;
  const rows =
    store.provider === 'sqlite'
      ? (store.db.prepare(sql(() => '?')).raw(true).all(scan, limit) as [number, string][])
      : (await store.pool.query<[number, string]>({ text: sql((n) => `$${n}`), values: [scan, limit], rowMode: 'array' })).rows;
  return rows.map(([id, externalId]) => ({ id, externalId }));
}

/** External ids of these internal user ids (bulk, in chunks: the user-cache warm-up's lookup). */
export async function externalUserIds(store: Store, ids: readonly number[]): Promise<Map<number, string>> {
  const out = new Map<number, string>();
  const CHUNK = 10_000;
  for (let from = 0; from < ids.length; from += CHUNK) {
    const chunk = ids.slice(from, from + CHUNK);
    if (store.provider === 'sqlite') {
      const rows = store.db.prepare(`SELECT id, external_id FROM users WHERE id IN (${chunk.map(() => '?').join(',')})`).raw(true).all(...chunk) as [number, string][];
      for (const [id, externalId] of rows) out.set(id, externalId);
    } else {
      const { rows } = await store.pool.query<[number, string]>({ text: 'SELECT id, external_id FROM users WHERE id = ANY($1::int[])', values: [chunk], rowMode: 'array' });
      for (const [id, externalId] of rows) out.set(id, externalId);
    }
  }
  return out;
}

type SqliteCatalogRow = [number, string, string | null, string | null, number | null, number, number, string | null];

function sqliteCatalogItem([id, externalId, title, category, price, active, createdAt, properties]: SqliteCatalogRow): CatalogItem {
  return { id, externalId, title, category, price, active: active === 1, createdAt, properties: readProperties(properties) };
}

interface PostgresCatalogRow {
  readonly id: number;
  readonly external_id: string;
  readonly title: string | null;
  readonly category: string | null;
  readonly price: number | null;
  readonly active: boolean;
  readonly created_at: number;
  readonly properties: unknown;
}

function postgresCatalogItem(r: PostgresCatalogRow): CatalogItem {
  return { id: r.id, externalId: r.external_id, title: r.title, category: r.category, price: r.price, active: r.active, createdAt: r.created_at, properties: readProperties(r.properties) };
}
