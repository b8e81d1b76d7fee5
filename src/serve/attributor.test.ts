import { describe, expect, it } from 'vitest';
import type { AttributionBatch, AttributionMark, AttributionRow } from '../data/attributions.js';
import { until } from '../../test/support/until.js';
import { Attributor, type AttributionSink } from './attributor.js';
import { ServeMetrics } from './metrics.js';

/** A store stand-in: `newest` is the newest event id, `open` the marks that have not settled yet. */
function fakeSink() {
  const sink = {
    newest: 0,
    cursor: 0,
    unsettled: new Set<number>(),
    fail: false,
    calls: [] as { upTo: number; limit: number }[],
    async mark(): Promise<AttributionMark> {
      return { eventKey: sink.newest, writers: sink.unsettled.has(sink.newest) ? ['1'] : [] };
    },
    async settled(mark: AttributionMark): Promise<boolean> {
      return !sink.unsettled.has(mark.eventKey);
    },
    async attribute(upTo: number, limit: number): Promise<AttributionBatch> {
      sink.calls.push({ upTo, limit });
      if (sink.fail) throw new Error('disk on fire');
      const read = Math.min(limit, Math.max(0, upTo - sink.cursor));
      // Event k: a view, cart, purchase (value 10, quantity 2) or a type of the shop's own, in turn;
      // odd ones follow a response of version 3 in variant 'b' of experiment 7, even ones one of popular.
      const rows = Array.from({ length: read }, (_, i): AttributionRow => {
        const k = sink.cursor + i + 1;
        return {
          eventKey: k,
          impressionId: `i-${k}`,
          kind: 'rule',
          rank: 1,
          itemId: 1,
          typeId: [1, 2, 3, 9][k % 4]!,
          value: k % 4 === 2 ? 10 : null,
          quantity: k % 4 === 2 ? 2 : null,
          ts: k,
          route: 'user_recommendations',
          strategy: k % 2 ? 'model' : 'popular',
          modelVersion: k % 2 ? 3 : null,
          variant: k % 2 ? 'b' : null,
          experimentId: k % 2 ? 7 : null,
        };
      });
      sink.cursor += read;
      return { read, cursor: sink.cursor, attributed: { explicit: 0, rule: read }, unattributed: { no_impression: 0, unknown_recommendation: 0, item_not_shown: 0, expired: 0 }, rows };
    },
  };
  return sink satisfies AttributionSink;
}

async function counter(metric: { get(): Promise<{ values: { value: number; labels: Record<string, unknown> }[] }> }, labels: Record<string, string> = {}): Promise<number> {
  const { values } = await metric.get();
  return values.filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x)).reduce((n, v) => n + v.value, 0);
}

function attributor(sink: AttributionSink, options: { settleMs?: number; intervalMs?: number; batchSize?: number; enabled?: boolean; pace?: (events: number) => Promise<void> } = {}) {
  const metrics = new ServeMetrics();
  const logs: string[] = [];
  const a = new Attributor(sink, metrics, (message, error) => logs.push(`${message}${error ? `: ${(error as Error).message}` : ''}`), {
    enabled: options.enabled ?? true,
    windowMs: 86_400_000,
    intervalMs: options.intervalMs ?? 600_000,
    settleMs: options.settleMs ?? 0,
    batchSize: options.batchSize ?? 10,
    ...(options.pace && { pace: options.pace }),
  });
  return { a, metrics, logs };
}

describe('the attributor', () => {
  it('works through a settled mark in batches, and counts what they attributed', async () => {
    const sink = fakeSink();
    const { a, metrics } = attributor(sink, { batchSize: 10 });
    sink.newest = 25;
    await a.tick();
    expect(sink.calls).toEqual([{ upTo: 25, limit: 10 }, { upTo: 25, limit: 10 }, { upTo: 25, limit: 10 }]);
    expect(await counter(metrics.attributions, { kind: 'rule' })).toBe(25);
    expect(await counter(metrics.attributionBacklog)).toBe(0);
    // The online counters, by type and the impression's group.
    const model = { route: 'user_recommendations', model_version: 'v3', variant: '7/b' };
    const popular = { route: 'user_recommendations', model_version: 'popular', variant: 'none' };
    expect(await counter(metrics.onlineEvents, { ...model, type: 'view' })).toBe(0); // k % 4 === 0 is even
    expect(await counter(metrics.onlineEvents, { ...model, type: 'cart' })).toBe(7); // 1, 5, …, 25
    expect(await counter(metrics.onlineEvents, { ...model, type: 'other' })).toBe(6); // 3, 7, …, 23
    expect(await counter(metrics.onlineEvents, { ...popular, type: 'view' })).toBe(6); // 4, 8, …, 24
    expect(await counter(metrics.onlineEvents, { ...popular, type: 'purchase' })).toBe(6); // 2, 6, …, 22
    expect(await counter(metrics.onlineRevenue, popular)).toBe(6 * 20);
    expect(await counter(metrics.onlineRevenue, model)).toBe(0);
    await a.close();
  });

  it('uses a mark only once it is settleMs old and settled, and never passes an unsettled one', async () => {
    const sink = fakeSink();
    const { a } = attributor(sink, { settleMs: 150 });
    sink.newest = 5;
    await a.tick(); // mark 5, too young
    expect(sink.calls).toEqual([]);
    sink.newest = 9;
    sink.unsettled.add(9);
    await new Promise((resolve) => setTimeout(resolve, 200));
    await a.tick(); // mark 5 is old enough; mark 9 is too young (and not settled)
    expect(sink.cursor).toBe(5);
    await new Promise((resolve) => setTimeout(resolve, 200));
    await a.tick(); // 9 is old enough but a transaction before it still runs
    expect(sink.cursor).toBe(5);
    sink.unsettled.clear();
    await a.tick();
    expect(sink.cursor).toBe(9);
    await a.close();
  });

  it('runs each batch only when its pace allows (background work yields to live requests)', async () => {
    const sink = fakeSink();
    const asked: number[] = [];
    let allow: (() => void) | undefined;
    const { a } = attributor(sink, { batchSize: 10, pace: (events) => new Promise((resolve) => (asked.push(events), (allow = resolve))) });
    sink.newest = 25;
    const round = a.tick();
    await until(() => asked.length === 1);
    expect(sink.calls).toEqual([]); // held before its first batch
    allow!();
    await until(() => asked.length === 2);
    expect(sink.cursor).toBe(10); // one batch, then held again
    allow!();
    await until(() => asked.length === 3);
    allow!();
    await round;
    expect(sink.cursor).toBe(25);
    expect(asked).toEqual([10, 10, 10]);
    await a.close();
  });

  it('catchUp attributes everything stored before it, without the settling delay', async () => {
    const sink = fakeSink();
    const { a } = attributor(sink, { settleMs: 600_000 });
    sink.newest = 42;
    await a.catchUp();
    expect(sink.cursor).toBe(42);
    await a.close();
  });

  it('a failing store is counted and logged (at most a line per 10 s); the next round retries from the same place', async () => {
    const sink = fakeSink();
    const { a, metrics, logs } = attributor(sink);
    sink.newest = 3;
    sink.fail = true;
    await a.tick();
    await a.tick();
    expect(await counter(metrics.attributionFailures)).toBe(2);
    expect(logs).toEqual(['attribution: 1 batch(es) could not be stored; the events are stored, and their attribution is retried at the next round: disk on fire']);
    sink.fail = false;
    await a.tick();
    expect(sink.cursor).toBe(3);
    await a.close();
  });

  it('runs by its timer when enabled, and not at all when not', async () => {
    const on = fakeSink();
    const { a } = attributor(on, { intervalMs: 10 });
    on.newest = 7;
    await until(() => on.cursor === 7, 2_000, 5);
    await a.close();
    const off = fakeSink();
    const { a: b } = attributor(off, { intervalMs: 10, enabled: false });
    off.newest = 7;
    await b.catchUp();
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(off.calls).toEqual([]);
    await b.close();
  });
});
