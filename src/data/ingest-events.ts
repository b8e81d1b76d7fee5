import { AppError } from '../errors.js';
import { CommittedIds } from './committed-ids.js';
import { EVENTS_CHANNEL, eventNoticePayloads } from './event-notifications.js';
import { toColumns, type EventColumns } from './import/event-columns.js';
import type { EventRow } from './import/event-row.js';
import { EventTypeRegistry, type EventTypePolicy } from './import/event-types.js';
import { resolveBatch } from './import/import-events.js';
import { groupByUser, type ImportTarget } from './import/import-target.js';
import { postgresImportTarget } from './import/postgres-target.js';
import { prepareSqliteImportTarget, sqliteBatchSavepoint, sqliteImportTarget } from './import/sqlite-target.js';
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
  /**
   * Check the batch as it would be stored (ids resolved, unknown users, items
   * and sessions created, duplicates found, every row written) and then roll
   * it back: nothing is stored, no id is remembered, no notice is sent. The
   * result says what storing it would do. The API's `POST /v1/events?dryRun=true`,
   * and the server's start-up warm-up of the write path.
   */
  readonly dryRun?: boolean;
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
 *
 * On SQLite, batches that arrive together share a transaction (group
 * commit, see SqliteEventGroups); each stays all-or-nothing on its own.
 */
export async function ingestEvents(store: Store, rows: readonly EventRow[], options: IngestOptions = {}): Promise<IngestResult> {
  if (rows.length === 0) return { received: 0, stored: 0, duplicates: 0, users: [], sessions: [], created: { users: 0, items: 0, sessions: 0 } };
  if (options.strictCatalog) await requireKnownItems(store, [...new Set(rows.map((r) => r.item))]);
  const policy = options.eventTypes ?? 'register';
  if (store.provider === 'sqlite') return sqliteGroupsOf(store).add(toColumns(rows), policy, options.dryRun === true);
  const target = await postgresImportTarget(store.pool);
  await target.begin();
  try {
    const written = await writeBatch(target, committedIdsOf(store), toColumns(rows), policy);
    if (options.dryRun) {
      await target.rollback();
      return written.result;
    }
    if (options.notify && target.notify && written.result.stored > 0) {
      const users = [...new Set(rows.flatMap((r) => (r.user === null ? [] : [r.user])))];
      for (const payload of eventNoticePayloads(options.notify.from, users)) await target.notify(EVENTS_CHANNEL, payload);
    }
    await target.commit();
    written.commitIds();
    return written.result;
  } catch (error) {
    await target.rollback();
    throw error;
  }
}

/**
 * One batch inside an open transaction: resolves its ids (creating unknown users, items and sessions),
 * refuses it whole if any row cannot be stored (AppError VALIDATION_FAILED, naming each row by its index),
 * writes its events. `commitIds` publishes the ids it resolved once its transaction has committed.
 */
async function writeBatch(
  target: ImportTarget,
  ids: CommittedIds,
  columns: EventColumns,
  policy: EventTypePolicy,
): Promise<{ result: IngestResult; commitIds: () => void }> {
  const before = { ...target.created };
  const registry = new EventTypeRegistry(await target.eventTypes(), policy);
  const caches = ids.transaction();
  const { events, problems } = await resolveBatch(target, registry, caches, columns);
  if (problems.length > 0) {
    throw new AppError('VALIDATION_FAILED', `${problems.length} of ${columns.count} events cannot be stored; none were`, {
      errors: problems.map((p) => ({ index: p.line - 1, code: p.code, message: p.message })),
    });
  }
  await target.stageEvents(target.prepareEvents(groupByUser(events)));
  const stored = await target.flushStaged();
  const { created } = target;
  return {
    result: {
      received: columns.count,
      stored,
      duplicates: columns.count - stored,
      users: distinctNonZero(events.userId, events.count),
      sessions: distinctNonZero(events.sessionId, events.count),
      created: { users: created.users - before.users, items: created.items - before.items, sessions: created.sessions - before.sessions },
    },
    commitIds: caches.commit,
  };
}

interface PendingBatch {
  readonly columns: EventColumns;
  readonly policy: EventTypePolicy;
  /** Written inside its savepoint, then rolled back to it (IngestOptions.dryRun). */
  readonly dryRun: boolean;
  readonly resolve: (result: IngestResult) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Group commit for SQLite. A one-event batch (an active shopper's view, the
 * API's commonest write) cost ~100-140 µs of the event loop, and BEGIN
 * IMMEDIATE and COMMIT were ~70 µs of it (the commit writes the batch's WAL
 * frames; bench/scratch probe on the serve benchmark's store): the same for
 * one event as for a hundred. Batches that arrive while a group waits for the
 * write lock, or in the same turn of the event loop, are written in one
 * transaction, each inside a savepoint of its own: a refused batch rolls back
 * to its savepoint (nothing of it stays, the ids it created included) and the
 * others go on. Every batch of the group is answered after the COMMIT, so an
 * acknowledged event is committed, as before. A group holds at most
 * MAX_GROUP_EVENTS events; the rest wait for the next.
 */
class SqliteEventGroups {
  private readonly queue: PendingBatch[] = [];
  private scheduled = false;
  /** Transactions written, and batches stored or refused in them (the counters a test reads). */
  readonly stats = { transactions: 0, batches: 0 };

  constructor(private readonly store: Extract<Store, { provider: 'sqlite' }>) {}

  add(columns: EventColumns, policy: EventTypePolicy, dryRun: boolean): Promise<IngestResult> {
    return new Promise((resolve, reject) => {
      this.queue.push({ columns, policy, dryRun, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    // After this turn's I/O callbacks, so the batches parsed in the same turn join; then behind the write lock,
    // where batches that arrive while another writer holds it join too.
    setImmediate(() => {
      void withWriteLock(this.store, async () => {
        this.scheduled = false;
        const group = this.takeGroup();
        try {
          await this.writeGroup(group);
        } catch (error) {
          for (const batch of group) batch.reject(error); // a settled batch ignores it
        }
        if (this.queue.length > 0) this.schedule();
      });
    });
  }

  private takeGroup(): PendingBatch[] {
    let events = 0;
    let n = 0;
    while (n < this.queue.length && (n === 0 || events + this.queue[n]!.columns.count <= MAX_GROUP_EVENTS)) events += this.queue[n++]!.columns.count;
    return this.queue.splice(0, n);
  }

  private async writeGroup(group: readonly PendingBatch[]): Promise<void> {
    const { db } = this.store;
    const target = sqliteImportTarget(db);
    const savepoint = sqliteBatchSavepoint(db);
    const written: { batch: PendingBatch; result: IngestResult; commitIds: () => void }[] = [];
    const checked: { batch: PendingBatch; result: IngestResult }[] = [];
    try {
      await target.begin();
    } catch (error) {
      for (const batch of group) batch.reject(error);
      return;
    }
    this.stats.transactions++;
    for (const batch of group) {
      this.stats.batches++;
      savepoint.begin.run();
      try {
        const done = await writeBatch(target, committedIdsOf(this.store), batch.columns, batch.policy);
        if (batch.dryRun) {
          // Nothing of it stays, the ids it created included (its id layer is never committed).
          savepoint.rollback.run();
          checked.push({ batch, result: done.result });
        } else written.push({ batch, ...done });
        savepoint.release.run();
      } catch (error) {
        batch.reject(error);
        if (!db.inTransaction) {
          // SQLite rolled the whole transaction back (disk full, I/O error): nothing of the group is stored.
          for (const other of group) if (other !== batch) other.reject(error);
          return;
        }
        savepoint.rollback.run();
        savepoint.release.run();
      }
    }
    try {
      await target.commit();
    } catch (error) {
      await target.rollback();
      for (const { batch } of [...written, ...checked]) batch.reject(error);
      return;
    }
    for (const { batch, result } of checked) batch.resolve(result);
    let changed = 0;
    for (const { batch, result, commitIds } of written) {
      commitIds();
      changed += result.stored + result.created.users + result.created.items + result.created.sessions;
      batch.resolve(result);
    }
    walCheckpointer(db, checkpointHold(this.store))?.committed(changed);
  }
}

/** The most events one group commit writes (a single API batch may hold 1,000). */
const MAX_GROUP_EVENTS = 2_000;

const sqliteGroups = new WeakMap<Store, SqliteEventGroups>();

function sqliteGroupsOf(store: Extract<Store, { provider: 'sqlite' }>): SqliteEventGroups {
  let groups = sqliteGroups.get(store);
  if (!groups) sqliteGroups.set(store, (groups = new SqliteEventGroups(store)));
  return groups;
}

/** How many transactions the store's event batches have been written in, and how many batches (tests read it). */
export function sqliteIngestStats(store: Store): { readonly transactions: number; readonly batches: number } {
  if (store.provider !== 'sqlite') throw new Error('group commit is SQLite only');
  return { ...sqliteGroupsOf(store).stats };
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
