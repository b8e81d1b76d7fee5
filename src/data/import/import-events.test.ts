import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeEach, expect, it } from 'vitest';
import { eventDump, tableCounts } from '../../../test/support/event-counts.js';
import { describeEachProvider, scratchStore, scratchStorePerTest } from '../../../test/support/test-stores.js';
import { importEvents, type ImportOptions } from './import-events.js';
import { DEFAULT_SASREC, type EventFormat } from './sources.js';

const dir = mkdtempSync(join(tmpdir(), 'attnrec-import-'));
let fileCounter = 0;
function file(name: string, content: string): string {
  const path = join(dir, `${fileCounter++}-${name}`);
  writeFileSync(path, content);
  return path;
}

function eventsFrom(path: string, format: EventFormat, extra: Partial<ImportOptions> = {}): ImportOptions {
  return { events: { path, format, timeUnit: 'auto', sasrec: DEFAULT_SASREC }, skipBad: false, eventTypes: 'register', ...extra };
}

const CSV = `user_id,session_id,item_id,event_type,timestamp,value,quantity,event_id,referrer
alice,s1,sku-1,view,2024-01-01T10:00:00Z,,,,google
alice,s1,sku-1,AddToCart,2024-01-01T10:01:00Z,,,,
alice,s1,sku-1,purchase,2024-01-01T10:02:00Z,19.99,2,order-1,
,s2,"sku-2, deluxe",view,1704110400,,,,
bob,,sku-2,wishlist,1704110460000,,,,
`;

describeEachProvider('importEvents', (provider) => {
  const current = scratchStorePerTest(provider);
  let store: ReturnType<typeof current>;
  beforeEach(() => {
    store = current();
  });

  it('imports the SASRec format with synthetic, increasing timestamps per user', async () => {
    const path = file('seq.txt', '1 10\n1 11\n1 10\n2 11\n\n2 12\n');
    const report = await importEvents(store, eventsFrom(path, 'sasrec'));
    expect(report.events).toMatchObject({ read: 5, inserted: 5, duplicates: 0, lines: 6 });
    expect(report.created).toEqual({ users: 2, items: 3, sessions: 0, eventTypes: [] });
    const base = DEFAULT_SASREC.baseTimeMs;
    const step = DEFAULT_SASREC.stepMs;
    const events = await eventDump(store);
    expect(events.map((e) => [e.user, e.item, e.type, Number(e.ts)])).toEqual([
      ['1', '10', 'purchase', base],
      ['2', '11', 'purchase', base],
      ['1', '11', 'purchase', base + step],
      ['2', '12', 'purchase', base + step],
      ['1', '10', 'purchase', base + 2 * step],
    ]);
  });

  it('imports a CSV log with quoting, aliases, custom types, sessions and numeric timestamps', async () => {
    const report = await importEvents(store, eventsFrom(file('log.csv', CSV), 'csv'));
    expect(report.events).toMatchObject({ read: 5, inserted: 5, duplicates: 0 });
    expect(report.created).toEqual({ users: 2, items: 3, sessions: 2, eventTypes: ['wishlist'] });
    const events = await eventDump(store);
    expect(events).toEqual([
      { user: 'alice', session: 's1', item: 'sku-1', type: 'view', ts: Date.UTC(2024, 0, 1, 10, 0), value: null, quantity: null, eventId: null },
      { user: 'alice', session: 's1', item: 'sku-1', type: 'cart', ts: Date.UTC(2024, 0, 1, 10, 1), value: null, quantity: null, eventId: null },
      { user: 'alice', session: 's1', item: 'sku-1', type: 'purchase', ts: Date.UTC(2024, 0, 1, 10, 2), value: 19.99, quantity: 2, eventId: 'order-1' },
      { user: null, session: 's2', item: 'sku-2, deluxe', type: 'view', ts: 1_704_110_400_000, value: null, quantity: null, eventId: null },
      { user: 'bob', session: null, item: 'sku-2', type: 'wishlist', ts: 1_704_110_460_000, value: null, quantity: null, eventId: null },
    ].map((e) => ({ ...e, ts: expect.toSatisfy((v: unknown) => Number(v) === e.ts) })));
    const session = await store.prisma.session.findUniqueOrThrow({ where: { externalId: 's1' }, include: { user: true } });
    expect(session.user?.externalId).toBe('alice');
  });

  it('imports JSONL with the same fields', async () => {
    const jsonl = [
      { user_id: 'u1', item_id: 'a', event_type: 'view', timestamp: '2024-02-01T00:00:00Z' },
      { user_id: 7, item_id: 99, event_type: 'purchase', timestamp: 1706745660, value: 5, event_id: 'e-7' },
    ].map((o) => JSON.stringify(o)).join('\n');
    const report = await importEvents(store, eventsFrom(file('log.jsonl', jsonl), 'jsonl'));
    expect(report.events).toMatchObject({ read: 2, inserted: 2 });
    const events = await eventDump(store);
    expect(events.map((e) => [e.user, e.item, e.eventId])).toEqual([['u1', 'a', null], ['7', '99', 'e-7']]);
  });

  it('keeps the optional recommendation_id column (explicit attribution) in CSV and JSONL, lowercase; a malformed one is a bad line', async () => {
    const id = '019AE2D6-7E1B-7000-8000-00000000000A';
    const csv = `user_id,item_id,event_type,timestamp,recommendation_id\nu1,a,view,2024-02-01T00:00:00Z,${id}\nu1,b,view,2024-02-01T00:00:01Z,\n`;
    const jsonl = [
      { user_id: 'u2', item_id: 'a', event_type: 'cart', timestamp: '2024-02-01T00:00:00Z', recommendation_id: id.toLowerCase() },
      { user_id: 'u2', item_id: 'b', event_type: 'cart', timestamp: '2024-02-01T00:00:01Z' },
    ].map((o) => JSON.stringify(o)).join('\n');
    expect((await importEvents(store, eventsFrom(file('rec.csv', csv), 'csv'))).events).toMatchObject({ read: 2, inserted: 2 });
    expect((await importEvents(store, eventsFrom(file('rec.jsonl', jsonl), 'jsonl'))).events).toMatchObject({ read: 2, inserted: 2 });
    const stored = await store.prisma.event.findMany({ orderBy: { id: 'asc' }, select: { recommendationId: true } });
    expect(stored.map((e) => e.recommendationId).sort()).toEqual([id.toLowerCase(), id.toLowerCase(), null, null]);
    const path = file('bad-rec.csv', 'user_id,item_id,event_type,timestamp,recommendation_id\nu3,a,view,2024-02-01T00:00:00Z,not-a-uuid\n');
    await expect(importEvents(store, eventsFrom(path, 'csv'))).rejects.toMatchObject({ code: 'IMPORT_BAD_LINE', details: { line: 2, reason: 'BAD_RECOMMENDATION_ID' } });
  });

  it('re-importing the same data inserts nothing and reports duplicates', async () => {
    const path = file('log.csv', CSV);
    await importEvents(store, eventsFrom(path, 'csv'));
    const before = await tableCounts(store);
    const again = await importEvents(store, eventsFrom(path, 'csv'));
    expect(again.events).toMatchObject({ read: 5, inserted: 0, duplicates: 5 });
    expect(again.created).toEqual({ users: 0, items: 0, sessions: 0, eventTypes: [] });
    expect(await tableCounts(store)).toEqual(before);
  });

  it('treats a repeated event id as a duplicate even when the content differs', async () => {
    const header = 'user_id,item_id,event_type,timestamp,event_id\n';
    await importEvents(store, eventsFrom(file('a.csv', `${header}u,i,view,2024-01-01T00:00:00Z,e-1\n`), 'csv'));
    const report = await importEvents(store, eventsFrom(file('b.csv', `${header}u,i,view,2024-01-02T00:00:00Z,e-1\nu,i,view,2024-01-02T00:00:00Z,e-2\n`), 'csv'));
    expect(report.events).toMatchObject({ read: 2, inserted: 1, duplicates: 1 });
  });

  it('stops at a bad line with file, line and reason, and commits nothing', async () => {
    await importEvents(store, eventsFrom(file('seed.csv', CSV), 'csv'));
    const before = await tableCounts(store);
    const path = file('bad.csv', 'user_id,item_id,event_type,timestamp\nnew-user,new-item,view,2024-01-01T00:00:00Z\nu2,i2,view,not-a-time\n');
    await expect(importEvents(store, eventsFrom(path, 'csv'))).rejects.toMatchObject({
      code: 'IMPORT_BAD_LINE',
      message: `${path}:3: timestamp 'not-a-time' is neither ISO 8601 nor a number`,
      details: { file: path, line: 3, reason: 'BAD_TIMESTAMP' },
    });
    expect(await tableCounts(store)).toEqual(before);
  });

  it('names a missing column and commits nothing', async () => {
    const path = file('nocol.csv', 'user_id,item_id,timestamp\nu,i,2024-01-01T00:00:00Z\n');
    await expect(importEvents(store, eventsFrom(path, 'csv'))).rejects.toMatchObject({
      code: 'IMPORT_MISSING_COLUMN',
      message: expect.stringContaining(`${path}:1: missing required column 'event_type'`),
    });
    const noOwner = file('noowner.csv', 'item_id,event_type,timestamp\ni,view,2024-01-01T00:00:00Z\n');
    await expect(importEvents(store, eventsFrom(noOwner, 'csv'))).rejects.toMatchObject({
      code: 'IMPORT_MISSING_COLUMN',
      message: expect.stringContaining(`one of the columns 'user_id' or 'session_id'`),
    });
    expect((await tableCounts(store)).events).toBe(0);
  });

  it('skips and counts bad lines with skipBad, keeping the good ones', async () => {
    const path = file('mixed.csv', [
      'user_id,item_id,event_type,timestamp',
      'u1,i1,view,2024-01-01T00:00:00Z',
      'u1,i2,view,yesterday',
      'u1,,view,2024-01-01T00:01:00Z',
      'u1,i3,view',
      ',i4,view,2024-01-01T00:02:00Z',
      'u1,i5,9bad,2024-01-01T00:03:00Z',
      'u1,i6,cart,2024-01-01T00:04:00Z',
    ].join('\n'));
    const report = await importEvents(store, eventsFrom(path, 'csv', { skipBad: true }));
    expect(report.events).toMatchObject({ read: 2, inserted: 2 });
    expect(report.skipped.count).toBe(5);
    expect(report.skipped.examples.map((b) => [b.line, b.code])).toEqual([
      [3, 'BAD_TIMESTAMP'],
      [4, 'MISSING_ITEM'],
      [5, 'BAD_FIELD_COUNT'],
      [6, 'MISSING_OWNER'],
      [7, 'BAD_EVENT_TYPE'],
    ]);
    expect((await tableCounts(store)).items).toBe(2);
  });

  it('rejects unknown event types under the strict policy, and registers them otherwise', async () => {
    const path = file('types.csv', 'user_id,item_id,event_type,timestamp\nu,i,view,2024-01-01T00:00:00Z\nu,i,wishlist,2024-01-01T00:01:00Z\n');
    await expect(importEvents(store, eventsFrom(path, 'csv', { eventTypes: 'strict' }))).rejects.toMatchObject({
      code: 'IMPORT_BAD_LINE',
      details: { line: 3, reason: 'UNKNOWN_EVENT_TYPE' },
    });
    expect(await tableCounts(store)).toMatchObject({ events: 0, event_types: 3, users: 0 });
    const report = await importEvents(store, eventsFrom(path, 'csv', { eventTypes: 'register' }));
    expect(report.created.eventTypes).toEqual(['wishlist']);
    const types = await store.prisma.eventType.findMany({ orderBy: { id: 'asc' } });
    expect(types.map((t) => [t.id, t.name])).toEqual([[1, 'view'], [2, 'cart'], [3, 'purchase'], [4, 'wishlist']]);
    // Now known, the strict policy accepts it.
    const later = file('later.csv', 'user_id,item_id,event_type,timestamp\nu,i,wishlist,2024-02-01T00:00:00Z\n');
    expect((await importEvents(store, eventsFrom(later, 'csv', { eventTypes: 'strict' }))).events?.inserted).toBe(1);
  });

  it('reports a session that switches users as a bad line', async () => {
    const path = file('conflict.csv', 'user_id,session_id,item_id,event_type,timestamp\na,s,i,view,2024-01-01T00:00:00Z\nb,s,i,view,2024-01-01T00:01:00Z\n');
    await expect(importEvents(store, eventsFrom(path, 'csv'))).rejects.toMatchObject({ details: { line: 3, reason: 'SESSION_USER_CONFLICT' } });
    const report = await importEvents(store, eventsFrom(path, 'csv', { skipBad: true }));
    expect(report.skipped.count).toBe(1);
    expect(report.events?.inserted).toBe(1);
  });

  it('upserts an item catalogue: new items created, existing ones updated, absent columns untouched', async () => {
    await importEvents(store, eventsFrom(file('log.csv', CSV), 'csv'));
    const catalog = file('items.csv', 'item_id,title,category,price\nsku-1,"Zelda, Breath of the Wild",games,59.99\nsku-9,Controller,accessories,\n');
    const report = await importEvents(store, { catalogPath: catalog, skipBad: false, eventTypes: 'register' });
    expect(report.catalog).toMatchObject({ rows: 2, inserted: 1, updated: 1 });
    const active = file('active.csv', 'item_id,active\nsku-9,false\n');
    await importEvents(store, { catalogPath: active, skipBad: false, eventTypes: 'register' });
    const items = await store.prisma.item.findMany({ orderBy: { externalId: 'asc' }, where: { externalId: { in: ['sku-1', 'sku-9'] } } });
    expect(items.map((i) => [i.externalId, i.title, i.category, i.price, i.active])).toEqual([
      ['sku-1', 'Zelda, Breath of the Wild', 'games', 59.99, true],
      ['sku-9', 'Controller', 'accessories', null, false],
    ]);
  });

  it('rejects a bad catalogue line before touching the store', async () => {
    const catalog = file('badprice.csv', 'item_id,price\nx,12\ny,cheap\n');
    await expect(importEvents(store, { catalogPath: catalog, skipBad: false, eventTypes: 'register' })).rejects.toMatchObject({
      code: 'IMPORT_BAD_LINE',
      details: { line: 3, reason: 'BAD_NUMBER' },
    });
    expect((await tableCounts(store)).items).toBe(0);
  });
});

describeEachProvider('importEvents edge cases', (provider) => {
  const current = scratchStorePerTest(provider);
  let store: ReturnType<typeof current>;
  beforeEach(() => {
    store = current();
  });

  it('keeps event ids with backslashes, quotes and non-ASCII text byte for byte', async () => {
    const ids = ['a\\b', 'c\\\\d', 'ü-ñ-€-😀', '"quoted"', "it's"];
    const jsonl = ids.map((eventId, i) => JSON.stringify({ user_id: 'u', item_id: 'i', event_type: 'view', timestamp: 1_700_000_000 + i, event_id: eventId, value: -0.5 * i, quantity: i + 1 })).join('\n');
    const report = await importEvents(store, eventsFrom(file('ids.jsonl', jsonl), 'jsonl'));
    expect(report.events?.inserted).toBe(ids.length);
    const events = await eventDump(store);
    expect(events.map((e) => [e.eventId, e.value, e.quantity])).toEqual(ids.map((id, i) => [id, i === 0 ? 0 : -0.5 * i, i + 1]));
  });

  it('imports through the in-process reader exactly as through the worker', async () => {
    const path = file('log.csv', CSV);
    const viaWorker = await importEvents(store, eventsFrom(path, 'csv'));
    const other = await scratchStore(provider);
    try {
      const inProcess = await importEvents(other, { ...eventsFrom(path, 'csv'), parallel: false });
      expect(inProcess.events).toEqual(viaWorker.events);
      expect(await eventDump(other)).toEqual(await eventDump(store));
    } finally {
      await other.dispose();
    }
  });

  it('reports a worker-side file error as a clean AppError', async () => {
    const path = file('dup-header.csv', 'user_id,user_id,item_id,event_type,timestamp\n');
    await expect(importEvents(store, eventsFrom(path, 'csv'))).rejects.toMatchObject({ code: 'IMPORT_BAD_HEADER' });
    await expect(importEvents(store, eventsFrom(join(dir, 'missing.csv'), 'csv'))).rejects.toMatchObject({ code: 'IMPORT_FILE_NOT_FOUND' });
  });

  it('handles many batches with users interleaved across them, counting every row once', async () => {
    const lines = ['user_id,session_id,item_id,event_type,timestamp'];
    const sessions = new Set<string>();
    for (let i = 0; i < 120_000; i++) {
      const session = `s${i % 997}-${Math.floor(i / 9970)}`; // each session belongs to one user
      sessions.add(session);
      lines.push(`u${i % 997},${session},i${(i * 31) % 503},view,${1_700_000_000_000 + i}`);
    }
    const path = file('big.csv', `${lines.join('\n')}\n`);
    const report = await importEvents(store, eventsFrom(path, 'csv'));
    expect(report.events).toMatchObject({ read: 120_000, inserted: 120_000, duplicates: 0 });
    expect(report.created).toMatchObject({ users: 997, items: 503, sessions: sessions.size });
    const again = await importEvents(store, eventsFrom(path, 'csv'));
    expect(again.events).toMatchObject({ inserted: 0, duplicates: 120_000 });
  });
});

describeEachProvider('importEvents progress', (provider) => {
  const current = scratchStorePerTest(provider);
  it('reports the file size before the first batch, then bytes read up to it', async () => {
    const path = file('progress.csv', CSV);
    const seen: [number, number, number][] = [];
    await importEvents(current(), { ...eventsFrom(path, 'csv'), onProgress: (p) => seen.push([p.bytesRead, p.bytesTotal, p.eventsRead]) });
    const size = Buffer.byteLength(CSV);
    expect(seen[0]).toEqual([0, size, 0]);
    expect(seen[seen.length - 1]).toEqual([size, size, 5]);
  });
});
