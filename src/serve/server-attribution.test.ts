import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KEYS, servedShop, type ServedShop } from '../../test/support/served-shop.js';
import { describeEachProvider } from '../../test/support/test-stores.js';
import { openApiDocument } from './openapi.js';
import { startServer } from './server.js';
import { validateServeConfig } from './config.js';

async function metricValue(shop: ServedShop, name: string, labels = ''): Promise<number> {
  const { body } = await shop.call('/metrics', { role: 'none' });
  const line = (body as string).split('\n').find((l) => l.startsWith(`${name}${labels} `));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

describe('the OpenAPI document', () => {
  it('documents recommendationId on events and sessionId on the inline-session routes, all optional', () => {
    const paths = openApiDocument().paths as Record<string, Record<string, { requestBody: { content: Record<string, { schema: { properties: Record<string, { type?: string; format?: string; properties?: never; items?: { properties: Record<string, { format?: string }>; required?: string[] } }>; required?: string[] } }> } }>>;
    const events = paths['/v1/events']!.post!.requestBody.content['application/json']!.schema.properties.events!.items!;
    expect(events.properties.recommendationId).toMatchObject({ format: 'uuid' });
    expect(events.required).not.toContain('recommendationId');
    for (const path of ['/v1/sessions/recommendations', '/v1/rank']) {
      const schema = paths[path]!.post!.requestBody.content['application/json']!.schema;
      expect(schema.properties.sessionId, path).toBeDefined();
      expect(schema.required ?? [], path).not.toContain('sessionId');
    }
  });
});

describeEachProvider('attribution over HTTP', (provider) => {
  let shop: ServedShop;
  const logs: string[] = [];
  beforeAll(async () => {
    // Rounds only when a test asks (catchUp); impressions written when a test flushes.
    shop = await servedShop(provider, {}, {
      tuning: { impressions: { flushMs: 600_000 }, attribution: { intervalMs: 600_000, settleMs: 0 } },
      log: (message, error) => logs.push(`${message}${error ? `: ${(error as Error).message}` : ''}`),
    });
    // The imported log is walked once, before the tests count.
    await shop.server.context.attributor.catchUp();
  }, 120_000);
  afterAll(async () => {
    await shop?.dispose();
  });

  /** Writes the buffered impressions, then attributes every stored event. */
  const settle = async (): Promise<void> => {
    await shop.server.context.impressions.flush();
    await shop.server.context.attributor.catchUp();
  };
  const attributionOf = async (eventId: string) => {
    const event = await shop.store.prisma.event.findUniqueOrThrow({ where: { eventId } });
    return shop.store.prisma.attribution.findUnique({ where: { eventKey: event.id } });
  };
  const counters = async () => ({
    explicit: await metricValue(shop, 'attnrec_attributions_total', '{kind="explicit"}'),
    rule: await metricValue(shop, 'attnrec_attributions_total', '{kind="rule"}'),
    noImpression: await metricValue(shop, 'attnrec_events_unattributed_total', '{reason="no_impression"}'),
    unknown: await metricValue(shop, 'attnrec_events_unattributed_total', '{reason="unknown_recommendation"}'),
    notShown: await metricValue(shop, 'attnrec_events_unattributed_total', '{reason="item_not_shown"}'),
    failures: await metricValue(shop, 'attnrec_attribution_failures_total'),
  });
  const post = (events: unknown[]) => shop.call('/v1/events', { role: 'write', body: { events } });

  it('attributes an event that names its recommendationId to that response, the item at its rank', async () => {
    const before = await counters();
    const shown = await shop.call('/v1/users/user-0/recommendations?k=4&exclude=none', { role: 'read' });
    expect(shown.status).toBe(200);
    const { recommendationId, items, modelVersion } = shown.body as { recommendationId: string; items: { item: string }[]; modelVersion: number };
    // A shop may send the id in capitals: it names the same response.
    const stored = await post([{ userId: 'someone-else', itemId: items[2]!.item, type: 'purchase', value: 12.5, quantity: 2, eventId: 'explicit-1', recommendationId: recommendationId.toUpperCase() }]);
    expect(stored).toMatchObject({ status: 200, body: { stored: 1 } });
    expect((await shop.store.prisma.event.findUniqueOrThrow({ where: { eventId: 'explicit-1' } })).recommendationId).toBe(recommendationId);
    await settle();
    const attribution = await attributionOf('explicit-1');
    expect(attribution).toMatchObject({ impressionId: recommendationId, kind: 'explicit', rank: 3, typeId: 3, value: 12.5, quantity: 2, route: 'user_recommendations', modelVersion });
    expect((await counters()).explicit - before.explicit).toBe(1);
  });

  it('attributes by rule an anonymous session\'s event to the inline-session response given its sessionId, and to /v1/rank\'s', async () => {
    const session = await shop.call('/v1/sessions/recommendations', { role: 'read', body: { events: [{ item: 'sku-3' }], k: 3, sessionId: 'visit-1', exclude: 'none' } });
    const ranked = await shop.call('/v1/rank', { role: 'read', body: { session: [{ item: 'sku-5' }], sessionId: 'visit-2', candidates: ['sku-1', 'sku-7', 'sku-9'] } });
    const withoutId = await shop.call('/v1/sessions/recommendations', { role: 'read', body: { events: [{ item: 'sku-3' }], k: 3, exclude: 'none' } });
    for (const answer of [session, ranked, withoutId]) expect(answer.status).toBe(200);
    await shop.server.context.impressions.flush();
    const impression = (id: string) => shop.store.prisma.impression.findUniqueOrThrow({ where: { id } });
    expect(await impression(session.body.recommendationId)).toMatchObject({ route: 'session_recommendations', sessionId: 'visit-1', userId: null });
    expect(await impression(ranked.body.recommendationId)).toMatchObject({ route: 'rank', sessionId: 'visit-2', userId: null });
    expect(await impression(withoutId.body.recommendationId)).toMatchObject({ sessionId: null, userId: null });

    const before = await counters();
    expect((await post([
      { sessionId: 'visit-1', itemId: session.body.items[1].item, type: 'view', eventId: 'rule-session-1' },
      { sessionId: 'visit-2', itemId: ranked.body.items[0].item, type: 'cart', eventId: 'rule-rank-1' },
      { sessionId: 'visit-3', itemId: session.body.items[0].item, type: 'view', eventId: 'rule-nobody' },
    ])).status).toBe(200);
    await settle();
    expect(await attributionOf('rule-session-1')).toMatchObject({ impressionId: session.body.recommendationId, kind: 'rule', rank: 2, route: 'session_recommendations' });
    expect(await attributionOf('rule-rank-1')).toMatchObject({ impressionId: ranked.body.recommendationId, kind: 'rule', rank: 1, route: 'rank', typeId: 2 });
    expect(await attributionOf('rule-nobody')).toBeNull();
    const after = await counters();
    expect([after.rule - before.rule, after.noImpression - before.noImpression]).toEqual([2, 1]);
  });

  it('attributes by rule a user\'s event to the latest response that showed the item', async () => {
    const first = await shop.call('/v1/users/user-7/recommendations?k=5&exclude=none', { role: 'read' });
    const second = await shop.call('/v1/users/user-7/next-sequence?k=3&beam=1&exclude=none', { role: 'read' });
    const both = (second.body.items as { item: string }[]).map((i) => i.item).find((item) => (first.body.items as { item: string }[]).some((i) => i.item === item));
    const onlyFirst = (first.body.items as { item: string }[]).map((i) => i.item).find((item) => !(second.body.items as { item: string }[]).some((i) => i.item === item))!;
    await post([{ userId: 'user-7', itemId: onlyFirst, type: 'view', eventId: 'rule-user-1' }, ...(both ? [{ userId: 'user-7', itemId: both, type: 'view', eventId: 'rule-user-2' }] : [])]);
    await settle();
    expect(await attributionOf('rule-user-1')).toMatchObject({ impressionId: first.body.recommendationId, kind: 'rule', route: 'user_recommendations' });
    if (both) expect(await attributionOf('rule-user-2')).toMatchObject({ impressionId: second.body.recommendationId, route: 'next_sequence' });
  });

  it('an unknown id or one that did not show the item stores the event unattributed; a replay counts once', async () => {
    const shown = await shop.call('/v1/users/user-1/recommendations?k=2&exclude=none', { role: 'read' });
    const notShown = ['sku-0', 'sku-1', 'sku-2', 'sku-3'].find((s) => !(shown.body.items as { item: string }[]).some((i) => i.item === s))!;
    const before = await counters();
    const batch = [
      { userId: 'user-1', itemId: 'sku-1', type: 'purchase', eventId: 'unknown-1', recommendationId: '01900000-0000-7000-8000-000000000000' },
      { userId: 'user-1', itemId: notShown, type: 'view', eventId: 'not-shown-1', recommendationId: shown.body.recommendationId },
      { userId: 'user-1', itemId: shown.body.items[0].item, type: 'cart', eventId: 'replayed-1', recommendationId: shown.body.recommendationId },
    ];
    expect((await post(batch)).body).toMatchObject({ stored: 3, duplicates: 0 });
    expect((await post(batch)).body).toMatchObject({ stored: 0, duplicates: 3 });
    await settle();
    expect((await post(batch)).body).toMatchObject({ stored: 0, duplicates: 3 });
    await settle();
    expect(await attributionOf('unknown-1')).toBeNull();
    expect(await attributionOf('not-shown-1')).toBeNull();
    expect(await attributionOf('replayed-1')).toMatchObject({ kind: 'explicit', rank: 1 });
    const replayed = await shop.store.prisma.event.findUniqueOrThrow({ where: { eventId: 'replayed-1' } });
    expect(await shop.store.prisma.attribution.count({ where: { eventKey: replayed.id } })).toBe(1);
    const after = await counters();
    expect([after.explicit - before.explicit, after.unknown - before.unknown, after.notShown - before.notShown]).toEqual([1, 1, 1]);
  });

  it('a malformed recommendationId is a 400 naming it, and stores nothing', async () => {
    const answer = await post([
      { userId: 'user-1', itemId: 'sku-1', type: 'view', eventId: 'bad-rid-0' },
      { userId: 'user-1', itemId: 'sku-1', type: 'view', eventId: 'bad-rid-1', recommendationId: 'not-a-uuid' },
    ]);
    expect(answer.status).toBe(400);
    expect(answer.headers.get('content-type')).toMatch(/application\/problem\+json/);
    expect(answer.body).toMatchObject({ code: 'VALIDATION_FAILED', errors: [{ in: 'body', pointer: '/events/1/recommendationId' }] });
    expect(await shop.store.prisma.event.count({ where: { eventId: { startsWith: 'bad-rid-' } } })).toBe(0);
    expect((await shop.call('/v1/rank', { role: 'read', body: { session: [{ item: 'sku-1' }], sessionId: '', candidates: ['sku-2'] } })).status).toBe(400);
  });

  it('--attribution-window 0 turns attribution off: events are stored, nothing is attributed', async () => {
    const cursor = async () => (await shop.store.prisma.attributionCursor.findUniqueOrThrow({ where: { name: 'events' } })).eventKey;
    await settle();
    const before = await cursor();
    const replica = await startServer(validateServeConfig({ ...shop.server.context.config, port: 0, attributionWindowSeconds: 0 }), () => {}, { attribution: { intervalMs: 10, settleMs: 0 } });
    try {
      const answer = await fetch(`${replica.url}/v1/events`, {
        method: 'POST',
        headers: { authorization: `Bearer ${KEYS.write}`, 'content-type': 'application/json' },
        body: JSON.stringify({ events: [{ userId: 'user-3', itemId: 'sku-3', type: 'view', eventId: 'window-0' }] }),
      });
      expect(answer.status).toBe(200);
      await replica.context.attributor.catchUp();
      // Its timer would have run many rounds by now.
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(await cursor()).toBe(before);
    } finally {
      await replica.close();
    }
    // This shop's attributor (24 h) reads it.
    await settle();
    expect(await cursor()).toBeGreaterThan(before);
  });

  // Last: it takes this shop's attributions table away, then gives it back.
  it('a failing attribution store still acknowledges and stores events; a counter and a log line say so, and the next round attributes them', async () => {
    const shown = await shop.call('/v1/users/user-2/recommendations?k=2&exclude=none', { role: 'read' });
    await shop.server.context.impressions.flush();
    const rename = async (from: string, to: string): Promise<void> => {
      if (shop.store.provider === 'sqlite') shop.store.db.exec(`ALTER TABLE ${from} RENAME TO ${to}`);
      else await shop.store.pool.query(`ALTER TABLE ${from} RENAME TO ${to}`);
    };
    await rename('attributions', 'attributions_away');
    const before = await counters();
    try {
      const answer = await post([{ userId: 'user-2', itemId: shown.body.items[0].item, type: 'purchase', eventId: 'while-broken' }]);
      expect(answer).toMatchObject({ status: 200, body: { stored: 1 } });
      await settle();
      expect((await counters()).failures - before.failures).toBe(1);
      expect(logs.filter((l) => l.startsWith('attribution: 1 batch(es) could not be stored'))).toHaveLength(1);
      expect(await shop.store.prisma.event.count({ where: { eventId: 'while-broken' } })).toBe(1);
      // Other routes do not notice.
      expect((await shop.call('/v1/users/user-2/recommendations?k=2', { role: 'read' })).status).toBe(200);
    } finally {
      await rename('attributions_away', 'attributions');
    }
    await settle();
    expect(await attributionOf('while-broken')).toMatchObject({ impressionId: shown.body.recommendationId, kind: 'rule', rank: 1 });
    expect((await counters()).rule - before.rule).toBe(1);
  });
});
