import { renameSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KEYS, servedShop, type ServedShop } from '../../test/support/served-shop.js';
import { validateServeConfig } from './config.js';
import { startServer, type RunningServer } from './server.js';
import { ROOT, runScriptProcess, startServeProcess, type ServeProcess } from '../../test/support/run-job.js';
import { describeEachProvider, postgresAvailable, scratchStore } from '../../test/support/test-stores.js';

describe.skipIf(!postgresAvailable())('database outage [postgresql]', () => {
  let shop: ServedShop;
  beforeAll(async () => {
    shop = await servedShop('postgresql', {}, { viaProxy: true });
  }, 120_000);
  afterAll(async () => {
    await shop?.dispose();
  });

  it('answers 503 problem+json and not-ready while the database is unreachable, and recovers without a restart', async () => {
    const event = (id: string): unknown => ({ events: [{ userId: 'user-1', itemId: 'sku-1', type: 'view', eventId: id }] });
    expect((await shop.call('/v1/events', { role: 'write', body: event('before') })).status).toBe(200);
    await shop.proxy!.cut();

    const write = await shop.call('/v1/events', { role: 'write', body: event('during') });
    expect(write.status).toBe(503);
    expect(write.headers.get('content-type')).toContain('application/problem+json');
    expect(write.body.code).toBe('DATABASE_UNAVAILABLE');
    expect(write.headers.get('retry-after')).toBe('5');
    const ready = await shop.call('/health/ready', { role: 'none' });
    expect(ready.status).toBe(503);
    expect(ready.body.code).toBe('DATABASE_UNAVAILABLE');
    const uncached = await shop.call('/v1/users/never-seen-user/recommendations', { role: 'read' });
    expect([200, 503]).toContain(uncached.status); // popular items may still be cached
    expect((await shop.call('/health/live', { role: 'none' })).status).toBe(200);

    await shop.proxy!.open();
    let recovered = 0;
    for (let i = 0; i < 50 && recovered !== 200; i++) {
      recovered = (await shop.call('/health/ready', { role: 'none' })).status;
      if (recovered !== 200) await new Promise((r) => setTimeout(r, 100));
    }
    expect(recovered).toBe(200);
    expect((await shop.call('/v1/events', { role: 'write', body: event('after') })).body).toMatchObject({ stored: 1 });
    // Nothing acknowledged was lost, nothing refused was stored.
    const ids = (await shop.store.prisma.event.findMany({ where: { eventId: { in: ['before', 'during', 'after'] } }, select: { eventId: true } })).map((e) => e.eventId).sort();
    expect(ids).toEqual(['after', 'before']);
  });
});

describe('broken model artifacts [sqlite]', () => {
  let shop: ServedShop;
  beforeAll(async () => {
    shop = await servedShop('sqlite');
  }, 120_000);
  afterAll(async () => {
    await shop?.dispose();
  });

  it('refuses to activate a corrupt or missing artifact; the serving version keeps serving', async () => {
    const corrupt = await shop.trainAnother(2);
    const missing = await shop.trainAnother(3);
    const artifact = async (v: number): Promise<string> => (await shop.store.prisma.modelVersion.findUniqueOrThrow({ where: { id: v } })).artifactPath;
    truncateSync(join(await artifact(corrupt), 'weights.bin'), 100);
    renameSync(await artifact(missing), `${await artifact(missing)}-gone`);

    for (const version of [corrupt, missing]) {
      const r = await shop.call(`/v1/models/${version}/activate`, { method: 'POST' });
      expect(r.status).toBe(409);
      expect(r.body.code).toBe('ARTIFACT_CORRUPT');
      expect((await shop.call('/v1/users/user-1/recommendations', { role: 'read' })).body).toMatchObject({ strategy: 'model', modelVersion: 1 });
    }
    expect((await shop.store.prisma.modelVersion.findFirstOrThrow({ where: { active: true } })).id).toBe(1);

    // Another replica (or a person) marks the broken version active: this server logs it and keeps version 1.
    await shop.store.prisma.$transaction([
      shop.store.prisma.modelVersion.updateMany({ where: { active: true }, data: { active: false } }),
      shop.store.prisma.modelVersion.update({ where: { id: corrupt }, data: { active: true } }),
    ]);
    await shop.server.context.models.sync();
    expect(shop.server.context.models.current?.version).toBe(1);
    expect((await shop.call('/v1/users/user-1/recommendations', { role: 'read' })).body.modelVersion).toBe(1);
    expect((await shop.call('/health/ready', { role: 'none' })).status).toBe(200);
  });
});

describeEachProvider('concurrent writers', (provider) => {
  let shop: ServedShop;
  beforeAll(async () => {
    shop = await servedShop(provider, { rateLimitPerMinute: 0 }, { train: false });
  }, 120_000);
  afterAll(async () => {
    await shop?.dispose();
  });

  it('8 writers × 10,000 events with duplicate event ids mixed in: exact counts', async () => {
    const WRITERS = 8;
    const PER_WRITER = 10_000;
    const DISTINCT = 60_000; // writer w's event j is event (w × 10,000 + j) mod 60,000: 20,000 repeats
    const before = await shop.store.prisma.event.count();
    const totals = { stored: 0, duplicates: 0, failed: 0 };
    await Promise.all(
      Array.from({ length: WRITERS }, async (_, w) => {
        for (let from = 0; from < PER_WRITER; from += 100) {
          const events = Array.from({ length: 100 }, (__, j) => {
            const n = (w * PER_WRITER + from + j) % DISTINCT;
            return { userId: `writer-user-${n % 500}`, itemId: `sku-${n % 12}`, type: 'view', timestamp: 1_800_000_000_000 + n, eventId: `concurrent-${n}` };
          });
          const r = await shop.call('/v1/events', { role: 'write', body: { events } });
          if (r.status !== 200) totals.failed++;
          else {
            totals.stored += r.body.stored;
            totals.duplicates += r.body.duplicates;
          }
        }
      }),
    );
    expect(totals).toEqual({ stored: DISTINCT, duplicates: WRITERS * PER_WRITER - DISTINCT, failed: 0 });
    expect((await shop.store.prisma.event.count()) - before).toBe(DISTINCT);
    expect(await shop.store.prisma.event.count({ where: { eventId: { startsWith: 'concurrent-' } } })).toBe(DISTINCT);
  }, 180_000);
});

describe('fuzzed requests [sqlite]', () => {
  let shop: ServedShop;
  beforeAll(async () => {
    shop = await servedShop('sqlite', { rateLimitPerMinute: 0 });
  }, 120_000);
  afterAll(async () => {
    await shop?.dispose();
  });

  const FIELDS = ['k', 'exclude', 'category', 'includeItems', 'excludeItems', 'beam', 'target', 'version', 'events', 'items', 'user', 'session', 'candidates', 'userId', 'itemId', 'type', 'timestamp', 'eventId', 'value', 'quantity', 'id', 'title', 'price', 'active', 'item'];
  const jsonish = fc.jsonValue({ maxDepth: 3 });
  const fieldValue = fc.oneof(jsonish, fc.string(), fc.integer(), fc.double(), fc.array(fc.record({ item: fc.string(), type: fc.string() }), { maxLength: 3 }));
  const object = fc.dictionary(fc.oneof(fc.constantFrom(...FIELDS), fc.string()), fieldValue, { maxKeys: 6 });
  const eventLike = fc.record(
    { userId: fieldValue, sessionId: fieldValue, itemId: fieldValue, type: fieldValue, timestamp: fieldValue, eventId: fieldValue, value: fieldValue, quantity: fieldValue },
    { requiredKeys: [] },
  );
  const body = fc.oneof(object, jsonish, fc.record({ events: fc.array(eventLike, { maxLength: 5 }) }), fc.record({ items: fc.array(object, { maxLength: 3 }) }), fc.string());
  const query = fc.dictionary(fc.oneof(fc.constantFrom(...FIELDS), fc.string({ maxLength: 5 })), fc.string({ maxLength: 20 }), { maxKeys: 4 });
  const id = fc.oneof(fc.constantFrom('user-1', 'sku-1', '1'), fc.string({ minLength: 1, maxLength: 30 }));
  const request = fc.oneof(
    fc.record({ method: fc.constant('POST'), path: fc.constantFrom('/v1/events', '/v1/sessions/recommendations', '/v1/rank', '/v1/sessions/attention'), body }),
    fc.record({ method: fc.constant('PUT'), path: fc.constant('/v1/items'), body }),
    fc.record({
      method: fc.constantFrom('GET', 'DELETE'),
      path: fc.tuple(fc.constantFrom('/v1/users/', '/v1/items/'), id, fc.constantFrom('', '/recommendations', '/next-sequence', '/similar', '/attention')).map(([a, b, c]) => `${a}${encodeURIComponent(b)}${c}`),
      query,
    }),
    fc.record({ method: fc.constant('POST'), path: fc.tuple(fc.constant('/v1/models/'), id).map(([a, b]) => `${a}${encodeURIComponent(b)}/activate`), body: fc.constant(undefined) }),
  );

  it('never answers 5xx, always problem+json for errors, and stays up', async () => {
    let requests = 0;
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        const q = 'query' in r && r.query ? `?${new URLSearchParams(r.query as Record<string, string>)}` : '';
        const raw = 'body' in r && typeof r.body === 'string';
        const response = await shop.call(`${r.path}${q}`, {
          method: r.method,
          ...('body' in r && r.body !== undefined && { body: raw ? r.body : JSON.stringify(r.body) }),
          role: 'admin',
        });
        requests++;
        expect(response.status, `${r.method} ${r.path}${q}`).toBeLessThan(500);
        if (response.status >= 400) expect(response.headers.get('content-type')).toContain('application/problem+json');
      }),
      { numRuns: 400, seed: 20261125 },
    );
    expect(requests).toBe(400);
    expect((await shop.call('/health/ready', { role: 'none' })).status).toBe(200);
  }, 120_000);
});

describeEachProvider('two replicas', (provider) => {
  let shop: ServedShop;
  let replica: RunningServer;
  beforeAll(async () => {
    shop = await servedShop(provider, { modelPollSeconds: 0.2 });
    replica = await startServer(validateServeConfig({ ...shop.server.context.config, port: 0, modelPollSeconds: 0.2, userCacheTtlSeconds: 0.5 }), () => {});
  }, 120_000);
  afterAll(async () => {
    await replica?.close();
    await shop?.dispose();
  });

  it('share the database: an activation on one reaches the other within seconds, and so do events (after the cache TTL)', async () => {
    const second = await shop.trainAnother(2);
    const fromReplica = async (path: string): Promise<{ status: number; body: any }> => { // eslint-disable-line @typescript-eslint/no-explicit-any -- route bodies
      const r = await fetch(`${replica.url}${path}`, { headers: { authorization: `Bearer ${KEYS.read}` } });
      return { status: r.status, body: await r.json() };
    };
    expect((await fromReplica('/v1/users/user-1/recommendations')).body.modelVersion).toBe(1);
    expect((await shop.call(`/v1/models/${second}/activate`, { method: 'POST' })).status).toBe(200);
    const started = Date.now();
    let version = 1;
    while (version !== second && Date.now() - started < 5_000) {
      await new Promise((r) => setTimeout(r, 100));
      version = (await fromReplica('/v1/users/user-1/recommendations')).body.modelVersion;
    }
    expect(version).toBe(second);

    // A purchase stored through one replica stops being recommended by the other once its cache entry expires.
    const bought = (await fromReplica('/v1/users/user-1/recommendations?k=1')).body.items[0].item;
    await shop.call('/v1/events', { role: 'write', body: { events: [{ userId: 'user-1', itemId: bought, type: 'purchase', eventId: 'replica-purchase' }] } });
    await new Promise((r) => setTimeout(r, 700));
    expect((await fromReplica('/v1/users/user-1/recommendations?k=12')).body.items.map((x: { item: string }) => x.item)).not.toContain(bought);
  });
});

describeEachProvider('concurrent writer processes', (provider) => {
  it('8 processes × 10,000 events, each on its own connection, duplicate ids mixed in: exact counts', async () => {
    const store = await scratchStore(provider);
    try {
      const runs = await Promise.all(Array.from({ length: 8 }, (_, w) => runScriptProcess(join(ROOT, 'test', 'support', 'ingest-writer.ts'), [store.target.url, String(w), '10000', '60000'])));
      for (const run of runs) expect(run.code, run.stderr).toBe(0);
      const results = runs.map((run) => JSON.parse(run.stdout) as { stored: number; duplicates: number });
      expect(results.reduce((s, r) => s + r.stored, 0)).toBe(60_000);
      expect(results.reduce((s, r) => s + r.duplicates, 0)).toBe(20_000);
      expect(await store.prisma.event.count()).toBe(60_000);
      expect(await store.prisma.user.count()).toBe(500);
      expect(await store.prisma.item.count()).toBe(12);
    } finally {
      await store.dispose();
    }
  }, 180_000);
});

describe.skipIf(!postgresAvailable())('two replica processes [postgresql]', () => {
  let shop: ServedShop;
  const replicas: ServeProcess[] = [];
  beforeAll(async () => {
    shop = await servedShop('postgresql');
    // Two more servers, each a process of its own, on the shop's database; their cached users never expire by time.
    const args = ['--database-url', shop.store.target.url, '--workers', '1', '--model-poll', '0', '--user-cache-ttl', '0', '--rate-limit', '0'];
    const env = { ATTNREC_API_KEYS: `read:${KEYS.read},write:${KEYS.write},admin:${KEYS.admin}` };
    // And two whose keys may make 10 requests a minute between them.
    const limitedArgs = [...args.slice(0, -2), '--rate-limit', '10'];
    replicas.push(...(await Promise.all([startServeProcess(args, env), startServeProcess(args, env), startServeProcess(limitedArgs, env), startServeProcess(limitedArgs, env)])));
  }, 180_000);
  afterAll(async () => {
    await Promise.all(replicas.map((r) => r.kill('SIGTERM')));
    await shop?.dispose();
  });

  const call = async (replica: ServeProcess, path: string, init: { role?: 'read' | 'write'; body?: unknown } = {}): Promise<{ status: number; body: any }> => { // eslint-disable-line @typescript-eslint/no-explicit-any -- route bodies
    const r = await fetch(`${replica.url}${path}`, {
      method: init.body === undefined ? 'GET' : 'POST',
      headers: { authorization: `Bearer ${KEYS[init.role ?? 'read']}`, ...(init.body !== undefined && { 'content-type': 'application/json' }) },
      ...(init.body !== undefined && { body: JSON.stringify(init.body) }),
    });
    return { status: r.status, body: await r.json() };
  };
  const items = async (replica: ServeProcess, user: string): Promise<string[]> => (await call(replica, `/v1/users/${user}/recommendations?k=12`)).body.items.map((x: { item: string }) => x.item);

  it('a purchase stored through one stops being recommended by the other within a second, both ways', async () => {
    for (const [from, to, user] of [[replicas[0]!, replicas[1]!, 'user-1'], [replicas[1]!, replicas[0]!, 'user-2']] as const) {
      // The other replica has the user cached (a second call is a hit), with the item about to be bought at the top.
      const bought = (await items(to, user))[0]!;
      expect(await items(to, user)).toContain(bought);
      const stored = await call(from, '/v1/events', { role: 'write', body: { events: [{ userId: user, itemId: bought, type: 'purchase', eventId: `replica-${user}` }] } });
      expect(stored.body.stored).toBe(1);
      const started = Date.now();
      let seen = await items(to, user);
      while (seen.includes(bought) && Date.now() - started < 5_000) {
        await new Promise((r) => setTimeout(r, 25));
        seen = await items(to, user);
      }
      expect(seen).not.toContain(bought);
      expect(Date.now() - started).toBeLessThan(1_000);
    }
    const metrics = await (await fetch(`${replicas[1]!.url}/metrics`)).text();
    expect(Number(/attnrec_replica_event_notices_total (\d+)/.exec(metrics)?.[1])).toBeGreaterThanOrEqual(1);
  }, 60_000);

  it('enforce one rate limit per key between them, not one each', async () => {
    const [a, b] = [replicas[2]!, replicas[3]!];
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) {
      for (const replica of [a, b]) statuses.push((await fetch(`${replica.url}/v1/models`, { headers: { authorization: `Bearer ${KEYS.read}` } })).status);
    }
    // 16 requests, 8 through each: 10 answered in all, the rest refused; each replica alone would have answered all 8.
    expect(statuses.filter((s) => s === 200)).toHaveLength(10);
    expect(statuses.filter((s) => s === 429)).toHaveLength(6);
    const refused = await fetch(`${b.url}/v1/models`, { headers: { authorization: `Bearer ${KEYS.read}` } });
    expect(refused.status).toBe(429);
    expect(refused.headers.get('content-type')).toContain('application/problem+json');
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    // Another key has its own budget.
    expect((await fetch(`${a.url}/v1/models`, { headers: { authorization: `Bearer ${KEYS.write}` } })).status).toBe(200);
  }, 60_000);
});
