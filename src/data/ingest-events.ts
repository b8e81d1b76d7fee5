import { AppError } from '../errors.js';
import { CommittedIds } from './committed-ids.js';
import { EVENTS_CHANNEL, eventNoticePayloads } from './event-notifications.js';
import { toColumns } from './import/event-columns.js';
import type { EventRow } from './import/event-row.js';
import { EventTypeRegistry, type EventTypePolicy } from './import/event-types.js';
import { resolveBatch } from './import/import-events.js';
import { groupByUser, type ImportTarget } from './import/import-target.js';
import { postgresImportTarget } from './import/postgres-target.js';
import { prepareSqliteImportTarget, sqliteImportTarget } from './import/sqlite-target.js';
import type { Store } from './store.js';
import { walCheckpointer } from './wal-checkpointer.js';
import { checkpointHold, withWriteLock } from './write-lock.js';

export interface IngestOptions {
  /** Reject events on items the catalogue does not have (default: create them). */
  readonly strictCatalog?: boolean;
  readonly eventTypes?: EventTypePolicy;
  /**
   * PostgreSQL: announce the users whose histories this batch touched on the
   * events channel (src/data/event-notifications.ts), as this process (`from`),
   * in the same transaction; other API replicas drop those users' cached state.
   */
  readonly notify?: { readonly from: string };
}

export interface IngestResult {
  readonly received: number;
  readonly stored: number;
  /** Already stored (same eventId, or same owner, item, type and timestamp): not stored again. */
  readonly duplicates: number;
  /** Internal ids of the users and sessions whose histories may have changed. */
  readonly users: number[];
  readonly sessions: number[];
  /** Rows this batch created (unknown users, items, sessions are created on first sight). */
  readonly created: { readonly users: number; readonly items: number; readonly sessions: number };
}

/** Readies the write path ahead of its first batch (SQLite: prepares its statements; PostgreSQL: nothing to do). */
export function prepareIngestion(store: Store): void {
  if (store.provider === 'sqlite') prepareSqliteImportTarget(store.db);
}

/**
 * Stores a batch of validated events in one transaction: all of them or, on
 * any problem, none. The write path of the HTTP API; it shares id resolution
 * and duplicate detection with the bulk import, so a replayed batch stores
 * nothing twice whichever way it arrives.
 */
export async function ingestEvents(store: Store, rows: readonly EventRow[], options: IngestOptions = {}): Promise<IngestResult> {
  if (rows.length === 0) return { received: 0, stored: 0, duplicates: 0, users: [], sessions: [], created: { users: 0, items: 0, sessions: 0 } };
  if (options.strictCatalog) await requireKnownItems(store, [...new Set(rows.map((r) => r.item))]);
  return withWriteLock(store, async () => {
    const target: ImportTarget = store.provider === 'sqlite' ? sqliteImportTarget(store.db) : await postgresImportTarget(store.pool);
    await target.begin();
    try {
      const registry = new EventTypeRegistry(await target.eventTypes(), options.eventTypes ?? 'register');
      const caches = committedIdsOf(store).transaction();
      const { events, problems } = await resolveBatch(target, registry, caches, toColumns(rows));
      if (problems.length > 0) {
        throw new AppError('VALIDATION_FAILED', `${problems.length} of ${rows.length} events cannot be stored; none were`, {
          errors: problems.map((p) => ({ index: p.line - 1, code: p.code, message: p.message })),
        });
      }
      await target.stageEvents(target.prepareEvents(groupByUser(events)));
      const stored = await target.flushStaged();
      if (options.notify && target.notify && stored > 0) {
        const users = [...new Set(rows.flatMap((r) => (r.user === null ? [] : [r.user])))];
        for (const payload of eventNoticePayloads(options.notify.from, users)) await target.notify(EVENTS_CHANNEL, payload);
      }
      await target.commit();
      caches.commit();
      if (store.provider === 'sqlite') {
        walCheckpointer(store.db, checkpointHold(store))?.committed(stored + target.created.users + target.created.items + target.created.sessions);
      }
      return {
        received: rows.length,
        stored,
        duplicates: rows.length - stored,
        users: distinctNonZero(events.userId, events.count),
        sessions: distinctNonZero(events.sessionId, events.count),
        created: { ...target.created },
      };
    } catch (error) {
      await target.rollback();
      throw error;
    }
  });
}

const committedIds = new WeakMap<Store, CommittedIds>();

function committedIdsOf(store: Store): CommittedIds {
  let ids = committedIds.get(store);
  if (!ids) committedIds.set(store, (ids = new CommittedIds()));
  return ids;
}

async function requireKnownItems(store: Store, items: string[]): Promise<void> {
  const known = new Set(
    (await store.prisma.item.findMany({ where: { externalId: { in: items } }, select: { externalId: true } })).map((i) => i.externalId),
  );
  const missing = items.filter((id) => !known.has(id));
  if (missing.length > 0) {
    throw new AppError('UNKNOWN_ITEMS', `${missing.length} item(s) are not in the catalogue (strict catalogue): ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', …' : ''}`, {
      items: missing.slice(0, 100),
    });
  }
}

function distinctNonZero(values: Int32Array, count: number): number[] {
  const seen = new Set<number>();
  for (let i = 0; i < count; i++) if (values[i] !== 0) seen.add(values[i]!);
  return [...seen];
}
