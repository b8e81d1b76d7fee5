import type Database from 'better-sqlite3';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import { lowerThreadPrioritySource } from '../thread-priority.js';
import type { ImpressionRow } from './impressions.js';

/**
 * Writes SQLite impression batches and retention deletes on a worker thread
 * with a connection of its own, so the event loop never runs them. Measured
 * in the serve benchmark (bench/results/serve-2026-12-03T07-04-24-*.json):
 * written on the event loop, impressions cost cached requests 0.08-0.12 ms
 * of event-loop CPU each and raised their p99 at 1,000 req/s from 20 to 48 ms.
 *
 * The caller holds the process's write lock (src/data/write-lock.ts) while
 * the thread writes, as it would for a write of its own: the lock is a
 * promise chain, so the event loop goes on serving (reads run beside the
 * write, WAL), other writers of the process wait their turn without blocking
 * it, the main connection never meets a busy database, and the WAL
 * checkpointer's held round excludes these writes as it excludes the others.
 * The thread starts on the first call and ends after IDLE_MS without one.
 */
/** The statements the thread prepares (src/data/impressions.ts owns them; the main connection uses the same). */
export interface ImpressionWriterSql {
  readonly impression: string;
  readonly prune: Readonly<Record<'attributions' | 'impressions', string>>;
}

export class ImpressionWriterThread {
  private worker: Worker | undefined;
  private readonly pending = new Map<number, { resolve: (value: number) => void; reject: (error: Error) => void }>();
  private nextId = 1;
  private idleTimer: NodeJS.Timeout | undefined;
  /** Absolute: the thread must open the same file even if the process changes directory. */
  private readonly file: string;

  constructor(
    private readonly db: Database.Database,
    private readonly sql: ImpressionWriterSql,
  ) {
    this.file = resolve(db.name);
  }

  /** Inserts the batch in one transaction; resolves when it is committed. */
  async write(batch: readonly ImpressionRow[]): Promise<void> {
    await this.call({ op: 'write', batch });
  }

  /** One bounded retention DELETE (`table` rows with ids below `floor`, at most `limit`); resolves with the rows deleted. */
  prune(table: keyof ImpressionWriterSql['prune'], floor: string, limit: number): Promise<number> {
    return this.call({ op: 'prune', table, floor, limit });
  }

  /** Whether the thread is up (it ends when idle). */
  get running(): boolean {
    return this.worker !== undefined;
  }

  private call(message: Record<string, unknown>): Promise<number> {
    const worker = this.start();
    clearTimeout(this.idleTimer);
    const id = this.nextId++;
    return new Promise<number>((resolvePromise, reject) => {
      this.pending.set(id, { resolve: resolvePromise, reject });
      worker.postMessage({ ...message, id });
    });
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { driver: DRIVER, file: this.file, synchronous: this.db.pragma('synchronous', { simple: true }), sql: this.sql },
    });
    worker.unref(); // never keeps the process alive: the recorder flushes before the store closes
    worker.on('message', ({ id, error, changes }: { id: number; error?: string; changes?: number }) => {
      const waiting = this.pending.get(id);
      if (!waiting) return;
      this.pending.delete(id);
      if (error !== undefined) waiting.reject(new Error(error));
      else waiting.resolve(changes ?? 0);
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
    worker.on('exit', (code) => fail(new Error(`the impression writer thread exited (code ${code})`)));
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
/** better-sqlite3 as this module resolves it: the thread evaluates plain JavaScript and requires it by path. */
const DRIVER = createRequire(import.meta.url).resolve('better-sqlite3');

/**
 * The thread runs at nice WRITER_NICE: recording is bookkeeping, so the event loop and the inference
 * workers come first, and it writes in what they leave (~1 % of a core at 1,000 responses a second).
 */
const WRITER_NICE = 10;

/** The statements come in workerData.sql, from src/data/impressions.ts. */
const WORKER_SOURCE = `
${lowerThreadPrioritySource(WRITER_NICE)}
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.file, { fileMustExist: true });
db.pragma('busy_timeout = 10000');
db.pragma('wal_autocheckpoint = 0');
db.pragma('foreign_keys = ON');
db.pragma('synchronous = ' + Number(workerData.synchronous));
const { sql } = workerData;
const impression = db.prepare(sql.impression);
const prune = Object.fromEntries(Object.entries(sql.prune).map(([table, text]) => [table, db.prepare(text)]));
// The values of sqliteImpressionValues, and packedJson (src/data/impressions.ts).
const ids = (xs) => JSON.stringify(Array.from(xs, (x) => x || null));
const numbers = (xs) => JSON.stringify(Array.from(xs));
const insert = db.transaction((batch) => {
  for (const row of batch) {
    impression.run(
      row.id, Math.round(row.ts), row.route, row.strategy, row.modelVersion, row.variant, row.userId, row.sessionId, row.experimentId,
      ids(row.itemIds), numbers(row.probabilities), numbers(row.scores),
    );
  }
});
parentPort.on('message', (m) => {
  try {
    if (m.op === 'write') {
      insert.immediate(m.batch);
      parentPort.postMessage({ id: m.id });
    } else if (m.op === 'prune') {
      parentPort.postMessage({ id: m.id, changes: prune[m.table].run(m.floor, m.limit).changes });
    } else if (m.op === 'close') {
      db.close();
      parentPort.close();
    }
  } catch (error) {
    parentPort.postMessage({ id: m.id, error: String((error && error.message) || error) });
  }
});
`;

const writers = new WeakMap<Database.Database, ImpressionWriterThread>();

/** The connection's impression writer thread (one per connection, started on first use). */
export function impressionWriter(db: Database.Database, sql: ImpressionWriterSql): ImpressionWriterThread {
  let writer = writers.get(db);
  if (!writer) {
    writer = new ImpressionWriterThread(db, sql);
    writers.set(db, writer);
  }
  return writer;
}
