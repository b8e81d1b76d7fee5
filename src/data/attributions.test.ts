import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeEachProvider, scratchStore } from '../../test/support/test-stores.js';
import { threadNames } from '../../test/support/thread-names.js';
import { EARLIEST_IMPRESSION_SQL, PG_CANDIDATES_SQL, attributeBatch, sqliteAttributionReads, sqliteAttributionWrites, attributionCursor, attributionMark, decide, markSettled, type AttributionBatch, type CandidateEvent } from './attributions.js';
import type { EventRow } from './import/event-row.js';
import { latestImpressionSql, pruneImpressions, writeImpressions, type ImpressionRoute, type ImpressionRow } from './impressions.js';
import { ingestEvents } from './ingest-events.js';
import { migrate } from './migrate.js';
import { sqliteReader, sqliteWriter } from './sqlite-writer.js';
import { openStore, type Store } from './store.js';

const T0 = Date.UTC(2026, 0, 1, 12);
const MIN = 60_000;
const HOUR = 3_600_000;
const WINDOW = HOUR;

/** A UUIDv7 of millisecond `ms`, with `n` in the random bits so ids of one millisecond differ. */
function idAt(ms: number, n = 0): string {
  const hex = ms.toString(16).padStart(12, '0');
  return `${hex.slice(0, 8)}-${hex.slice(8)}-7${(n >> 12).toString(16).padStart(3, '0')}-8${(n & 0xfff).toString(16).padStart(3, '0')}-${'0'.repeat(12)}`;
}

function impression(id: string, ms: number, route: ImpressionRoute, owner: { user?: string; session?: string }, itemIds: number[], modelVersion: number | null = 1, variant: string | null = null, experimentId: number | null = null): ImpressionRow {
  return {
    id,
    ts: ms,
    route,
    strategy: 'model',
    modelVersion,
    variant,
    userId: owner.user ?? null,
    sessionId: owner.session ?? null,
    experimentId,
    itemIds,
    probabilities: itemIds.map((_, i) => 0.5 / (i + 1)),
    scores: itemIds.map((_, i) => 3 - i),
  };
}

interface Ev {
  id: string;
  user?: string;
  session?: string;
  item: string;
  type?: string;
  ts: number;
  rid?: string;
  value?: number;
  quantity?: number;
}

const row = (e: Ev, line: number): EventRow => ({
  line,
  user: e.user ?? null,
  session: e.session ?? null,
  item: e.item,
  type: e.type ?? 'view',
  ts: e.ts,
  value: e.value ?? null,
  quantity: e.quantity ?? null,
  eventId: e.id,
  recommendationId: e.rid ?? null,
});

/** Runs the attributor's batches up to the current mark (settled at once: nothing else writes). */
async function attributeAll(store: Store, limit = 1_000, windowMs = WINDOW): Promise<AttributionBatch[]> {
  const mark = await attributionMark(store);
  expect(await markSettled(store, mark)).toBe(true);
  const batches: AttributionBatch[] = [];
  for (;;) {
    const batch = await attributeBatch(store, mark.eventKey, { windowMs, limit });
    if (batch === 'busy') throw new Error('busy');
    batches.push(batch);
    if (batch.cursor >= mark.eventKey) return batches;
  }
}

/** Moves the attribution cursor back to the first event (as if nothing had been attributed). */
async function resetCursor(store: Store): Promise<void> {
  if (store.provider === 'sqlite') store.db.prepare(`UPDATE attribution_cursors SET event_key = 0`).run();
  else await store.pool.query(`UPDATE attribution_cursors SET event_key = 0`);
}

function total(batches: readonly AttributionBatch[]): { read: number; explicit: number; rule: number; [reason: string]: number } {
  const sum = { read: 0, explicit: 0, rule: 0, no_impression: 0, unknown_recommendation: 0, item_not_shown: 0, expired: 0 };
  for (const b of batches) {
    sum.read += b.read;
    sum.explicit += b.attributed.explicit;
    sum.rule += b.attributed.rule;
    for (const [reason, n] of Object.entries(b.unattributed)) sum[reason as keyof typeof b.unattributed] += n;
  }
  return sum;
}

describe('the attribution rules', () => {
  const shown = { impressionId: idAt(T0), ts: T0, rank: 2, route: 'rank', strategy: 'model', modelVersion: 4, variant: 'b', experimentId: 7 };
  const event = (over: Partial<CandidateEvent>): CandidateEvent => ({ eventKey: 9, itemId: 3, typeId: 3, ts: T0 + MIN, value: 5, quantity: 2, recommendationId: null, explicit: undefined, rule: undefined, ...over });

  it('explicit: the named impression if it showed the item and is at most the window old; never the rule instead', () => {
    expect(decide(event({ recommendationId: shown.impressionId, explicit: shown }), WINDOW)).toEqual({
      eventKey: 9, impressionId: shown.impressionId, kind: 'explicit', rank: 2, itemId: 3, typeId: 3, value: 5, quantity: 2, ts: T0 + MIN, route: 'rank', strategy: 'model', modelVersion: 4, variant: 'b', experimentId: 7,
    });
    expect(decide(event({ recommendationId: shown.impressionId, explicit: shown, ts: T0 + WINDOW }), WINDOW)).toMatchObject({ kind: 'explicit' });
    expect(decide(event({ recommendationId: shown.impressionId, explicit: shown, ts: T0 + WINDOW + 1 }), WINDOW)).toBe('expired');
    expect(decide(event({ recommendationId: shown.impressionId, explicit: shown, ts: T0 - MIN }), WINDOW)).toMatchObject({ kind: 'explicit' });
    expect(decide(event({ recommendationId: shown.impressionId, explicit: { ...shown, rank: null } }), WINDOW)).toBe('item_not_shown');
    expect(decide(event({ recommendationId: idAt(T0, 5), explicit: undefined, rule: shown }), WINDOW)).toBe('unknown_recommendation');
  });

  it('by rule: the impression the store found, else none', () => {
    expect(decide(event({ rule: shown }), WINDOW)).toMatchObject({ kind: 'rule', impressionId: shown.impressionId, rank: 2 });
    expect(decide(event({}), WINDOW)).toBe('no_impression');
  });
});

describeEachProvider('attribution storage', (provider) => {
  let store: Store & { dispose(): Promise<void> };
  const item = new Map<string, number>();
  beforeAll(async () => {
    store = await scratchStore(provider);
    await store.prisma.item.createMany({ data: Array.from({ length: 9 }, (_, k) => ({ id: k + 1, externalId: `i${k + 1}` })) });
    for (let k = 1; k <= 9; k++) item.set(`i${k}`, k);
  });
  afterAll(() => store?.dispose());

  const A = idAt(T0, 1);
  const B = idAt(T0 + 10 * MIN, 2);
  const C = idAt(T0, 3);
  const D = idAt(T0, 4);
  const E = idAt(T0, 5);

  /** Event label → [kind, impression, rank] for the attributed ones, the reason for the others: worked out by hand from the rules. */
  const EXPECTED: Record<string, [string, string, number] | string> = {
    e1: ['rule', A, 1], // ann saw i1 in A 5 minutes earlier
    e2: ['rule', B, 1], // i2 was in A and B; B is the later one
    e3: ['rule', A, 2], // B came after this event
    e4: 'no_impression', // A is 2 h old: outside the 1 h window
    e5: ['rule', B, 2],
    e6: ['rule', C, 2], // anonymous: C was shown to the session
    e7: ['rule', C, 1], // a user's event in a session: the session's impression counts
    e8: 'no_impression', // i9 was never shown
    e9: 'no_impression', // D (similar items) has no owner
    e10: ['explicit', A, 2], // named; shown to someone else: the id decides
    e11: 'unknown_recommendation',
    e12: 'item_not_shown', // A did not show i4
    e13: 'expired', // A named 2 h later
    e14: ['explicit', B, 2], // stamped before B: accepted (clocks differ)
    e16: ['rule', E, 1], // exactly the window after E: inside
    e17: ['explicit', A, 1], // exactly the window after A: inside
    e18: 'no_impression', // 1 ms past the window
  };

  it('attributes a scripted scenario exactly as worked out by hand, and a replayed event counts once', async () => {
    await writeImpressions(store, [
      impression(A, T0, 'user_recommendations', { user: 'ann' }, [1, 2, 3], 1),
      impression(B, T0 + 10 * MIN, 'next_sequence', { user: 'ann' }, [2, 4], 2),
      impression(C, T0, 'session_recommendations', { session: 's-1' }, [5, 1], 1),
      impression(D, T0, 'similar_items', {}, [1], 1),
      impression(E, T0, 'rank', { user: 'bob', session: 's-2' }, [3], 2, 'b', 7),
    ]);
    const events: Ev[] = [
      { id: 'e1', user: 'ann', item: 'i1', ts: T0 + 5 * MIN },
      { id: 'e2', user: 'ann', item: 'i2', ts: T0 + 15 * MIN },
      { id: 'e3', user: 'ann', item: 'i2', ts: T0 + 5 * MIN },
      { id: 'e4', user: 'ann', item: 'i3', type: 'cart', ts: T0 + 2 * HOUR },
      { id: 'e5', user: 'ann', item: 'i4', type: 'purchase', ts: T0 + 20 * MIN, value: 10, quantity: 2 },
      { id: 'e6', session: 's-1', item: 'i1', ts: T0 + MIN },
      { id: 'e7', user: 'carl', session: 's-1', item: 'i5', ts: T0 + MIN },
      { id: 'e8', user: 'ann', item: 'i9', ts: T0 + MIN },
      { id: 'e9', user: 'dave', item: 'i1', ts: T0 + MIN },
      { id: 'e10', user: 'zed', item: 'i2', type: 'purchase', ts: T0 + 30 * MIN, rid: A, value: 7.5, quantity: 1 },
      { id: 'e11', user: 'ann', item: 'i1', ts: T0 + 31 * MIN, rid: idAt(T0, 999) },
      { id: 'e12', user: 'ann', item: 'i4', ts: T0 + 32 * MIN, rid: A },
      { id: 'e13', user: 'ann', item: 'i1', ts: T0 + 2 * HOUR + 1, rid: A },
      { id: 'e14', user: 'ann', item: 'i4', type: 'cart', ts: T0 + 9 * MIN, rid: B },
      { id: 'e16', user: 'bob', session: 's-2', item: 'i3', ts: T0 + WINDOW },
      { id: 'e17', user: 'erin', item: 'i1', ts: T0 + WINDOW, rid: A },
      { id: 'e18', user: 'bob', item: 'i3', ts: T0 + WINDOW + 1 },
    ];
    expect((await ingestEvents(store, events.map(row))).stored).toBe(17);
    // A replay (e5 again, under another event id: the content key makes it the same event) stores nothing.
    expect((await ingestEvents(store, [row({ ...events[4]!, id: 'e15' }, 1)])).duplicates).toBe(1);

    // Batches of 4: the cursor carries the walk from one transaction to the next.
    const batches = await attributeAll(store, 4);
    expect(batches.length).toBe(5);
    expect(total(batches)).toEqual({ read: 17, explicit: 3, rule: 7, no_impression: 4, unknown_recommendation: 1, item_not_shown: 1, expired: 1 });

    const stored = await store.prisma.attribution.findMany();
    const events2 = await store.prisma.event.findMany({ select: { id: true, eventId: true } });
    const label = new Map(events2.map((e) => [e.id, e.eventId!]));
    const actual = Object.fromEntries(stored.map((a) => [label.get(a.eventKey)!, [a.kind, a.impressionId, a.rank]]));
    const expected = Object.fromEntries(Object.entries(EXPECTED).filter(([, v]) => typeof v !== 'string'));
    expect(actual).toEqual(expected);

    // What the metrics of the next part read is copied in: the event's type, value, quantity, time, and the impression's route, model version, variant and experiment.
    const byLabel = (l: string) => stored.find((a) => label.get(a.eventKey) === l)!;
    expect(byLabel('e5')).toMatchObject({ typeId: 3, value: 10, quantity: 2, route: 'next_sequence', strategy: 'model', modelVersion: 2, variant: null, experimentId: null, itemId: 4 });
    expect(byLabel('e5').ts.getTime()).toBe(T0 + 20 * MIN);
    expect(byLabel('e16')).toMatchObject({ route: 'rank', modelVersion: 2, variant: 'b', experimentId: 7, typeId: 1, value: null, quantity: null });
    expect(byLabel('e10')).toMatchObject({ typeId: 3, value: 7.5, quantity: 1, route: 'user_recommendations' });

    // Replayed after attribution: nothing new stored, nothing new read or attributed.
    expect((await ingestEvents(store, events.map(row))).duplicates).toBe(17);
    expect(total(await attributeAll(store))).toMatchObject({ read: 0, explicit: 0, rule: 0 });
    expect(await store.prisma.attribution.count()).toBe(10);
  });

  it('is idempotent by the event: walking the same events again writes no second attribution', async () => {
    const before = await store.prisma.attribution.findMany({ orderBy: { eventKey: 'asc' } });
    expect(before.length).toBe(10);
    await resetCursor(store);
    expect(await attributionCursor(store)).toBe(0);
    const again = total(await attributeAll(store));
    // The batch decides the same again, but the unique event key keeps one row per event.
    expect(again).toMatchObject({ read: 17, explicit: 3, rule: 7 });
    expect(await store.prisma.attribution.findMany({ orderBy: { eventKey: 'asc' } })).toEqual(before);
  });

  it('attributes only events after the cursor and up to the mark', async () => {
    const cursor = await attributionCursor(store);
    await ingestEvents(store, [row({ id: 'late-1', user: 'ann', item: 'i1', ts: T0 + 50 * MIN }, 1)]);
    const mark = await attributionMark(store);
    await ingestEvents(store, [row({ id: 'late-2', user: 'ann', item: 'i2', ts: T0 + 50 * MIN }, 1)]);
    const batch = await attributeBatch(store, mark.eventKey, { windowMs: WINDOW, limit: 100 });
    expect(batch).toMatchObject({ read: 1, cursor: mark.eventKey, attributed: { rule: 1 } });
    expect(mark.eventKey).toBeGreaterThan(cursor);
    // Nothing after the mark was read: late-2 waits for the next one.
    expect(await attributeBatch(store, mark.eventKey, { windowMs: WINDOW, limit: 100 })).toMatchObject({ read: 0, cursor: mark.eventKey });
    expect(total(await attributeAll(store))).toMatchObject({ read: 1, rule: 1 });
  });

  it('retention deletes the attributions to pruned impressions with them', async () => {
    const attributions = await store.prisma.attribution.count();
    // Impressions A, C, D, E (T0) go; B (T0 + 10 min) stays with its attributions.
    const kept = await store.prisma.attribution.count({ where: { impressionId: B } });
    const result = await pruneImpressions(store, T0 + MIN, { rowsPerStatement: 3 });
    expect(result).toMatchObject({ impressions: 4, attributions: attributions - kept });
    expect(await store.prisma.attribution.count()).toBe(kept);
    expect(kept).toBe(4); // e2, e5, e14 and late-2
  });

  if (provider === 'sqlite') {
    it('looks a batch up on the reader thread and stores it on the writer thread, off the event loop', async () => {
      const db = (store as Extract<Store, { provider: 'sqlite' }>).db;
      expect(db.memory).toBe(false);
      await attributeAll(store);
      expect(sqliteReader(db).running).toBe(true);
      expect(sqliteWriter(db).running).toBe(true);
      // Named, so top -H and ps -L tell them apart (every thread of Node is `node` otherwise).
      expect(threadNames()).toEqual(expect.arrayContaining(['attnrec-reader', 'attnrec-writer']));
    });

    it('stores nothing from a batch read before another writer moved the cursor', async () => {
      const db = (store as Extract<Store, { provider: 'sqlite' }>).db;
      await attributeAll(store);
      await ingestEvents(store, [row({ id: 'raced-1', user: 'ann', item: 'i2', ts: T0 + 41 * MIN }, 1)]);
      const first = await attributionMark(store);
      const stale = sqliteAttributionReads(db).plan(first.eventKey, WINDOW, 100);
      expect(stale).toMatchObject({ read: 1, cursor: first.eventKey });
      // Another process on the same file reads and stores a later batch first.
      await ingestEvents(store, [row({ id: 'raced-2', user: 'ann', item: 'i2', ts: T0 + 42 * MIN }, 2)]);
      const second = await attributionMark(store);
      const before = await store.prisma.attribution.count();
      const racer = sqliteAttributionReads(db).plan(second.eventKey, WINDOW, 100);
      expect(racer).toMatchObject({ read: 2, cursor: second.eventKey });
      expect(sqliteAttributionWrites(db).commit(racer)).toBe(true);
      expect(sqliteAttributionWrites(db).commit(stale)).toBe(false);
      expect(await attributionCursor(store)).toBe(second.eventKey);
      expect(await store.prisma.attribution.count()).toBe(before + racer.rows.length);
    });

    it('looks impressions up through the owner indexes, and the earliest one through the primary key', () => {
      const db = (store as Extract<Store, { provider: 'sqlite' }>).db;
      const plan = (sql: string): string => (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all('x', 1, 0, 1) as { detail: string }[]).map((r) => r.detail).join('\n');
      expect(plan(latestImpressionSql('user_id'))).not.toMatch(/TEMP B-TREE/);
      expect(plan(latestImpressionSql('user_id'))).toMatch(/SEARCH i USING INDEX impressions_user_id_ts_idx \(user_id=\? AND ts>\? AND ts<\?\)/);
      expect(plan(latestImpressionSql('session_id'))).toMatch(/SEARCH i USING INDEX impressions_session_id_ts_idx \(session_id=\? AND ts>\? AND ts<\?\)/);
      // The earliest impression is the primary key's first row, not a sort of every impression.
      expect((db.prepare(`EXPLAIN QUERY PLAN ${EARLIEST_IMPRESSION_SQL}`).all() as { detail: string }[]).map((r) => r.detail)).toEqual(['SCAN impressions']);
    });
  }

  if (provider === 'postgresql') {
    it('reads a batch by the events primary key and looks impressions up through the owner indexes and primary keys', async () => {
      const client = await (store as Extract<Store, { provider: 'postgresql' }>).pool.connect();
      try {
        // The tables are tiny: forbid sequential scans so the plan shows which index could serve.
        await client.query('SET enable_seqscan = off');
        const { rows } = await client.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${PG_CANDIDATES_SQL}`, [0, 1e9, 1_000, WINDOW]);
        const plan = rows.map((r) => r['QUERY PLAN']).join('\n');
        expect(plan).toMatch(/Index Scan (using|on) events_pkey/);
        expect(plan).toMatch(/Index Scan Backward using impressions_user_id_ts_idx/);
        expect(plan).toMatch(/Index Scan Backward using impressions_session_id_ts_idx/);
        expect(plan).toMatch(/Index Scan using impressions_pkey on impressions/);
        expect(plan).not.toMatch(/Seq Scan on (impressions|events)\b/);
      } finally {
        client.release();
      }
    });

    it('advances only to a mark every transaction before it has finished: an event committed late is not skipped', async () => {
      const pool = (store as Extract<Store, { provider: 'postgresql' }>).pool;
      await attributeAll(store);
      // A writer as ingestion is: it has a transaction id (its staging table) before it takes an event id.
      const slow = new pg.Client({ connectionString: store.target.url });
      await slow.connect();
      try {
        await slow.query('BEGIN');
        await slow.query('CREATE TEMP TABLE held (x int) ON COMMIT DROP');
        await slow.query(`INSERT INTO events (user_id, item_id, type_id, ts) SELECT id, 4, 1, $1::timestamp FROM users WHERE external_id = 'ann'`, [new Date(T0 + 40 * MIN).toISOString()]);
        // A later event commits first, with a larger id.
        await ingestEvents(store, [row({ id: 'quick', user: 'ann', item: 'i2', ts: T0 + 40 * MIN }, 1)]);
        const mark = await attributionMark(store);
        expect(await markSettled(store, mark)).toBe(false);
        await slow.query('COMMIT');
        expect(await markSettled(store, mark)).toBe(true);
        expect(total([(await attributeBatch(store, mark.eventKey, { windowMs: WINDOW, limit: 100 })) as AttributionBatch])).toMatchObject({ read: 2, rule: 2 });
      } finally {
        await slow.end();
      }
      // Two replicas: while one holds the cursor, the other's batch answers 'busy'.
      const holder = await pool.connect();
      try {
        await holder.query('BEGIN');
        await holder.query(`SELECT 1 FROM attribution_cursors WHERE name = 'events' FOR UPDATE`);
        expect(await attributeBatch(store, Number.MAX_SAFE_INTEGER, { windowMs: WINDOW, limit: 100 })).toBe('busy');
        await holder.query('ROLLBACK');
      } finally {
        holder.release();
      }
    });
  }
});

describeEachProvider('events older than every impression (imported history)', (provider) => {
  let store: Store & { dispose(): Promise<void> };
  beforeAll(async () => {
    store = await scratchStore(provider);
    await store.prisma.item.createMany({ data: Array.from({ length: 4 }, (_, k) => ({ id: k + 1, externalId: `i${k + 1}` })) });
  });
  afterAll(() => store?.dispose());

  const A = idAt(T0, 1);
  const OLD = T0 - 10 * 24 * HOUR;
  // 19 imported events, one that names A (an explicit id is looked up whatever its time), 20 more, then 3 after A.
  const events: Ev[] = [
    ...Array.from({ length: 19 }, (_, k): Ev => ({ id: `old-${k}`, user: `u${k % 5}`, item: 'i1', ts: OLD + k * MIN })),
    { id: 'old-named', user: 'ann', item: 'i2', ts: OLD + 30 * MIN, rid: A },
    ...Array.from({ length: 20 }, (_, k): Ev => ({ id: `old-${19 + k}`, user: 'ann', item: 'i1', ts: OLD + (40 + k) * MIN })),
    ...Array.from({ length: 3 }, (_, k): Ev => ({ id: `live-${k}`, user: 'ann', item: `i${k + 1}`, ts: T0 + (k + 1) * MIN })),
  ];

  it('decides them as the look-ups would, and on SQLite passes each stretch of them in one batch', async () => {
    // In four batches, so the ids follow this order (a batch's rows are stored grouped by user).
    for (const [from, to] of [[0, 19], [19, 20], [20, 40], [40, 43]] as const) expect((await ingestEvents(store, events.slice(from, to).map(row))).stored).toBe(to - from);
    // No impression yet: nothing can be attributed, and the id A names is unknown.
    const before = await attributeAll(store, 4);
    expect(total(before)).toEqual({ read: 43, explicit: 0, rule: 0, no_impression: 42, unknown_recommendation: 1, item_not_shown: 0, expired: 0 });
    // The look-ups go 4 events a batch; the events before the named one need none (PostgreSQL decides in SQL, 4 a batch).
    expect(before[0]!.read).toBe(provider === 'sqlite' ? 19 : 4);

    await writeImpressions(store, [impression(A, T0, 'user_recommendations', { user: 'ann' }, [1, 2, 3])]);
    await resetCursor(store);
    const after = await attributeAll(store, 4);
    // The named event is A's (shown at rank 2, stamped before it: accepted); the 3 after A are the rule's; the other 39 are older than A.
    expect(total(after)).toEqual({ read: 43, explicit: 1, rule: 3, no_impression: 39, unknown_recommendation: 0, item_not_shown: 0, expired: 0 });
    expect(after[0]!.read).toBe(provider === 'sqlite' ? 19 : 4);
    const stored = await store.prisma.attribution.findMany({ orderBy: { eventKey: 'asc' } });
    expect(stored.map((a) => [a.kind, a.rank])).toEqual([['explicit', 2], ['rule', 1], ['rule', 2], ['rule', 3]]);
  });
});

describe('attribution on an in-memory SQLite store', () => {
  it('looks up and stores inline on the one connection (a thread cannot open it), with the same outcome', async () => {
    const store = openStore(':memory:');
    try {
      await migrate(store);
      // Prisma has a connection (and so an in-memory database) of its own: the raw connection is the store.
      const db = (store as Extract<Store, { provider: 'sqlite' }>).db;
      db.exec(`INSERT INTO items (id, external_id) VALUES (1, 'i1'), (2, 'i2')`);
      const shown = idAt(T0, 1);
      await writeImpressions(store, [impression(shown, T0, 'user_recommendations', { user: 'ann' }, [2, 1])]);
      await ingestEvents(store, [row({ id: 'm1', user: 'ann', item: 'i1', ts: T0 + MIN }, 1), row({ id: 'm2', user: 'ann', item: 'i2', ts: T0 + MIN, rid: shown }, 2)]);
      expect(total(await attributeAll(store))).toMatchObject({ read: 2, rule: 1, explicit: 1 });
      expect(db.prepare('SELECT kind, rank, impression_id AS impression FROM attributions ORDER BY event_key').all()).toEqual([
        { kind: 'rule', rank: 2, impression: shown },
        { kind: 'explicit', rank: 1, impression: shown },
      ]);
      expect(sqliteReader(db).running).toBe(false);
      expect(sqliteWriter(db).running).toBe(false);
    } finally {
      await store.close();
    }
  });
});
