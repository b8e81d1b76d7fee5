import { AppError } from '../errors.js';
import { CommittedIds } from './committed-ids.js';
import { EVENTS_CHANNEL, eventNoticePayloads } from './event-notifications.js';
import { raiseCarried, writeBatch, writeEventGroup, type GroupBatch, type GroupOutcome, type IngestResult } from './event-batch-write.js';
import { toColumns, type EventColumns } from './import/event-columns.js';
import type { EventRow } from './import/event-row.js';
import type { EventTypePolicy } from './import/event-types.js';
import { postgresImportTarget } from './import/postgres-target.js';
import { prepareSqliteImportTarget } from './import/sqlite-target.js';
import { offLoopWriteLocked } from './sqlite-writer.js';
import type { Store } from './store.js';
import { bulkWritesPaused, withWriteLock } from './write-lock.js';

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

export type { IngestResult } from './event-batch-write.js';

/** Readies the write path ahead of its first batch (SQLite in memory: prepares its statements; otherwise nothing to do). */
export function prepareIngestion(store: Store): void {
  // A file's batches are written on the SQLite writer thread, whose statements the server's warm-up of
  // the write path prepares (a dry-run batch); an in-memory database's on this connection.
  if (store.provider === 'sqlite' && store.db.memory) prepareSqliteImportTarget(store.db);
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

interface PendingBatch {
  readonly columns: EventColumns;
  readonly policy: EventTypePolicy;
  /** Written inside its savepoint, then rolled back to it (IngestOptions.dryRun). */
  readonly dryRun: boolean;
  readonly resolve: (result: IngestResult) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Group commit for SQLite, written on the SQLite writer thread
 * (src/data/sqlite-writer.ts, src/data/event-batch-write.ts).
 *
 * Group: a one-event batch (an active shopper's view, the API's commonest
 * write) cost ~100-140 µs, and BEGIN IMMEDIATE and COMMIT were ~70 µs of it
 * (the commit writes the batch's WAL frames; bench/scratch probe on the serve
 * benchmark's store): the same for one event as for a hundred. Batches that
 * arrive while a group waits for the write lock, or in the same turn of the
 * event loop, are written in one transaction, each all-or-nothing on its own:
 * a refused batch leaves nothing (the ids it created included) and the others
 * go on (writeEventGroup: a group with a refused batch is written again, each
 * batch inside a savepoint of its own). Every batch of the group is
 * answered after the COMMIT, so an acknowledged event is committed.
 *
 * Off the event loop: a batch of 100 events on random users is ~1.2 ms of
 * SQLite (ids, 100 inserts into the table and its indexes, a COMMIT that
 * writes ~0.5 MB of WAL frames); on the event loop that was more than half of
 * what ingestion cost it, and a group of several batches held every live
 * request behind it for 5 ms or more. Now the event loop parses, checks and
 * sends; the writer thread writes.
 *
 * Live first: small batches (at most SMALL_BATCH_EVENTS events: a shopper's
 * own events) join the next group ahead of bulk batches that waited longer,
 * and a group holds at most MAX_GROUP_EVENTS events, so a shopper's event
 * waits for at most one group of bulk batches (two of 100 events, ~2.5 ms of
 * writing), not for a queue of them. The oldest batch always joins, so nothing waits for ever.
 */
class SqliteEventGroups {
  private readonly queue: PendingBatch[] = [];
  private scheduled = false;
  /**
   * Groups written, batches stored or refused in them, and groups written a second time, each batch in a
   * savepoint, because one was refused (writeEventGroup): the counters a test reads.
   */
  readonly stats = { transactions: 0, batches: 0, rewritten: 0 };

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
        const paused = bulkWritesPaused(this.store);
        const group = this.takeGroup(paused !== undefined);
        if (group.length === 0) {
          // Only bulk batches wait, and they are paused: they go when the pause ends.
          void paused?.then(() => this.schedule());
          return;
        }
        try {
          await this.writeGroup(group);
        } catch (error) {
          for (const batch of group) batch.reject(error); // a settled batch ignores it
        }
        if (this.queue.length > 0) this.schedule();
      });
    });
  }

  /**
   * The next group: the oldest batch, then the small batches, then the others in their order, up to
   * MAX_GROUP_EVENTS events; while bulk writes are paused (withBulkWritesPaused), the small batches only.
   */
  private takeGroup(bulkPaused: boolean): PendingBatch[] {
    const first = bulkPaused ? this.queue.findIndex((batch) => batch.columns.count <= SMALL_BATCH_EVENTS) : 0;
    if (first < 0) return [];
    const group = [this.queue[first]!];
    let events = group[0]!.columns.count;
    for (const small of bulkPaused ? [true] : [true, false]) {
      for (let i = first + 1; i < this.queue.length; i++) {
        const batch = this.queue[i]!;
        if (batch.columns.count <= SMALL_BATCH_EVENTS !== small || events + batch.columns.count > MAX_GROUP_EVENTS) continue;
        group.push(batch);
        events += batch.columns.count;
      }
    }
    const taken = new Set(group);
    this.queue.splice(0, this.queue.length, ...this.queue.filter((batch) => !taken.has(batch)));
    return group;
  }

  private async writeGroup(group: readonly PendingBatch[]): Promise<void> {
    const { db } = this.store;
    const batches: GroupBatch[] = group.map(({ columns, policy, dryRun }) => ({ columns, policy, dryRun }));
    this.stats.transactions++;
    this.stats.batches += group.length;
    let outcome: GroupOutcome;
    try {
      outcome = await offLoopWriteLocked(this.store, { op: 'events', batches }, () => writeEventGroup(db, committedIdsOf(this.store), batches), (o) => o.changed);
    } catch (error) {
      for (const batch of group) batch.reject(error);
      return;
    }
    if (outcome.rewritten) this.stats.rewritten++;
    group.forEach((batch, i) => {
      const done = outcome.batches[i]!;
      if ('result' in done) batch.resolve(done.result);
      else batch.reject(raiseCarried(done.error));
    });
  }
}

/**
 * The most events one group commit writes (a single API batch may hold 1,000, and is written alone). Larger
 * groups share fewer pages than they wait: groups of 2, 5 and 20 batches of 100 events cost the writer
 * 1.23, 1.26 and 1.06 ms a batch (bench/scratch probe on the serve benchmark's store), while a shopper's
 * event waits for the group ahead of it. 200 rather than 500 since 2026-12-06: beside active shoppers
 * (bench/ingestion-mix.ts at 250 pairs/s on a half-speed machine, alternating runs) ingestion got
 * 7,600 / 7,860 / 6,330 events/s against 6,080 / 4,790 / 6,880, the shoppers' events' p99 was 85 / 86 /
 * 78 ms against 108 / 92 / 82, and the writer spent ~2 % more CPU on ingestion alone
 * (docs/serving-performance.md, "Smaller groups").
 */
const MAX_GROUP_EVENTS = 200;

/** Batches of at most this many events are a shopper's own (live), and bulk above it (src/serve/bulk-governor.ts). */
export const SMALL_BATCH_EVENTS = 10;

const sqliteGroups = new WeakMap<Store, SqliteEventGroups>();

function sqliteGroupsOf(store: Extract<Store, { provider: 'sqlite' }>): SqliteEventGroups {
  let groups = sqliteGroups.get(store);
  if (!groups) sqliteGroups.set(store, (groups = new SqliteEventGroups(store)));
  return groups;
}

/** How many transactions the store's event batches have been written in, how many batches, and how many groups were written again because a batch was refused (tests read it). */
export function sqliteIngestStats(store: Store): { readonly transactions: number; readonly batches: number; readonly rewritten: number } {
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

