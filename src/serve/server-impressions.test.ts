import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uuidV7Millis, writeImpressions, type ImpressionRow } from '../data/impressions.js';
import { sqliteReader, sqliteWriter } from '../data/sqlite-writer.js';
import { KEYS, servedShop, type ServedShop } from '../../test/support/served-shop.js';
import { describeEachProvider } from '../../test/support/test-stores.js';
import { until } from '../../test/support/until.js';
import { validateServeConfig } from './config.js';
import { openApiDocument } from './openapi.js';
import { startServer, type RunningServer } from './server.js';

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const DAY = 86_400_000;

interface Answer {
  status: number;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any -- whatever the route returns; the tests assert on it
}

async function metricValue(server: RunningServer, name: string, labels = ''): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

async function call(server: RunningServer, path: string, body?: unknown): Promise<Answer> {
  const response = await fetch(`${server.url}${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { authorization: `Bearer ${KEYS.read}`, ...(body !== undefined && { 'content-type': 'application/json' }) },
    ...(body !== undefined && { body: JSON.stringify(body) }),
  });
  return { status: response.status, body: await response.json() };
}

describe('the OpenAPI document', () => {
  it('documents a required recommendationId (UUID) on every recommendation route', () => {
    const paths = openApiDocument().paths as Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema: { properties: Record<string, { format?: string }>; required: string[] } }> }> }>>;
    const routes = [
      ['/v1/users/{id}/recommendations', 'get'],
      ['/v1/sessions/recommendations', 'post'],
      ['/v1/users/{id}/next-sequence', 'get'],
      ['/v1/rank', 'post'],
      ['/v1/items/{id}/similar', 'get'],
    ] as const;
    for (const [path, method] of routes) {
      const schema = paths[path]![method]!.responses['200']!.content!['application/json']!.schema;
      expect(schema.properties.recommendationId, path).toMatchObject({ type: 'string', format: 'uuid' });
      expect(schema.required, path).toContain('recommendationId');
    }
  });
});

describeEachProvider('impressions over HTTP', (provider) => {
  let shop: ServedShop;
  const logs: string[] = [];
  beforeAll(async () => {
    // Batches of 25, and a timer that never fires during a test: flushes happen by size or when a test asks.
    shop = await servedShop(provider, {}, { tuning: { impressions: { batchSize: 25, flushMs: 600_000 } }, log: (message, error) => logs.push(`${message}${error ? `: ${(error as Error).message}` : ''}`) });
  }, 120_000);
  afterAll(async () => {
    await shop?.dispose();
  });

  /** The impression and the shop's ids of the items it showed, in rank order. */
  const stored = async (id: string) => {
    const row = await shop.store.prisma.impression.findUnique({ where: { id } });
    if (!row) return null;
    const ids = row.itemIds as (number | null)[];
    const items = await shop.store.prisma.item.findMany({ where: { id: { in: ids.filter((x) => x !== null) } } });
    const external = new Map(items.map((i) => [i.id, i.externalId]));
    return { ...row, items: ids.map((x) => (x === null ? null : external.get(x))), probabilities: row.probabilities as (number | null)[], scores: row.scores as (number | null)[] };
  };

  if (provider === 'sqlite') {
    it('starts its SQLite writer and reader threads before it takes traffic, and keeps them', async () => {
      const store = shop.server.context.store as Extract<typeof shop.server.context.store, { provider: 'sqlite' }>;
      // No request has been made: a thread started on first use would not be up.
      expect(sqliteWriter(store.db).running).toBe(true);
      expect(sqliteReader(store.db).running).toBe(true);
    });
  }

  it('every recommendation route answers with a recommendationId, and the impression it records holds what was shown', async () => {
    const routes: { path: string; body?: unknown; route: string; user: string | null }[] = [
      { path: '/v1/users/user-0/recommendations?k=5&exclude=none', route: 'user_recommendations', user: 'user-0' },
      { path: '/v1/users/nobody/recommendations?k=3', route: 'user_recommendations', user: 'nobody' }, // cold start: popular
      { path: '/v1/sessions/recommendations', body: { events: [{ item: 'sku-3' }, { item: 'sku-4', type: 'cart' }], k: 4 }, route: 'session_recommendations', user: null },
      { path: '/v1/users/user-5/next-sequence?k=3&beam=1', route: 'next_sequence', user: 'user-5' },
      { path: '/v1/users/user-5/next-sequence?k=3&beam=4', route: 'next_sequence', user: 'user-5' },
      { path: '/v1/rank', body: { user: 'user-2', candidates: ['sku-1', 'sku-7', 'sku-4', 'no-such-item'] }, route: 'rank', user: 'user-2' },
      { path: '/v1/rank', body: { session: [{ item: 'sku-8' }], candidates: ['sku-9', 'sku-2'] }, route: 'rank', user: null },
      { path: '/v1/items/sku-2/similar?k=4', route: 'similar_items', user: null },
    ];
    const ids = new Set<string>();
    const answers: Answer[] = [];
    for (const r of routes) {
      const answer = await shop.call(r.path, { role: 'read', ...(r.body !== undefined && { body: r.body }) });
      expect(answer.status, r.path).toBe(200);
      expect(answer.body.recommendationId, r.path).toMatch(UUID_V7);
      expect(answer.body.items.length, r.path).toBeGreaterThan(0);
      ids.add(answer.body.recommendationId);
      answers.push(answer);
    }
    expect(ids.size).toBe(routes.length);
    expect(answers[1]!.body.strategy).toBe('popular');
    // Nothing is written while the request is answered: the batch is not full and the timer is far off.
    expect(await stored(answers[0]!.body.recommendationId)).toBeNull();
    await shop.server.context.impressions.flush();

    for (const [k, r] of routes.entries()) {
      const { body } = answers[k]!;
      const row = await stored(body.recommendationId);
      expect(row, r.path).not.toBeNull();
      expect(row, r.path).toMatchObject({ route: r.route, strategy: body.strategy ?? 'model', modelVersion: body.modelVersion, variant: null, userId: r.user, sessionId: null });
      expect(row!.ts.getTime()).toBe(uuidV7Millis(body.recommendationId));
      expect(row!.items, r.path).toEqual(body.items.map((x: { item: string }) => x.item));
      body.items.forEach((shown: { probability: number; score: number; similarity: number }, rank: number) => {
        if (r.route === 'similar_items') {
          expect(row!.probabilities[rank]).toBeNull();
          expect(row!.scores[rank]).toBeCloseTo(shown.similarity, 10);
        } else {
          expect(row!.probabilities[rank]).toBeCloseTo(shown.probability, 10);
          expect(row!.scores[rank]).toBeCloseTo(shown.score, 10);
        }
      });
    }
    expect(await shop.store.prisma.impression.count()).toBe(routes.length);
  });

  it('writes many responses in few transactions, flushing by size while they come', async () => {
    await shop.server.context.impressions.flush();
    const batches = await metricValue(shop.server, 'attnrec_impression_batches_total');
    const before = await shop.store.prisma.impression.count();
    const answers = await Promise.all(Array.from({ length: 60 }, (_, i) => shop.call(`/v1/users/user-${i}/recommendations?k=3`, { role: 'read' })));
    expect(answers.every((a) => a.status === 200 && UUID_V7.test(a.body.recommendationId))).toBe(true);
    // Two full batches of 25 are written by size without anyone asking; the last 10 wait for the timer.
    await until(async () => (await shop.store.prisma.impression.count()) === before + 50, 10_000);
    expect(shop.server.context.impressions.buffered).toBe(10);
    await shop.server.context.impressions.flush();
    expect(await shop.store.prisma.impression.count()).toBe(before + 60);
    expect((await metricValue(shop.server, 'attnrec_impression_batches_total')) - batches).toBe(3);
    const rows = await shop.store.prisma.impression.findMany({ where: { id: { in: answers.map((a) => a.body.recommendationId) } } });
    expect(rows.reduce((n, r) => n + (r.itemIds as unknown[]).length, 0)).toBe(answers.reduce((n, a) => n + a.body.items.length, 0));
  });

  it('writes what is buffered when the server shuts down', async () => {
    const replica = await startServer(validateServeConfig({ ...shop.server.context.config, port: 0 }), () => {}, { impressions: { flushMs: 600_000 } });
    let closed = false;
    try {
      const { body } = await call(replica, '/v1/users/user-7/recommendations?k=2');
      expect(replica.context.impressions.buffered).toBe(1);
      expect(await stored(body.recommendationId)).toBeNull();
      await replica.close();
      closed = true;
      expect((await stored(body.recommendationId))?.items).toEqual(body.items.map((x: { item: string }) => x.item));
    } finally {
      if (!closed) await replica.close();
    }
  });

  it('--impressions off: responses keep their recommendationId, nothing is recorded', async () => {
    const replica = await startServer(validateServeConfig({ ...shop.server.context.config, port: 0, impressions: 'off' }), () => {});
    const before = await shop.store.prisma.impression.count();
    let ids: string[] = [];
    try {
      const answers = [
        await call(replica, '/v1/users/user-1/recommendations?k=2'),
        await call(replica, '/v1/sessions/recommendations', { events: [{ item: 'sku-1' }] }),
        await call(replica, '/v1/users/user-1/next-sequence?k=2'),
        await call(replica, '/v1/rank', { user: 'user-1', candidates: ['sku-1', 'sku-2'] }),
        await call(replica, '/v1/items/sku-1/similar?k=2'),
      ];
      ids = answers.map((a) => a.body.recommendationId);
      expect(answers.every((a) => a.status === 200)).toBe(true);
      for (const id of ids) expect(id).toMatch(UUID_V7);
      expect(replica.context.impressions.buffered).toBe(0);
      expect(await metricValue(replica, 'attnrec_impressions_buffered')).toBe(0);
    } finally {
      await replica.close();
    }
    expect(await shop.store.prisma.impression.count()).toBe(before);
    expect(await shop.store.prisma.impression.count({ where: { id: { in: ids } } })).toBe(0);
  });

  it('deletes impressions past the retention period (90 days by default) and keeps the others', async () => {
    const hex = (ms: number, n: number): string => {
      const h = ms.toString(16).padStart(12, '0');
      return `${h.slice(0, 8)}-${h.slice(8)}-7000-8${n.toString(16).padStart(3, '0')}-000000000000`;
    };
    const at = (daysAgo: number, n: number): ImpressionRow => {
      const ts = Date.now() - daysAgo * DAY;
      return { id: hex(ts, n), ts, route: 'user_recommendations', strategy: 'model', modelVersion: 1, experimentId: null, variant: null, userId: `old-${n}`, sessionId: null, itemIds: [1], probabilities: [0.1], scores: [1] };
    };
    const old = [at(120, 1), at(91, 2), at(90.01, 3)];
    const kept = [at(89.9, 4), at(10, 5)];
    await writeImpressions(shop.store, [...old, ...kept]);
    const total = await shop.store.prisma.impression.count();
    const pruned = await metricValue(shop.server, 'attnrec_impressions_pruned_total');
    await shop.server.context.impressions.prune();
    expect(await shop.store.prisma.impression.count()).toBe(total - 3);
    expect(await shop.store.prisma.impression.count({ where: { id: { in: kept.map((r) => r.id) } } })).toBe(2);
    expect((await metricValue(shop.server, 'attnrec_impressions_pruned_total')) - pruned).toBe(3);
    expect(logs).toContain('impressions: deleted 3 impression(s) older than 90 days (and 0 attributions to them, in 2 statements)');
  });

  // Last: it breaks the impression table of this shop's database.
  it('a broken impression store costs the impressions only: recommendations and events answer, a counter and a log line say so', async () => {
    if (shop.store.provider === 'sqlite') {
      shop.store.db.exec(`CREATE TRIGGER impressions_refused BEFORE INSERT ON impressions BEGIN SELECT RAISE(ABORT, 'impressions refused'); END`);
    } else {
      await shop.store.pool.query(`CREATE FUNCTION impressions_refused() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'impressions refused'; END $$`);
      await shop.store.pool.query('CREATE TRIGGER impressions_refused BEFORE INSERT ON impressions FOR EACH ROW EXECUTE FUNCTION impressions_refused()');
    }
    const failures = await metricValue(shop.server, 'attnrec_impression_store_failures_total', '{operation="write"}');
    const answers = [
      await shop.call('/v1/users/user-3/recommendations?k=3', { role: 'read' }),
      await shop.call('/v1/rank', { role: 'read', body: { user: 'user-3', candidates: ['sku-1', 'sku-2'] } }),
      await shop.call('/v1/items/sku-3/similar?k=2', { role: 'read' }),
    ];
    for (const a of answers) {
      expect(a.status).toBe(200);
      expect(a.body.recommendationId).toMatch(UUID_V7);
    }
    await shop.server.context.impressions.flush();
    expect((await metricValue(shop.server, 'attnrec_impression_store_failures_total', '{operation="write"}')) - failures).toBe(1);
    expect(await metricValue(shop.server, 'attnrec_impressions_dropped_total', '{reason="store_failed"}')).toBe(3);
    expect(logs.filter((l) => l.startsWith('impressions: could not store 3 impression(s)'))).toHaveLength(1);
    expect(logs.find((l) => l.startsWith('impressions: could not store'))).toMatch(/impressions refused/);
    // Neither the recommendation routes nor event ingestion depend on it.
    expect((await shop.call('/v1/users/user-3/recommendations?k=3', { role: 'read' })).status).toBe(200);
    expect((await shop.call('/v1/events', { role: 'write', body: { events: [{ userId: 'user-3', itemId: 'sku-4', type: 'view' }] } })).status).toBe(200);
  });
});
