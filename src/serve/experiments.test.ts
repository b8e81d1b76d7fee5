import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KEYS, servedShop, type ServedShop } from '../../test/support/served-shop.js';
import { describeEachProvider } from '../../test/support/test-stores.js';
import { SERVE_DEFAULTS, parseApiKeys, validateServeConfig } from './config.js';
import { assignmentPoint, variantAt } from './experiments.js';
import { startServer } from './server.js';

describe('assignment', () => {
  it('places each shopper by a hash of the salt and id: stable, uniform, independent between salts', () => {
    expect(assignmentPoint('s1', 'user', 'ann')).toBe(assignmentPoint('s1', 'user', 'ann'));
    expect(assignmentPoint('s1', 'user', 'ann')).not.toBe(assignmentPoint('s2', 'user', 'ann'));
    expect(assignmentPoint('s1', 'user', 'ann')).not.toBe(assignmentPoint('s1', 'session', 'ann'));
    // 20,000 ids in 10 equal bins: a chi-square statistic over 9 degrees of freedom above 27.9 has p < 0.001.
    const bins = new Array<number>(10).fill(0);
    for (let i = 0; i < 20_000; i++) bins[Math.floor(assignmentPoint('salt', 'user', `user-${i}`) * 10)]!++;
    const chi2 = bins.reduce((sum, n) => sum + (n - 2_000) ** 2 / 2_000, 0);
    expect(chi2).toBeLessThan(27.9);
    // Two salts split the same shoppers independently: the 2×2 table's counts are near a quarter each.
    let both = 0;
    for (let i = 0; i < 20_000; i++) if (assignmentPoint('a', 'user', `u${i}`) < 0.5 && assignmentPoint('b', 'user', `u${i}`) < 0.5) both++;
    expect(Math.abs(both - 5_000)).toBeLessThan(300); // 4.9 standard deviations
  });

  it('gives each variant the interval of its share, control first', () => {
    const experiment = {
      variants: [
        { name: 'control', strategy: 'model' as const, modelVersion: 1, share: 0.2, control: true },
        { name: 'b', strategy: 'popular' as const, modelVersion: null, share: 0.3, control: false },
        { name: 'c', strategy: 'model' as const, modelVersion: 2, share: 0.5, control: false },
      ],
    };
    expect([0, 0.1999, 0.2, 0.4999, 0.5, 0.9999999].map((p) => variantAt(experiment, p).name)).toEqual(['control', 'control', 'b', 'b', 'c', 'c']);
  });
});

describeEachProvider('experiments over HTTP', (provider) => {
  let shop: ServedShop;
  let second: number;
  beforeAll(async () => {
    shop = await servedShop(provider, { modelPollSeconds: 0 });
    second = await shop.trainAnother(9);
  }, 120_000);
  afterAll(async () => {
    await shop?.dispose();
  });

  it('names every problem of a malformed definition, and refuses versions that cannot serve', async () => {
    const bad = await shop.call('/v1/experiments', {
      method: 'POST',
      body: {
        name: 'x',
        routes: ['user_recommendations', 'everywhere'],
        variants: [
          { name: 'a', modelVersion: 1, share: 0.5, control: true },
          { name: 'a', strategy: 'popular', share: 0.3, control: true },
          { name: 'c', share: 0.1 },
        ],
      },
    });
    expect(bad.status).toBe(400);
    expect(bad.headers.get('content-type')).toContain('application/problem+json');
    expect(bad.body.code).toBe('VALIDATION_FAILED');
    const problems = (bad.body.errors as { pointer: string; message: string }[]).map((e) => `${e.pointer}: ${e.message}`);
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^\/routes\/1: /),
        '/variants: the shares must sum to 1; they sum to 0.9',
        '/variants: exactly one variant must be the control (control: true); 2 are',
        "/variants/1/name: 'a' names two variants",
        '/variants/2/modelVersion: a model variant needs the model version it serves',
      ]),
    );
    const missing = await shop.call('/v1/experiments', { method: 'POST', body: { name: 'x', variants: [{ name: 'a', modelVersion: 1, share: 0.5, control: true }, { name: 'b', modelVersion: 99, share: 0.5 }] } });
    expect(missing.status).toBe(409);
    expect(missing.body.code).toBe('MODEL_VERSION_NOT_READY');
    expect(missing.body.detail).toContain('model version 99 does not exist');
    expect((await shop.call('/v1/experiments', { method: 'POST', role: 'write', body: {} })).status).toBe(403);
    expect((await shop.call('/v1/experiments')).body.experiments).toEqual([]);

    // Online metrics refuse periods they cannot answer well, naming the parameter.
    const refused = async (query: string) => {
      const answer = await shop.call(`/v1/metrics/online?${query}`, { role: 'read' });
      expect(answer.status, query).toBe(400);
      expect(answer.body.code).toBe('VALIDATION_FAILED');
      return (answer.body.errors as { pointer: string; message: string }[]).map((e) => `${e.pointer}: ${e.message}`);
    };
    expect(await refused('from=2026-02-01&to=2026-01-01')).toEqual([expect.stringMatching(/^\/from: must be before to/)]);
    expect(await refused('from=2020-01-01&to=2026-01-01')).toEqual(['/from: the period may span at most 366 days; it spans 2192']);
    expect(await refused('from=2025-01-01&to=2026-01-01&bucket=hour')).toEqual([expect.stringMatching(/^\/bucket: 8760 hours are more than the 1000 buckets/)]);
    expect(await refused('groupBy=colour')).toEqual([expect.stringMatching(/^\/groupBy: /)]);
    expect(await refused('from=yesterday')).toEqual(["/from: 'yesterday' is neither an ISO 8601 instant nor epoch milliseconds"]);
    const empty = await shop.call('/v1/metrics/online?groupBy=route&bucket=day', { role: 'read' });
    expect(empty).toMatchObject({ status: 200, body: { groupBy: 'route', bucket: 'day', groups: [], series: [] } });
  });

  it('serves each shopper their variant, the same one every time and on every replica, and refuses overlaps', async () => {
    const created = await shop.call('/v1/experiments', {
      method: 'POST',
      body: {
        name: 'new model against popular',
        routes: ['user_recommendations', 'rank'],
        salt: 'fixed-salt',
        variants: [
          { name: 'control', modelVersion: 1, share: 0.4, control: true },
          { name: 'retrained', modelVersion: second, share: 0.3 },
          { name: 'popular', strategy: 'popular', share: 0.3 },
        ],
      },
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ status: 'draft', routes: ['user_recommendations', 'rank'], salt: 'fixed-salt', guardrail: null });
    const id = created.body.id as number;
    // A draft serves nobody.
    expect((await shop.call('/v1/users/user-1/recommendations')).body.experiment).toBeUndefined();
    const started = await shop.call(`/v1/experiments/${id}/start`, { method: 'POST' });
    expect(started.status).toBe(200);
    expect(started.body.status).toBe('running');

    const seen = new Map<string, string>();
    for (let u = 0; u < 120; u++) {
      const { body } = await shop.call(`/v1/users/user-${u}/recommendations?k=3`);
      const expected = variantAt(started.body, assignmentPoint('fixed-salt', 'user', `user-${u}`)).name;
      expect(body.experiment).toEqual({ id, variant: expected });
      if (expected === 'popular') expect(body.strategy).toBe('popular');
      else expect(body).toMatchObject({ strategy: 'model', modelVersion: expected === 'control' ? 1 : second });
      seen.set(`user-${u}`, expected);
    }
    const counts = Object.fromEntries(['control', 'retrained', 'popular'].map((v) => [v, [...seen.values()].filter((x) => x === v).length]));
    expect(counts.control! + counts.retrained! + counts.popular!).toBe(120);
    for (const [name, share] of [['control', 0.4], ['retrained', 0.3], ['popular', 0.3]] as const) expect(Math.abs(counts[name]! - 120 * share)).toBeLessThan(20);
    // The same shopper again, on another route of the experiment; a route outside it serves as usual.
    const ranked = await shop.call('/v1/rank', { method: 'POST', body: { user: 'user-7', candidates: ['sku-1', 'sku-2'] } });
    expect(ranked.body.experiment).toEqual({ id, variant: seen.get('user-7') });
    expect((await shop.call('/v1/users/user-7/next-sequence?k=2')).body.experiment).toBeUndefined();
    // An anonymous shopper takes part by the shop's session id; without one, outside the experiment.
    const anonymous = await shop.call('/v1/rank', { method: 'POST', body: { session: [{ item: 'sku-3' }], sessionId: 'visit-9', candidates: ['sku-4', 'sku-5'] } });
    expect(anonymous.body.experiment).toEqual({ id, variant: variantAt(started.body, assignmentPoint('fixed-salt', 'session', 'visit-9')).name });
    expect((await shop.call('/v1/rank', { method: 'POST', body: { session: [{ item: 'sku-3' }], candidates: ['sku-4', 'sku-5'] } })).body.experiment).toBeUndefined();

    // Another replica reading the same store assigns every shopper the same variant.
    const replica = await startServer(validateServeConfig({ ...SERVE_DEFAULTS, port: 0, databaseUrl: shop.store.target.url, apiKeys: parseApiKeys(`read:${KEYS.read}`), workers: 1, modelPollSeconds: 0 }), () => {});
    try {
      for (const user of ['user-0', 'user-5', 'user-11', 'user-42', 'user-99']) {
        const body = (await (await fetch(`${replica.url}/v1/users/${user}/recommendations?k=3`, { headers: { authorization: `Bearer ${KEYS.read}` } })).json()) as { experiment: { variant: string } };
        expect(body.experiment.variant, user).toBe(seen.get(user));
      }
    } finally {
      await replica.close();
    }

    // One running experiment per route: an overlap is refused, another route is free.
    const overlapping = await shop.call('/v1/experiments', { method: 'POST', body: { name: 'overlap', routes: ['rank'], variants: [{ name: 'a', modelVersion: 1, share: 0.5, control: true }, { name: 'b', strategy: 'popular', share: 0.5 }] } });
    const refused = await shop.call(`/v1/experiments/${overlapping.body.id}/start`, { method: 'POST' });
    expect(refused.status).toBe(409);
    expect(refused.body.code).toBe('EXPERIMENT_OVERLAP');
    expect(refused.body.detail).toContain(`experiment ${id} ('new model against popular') already runs on rank`);
    const elsewhere = await shop.call('/v1/experiments', { method: 'POST', body: { name: 'sequences', routes: ['next_sequence'], variants: [{ name: 'a', modelVersion: 1, share: 0.5, control: true }, { name: 'b', modelVersion: second, share: 0.5 }] } });
    expect((await shop.call(`/v1/experiments/${elsewhere.body.id}/start`, { method: 'POST' })).status).toBe(200);
    const twice = await shop.call(`/v1/experiments/${elsewhere.body.id}/start`, { method: 'POST' });
    expect(twice.body, JSON.stringify(twice.body)).toMatchObject({ code: 'EXPERIMENT_NOT_DRAFT' });

    // What each variant answered is recorded with its impressions.
    await shop.server.context.impressions.flush();
    const read = await shop.call(`/v1/experiments/${id}`, { role: 'read' });
    const expected: Record<string, number> = { ...counts };
    expected[seen.get('user-7')!]!++; // its /v1/rank answer
    expected[anonymous.body.experiment.variant]!++; // the anonymous shopper's
    for (const user of ['user-0', 'user-5', 'user-11', 'user-42', 'user-99']) expected[seen.get(user)!]!++; // the replica's answers
    expect(Object.fromEntries(read.body.variants.map((v: { name: string; impressions: number }) => [v.name, v.impressions]))).toEqual(expected);
    expect(read.body.variants.map((v: { name: string }) => v.name)).toEqual(['control', 'popular', 'retrained']);

    // Stopped: the routes go back to the active version.
    const stopped = await shop.call(`/v1/experiments/${id}/stop`, { method: 'POST', body: { reason: 'enough data' } });
    expect(stopped.body).toMatchObject({ status: 'stopped', stopReason: 'enough data' });
    expect((await shop.call(`/v1/experiments/${id}/stop`, { method: 'POST' })).body.code).toBe('EXPERIMENT_STOPPED');
    const after = await shop.call('/v1/users/user-1/recommendations');
    expect(after.body.experiment).toBeUndefined();
    expect(after.body.modelVersion).toBe(1);
    expect((await shop.call('/v1/experiments?status=running', { role: 'read' })).body.experiments.map((e: { id: number }) => e.id)).toEqual([elsewhere.body.id]);
  }, 60_000);
});
