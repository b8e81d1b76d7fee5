import type { Store } from './store.js';
import { withWriteLock } from './write-lock.js';

/**
 * Makes `version` the one active model version (clears the flag on any other
 * first: a partial unique index allows one active row), in one transaction.
 *
 * On SQLite it runs on the store's own connection under the write lock, as
 * the serving path's other writes do. Through Prisma's connection the same
 * two updates blocked the event loop for 87-112 ms at each activation of the
 * serve benchmark (the largest gap between 1-ms timer ticks during the call
 * was 106-109 ms, with or without the write lock; 5 ms on the store's
 * connection): every request in flight waited that long at the swap.
 */
export async function markActiveVersion(store: Store, version: number): Promise<void> {
  if (store.provider === 'sqlite') {
    const { db } = store;
    await withWriteLock(store, async () => {
      db.transaction(() => {
        db.prepare('UPDATE model_versions SET active = 0 WHERE active = 1 AND id != ?').run(version);
        db.prepare('UPDATE model_versions SET active = 1 WHERE id = ?').run(version);
      })();
    });
    return;
  }
  await store.prisma.$transaction([
    store.prisma.modelVersion.updateMany({ where: { active: true, NOT: { id: version } }, data: { active: false } }),
    store.prisma.modelVersion.update({ where: { id: version }, data: { active: true } }),
  ]);
}
