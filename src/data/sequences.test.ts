import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeEachProvider, scratchStore } from '../../test/support/test-stores.js';
import { importEvents } from './import/import-events.js';
import { DEFAULT_SASREC } from './import/sources.js';
import { hashSequences, loadSequences, SequenceBuilder, type SequenceSet } from './sequences.js';

const LOG = `user_id,session_id,item_id,event_type,timestamp
bob,s2,i2,view,2024-01-01T00:00:03Z
alice,s1,i1,view,2024-01-01T00:00:01Z
alice,s1,i1,cart,2024-01-01T00:00:01Z
alice,s1,i2,purchase,2024-01-01T00:00:05Z
,s9,i3,view,2024-01-01T00:00:02Z
,s9,i1,view,2024-01-01T00:00:04Z
alice,s3,i3,view,2024-01-02T00:00:00Z
`;

/** Sequences with external ids, for readable assertions. */
async function readable(store: Awaited<ReturnType<typeof scratchStore>>, set: SequenceSet): Promise<Record<string, string[]>> {
  const ownerNames = new Map<number, string>();
  if (set.by === 'user') for (const u of await store.prisma.user.findMany()) ownerNames.set(u.id, u.externalId);
  else for (const s of await store.prisma.session.findMany()) ownerNames.set(s.id, s.externalId);
  const itemNames = new Map((await store.prisma.item.findMany()).map((i) => [i.id, i.externalId]));
  const out: Record<string, string[]> = {};
  for (let s = 0; s < set.owners.length; s++) {
    const events: string[] = [];
    for (let k = set.offsets[s]!; k < set.offsets[s + 1]!; k++) events.push(`${itemNames.get(set.items[k]!)}:${set.types[k]}`);
    out[ownerNames.get(set.owners[s]!)!] = events;
  }
  return out;
}

describeEachProvider('loadSequences', (provider) => {
  let store: Awaited<ReturnType<typeof scratchStore>>;
  beforeAll(async () => {
    store = await scratchStore(provider);
    const path = join(mkdtempSync(join(tmpdir(), 'attnrec-seq-')), 'log.csv');
    writeFileSync(path, LOG);
    await importEvents(store, { events: { path, format: 'csv', timeUnit: 'auto', sasrec: DEFAULT_SASREC }, skipBad: false, eventTypes: 'register' });
  });
  afterAll(() => store.dispose());

  it('streams per-user sequences in time order, ties by item then type (funnel order)', async () => {
    const set = await loadSequences(store);
    expect(await readable(store, set)).toEqual({ alice: ['i1:1', 'i1:2', 'i2:3', 'i3:1'], bob: ['i2:1'] });
    expect(Array.from(set.owners)).toEqual([...set.owners].sort((a, b) => a - b));
    expect(set.timestamps[0]).toBe(Date.UTC(2024, 0, 1, 0, 0, 1));
  });

  it('streams per-session sequences, anonymous sessions included', async () => {
    const set = await loadSequences(store, { by: 'session' });
    expect(await readable(store, set)).toEqual({ s1: ['i1:1', 'i1:2', 'i2:3'], s2: ['i2:1'], s3: ['i3:1'], s9: ['i3:1', 'i1:1'] });
  });

  it('filters by time, keeps the most recent N and drops short sequences', async () => {
    expect(await readable(store, await loadSequences(store, { since: new Date('2024-01-01T00:00:03Z') }))).toEqual({ alice: ['i2:3', 'i3:1'], bob: ['i2:1'] });
    expect(await readable(store, await loadSequences(store, { maxPerOwner: 2 }))).toEqual({ alice: ['i2:3', 'i3:1'], bob: ['i2:1'] });
    expect(await readable(store, await loadSequences(store, { minLength: 2 }))).toEqual({ alice: ['i1:1', 'i1:2', 'i2:3', 'i3:1'] });
  });

  it('hashes the same data to the same snapshot id, and different data differently', async () => {
    const a = hashSequences(await loadSequences(store));
    expect(hashSequences(await loadSequences(store))).toBe(a);
    expect(hashSequences(await loadSequences(store, { maxPerOwner: 2 }))).not.toBe(a);
  });
});

describe('SequenceBuilder', () => {
  it('grows past its initial capacity and trims each owner to its last N', () => {
    const builder = new SequenceBuilder('user', 3);
    for (let owner = 1; owner <= 3000; owner++) for (let k = 0; k < 30; k++) builder.push(owner, owner * 100 + k, 1, k);
    const set = builder.finish(1);
    expect(set.owners.length).toBe(3000);
    expect(set.items.length).toBe(9000);
    expect(Array.from(set.items.subarray(set.offsets[2999]!, set.offsets[3000]!))).toEqual([300027, 300028, 300029]);
    expect(Array.from(set.timestamps.subarray(0, 3))).toEqual([27, 28, 29]);
  });
});
