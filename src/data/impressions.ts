import type Database from 'better-sqlite3';
import { forEachPackedImpression, packImpressions, unpackImpressions, type PackedImpressions } from './packed-impressions.js';
import type { Store } from './store.js';
import { offLoopWrite } from './sqlite-writer.js';

/**
 * Impressions: what each recommendation response showed, stored so that a
 * later event can be attributed to the response that showed its item.
 *
 * One row per response in `impressions` (prisma/models.prisma, migrations
 * 0003_impressions and 0006_packed_impressions), keyed by its
 * recommendationId, a UUIDv7. The items shown are three JSON arrays on the
 * row, rank 1 first: internal item ids (as in `events`; null for an item the
 * catalogue did not know), probabilities and scores. The owner is the shop's
 * user or session id (a shopper may have no stored row yet); responses
 * without one (similar items) stay out of the owner indexes.
 *
 * Why one row: recording first wrote a row per item shown, with partial
 * indexes on (owner, item, ts) so that attribution was one index descent. That
 * was ~11 rows and ~21 B-tree inserts per response, and on 2 cores it cost
 * cached requests +2.3 ms of p99 at 1,000 req/s even on a thread of its own
 * (docs/serving-performance.md, "What recording impressions costs").
 * Attribution now reads the event owner's impressions in the window, newest
 * first, through a partial index on (owner, ts), and stops at the first that
 * showed the item: a shopper sees a few responses a day, so that is a short
 * scan, and it runs in the background (src/data/attributions.ts).
 *
 * The ids are time-ordered (UUIDv7: the first 48 bits are the millisecond
 * `ts` is taken from), so the primary key is in time order: inserts append,
 * and retention deletes "everything older than T" as a range of it.
 */

/** The routes that record impressions (the `route` column). */
export type ImpressionRoute = 'user_recommendations' | 'session_recommendations' | 'next_sequence' | 'rank' | 'similar_items';

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
  /**
   * The items shown, rank 1 first: internal item ids (items.id, from 1), 0 or null for an item the
   * catalogue did not know (stored as null). Plain or typed arrays (a packed batch's rows have typed ones).
   */
  readonly itemIds: ArrayLike<number | null>;
  /** Each item's probability; NaN or null where the route has none (similar items) or it was not finite (stored as null). */
  readonly probabilities: ArrayLike<number | null>;
  /** Each item's score: logit, log-probability (next-sequence), event count (popular) or cosine (similar items). */
  readonly scores: ArrayLike<number | null>;
  /** Ranks (1-based) of the items the exploration share put there; empty for most responses. */
  readonly explored?: readonly number[];
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

/**
 * Stores a batch of impressions in one transaction (all or none): rows, or a
 * batch packed as a server buffers them (src/data/packed-impressions.ts). On
 * SQLite it takes the connection's write lock (src/data/write-lock.ts), like
 * event ingestion, and the insert runs on the impression writer thread
 * (src/data/sqlite-writer.ts) meanwhile, so the event loop goes on; the
 * packed batch's buffer is transferred to the thread (it is detached here
 * afterwards). Returns the rows written.
 */
export async function writeImpressions(store: Store, impressions: readonly ImpressionRow[] | PackedImpressions): Promise<number> {
  const count = isPacked(impressions) ? impressions.count : impressions.length;
  if (count === 0) return 0;
  if (store.provider === 'sqlite') {
    const packed = isPacked(impressions) ? impressions : packImpressions(impressions);
    await offLoopWrite(store, { op: 'impressions', packed }, () => sqliteImpressionStatements(store.db).insertPacked.immediate(packed), () => count, [packed.buffer]);
    return count;
  }
  const batch = isPacked(impressions) ? unpackImpressions(impressions) : impressions;
  // One statement, so no transaction to manage.
  await store.pool.query(
    `INSERT INTO impressions (id, ts, route, strategy, model_version, variant, user_id, session_id, experiment_id, item_ids, probabilities, scores, explored)
     SELECT id, ${pgTimestamp('ms')}, route, strategy, model_version, variant, user_id, session_id, experiment_id, item_ids::jsonb, probabilities::jsonb, scores::jsonb, explored::jsonb
       FROM unnest($1::text[], $2::int8[], $3::text[], $4::text[], $5::int4[], $6::text[], $7::text[], $8::text[], $9::int4[], $10::text[], $11::text[], $12::text[], $13::text[])
         AS t (id, ms, route, strategy, model_version, variant, user_id, session_id, experiment_id, item_ids, probabilities, scores, explored)`,
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
      batch.map((r) => packedJson(r.itemIds, true)),
      batch.map((r) => packedJson(r.probabilities, false)),
      batch.map((r) => packedJson(r.scores, false)),
      batch.map((r) => exploredJson(r.explored)),
    ],
  );
  return count;
}

function isPacked(impressions: readonly ImpressionRow[] | PackedImpressions): impressions is PackedImpressions {
  return !Array.isArray(impressions);
}

/** PostgreSQL: epoch milliseconds (an int8 expression) as the UTC TIMESTAMP(3) the tables hold, exactly. */
export const pgTimestamp = (ms: string): string => `(TIMESTAMP '1970-01-01 00:00:00' + ${ms} * INTERVAL '1 millisecond')`;
/** PostgreSQL: a UTC TIMESTAMP(3) expression as epoch milliseconds (float8). */
export const pgMillis = (ts: string): string => `(EXTRACT(EPOCH FROM ${ts}) * 1000)::float8`;

export interface SqliteImpressionStatements {
  readonly insertPacked: Database.Transaction<(batch: PackedImpressions) => void>;
  /** (floor, limit): one bounded retention DELETE per table. */
  readonly prune: Readonly<Record<'attributions' | 'impressions', Database.Statement<[string, number]>>>;
}

const sqliteCache = new WeakMap<Database.Database, SqliteImpressionStatements>();

/** The impression statements of a connection: the main one (an in-memory database) or the writer thread's. */
export function sqliteImpressionStatements(db: Database.Database): SqliteImpressionStatements {
  let cached = sqliteCache.get(db);
  if (cached) return cached;
  const impression = db.prepare(
    'INSERT INTO impressions (id, ts, route, strategy, model_version, variant, user_id, session_id, experiment_id, item_ids, probabilities, scores, explored) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
  );
  const insertPacked = db.transaction((batch: PackedImpressions) => {
    forEachPackedImpression(batch, (row) => {
      impression.run(
        row.id,
        Math.round(row.ts),
        row.route,
        row.strategy,
        row.modelVersion,
        row.variant,
        row.userId,
        row.sessionId,
        row.experimentId,
        packedJson(row.itemIds, true),
        packedJson(row.probabilities, false),
        packedJson(row.scores, false),
        exploredJson(row.explored),
      );
    });
  });
  const prune = {
    attributions: db.prepare<[string, number]>(PRUNE_SQL.attributions.replace(/\$\d/g, '?')),
    impressions: db.prepare<[string, number]>(PRUNE_SQL.impressions.replace(/\$\d/g, '?')),
  };
  cached = { insertPacked, prune };
  sqliteCache.set(db, cached);
  return cached;
}

/** The explored ranks as the column holds them. */
function exploredJson(ranks: readonly number[] | undefined): string {
  return ranks === undefined || ranks.length === 0 ? '[]' : JSON.stringify(ranks);
}

/**
 * A row's array as the JSON the column holds: a plain array, null for a value that is not finite (and,
 * for item ids, for 0: no item).
 */
export function packedJson(values: ArrayLike<number | null>, itemIds: boolean): string {
  return JSON.stringify(itemIds ? Array.from(values, (x) => x || null) : Array.from(values));
}

export interface PruneOptions {
  /** Rows one DELETE statement removes at most (default 1,000). */
  readonly rowsPerStatement?: number;
  /** Checked between statements: true stops the pruning where it is (a server shutting down). */
  readonly stop?: () => boolean;
}

export interface PruneResult {
  readonly impressions: number;
  /** Attributions to the deleted impressions (src/data/attributions.ts), deleted with them. */
  readonly attributions: number;
  /** DELETE statements run (each its own transaction). */
  readonly statements: number;
}

/**
 * Deletes the impressions made before `before` (epoch ms) and the
 * attributions to them, in statements of at most `rowsPerStatement` rows, each
 * its own short transaction (on SQLite under the write lock, which event
 * ingestion gets between two statements), yielding to the event loop between
 * them. Attributions go first. Replicas pruning at the same time only find less to delete.
 */
export async function pruneImpressions(store: Store, before: number, options: PruneOptions = {}): Promise<PruneResult> {
  const limit = Math.max(1, Math.floor(options.rowsPerStatement ?? 1_000));
  const floor = uuidV7Floor(before);
  const deleteSome = deleter(store);
  const done = { impressions: 0, attributions: 0, statements: 0 };
  for (const table of ['attributions', 'impressions'] as const) {
    for (;;) {
      if (options.stop?.()) return done;
      const deleted = await deleteSome(table, floor, limit);
      done.statements++;
      done[table] += deleted;
      if (deleted < limit) break;
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
  return done;
}

const PRUNE_SQL = {
  attributions:
    'DELETE FROM attributions WHERE (impression_id, event_key) IN (SELECT impression_id, event_key FROM attributions WHERE impression_id < $1 ORDER BY impression_id, event_key LIMIT $2)',
  impressions: 'DELETE FROM impressions WHERE id IN (SELECT id FROM impressions WHERE id < $1 ORDER BY id LIMIT $2)',
} as const;

function deleter(store: Store): (table: keyof typeof PRUNE_SQL, floor: string, limit: number) => Promise<number> {
  if (store.provider === 'postgresql') {
    return async (table, floor, limit) => (await store.pool.query(PRUNE_SQL[table], [floor, limit])).rowCount ?? 0;
  }
  return (table, floor, limit) =>
    offLoopWrite(store, { op: 'prune', table, floor, limit }, () => sqliteImpressionStatements(store.db).prune[table].run(floor, limit).changes, (changes) => changes);
}

export interface ShownImpression {
  readonly impressionId: string;
  readonly rank: number;
  readonly ts: Date;
}

/**
 * The latest impression that showed internal item `itemId` to the owner (the
 * shop's user or session id) made in [since, until] (epoch ms), or undefined:
 * the look-up attribution by rule makes (src/data/attributions.ts), a scan of
 * the owner's impressions in the window, newest first, that stops at the
 * first showing the item.
 */
export async function latestImpression(
  store: Store,
  owner: { readonly userId: string } | { readonly sessionId: string },
  itemId: number,
  since: number,
  until = Number.MAX_SAFE_INTEGER,
): Promise<ShownImpression | undefined> {
  const column = 'userId' in owner ? 'user_id' : 'session_id';
  const id = 'userId' in owner ? owner.userId : owner.sessionId;
  if (store.provider === 'postgresql') {
    const { rows } = await store.pool.query<{ id: string; rank: number; ms: number }>(
      `SELECT i.id, s.rank, ${pgMillis('i.ts')} AS ms
         FROM impressions i CROSS JOIN LATERAL (${pgRankSql('i', '$2')}) s
        WHERE i.${column} = $1 AND i.ts >= ${pgTimestamp('$3::int8')} AND i.ts <= ${pgTimestamp('$4::int8')}
        ORDER BY i.ts DESC, i.id DESC LIMIT 1`,
      [id, itemId, Math.round(since), Math.round(Math.min(until, 8.64e15))],
    );
    const row = rows[0];
    return row && { impressionId: row.id, rank: row.rank, ts: new Date(Math.round(row.ms)) };
  }
  const row = store.db.prepare(latestImpressionSql(column)).get(id, itemId, Math.round(since), Math.round(Math.min(until, 8.64e15))) as SqliteShown | undefined;
  return row && { impressionId: row.impression_id, rank: row.rank, ts: new Date(row.ts) };
}

/** A row of latestImpressionSql. */
export interface SqliteShown {
  readonly impression_id: string;
  readonly rank: number;
  readonly ts: number;
}

/**
 * SQLite's look-up for latestImpression: (owner, itemId, since, until). The
 * owner's partial index gives the impressions in the window newest first
 * (its entries end with the primary key, so ts DESC, id DESC needs no sort),
 * and json_each finds the item's rank in each until one shows it.
 */
export function latestImpressionSql(column: 'user_id' | 'session_id'): string {
  return `SELECT i.id AS impression_id, j.key + 1 AS rank, i.ts FROM impressions i, json_each(i.item_ids) j
           WHERE i.${column} = ? AND j.value = ? AND i.ts >= ? AND i.ts <= ?
           ORDER BY i.ts DESC, i.id DESC LIMIT 1`;
}

/**
 * PostgreSQL: the rank (1-based) of internal item `item` (an SQL expression) in impression `alias`'s
 * item_ids, as a one-row subquery (no row: not shown).
 */
export function pgRankSql(alias: string, item: string): string {
  return `SELECT a.ord::int4 AS rank FROM jsonb_array_elements(${alias}.item_ids) WITH ORDINALITY AS a (v, ord) WHERE a.v = to_jsonb(${item}::int4) LIMIT 1`;
}
