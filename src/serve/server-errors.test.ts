import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KEYS, servedShop, type ServedShop } from '../../test/support/served-shop.js';
import { until } from '../../test/support/until.js';

/** Bad input of every kind: each gets a 4xx problem+json with a stable code, and nothing stored changes. */
describe('recommendation API: bad input, authorisation, rate limits, shutdown [sqlite]', () => {
  let shop: ServedShop;
  beforeAll(async () => {
    shop = await servedShop('sqlite', { bodyLimitBytes: 64 * 1024 });
  }, 120_000);
  afterAll(async () => {
    await shop?.dispose();
  });

  const event = { userId: 'user-1', itemId: 'sku-1', type: 'view' };
  const recs = '/v1/users/user-1/recommendations';
  type Case = [name: string, path: string, init: { method?: string; body?: unknown; headers?: Record<string, string> }, status: number, code: string];
  const cases: Case[] = [
    ['k = 0', `${recs}?k=0`, {}, 400, 'VALIDATION_FAILED'],
    ['k above 100', `${recs}?k=101`, {}, 400, 'VALIDATION_FAILED'],
    ['k not a number', `${recs}?k=ten`, {}, 400, 'VALIDATION_FAILED'],
    ['k fractional', `${recs}?k=1.5`, {}, 400, 'VALIDATION_FAILED'],
    ['k given twice', `${recs}?k=1&k=2`, {}, 400, 'VALIDATION_FAILED'],
    ['unknown exclude policy', `${recs}?exclude=everything`, {}, 400, 'VALIDATION_FAILED'],
    ['unknown query parameter', `${recs}?colour=red`, {}, 400, 'VALIDATION_FAILED'],
    ['empty includeItems', `${recs}?includeItems=`, {}, 400, 'VALIDATION_FAILED'],
    ['empty category', `${recs}?category=`, {}, 400, 'VALIDATION_FAILED'],
    ['user id too long', `/v1/users/${'u'.repeat(300)}/recommendations`, {}, 400, 'VALIDATION_FAILED'],
    ['beam = 0', '/v1/users/user-1/next-sequence?beam=0', {}, 400, 'VALIDATION_FAILED'],
    ['sequence too long', '/v1/users/user-1/next-sequence?k=21', {}, 400, 'VALIDATION_FAILED'],
    ['similar k = 0', '/v1/items/sku-1/similar?k=0', {}, 400, 'VALIDATION_FAILED'],
    ['malformed JSON', '/v1/events', { method: 'POST', body: '{"events": [' }, 400, 'BAD_JSON'],
    ['JSON null body', '/v1/events', { method: 'POST', body: 'null' }, 400, 'VALIDATION_FAILED'],
    ['array body', '/v1/events', { method: 'POST', body: [event] }, 400, 'VALIDATION_FAILED'],
    ['no events', '/v1/events', { method: 'POST', body: { events: [] } }, 400, 'VALIDATION_FAILED'],
    ['1,001 events', '/v1/events', { method: 'POST', body: { events: Array.from({ length: 1001 }, () => event) } }, 400, 'VALIDATION_FAILED'],
    ['event without item', '/v1/events', { method: 'POST', body: { events: [{ userId: 'user-1', type: 'view' }] } }, 400, 'VALIDATION_FAILED'],
    ['event with unknown field', '/v1/events', { method: 'POST', body: { events: [{ ...event, colour: 'red' }] } }, 400, 'VALIDATION_FAILED'],
    ['event without user or session', '/v1/events', { method: 'POST', body: { events: [{ itemId: 'sku-1', type: 'view' }] } }, 400, 'VALIDATION_FAILED'],
    ['unparseable timestamp', '/v1/events', { method: 'POST', body: { events: [{ ...event, timestamp: 'yesterday' }] } }, 400, 'VALIDATION_FAILED'],
    ['timestamp after 9999', '/v1/events', { method: 'POST', body: { events: [{ ...event, timestamp: '10000-01-01' }] } }, 400, 'VALIDATION_FAILED'],
    ['negative quantity', '/v1/events', { method: 'POST', body: { events: [{ ...event, quantity: -1 }] } }, 400, 'VALIDATION_FAILED'],
    ['value as text', '/v1/events', { method: 'POST', body: { events: [{ ...event, value: 'ten' }] } }, 400, 'VALIDATION_FAILED'],
    ['empty event type', '/v1/events', { method: 'POST', body: { events: [{ ...event, type: '' }] } }, 400, 'VALIDATION_FAILED'],
    ['event type with spaces', '/v1/events', { method: 'POST', body: { events: [{ ...event, type: 'bad type!' }] } }, 400, 'VALIDATION_FAILED'],
    ['item id with control characters', '/v1/events', { method: 'POST', body: { events: [{ ...event, itemId: 'sku\u0000-1' }] } }, 400, 'VALIDATION_FAILED'],
    ['item id as an object', '/v1/events', { method: 'POST', body: { events: [{ ...event, itemId: { id: 1 } }] } }, 400, 'VALIDATION_FAILED'],
    ['one bad event among good ones', '/v1/events', { method: 'POST', body: { events: [event, { ...event, timestamp: 'never' }, event] } }, 400, 'VALIDATION_FAILED'],
    ['text/plain body', '/v1/events', { method: 'POST', body: 'events', headers: { 'content-type': 'text/plain' } }, 415, 'UNSUPPORTED_MEDIA_TYPE'],
    ['body over the limit', '/v1/events', { method: 'POST', body: { events: [{ ...event, eventId: 'x'.repeat(70 * 1024) }] } }, 413, 'BODY_TOO_LARGE'],
    ['session without events', '/v1/sessions/recommendations', { method: 'POST', body: { k: 3 } }, 400, 'VALIDATION_FAILED'],
    ['session k as text', '/v1/sessions/recommendations', { method: 'POST', body: { events: [{ item: 'sku-1' }], k: '5' } }, 400, 'VALIDATION_FAILED'],
    ['rank for user and session', '/v1/rank', { method: 'POST', body: { user: 'user-1', session: [{ item: 'sku-1' }], candidates: ['sku-2'] } }, 400, 'VALIDATION_FAILED'],
    ['rank for nobody', '/v1/rank', { method: 'POST', body: { candidates: ['sku-2'] } }, 400, 'VALIDATION_FAILED'],
    ['rank 501 candidates', '/v1/rank', { method: 'POST', body: { user: 'user-1', candidates: Array.from({ length: 501 }, (_, i) => `c${i}`) } }, 400, 'VALIDATION_FAILED'],
    ['rank candidates not a list', '/v1/rank', { method: 'POST', body: { user: 'user-1', candidates: 'sku-1' } }, 400, 'VALIDATION_FAILED'],
    ['negative price', '/v1/items', { method: 'PUT', body: { items: [{ id: 'sku-1', price: -3 }] } }, 400, 'VALIDATION_FAILED'],
    ['active as text', '/v1/items', { method: 'PUT', body: { items: [{ id: 'sku-1', active: 'yes' }] } }, 400, 'VALIDATION_FAILED'],
    ['version not a number', '/v1/models/latest/activate', { method: 'POST' }, 400, 'VALIDATION_FAILED'],
    ['version 0', '/v1/models/0/activate', { method: 'POST' }, 400, 'VALIDATION_FAILED'],
    ['unknown version', '/v1/models/12345/activate', { method: 'POST' }, 404, 'MODEL_VERSION_NOT_FOUND'],
    ['unknown item', '/v1/items/no-such-item', {}, 404, 'ITEM_NOT_FOUND'],
    ['unknown route', '/v1/nothing-here', {}, 404, 'NOT_FOUND'],
    ['wrong method', '/v1/events', { method: 'DELETE' }, 405, 'METHOD_NOT_ALLOWED'],
  ];

  it(`refuses ${cases.length} kinds of bad request with 4xx problem+json and stores nothing`, async () => {
    expect(cases.length).toBeGreaterThanOrEqual(30);
    const events = await shop.store.prisma.event.count();
    const items = await shop.store.prisma.item.findMany({ orderBy: { id: 'asc' } });
    for (const [name, path, init, status, code] of cases) {
      const response = await shop.call(path, init);
      expect.soft(response.status, name).toBe(status);
      expect.soft(response.headers.get('content-type'), name).toContain('application/problem+json');
      expect.soft(response.body, name).toMatchObject({ code, status, type: `urn:attnrec:problem:${code}`, title: expect.any(String), detail: expect.any(String) });
      expect.soft(JSON.stringify(response.body), name).not.toMatch(/\bat .*\.ts:\d+/); // no stack traces
    }
    expect(await shop.store.prisma.event.count()).toBe(events);
    expect(await shop.store.prisma.item.findMany({ orderBy: { id: 'asc' } })).toEqual(items);
    expect((await shop.call('/health/ready', { role: 'none' })).status).toBe(200);
  });

  it('points at each invalid event of a batch', async () => {
    const r = await shop.call('/v1/events', { body: { events: [event, { ...event, timestamp: 'never' }, { ...event, quantity: 0 }] } });
    expect(r.body.errors).toEqual([
      expect.objectContaining({ in: 'body', pointer: '/events/1/timestamp' }),
      expect.objectContaining({ in: 'body', pointer: '/events/2/quantity' }),
    ]);
  });

  it('enforces roles: read < write < admin; no key or an unknown key is 401', async () => {
    await shop.call('/v1/items', { method: 'PUT', body: { items: [{ id: 'sku-spare' }] } });
    const routes: [string, { method?: string; body?: unknown }, 'read' | 'write' | 'admin'][] = [
      ['/v1/users/user-1/recommendations', {}, 'read'],
      ['/v1/sessions/recommendations', { body: { events: [{ item: 'sku-1' }] } }, 'read'],
      ['/v1/users/user-1/next-sequence?k=2', {}, 'read'],
      ['/v1/items/sku-1/similar', {}, 'read'],
      ['/v1/rank', { body: { user: 'user-1', candidates: ['sku-2'] } }, 'read'],
      ['/v1/items/sku-1', {}, 'read'],
      ['/v1/models', {}, 'read'],
      ['/v1/events', { body: { events: [{ ...event, eventId: 'auth-matrix' }] } }, 'write'],
      ['/v1/items', { method: 'PUT', body: { items: [{ id: 'sku-spare', title: 'Spare' }] } }, 'admin'],
      ['/v1/items/sku-spare', { method: 'DELETE' }, 'admin'],
      ['/v1/models/1/activate', { method: 'POST' }, 'admin'],
    ];
    const rank = { read: 0, write: 1, admin: 2 };
    for (const [path, init, needed] of routes) {
      expect((await shop.call(path, { ...init, role: 'none' })).status, `${path} without key`).toBe(401);
      expect((await shop.call(path, { ...init, role: 'none', headers: { authorization: 'Bearer not-a-key-at-all' } })).status, `${path} unknown key`).toBe(401);
      for (const role of ['read', 'write', 'admin'] as const) {
        const r = await shop.call(path, { ...init, role });
        expect(r.status, `${path} as ${role}`).toBe(rank[role] >= rank[needed] ? 200 : 403);
        if (r.status === 403) expect(r.body.code).toBe('FORBIDDEN');
      }
    }
    // X-API-Key works as well as a bearer token.
    expect((await shop.call('/v1/models', { role: 'none', headers: { 'x-api-key': KEYS.read } })).status).toBe(200);
  });

  it('finishes a request already in flight when shutting down, then refuses connections', async () => {
    const body = JSON.stringify({ events: [{ userId: 'user-2', itemId: 'sku-3', type: 'view', eventId: 'in-flight' }] });
    const socket = connect(shop.server.port, '127.0.0.1');
    await new Promise<void>((resolve) => socket.once('connect', resolve));
    let response = '';
    socket.on('data', (chunk) => (response += chunk.toString()));
    const ended = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    // Expect: 100-continue makes the server say when it has parsed the headers: from then on the request is
    // in flight (a fixed pause raced the server's read under load, and close() then closed an idle connection).
    socket.write(
      `POST /v1/events HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${KEYS.write}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nExpect: 100-continue\r\n\r\n${body.slice(0, 10)}`,
    );
    await until(() => response.includes('HTTP/1.1 100 Continue'));
    const closing = shop.server.close();
    await new Promise((r) => setTimeout(r, 100));
    // The rest of the body, without half-closing: Node's HTTP server aborts a request whose client ends its
    // side before the answer is written (an answer that came fast enough used to win that race).
    socket.write(body.slice(10));
    await until(() => response.includes('"stored"'));
    socket.end();
    await ended;
    await closing;
    expect(response).toMatch(/^HTTP\/1.1 100 Continue\r\n\r\nHTTP\/1.1 200/);
    expect(response).toContain('"stored":1');
    expect(await shop.store.prisma.event.count({ where: { eventId: 'in-flight' } })).toBe(1);
    await expect(fetch(`${shop.url}/health/live`)).rejects.toThrow();
  });
});

describe('rate limits [sqlite]', () => {
  let shop: ServedShop;
  beforeAll(async () => {
    shop = await servedShop('sqlite', { rateLimitPerMinute: 5 });
  }, 120_000);
  afterAll(async () => {
    await shop?.dispose();
  });

  it('gives each key its own budget, says what is left, and answers 429 with Retry-After beyond it', async () => {
    const remaining: string[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await shop.call('/v1/models', { role: 'read' });
      expect(r.status).toBe(200);
      expect(r.headers.get('ratelimit-policy')).toBe('"per-key";q=5;w=60');
      remaining.push(r.headers.get('ratelimit')!);
    }
    expect(remaining.map((h) => /r=(\d+)/.exec(h)![1])).toEqual(['4', '3', '2', '1', '0']);
    const limited = await shop.call('/v1/models', { role: 'read' });
    expect(limited.status).toBe(429);
    expect(limited.body.code).toBe('RATE_LIMITED');
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect((await shop.call('/v1/models', { role: 'write' })).status).toBe(200);
  });
});

describe('catalogue and model policies [sqlite]', () => {
  it('--strict-catalog refuses events on unknown items and stores none of the batch', async () => {
    const shop = await servedShop('sqlite', { strictCatalog: true }, { train: false });
    try {
      const before = await shop.store.prisma.event.count();
      const r = await shop.call('/v1/events', { role: 'write', body: { events: [{ userId: 'user-1', itemId: 'sku-1', type: 'view' }, { userId: 'user-1', itemId: 'sku-unknown', type: 'view' }] } });
      expect(r.status).toBe(422);
      expect(r.body).toMatchObject({ code: 'UNKNOWN_ITEMS', items: ['sku-unknown'] });
      expect(await shop.store.prisma.event.count()).toBe(before);
      expect(await shop.store.prisma.item.count({ where: { externalId: 'sku-unknown' } })).toBe(0);
      const ok = await shop.call('/v1/events', { role: 'write', body: { events: [{ userId: 'user-1', itemId: 'sku-1', type: 'view' }] } });
      expect(ok.body).toMatchObject({ stored: 1 });
    } finally {
      await shop.dispose();
    }
  });

  it('without a model: popular items and ready with the fallback on; 503 and not ready with it off', async () => {
    const popular = await servedShop('sqlite', {}, { train: false });
    try {
      expect((await popular.call('/health/ready', { role: 'none' })).body).toMatchObject({ status: 'ready', modelVersion: null, fallback: 'popular' });
      const recs = await popular.call('/v1/users/user-1/recommendations?k=2', { role: 'read' });
      expect(recs.body).toMatchObject({ strategy: 'popular', modelVersion: null });
      expect(recs.body.items).toHaveLength(2);
      expect((await popular.call('/v1/items/sku-1/similar', { role: 'read' })).status).toBe(503);
    } finally {
      await popular.dispose();
    }
    const strict = await servedShop('sqlite', { fallback: 'none' }, { train: false });
    try {
      const ready = await strict.call('/health/ready', { role: 'none' });
      expect(ready.status).toBe(503);
      expect(ready.body.code).toBe('MODEL_NOT_LOADED');
      const recs = await strict.call('/v1/users/user-1/recommendations', { role: 'read' });
      expect(recs.status).toBe(503);
      expect(recs.body.code).toBe('MODEL_NOT_LOADED');
    } finally {
      await strict.dispose();
    }
  });
});
