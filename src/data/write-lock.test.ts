import { describe, expect, it } from 'vitest';
import type { Store } from './store.js';
import { checkpointHold, withLongRead, withWriteLock } from './write-lock.js';

/** Only the provider is read by the lock functions. */
const fakeStore = (): Store => ({ provider: 'sqlite' }) as unknown as Store;

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}
const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('long reads and the checkpointer held round', () => {
  it('the held round waits for the long reads under way, and holds new ones back until it ends', async () => {
    const store = fakeStore();
    const order: string[] = [];
    const first = deferred();
    const reading = withLongRead(store, async () => {
      order.push('read 1 starts');
      await first.promise;
      order.push('read 1 ends');
    });
    const round = deferred();
    const held = checkpointHold(store)(async () => {
      order.push('held round starts');
      await round.promise;
      order.push('held round ends');
    });
    await tick();
    expect(order).toEqual(['read 1 starts']);
    first.resolve();
    await reading;
    await tick();
    expect(order).toEqual(['read 1 starts', 'read 1 ends', 'held round starts']);
    const second = withLongRead(store, async () => void order.push('read 2'));
    await tick();
    expect(order).not.toContain('read 2');
    round.resolve();
    await Promise.all([held, second]);
    expect(order).toEqual(['read 1 starts', 'read 1 ends', 'held round starts', 'held round ends', 'read 2']);
  });

  it('the held round takes the write lock; long reads never wait for writes', async () => {
    const store = fakeStore();
    const write = deferred();
    const writing = withWriteLock(store, () => write.promise);
    let heldRan = false;
    const held = checkpointHold(store)(async () => void (heldRan = true));
    // A read while a write runs (and the held round waits behind it) goes ahead.
    expect(await withLongRead(store, async () => 'read')).toBe('read');
    expect(heldRan).toBe(false);
    write.resolve();
    await Promise.all([writing, held]);
    expect(heldRan).toBe(true);
  });
});
