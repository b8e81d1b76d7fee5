import type { Store } from './store.js';

/**
 * Serialises write transactions on one SQLite connection. better-sqlite3 is
 * synchronous, but a writer that awaits between BEGIN and COMMIT lets a
 * second request reach BEGIN on the same connection ("cannot start a
 * transaction within a transaction"). PostgreSQL writers each take their own
 * pooled connection and need no lock.
 */
const tails = new WeakMap<Store, Promise<unknown>>();

export async function withWriteLock<T>(store: Store, write: () => Promise<T>): Promise<T> {
  if (store.provider !== 'sqlite') return write();
  const previous = tails.get(store) ?? Promise.resolve();
  const run = previous.then(write, write);
  tails.set(store, run.catch(() => {}));
  return run;
}

/**
 * Long reads on another connection of the process (the attribution look-ups on
 * SQLite's reader thread, src/data/attributions.ts) and the WAL checkpointer's
 * held round exclude each other. A read transaction keeps the WAL frames it
 * may read: a checkpoint cannot copy past them, and the WAL cannot start over
 * from its beginning, so a reader that is nearly always in a transaction (an
 * attributor working through a backlog) grew the WAL to 364 MB in 70 s of
 * ingestion. The held round waits for the reads under way and holds new ones
 * back until it has copied everything; reads wait only for that round (a few
 * ms), never for writes.
 */
interface LongReads {
  active: number;
  drained: (() => void)[];
  held: Promise<void> | undefined;
}
const longReads = new WeakMap<Store, LongReads>();

function longReadsOf(store: Store): LongReads {
  let state = longReads.get(store);
  if (!state) longReads.set(store, (state = { active: 0, drained: [], held: undefined }));
  return state;
}

/** Runs a long read unless a held checkpoint round runs, whose end it waits for. */
export async function withLongRead<T>(store: Store, read: () => Promise<T>): Promise<T> {
  const state = longReadsOf(store);
  while (state.held) await state.held;
  state.active++;
  try {
    return await read();
  } finally {
    if (--state.active === 0) for (const resolve of state.drained.splice(0)) resolve();
  }
}

/** What the WAL checkpointer's held round runs under: the write lock, with no long read under way. */
export function checkpointHold(store: Store): (fn: () => Promise<void>) => Promise<void> {
  return (fn) =>
    withWriteLock(store, async () => {
      const state = longReadsOf(store);
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      state.held = held;
      try {
        while (state.active > 0) await new Promise<void>((resolve) => state.drained.push(resolve));
        await fn();
      } finally {
        if (state.held === held) state.held = undefined;
        release();
      }
    });
}

/**
 * Bulk event batches held back for a moment while a shopper's own batches go on: the WAL checkpointer's
 * cycle ends under it (src/data/wal-checkpointer.ts), so the held round that every write waits for has
 * only a shopper's few pages left to copy. The event group commit (src/data/ingest-events.ts) asks
 * bulkWritesPaused before it takes bulk batches into a group.
 */
const bulkPauses = new WeakMap<Store, Promise<void>>();

/** Runs `fn` with the store's bulk event batches held back (not written until it ends). */
export async function withBulkWritesPaused<T>(store: Store, fn: () => Promise<T>): Promise<T> {
  while (bulkPauses.get(store)) await bulkPauses.get(store);
  let release!: () => void;
  bulkPauses.set(store, new Promise<void>((resolve) => (release = resolve)));
  try {
    return await fn();
  } finally {
    bulkPauses.delete(store);
    release();
  }
}

/** Resolves when the store's bulk event batches may be written again; undefined when they may be now. */
export function bulkWritesPaused(store: Store): Promise<void> | undefined {
  return bulkPauses.get(store);
}
