import type Database from 'better-sqlite3';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { Worker } from 'node:worker_threads';

/**
 * Checkpoints an SQLite WAL on a worker thread, so the event loop of the
 * process that writes never waits for a checkpoint's fsyncs.
 *
 * By default SQLite checkpoints inside the COMMIT that takes the WAL past
 * 1,000 pages: it copies the pages into the database file and fsyncs both
 * files, synchronously. On the API's write path (batches of 100 events on
 * random users, ~127 WAL pages each) that was 3.7 of the 4.7 ms a batch's
 * COMMIT took, ~30 ms of fsync every ~8 batches, during which the server
 * answered nothing (in-process, 2,000 batches of 100 on the amazon-games
 * store: 14,775 events/s with the default, 41,830 without checkpoints).
 *
 * A checkpoint can run beside the writer (WAL mode: PASSIVE copies what is
 * committed without blocking anyone), but the WAL only restarts from its
 * beginning when a writer starts after a checkpoint that copied everything;
 * a writer that never pauses would grow it without end (measured: 1.6 GB
 * for 300,000 events). So a cycle is: passive rounds on the worker while
 * writes go on, each copying what the previous round left (until a round
 * finds little new, or after a few rounds), then one last round with the
 * process's writes held back (`hold`, the write lock) so it copies the
 * small remainder and the next write restarts the WAL.
 *
 * Between the cycles the thread flushes the WAL to disk every flushPages
 * pages, and syncs the database file after a drain's rounds: the cycle's
 * first round syncs the WAL, and with ~128 MB of it dirty that was a burst
 * of disk writes during which live requests slowed (measured below). And a
 * cycle ends under `quiesce`, which pauses the process's bulk writes (a
 * shopper's own go on): one more passive round copies what came in since the
 * drain, so the held round has only the shoppers' few pages left to copy and
 * sync.
 *
 * Worker → writer state travels through shared memory, read at each commit,
 * so a writer that never yields to the event loop still sees it; if the
 * worker falls far behind or fails, the writer checkpoints itself as SQLite
 * would have.
 */
export class WalCheckpointer {
  private worker: Worker | undefined;
  /** [state, frames in the WAL at the last round, rounds of the last drain]. */
  private shared: Int32Array | undefined;
  /** WAL pages written (estimated) since the current cycle began, and since the last held round. */
  private pagesSinceCycle = 0;
  private pagesSinceSeal = 0;
  /** WAL pages (estimated) since the last flush was asked for, and whether one is under way. */
  private pagesSinceFlush = 0;
  private flushing = false;
  private flushCount = 0;
  private sealing = false;
  private fellBehind = 0;
  private failed: Error | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  /** When the last write committed (performance.now()): the thread stays while writes go on. */
  private lastWrite = -Infinity;
  private starts = 0;
  /** Held rounds finished, and the milliseconds writes were held back by them (heldRounds, heldSeconds). */
  private held = { rounds: 0, ms: 0 };
  private sealReply: ((error?: Error) => void) | undefined;
  private catchUpReply: (() => void) | undefined;
  private closed = false;
  /** Absolute: the worker must open the same file even if the process changes directory. */
  private readonly file: string;

  constructor(
    private readonly db: Database.Database,
    /** Runs a function with the process's writes to this database held back (the write lock). */
    private readonly hold: (fn: () => Promise<void>) => Promise<void>,
    private readonly options: CheckpointerOptions = {},
  ) {
    this.file = resolve(db.name);
  }

  /**
   * Call after each committed write transaction with how many rows it wrote.
   * WAL pages are estimated as rows + 5 per transaction (the table's and its
   * indexes' last pages): 100 events on random users wrote ~127 pages, a
   * single event ~6.
   */
  committed(rows: number): void {
    if (this.failed) return;
    this.lastWrite = performance.now();
    const pages = rows + PAGES_PER_TRANSACTION;
    this.pagesSinceCycle += pages;
    this.pagesSinceSeal += pages;
    const cyclePages = this.options.cyclePages ?? DEFAULT_CYCLE_PAGES;
    if (this.pagesSinceSeal >= cyclePages * (this.options.fallBehindCycles ?? FALL_BEHIND_CYCLES)) {
      // The worker has fallen far behind (or this writer never lets the event
      // loop run, so a cycle cannot finish): do what SQLite would have done.
      this.db.pragma('wal_checkpoint(PASSIVE)');
      this.fellBehind++;
      this.pagesSinceSeal = 0;
      this.pagesSinceCycle = 0;
      return;
    }
    this.pagesSinceFlush += pages;
    if (this.sealing) return;
    const state = this.shared ? Atomics.load(this.shared, 0) : IDLE;
    const flushPages = this.options.flushPages ?? DEFAULT_FLUSH_PAGES;
    if (state === IDLE && flushPages > 0 && !this.flushing && this.pagesSinceFlush >= flushPages && this.pagesSinceCycle < cyclePages) {
      this.pagesSinceFlush = 0;
      this.flushing = true;
      this.post({ op: 'flush' });
      return;
    }
    if (state === DRAINED) {
      this.seal();
    } else if (state === IDLE && this.pagesSinceCycle >= cyclePages) {
      this.pagesSinceCycle = 0;
      this.post({ op: 'drain' });
    }
  }

  /** Checkpoints the writer ran itself because the thread fell behind. */
  get writerCheckpoints(): number {
    return this.fellBehind;
  }

  /** Held rounds so far: every write of the process waited for each (attnrec_wal_held_rounds_total). */
  get heldRounds(): number {
    return this.held.rounds;
  }

  /** Seconds writes were held back by the held rounds so far (attnrec_wal_held_seconds_total). */
  get heldSeconds(): number {
    return this.held.ms / 1_000;
  }

  /** Flushes of the WAL to disk between the cycles' rounds so far. */
  get flushes(): number {
    return this.flushCount;
  }

  /** Checkpoint threads started so far (one while writes go on; another after each pause of idleMs). */
  get threadStarts(): number {
    return this.starts;
  }

  /** Whether the checkpoint thread is up (it exits when idle). */
  get running(): boolean {
    return this.worker !== undefined;
  }

  /** Stops the worker for good (the WAL keeps what it holds; the last connection to close checkpoints it). */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.idleTimer);
    const worker = this.worker;
    this.worker = undefined;
    this.shared = undefined;
    this.catchUpReply?.();
    this.sealReply?.(new Error('checkpointer closed'));
    if (worker) await worker.terminate();
  }

  private seal(): void {
    this.sealing = true;
    const heldRound = (): Promise<void> =>
      this.hold(
        () =>
          new Promise<void>((resolve) => {
            const began = performance.now();
            this.sealReply = (error) => {
              this.sealReply = undefined;
              this.worker?.unref();
              if (error) this.fail(error);
              this.held.rounds++;
              this.held.ms += performance.now() - began;
              resolve();
            };
            this.post({ op: 'seal' });
            // Writes wait for this round: the process must not exit before it answers.
            this.worker?.ref();
          }),
      );
    const { quiesce } = this.options;
    const cycleEnd = quiesce
      ? quiesce(async () => {
          await this.catchUp();
          await heldRound();
        })
      : heldRound();
    void cycleEnd.finally(() => {
      this.sealing = false;
      this.pagesSinceSeal = this.pagesSinceCycle;
    });
  }

  /** One more passive round, and the database file synced, while the process's bulk writes are paused. */
  private catchUp(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.catchUpReply = () => {
        this.catchUpReply = undefined;
        resolve();
      };
      this.post({ op: 'catch-up' });
      this.worker?.ref();
    });
  }

  private post(message: { op: 'drain' | 'seal' | 'flush' | 'catch-up' }): void {
    // Closed during a cycle's catch-up round: its held round must not start another thread.
    const worker = this.closed ? undefined : (this.worker ?? this.start());
    if (!worker) {
      this.flushing = false;
      this.catchUpReply?.();
      this.sealReply?.();
      return;
    }
    if (message.op === 'drain' || message.op === 'seal') Atomics.store(this.shared!, 0, message.op === 'drain' ? DRAINING : SEALING);
    worker.postMessage(message);
    this.armIdleTimer();
  }

  private start(): Worker | undefined {
    if (this.failed) return undefined;
    const shared = new Int32Array(new SharedArrayBuffer(3 * Int32Array.BYTES_PER_ELEMENT));
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: {
        driver: DRIVER,
        file: this.file,
        synchronous: this.db.pragma('synchronous', { simple: true }),
        shared,
        maxRounds: this.options.maxRounds ?? DEFAULT_MAX_ROUNDS,
        settledFrames: this.options.settledFrames ?? DEFAULT_SETTLED_FRAMES,
      },
    });
    worker.on('message', (message: { error?: string; flushed?: boolean; caughtUp?: boolean }) => {
      if (message.flushed) {
        this.flushing = false;
        this.flushCount++;
        return;
      }
      if (message.caughtUp) {
        this.catchUpReply?.();
        return;
      }
      if (message.error) this.fail(new Error(message.error));
      this.catchUpReply?.();
      this.sealReply?.();
    });
    worker.on('error', (error) => this.fail(error));
    worker.on('exit', () => {
      if (this.worker === worker) this.fail(new Error('checkpoint thread exited'));
    });
    // After the listeners: adding a 'message' listener refs the worker again.
    worker.unref();
    this.worker = worker;
    this.shared = shared;
    this.starts++;
    return worker;
  }

  /** Falls back to SQLite's own checkpoints on this connection. */
  private fail(error: Error): void {
    if (this.failed) return;
    this.failed = error;
    this.options.onError?.(error);
    if (this.db.open) this.db.pragma(`wal_autocheckpoint = ${SQLITE_DEFAULT_AUTOCHECKPOINT}`);
    void this.close();
  }

  /**
   * When writes stop: a drained WAL still gets its held round (so it is left
   * fully copied), then a worker with nothing to do exits (a cycle restarts it).
   * "Stop" counts from the last write, not the last cycle: a steady trickle of
   * writes (the API's single events: ~6 pages each, a cycle every 2-10 s at
   * 100-500 events/s) would otherwise end the thread between every two cycles
   * and start another for the next, 65-110 ms of CPU each time on this machine
   * (bench/scratch measurement, 10 starts), taken from live requests in bursts.
   */
  private armIdleTimer(delay = this.options.idleMs ?? DEFAULT_IDLE_MS): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => {
      const idleMs = this.options.idleMs ?? DEFAULT_IDLE_MS;
      const quiet = performance.now() - this.lastWrite;
      if (quiet < idleMs) return this.armIdleTimer(idleMs - quiet);
      const state = this.shared ? Atomics.load(this.shared, 0) : IDLE;
      if (this.sealing || state === DRAINING || state === SEALING) return this.armIdleTimer();
      if (state === DRAINED) return this.seal();
      const worker = this.worker;
      this.worker = undefined;
      this.shared = undefined;
      void worker?.terminate();
    }, delay);
    this.idleTimer.unref();
  }
}

export interface CheckpointerOptions {
  /** WAL pages (estimated) between cycles (default 32,000, ~128 MB). */
  readonly cyclePages?: number;
  /**
   * Runs a function with the process's bulk writes paused (a shopper's own writes go on): the cycle's end
   * copies what came in since its last passive round under it, so the held round has little left to copy.
   */
  readonly quiesce?: (fn: () => Promise<void>) => Promise<void>;
  /** WAL pages (estimated) between flushes of the WAL to disk outside the cycle's rounds (default 2,000; 0: none). */
  readonly flushPages?: number;
  /** Passive rounds at most before the held one (default 8). */
  readonly maxRounds?: number;
  /** A round that found fewer new WAL pages than this ends the drain (default 300). */
  readonly settledFrames?: number;
  /** Cycles' worth of pages past the last held round after which the writer checkpoints itself (default 4). */
  readonly fallBehindCycles?: number;
  /** After this long without a write, a drained WAL gets its held round and then the worker exits (default 2 s). */
  readonly idleMs?: number;
  readonly onError?: (error: Error) => void;
}

/**
 * The held round costs two fsyncs whatever it copies (~25 ms here, ~3 ms
 * without them), so cycles are long: POST /v1/events at ~20,000 events/s
 * held writes 18-25 % of the time with cycles of 2,000 rows, 7-9 % with
 * 8,000 (the WAL then peaks at 50-80 MB). Every write waits for a held round,
 * a shopper's own event included, and slow live requests make the bulk
 * governor (src/serve/bulk-governor.ts) hold a shop's batches back. With
 * 32,000 the rounds come 4x less often; ingestion beside active shoppers
 * (bench/ingestion-mix.ts, a half-speed machine, alternating runs) averaged
 * 6,020 events/s over five runs (2,650-8,030) against 4,940 over nine with
 * 8,000 (3,830-5,860), and the WAL peaks at 180-220 MB instead of 55-65
 * (docs/serving-performance.md, "The WAL checkpoint's held round"). Those
 * figures predate the catch-up round under `quiesce`: since it, a held round
 * beside active shoppers took 3-31 ms (half-speed machine), and the cycle's
 * length has not been measured again with it.
 */
const DEFAULT_CYCLE_PAGES = 32_000;
const PAGES_PER_TRANSACTION = 5;
const DEFAULT_MAX_ROUNDS = 8;
const DEFAULT_SETTLED_FRAMES = 300;
/**
 * The WAL's dirty pages reach the disk in steps of ~8 MB, not ~128 MB at the cycle's first round. What
 * the cycle cost live requests, beside ingestion and active shoppers (bench/ingestion-mix.ts at 250 pairs/s
 * with --bulk-yield 40 on a half-speed machine, three alternating runs of each, the server traced by a
 * scratch patch): during the drains 0-7 % of live requests were over 20 ms with the flushes and the
 * catch-up round, 7-14 % without, and the held rounds took 3-31 ms instead of 16-113 ms
 * (docs/serving-performance.md, "The checkpoint's disk writes").
 */
const DEFAULT_FLUSH_PAGES = 2_000;
const DEFAULT_IDLE_MS = 2_000;
/** Cycles' worth of pages past a held round after which the writer checkpoints itself (~512 MB of WAL with the default cycle). */
const FALL_BEHIND_CYCLES = 4;
const SQLITE_DEFAULT_AUTOCHECKPOINT = 1_000;

const IDLE = 0;
const DRAINING = 1;
const DRAINED = 2;
const SEALING = 3;

const DRIVER = createRequire(import.meta.url).resolve('better-sqlite3');

/** Plain CommonJS: the worker needs no TypeScript loader (it starts in ~20 ms under tsx and vitest alike). */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
const Database = require(workerData.driver);
const { shared, maxRounds, settledFrames } = workerData;
// Named in /proc (top -H, ps -L), as src/thread-priority.mjs's nameThread names the API's other threads.
try { fs.writeFileSync('/proc/thread-self/comm', 'attnrec-wal'); } catch {}
let db;
// fdatasync of a file of the database, if it is there (SQLite deletes the WAL when the last connection closes).
const syncFile = (path) => {
  let fd;
  try { fd = fs.openSync(path, 'r+'); } catch { return; }
  try { fs.fdatasyncSync(fd); } finally { fs.closeSync(fd); }
};
const round = () => db.pragma('wal_checkpoint(PASSIVE)')[0];
parentPort.on('message', ({ op }) => {
  try {
    if (!db) {
      db = new Database(workerData.file, { fileMustExist: true });
      db.pragma('busy_timeout = 10000');
      db.pragma('wal_autocheckpoint = 0');
      db.pragma('synchronous = ' + Number(workerData.synchronous));
    }
    if (op === 'flush') {
      syncFile(workerData.file + '-wal');
      parentPort.postMessage({ flushed: true });
      return;
    }
    if (op === 'catch-up') {
      round();
      syncFile(workerData.file);
      parentPort.postMessage({ caughtUp: true });
      return;
    }
    if (op === 'drain') {
      let previous = round(), rounds = 1;
      while (rounds < maxRounds) {
        const next = round();
        rounds++;
        const fresh = next.log - previous.log;
        previous = next;
        if (fresh >= 0 && fresh < settledFrames) break;
      }
      syncFile(workerData.file);
      Atomics.store(shared, 1, previous.log);
      Atomics.store(shared, 2, rounds);
      Atomics.store(shared, 0, ${DRAINED});
    } else {
      const last = round();
      Atomics.store(shared, 1, last.log);
      Atomics.store(shared, 0, ${IDLE});
      parentPort.postMessage({});
    }
  } catch (error) {
    Atomics.store(shared, 0, ${IDLE});
    parentPort.postMessage({ error: String(error && error.message || error) });
  }
});
`;

const checkpointers = new WeakMap<Database.Database, WalCheckpointer | null>();

/**
 * The checkpointer of an SQLite connection in WAL mode, created on first use
 * (which turns the connection's own automatic checkpoints off); null for
 * databases without a WAL file (in memory, other journal modes). `hold` holds
 * the process's writes back; `quiesce`, if given, its bulk writes only
 * (CheckpointerOptions.quiesce).
 */
export function walCheckpointer(db: Database.Database, hold: (fn: () => Promise<void>) => Promise<void>, quiesce?: (fn: () => Promise<void>) => Promise<void>): WalCheckpointer | null {
  let checkpointer = checkpointers.get(db);
  if (checkpointer !== undefined) return checkpointer;
  const wal = !db.memory && db.name !== '' && String(db.pragma('journal_mode', { simple: true })).toLowerCase() === 'wal';
  checkpointer = wal ? new WalCheckpointer(db, hold, quiesce ? { quiesce } : {}) : null;
  if (checkpointer) db.pragma('wal_autocheckpoint = 0');
  checkpointers.set(db, checkpointer);
  return checkpointer;
}
