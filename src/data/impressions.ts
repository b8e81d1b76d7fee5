import type Database from 'better-sqlite3';
import type { Store } from './store.js';
import { impressionWriter, type ImpressionWriterSql } from './impression-writer.js';
import { walCheckpointer } from './wal-checkpointer.js';
import { withWriteLock } from './write-lock.js';

/**
 * Impressions: what each recommendation response showed, stored so that a
 * later event can be attributed to the response that showed its item.
 *
 * Two tables (prisma/models.prisma, migrations 0003_impressions):
 * `impressions`, one row per response (its recommendationId, a UUIDv7, is the
 * key), and `impression_items`, one row per item shown, keyed by
 * (impression_id, rank). The items repeat the response's owner (user or
 * session, the shop's external ids: a shopper may have no stored row yet)
 * and time, so that "the latest impression that showed item X to user U since
 * T" is one descent of a partial index on (user_id, item_id, ts) (or
 * (session_id, item_id, ts)) instead of a scan of U's impressions joined to
 * their items; responses without an owner (similar items) stay out of both
 * indexes. Items are the catalogue's internal ids, as in `events`.
 *
 * The ids are time-ordered (UUIDv7: the first 48 bits are the millisecond
 * `ts` is taken from), so both primary keys are in time order: inserts append,
 * and retention deletes "everything older than T" as a range of each primary
 * key, with no index on ts to maintain.
 */

/** The routes that record impressions (the `route` column). */
export type ImpressionRoute = 'user_recommendations' | 'session_recommendations' | 'next_sequence' | 'rank' | 'similar_items';

export interface ImpressionItemRow {
  /** 1 for the first item shown. */
  readonly rank: number;
  /** Internal item id (items.id). */
  readonly itemId: number;
  /** Null where the route has none (similar items), or the value was not finite. */
  readonly probability: number | null;
  /** The route's score: logit, log-probability (next-sequence), event count (popular) or cosine (similar items). */
  readonly score: number | null;
}

export interface ImpressionRow {
  /** The response's recommendationId: a UUIDv7 (lowercase, as the uuid package writes it). */
  readonly id: string;
  /** Milliseconds since the epoch: the id's timestamp (see uuidV7Millis). */
  readonly ts: number;
  readonly route: ImpressionRoute;
  readonly strategy: 'model' | 'popular';
  readonly modelVersion: number | null;
  /** The running experiment that assigned the shopper, and the variant's name (null outside experiments). */
  readonly experimentId: number | null;
  readonly variant: string | null;
  readonly userId: string | null;
  readonly sessionId: string | null;
  readonly items: readonly ImpressionItemRow[];
}

/** The millisecond timestamp a UUIDv7 carries in its first 48 bits. */
export function uuidV7Millis(id: string): number {
  return Number.parseInt(id.slice(0, 8) + id.slice(9, 13), 16);
}

/**
 * The smallest UUID string of millisecond `ms`: every lowercase UUIDv7 made
 * before `ms` sorts below it (byte order, SQLite's BINARY and PostgreSQL's
 * "C" collation), every one made at `ms` or later at or above it.
 */
export function uuidV7Floor(ms: number): string {
  const hex = Math.max(0, Math.floor(ms)).toString(16).padStart(12, '0');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-0000-0000-000000000000`;
}

const finite = (x: number | null): number | null => (x !== null && Number.isFinite(x) ? x : null);

/**
 * Stores a batch of impressions in one transaction (all or none). On SQLite
 * it takes the connection's write lock (src/data/write-lock.ts), like event
 * ingestion, and the insert runs on the impression writer thread
 * (src/data/impression-writer.ts) meanwhile, so the event loop goes on; the
 * lock is held for the whole insert, so keep batches small. Returns the rows written.
 */
export async function writeImpressions(store: Store, batch: readonly ImpressionRow[]): Promise<{ impressions: number; items: number }> {
  if (batch.length === 0) return { impressions: 0, items: 0 };
  const items = batch.reduce((n, row) => n + row.items.length, 0);
  if (store.provider === 'sqlite') {
    await withWriteLock(store, async () => {
      // On a thread of its own (src/data/impression-writer.ts) unless the database is in memory.
      if (store.db.memory) sqliteStatements(store.db).insertBatch.immediate(batch);
      else await impressionWriter(store.db, SQLITE_SQL).write(batch);
      walCheckpointer(store.db, (fn) => withWriteLock(store, fn))?.committed(batch.length + items);
    });
    return { impressions: batch.length, items };
  }
  const client = await store.pool.connect();
  let broken: Error | undefined;
  try {
    await client.query('BEGIN');
    await client.query(
      `INSERT INTO impressions (id, ts, route, strategy, model_version, variant, user_id, session_id, experiment_id)
       SELECT id, ${pgTimestamp('ms')}, route, strategy, model_version, variant, user_id, session_id, experiment_id
         FROM unnest($1::text[], $2::int8[], $3::text[], $4::text[], $5::int4[], $6::text[], $7::text[], $8::text[], $9::int4[])
           AS t (id, ms, route, strategy, model_version, variant, user_id, session_id, experiment_id)`,
      [
        batch.map((r) => r.id),
        batch.map((r) => Math.round(r.ts)),
        batch.map((r) => r.route),
        batch.map((r) => r.strategy),
        batch.map((r) => r.modelVersion),
        batch.map((r) => r.variant),
        batch.map((r) => r.userId),
        batch.map((r) => r.sessionId),
        batch.map((r) => r.experimentId),
      ],
    );
    if (items > 0) {
      const columns = { id: [] as string[], rank: [] as number[], item: [] as number[], probability: [] as (number | null)[], score: [] as (number | null)[], user: [] as (string | null)[], session: [] as (string | null)[], ms: [] as number[] };
      for (const row of batch) {
        for (const item of row.items) {
          columns.id.push(row.id);
          columns.rank.push(item.rank);
          columns.item.push(item.itemId);
          columns.probability.push(finite(item.probability));
          columns.score.push(finite(item.score));
          columns.user.push(row.userId);
          columns.session.push(row.sessionId);
          columns.ms.push(Math.round(row.ts));
        }
      }
      await client.query(
        `INSERT INTO impression_items (impression_id, rank, item_id, probability, score, user_id, session_id, ts)
         SELECT impression_id, rank, item_id, probability, score, user_id, session_id, ${pgTimestamp('ms')}
           FROM unnest($1::text[], $2::int4[], $3::int4[], $4::float8[], $5::float8[], $6::text[], $7::text[], $8::int8[])
             AS t (impression_id, rank, item_id, probability, score, user_id, session_id, ms)`,
        [columns.id, columns.rank, columns.item, columns.probability, columns.score, columns.user, columns.session, columns.ms],
      );
    }
    await client.query('COMMIT');
    return { impressions: batch.length, items };
  } catch (error) {
    broken = error as Error;
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  } finally {
    // A client whose statement failed may have lost its connection: do not hand it to the next query.
    client.release(broken);
  }
}

/** Epoch milliseconds (an int8 expression) as the UTC TIMESTAMP(3) the tables hold, exactly. */
const pgTimestamp = (ms: string): string => `(TIMESTAMP '1970-01-01 00:00:00' + ${ms} * INTERVAL '1 millisecond')`;

interface SqliteImpressionStatements {
  readonly insertBatch: Database.Transaction<(batch: readonly ImpressionRow[]) => void>;
}

const sqliteCache = new WeakMap<Database.Database, SqliteImpressionStatements>();

function sqliteStatements(db: Database.Database): SqliteImpressionStatements {
  let cached = sqliteCache.get(db);
  if (cached) return cached;
  const impression = db.prepare(SQLITE_SQL.impression);
  const item = db.prepare(SQLITE_SQL.item);
  const insertBatch = db.transaction((batch: readonly ImpressionRow[]) => {
    for (const row of batch) {
      const ts = Math.round(row.ts);
      impression.run(row.id, ts, row.route, row.strategy, row.modelVersion, row.variant, row.userId, row.sessionId, row.experimentId);
      for (const it of row.items) item.run(row.id, it.rank, it.itemId, finite(it.probability), finite(it.score), row.userId, row.sessionId, ts);
    }
  });
  cached = { insertBatch };
  sqliteCache.set(db, cached);
  return cached;
}

export interface PruneOptions {
  /** Rows one DELETE statement removes at most (default 1,000). */
  readonly rowsPerStatement?: number;
  /** Checked between statements: true stops the pruning where it is (a server shutting down). */
  readonly stop?: () => boolean;
}

export interface PruneResult {
  readonly impressions: number;
  readonly items: number;
  /** Attributions to the deleted impressions (src/data/attributions.ts), deleted with them. */
  readonly attributions: number;
  /** DELETE statements run (each its own transaction). */
  readonly statements: number;
}

/**
 * Deletes the impressions made before `before` (epoch ms), their items and the
 * attributions to them, in statements of at most `rowsPerStatement` rows, each
 * its own short transaction (on SQLite under the write lock, which event
 * ingestion gets between two statements), yielding to the event loop between
 * them. Attributions and items go first, so no cascade ever deletes more than
 * the bound. Replicas pruning at the same time only find less to delete.
 */
export async function pruneImpressions(store: Store, before: number, options: PruneOptions = {}): Promise<PruneResult> {
  const limit = Math.max(1, Math.floor(options.rowsPerStatement ?? 1_000));
  const floor = uuidV7Floor(before);
  const deleteSome = deleter(store);
  const done = { impressions: 0, items: 0, attributions: 0, statements: 0 };
  const counted = { attributions: 'attributions', impression_items: 'items', impressions: 'impressions' } as const;
  for (const table of ['attributions', 'impression_items', 'impressions'] as const) {
    for (;;) {
      if (options.stop?.()) return done;
      const deleted = await deleteSome(table, floor, limit);
      done.statements++;
      done[counted[table]] += deleted;
      if (deleted < limit) break;
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
  return done;
}

const PRUNE_SQL = {
  attributions:
    'DELETE FROM attributions WHERE (impression_id, event_key) IN (SELECT impression_id, event_key FROM attributions WHERE impression_id < $1 ORDER BY impression_id, event_key LIMIT $2)',
  impression_items:
    'DELETE FROM impression_items WHERE (impression_id, rank) IN (SELECT impression_id, rank FROM impression_items WHERE impression_id < $1 ORDER BY impression_id, rank LIMIT $2)',
  impressions: 'DELETE FROM impressions WHERE id IN (SELECT id FROM impressions WHERE id < $1 ORDER BY id LIMIT $2)',
} as const;

/** SQLite's statements, once: the main connection (an in-memory database) and the writer thread prepare the same ones. */
const SQLITE_SQL: ImpressionWriterSql = {
  impression: 'INSERT INTO impressions (id, ts, route, strategy, model_version, variant, user_id, session_id, experiment_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
  item: 'INSERT INTO impression_items (impression_id, rank, item_id, probability, score, user_id, session_id, ts) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
  prune: {
    attributions: PRUNE_SQL.attributions.replace(/\$\d/g, '?'),
    impression_items: PRUNE_SQL.impression_items.replace(/\$\d/g, '?'),
    impressions: PRUNE_SQL.impressions.replace(/\$\d/g, '?'),
  },
};

function deleter(store: Store): (table: keyof typeof PRUNE_SQL, floor: string, limit: number) => Promise<number> {
  if (store.provider === 'postgresql') {
    return async (table, floor, limit) => (await store.pool.query(PRUNE_SQL[table], [floor, limit])).rowCount ?? 0;
  }
  const prepare = (table: keyof typeof PRUNE_SQL): Database.Statement => store.db.prepare(SQLITE_SQL.prune[table]);
  const statements = { attributions: prepare('attributions'), impression_items: prepare('impression_items'), impressions: prepare('impressions') };
  return (table, floor, limit) =>
    withWriteLock(store, async () => {
      const changes = store.db.memory ? statements[table].run(floor, limit).changes : await impressionWriter(store.db, SQLITE_SQL).prune(table, floor, limit);
      walCheckpointer(store.db, (fn) => withWriteLock(store, fn))?.committed(changes);
      return changes;
    });
}

export interface ShownImpression {
  readonly impressionId: string;
  readonly rank: number;
  readonly ts: Date;
}

/**
 * The latest impression that showed internal item `itemId` to the owner (the
 * shop's user or session id) at or after `since` (epoch ms), or undefined: the
 * look-up event attribution makes, one descent of the owner's partial index.
 */
export async function latestImpression(store: Store, owner: { readonly userId: string } | { readonly sessionId: string }, itemId: number, since: number): Promise<ShownImpression | undefined> {
  const column = 'userId' in owner ? 'user_id' : 'session_id';
  const id = 'userId' in owner ? owner.userId : owner.sessionId;
  if (store.provider === 'postgresql') {
    const { rows } = await store.pool.query<{ impression_id: string; rank: number; ms: number }>(
      `SELECT impression_id, rank, (EXTRACT(EPOCH FROM ts) * 1000)::float8 AS ms FROM impression_items
        WHERE ${column} = $1 AND item_id = $2 AND ts >= ${pgTimestamp('$3::int8')}
        ORDER BY ts DESC, impression_id DESC LIMIT 1`,
      [id, itemId, Math.round(since)],
    );
    const row = rows[0];
    return row && { impressionId: row.impression_id, rank: row.rank, ts: new Date(Math.round(row.ms)) };
  }
  const row = store.db.prepare(latestImpressionSql(column)).get(id, itemId, Math.round(since)) as { impression_id: string; rank: number; ts: number } | undefined;
  return row && { impressionId: row.impression_id, rank: row.rank, ts: new Date(row.ts) };
}

/** SQLite's attribution look-up (exported for the test that checks its plan). */
export function latestImpressionSql(column: 'user_id' | 'session_id'): string {
  return `SELECT impression_id, rank, ts FROM impression_items WHERE ${column} = ? AND item_id = ? AND ts >= ? ORDER BY ts DESC, impression_id DESC LIMIT 1`;
}
