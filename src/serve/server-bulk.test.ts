import { afterAll, beforeAll, expect, it } from 'vitest';
import { servedShop, type ServedShop } from '../../test/support/served-shop.js';
import { describeEachProvider } from '../../test/support/test-stores.js';

/** The bulk governor through real HTTP: live requests first, bulk batches held, nothing lost. */
describeEachProvider('bulk event batches yield to live requests', (provider) => {
  let shop: ServedShop;
  beforeAll(async () => {
    // A target no request meets: every live request counts as slow, so bulk is held to the floor rate.
    shop = await servedShop(provider, { bulkYieldMs: 0.001 }, { train: false });
  }, 60_000);
  afterAll(async () => shop?.dispose());

  const batch = (user: string, n: number) => ({ events: Array.from({ length: n }, (_, i) => ({ userId: user, itemId: `sku-${i % 12}`, type: 'view', timestamp: 1_800_000_000 + i })) });
  const metric = (text: string, name: string): number => Number(new RegExp(`^${name.replace(/[{}]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);

  it('holds bulk batches while live requests are slow, stores every one, and never holds a small batch', async () => {
    const before = await shop.store.prisma.event.count();
    // Live requests (a shopper's single events, an item lookup) in the same tick, then the tick passes.
    for (let i = 0; i < 5; i++) expect((await shop.call('/v1/events', { body: batch(`live-${i}`, 1), role: 'write' })).status).toBe(200);
    expect((await shop.call('/v1/items/sku-1')).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(shop.server.context.bulk.limitPerS).toBeLessThan(Infinity);

    // Eight bulk batches at once (800 events, at a rate of a few thousand events/s here): the first goes
    // at once, the others wait their evenly spaced turns.
    const answers = await Promise.all(Array.from({ length: 8 }, (_, k) => shop.call('/v1/events', { body: batch(`bulk-${k}`, 100), role: 'write' })));
    expect(answers.map((a) => [a.status, a.body.stored])).toEqual(Array.from({ length: 8 }, () => [200, 100]));
    expect(await shop.store.prisma.event.count()).toBe(before + 5 + 800);

    const metrics = (await shop.call('/metrics')).body as string;
    expect(metric(metrics, 'attnrec_bulk_batch_wait_seconds_count{work="ingestion"}')).toBe(8);
    expect(metric(metrics, 'attnrec_bulk_batch_wait_seconds_sum{work="ingestion"}')).toBeGreaterThan(0.01); // at least one batch waited
    // A small batch (≤ 10 events) is live: it is never held, and dry runs are not either.
    expect((await shop.call('/v1/events', { body: batch('live-9', 10), role: 'write' })).status).toBe(200);
    expect((await shop.call('/v1/events?dryRun=true', { body: batch('dry', 100), role: 'write' })).status).toBe(200);
    const after = (await shop.call('/metrics')).body as string;
    expect(metric(after, 'attnrec_bulk_batch_wait_seconds_count{work="ingestion"}')).toBe(8);
  });

  it('refuses a bad bulk batch at once, before any wait, and stores nothing of it', async () => {
    const before = await shop.store.prisma.event.count();
    const bad = batch('bad', 100);
    (bad.events[57] as Record<string, unknown>)['type'] = '';
    const answer = await shop.call('/v1/events', { body: bad, role: 'write' });
    expect(answer.status).toBe(400);
    expect(answer.body.code).toBe('VALIDATION_FAILED');
    expect(answer.body.errors[0].pointer).toMatch(/^\/events\/57/);
    expect(await shop.store.prisma.event.count()).toBe(before);
  });
});
