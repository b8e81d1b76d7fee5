import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { importEvents } from '../data/import/import-events.js';
import { servedShop, type ServedShop } from '../../test/support/served-shop.js';
import { describeEachProvider } from '../../test/support/test-stores.js';
import { until } from '../../test/support/until.js';

const PROBLEM = 'application/problem+json';
const BRANDS = ['a', 'b', 'c'];

/** sku-k: brand a/b/c by k mod 3, stock k mod 4 (none for 0, 4, 8), the promo tag on sku-1 and sku-5. */
function properties(k: number): Record<string, unknown> {
  return { brand: BRANDS[k % 3], stock: k % 4, tags: k === 1 || k === 5 ? ['promo', 'sale'] : ['regular'] };
}

interface Item {
  item: string;
  probability: number;
  score: number;
  boost?: number;
  properties?: Record<string, unknown> | null;
  pin?: { slot: number; reason: string | null; scored: boolean };
}

/**
 * Item properties and the filter and boost rules over a real server (the
 * served shop: 12 items, a tiny trained model), on SQLite and PostgreSQL:
 * rules hold before the top k, boosts reorder and never bring back what a
 * filter left out, and a rule that cannot be used is a 400 that points at it.
 */
describeEachProvider('merchandising rules', (provider) => {
  let shop: ServedShop;
  /** user-1's whole ranking with nothing left out: what every filtered answer must be a subsequence of. */
  let full: Item[];

  beforeAll(async () => {
    shop = await servedShop(provider);
    const put = await shop.call('/v1/items', { method: 'PUT', body: { items: Array.from({ length: 12 }, (_, k) => ({ id: `sku-${k}`, properties: properties(k) })) } });
    expect(put.status).toBe(200);
    full = (await shop.call('/v1/users/user-1/recommendations?k=12&exclude=none', { role: 'read' })).body.items;
    expect(full).toHaveLength(12);
  }, 120_000);
  afterAll(async () => {
    await shop?.dispose();
  });

  const stockOf = (item: string): number => Number(item.slice(4)) % 4;
  const brandOf = (item: string): string => BRANDS[Number(item.slice(4)) % 3]!;

  it('stores properties with PUT /v1/items, shows them on the item, and removes them with null', async () => {
    expect((await shop.call('/v1/items/sku-5', { role: 'read' })).body.properties).toEqual({ brand: 'c', stock: 1, tags: ['promo', 'sale'] });
    // Writing another attribute leaves them alone; null removes them.
    await shop.call('/v1/items', { method: 'PUT', body: { items: [{ id: 'sku-extra', title: 'Extra', properties: { brand: 'z' } }] } });
    expect((await shop.call('/v1/items', { method: 'PUT', body: { items: [{ id: 'sku-extra', price: 3 }] } })).status).toBe(200);
    expect((await shop.call('/v1/items/sku-extra', { role: 'read' })).body).toMatchObject({ price: 3, properties: { brand: 'z' } });
    await shop.call('/v1/items', { method: 'PUT', body: { items: [{ id: 'sku-extra', properties: null }] } });
    expect((await shop.call('/v1/items/sku-extra', { role: 'read' })).body.properties).toBeNull();
    // Not an object: refused, nothing written.
    const bad = await shop.call('/v1/items', { method: 'PUT', body: { items: [{ id: 'sku-5', properties: ['promo'] }] } });
    expect(bad.status).toBe(400);
    expect(bad.body.code).toBe('VALIDATION_FAILED');
    expect((await shop.call('/v1/items/sku-5', { role: 'read' })).body.properties.brand).toBe('c');
  });

  it('applies a filter before the top k: k items come back when enough qualify, in the model\'s order', async () => {
    const filter = 'stock > 0 AND brand IN ("a","b")';
    const { status, body } = await shop.call(`/v1/users/user-1/recommendations?k=4&exclude=none&filter=${encodeURIComponent(filter)}`, { role: 'read' });
    expect(status).toBe(200);
    const expected = full.filter((i) => stockOf(i.item) > 0 && ['a', 'b'].includes(brandOf(i.item))).slice(0, 4);
    expect(expected).toHaveLength(4);
    expect(body.items.map((i: Item) => i.item)).toEqual(expected.map((i) => i.item));
    // The probabilities stay the model's (over the whole catalogue).
    body.items.forEach((i: Item, r: number) => expect(i.probability).toBeCloseTo(expected[r]!.probability, 6));
    // Fewer qualify than asked for: all of them, no more.
    const few = await shop.call(`/v1/users/user-1/recommendations?k=10&exclude=none&filter=${encodeURIComponent('tags = "promo"')}`, { role: 'read' });
    expect(few.body.items.map((i: Item) => i.item).sort()).toEqual(['sku-1', 'sku-5']);
    // A property no item has matches nothing, != included; it is not an error.
    for (const rule of ['colour = "red"', 'colour != "red"']) {
      const none = await shop.call(`/v1/users/user-1/recommendations?exclude=none&filter=${encodeURIComponent(rule)}`, { role: 'read' });
      expect(none.status).toBe(200);
      expect(none.body.items).toEqual([]);
    }
  });

  it('ranks by probability × boost, and a boost never brings back what a filter left out', async () => {
    const boost = '50 IF tags = "promo"; 0.5 IF brand = "a"';
    const { body } = await shop.call(`/v1/users/user-1/recommendations?k=5&exclude=none&boost=${encodeURIComponent(boost)}`, { role: 'read' });
    const factor = (item: string): number => (['sku-1', 'sku-5'].includes(item) ? 50 : 1) * (brandOf(item) === 'a' ? 0.5 : 1);
    const expected = [...full].sort((x, y) => y.probability * factor(y.item) - x.probability * factor(x.item)).slice(0, 5);
    expect(body.items.map((i: Item) => i.item)).toEqual(expected.map((i) => i.item));
    for (const i of body.items as Item[]) expect(i.boost).toBeCloseTo(factor(i.item), 6);
    // The boost changed the answer (else this test would show nothing).
    expect(body.items.map((i: Item) => i.item)).not.toEqual(full.slice(0, 5).map((i) => i.item));

    const buried = await shop.call(`/v1/users/user-1/recommendations?k=12&exclude=none&filter=${encodeURIComponent('stock > 0')}&boost=${encodeURIComponent('1000 IF stock = 0')}`, { role: 'read' });
    expect(buried.body.items.length).toBe(9);
    expect(buried.body.items.every((i: Item) => stockOf(i.item) > 0)).toBe(true);
  });

  it('takes the rules and returnProperties on sessions, re-ranking and similar items', async () => {
    const session = await shop.call('/v1/sessions/recommendations', {
      role: 'read',
      body: { events: [{ item: 'sku-2', type: 'view' }, { item: 'sku-3', type: 'view' }], k: 3, exclude: 'none', filter: 'brand != "a"', boost: '3 IF stock >= 2', returnProperties: ['brand'] },
    });
    expect(session.status).toBe(200);
    expect(session.body.items).toHaveLength(3);
    for (const i of session.body.items as Item[]) {
      expect(i.properties).toEqual({ brand: brandOf(i.item) });
      expect(brandOf(i.item)).not.toBe('a');
      expect(i.boost).toBe(stockOf(i.item) >= 2 ? 3 : 1);
    }
    const ranked = await shop.call('/v1/rank', { role: 'read', body: { user: 'user-1', candidates: ['sku-0', 'sku-1', 'sku-2', 'sku-4'], exclude: 'none', filter: 'stock > 0', returnProperties: true } });
    expect(ranked.body.items.map((i: Item) => i.item).sort()).toEqual(['sku-1', 'sku-2']);
    expect(ranked.body.dropped).toEqual(expect.arrayContaining([{ item: 'sku-0', reason: 'filtered' }, { item: 'sku-4', reason: 'filtered' }]));
    expect(ranked.body.items[0].properties).toEqual(properties(Number(ranked.body.items[0].item.slice(4))));
    const similar = await shop.call(`/v1/items/sku-3/similar?k=5&filter=${encodeURIComponent('brand = "b"')}&returnProperties=stock`, { role: 'read' });
    expect(similar.status).toBe(200);
    expect(similar.body.items.length).toBeGreaterThan(0);
    for (const i of similar.body.items as Item[]) {
      expect(brandOf(i.item)).toBe('b');
      expect(i.properties).toEqual({ stock: stockOf(i.item) });
    }
    // The popular fallback (a shopper without history) obeys the same rules.
    const cold = await shop.call(`/v1/users/nobody/recommendations?k=12&filter=${encodeURIComponent('brand = "c"')}`, { role: 'read' });
    expect(cold.body.strategy).toBe('popular');
    expect(cold.body.items.length).toBeGreaterThan(0);
    expect(cold.body.items.every((i: Item) => brandOf(i.item) === 'c')).toBe(true);
  });

  it('caps the items of one category or property value, choosing greedily in rank order', async () => {
    const { body } = await shop.call('/v1/users/user-1/recommendations?k=4&exclude=none&maxPer=category:1', { role: 'read' });
    const firstEven = full.find((i) => Number(i.item.slice(4)) % 2 === 0)!;
    const firstOdd = full.find((i) => Number(i.item.slice(4)) % 2 === 1)!;
    expect(body.items.map((i: Item) => i.item)).toEqual(full.filter((i) => i === firstEven || i === firstOdd).map((i) => i.item)); // two categories: two items
    const session = await shop.call('/v1/sessions/recommendations', { role: 'read', body: { events: [{ item: 'sku-1' }], k: 6, exclude: 'none', maxPer: 'brand:2' } });
    expect(session.body.items).toHaveLength(6);
    const brands = (session.body.items as Item[]).map((i) => brandOf(i.item));
    for (const brand of BRANDS) expect(brands.filter((b) => b === brand)).toHaveLength(2);
    const bad = await shop.call('/v1/users/user-1/recommendations?maxPer=category', { role: 'read' });
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ code: 'RULE_SYNTAX', parameter: 'maxPer' });
  });

  it('gives the exploration share the last slots, marks them, and records their ranks in the impression', async () => {
    const { body } = await shop.call(`/v1/users/user-1/recommendations?k=4&exclude=none&explore=0.5&filter=${encodeURIComponent('brand != "c"')}`, { role: 'read' });
    const items = body.items as (Item & { exploration?: true })[];
    expect(items).toHaveLength(4);
    const ranked = full.filter((i) => brandOf(i.item) !== 'c');
    expect(items.slice(0, 2).map((i) => i.item)).toEqual(ranked.slice(0, 2).map((i) => i.item));
    expect(items.slice(0, 2).every((i) => i.exploration === undefined)).toBe(true);
    expect(items.slice(2).every((i) => i.exploration === true && brandOf(i.item) !== 'c')).toBe(true);
    expect(new Set(items.map((i) => i.item)).size).toBe(4);
    const impression = async (id: string) => shop.store.prisma.impression.findUnique({ where: { id } });
    await until(async () => (await impression(body.recommendationId)) !== null);
    expect((await impression(body.recommendationId))!.explored).toEqual([3, 4]);
    // Without it, nothing is marked and the impression records no explored rank.
    const plain = await shop.call('/v1/users/user-1/recommendations?k=4&exclude=none', { role: 'read' });
    expect(plain.body.items.some((i: { exploration?: true }) => i.exploration)).toBe(false);
    await until(async () => (await impression(plain.body.recommendationId)) !== null);
    expect((await impression(plain.body.recommendationId))!.explored).toEqual([]);
    expect((await shop.call('/v1/users/user-1/recommendations?explore=0.9', { role: 'read' })).status).toBe(400);
  });

  it('puts pinned items in their slots whatever their rank, with the reason given, and reports a pin it cannot show', async () => {
    // Pin the model's 8th item to the top and a brand-new item (no events, unknown to the model, and no known
    // item shares its category or brand, so the model cannot score it) to slot 3.
    await shop.call('/v1/items', { method: 'PUT', body: { items: [{ id: 'sku-new', title: 'New', properties: { brand: 'unheard-of' } }] } });
    const eighth = full[7]!;
    const { status, body } = await shop.call('/v1/sessions/recommendations', {
      role: 'read',
      body: {
        events: [{ item: 'sku-1' }],
        k: 5,
        exclude: 'none',
        filter: 'brand = "b"', // pins are not subject to it
        pins: [
          { item: eighth.item, slot: 1, reason: 'spring campaign' },
          { item: 'sku-new', slot: 3 },
          { item: 'sku-gone', slot: 4 },
        ],
      },
    });
    expect(status).toBe(200);
    const items = body.items as Item[];
    expect(items).toHaveLength(5);
    expect(items[0]!.item).toBe(eighth.item);
    expect(items[0]!.pin).toEqual({ slot: 1, reason: 'spring campaign', scored: true });
    expect(items[2]).toMatchObject({ item: 'sku-new', probability: 0, score: 0, pin: { slot: 3, reason: null, scored: false } });
    const ranked = items.filter((i) => !i.pin);
    expect(ranked).toHaveLength(3);
    expect(ranked.every((i) => brandOf(i.item) === 'b' && i.item !== eighth.item)).toBe(true);
    expect(body.unplacedPins).toEqual([{ item: 'sku-gone', slot: 4, why: 'unknown' }]);
    // The same through the query string: item@slot.
    const query = await shop.call(`/v1/users/user-1/recommendations?k=3&exclude=none&pins=${encodeURIComponent(`${eighth.item}@2`)}`, { role: 'read' });
    expect(query.body.items.map((i: Item) => i.item)).toEqual([full[0]!.item, eighth.item, full[1]!.item]);
    expect(query.body.items[1].probability).toBeCloseTo(eighth.probability, 6);
    // A slot past k, a slot or an item twice: refused.
    for (const pins of [`${eighth.item}@4`, 'sku-1@1,sku-2@1', 'sku-1@1,sku-1@2', 'sku-1', 'sku-1@0']) {
      const bad = await shop.call(`/v1/users/user-1/recommendations?k=3&pins=${encodeURIComponent(pins)}`, { role: 'read' });
      expect(bad.status, pins).toBe(400);
      expect(bad.body.code).toBe('VALIDATION_FAILED');
    }
  });

  it('answers a rule it cannot use with a 400 problem that points at the offending character', async () => {
    const syntax = await shop.call(`/v1/users/user-1/recommendations?filter=${encodeURIComponent('stock > > 0')}`, { role: 'read' });
    expect(syntax.status).toBe(400);
    expect(syntax.headers.get('content-type')).toContain(PROBLEM);
    expect(syntax.body).toMatchObject({ code: 'RULE_SYNTAX', parameter: 'filter', offset: 8, rule: 'stock > > 0' });
    expect(syntax.body.detail).toMatch(/^filter: expected a value .* at character 9, found '> 0'$/);
    expect(syntax.body.excerpt).toBe('stock > > 0\n        ^');
    const type = await shop.call('/v1/sessions/recommendations', { role: 'read', body: { events: [{ item: 'sku-2' }], filter: 'brand = "a" AND stock > "5"' } });
    expect(type.status).toBe(400);
    expect(type.body).toMatchObject({ code: 'RULE_TYPE', parameter: 'filter', offset: 24 });
    expect(type.body.detail).toContain('property stock holds numbers');
    const builtIn = await shop.call(`/v1/users/user-1/recommendations?filter=${encodeURIComponent('price > "cheap"')}`, { role: 'read' });
    expect(builtIn.body).toMatchObject({ code: 'RULE_TYPE', detail: 'filter: price holds numbers: it cannot be compared with "cheap" (a string)' });
    const factor = await shop.call(`/v1/users/user-1/recommendations?boost=${encodeURIComponent('0 IF stock = 0')}`, { role: 'read' });
    expect(factor.body).toMatchObject({ code: 'RULE_VALUE', parameter: 'boost', offset: 0 });
    const long = await shop.call(`/v1/users/user-1/recommendations?filter=${'a'.repeat(2_001)}`, { role: 'read' });
    expect(long.body.code).toBe('VALIDATION_FAILED');
  });

  it('imports properties from the catalogue CSV, and refuses a row whose properties are not a JSON object', async () => {
    const file = join(shop.dir, 'catalogue.csv');
    writeFileSync(file, 'item_id,properties\nsku-9,"{""brand"": ""imported"", ""stock"": 7}"\nsku-10,"[1, 2]"\nsku-11,\n');
    const report = await importEvents(shop.store, { catalogPath: file, skipBad: true, eventTypes: 'register' });
    expect(report.skipped.examples.map((b) => [b.line, b.code])).toEqual([[3, 'BAD_PROPERTIES']]);
    await shop.call('/v1/items', { method: 'PUT', body: { items: [{ id: 'sku-0' }] } }); // reloads the server's catalogue
    expect((await shop.call('/v1/items/sku-9', { role: 'read' })).body.properties).toEqual({ brand: 'imported', stock: 7 });
    expect((await shop.call('/v1/items/sku-10', { role: 'read' })).body.properties).toEqual(properties(10)); // the refused row changed nothing
    expect((await shop.call('/v1/items/sku-11', { role: 'read' })).body.properties).toBeNull(); // an empty field clears them
  });

  it('recommends a new item before any training, just after the best item of its category', async () => {
    // Listed now, never seen by the version: the even items stand for it.
    expect((await shop.call('/v1/items', { method: 'PUT', body: { items: [{ id: 'sku-new', category: 'even', price: 13, properties: { brand: 'z' } }] } })).status).toBe(200);
    const all = (await shop.call('/v1/users/user-1/recommendations?k=13&exclude=none', { role: 'read' })).body.items as (Item & { newItem?: { level: string } })[];
    const at = all.findIndex((i) => i.item === 'sku-new');
    expect(all[at]?.newItem).toEqual({ level: 'category' });
    const bestEven = all.find((i) => Number(i.item.slice(4)) % 2 === 0)!;
    expect(all[at - 1]).toEqual(bestEven);
    expect(all[at]!.score).toBe(bestEven.score);
    expect(all.filter((i) => i.newItem)).toHaveLength(1);
    // Filters hold for it like for any item, on sessions too.
    expect((await shop.call('/v1/users/user-1/recommendations?k=13&exclude=none&filter=' + encodeURIComponent('category = "odd"'), { role: 'read' })).body.items.some((i: Item) => i.item === 'sku-new')).toBe(false);
    const session = await shop.call('/v1/sessions/recommendations', { method: 'POST', role: 'read', body: { events: [{ item: 'sku-2', type: 'view' }], k: 13, exclude: 'none', filter: 'category = "even"' } });
    expect(session.status).toBe(200);
    expect(session.body.items.map((i: Item) => i.item)).toContain('sku-new');
    // Taken out of the catalogue, it is gone.
    await shop.call('/v1/items', { method: 'PUT', body: { items: [{ id: 'sku-new', active: false }] } });
    expect((await shop.call('/v1/users/user-1/recommendations?k=13&exclude=none', { role: 'read' })).body.items.some((i: Item) => i.item === 'sku-new')).toBe(false);
  });
});
