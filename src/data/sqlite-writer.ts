import type Database from 'better-sqlite3';
import { resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { AttributionPlan } from './attributions.js';
import type { GroupBatch, GroupOutcome } from './event-batch-write.js';
import type { PackedImpressions } from './packed-impressions.js';
import type { WriterConnectionSettings } from './sqlite-writer-connection.js';
import type { Store } from './store.js';
import { walCheckpointer, type WalCheckpointer } from './wal-checkpointer.js';
import { checkpointHold, withBulkWritesPaused, withLongRead, withWriteLock } from './write-lock.js';

/**
 * The production loop's SQLite work on worker threads with connections of
 * their own, so the event loop never runs it.
 *
 * The writer thread writes the API's event batches (src/data/ingest-events.ts,
 * src/data/event-batch-write.ts), impression batches and their retention
 * deletes (src/data/impressions.ts), and stores attribution batches
 * (src/data/attributions.ts). Measured: written on the event loop,
 * impressions cost cached requests 0.08-0.12 ms of event-loop CPU each and
 * raised their p99 at 1,000 req/s from 20 to 48 ms
 * (bench/results/serve-2026-12-03T07-04-13-916Z.json). The caller holds the
 * process's write lock (src/data/write-lock.ts) while the thread writes, as
 * it would for a write of its own: the lock is a promise chain, so the event
 * loop goes on serving (reads run beside the write, WAL), other writers of
 * the process wait their turn without blocking it, the main connection never
 * meets a busy database, and the WAL checkpointer's held round excludes these
 * writes as it excludes the others. The writer keeps the process's priority:
 * it writes under the lock that event ingestion waits for, so a lower
 * priority is a priority inversion (measured at nice 10: ingestion beside
 * active shoppers fell to 2,550 events/s, bench/results/serve-2026-12-03T11-03-02-931Z.json).
 *
 * The reader thread runs attribution's look-ups (each event's owner's
 * impressions in the window, ~10 µs an event on this machine) in a read
 * transaction, without the write lock: when they ran inside the write
 * transaction, ingestion waited for them, and after a burst of events the
 * attributor's back-to-back batches held the lock most of the time (a
 * scratch probe, 2 workers: ingestion 25,900 events/s alone and 6,200 beside
 * active shoppers, against 36,300 and 18,600 without attribution; with the
 * reader thread 32,500-38,400 and 15,700-15,900). Only the short commit (the
 * attributed rows and the cursor) takes the lock. The reader runs at nice
 * READER_NICE: it holds no lock, so it takes only what live work leaves, and
 * under sustained load attribution falls behind
 * (attnrec_attribution_backlog_events) and catches up afterwards. Its reads
 * and the checkpointer's held round exclude each other (withLongRead), or
 * the WAL could never start over.
 *
 * Both threads run the same TypeScript statements as the main connection (an
 * in-memory database, which a thread cannot open, is read and written
 * inline). Each starts on its first request and ends after IDLE_MS without
 * one, except that a server starts both before it takes traffic and keeps
 * them (keepSqliteThreads).
 */
export type SqliteWriterRequest =
  | { readonly op: 'impressions'; readonly packed: PackedImpressions }
  | { readonly op: 'prune'; readonly table: 'attributions' | 'impressions'; readonly floor: string; readonly limit: number }
  | { readonly op: 'attribution-commit'; readonly plan: AttributionPlan }
  | { readonly op: 'events'; readonly batches: readonly GroupBatch[] };

/** What each request answers: nothing, the rows deleted, whether the plan was stored (false: the cursor had moved). */
export interface SqliteWriterReplies {
  readonly impressions: void;
  readonly prune: number;
  readonly 'attribution-commit': boolean;
  readonly events: GroupOutcome;
}

/** The reader thread's requests: the look-ups of an attribution batch, in a read transaction. */
export type SqliteReaderRequest = { readonly op: 'attribution-read'; readonly upTo: number; readonly windowMs: number; readonly limit: number };

export interface SqliteReaderReplies {
  readonly 'attribution-read': AttributionPlan;
}

/** A thread's settings (workerData). */
export interface SqliteThreadSettings extends WriterConnectionSettings {
  readonly file: string;
  /** writer: a read-write connection at the process's priority; reader: a read-only connection at nice READER_NICE. */
  readonly role: 'writer' | 'reader';
  /** The thread's nice value, set by its entry (sqlite-writer-thread.mjs) before anything else runs there: READER_NICE for the reader. */
  readonly nice?: number;
  /** The thread's name in /proc (top -H, ps -L): attnrec-writer, attnrec-reader. */
  readonly threadName?: string;
}

/** The writer thread's page cache while the database is smaller than SQLite's locking page (see writerCacheSize), KiB. */
export const WRITER_CACHE_KIB = 32 * 1024;

/**
 * The writer thread's page cache (PRAGMA cache_size: pages, or KiB when negative), from the main
 * connection's (`cacheSize`, 128 MiB: bulk imports touch several indexes) and the database's size.
 *
 * Why smaller while the database is under 1 GiB: when an insert splits a page, SQLite's balance_nonroot
 * renumbers the new pages through the number of the page that holds the locking byte (262,145 with 4-KiB
 * pages), which raises the page cache's largest key to that number; the commit then drops the pages past
 * the database's end (pager_end_transaction → pcache1TruncateUnsafe), and with the largest key that far
 * past the end it walks every slot of the cache's hash table, so every commit costs in proportion to the
 * cache (a perf probe on the writer thread: the largest key was 262,145 at every commit). With random
 * users every group commit splits pages. Ingestion alone on the serve benchmark's store (245 MB), 45-s runs,
 * alternating: the writer took 19.2-19.4 µs an event with 32 MiB against 23.3-23.7 with 128 MiB, and 8 and
 * 16 MiB were no better than 32 (docs/serving-performance.md, "The writer thread's CPU"). Past the locking
 * page the database's end is beyond that key and the walk does not happen, so a larger store keeps the
 * main connection's cache for its larger indexes (decided when the thread starts).
 */
export function writerCacheSize(main: { readonly cacheSize: number; readonly pageSize: number; readonly pageCount: number }): number {
  const lockingPage = Math.floor(2 ** 30 / main.pageSize) + 1;
  if (main.pageCount >= lockingPage) return main.cacheSize;
  const mainKib = main.cacheSize < 0 ? -main.cacheSize : (main.cacheSize * main.pageSize) / 1024;
  return mainKib > WRITER_CACHE_KIB ? -WRITER_CACHE_KIB : main.cacheSize;
}

/** The writer thread's connection settings, from the process's main connection `db` (its synchronous, and writerCacheSize of its page cache). */
export function writerConnectionSettings(db: Database.Database): WriterConnectionSettings {
  return {
    synchronous: Number(db.pragma('synchronous', { simple: true })),
    cacheSize: writerCacheSize({
      cacheSize: Number(db.pragma('cache_size', { simple: true })),
      pageSize: Number(db.pragma('page_size', { simple: true })),
      pageCount: Number(db.pragma('page_count', { simple: true })),
    }),
  };
}

/**
 * A worker thread with its own connection to the file of `db`, which runs one
 * request at a time, each its own transaction (see the module comment).
 */
export class SqliteThread<Request extends { readonly op: string }, Replies extends { readonly [op in Request['op']]: unknown }> {
  private worker: Worker | undefined;
  private readonly pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  private nextId = 1;
  private idleTimer: NodeJS.Timeout | undefined;
  /** Kept: started ahead of use, and not ended when idle (keepSqliteThreads). */
  private kept = false;
  /** Absolute: the thread must open the same file even if the process changes directory. */
  private readonly file: string;

  constructor(
    private readonly db: Database.Database,
    private readonly role: SqliteThreadSettings['role'],
  ) {
    this.file = resolve(db.name);
  }

  /** Runs one request in the thread; resolves when it is done (committed, for a write). `transfer`: buffers moved, not copied. */
  run<R extends Request>(request: R, transfer: readonly ArrayBuffer[] = []): Promise<Replies[R['op']]> {
    return this.send(request, transfer) as Promise<Replies[R['op']]>;
  }

  private send(request: { readonly op: string }, transfer: readonly ArrayBuffer[] = []): Promise<unknown> {
    const worker = this.start();
    clearTimeout(this.idleTimer);
    const id = this.nextId++;
    return new Promise((resolvePromise, reject) => {
      this.pending.set(id, { resolve: resolvePromise as (value: unknown) => void, reject });
      worker.ref();
      worker.postMessage({ ...request, id }, [...transfer]);
    });
  }

  /** Whether the thread is up (it ends when idle, unless kept). */
  get running(): boolean {
    return this.worker !== undefined;
  }

  /** Starts the thread now and keeps it until release(); resolves once its connection is open. */
  async keep(): Promise<void> {
    this.kept = true;
    await this.send({ op: 'ready' });
  }

  /** Ends a kept thread once nothing is pending (the next request starts another). */
  release(): void {
    this.kept = false;
    if (this.pending.size === 0) this.stop();
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    const settings: SqliteThreadSettings = {
      file: this.file,
      ...writerConnectionSettings(this.db),
      role: this.role,
      threadName: `attnrec-${this.role}`,
      ...(this.role === 'reader' && { nice: READER_NICE }),
    };
    const worker = new Worker(THREAD_ENTRY, { workerData: settings });
    worker.on('message', ({ id, error, result }: { id: number; error?: string; result?: unknown }) => {
      const waiting = this.pending.get(id);
      if (!waiting) return;
      this.pending.delete(id);
      if (error !== undefined) waiting.reject(new Error(error));
      else waiting.resolve(result);
      if (this.pending.size === 0) worker.unref();
      if (this.pending.size === 0 && !this.kept) {
        clearTimeout(this.idleTimer);
        this.idleTimer = setTimeout(() => this.stop(), IDLE_MS);
        this.idleTimer.unref();
      }
    });
    const fail = (error: Error): void => {
      if (this.worker !== worker) return;
      this.worker = undefined;
      for (const waiting of this.pending.values()) waiting.reject(error);
      this.pending.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`the SQLite ${this.role} thread exited (code ${code})`)));
    // After the listeners (a 'message' listener refs the worker again): the thread keeps the process alive
    // only while a request waits for it (a script awaiting a batch of events is not cut short; an idle
    // thread holds no process open).
    worker.unref();
    this.worker = worker;
    return worker;
  }

  /** Ends the thread once nothing is pending (the next call starts a new one). */
  private stop(): void {
    if (!this.worker || this.pending.size > 0) return;
    const worker = this.worker;
    this.worker = undefined;
    worker.postMessage({ op: 'close', id: 0 });
  }
}

export type SqliteWriterThread = SqliteThread<SqliteWriterRequest, SqliteWriterReplies>;
export type SqliteReaderThread = SqliteThread<SqliteReaderRequest, SqliteReaderReplies>;

/** The reader thread's nice value: it holds no lock, so it takes only the CPU that live requests leave. */
export const READER_NICE = 10;
const IDLE_MS = 5_000;
const THREAD_ENTRY = new URL('./sqlite-writer-thread.mjs', import.meta.url);

/**
 * Runs one of the production loop's writes as the module comment says: under the process's write lock,
 * on the writer thread (or `inline` on the main connection when the database is in memory, which a
 * thread cannot open), then tells the WAL checkpointer how many rows it `changed`. `transfer`: buffers
 * of the request moved to the thread (detached here once it is sent).
 */
export function offLoopWrite<R extends SqliteWriterRequest>(
  store: Extract<Store, { provider: 'sqlite' }>,
  request: R,
  inline: () => SqliteWriterReplies[R['op']] | Promise<SqliteWriterReplies[R['op']]>,
  changed: (reply: SqliteWriterReplies[R['op']]) => number,
  transfer: readonly ArrayBuffer[] = [],
): Promise<SqliteWriterReplies[R['op']]> {
  return withWriteLock(store, () => offLoopWriteLocked(store, request, inline, changed, transfer));
}

/**
 * offLoopWrite for a caller that already holds the write lock: the event group commit
 * (src/data/ingest-events.ts) takes the lock first, then the batches that joined while it waited.
 */
export async function offLoopWriteLocked<R extends SqliteWriterRequest>(
  store: Extract<Store, { provider: 'sqlite' }>,
  request: R,
  inline: () => SqliteWriterReplies[R['op']] | Promise<SqliteWriterReplies[R['op']]>,
  changed: (reply: SqliteWriterReplies[R['op']]) => number,
  transfer: readonly ArrayBuffer[] = [],
): Promise<SqliteWriterReplies[R['op']]> {
  const reply = store.db.memory ? await inline() : await sqliteWriter(store.db).run(request, transfer);
  storeWalCheckpointer(store)?.committed(changed(reply));
  return reply;
}

/**
 * Runs one of the production loop's long reads as the module comment says: on the reader thread, outside
 * the write lock but never during the WAL checkpointer's held round (or `inline` on the main connection,
 * under the write lock, when the database is in memory: its writers' transactions are on that connection).
 */
export function offLoopRead<R extends SqliteReaderRequest>(
  store: Extract<Store, { provider: 'sqlite' }>,
  request: R,
  inline: () => SqliteReaderReplies[R['op']],
): Promise<SqliteReaderReplies[R['op']]> {
  if (store.db.memory) return withWriteLock(store, async () => inline());
  return withLongRead(store, () => sqliteReader(store.db).run(request));
}

/** The store's WAL checkpointer (told of every off-loop write; its held rounds are metrics), created if need be; undefined on PostgreSQL, in memory or without a WAL. */
export function storeWalCheckpointer(store: Store): WalCheckpointer | undefined {
  if (store.provider !== 'sqlite' || store.db.memory) return undefined;
  return walCheckpointer(store.db, checkpointHold(store), (fn) => withBulkWritesPaused(store, fn)) ?? undefined;
}

const writers = new WeakMap<Database.Database, SqliteWriterThread>();
const readers = new WeakMap<Database.Database, SqliteReaderThread>();

/** The connection's writer thread (one per connection, started on first use). */
export function sqliteWriter(db: Database.Database): SqliteWriterThread {
  let writer = writers.get(db);
  if (!writer) writers.set(db, (writer = new SqliteThread(db, 'writer')));
  return writer;
}

/**
 * Starts the store's writer thread (and its reader thread, for attribution) now and keeps them until the
 * returned function is called. A thread's start is a fresh isolate that loads TypeScript and the driver,
 * a burst of CPU: on a start at the first request the server's first second of traffic paid for it
 * (p99 260-300 ms in the first second after a start under 250 req/s on 2 cores, 60-110 ms with
 * impressions off; bench/scratch probe), and a thread ended when idle paid it again at the next burst.
 * Nothing to do for an in-memory database (written inline) or PostgreSQL.
 */
export async function keepSqliteThreads(store: Store, options: { readonly reader: boolean }): Promise<() => void> {
  if (store.provider !== 'sqlite' || store.db.memory) return () => {};
  const threads: Pick<SqliteThread<never, never>, 'keep' | 'release'>[] = [sqliteWriter(store.db)];
  if (options.reader) threads.push(sqliteReader(store.db));
  await Promise.all(threads.map((thread) => thread.keep()));
  return () => {
    for (const thread of threads) thread.release();
  };
}

/** The connection's reader thread (one per connection, started on first use). */
export function sqliteReader(db: Database.Database): SqliteReaderThread {
  let reader = readers.get(db);
  if (!reader) readers.set(db, (reader = new SqliteThread(db, 'reader')));
  return reader;
}
