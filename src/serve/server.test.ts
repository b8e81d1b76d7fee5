import { afterAll, beforeAll, expect, it } from 'vitest';
import { servedShop, type ServedShop } from '../../test/support/served-shop.js';
import { describeEachProvider } from '../../test/support/test-stores.js';

const PROBLEM = 'application/problem+json';

/** "METHOD /path/{param}" for every route the running app registered. */
function routesOf(shop: ServedShop): string[] {
  interface Layer {
    route?: { path: string; methods: Record<string, boolean> };
    handle?: { stack?: Layer[] };
    matchers?: unknown;
  }
  const app = shop.server.app as unknown as { router: { stack: Layer[] } };
  const out: string[] = [];
  const walk = (stack: Layer[], prefix: string): void => {
    for (const layer of stack) {
      // app.all (the 405 answers) registers every method: not a documented route.
      if (layer.route && Object.keys(layer.route.methods).length < 10) {
        for (const method of Object.keys(layer.route.methods)) {
          if (method === '_all') continue;
          out.push(`${method.toUpperCase()} ${prefix}${layer.route.path.replace(/:(\w+)/g, '{$1}')}`);
        }
      } else if (layer.handle?.stack) walk(layer.handle.stack, '/v1');
    }
  };
  walk(app.router.stack, '');
  return [...new Set(out)];
}

describeEachProvider('recommendation API', (provider) => {
  let shop: ServedShop;
  beforeAll(async () => {
    shop = await servedShop(provider);
  }, 120_000);
  afterAll(async () => {
    await shop?.dispose();
  });

  it('recommends the next items of a stored user with probabilities from the active model', async () => {
    // user-0's history is a cycle; whatever the last item sku-j, the model learnt that sku-(j+1) follows.
    const { status, body } = await shop.call('/v1/users/user-0/recommendations?k=5&exclude=none', { role: 'read' });
    expect(status).toBe(200);
    expect(body).toMatchObject({ user: 'user-0', strategy: 'model', modelVersion: 1 });
    expect(body.items).toHaveLength(5);
    for (let i = 1; i < body.items.length; i++) expect(body.items[i - 1].probability).toBeGreaterThanOrEqual(body.items[i].probability);
    expect(body.items.reduce((s: number, x: { probability: number }) => s + x.probability, 0)).toBeLessThanOrEqual(1 + 1e-6);
    expect(body.items[0]).toMatchObject({ title: expect.stringMatching(/^Item \d+$/), category: expect.stringMatching(/even|odd/), price: expect.any(Number) });
    const history = await shop.store.prisma.event.findMany({ where: { user: { externalId: 'user-0' } }, orderBy: { ts: 'asc' }, include: { item: true } });
    const last = Number(history.at(-1)!.item.externalId.slice(4));
    expect(body.items[0].item).toBe(`sku-${(last + 1) % 12}`);
    expect(body.history).toEqual({ events: history.length, used: Math.min(10, history.length) });
  });

  it('applies every filter: exclude purchased (default), seen, none; category; includeItems; excludeItems', async () => {
    const history = await shop.store.prisma.event.findMany({ where: { user: { externalId: 'user-3' } }, include: { item: true, type: true } });
    const seen = new Set(history.map((e) => e.item.externalId));
    const purchased = new Set(history.filter((e) => e.type.name === 'purchase').map((e) => e.item.externalId));
    const ids = async (query: string): Promise<string[]> => (await shop.call(`/v1/users/user-3/recommendations?k=12${query}`, { role: 'read' })).body.items.map((x: { item: string }) => x.item);

    const byDefault = await ids('');
    expect(byDefault.length).toBe(12 - purchased.size);
    for (const id of purchased) expect(byDefault).not.toContain(id);
    const notSeen = await ids('&exclude=seen');
    expect(notSeen.length).toBe(12 - seen.size);
    for (const id of seen) expect(notSeen).not.toContain(id);
    expect(await ids('&exclude=none')).toHaveLength(12);
    const even = await ids('&exclude=none&category=even');
    expect(even.length).toBe(6);
    for (const id of even) expect(Number(id.slice(4)) % 2).toBe(0);
    expect((await ids('&exclude=none&includeItems=sku-1,sku-2,unknown')).sort()).toEqual(['sku-1', 'sku-2']);
    expect(await ids('&exclude=none&excludeItems=sku-1,sku-2')).not.toContain('sku-1');
  });

  it('recommends for an inline anonymous session without storing it', async () => {
    const before = await shop.store.prisma.event.count();
    const { status, body } = await shop.call('/v1/sessions/recommendations', {
      role: 'read',
      body: { events: [{ item: 'sku-3', type: 'view' }, { item: 'sku-4', type: 'view' }, { item: 'not-an-item' }], k: 3, exclude: 'seen' },
    });
    expect(status).toBe(200);
    expect(body.strategy).toBe('model');
    expect(body.items[0].item).toBe('sku-5');
    expect(body.items.map((x: { item: string }) => x.item)).not.toContain('sku-4');
    expect(body.history).toEqual({ events: 3, used: 2 });
    expect(await shop.store.prisma.event.count()).toBe(before);
  });

  it('gives a stored user and the same history sent inline the same answer (cached shortlist or full scan)', async () => {
    const history = await shop.store.prisma.event.findMany({ where: { user: { externalId: 'user-4' } }, orderBy: [{ ts: 'asc' }, { itemId: 'asc' }], include: { item: true, type: true } });
    const events = history.map((e) => ({ item: e.item.externalId, type: e.type.name }));
    for (const query of [{ k: 3, exclude: 'none' }, { k: 5, exclude: 'purchased', category: 'odd' }, { k: 12, exclude: 'seen' }] as const) {
      const qs = new URLSearchParams(Object.entries(query).map(([key, v]): [string, string] => [key, String(v)])).toString();
      const stored = (await shop.call(`/v1/users/user-4/recommendations?${qs}`, { role: 'read' })).body.items;
      const inline = (await shop.call('/v1/sessions/recommendations', { role: 'read', body: { events, ...query } })).body.items;
      expect(stored.map((x: { item: string }) => x.item)).toEqual(inline.map((x: { item: string }) => x.item));
      stored.forEach((x: { probability: number }, i: number) => expect(x.probability).toBeCloseTo(inline[i].probability, 6));
    }
  });

  it('extends a history by beam search; beam=1 is greedy and starts with the top recommendation', async () => {
    const top = (await shop.call('/v1/users/user-5/recommendations?k=1&exclude=seen', { role: 'read' })).body.items[0].item;
    const greedy = await shop.call('/v1/users/user-5/next-sequence?k=3&beam=1&exclude=seen', { role: 'read' });
    expect(greedy.status).toBe(200);
    expect(greedy.body.items).toHaveLength(3);
    expect(greedy.body.items[0].item).toBe(top);
    expect(new Set(greedy.body.items.map((x: { item: string }) => x.item)).size).toBe(3);
    const product = greedy.body.items.reduce((p: number, x: { probability: number }) => p * x.probability, 1);
    expect(greedy.body.probability).toBeCloseTo(product, 8);
    const beam = await shop.call('/v1/users/user-5/next-sequence?k=3&beam=4&exclude=seen', { role: 'read' });
    expect(beam.body.probability).toBeGreaterThanOrEqual(greedy.body.probability - 1e-9);
    expect(beam.body.alternatives.length).toBeGreaterThan(0);
    for (const alt of beam.body.alternatives) expect(alt.probability).toBeLessThanOrEqual(beam.body.probability);
  });

  it('finds similar items by cosine over item embeddings, never the item itself', async () => {
    const { status, body } = await shop.call('/v1/items/sku-2/similar?k=4', { role: 'read' });
    expect(status).toBe(200);
    expect(body.items).toHaveLength(4);
    expect(body.items.map((x: { item: string }) => x.item)).not.toContain('sku-2');
    for (const x of body.items) expect(Math.abs(x.similarity)).toBeLessThanOrEqual(1 + 1e-6);
    const odd = await shop.call('/v1/items/sku-2/similar?k=10&category=odd', { role: 'read' });
    expect(odd.body.items).toHaveLength(6);
    expect((await shop.call('/v1/items/nope/similar', { role: 'read' })).body.code).toBe('ITEM_NOT_FOUND');
  });

  it('re-ranks candidates with probabilities and says why any were dropped', async () => {
    const { status, body } = await shop.call('/v1/rank', { role: 'read', body: { session: [{ item: 'sku-7', type: 'view' }], candidates: ['sku-1', 'sku-8', 'sku-7', 'ghost', 'sku-3'], exclude: 'seen' } });
    expect(status).toBe(200);
    expect(body.items.map((x: { item: string }) => x.item)[0]).toBe('sku-8');
    expect(body.items).toHaveLength(3);
    for (let i = 1; i < body.items.length; i++) expect(body.items[i - 1].score).toBeGreaterThanOrEqual(body.items[i].score);
    expect(body.dropped).toEqual(expect.arrayContaining([{ item: 'ghost', reason: 'unknown' }, { item: 'sku-7', reason: 'filtered' }]));
    const forUser = await shop.call('/v1/rank', { role: 'read', body: { user: 'user-1', candidates: ['sku-1', 'sku-2'], exclude: 'none' } });
    expect(forUser.body.items).toHaveLength(2);
  });

  it('explains a prediction: attention per layer and head (BertViz shape), rollout, leave-one-out', async () => {
    const { status, body } = await shop.call('/v1/users/user-0/attention?k=3', { role: 'read' });
    expect(status).toBe(200);
    const events = await shop.store.prisma.event.count({ where: { user: { externalId: 'user-0' } } });
    const T = Math.min(10, events);
    expect(body).toMatchObject({ user: 'user-0', modelVersion: expect.any(Number), attention: { members: 1, blocks: 1, layers: 1, heads: 2, length: T } });
    expect(body.history).toHaveLength(T);
    expect(body.history[0]).toMatchObject({ position: 0, item: expect.stringMatching(/^sku-/), title: expect.stringMatching(/^Item/), type: 'view', timestamp: expect.stringMatching(/^20\d\d-/) });
    expect(body.history.at(-1).type).toBe('purchase');
    const weights = body.attention.weights as number[][][][][];
    expect(weights).toHaveLength(1);
    expect(weights[0]).toHaveLength(1);
    expect(weights[0]![0]).toHaveLength(2);
    for (const head of weights[0]![0]!) {
      expect(head).toHaveLength(T);
      head.forEach((row, t) => {
        expect(row.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 4);
        row.forEach((w, s) => s > t && expect(w).toBe(0));
      });
    }
    expect(body.rollout.reduce((a: number, b: number) => a + b, 0)).toBeCloseTo(1, 4);
    expect(body.leaveOneOut).toHaveLength(T);
    expect(body.predictions).toHaveLength(3);
    expect(body.target.item).toBe(body.predictions[0].item);

    const targeted = await shop.call(`/v1/users/user-0/attention?target=sku-3&version=${body.modelVersion}`, { role: 'read' });
    expect(targeted.body.target.item).toBe('sku-3');
    const session = await shop.call('/v1/sessions/attention', { role: 'read', body: { events: [{ item: 'sku-1', timestamp: '2024-05-01T10:00:00Z' }, { item: 'sku-2', type: 'cart' }, { item: 'nope' }], k: 2 } });
    expect(session.status).toBe(200);
    expect(session.body.history.map((e: { item: string; type: string }) => `${e.item}:${e.type}`)).toEqual(['sku-1:view', 'sku-2:cart']);
    expect(session.body.history[0].timestamp).toBe('2024-05-01T10:00:00.000Z');
    expect(session.body.ignored.unknownItems).toBe(1);
    expect((await shop.call('/v1/users/nobody/attention', { role: 'read' })).body.code).toBe('USER_NOT_FOUND');
    expect((await shop.call('/v1/users/user-0/attention?version=999', { role: 'read' })).body.code).toBe('MODEL_VERSION_NOT_FOUND');
  });

  it('falls back to popular items for a shopper without usable history', async () => {
    const unknown = await shop.call('/v1/users/somebody-new/recommendations?k=3', { role: 'read' });
    expect(unknown.status).toBe(200);
    expect(unknown.body.strategy).toBe('popular');
    expect(unknown.body.items).toHaveLength(3);
    for (let i = 1; i < 3; i++) expect(unknown.body.items[i - 1].score).toBeGreaterThanOrEqual(unknown.body.items[i].score);
    const session = await shop.call('/v1/sessions/recommendations', { role: 'read', body: { events: [{ item: 'unknown-item' }] } });
    expect(session.body.strategy).toBe('popular');
  });

  it('ingests events idempotently and invalidates the cached user', async () => {
    const before = (await shop.call('/v1/users/user-9/recommendations?k=12&exclude=purchased', { role: 'read' })).body.items.map((x: { item: string }) => x.item);
    expect(before).toContain('sku-11');
    const events = [
      { userId: 'user-9', itemId: 'sku-11', type: 'purchase', eventId: 'order-1', timestamp: '2030-01-01T00:00:00Z' },
      { userId: 'user-9', itemId: 'sku-new', type: 'add_to_cart', eventId: 'cart-1', timestamp: 1_900_000_000 },
    ];
    const first = await shop.call('/v1/events', { role: 'write', body: { events } });
    expect(first).toMatchObject({ status: 200, body: { received: 2, stored: 2, duplicates: 0 } });
    const replay = await shop.call('/v1/events', { role: 'write', body: { events } });
    expect(replay.body).toEqual({ received: 2, stored: 0, duplicates: 2 });
    const after = (await shop.call('/v1/users/user-9/recommendations?k=12&exclude=purchased', { role: 'read' })).body;
    expect(after.items.map((x: { item: string }) => x.item)).not.toContain('sku-11');
    expect(after.history.events).toBe((await shop.store.prisma.event.count({ where: { user: { externalId: 'user-9' } } })));
    // The unknown item was created, inactive for nobody, but the model (trained before it) cannot score it.
    expect((await shop.call('/v1/items/sku-new', { role: 'read' })).body).toMatchObject({ id: 'sku-new', active: true, inModel: false });
    // An item another replica (or an import) created meanwhile is known from the first event here that names it.
    await shop.store.prisma.item.create({ data: { externalId: 'sku-elsewhere', title: 'Made elsewhere' } });
    expect((await shop.call('/v1/items/sku-elsewhere', { role: 'read' })).status).toBe(404);
    await shop.call('/v1/events', { role: 'write', body: { events: [{ userId: 'user-9', itemId: 'sku-elsewhere', type: 'view', eventId: 'view-elsewhere', timestamp: 1_900_000_001 }] } });
    expect((await shop.call('/v1/items/sku-elsewhere', { role: 'read' })).body).toMatchObject({ id: 'sku-elsewhere', title: 'Made elsewhere', inModel: false });
  });

  it('checks events as a dry run without storing them, and refuses a dry run it could not store', async () => {
    const count = async (): Promise<number> => shop.store.prisma.event.count();
    const before = await count();
    const events = [{ userId: 'dry-run-user', itemId: 'sku-1', type: 'view' }];
    const dry = await shop.call('/v1/events?dryRun=true', { role: 'write', body: { events } });
    expect(dry).toMatchObject({ status: 200, body: { received: 1, stored: 1, duplicates: 0, dryRun: true } });
    expect(await count()).toBe(before);
    expect(await shop.store.prisma.user.count({ where: { externalId: 'dry-run-user' } })).toBe(0);
    const bad = await shop.call('/v1/events?dryRun=true', { role: 'write', body: { events: [{ userId: 'u', itemId: 'sku-1', type: 'view', colour: 'red' }] } });
    expect(bad).toMatchObject({ status: 400, body: { code: 'VALIDATION_FAILED' } });
    expect((await shop.call('/v1/events?dryRun=yes', { role: 'write', body: { events } })).body).toMatchObject({ code: 'VALIDATION_FAILED', errors: [{ in: 'query', pointer: '/dryRun' }] });
    // (user-9, whose history the test above changed already: a new user would change the cache tests' counts.)
    const stored = [{ userId: 'user-9', itemId: 'sku-1', type: 'view', eventId: 'stored-after-dry-run' }];
    expect((await shop.call('/v1/events?dryRun=false', { role: 'write', body: { events: stored } })).body).toEqual({ received: 1, stored: 1, duplicates: 0 });
    expect(await count()).toBe(before + 1);
  });

  it('keeps the catalogue: PUT writes only the given attributes, DELETE hides an item from every recommendation', async () => {
    const put = await shop.call('/v1/items', { method: 'PUT', body: { items: [{ id: 'sku-0', price: 99.5 }, { id: 'sku-extra', title: 'Extra', category: 'odd' }] } });
    expect(put).toMatchObject({ status: 200, body: { inserted: 1, updated: 1 } });
    expect((await shop.call('/v1/items/sku-0', { role: 'read' })).body).toMatchObject({ id: 'sku-0', title: 'Item 0', category: 'even', price: 99.5, active: true, inModel: true });
    const removed = await shop.call('/v1/items/sku-6', { method: 'DELETE' });
    expect(removed).toMatchObject({ status: 200, body: { id: 'sku-6', active: false } });
    const recs = (await shop.call('/v1/users/user-5/recommendations?k=12&exclude=none', { role: 'read' })).body.items.map((x: { item: string }) => x.item);
    expect(recs).toHaveLength(12); // 11 of the model's items, and sku-extra: new, ranked with the odd items' mean embedding
    expect(recs).toContain('sku-extra');
    expect(recs).not.toContain('sku-6');
    const similar = (await shop.call('/v1/items/sku-5/similar?k=12', { role: 'read' })).body.items.map((x: { item: string }) => x.item);
    expect(similar).not.toContain('sku-6');
    const ranked = await shop.call('/v1/rank', { role: 'read', body: { user: 'user-5', candidates: ['sku-6'] } });
    expect(ranked.body.dropped).toEqual([{ item: 'sku-6', reason: 'inactive' }]);
    expect((await shop.call('/v1/items', { method: 'PUT', body: { items: [{ id: 'sku-6', active: true }] } })).status).toBe(200);
    expect((await shop.call('/v1/items/missing', { method: 'DELETE' })).status).toBe(404);
  });

  it('lists model versions, activates another with no failed request during the swap, and rolls back', async () => {
    const second = await shop.trainAnother(2);
    const listed = await shop.call('/v1/models', { role: 'read' });
    expect(listed.body.serving).toBe(1);
    expect(listed.body.versions.map((v: { version: number }) => v.version)).toEqual([second, 1]);
    // An analyst inspecting another version waits for its load: the live worker builds it (an urgent load), where a
    // version loaded to serve is built on the background worker from idle CPU, which a busy machine may not have.
    const builds = async (): Promise<number> => Number(/attnrec_model_loads_total\{worker="0",from="files"\} (\d+)/.exec((await shop.call('/metrics', { role: 'none' })).body)?.[1] ?? 0);
    const built = await builds();
    expect((await shop.call(`/v1/users/user-0/attention?k=3&version=${second}`, { role: 'read' })).body.modelVersion).toBe(second);
    expect(await builds()).toBe(built + 1);

    const seen = new Set<number>();
    let failures = 0;
    let stop = false;
    const load = async (): Promise<void> => {
      while (!stop) {
        const r = await shop.call('/v1/users/user-2/recommendations?k=3', { role: 'read' });
        if (r.status !== 200) failures++;
        else seen.add(r.body.modelVersion);
        // Paced under the shop's rate limit (6,000 a minute, ~100/s refilled): on a busy machine the swaps
        // take seconds, and unpaced clients on cached users ran out of tokens (429s, not swap failures).
        await new Promise((r) => setTimeout(r, 70));
      }
    };
    const clients = Array.from({ length: 6 }, load);
    for (const version of [second, 1, second]) {
      const activated = await shop.call(`/v1/models/${version}/activate`, { method: 'POST' });
      expect(activated).toMatchObject({ status: 200, body: { serving: version } });
      await new Promise((r) => setTimeout(r, 50));
    }
    stop = true;
    await Promise.all(clients);
    expect(failures).toBe(0);
    expect(seen).toEqual(new Set([1, second]));
    expect((await shop.store.prisma.modelVersion.findMany({ where: { active: true } })).map((v) => v.id)).toEqual([second]);
    expect((await shop.call('/v1/models/999/activate', { method: 'POST' })).body.code).toBe('MODEL_VERSION_NOT_FOUND');
    // A version that is not ready: a 409 problem that says why (its status travels as versionStatus, never as the problem's status).
    const failed = await shop.store.prisma.modelVersion.create({ data: { status: 'failed', config: {}, dataHash: 'x', artifactPath: '/nowhere' } });
    const refused = await shop.call(`/v1/models/${failed.id}/activate`, { method: 'POST' });
    expect(refused).toMatchObject({ status: 409, body: { status: 409, code: 'MODEL_VERSION_NOT_READY', versionStatus: 'failed' } });
    // Items imported out of process since the catalogue was read are known once a version is activated.
    await shop.store.prisma.item.create({ data: { externalId: 'sku-imported-meanwhile', title: 'Launch' } });
    expect((await shop.call('/v1/items/sku-imported-meanwhile', { role: 'read' })).status).toBe(404);
    const back = await shop.call('/v1/models/1/activate', { method: 'POST' });
    expect(back.body.serving).toBe(1);
    expect((await shop.call('/v1/items/sku-imported-meanwhile', { role: 'read' })).body.title).toBe('Launch');
  });

  it('warms the user cache when a model loads, so returning shoppers are answered from memory', async () => {
    let ready = (await shop.call('/health/ready', { role: 'none' })).body;
    for (let i = 0; i < 200 && !(ready.userCache.warmUp.finished && ready.userCache.warmUp.version === ready.modelVersion); i++) {
      await new Promise((r) => setTimeout(r, 50));
      ready = (await shop.call('/health/ready', { role: 'none' })).body;
    }
    expect(ready.userCache.warmUp).toMatchObject({ finished: true, total: 120, done: 120, version: ready.modelVersion });
    const hits = async (): Promise<number> => Number(/attnrec_user_cache_total\{result="hit"\} (\d+)/.exec((await shop.call('/metrics', { role: 'none' })).body)?.[1] ?? 0);
    const before = await hits();
    expect((await shop.call('/v1/users/user-77/recommendations', { role: 'read' })).body.strategy).toBe('model');
    expect(await hits()).toBe(before + 1);
    const metrics = (await shop.call('/metrics', { role: 'none' })).body as string;
    expect(metrics).toMatch(/attnrec_user_cache_users 120\n/);
    expect(Number(/attnrec_user_cache_bytes (\d+)/.exec(metrics)?.[1])).toBeGreaterThan(120 * 4 * 100);
  });

  it('switches to an activated version with the user cache already warm for it: no returning shopper meets a cold cache', async () => {
    const hits = async (): Promise<number> => Number(/attnrec_user_cache_total\{result="hit"\} (\d+)/.exec((await shop.call('/metrics', { role: 'none' })).body)?.[1] ?? 0);
    const serving = (await shop.call('/v1/models', { role: 'read' })).body.serving as number;
    const next = await shop.trainAnother(3);
    // A catalogue change written outside the API (as an import job does) is read before the swap.
    await shop.store.prisma.item.update({ where: { externalId: 'sku-3' }, data: { title: 'Item 3, renamed offline' } });
    expect((await shop.call('/v1/items/sku-3', { role: 'read' })).body.title).toBe('Item 3');
    const activated = await shop.call(`/v1/models/${next}/activate`, { method: 'POST' });
    expect(activated).toMatchObject({ status: 200, body: { serving: next } });
    expect((await shop.call('/v1/items/sku-3', { role: 'read' })).body.title).toBe('Item 3, renamed offline');
    // The answer comes once the version serves, with every shopper already represented under it.
    expect((await shop.call('/health/ready', { role: 'none' })).body.userCache).toMatchObject({ size: 120, warmUp: { version: next, finished: true, done: 120 } });
    const before = await hits();
    for (const user of ['user-5', 'user-77', 'user-119']) expect((await shop.call(`/v1/users/${user}/recommendations`, { role: 'read' })).body.modelVersion).toBe(next);
    expect(await hits()).toBe(before + 3);
    expect((await shop.call(`/v1/models/${serving}/activate`, { method: 'POST' })).status).toBe(200);
  });

  it('answers health, metrics and the OpenAPI document without a key', async () => {
    await shop.call('/v1/users/user-1/recommendations', { role: 'read' });
    await shop.call('/v1/events', { role: 'write', body: { events: [{ userId: 'user-1', itemId: 'sku-2', type: 'view', eventId: 'metrics-check' }] } });
    expect((await shop.call('/health/live', { role: 'none' })).status).toBe(200);
    expect((await shop.call('/health/ready', { role: 'none' })).body).toMatchObject({ status: 'ready', modelVersion: expect.any(Number) });
    const metrics = await shop.call('/metrics', { role: 'none' });
    expect(metrics.body).toMatch(/attnrec_http_request_duration_seconds_bucket\{.*route="\/v1\/users\/:id\/recommendations"/);
    expect(metrics.body).toMatch(/attnrec_model_version \d/);
    expect(metrics.body).toMatch(/attnrec_events_ingested_total\{outcome="stored"\} \d/);
    const openapi = await shop.call('/v1/openapi.json', { role: 'none' });
    expect(openapi.body.openapi).toBe('3.1.0');
    // Every route the server has is documented, with the same methods.
    const documented = Object.entries(openapi.body.paths as Record<string, Record<string, unknown>>).flatMap(([path, ops]) =>
      Object.keys(ops).filter((m) => m !== 'parameters').map((m) => `${m.toUpperCase()} ${path}`),
    );
    expect(documented.sort()).toEqual(routesOf(shop).sort());
    expect(Object.keys(openapi.body.paths)).toEqual(expect.arrayContaining(['/v1/events', '/v1/users/{id}/recommendations', '/v1/rank', '/v1/models/{version}/activate']));
    // Every JSON answer is described field by field (generated from the response schemas the routes reply with).
    for (const [path, ops] of Object.entries(openapi.body.paths as Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema: { properties?: unknown; $ref?: string } }> }> }>>)) {
      for (const [method, op] of Object.entries(ops)) {
        const schema = op.responses['200']?.content?.['application/json']?.schema;
        if (path === '/v1/openapi.json' || !schema) continue;
        expect(schema.properties ?? schema.$ref, `${method} ${path}`).toBeDefined();
      }
    }
    expect(openapi.body.components.schemas.Problem.properties.code.enum).toContain('RATE_LIMITED');
    // The headers a client meters itself by: on every authenticated answer, and Retry-After when refused.
    const rank = openapi.body.paths['/v1/rank'].post.responses;
    expect(Object.keys(rank['200'].headers)).toEqual(expect.arrayContaining(['RateLimit-Policy', 'RateLimit']));
    expect(Object.keys(rank['429'].headers)).toEqual(expect.arrayContaining(['RateLimit', 'Retry-After']));
    expect(openapi.body.paths['/health/live'].get.responses['200'].headers).toBeUndefined();
  });

  it('reports errors as problem+json with a stable code', async () => {
    const r = await shop.call('/v1/users/user-1/recommendations?k=0', { role: 'read' });
    expect(r.status).toBe(400);
    expect(r.headers.get('content-type')).toContain(PROBLEM);
    expect(r.body).toMatchObject({ code: 'VALIDATION_FAILED', status: 400, type: 'urn:attnrec:problem:VALIDATION_FAILED', errors: [{ in: 'query', pointer: '/k' }] });
  });
});
