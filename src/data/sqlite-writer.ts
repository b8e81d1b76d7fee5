import type Database from 'better-sqlite3';
import { resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { AttributionBatch } from './attributions.js';
import type { ImpressionRow } from './impressions.js';
import type { Store } from './store.js';
import { walCheckpointer } from './wal-checkpointer.js';
import { withWriteLock } from './write-lock.js';

/**
 * The production loop's SQLite writes on a worker thread with a connection of
 * its own, so the event loop never runs them: impression batches and their
 * retention deletes (src/data/impressions.ts), and attribution batches
 * (src/data/attributions.ts), whose rule look-ups scan shoppers' impressions.
 * Measured: written on the event loop, impressions cost cached requests
 * 0.08-0.12 ms of event-loop CPU each and raised their p99 at 1,000 req/s
 * from 20 to 48 ms (bench/results/serve-2026-12-03T07-04-13-916Z.json); an
 * attribution batch of 250 events held the loop ~4 ms.
 *
 * The caller holds the process's write lock (src/data/write-lock.ts) while
 * the thread writes, as it would for a write of its own: the lock is a
 * promise chain, so the event loop goes on serving (reads run beside the
 * write, WAL), other writers of the process wait their turn without blocking
 * it, the main connection never meets a busy database, and the WAL
 * checkpointer's held round excludes these writes as it excludes the others.
 *
 * The thread runs the same TypeScript statements as the main connection
 * (an in-memory database, which a thread cannot open, is written inline). It
 * keeps the process's priority: it writes under the write lock, which event
 * ingestion waits for, so a lower priority is a priority inversion. Measured
 * at nice 10 in the serve benchmark (bench/results/serve-2026-12-03T11-03-02-931Z.json):
 * ingestion beside active shoppers at 500 pairs/s fell to 2,550 events/s
 * (12,910 before impressions were recorded), while nice 10 did not lower the
 * p99 cost of impressions (docs/serving-performance.md). It starts on the
 * first call and ends after IDLE_MS without one.
 */
export type SqliteWriterRequest =
  | { readonly op: 'impressions'; readonly batch: readonly ImpressionRow[] }
  | { readonly op: 'prune'; readonly table: 'attributions' | 'impressions'; readonly floor: string; readonly limit: number }
  | { readonly op: 'attribute'; readonly upTo: number; readonly windowMs: number; readonly limit: number };

/** What each request answers: nothing, the rows deleted, the batch's outcome. */
export interface SqliteWriterReplies {
  readonly impressions: void;
  readonly prune: number;
  readonly attribute: AttributionBatch;
}

/** The thread's settings (workerData). */
export interface SqliteWriterSettings {
  readonly file: string;
  readonly synchronous: number;
}

export class SqliteWriterThread {
  private worker: Worker | undefined;
  private readonly pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  private nextId = 1;
  private idleTimer: NodeJS.Timeout | undefined;
  /** Absolute: the thread must open the same file even if the process changes directory. */
  private readonly file: string;

  constructor(private readonly db: Database.Database) {
    this.file = resolve(db.name);
  }

  /** Runs one request in the thread (each its own transaction); resolves when it is committed. */
  run<R extends SqliteWriterRequest>(request: R): Promise<SqliteWriterReplies[R['op']]> {
    const worker = this.start();
    clearTimeout(this.idleTimer);
    const id = this.nextId++;
    return new Promise((resolvePromise, reject) => {
      this.pending.set(id, { resolve: resolvePromise as (value: unknown) => void, reject });
      worker.postMessage({ ...request, id });
    });
  }

  /** Whether the thread is up (it ends when idle). */
  get running(): boolean {
    return this.worker !== undefined;
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    const settings: SqliteWriterSettings = { file: this.file, synchronous: Number(this.db.pragma('synchronous', { simple: true })) };
    const worker = new Worker(THREAD_ENTRY, { workerData: settings });
    worker.unref(); // never keeps the process alive: the recorder and the attributor finish before the store closes
    worker.on('message', ({ id, error, result }: { id: number; error?: string; result?: unknown }) => {
      const waiting = this.pending.get(id);
      if (!waiting) return;
      this.pending.delete(id);
      if (error !== undefined) waiting.reject(new Error(error));
      else waiting.resolve(result);
      if (this.pending.size === 0) {
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
    worker.on('exit', (code) => fail(new Error(`the SQLite writer thread exited (code ${code})`)));
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

const IDLE_MS = 5_000;
const THREAD_ENTRY = new URL('./sqlite-writer-thread.mjs', import.meta.url);

/**
 * Runs one of the production loop's writes as the module comment says: under the process's write lock,
 * on the writer thread (or `inline` on the main connection when the database is in memory, which a
 * thread cannot open), then tells the WAL checkpointer how many rows it `changed`.
 */
export function offLoopWrite<R extends SqliteWriterRequest>(
  store: Extract<Store, { provider: 'sqlite' }>,
  request: R,
  inline: () => SqliteWriterReplies[R['op']],
  changed: (reply: SqliteWriterReplies[R['op']]) => number,
): Promise<SqliteWriterReplies[R['op']]> {
  return withWriteLock(store, async () => {
    const reply = store.db.memory ? inline() : await sqliteWriter(store.db).run(request);
    walCheckpointer(store.db, (fn) => withWriteLock(store, fn))?.committed(changed(reply));
    return reply;
  });
}

const writers = new WeakMap<Database.Database, SqliteWriterThread>();

/** The connection's writer thread (one per connection, started on first use). */
export function sqliteWriter(db: Database.Database): SqliteWriterThread {
  let writer = writers.get(db);
  if (!writer) {
    writer = new SqliteWriterThread(db);
    writers.set(db, writer);
  }
  return writer;
}
