import type Database from 'better-sqlite3';
import { latestImpressionSql, pgMillis, pgRankSql, pgTimestamp, type SqliteShown } from './impressions.js';
import { offLoopRead, offLoopWrite } from './sqlite-writer.js';
import type { Store } from './store.js';

/**
 * Attribution: which recommendation response, if any, a stored event follows
 * from. It runs off the request path: the server's attributor
 * (src/serve/attributor.ts) walks the events in `events.id` order from a
 * cursor (`attribution_cursors`) and, one transaction per batch, writes an
 * `attributions` row for each event it can attribute and advances the cursor.
 * Event ingestion does nothing more than store the event (with the
 * recommendationId it names, if any), so its cost is unchanged.
 *
 * An event is attributed
 * - explicitly when it names a recommendationId: to that impression, if the
 *   impression exists, showed the event's item, and the event is at most the
 *   window after it (an event stamped before its impression is accepted: the
 *   id says which response it follows, and the shop's clock may differ from
 *   ours). Otherwise it stays unattributed (unknown_recommendation,
 *   item_not_shown, expired); an explicit id is never replaced by the rule.
 * - by rule otherwise: to the latest impression that showed the event's item to
 *   the event's user or session (the shop's ids, as impressions keep them) at
 *   most the window before the event and not after it (no_impression when
 *   there is none): a scan of each owner's impressions in the window, newest
 *   first, through the owner's partial index on impressions (latestImpression
 *   in src/data/impressions.ts), that stops at the first showing the item.
 *
 * Idempotent: an event is stored once (event id or content key), the cursor
 * passes it once, and `attributions.event_key` (events.id) is unique, so a
 * replayed event, a batch retried after a failure or two replicas never
 * count an event twice.
 *
 * Which events may the cursor pass? On SQLite every committed id is final (one
 * writer at a time). On PostgreSQL ids come from a sequence and transactions
 * commit out of order: a transaction in flight may still commit ids below one
 * already visible. So the attributor advances only to a *settled mark*: the
 * largest id visible at some moment, together with the transactions of this
 * database that were writing then (pg_stat_activity.backend_xid, read after
 * the statement's snapshot); the mark is settled once none of them is still
 * running. A transaction holding a smaller id that was not yet visible had its
 * transaction id before the mark (attnrec's event writers create their staging
 * table, which takes one, before they take event ids), so it is in that list,
 * and once it has ended its events are visible or rolled back. Transactions
 * in other databases of the cluster do not hold the cursor back; a long write
 * transaction in this one delays attribution (never loses it). The attributor also waits a few seconds before
 * using a mark (src/serve/attributor.ts), so that the impressions of responses
 * just answered, which are written in batches within a second, are stored
 * before the events that follow them are attributed.
 */

export type AttributionKind = 'explicit' | 'rule';
export const UNATTRIBUTED_REASONS = ['no_impression', 'unknown_recommendation', 'item_not_shown', 'expired'] as const;
/**
 * Why an event has no attribution: no_impression (no recommendationId, and no impression showed its item to
 * its user or session within the window), unknown_recommendation (the id it names was never recorded, or has
 * been pruned), item_not_shown (that response did not show the event's item), expired (the event came more
 * than the window after that response).
 */
export type UnattributedReason = (typeof UNATTRIBUTED_REASONS)[number];

export interface AttributionRow {
  /** events.id */
  readonly eventKey: number;
  readonly impressionId: string;
  readonly kind: AttributionKind;
  readonly rank: number;
  readonly itemId: number;
  readonly typeId: number;
  readonly value: number | null;
  readonly quantity: number | null;
  /** The event's time, epoch ms. */
  readonly ts: number;
  readonly route: string;
  readonly strategy: string;
  readonly modelVersion: number | null;
  readonly variant: string | null;
  readonly experimentId: number | null;
}

/** What the store found about one impression: its time and what the attribution copies from it. */
export interface ImpressionFacts {
  readonly impressionId: string;
  /** epoch ms */
  readonly ts: number;
  /** The event's item's rank in it; null: it did not show the item. */
  readonly rank: number | null;
  readonly route: string;
  readonly strategy: string;
  readonly modelVersion: number | null;
  readonly variant: string | null;
  readonly experimentId: number | null;
}

/** One event as the attributor reads it, with the impressions the store found for it. */
export interface CandidateEvent {
  readonly eventKey: number;
  readonly itemId: number;
  readonly typeId: number;
  /** epoch ms */
  readonly ts: number;
  readonly value: number | null;
  readonly quantity: number | null;
  readonly recommendationId: string | null;
  /** The impression recommendationId names (undefined: unknown), when there is one. */
  readonly explicit: ImpressionFacts | undefined;
  /** Without a recommendationId: the latest impression that showed the item to the event's owner within the window. */
  readonly rule: ImpressionFacts | undefined;
}

/** The attribution rules (the module comment), given what the store found; pure. */
export function decide(event: CandidateEvent, windowMs: number): AttributionRow | UnattributedReason {
  if (event.recommendationId !== null) {
    const shown = event.explicit;
    if (!shown) return 'unknown_recommendation';
    if (shown.rank === null) return 'item_not_shown';
    if (event.ts - shown.ts > windowMs) return 'expired';
    return attribution(event, shown, 'explicit');
  }
  const shown = event.rule;
  if (!shown || shown.rank === null) return 'no_impression';
  return attribution(event, shown, 'rule');
}

function attribution(event: CandidateEvent, shown: ImpressionFacts, kind: AttributionKind): AttributionRow {
  return {
    eventKey: event.eventKey,
    impressionId: shown.impressionId,
    kind,
    rank: shown.rank!,
    itemId: event.itemId,
    typeId: event.typeId,
    value: event.value,
    quantity: event.quantity,
    ts: event.ts,
    route: shown.route,
    strategy: shown.strategy,
    modelVersion: shown.modelVersion,
    variant: shown.variant,
    experimentId: shown.experimentId,
  };
}

/** A point the cursor may advance to once it is settled (see the module comment). */
export interface AttributionMark {
  /** The largest events.id visible when the mark was taken (0: no events). */
  readonly eventKey: number;
  /** PostgreSQL: the ids of this database's transactions that were writing then (as text); empty on SQLite. */
  readonly writers: readonly string[];
}

export async function attributionMark(store: Store): Promise<AttributionMark> {
  if (store.provider === 'sqlite') {
    return { eventKey: (store.db.prepare('SELECT COALESCE(MAX(id), 0) FROM events').pluck().get() as number) ?? 0, writers: [] };
  }
  // One statement: its snapshot (MAX) is taken before pg_stat_activity is read.
  const { rows } = await store.pool.query<{ key: number; writers: string[] }>(
    `SELECT COALESCE((SELECT MAX(id) FROM events), 0)::float8 AS key,
            ARRAY(SELECT backend_xid::text FROM pg_stat_activity
                   WHERE datname = current_database() AND backend_xid IS NOT NULL AND pid <> pg_backend_pid()) AS writers`,
  );
  return { eventKey: rows[0]!.key, writers: rows[0]!.writers };
}

/** Whether every event id up to the mark is final: committed or never to be (always, on SQLite). */
export async function markSettled(store: Store, mark: AttributionMark): Promise<boolean> {
  if (store.provider === 'sqlite' || mark.writers.length === 0) return true;
  const { rows } = await store.pool.query<{ settled: boolean }>(
    'SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND backend_xid::text = ANY($1::text[])) AS settled',
    [mark.writers],
  );
  return rows[0]!.settled;
}

/** Where the cursor stands (events.id of the last event read). */
export async function attributionCursor(store: Store): Promise<number> {
  if (store.provider === 'sqlite') return (store.db.prepare(`SELECT event_key FROM attribution_cursors WHERE name = 'events'`).pluck().get() as number | undefined) ?? 0;
  const { rows } = await store.pool.query<{ key: number }>(`SELECT event_key::float8 AS key FROM attribution_cursors WHERE name = 'events'`);
  return rows[0]?.key ?? 0;
}

export interface AttributionBatch {
  /** Events read (each attributed or not). */
  readonly read: number;
  /** The cursor after the batch. */
  readonly cursor: number;
  /** Attributions written, by kind. */
  readonly attributed: Record<AttributionKind, number>;
  readonly unattributed: Record<UnattributedReason, number>;
  /** The attributions written. */
  readonly rows: readonly AttributionRow[];
}

export interface AttributeOptions {
  /** The attribution window, ms. */
  readonly windowMs: number;
  /** Events read at most. */
  readonly limit: number;
}

/**
 * Reads the next events after the cursor, up to `upTo` (a settled mark's
 * eventKey) and at most `limit` of them, and in one transaction writes their
 * attributions and advances the cursor past them. On PostgreSQL the cursor
 * row is locked for the transaction; 'busy' means another replica holds it
 * (it is doing this work). On SQLite it runs under the connection's write lock,
 * on the writer thread.
 */
export async function attributeBatch(store: Store, upTo: number, options: AttributeOptions): Promise<AttributionBatch | 'busy'> {
  const limit = Math.max(1, Math.floor(options.limit));
  if (store.provider === 'sqlite') {
    // The look-ups scan shoppers' impressions: on the reader thread, without the write lock, so event
    // ingestion never waits for them; only the short commit takes the lock (src/data/sqlite-writer.ts).
    const plan = await offLoopRead(store, { op: 'attribution-read', upTo, windowMs: options.windowMs, limit }, () =>
      sqliteAttributionReads(store.db).plan(upTo, options.windowMs, limit),
    );
    if (plan.read === 0 && plan.cursor === plan.from) return plan;
    const stored = await offLoopWrite(
      store,
      { op: 'attribution-commit', plan },
      () => sqliteAttributionWrites(store.db).commit(plan),
      (done) => (done ? plan.rows.length + 1 : 0),
    );
    return stored ? plan : 'busy';
  }
  const client = await store.pool.connect();
  let broken: Error | undefined;
  try {
    await client.query('BEGIN');
    const locked = await client.query<{ key: number }>(`SELECT event_key::float8 AS key FROM attribution_cursors WHERE name = 'events' FOR UPDATE SKIP LOCKED`);
    const cursor = locked.rows[0]?.key;
    if (cursor === undefined) {
      await client.query('ROLLBACK');
      return 'busy';
    }
    if (cursor >= upTo) {
      await client.query('COMMIT');
      return summary([], cursor, []);
    }
    const { rows } = await client.query<PgCandidate>(PG_CANDIDATES_SQL, [cursor, upTo, limit, options.windowMs]);
    const candidates = rows.map(fromPg);
    const decided = candidates.map((c) => decide(c, options.windowMs));
    const attributions = decided.filter((d): d is AttributionRow => typeof d !== 'string');
    if (attributions.length > 0) {
      const a = attributions;
      await client.query(PG_INSERT_SQL, [
        a.map((r) => r.impressionId),
        a.map((r) => r.eventKey),
        a.map((r) => r.kind),
        a.map((r) => r.rank),
        a.map((r) => r.itemId),
        a.map((r) => r.typeId),
        a.map((r) => r.value),
        a.map((r) => r.quantity),
        a.map((r) => Math.round(r.ts)),
        a.map((r) => r.route),
        a.map((r) => r.strategy),
        a.map((r) => r.modelVersion),
        a.map((r) => r.variant),
        a.map((r) => r.experimentId),
      ]);
    }
    // Fewer than asked: every event up to the mark has been read.
    const next = candidates.length < limit ? upTo : candidates[candidates.length - 1]!.eventKey;
    await client.query(`UPDATE attribution_cursors SET event_key = $1, updated_at = now() AT TIME ZONE 'UTC' WHERE name = 'events'`, [next]);
    await client.query('COMMIT');
    return summary(candidates, next, decided);
  } catch (error) {
    broken = error as Error;
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  } finally {
    // A client whose statement failed may have lost its connection: do not hand it to the next query.
    client.release(broken);
  }
}

/** A batch's counts from its decisions; `passed`: events decided no_impression without look-ups (sqliteUnattributablePrefix). */
function summary(candidates: readonly CandidateEvent[], cursor: number, decided: readonly (AttributionRow | UnattributedReason)[], passed = 0): AttributionBatch {
  const attributed = { explicit: 0, rule: 0 };
  const unattributed = { no_impression: passed, unknown_recommendation: 0, item_not_shown: 0, expired: 0 };
  for (const d of decided) {
    if (typeof d === 'string') unattributed[d]++;
    else attributed[d.kind]++;
  }
  return { read: candidates.length + passed, cursor, attributed, unattributed, rows: decided.filter((d): d is AttributionRow => typeof d !== 'string') };
}


/**
 * A batch of events with, per event, the impression its recommendationId names (x, with the event's item's
 * rank in it) or the latest one that showed its item to its user or session within the window (r: each
 * owner's impressions in the window scanned newest first, through the owner's partial index, until one
 * shows the item; the later of the two kept). $1 cursor, $2 mark, $3 limit, $4 window (ms).
 */
export const PG_CANDIDATES_SQL = `
SELECT e.id::float8 AS key, e.item_id, e.type_id, ${pgMillis('e.ts')} AS ms, e.value, e.quantity, e.recommendation_id AS rid,
       x.id AS x_id, ${pgMillis('x.ts')} AS x_ms, (${pgRankSql('x', 'e.item_id')}) AS x_rank, x.route AS x_route, x.strategy AS x_strategy, x.model_version AS x_model_version, x.variant AS x_variant, x.experiment_id AS x_experiment_id,
       r.id AS r_id, ${pgMillis('r.ts')} AS r_ms, r.rank AS r_rank, r.route AS r_route, r.strategy AS r_strategy, r.model_version AS r_model_version, r.variant AS r_variant, r.experiment_id AS r_experiment_id
  FROM (SELECT * FROM events WHERE id > $1 AND id <= $2 ORDER BY id LIMIT $3) e
  LEFT JOIN users u ON u.id = e.user_id
  LEFT JOIN sessions s ON s.id = e.session_id
  LEFT JOIN impressions x ON x.id = e.recommendation_id
  LEFT JOIN LATERAL (
    SELECT c.* FROM (
      (SELECT i.id, i.ts, i.route, i.strategy, i.model_version, i.variant, i.experiment_id, p.rank
         FROM impressions i CROSS JOIN LATERAL (${pgRankSql('i', 'e.item_id')}) p
        WHERE e.recommendation_id IS NULL AND i.user_id = u.external_id
          AND i.ts >= e.ts - $4::float8 * INTERVAL '1 millisecond' AND i.ts <= e.ts
        ORDER BY i.ts DESC, i.id DESC LIMIT 1)
      UNION ALL
      (SELECT i.id, i.ts, i.route, i.strategy, i.model_version, i.variant, i.experiment_id, p.rank
         FROM impressions i CROSS JOIN LATERAL (${pgRankSql('i', 'e.item_id')}) p
        WHERE e.recommendation_id IS NULL AND i.session_id = s.external_id
          AND i.ts >= e.ts - $4::float8 * INTERVAL '1 millisecond' AND i.ts <= e.ts
        ORDER BY i.ts DESC, i.id DESC LIMIT 1)
    ) c ORDER BY c.ts DESC, c.id DESC LIMIT 1
  ) r ON true
 ORDER BY e.id`;

const PG_INSERT_SQL = `
INSERT INTO attributions (impression_id, event_key, kind, rank, item_id, type_id, value, quantity, ts, route, strategy, model_version, variant, experiment_id)
SELECT impression_id, event_key, kind, rank, item_id, type_id, value, quantity, ${pgTimestamp('ms')}, route, strategy, model_version, variant, experiment_id
  FROM unnest($1::text[], $2::int8[], $3::text[], $4::int4[], $5::int4[], $6::int4[], $7::float8[], $8::int4[], $9::int8[], $10::text[], $11::text[], $12::int4[], $13::text[], $14::int4[])
    AS t (impression_id, event_key, kind, rank, item_id, type_id, value, quantity, ms, route, strategy, model_version, variant, experiment_id)
ON CONFLICT DO NOTHING`;

interface PgCandidate {
  key: number;
  item_id: number;
  type_id: number;
  ms: number;
  value: number | null;
  quantity: number | null;
  rid: string | null;
  x_id: string | null;
  x_ms: number | null;
  x_rank: number | null;
  x_route: string | null;
  x_strategy: string | null;
  x_model_version: number | null;
  x_variant: string | null;
  x_experiment_id: number | null;
  r_id: string | null;
  r_ms: number | null;
  r_rank: number | null;
  r_route: string | null;
  r_strategy: string | null;
  r_model_version: number | null;
  r_variant: string | null;
  r_experiment_id: number | null;
}

function fromPg(row: PgCandidate): CandidateEvent {
  return {
    eventKey: row.key,
    itemId: row.item_id,
    typeId: row.type_id,
    ts: Math.round(row.ms),
    value: row.value,
    quantity: row.quantity,
    recommendationId: row.rid,
    explicit:
      row.x_id === null
        ? undefined
        : { impressionId: row.x_id, ts: Math.round(row.x_ms!), rank: row.x_rank, route: row.x_route!, strategy: row.x_strategy!, modelVersion: row.x_model_version, variant: row.x_variant, experimentId: row.x_experiment_id },
    rule:
      row.r_id === null
        ? undefined
        : { impressionId: row.r_id, ts: Math.round(row.r_ms!), rank: row.r_rank, route: row.r_route!, strategy: row.r_strategy!, modelVersion: row.r_model_version, variant: row.r_variant, experimentId: row.r_experiment_id },
  };
}

interface SqliteEvent {
  key: number;
  item_id: number;
  type_id: number;
  ts: number;
  value: number | null;
  quantity: number | null;
  rid: string | null;
  user: string | null;
  session: string | null;
}

interface SqliteImpression {
  ts: number;
  /** The items shown, parsed from item_ids. */
  items: readonly (number | null)[];
  route: string;
  strategy: string;
  model_version: number | null;
  variant: string | null;
  experiment_id: number | null;
}

/**
 * An attribution batch worked out on SQLite's reader thread, to be stored by one short write transaction:
 * the batch, and the cursor it was read from (the commit stores nothing if the cursor has moved since).
 */
export interface AttributionPlan extends AttributionBatch {
  readonly from: number;
}

export interface SqliteAttributionReads {
  /** (upTo, windowMs, limit): the next events after the cursor, looked up and decided, in one read transaction. */
  readonly plan: (upTo: number, windowMs: number, limit: number) => AttributionPlan;
}

export interface SqliteAttributionWrites {
  /** Stores a plan in one IMMEDIATE transaction if the cursor is still where the plan was read; whether it did. */
  readonly commit: (plan: AttributionPlan) => boolean;
}

const sqliteReads = new WeakMap<Database.Database, SqliteAttributionReads>();
const sqliteWrites = new WeakMap<Database.Database, SqliteAttributionWrites>();
const CURSOR_SQL = `SELECT event_key FROM attribution_cursors WHERE name = 'events'`;

/** The attribution look-ups of a connection: the reader thread's, or the main one's (an in-memory database). */
export function sqliteAttributionReads(db: Database.Database): SqliteAttributionReads {
  let cached = sqliteReads.get(db);
  if (cached) return cached;
  const cursor = db.prepare(CURSOR_SQL).pluck();
  const events = db.prepare(
    `SELECT e.id AS key, e.item_id, e.type_id, e.ts, e.value, e.quantity, e.recommendation_id AS rid, u.external_id AS user, s.external_id AS session
       FROM events e LEFT JOIN users u ON u.id = e.user_id LEFT JOIN sessions s ON s.id = e.session_id
      WHERE e.id > ? AND e.id <= ? ORDER BY e.id LIMIT ?`,
  );
  const impression = db.prepare('SELECT ts, route, strategy, model_version, variant, experiment_id, item_ids FROM impressions WHERE id = ?');
  const byUser = db.prepare(latestImpressionSql('user_id'));
  const bySession = db.prepare(latestImpressionSql('session_id'));
  const skip = sqliteUnattributablePrefix(db);

  // One read transaction: every look-up of the batch sees the same snapshot.
  const plan = db.transaction((upTo: number, windowMs: number, limit: number): AttributionPlan => {
    const from = (cursor.get() as number | undefined) ?? 0;
    if (from >= upTo) return { ...summary([], from, []), from };
    const skipped = skip(from, upTo, limit * SKIP_BATCHES);
    if (skipped) return { ...summary([], skipped.cursor, [], skipped.events), from };
    // Impressions looked up in this batch, by id (a busy shopper's events often follow one response).
    const facts = new Map<string, SqliteImpression | undefined>();
    const impressionFacts = (id: string): SqliteImpression | undefined => {
      if (!facts.has(id)) {
        const row = impression.get(id) as (Omit<SqliteImpression, 'items'> & { item_ids: string }) | undefined;
        facts.set(id, row && { ...row, items: JSON.parse(row.item_ids) as (number | null)[] });
      }
      return facts.get(id);
    };
    const candidates: CandidateEvent[] = [];
    for (const e of events.all(from, upTo, limit) as SqliteEvent[]) {
      let explicit: ImpressionFacts | undefined;
      let rule: ImpressionFacts | undefined;
      if (e.rid !== null) {
        const shown = impressionFacts(e.rid);
        const at = shown ? shown.items.indexOf(e.item_id) : -1;
        if (shown) explicit = { impressionId: e.rid, ts: shown.ts, rank: at < 0 ? null : at + 1, route: shown.route, strategy: shown.strategy, modelVersion: shown.model_version, variant: shown.variant, experimentId: shown.experiment_id };
      } else {
        const since = e.ts - windowMs;
        const u = e.user === null ? undefined : (byUser.get(e.user, e.item_id, since, e.ts) as SqliteShown | undefined);
        const s = e.session === null ? undefined : (bySession.get(e.session, e.item_id, since, e.ts) as SqliteShown | undefined);
        const latest = !u ? s : !s ? u : s.ts > u.ts || (s.ts === u.ts && s.impression_id > u.impression_id) ? s : u;
        const shown = latest && impressionFacts(latest.impression_id);
        if (latest && shown) rule = { impressionId: latest.impression_id, ts: latest.ts, rank: latest.rank, route: shown.route, strategy: shown.strategy, modelVersion: shown.model_version, variant: shown.variant, experimentId: shown.experiment_id };
      }
      candidates.push({ eventKey: e.key, itemId: e.item_id, typeId: e.type_id, ts: e.ts, value: e.value, quantity: e.quantity, recommendationId: e.rid, explicit, rule });
    }
    const decided = candidates.map((c) => decide(c, windowMs));
    const next = candidates.length < limit ? upTo : candidates[candidates.length - 1]!.eventKey;
    return { ...summary(candidates, next, decided), from };
  });
  cached = { plan: (upTo, windowMs, limit) => plan.deferred(upTo, windowMs, limit) };
  sqliteReads.set(db, cached);
  return cached;
}

/**
 * A stretch of unattributable events is passed in one plan of up to this many batches' events: 25,000 on
 * SQLite, ~7 ms of range scans on the reader thread (the serve benchmark's 287,107 imported events in 12
 * plans and 76 ms, against 58 plans and 77 ms at 5,000: each plan is also a round trip through the event
 * loop and a commit of the cursor on the writer thread).
 */
const SKIP_BATCHES = 100;

/** The earliest impression's time: the first row of the primary key (an impression's time is its UUIDv7 id's). */
export const EARLIEST_IMPRESSION_SQL = 'SELECT ts FROM impressions ORDER BY id LIMIT 1';

/**
 * (from, upTo, most): the events right after the cursor that no impression can be attributed to, when
 * there are any: at most `most`, counted (`events`), and the cursor past them. Undefined when the next
 * event may have an attribution. Such an event names no recommendationId and is older than every
 * impression stored (the rule looks for impressions at most the window before the event and not after
 * it), so the look-ups would find nothing: the decision is no_impression, as they would make it. The
 * events a shop imports before its first recommendations are all of this kind, and a server that starts
 * on such a store walked each of them through the look-ups (~8 µs an event on the reader thread; 287,107
 * on the serve benchmark's store took its first ~5 s, during the first requests after a start:
 * docs/serving-performance.md, "Imported events the attributor passes"); here they cost a range scan.
 *
 * The earliest impression is the one with the smallest id: an impression's time is its id's (a UUIDv7,
 * ImpressionRow.ts), which retention's range deletes rely on too. With no impression at all, every event
 * without a recommendationId is unattributable.
 */
function sqliteUnattributablePrefix(db: Database.Database): (from: number, upTo: number, most: number) => { readonly events: number; readonly cursor: number } | undefined {
  const earliest = db.prepare(EARLIEST_IMPRESSION_SQL).pluck();
  const next = db.prepare('SELECT ts, recommendation_id AS rid FROM events WHERE id > ? AND id <= ? ORDER BY id LIMIT 1');
  // The id of the `most`-th event after the cursor (or the mark, when fewer come before it): the stretch's end at most.
  const end = db.prepare('SELECT id FROM events WHERE id > ? AND id <= ? ORDER BY id LIMIT 1 OFFSET ?').pluck();
  const firstToLookUp = db.prepare('SELECT id FROM events WHERE id > ? AND id <= ? AND (ts >= ? OR recommendation_id IS NOT NULL) ORDER BY id LIMIT 1').pluck();
  const count = db.prepare('SELECT COUNT(*) FROM events WHERE id > ? AND id <= ?').pluck();
  return (from, upTo, most) => {
    const floor = (earliest.get() as number | undefined) ?? Number.MAX_SAFE_INTEGER;
    // The usual case, live events: the next one may have an attribution, and that is all it costs to know.
    const first = next.get(from, upTo) as { ts: number; rid: string | null } | undefined;
    if (!first || first.rid !== null || first.ts >= floor) return undefined;
    const last = (end.get(from, upTo, most - 1) as number | undefined) ?? upTo;
    const lookUp = firstToLookUp.get(from, last, floor) as number | undefined;
    const cursor = lookUp === undefined ? last : lookUp - 1;
    return { events: count.get(from, cursor) as number, cursor };
  };
}

/** The attribution writes of a connection: the writer thread's, or the main one's (an in-memory database). */
export function sqliteAttributionWrites(db: Database.Database): SqliteAttributionWrites {
  let cached = sqliteWrites.get(db);
  if (cached) return cached;
  const cursor = db.prepare(CURSOR_SQL).pluck();
  const insert = db.prepare(
    `INSERT INTO attributions (impression_id, event_key, kind, rank, item_id, type_id, value, quantity, ts, route, strategy, model_version, variant, experiment_id)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
  );
  const advance = db.prepare(`UPDATE attribution_cursors SET event_key = ?, updated_at = ? WHERE name = 'events'`);
  const commit = db.transaction((plan: AttributionPlan): boolean => {
    // Another process on the same file may have stored these events' batch meanwhile.
    if (((cursor.get() as number | undefined) ?? 0) !== plan.from) return false;
    for (const d of plan.rows) insert.run(d.impressionId, d.eventKey, d.kind, d.rank, d.itemId, d.typeId, d.value, d.quantity, Math.round(d.ts), d.route, d.strategy, d.modelVersion, d.variant, d.experimentId);
    advance.run(plan.cursor, Date.now());
    return true;
  });
  cached = { commit: (plan) => commit.immediate(plan) };
  sqliteWrites.set(db, cached);
  return cached;
}
