import { expect, it } from 'vitest';
import { describeEachProvider, scratchStorePerTest } from '../../test/support/test-stores.js';
import type { EventRow } from './import/event-row.js';
import { ingestEvents, sqliteIngestStats } from './ingest-events.js';
import type { Store } from './store.js';
import { withBulkWritesPaused } from './write-lock.js';
import { until } from '../../test/support/until.js';

const row = (line: number, user: string, item: string, type = 'view', eventId: string | null = null): EventRow => ({
  line,
  user,
  session: null,
  item,
  type,
  ts: 1_700_000_000_000 + line,
  value: null,
  quantity: null,
  eventId,
  recommendationId: null,
});

describeEachProvider('ingestEvents', (provider) => {
  const store = scratchStorePerTest(provider);

  it('remembers ids across batches only once they are committed: a rolled-back batch leaves none behind', async () => {
    await ingestEvents(store(), [row(1, 'known-user', 'known-item')]);
    // The first row creates user-x and item-x inside the transaction; the second is refused, so nothing is kept.
    await expect(ingestEvents(store(), [row(1, 'user-x', 'item-x'), row(2, 'known-user', 'known-item', 'wishlist')], { eventTypes: 'strict' })).rejects.toMatchObject({
      code: 'VALIDATION_FAILED',
    });
    expect(await store().prisma.user.count({ where: { externalId: 'user-x' } })).toBe(0);
    // Other rows may now take the ids user-x and item-x had in the rolled-back transaction.
    await ingestEvents(store(), [row(1, 'user-y', 'item-y')]);
    const result = await ingestEvents(store(), [row(3, 'user-x', 'item-x'), row(4, 'known-user', 'item-y')]);
    expect(result).toMatchObject({ stored: 2, duplicates: 0, created: { users: 1, items: 1, sessions: 0 } });
    const events = await store().prisma.event.findMany({ select: { user: { select: { externalId: true } }, item: { select: { externalId: true } } }, orderBy: { id: 'asc' } });
    expect(events.map((e) => `${e.user?.externalId} ${e.item.externalId}`).sort()).toEqual(['known-user item-y', 'known-user known-item', 'user-x item-x', 'user-y item-y']);
  });

  it('stores a replayed batch once, with ids remembered from the first time', async () => {
    const batch = [row(1, 'u1', 'i1', 'view', 'e-1'), row(2, 'u2', 'i1', 'cart'), row(3, 'u1', 'i2', 'purchase', 'e-3')];
    expect(await ingestEvents(store(), batch)).toMatchObject({ stored: 3, duplicates: 0, created: { users: 2, items: 2 } });
    expect(await ingestEvents(store(), batch)).toMatchObject({ stored: 0, duplicates: 3, created: { users: 0, items: 0 } });
    expect(await store().prisma.event.count()).toBe(3);
  });

  it('checks a dry run as it would be stored and keeps nothing of it: no event, no new id, remembered or not', async () => {
    await ingestEvents(store(), [row(1, 'known-user', 'known-item', 'view', 'd-1')]);
    const batch = [row(1, 'known-user', 'known-item', 'view', 'd-1'), row(2, 'dry-user', 'dry-item', 'wishlist'), row(3, 'known-user', 'dry-item')];
    // What storing it would do: one duplicate, two stored, a new user, item and event type.
    expect(await ingestEvents(store(), batch, { dryRun: true })).toMatchObject({ received: 3, stored: 2, duplicates: 1, created: { users: 1, items: 1, sessions: 0 } });
    expect(await store().prisma.event.count()).toBe(1);
    expect(await store().prisma.user.count({ where: { externalId: 'dry-user' } })).toBe(0);
    expect(await store().prisma.item.count({ where: { externalId: 'dry-item' } })).toBe(0);
    expect(await store().prisma.eventType.count({ where: { name: 'wishlist' } })).toBe(0);
    // A dry run's refusal is the real one's.
    await expect(ingestEvents(store(), [row(1, 'u', 'i', 'wishlist')], { dryRun: true, eventTypes: 'strict' })).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
    // The ids the dry run made were never remembered: storing the batch now creates them, and stores what it said.
    expect(await ingestEvents(store(), batch)).toMatchObject({ stored: 2, duplicates: 1, created: { users: 1, items: 1 } });
    expect(await store().prisma.event.count()).toBe(3);
  });

  if (provider === 'sqlite') {
    it('keeps nothing of a dry run that shares a group commit with batches that are stored', async () => {
      await ingestEvents(store(), [row(1, 'known-user', 'known-item')]);
      const before = sqliteIngestStats(store());
      const [stored, dry] = await Promise.all([
        ingestEvents(store(), [row(2, 'group-user', 'known-item')]),
        ingestEvents(store(), [row(3, 'dry-user', 'known-item')], { dryRun: true }),
      ]);
      expect(sqliteIngestStats(store()).transactions).toBe(before.transactions + 1);
      expect(stored).toMatchObject({ stored: 1, created: { users: 1 } });
      expect(dry).toMatchObject({ stored: 1, created: { users: 1 } });
      expect(await store().prisma.user.count({ where: { externalId: { in: ['group-user', 'dry-user'] } } })).toBe(1);
      expect(await store().prisma.event.count()).toBe(2);
    });

    it('writes batches that arrive together in one transaction, each of them all-or-nothing on its own', async () => {
      await ingestEvents(store(), [row(1, 'known-user', 'known-item')]);
      const before = sqliteIngestStats(store());
      const results = await Promise.allSettled([
        ingestEvents(store(), [row(1, 'new-a', 'known-item', 'view', 'g-1')]),
        // Refused whole: its first row would create user new-b and item new-item, which must not stay.
        ingestEvents(store(), [row(1, 'new-b', 'new-item'), row(2, 'new-b', 'known-item', 'wishlist')], { eventTypes: 'strict' }),
        // The same event as the first batch's, in the same transaction: a duplicate.
        ingestEvents(store(), [row(1, 'new-a', 'known-item', 'view', 'g-1'), row(2, 'known-user', 'known-item', 'cart')]),
      ]);
      expect(sqliteIngestStats(store())).toEqual({ transactions: before.transactions + 1, batches: before.batches + 3, rewritten: before.rewritten + 1 });
      expect(results[0]).toMatchObject({ status: 'fulfilled', value: { stored: 1, duplicates: 0, created: { users: 1, items: 0 } } });
      expect(results[1]).toMatchObject({ status: 'rejected', reason: { code: 'VALIDATION_FAILED', details: { errors: [{ index: 1, code: 'UNKNOWN_EVENT_TYPE' }] } } });
      expect(results[2]).toMatchObject({ status: 'fulfilled', value: { stored: 1, duplicates: 1, created: { users: 0, items: 0 } } });
      expect(await store().prisma.user.count({ where: { externalId: 'new-b' } })).toBe(0);
      expect(await store().prisma.item.count({ where: { externalId: 'new-item' } })).toBe(0);
      expect(await store().prisma.event.count()).toBe(3);
      // The refused batch's rolled-back ids were never remembered: the same rows, now valid, create them.
      expect(await ingestEvents(store(), [row(1, 'new-b', 'new-item')])).toMatchObject({ stored: 1, created: { users: 1, items: 1 } });
    });

    it("puts a shopper's small batch ahead of bulk batches that waited longer, in groups of at most 200 events", async () => {
      await ingestEvents(store(), [row(1, 'known-user', 'known-item')]);
      const before = sqliteIngestStats(store());
      const bulk = (b: number): EventRow[] => Array.from({ length: 100 }, (_, i) => row(i + 1, `bulk-user-${i % 7}`, `bulk-item-${b}-${i}`, 'view', `bulk-${b}-${i}`));
      const done: string[] = [];
      const track = (name: string, p: Promise<unknown>) => p.then(() => void done.push(name));
      // Six bulk batches, then a shopper's single event, all in the same turn of the event loop.
      await Promise.all([
        ...[1, 2, 3, 4, 5, 6].map((b) => track(`bulk-${b}`, ingestEvents(store(), bulk(b)))),
        track('shopper', ingestEvents(store(), [row(1, 'known-user', 'known-item', 'cart', 'shopper-event')])),
      ]);
      // The first group: the oldest batch and the shopper's (a second bulk batch would pass 200 events); then two bulk batches a group.
      expect(sqliteIngestStats(store())).toEqual({ transactions: before.transactions + 4, batches: before.batches + 7, rewritten: before.rewritten });
      expect(done.indexOf('shopper')).toBeLessThan(done.indexOf('bulk-2'));
      const id = (eventId: string) => store().prisma.event.findFirstOrThrow({ where: { eventId }, select: { id: true } });
      expect((await id('shopper-event')).id).toBeLessThan((await id('bulk-5-0')).id);
      expect((await id('bulk-4-99')).id).toBeLessThan((await id('bulk-5-0')).id);
      expect(await store().prisma.event.count()).toBe(602);
    });

    it("writes a shopper's batch while bulk writes are paused, and the bulk batches that waited once the pause ends", async () => {
      await ingestEvents(store(), [row(1, 'known-user', 'known-item')]);
      const bulk = Array.from({ length: 100 }, (_, i) => row(i + 1, `paused-user-${i % 5}`, 'known-item', 'view', `paused-${i}`));
      const done: string[] = [];
      let resume!: () => void;
      const paused = withBulkWritesPaused(store(), async () => {
        const bulkStored = ingestEvents(store(), bulk).then(() => void done.push('bulk'));
        await ingestEvents(store(), [row(2, 'known-user', 'known-item', 'cart', 'shopper-event')]);
        done.push('shopper');
        // The shopper's event is stored; the bulk batch is not, however many turns of the event loop go by.
        for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
        expect(done).toEqual(['shopper']);
        expect(await store().prisma.event.count({ where: { eventId: { startsWith: 'paused-' } } })).toBe(0);
        await new Promise<void>((r) => (resume = r));
        // Wrapped: the pause would wait for the bulk batch, which waits for the pause.
        return { bulkStored };
      });
      await until(() => resume !== undefined);
      resume();
      await (await paused).bulkStored;
      expect(done).toEqual(['shopper', 'bulk']);
      expect(await store().prisma.event.count()).toBe(102);
    });

    it('answers a group only once it is committed, and one batch at a time when they arrive apart', async () => {
      const before = sqliteIngestStats(store());
      const db = (store() as Extract<Store, { provider: 'sqlite' }>).db;
      const first = ingestEvents(store(), [row(1, 'u1', 'i1')]);
      expect(db.inTransaction).toBe(false); // nothing written before the event loop's turn ends
      await first;
      expect(db.inTransaction).toBe(false);
      expect(db.prepare('SELECT COUNT(*) FROM events').pluck().get()).toBe(1);
      await ingestEvents(store(), [row(2, 'u1', 'i2')]);
      expect(sqliteIngestStats(store())).toEqual({ transactions: before.transactions + 2, batches: before.batches + 2, rewritten: before.rewritten });
    });
  }
});
