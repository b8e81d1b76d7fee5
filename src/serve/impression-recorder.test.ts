import { describe, expect, it } from 'vitest';
import type { ImpressionRow, PruneOptions } from '../data/impressions.js';
import { unpackImpressions, type PackedImpressions } from '../data/packed-impressions.js';
import { scratchStore } from '../../test/support/test-stores.js';
import { until } from '../../test/support/until.js';
import { ImpressionRecorder, type ImpressionRecorderOptions, type ImpressionSink, type Shown } from './impression-recorder.js';
import { ServeMetrics } from './metrics.js';

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const ITEMS = new Map(Array.from({ length: 50 }, (_, k) => [`sku-${k}`, k + 1]));
const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** A sink that keeps every batch it is given; `fail` makes writes reject, `gate` holds them. */
function memorySink(): ImpressionSink & { batches: ImpressionRow[][]; prunes: { before: number; options: PruneOptions }[]; fail: boolean; gate: Promise<void> | undefined } {
  const sink = {
    batches: [] as ImpressionRow[][],
    prunes: [] as { before: number; options: PruneOptions }[],
    fail: false,
    gate: undefined as Promise<void> | undefined,
    async write(batch: PackedImpressions) {
      await sink.gate;
      if (sink.fail) throw new Error('disk on fire');
      sink.batches.push(unpackImpressions(batch));
    },
    async prune(before: number, options: PruneOptions) {
      sink.prunes.push({ before, options });
      return { impressions: 7, attributions: 4, statements: 4 };
    },
  };
  return sink;
}

function recorder(sink: ImpressionSink, options: Partial<ImpressionRecorderOptions> = {}): { recorder: ImpressionRecorder; metrics: ServeMetrics; logs: string[] } {
  const metrics = new ServeMetrics();
  const logs: string[] = [];
  const r = new ImpressionRecorder(sink, (id) => ITEMS.get(id), metrics, (message, error) => logs.push(`${message}${error ? `: ${(error as Error).message}` : ''}`), {
    enabled: true,
    retentionDays: 0,
    flushMs: 60_000,
    ...options,
  });
  return { recorder: r, metrics, logs };
}

const shown = (items: string[], strategy: Shown['strategy'] = 'model'): Shown => ({
  strategy,
  modelVersion: strategy === 'model' ? 4 : null,
  items: items.map((item, i) => ({ item, probability: 0.5 / (i + 1), score: 3 - i })),
});

async function counter(metric: { get(): Promise<{ values: { value: number; labels: Record<string, unknown> }[] }> }, labels: Record<string, string> = {}): Promise<number> {
  const { values } = await metric.get();
  return values.filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x)).reduce((sum, v) => sum + v.value, 0);
}

describe('ImpressionRecorder', () => {
  it('gives each response a time-ordered UUIDv7 and writes its impression with ranks, probabilities and scores', async () => {
    const sink = memorySink();
    const { recorder: r, metrics } = recorder(sink);
    const ids = [
      r.record('user_recommendations', { user: 'ann' }, shown(['sku-3', 'unknown-item', 'sku-1'])),
      r.record('session_recommendations', {}, shown(['sku-2'], 'popular')),
      r.record('similar_items', {}, { strategy: 'model', modelVersion: 4, items: [{ item: 'sku-9', similarity: 0.75 }] }),
    ];
    for (const id of ids) expect(id).toMatch(UUID_V7);
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(3);
    expect(r.buffered).toBe(3);
    await r.flush();
    expect(sink.batches).toHaveLength(1);
    const [user, session, similar] = sink.batches[0]!;
    expect(user).toMatchObject({ id: ids[0], route: 'user_recommendations', strategy: 'model', modelVersion: 4, variant: null, userId: 'ann', sessionId: null });
    expect(Math.abs(user!.ts - Date.now())).toBeLessThan(5_000);
    // An item the catalogue does not know keeps its rank as id 0 (stored as null); the others keep the rank the response gave them.
    expect(Array.from(user!.itemIds)).toEqual([4, 0, 2]);
    expect(Array.from(user!.probabilities)).toEqual([0.5, 0.25, 0.5 / 3]);
    expect(Array.from(user!.scores)).toEqual([3, 2, 1]);
    expect(session).toMatchObject({ route: 'session_recommendations', strategy: 'popular', modelVersion: null, userId: null, sessionId: null });
    expect([Array.from(similar!.itemIds), Array.from(similar!.probabilities), Array.from(similar!.scores)]).toEqual([[10], [Number.NaN], [0.75]]);
    expect(await counter(metrics.impressionsStored)).toBe(3);
    expect(await counter(metrics.impressionBatches)).toBe(1);
    await r.close();
  });

  it('flushes by size on the next turn of the event loop, never inside record()', async () => {
    const sink = memorySink();
    let open!: () => void;
    sink.gate = new Promise((resolve) => (open = resolve));
    const { recorder: r } = recorder(sink, { batchSize: 4 });
    for (let i = 0; i < 4; i++) r.record('rank', { user: `u-${i}` }, shown(['sku-1']));
    expect(r.buffered).toBe(4); // record() returned without taking a batch
    await tick();
    expect(r.buffered).toBe(0); // the next turn took it
    // While that batch is being written, a partial batch arrives: it waits for the timer (or a flush),
    // so a busy server writes full batches rather than many small ones.
    r.record('rank', { user: 'u-4' }, shown(['sku-1']));
    r.record('rank', { user: 'u-5' }, shown(['sku-1']));
    open();
    await until(() => sink.batches.length === 1, 2_000, 1);
    await tick();
    await tick();
    expect(sink.batches[0]!.map((row) => row.userId)).toEqual(['u-0', 'u-1', 'u-2', 'u-3']);
    expect(sink.batches).toHaveLength(1);
    expect(r.buffered).toBe(2);
    await r.close();
    expect(sink.batches.map((b) => b.length)).toEqual([4, 2]);
  });

  it('flushes by time what is buffered', async () => {
    const sink = memorySink();
    const { recorder: r } = recorder(sink, { batchSize: 100, flushMs: 30 });
    r.record('next_sequence', { user: 'ann' }, shown(['sku-1', 'sku-2']));
    r.record('next_sequence', { user: 'bob' }, shown(['sku-3']));
    expect(sink.batches).toHaveLength(0);
    await until(() => sink.batches.length === 1, 2_000, 5);
    expect(sink.batches[0]!.map((row) => row.userId)).toEqual(['ann', 'bob']);
    await r.close();
  });

  it('writes many impressions in few transactions, bounded by impressions and by items shown', async () => {
    const sink = memorySink();
    const { recorder: r, metrics } = recorder(sink, { batchSize: 100, batchItems: 1_000 });
    for (let i = 0; i < 250; i++) r.record('user_recommendations', { user: `u-${i}` }, shown(['sku-1', 'sku-2']));
    await r.flush();
    expect(sink.batches.map((b) => b.length)).toEqual([100, 100, 50]);
    // 30 items each: a transaction holds at most 1,000 items shown, so 33 impressions.
    const wide = Array.from({ length: 30 }, (_, k) => `sku-${k}`);
    for (let i = 0; i < 40; i++) r.record('rank', { user: `w-${i}` }, shown(wide));
    await r.flush();
    expect(sink.batches.slice(3).map((b) => b.length)).toEqual([33, 7]);
    expect(await counter(metrics.impressionsStored)).toBe(290);
    expect(await counter(metrics.impressionBatches)).toBe(5);
    await r.close();
  });

  it('drops impressions beyond the buffer bound and counts them; responses still get their ids', async () => {
    const sink = memorySink();
    let open!: () => void;
    sink.gate = new Promise((resolve) => (open = resolve));
    const { recorder: r, metrics } = recorder(sink, { batchSize: 5, maxBuffered: 10 });
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(r.record('rank', {}, shown(['sku-1'])));
    await tick(); // the first batch of 5 is taken and waits on the gate
    for (let i = 0; i < 20; i++) ids.push(r.record('rank', {}, shown(['sku-1'])));
    expect(ids.every((id) => UUID_V7.test(id))).toBe(true);
    expect(r.buffered).toBe(10);
    expect(await counter(metrics.impressionsDropped, { reason: 'overflow' })).toBe(10);
    open();
    await r.close();
    expect(sink.batches.flat()).toHaveLength(15);
    expect(await counter(metrics.impressionsStored)).toBe(15);
  });

  it('counts and logs a failing store, keeps answering, and stores again once it recovers', async () => {
    const sink = memorySink();
    sink.fail = true;
    const { recorder: r, metrics, logs } = recorder(sink, { batchSize: 3 });
    for (let i = 0; i < 7; i++) expect(r.record('user_recommendations', { user: 'ann' }, shown(['sku-1']))).toMatch(UUID_V7);
    await r.flush();
    expect(await counter(metrics.impressionStoreFailures, { operation: 'write' })).toBe(3);
    expect(await counter(metrics.impressionsDropped, { reason: 'store_failed' })).toBe(7);
    // One line for a burst of failures, not one per batch.
    expect(logs.filter((l) => l.startsWith('impressions: could not store'))).toEqual(['impressions: could not store 3 impression(s), dropped (their responses were answered): disk on fire']);
    sink.fail = false;
    r.record('user_recommendations', { user: 'ann' }, shown(['sku-1']));
    await r.flush();
    expect(await counter(metrics.impressionsStored)).toBe(1);
    await r.close();
  });

  it('on a closed SQLite store: counts the failure and loses only the impressions', async () => {
    const store = await scratchStore('sqlite');
    await store.dispose();
    const metrics = new ServeMetrics();
    const logs: string[] = [];
    const r = ImpressionRecorder.forStore(store, (id) => ITEMS.get(id), metrics, (m, e) => logs.push(`${m}: ${(e as Error).message}`), { enabled: true, retentionDays: 0, flushMs: 60_000 });
    expect(r.record('user_recommendations', { user: 'ann' }, shown(['sku-1']))).toMatch(UUID_V7);
    await r.flush();
    expect(await counter(metrics.impressionStoreFailures, { operation: 'write' })).toBe(1);
    expect(await counter(metrics.impressionsDropped, { reason: 'store_failed' })).toBe(1);
    expect(logs).toEqual([expect.stringMatching(/^impressions: could not store 1 impression\(s\).*not open/)]);
    await r.close();
  });

  it('writes what is buffered on close, and drops (counting) what comes after', async () => {
    const sink = memorySink();
    const { recorder: r, metrics } = recorder(sink, { batchSize: 100 });
    for (let i = 0; i < 12; i++) r.record('rank', {}, shown(['sku-1']));
    await r.close();
    expect(sink.batches.flat()).toHaveLength(12);
    r.record('rank', {}, shown(['sku-1']));
    expect(r.buffered).toBe(0);
    expect(await counter(metrics.impressionsDropped, { reason: 'closed' })).toBe(1);
  });

  it('does not let a store that never answers hold up the shutdown', async () => {
    const sink = memorySink();
    sink.gate = new Promise(() => {}); // never opens
    const { recorder: r, metrics, logs } = recorder(sink, { batchSize: 3 });
    for (let i = 0; i < 5; i++) r.record('rank', {}, shown(['sku-1']));
    await tick(); // a batch of 3 is being written, forever; 2 wait
    const started = performance.now();
    await r.close(50);
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(r.buffered).toBe(0);
    expect(await counter(metrics.impressionsDropped, { reason: 'closed' })).toBe(2);
    expect(logs).toEqual(['impressions: the store did not finish within 50 ms of shutdown; 2 buffered impression(s) dropped, and the batch being written may be lost']);
  });

  it('off: ids for every response, nothing buffered, written or pruned', async () => {
    const sink = memorySink();
    const { recorder: r } = recorder(sink, { enabled: false, batchSize: 1, flushMs: 5, retentionDays: 1, pruneFirstMs: 5 });
    for (let i = 0; i < 10; i++) expect(r.record('user_recommendations', { user: 'ann' }, shown(['sku-1']))).toMatch(UUID_V7);
    expect(r.buffered).toBe(0);
    await new Promise((resolve) => setTimeout(resolve, 40));
    await r.prune();
    await r.close();
    expect(sink.batches).toEqual([]);
    expect(sink.prunes).toEqual([]);
  });

  it('prunes by the retention period, first soon after start, in bounded statements', async () => {
    const sink = memorySink();
    const { recorder: r, metrics, logs } = recorder(sink, { retentionDays: 2, pruneFirstMs: 10, pruneEveryMs: 60_000, pruneRowsPerStatement: 250 });
    await until(() => sink.prunes.length === 1, 2_000, 5);
    const { before, options } = sink.prunes[0]!;
    expect(Math.abs(before - (Date.now() - 2 * 86_400_000))).toBeLessThan(5_000);
    expect(options.rowsPerStatement).toBe(250);
    expect(options.stop?.()).toBe(false);
    await until(async () => (await counter(metrics.impressionsPruned)) === 7, 2_000, 5);
    expect(logs).toContain('impressions: deleted 7 impression(s) older than 2 days (and 4 attributions to them, in 4 statements)');
    await r.close();
    expect(options.stop?.()).toBe(true);
  });
});
