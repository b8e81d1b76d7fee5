import { expect, it } from 'vitest';
import { describeEachProvider, scratchStorePerTest } from '../../test/support/test-stores.js';
import type { EventRow } from './import/event-row.js';
import { ingestEvents } from './ingest-events.js';

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
});
