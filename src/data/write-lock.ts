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
