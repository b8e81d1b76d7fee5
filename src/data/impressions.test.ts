import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeEachProvider, scratchStore } from '../../test/support/test-stores.js';
import { latestImpression, latestImpressionSql, pruneImpressions, uuidV7Floor, uuidV7Millis, writeImpressions, type ImpressionRow } from './impressions.js';
import type { Store } from './store.js';

const BASE = Date.UTC(2026, 0, 1);
const DAY = 86_400_000;

/** A UUIDv7 of millisecond `ms`, with `n` in the random bits so ids of one millisecond differ. */
function idAt(ms: number, n = 0): string {
  const hex = ms.toString(16).padStart(12, '0');
  return `${hex.slice(0, 8)}-${hex.slice(8)}-7${(n >> 12).toString(16).padStart(3, '0')}-8${(n & 0xfff).toString(16).padStart(3, '0')}-${'0'.repeat(12)}`;
}

function impression(ms: number, n: number, owner: { user?: string; session?: string }, itemIds: number[]): ImpressionRow {
  return {
    id: idAt(ms, n),
    ts: ms,
    route: owner.user ? 'user_recommendations' : owner.session ? 'session_recommendations' : 'similar_items',
    strategy: 'model',
    modelVersion: 3,
    experimentId: null,
    variant: null,
    userId: owner.user ?? null,
    sessionId: owner.session ?? null,
    itemIds,
    probabilities: itemIds.map((_, i) => 1 / (i + 2)),
    scores: itemIds.map((_, i) => 5 - i),
  };
}

describe('UUIDv7 time', () => {
  it('reads the millisecond from an id and makes the floor every later id sorts above', () => {
    const ms = BASE + 123;
    expect(uuidV7Millis(idAt(ms, 99))).toBe(ms);
    expect(uuidV7Millis(uuidV7Floor(ms))).toBe(ms);
    expect(idAt(ms - 1, 0xffffff) < uuidV7Floor(ms)).toBe(true);
    expect(idAt(ms, 0) >= uuidV7Floor(ms)).toBe(true);
  });
});

describeEachProvider('impression storage', (provider) => {
  let store: Store & { dispose(): Promise<void> };
  beforeAll(async () => {
    store = await scratchStore(provider);
    await store.prisma.item.createMany({ data: Array.from({ length: 6 }, (_, k) => ({ id: k + 1, externalId: `sku-${k + 1}` })) });
  });
  afterAll(() => store?.dispose());

  const countRows = (): Promise<number> => store.prisma.impression.count();
  const clear = async (): Promise<void> => {
    await store.prisma.impression.deleteMany();
  };

  it('stores a batch: one row per impression, its items in rank order with their probabilities and scores', async () => {
    await clear();
    const rows = [impression(BASE + 5, 1, { user: 'user-7' }, [3, 1, 2]), impression(BASE + 6, 2, { session: 's-1' }, [4]), { ...impression(BASE + 7, 3, {}, [5, 6]), strategy: 'popular' as const, modelVersion: null }];
    expect(await writeImpressions(store, rows)).toBe(3);
    const stored = await store.prisma.impression.findMany({ orderBy: { id: 'asc' } });
    expect(stored.map((r) => [r.id, r.ts.getTime(), r.route, r.strategy, r.modelVersion, r.variant, r.userId, r.sessionId])).toEqual([
      [rows[0]!.id, BASE + 5, 'user_recommendations', 'model', 3, null, 'user-7', null],
      [rows[1]!.id, BASE + 6, 'session_recommendations', 'model', 3, null, null, 's-1'],
      [rows[2]!.id, BASE + 7, 'similar_items', 'popular', null, null, null, null],
    ]);
    expect([stored[0]!.itemIds, stored[0]!.probabilities, stored[0]!.scores]).toEqual([
      [3, 1, 2],
      [1 / 2, 1 / 3, 1 / 4],
      [5, 4, 3],
    ]);
    expect(stored[1]!.itemIds).toEqual([4]);
  });

  it('stores a non-finite probability or score, or an item the catalogue did not know, as null in its rank', async () => {
    await clear();
    const row = impression(BASE, 1, { user: 'u' }, [1, 2]);
    await writeImpressions(store, [{ ...row, itemIds: [1, null, 2], probabilities: [Number.NaN, 0.2, null], scores: [-Infinity, 1, 0.5] }]);
    const stored = await store.prisma.impression.findFirstOrThrow();
    expect([stored.itemIds, stored.probabilities, stored.scores]).toEqual([
      [1, null, 2],
      [null, 0.2, null],
      [null, 1, 0.5],
    ]);
    // The rank of an item is its place in the response, whatever came before it.
    expect(await latestImpression(store, { userId: 'u' }, 2, BASE)).toMatchObject({ rank: 3 });
    // The recorder's typed arrays: 0 for an unknown item, NaN for no value.
    const typed = { ...impression(BASE + 1, 2, { user: 'v' }, []), itemIds: Int32Array.of(5, 0), probabilities: Float64Array.of(0.25, Number.NaN), scores: Float64Array.of(Number.NaN, -2.5) };
    await writeImpressions(store, [typed]);
    const stored2 = await store.prisma.impression.findUniqueOrThrow({ where: { id: typed.id } });
    expect([stored2.itemIds, stored2.probabilities, stored2.scores]).toEqual([
      [5, null],
      [0.25, null],
      [null, -2.5],
    ]);
  });

  it('writes a batch in one transaction: a bad impression stores none of the batch', async () => {
    await clear();
    const good = impression(BASE + 1, 1, { user: 'u' }, [1]);
    const bad = { ...impression(BASE + 2, 2, { user: 'u' }, [2]), id: good.id }; // the same recommendationId twice
    await expect(writeImpressions(store, [good, bad])).rejects.toThrow();
    expect(await countRows()).toBe(0);
    await writeImpressions(store, [good]);
    expect(await countRows()).toBe(1);
  });

  it('prunes only what is older than the cut-off, in statements of at most the bound', async () => {
    await clear();
    // 13 old impressions, 4 recent ones; the cut-off falls between them.
    const old = Array.from({ length: 13 }, (_, n) => impression(BASE + n * 1_000, n, { user: `u-${n % 3}` }, [1 + (n % 6), 1 + ((n + 1) % 6)]));
    const recent = Array.from({ length: 4 }, (_, n) => impression(BASE + 40 * DAY + n, 100 + n, { user: `u-${n}` }, [2, 3]));
    await writeImpressions(store, [...old, ...recent]);
    const result = await pruneImpressions(store, BASE + 30 * DAY, { rowsPerStatement: 5 });
    // No attributions (1 statement), then 13 impressions in statements of 5 (3 statements, the last deleting 3).
    expect(result).toEqual({ impressions: 13, attributions: 0, statements: 1 + 3 });
    const left = await store.prisma.impression.findMany({ orderBy: { id: 'asc' } });
    expect(left.map((r) => r.id)).toEqual(recent.map((r) => r.id));
    expect(left.every((r) => Array.isArray(r.itemIds) && r.itemIds.length === 2)).toBe(true);
    expect(await pruneImpressions(store, BASE + 30 * DAY, { rowsPerStatement: 5 })).toEqual({ impressions: 0, attributions: 0, statements: 2 });
  });

  it('stops pruning between statements when asked to', async () => {
    await clear();
    await writeImpressions(store, Array.from({ length: 10 }, (_, n) => impression(BASE + n, n, { user: 'u' }, [1])));
    let statements = 0;
    const result = await pruneImpressions(store, BASE + DAY, { rowsPerStatement: 2, stop: () => statements++ >= 3 });
    // Attributions (none: 1 statement), then impressions 2 by 2 until the stop.
    expect(result).toEqual({ impressions: 4, attributions: 0, statements: 3 });
    expect(await countRows()).toBe(6);
  });

  it('finds the latest impression that showed an item to a user or session since a time', async () => {
    await clear();
    await writeImpressions(store, [
      impression(BASE + 1_000, 1, { user: 'ann' }, [1, 2]),
      impression(BASE + 2_000, 2, { user: 'ann' }, [3, 2]),
      impression(BASE + 3_000, 3, { user: 'bob' }, [2]),
      impression(BASE + 4_000, 4, { session: 'visit-9' }, [2]),
      impression(BASE + 5_000, 5, {}, [2]),
    ]);
    expect(await latestImpression(store, { userId: 'ann' }, 2, BASE)).toEqual({ impressionId: idAt(BASE + 2_000, 2), rank: 2, ts: new Date(BASE + 2_000) });
    expect(await latestImpression(store, { userId: 'ann' }, 1, BASE)).toEqual({ impressionId: idAt(BASE + 1_000, 1), rank: 1, ts: new Date(BASE + 1_000) });
    expect(await latestImpression(store, { userId: 'ann' }, 1, BASE + 1_001)).toBeUndefined();
    expect(await latestImpression(store, { userId: 'ann' }, 4, BASE)).toBeUndefined();
    expect(await latestImpression(store, { sessionId: 'visit-9' }, 2, BASE)).toMatchObject({ impressionId: idAt(BASE + 4_000, 4), rank: 1 });
    expect(await latestImpression(store, { userId: 'visit-9' }, 2, BASE)).toBeUndefined();
    // Bounded on both sides: nothing after `until`.
    expect(await latestImpression(store, { userId: 'ann' }, 2, BASE, BASE + 1_999)).toEqual({ impressionId: idAt(BASE + 1_000, 1), rank: 2, ts: new Date(BASE + 1_000) });
    expect(await latestImpression(store, { userId: 'ann' }, 2, BASE, BASE + 999)).toBeUndefined();
  });

  it('answers the attribution look-up from the owner index, and pruning from the primary keys', async () => {
    if (store.provider === 'sqlite') {
      const { db } = store;
      const plan = (sql: string, ...args: unknown[]): string =>
        (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...args) as { detail: string }[]).map((r) => r.detail).join('\n');
      const byUser = plan(latestImpressionSql('user_id'), 'ann', 2, BASE, BASE + DAY);
      expect(byUser).toMatch(/SEARCH i USING INDEX impressions_user_id_ts_idx \(user_id=\? AND ts>\? AND ts<\?\)/);
      expect(byUser).not.toMatch(/TEMP B-TREE/);
      expect(plan(latestImpressionSql('session_id'), 's', 2, BASE, BASE + DAY)).toMatch(/INDEX impressions_session_id_ts_idx/);
      expect(plan('SELECT id FROM impressions WHERE id < ? ORDER BY id LIMIT 5', 'x')).toMatch(/SEARCH impressions USING PRIMARY KEY \(id<\?\)/);
    } else {
      const client = await store.pool.connect();
      try {
        // The tables are tiny: forbid sequential scans so the plan shows which index could serve.
        await client.query('SET enable_seqscan = off');
        const { rows } = await client.query<{ 'QUERY PLAN': string }>(
          `EXPLAIN SELECT id FROM impressions WHERE user_id = $1 AND ts >= $2 AND ts <= $3 ORDER BY ts DESC, id DESC LIMIT 1`,
          ['ann', new Date(BASE).toISOString(), new Date(BASE + DAY).toISOString()],
        );
        expect(rows.map((r) => r['QUERY PLAN']).join('\n')).toMatch(/Index (Only )?Scan Backward using impressions_user_id_ts_idx/);
      } finally {
        client.release();
      }
    }
  });
});
