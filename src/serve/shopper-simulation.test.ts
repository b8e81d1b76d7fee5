import { afterAll, beforeAll, expect, it } from 'vitest';
import { simulateShoppers, type SimulatedShopper } from '../../bench/shopper-simulator.js';
import { onlineCounts } from '../data/online-metrics.js';
import { KEYS, LOOP_TUNING, servedShop, settleAttribution, type ServedShop } from '../../test/support/served-shop.js';
import { describeEachProvider } from '../../test/support/test-stores.js';
import { sampleSizePerVariant } from '../stats/online-tests.js';

/**
 * The production loop end to end, with simulated shoppers whose next items
 * are the hidden continuations of the shop's cycles (served-shop's log: each
 * user's next item is the one after their last, over 12 items).
 */
describeEachProvider('the production loop with simulated shoppers', (provider) => {
  let shop: ServedShop;
  let shoppers: SimulatedShopper[];
  const started = Date.now();

  beforeAll(async () => {
    shop = await servedShop(provider, { modelPollSeconds: 0 }, { tuning: LOOP_TUNING });
    const rows = await shop.store.prisma.event.findMany({ orderBy: [{ ts: 'asc' }, { id: 'asc' }], select: { user: { select: { externalId: true } }, item: { select: { externalId: true } } } });
    const last = new Map<string, string>();
    for (const r of rows) if (r.user) last.set(r.user.externalId, r.item.externalId);
    shoppers = [...last.entries()].map(([id, item]) => {
      const k = Number(item.slice('sku-'.length));
      return { id, next: Array.from({ length: 6 }, (_, s) => `sku-${(k + 1 + s) % 12}`) };
    });
  }, 120_000);
  afterAll(async () => {
    await shop?.dispose();
  });

  it('attributes exactly what the shoppers did, by the rule and by named recommendationIds', async () => {
    const byRule = await simulateShoppers({ url: shop.url, key: KEYS.write, shoppers: shoppers.slice(0, 30), seed: 1, steps: 3, explicit: false });
    const named = await simulateShoppers({ url: shop.url, key: KEYS.write, shoppers: shoppers.slice(30, 60), seed: 2, steps: 3, explicit: true });
    await settleAttribution(shop);
    const [counts] = await onlineCounts(shop.store, { from: started, to: Date.now() + 1, groupBy: 'route' });
    expect(counts).toMatchObject({
      group: 'user_recommendations',
      impressions: byRule.requests + named.requests,
      viewed: byRule.viewed + named.viewed,
      carted: byRule.carted + named.carted,
      purchased: byRule.purchased + named.purchased,
      revenue: byRule.revenue + named.revenue,
    });
    expect(byRule.purchased + named.purchased).toBeGreaterThan(5); // the check has something to count
    const online = await shop.call(`/v1/metrics/online?from=${started}&groupBy=version`, { role: 'read' });
    expect(online.status).toBe(200);
    const v1 = online.body.groups.find((g: { group: string }) => g.group === 'v1');
    expect(v1.impressions).toBe(counts!.impressions);
    expect(v1.conversion.value).toBeCloseTo(counts!.purchased / counts!.impressions, 6);
    expect(v1.conversion.low).toBeLessThan(v1.conversion.value);
  }, 120_000);

  it('an A/B test ranks the trained version above popular at about the sample size the test predicts, and a guard rail stops the bad variant', async () => {
    const define = async (name: string, guardrail: unknown) => {
      const created = await shop.call('/v1/experiments', {
        method: 'POST',
        body: { name, routes: ['user_recommendations'], salt: name.replace(/\W/g, '-'), ...(guardrail !== undefined && { guardrail }), variants: [{ name: 'model', modelVersion: 1, share: 0.5, control: true }, { name: 'popular', strategy: 'popular', share: 0.5 }] },
      });
      expect(created.status).toBe(201);
      expect((await shop.call(`/v1/experiments/${created.body.id}/start`, { method: 'POST' })).status).toBe(200);
      return created.body.id as number;
    };
    const ab = await define('model vs popular', undefined);
    const truth = await simulateShoppers({ url: shop.url, key: KEYS.write, shoppers, seed: 3, steps: 6, explicit: false });
    await settleAttribution(shop);
    const result = (await shop.call(`/v1/experiments/${ab}`, { role: 'read' })).body;
    const model = result.variants.find((v: { name: string }) => v.name === 'model');
    const popular = result.variants.find((v: { name: string }) => v.name === 'popular');
    // The server's counts are the simulator's, per variant.
    expect(model.metrics.impressions).toBe(truth.byVariant.get('model')!.requests);
    expect(Math.round(popular.metrics.conversion.value * popular.metrics.impressions)).toBe(truth.byVariant.get('popular')!.purchased);
    expect(model.metrics.conversion.value).toBeGreaterThan(popular.metrics.conversion.value);
    const test = popular.againstControl.conversion;
    expect(test.test).toBe('two-proportion z-test');
    expect(test.pValue).toBeLessThan(0.05);
    expect(test.lift.high).toBeLessThan(0);
    // The sample size a test of these two rates needs (power 0.8): the experiment had at least that many impressions per variant.
    const needed = sampleSizePerVariant(model.metrics.conversion.value, popular.metrics.conversion.value);
    expect(Math.min(model.metrics.impressions, popular.metrics.impressions)).toBeGreaterThanOrEqual(needed);
    const byVersion = (await shop.call(`/v1/metrics/online?from=${started}&groupBy=version`, { role: 'read' })).body.groups as { group: string; conversion: { value: number } }[];
    expect(byVersion.find((g) => g.group === 'v1')!.conversion.value).toBeGreaterThan(byVersion.find((g) => g.group === 'popular')!.conversion.value);
    await shop.call(`/v1/experiments/${ab}/stop`, { method: 'POST', body: { reason: 'decided' } });

    // The same split with a guard rail: it stops the experiment by itself once popular converts worse.
    const guarded = await define('guarded', { alpha: 0.01, minImpressions: 60 });
    await simulateShoppers({ url: shop.url, key: KEYS.write, shoppers, seed: 4, steps: 6, explicit: true });
    await settleAttribution(shop);
    expect(await shop.server.context.experiments.guard()).toHaveLength(1);
    const after = (await shop.call(`/v1/experiments/${guarded}`, { role: 'read' })).body;
    expect(after.status).toBe('stopped');
    expect(after.stopReason).toMatch(/^guard rail: variant 'popular' converts worse than control 'model', .* one-sided p = .* < 0\.01 \(two-proportion z-test\)$/);
    expect((await shop.call('/v1/users/user-1/recommendations', { role: 'read' })).body.experiment).toBeUndefined();
  }, 180_000);
});
