import { cpSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { describeEachProvider, scratchDatabase, type ScratchDatabase } from '../../test/support/test-stores.js';
import { migrate, migrationsFolder, pendingMigrations } from './migrate.js';
import { openStore, type Store } from './store.js';

describe('pendingMigrations', () => {
  const files = [
    { name: '0001_a', sql: 'x', checksum: 'c1' },
    { name: '0002_b', sql: 'y', checksum: 'c2' },
  ];
  it('returns the ones not yet applied, in order', () => {
    expect(pendingMigrations(files, new Map([['0001_a', 'c1']])).map((m) => m.name)).toEqual(['0002_b']);
    expect(pendingMigrations(files, new Map()).map((m) => m.name)).toEqual(['0001_a', '0002_b']);
  });
  it('refuses an applied migration whose file changed', () => {
    expect(() => pendingMigrations(files, new Map([['0001_a', 'other']]))).toThrow(expect.objectContaining({ code: 'MIGRATION_CHANGED' }));
  });
  it('refuses a database migrated by a newer version', () => {
    expect(() => pendingMigrations(files, new Map([['0009_future', 'z']]))).toThrow(expect.objectContaining({ code: 'MIGRATION_UNKNOWN' }));
  });
});

describeEachProvider('migrate', (provider) => {
  let database: ScratchDatabase;
  let store: Store | undefined;
  afterEach(async () => {
    await store?.close();
    await database.dispose();
  });

  it('applies every migration once and is a no-op the second time', async () => {
    database = await scratchDatabase(provider);
    store = openStore(database.url);
    const first = await migrate(store);
    expect(first.applied.length).toBeGreaterThan(0);
    expect(first.alreadyApplied).toEqual([]);
    const second = await migrate(store);
    expect(second.applied).toEqual([]);
    expect(second.alreadyApplied).toEqual(first.applied);
  });

  it('rolls back a failing migration and leaves earlier ones applied', async () => {
    database = await scratchDatabase(provider);
    store = openStore(database.url);
    const folder = mkdtempSync(join(tmpdir(), 'attnrec-migrations-'));
    cpSync(migrationsFolder(provider), folder, { recursive: true });
    writeFileSync(join(folder, '9999_broken.sql'), 'CREATE TABLE half_done (id INTEGER);\nTHIS IS NOT SQL;');
    await expect(migrate(store, folder)).rejects.toThrow();
    // The broken migration left nothing behind, and the good ones are recorded.
    const report = await migrate(store);
    expect(report.applied).toEqual([]);
    const tables =
      store.provider === 'sqlite'
        ? store.db.prepare(`SELECT name FROM sqlite_master WHERE name = 'half_done'`).all()
        : (await store.pool.query(`SELECT tablename FROM pg_tables WHERE tablename = 'half_done'`)).rows;
    expect(tables).toEqual([]);
  });

  it('attribution (0005) on a store that holds events: they keep no recommendationId, and the cursor starts after them', async () => {
    database = await scratchDatabase(provider);
    store = openStore(database.url);
    const before = mkdtempSync(join(tmpdir(), 'attnrec-migrations-'));
    for (const file of readdirSync(migrationsFolder(provider)).filter((f) => f < '0005')) cpSync(join(migrationsFolder(provider), file), join(before, file));
    await migrate(store, before);
    const sql = `INSERT INTO events (user_id, item_id, type_id, ts) VALUES (1, 1, 1, ${provider === 'sqlite' ? '1700000000000' : "TIMESTAMP '2023-11-14 22:13:20'"}), (1, 2, 1, ${provider === 'sqlite' ? '1700000000001' : "TIMESTAMP '2023-11-14 22:13:21'"})`;
    if (store.provider === 'sqlite') store.db.exec(sql);
    else await store.pool.query(sql);
    expect((await migrate(store)).applied[0]).toBe('0005_attribution');
    const events = await store.prisma.event.findMany({ orderBy: { id: 'asc' } });
    expect(events.map((e) => e.recommendationId)).toEqual([null, null]);
    expect(await store.prisma.attributionCursor.findMany()).toEqual([{ name: 'events', eventKey: events[1]!.id, updatedAt: expect.any(Date) }]);
  });

  it('packed impressions (0006): stored impressions keep their items in rank order, a missing rank as null', async () => {
    database = await scratchDatabase(provider);
    store = openStore(database.url);
    const before = mkdtempSync(join(tmpdir(), 'attnrec-migrations-'));
    for (const file of readdirSync(migrationsFolder(provider)).filter((f) => f < '0006')) cpSync(join(migrationsFolder(provider), file), join(before, file));
    await migrate(store, before);
    const ts = provider === 'sqlite' ? '1700000000000' : "TIMESTAMP '2023-11-14 22:13:20'";
    const statements = [
      `INSERT INTO items (id, external_id) VALUES (1, 'a'), (2, 'b'), (3, 'c')`,
      `INSERT INTO impressions (id, ts, route, strategy, user_id) VALUES ('i-1', ${ts}, 'user_recommendations', 'model', 'u'), ('i-2', ${ts}, 'similar_items', 'model', NULL), ('i-3', ${ts}, 'rank', 'model', 'u')`,
      // i-1 showed 3 items, the second of which the catalogue did not know (no row); i-3 showed none.
      `INSERT INTO impression_items (impression_id, rank, item_id, probability, score, user_id, ts) VALUES
         ('i-1', 3, 2, 0.125, -1.5, 'u', ${ts}), ('i-1', 1, 3, 0.5, 2.25, 'u', ${ts}), ('i-2', 1, 1, NULL, 0.75, NULL, ${ts})`,
    ];
    for (const sql of statements) {
      if (store.provider === 'sqlite') store.db.exec(sql);
      else await store.pool.query(sql);
    }
    expect((await migrate(store)).applied[0]).toBe('0006_packed_impressions'); // and the migrations after it
    const rows = await store.prisma.impression.findMany({ orderBy: { id: 'asc' }, select: { id: true, itemIds: true, probabilities: true, scores: true } });
    expect(rows).toEqual([
      { id: 'i-1', itemIds: [3, null, 2], probabilities: [0.5, null, 0.125], scores: [2.25, null, -1.5] },
      { id: 'i-2', itemIds: [1], probabilities: [null], scores: [0.75] },
      { id: 'i-3', itemIds: [], probabilities: [], scores: [] },
    ]);
  });
});
