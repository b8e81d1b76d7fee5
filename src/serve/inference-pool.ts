import { Worker } from 'node:worker_threads';
import type { CatalogItem } from '../data/serving-reader.js';
import { AppError, isAppError } from '../errors.js';
import type { ExplainedEvent } from '../inspect/explain.js';
import type { InspectOptions } from '../inspect/inspect-history.js';
import type { AttentionReport } from '../inspect/report.js';
import { ENGINE_MAX_BATCH } from '../model/inference-engine.js';
import type { ModelHistory, Representation, ScoringMode, SharedVersion } from '../model/served-model.js';
import type { WarmedUser, WarmOutcome, WorkerCommand, WorkerReply, WorkerRequest } from './inference-protocol.js';

/**
 * The API's inference, off the event loop: `workers` threads each hold every
 * loaded model version and run forward passes and catalogue scoring (see
 * ServedModel), so the Express event loop only routes, reads the store and
 * filters. Scheduling:
 *  - A worker has at most one batch in flight. Histories asked for while
 *    every worker is busy wait here and go out together as the next batch
 *    (up to ENGINE_MAX_BATCH): one request alone goes at once, under load
 *    batches grow by themselves, and one pass serves many requests.
 *  - A lone history that arrives while another worker runs a batch waits for
 *    the next free worker (a pass of about a ms) unless a second one joins it:
 *    waking an idle thread for one history cost CPU that the busy ones needed.
 *    Measured with 2 workers, active shoppers (bench/scratch probes, 16
 *    connections), when a pass streamed the 16-bit output table (~1.0 ms for
 *    one history or two): at 500 pairs/s 2.46-2.60 ms of server CPU a pair
 *    and a GET p99 of 18.5-19.6 ms, against 2.86-3.01 ms and 19.5-23.1 ms
 *    sending it at once; at saturation 843-991 pairs/s (mean batch 3.8)
 *    against 870-877 (3.2). Again with the 8-bit table (2026-12-05, where two
 *    histories cost ~1.7 ms a pass and one ~0.9), three rounds alternating:
 *    at 500 pairs/s 773-838 ms of server CPU a second and a pair p99 of
 *    11.7-14.3 ms, against 811-885 and 10.4-13.6 sending at once; closed loop
 *    1,216-1,270 pairs/s against 1,125-1,221. Kept.
 *  - Live requests only go to the live workers. The user-cache warm-up runs
 *    on a background worker of its own, at the lowest OS priority (nice 19,
 *    and SCHED_IDLE where util-linux's chrt is: src/thread-priority.mjs):
 *    the kernel's scheduler gives it the CPU that live requests leave idle.
 *    Its thread runs only while a warm-up or a load does: it starts with the
 *    first, loads the version the warm-up is for, and ends when no warm-up is left
 *    (a model version and an idle thread held for nothing were ~200 MB of
 *    resident memory, and resident memory costs latency on this machine: see
 *    docs/serving-performance.md, "Resident memory").
 *  - A worker that dies fails only the requests it was running, with
 *    INFERENCE_UNAVAILABLE (503, Retry-After); it is replaced, the
 *    replacement loads the same versions, and queued requests wait for it.
 *  - A request that waits longer than `queueTimeoutMs` for a worker fails
 *    the same way rather than hang.
 * Loading a version: its tables are built once, on the background worker
 * (from the CPU live requests leave idle) when there is one, else, or when
 * someone waits for the load (`urgent`), on the first live worker, and
 * shared with the live workers, which copy them one at a time
 * (ServedModel.loadSharing; ~25-60 ms each for the default model against
 * ~115 ms or more to build). A worker that loads is out of the rotation
 * while another live worker is in it; an only worker keeps answering,
 * between the pieces of a few milliseconds its load is built in
 * (ServedModel.loadPausing), so an activation under load costs latency by
 * the piece rather than a stall of the whole load.
 */
export interface InferencePoolOptions {
  /** Live workers (≥ 1). */
  readonly workers: number;
  /** Also start the background worker for warm-ups. */
  readonly background: boolean;
  /** How workers score the catalogue for shortlists (ServedModel's LoadOptions; default 'quantised'). */
  readonly scoring?: ScoringMode;
  readonly queueTimeoutMs?: number;
  readonly log: (message: string, error?: unknown) => void;
  /** Called for each batch of histories a worker is given (metrics). */
  readonly onBatch?: (worker: string, histories: number) => void;
  /** How long the background worker stays up after it built a version with no warm-up to run (default BACKGROUND_GRACE_MS). */
  readonly backgroundGraceMs?: number;
  /** Called for each version a live worker loaded (metrics): from its files, or copied from another worker's build. */
  readonly onLoad?: (worker: string, from: 'files' | 'shared') => void;
}

const WORKER_ENTRY = new URL('./inference-worker.mjs', import.meta.url);
/** A load is followed by its warm-up within milliseconds (a start, an activation's pre-warm): the background worker that built the version waits this long for it. */
const BACKGROUND_GRACE_MS = 5_000;
const DEFAULT_QUEUE_TIMEOUT_MS = 10_000;
/** The background worker's nice value: the lowest priority, so it takes only the CPU live requests leave idle. */
const BACKGROUND_NICE = 19;

interface Pending {
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

interface Slot {
  readonly index: number;
  readonly background: boolean;
  worker: Worker;
  /** Loaded and accepting work. */
  ready: boolean;
  /** The compute message in flight, if any (live workers take one batch at a time; control messages do not count). */
  computing: number | undefined;
  /** Whether that message is a batch of histories (a pass of a few ms) rather than a single command. */
  computingBatch: boolean;
  readonly inflight: Map<number, Pending>;
  /** Loading a version for the pool (load()): out of the rotation while another live worker is in it. */
  loading?: boolean;
  /** The catalogue generation this worker holds (see inspect). */
  catalogGeneration: number;
  /** Called with each 'warmed' message of the warm-up in progress there. */
  onWarmed?: ((message: Extract<WorkerReply, { type: 'warmed' }>) => void) | undefined;
  /** Ended on purpose (the background worker between warm-ups): not replaced. */
  ended?: boolean;
}

type Task =
  | { readonly kind: 'represent'; readonly version: number; readonly history: ModelHistory; readonly shortlist: number; readonly pending: Pending; readonly queuedAt: number }
  | { readonly kind: 'single'; readonly version: number; readonly message: WorkerCommand; readonly prepare: ((slot: Slot) => void) | undefined; readonly pending: Pending; readonly queuedAt: number };

export class InferencePool {
  private readonly slots: Slot[] = [];
  private readonly queue: Task[] = [];
  /** Versions the workers hold, and how many loads (PooledModels) hold each: unloaded when the last lets go. */
  private readonly loaded = new Map<number, { createdAt: number; artifactPath: string; holders: number; ready: Promise<void> }>();
  private nextId = 1;
  private closed = false;
  /** Loads and warm-ups running or starting on the background worker (it ends when none is left). */
  private warmUps = 0;
  private backgroundStart: Promise<Slot> | undefined;
  /** The background worker's end after a load with no warm-up (endBackgroundWorkerSoon). */
  private backgroundGrace: NodeJS.Timeout | undefined;
  private readonly timer: NodeJS.Timeout;

  private constructor(private readonly options: InferencePoolOptions) {
    this.timer = setInterval(() => this.expire(), 250);
    this.timer.unref();
  }

  /** Starts the workers; resolves when every one is up. */
  static async start(options: InferencePoolOptions): Promise<InferencePool> {
    if (!Number.isInteger(options.workers) || options.workers < 1) throw new AppError('CONFIG_INVALID', `workers must be a positive integer; got ${options.workers}`);
    const pool = new InferencePool(options);
    // The background worker starts with its first warm-up.
    await Promise.all(Array.from({ length: options.workers }, (_, i) => pool.spawn(i, false)));
    return pool;
  }

  /**
   * Loads a version in every worker, one live worker at a time; resolves
   * when all have it. On failure (a broken artifact: ARTIFACT_CORRUPT) it
   * is unloaded again wherever it got and the error is thrown. An `urgent`
   * load (someone waits for it: an analyst inspecting another version) is
   * built on a live worker instead of from the CPU live requests leave idle,
   * which on a busy machine may be none for seconds.
   */
  async load(version: number, createdAt: Date, artifactPath: string, options: { readonly urgent?: boolean } = {}): Promise<void> {
    const held = this.loaded.get(version);
    if (held) {
      // Loading or loaded already (a re-activation before its last requests let go, or a poll racing an activation): one more holder.
      held.holders++;
      return held.ready;
    }
    const message = { type: 'load' as const, version, createdAt: createdAt.getTime(), artifactPath };
    const entry = { createdAt: message.createdAt, artifactPath, holders: 1, ready: Promise.resolve() };
    this.loaded.set(version, entry);
    entry.ready = (async () => {
      try {
        // The tables are built once, on the background worker at the lowest priority when there is one and the load
        // is not urgent, else on the first live worker; the others copy them (docs/serving-performance.md, "One build of a version's tables").
        let shared = options.urgent ? undefined : await this.buildInBackground(message);
        for (const slot of this.slots) {
          if (!slot.ready || slot.background) continue;
          const share = shared === undefined && this.slots.slice(this.slots.indexOf(slot) + 1).some((s) => s.ready && !s.background);
          // Out of the rotation while another live worker is in it (dispatch); an only worker answers between the pieces of the load.
          const from = shared;
          slot.loading = true;
          const result = await this.sendControl(slot, { ...message, ...(share && { share }), ...(from && { from }) }).finally(() => {
            slot.loading = false;
            this.dispatch();
          });
          this.options.onLoad?.(String(slot.index), from ? 'shared' : 'files');
          if (share && result) shared = result as SharedVersion;
        }
      } catch (error) {
        this.loaded.delete(version);
        this.sendUnload(version);
        throw error;
      }
    })();
    return entry.ready;
  }

  /**
   * The version's tables built on the background worker, at the lowest OS priority, for the live workers to copy
   * (undefined without a background worker, or when it could not: the live workers then build them). It stays up
   * for the warm-up that follows a load; without one it ends a little later.
   */
  private async buildInBackground(message: Extract<WorkerCommand, { type: 'load' }>): Promise<SharedVersion | undefined> {
    if (!this.options.background || this.closed) return undefined;
    this.warmUps++;
    try {
      const slot = await this.backgroundWorker();
      return ((await this.sendControl(slot, { ...message, share: true })) as SharedVersion | null) ?? undefined;
    } catch (error) {
      if (isAppError(error) && error.code === 'ARTIFACT_CORRUPT') throw error;
      return undefined;
    } finally {
      if (--this.warmUps === 0) this.endBackgroundWorkerSoon();
    }
  }

  /** One holder of a version lets go; the last one frees it in every worker (after the requests already sent to them). */
  unload(version: number): void {
    const held = this.loaded.get(version);
    if (held && --held.holders > 0) return;
    this.loaded.delete(version);
    this.sendUnload(version);
  }

  private sendUnload(version: number): void {
    for (const slot of this.slots) if (!slot.ended && (slot.ready || slot.background)) void this.sendControl(slot, { type: 'unload', version }).catch(() => {});
  }

  /** States, normalisers and shortlists of histories, batched with whatever else is waiting. */
  represent(version: number, histories: readonly ModelHistory[], shortlist: number): Promise<Representation[]> {
    return Promise.all(
      histories.map(
        (history) =>
          new Promise<Representation>((resolve, reject) => {
            this.enqueue({ kind: 'represent', version, history, shortlist, pending: { resolve: resolve as (v: unknown) => void, reject }, queuedAt: performance.now() });
          }),
      ),
    );
  }

  /** Log-probabilities of every item after each history: [histories, numItems + 1] row-major. */
  logProbs(version: number, histories: readonly ModelHistory[]): Promise<Float32Array> {
    return this.single(version, { type: 'log-probs', version, histories }) as Promise<Float32Array>;
  }

  /** Every item's score (network + the version's term) for a state already computed. */
  scores(version: number, query: Float32Array, items: readonly number[]): Promise<Float32Array> {
    return this.single(version, { type: 'scores', version, query, items }) as Promise<Float32Array>;
  }

  similarities(version: number, index: number): Promise<Float32Array> {
    return this.single(version, { type: 'similarities', version, index }) as Promise<Float32Array>;
  }

  /**
   * Attention inspection of one history on a worker (forward pass at every
   * position, leave-one-out passes): the report. The worker describes items
   * from its copy of the catalogue, sent to it first when older than
   * `catalog.generation` (a catalogue only crosses when it changed).
   */
  inspect(version: number, catalog: { readonly generation: number; items(): readonly CatalogItem[] }, events: readonly ExplainedEvent[], typeNames: ReadonlyMap<number, string>, options: InspectOptions): Promise<AttentionReport> {
    return this.single(version, { type: 'inspect', version, events, typeNames: [...typeNames], options }, (slot) => {
      if (slot.catalogGeneration === catalog.generation) return;
      slot.catalogGeneration = catalog.generation;
      void this.sendControl(slot, { type: 'catalog', generation: catalog.generation, items: catalog.items() }).catch(() => {});
    }) as Promise<AttentionReport>;
  }

  /**
   * Warms the user cache for a version on the background worker: `onUsers`
   * receives represented users chunk by chunk (how many in all, and whether
   * the chunk was read from the version's stored representations: those come
   * first, unpaced). Resolves with how many were sent and how many of them
   * were read; a newer warm-up or stop() ends it. With `pace` p > 0 the
   * worker rests p × each computed chunk's time after it, and `memoRestMs`
   * after each chunk it read (the thread that files them serves requests).
   */
  warm(version: number, databaseUrl: string | undefined, limit: number, onUsers: (users: readonly WarmedUser[], total: number, fromMemo: boolean) => void, pace = 0, memoRestMs = 0): { done: Promise<WarmOutcome>; stop(): void } {
    const held = this.loaded.get(version);
    const none: WarmOutcome = { users: 0, fromMemo: 0, memo: 'none' };
    if (!this.options.background || !held || this.closed) return { done: Promise.resolve(none), stop: () => {} };
    const id = this.nextId++;
    let stopped = false;
    let running: Slot | undefined;
    this.warmUps++;
    const done = (async () => {
      const slot = await this.backgroundWorker();
      if (stopped) return none;
      running = slot;
      slot.onWarmed = (message) => {
        if (message.id !== id) return;
        this.options.onBatch?.('background', message.users.length);
        onUsers(message.users, message.total, message.fromMemo);
      };
      const result = await new Promise<unknown>((resolve, reject) => {
        slot.inflight.set(id, { resolve, reject });
        slot.worker.postMessage({ type: 'warm', id, version, createdAt: held.createdAt, artifactPath: held.artifactPath, databaseUrl, limit, chunk: WARM_CHUNK, pace, memoRestMs } satisfies WorkerRequest);
      });
      return result as WarmOutcome;
    })().finally(() => {
      if (--this.warmUps === 0) this.endBackgroundWorker();
    });
    return {
      done,
      stop: () => {
        stopped = true;
        if (running?.ready) running.worker.postMessage({ type: 'stop-warm', id: this.nextId++ } satisfies WorkerRequest);
      },
    };
  }

  /** Whether the background worker's thread is running (it runs only while a load or a warm-up does, and a few seconds after a load). */
  get backgroundRunning(): boolean {
    const slot = this.slots[this.options.workers];
    return slot !== undefined && !slot.ended;
  }

  /** The background worker, started if it is not running. */
  private backgroundWorker(): Promise<Slot> {
    clearTimeout(this.backgroundGrace);
    const index = this.options.workers;
    const slot = this.slots[index];
    if (slot && !slot.ended && slot.ready) return Promise.resolve(slot);
    this.backgroundStart ??= this.spawn(index, true)
      .then(() => this.slots[index]!)
      .finally(() => (this.backgroundStart = undefined));
    return this.backgroundStart;
  }

  /** endBackgroundWorker after BACKGROUND_GRACE_MS, unless a warm-up has started by then. */
  private endBackgroundWorkerSoon(): void {
    clearTimeout(this.backgroundGrace);
    this.backgroundGrace = setTimeout(() => {
      if (this.warmUps === 0) this.endBackgroundWorker();
    }, this.options.backgroundGraceMs ?? BACKGROUND_GRACE_MS);
    this.backgroundGrace.unref();
  }

  /**
   * Ends the background worker's thread once no load or warm-up runs: the thread, its
   * heap and the store it opened are ~100-200 MB of resident memory, and
   * resident memory costs latency on this machine (docs/serving-performance.md,
   * "Resident memory"). The next warm-up starts another (~1 s).
   */
  private endBackgroundWorker(): void {
    const slot = this.slots[this.options.workers];
    if (!slot || slot.ended) return;
    slot.ended = true;
    slot.ready = false;
    void slot.worker.terminate();
  }

  /** Stops a live worker as a crash would (tests). */
  async crash(index: number): Promise<void> {
    await this.slots.filter((s) => !s.background)[index]?.worker.terminate();
  }

  /** Indices of the live workers with work in flight. */
  get busyWorkers(): number[] {
    return this.slots.filter((s) => !s.background && s.computing !== undefined).map((s) => s.index);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    clearTimeout(this.backgroundGrace);
    for (const task of this.queue.splice(0)) task.pending.reject(unavailable('the server is shutting down'));
    await Promise.all(this.slots.map((slot) => slot.worker.terminate()));
  }

  /** One message for one live worker; `prepare` may send that worker what the message needs first. */
  private single(version: number, message: WorkerCommand, prepare?: (slot: Slot) => void): Promise<unknown> {
    return new Promise((resolve, reject) => this.enqueue({ kind: 'single', version, message, prepare, pending: { resolve, reject }, queuedAt: performance.now() }));
  }

  private enqueue(task: Task): void {
    if (this.closed) {
      task.pending.reject(unavailable('the server is shutting down'));
      return;
    }
    this.queue.push(task);
    this.dispatch();
  }

  /** Sends queued work to idle live workers: the first task's kind and version decide the batch. */
  private dispatch(): void {
    const others = this.slots.some((s) => !s.background && s.ready && !s.loading);
    for (const slot of this.slots) {
      if (this.queue.length === 0) return;
      if (slot.background || !slot.ready || slot.computing !== undefined || (slot.loading && others)) continue;
      const first = this.queue[0]!;
      const id = this.nextId++;
      if (first.kind === 'single') {
        this.queue.shift();
        slot.computingBatch = false;
        first.prepare?.(slot);
        this.send(slot, id, { ...first.message, id } as WorkerRequest, first.pending);
        continue;
      }
      if (this.queue.length === 1 && this.slots.some((other) => !other.background && other.computing !== undefined && other.computingBatch)) return; // held: see the class comment
      const batch: Extract<Task, { kind: 'represent' }>[] = [];
      for (let i = 0; i < this.queue.length && batch.length < ENGINE_MAX_BATCH; ) {
        const task = this.queue[i]!;
        if (task.kind === 'represent' && task.version === first.version && task.shortlist === first.shortlist) {
          batch.push(task);
          this.queue.splice(i, 1);
        } else i++;
      }
      this.options.onBatch?.(String(slot.index), batch.length);
      slot.computingBatch = true;
      this.send(slot, id, { type: 'represent', id, version: first.version, histories: batch.map((t) => t.history), shortlist: first.shortlist }, {
        resolve: (value) => (value as Representation[]).forEach((r, i) => batch[i]!.pending.resolve(r)),
        reject: (error) => batch.forEach((t) => t.pending.reject(error)),
      });
    }
  }

  private send(slot: Slot, id: number, message: WorkerRequest, pending: Pending): void {
    slot.computing = id;
    slot.inflight.set(id, pending);
    slot.worker.postMessage(message);
  }

  /** Control messages (load, unload) go out regardless of busy: the worker takes them in order. */
  private sendControl(slot: Slot, message: WorkerCommand): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      slot.inflight.set(id, { resolve, reject });
      slot.worker.postMessage({ ...message, id } as WorkerRequest);
    });
  }

  private async spawn(index: number, background: boolean): Promise<void> {
    // The entry (inference-worker.mjs) sets the thread's nice value and SCHED_IDLE policy before it loads anything.
    // Named in /proc (top -H, ps -L): attnrec-live-<index>, attnrec-bg.
    const threadName = background ? 'attnrec-bg' : `attnrec-live-${index}`;
    const worker = new Worker(WORKER_ENTRY, { workerData: { scoring: this.options.scoring ?? 'quantised', threadName, ...(background && { nice: BACKGROUND_NICE, idle: true }) } });
    const slot: Slot = { index, background, worker, ready: false, computing: undefined, computingBatch: false, inflight: new Map(), catalogGeneration: -1 };
    this.slots[index] = slot;
    worker.on('message', (message: WorkerReply) => this.receive(slot, message));
    worker.on('error', (error) => this.options.log(`inference worker ${index} failed`, error));
    worker.once('exit', (code) => this.replace(slot, code));
    await new Promise<void>((resolve, reject) => {
      worker.once('online', resolve);
      worker.once('error', reject);
    });
    // A replacement loads what the pool serves before it takes work; the background worker loads a version only to warm for it.
    if (!background)
      for (const [version, { createdAt, artifactPath }] of this.loaded) {
        await this.sendControl(slot, { type: 'load', version, createdAt, artifactPath });
        this.options.onLoad?.(String(index), 'files');
      }
    slot.ready = true;
    this.dispatch();
  }

  private receive(slot: Slot, message: WorkerReply): void {
    if (message.type === 'warmed') {
      slot.onWarmed?.(message);
      return;
    }
    const pending = slot.inflight.get(message.id);
    slot.inflight.delete(message.id);
    if (message.id === slot.computing) slot.computing = undefined;
    if (pending) {
      if (message.ok) pending.resolve(message.result);
      // A worker's own failure without a code is a bug: a plain Error, which the API logs and answers 500.
      else pending.reject(message.code ? new AppError(message.code, message.message, { ...message.details }) : new Error(`inference worker: ${message.message}`));
    }
    this.dispatch();
  }

  /** A worker exited: fail what it was running, start another in its place. */
  private replace(slot: Slot, code: number): void {
    slot.ready = false;
    const why = this.closed ? 'the server is shutting down' : `an inference worker stopped (exit code ${code}); retry`;
    for (const pending of slot.inflight.values()) pending.reject(unavailable(why));
    slot.inflight.clear();
    if (this.closed || slot.ended) return;
    if (slot.background) {
      // Its warm-up failed with it; the next warm-up starts another.
      slot.ended = true;
      this.options.log(`the background inference worker exited with code ${code}`);
      return;
    }
    this.options.log(`inference worker ${slot.index} exited with code ${code}; starting a replacement`);
    this.spawn(slot.index, slot.background).catch((error: unknown) => this.options.log(`inference worker ${slot.index} could not be replaced`, error));
    this.dispatch(); // a history held for the worker that died goes to another
  }

  /** Requests that waited too long for a worker fail instead of hanging. */
  private expire(): void {
    const limit = this.options.queueTimeoutMs ?? DEFAULT_QUEUE_TIMEOUT_MS;
    const now = performance.now();
    for (let i = 0; i < this.queue.length; ) {
      const task = this.queue[i]!;
      if (now - task.queuedAt > limit) {
        this.queue.splice(i, 1);
        task.pending.reject(unavailable(`no inference worker answered within ${Math.round(limit / 1000)} s; retry`));
      } else i++;
    }
  }
}

/** Users per warm-up message: small, so a chunk costs the background worker a few milliseconds. */
const WARM_CHUNK = 16;

function unavailable(message: string): AppError {
  return new AppError('INFERENCE_UNAVAILABLE', message);
}
