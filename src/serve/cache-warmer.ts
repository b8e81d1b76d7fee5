import { memoPath, writeMemo, type MemoBasis } from '../model/representation-memo.js';
import type { InferencePool } from './inference-pool.js';
import type { PooledModel } from './pooled-model.js';
import type { Recommender } from './recommender.js';

export interface WarmProgress {
  readonly version: number | null;
  readonly done: number;
  readonly total: number;
  readonly finished: boolean;
}

/**
 * Every warm-up rests half of each chunk's time after it. Measured (docs/serving-performance.md): p99 of
 * the 250 req/s mix in 5-s windows during an activation's pre-warm 28-44 ms without rest, 15-26 ms with
 * it, the activation answered in 32 s instead of 21 (31,013 users, --workers 2; "The pre-warm at half
 * pace", 2026-12-03). After a start, once an uncached request cost ~1 ms of a worker (the 8-bit output
 * table, 2026-12-05), the worst 10-s window of the first 40 s was 10.0-12.2 ms with rest against 11.9-20.2
 * without (three starts each, alternating), the warm-up taking ~36 s instead of ~27 ("The first
 * seconds after a start, paced").
 */
export const WARM_PACE = 0.5;

/**
 * Once the server listens, the background worker rests this long after each
 * chunk of users it read from stored representations: this thread files them
 * (their structured clone, the cache's rows: ~0.7 ms a chunk of 64, 325 ms
 * for amazon-games' 31,013 users by a CPU profile), and live requests come
 * first. Before it listens it does not rest.
 */
export const MEMO_REST_MS = 8;

/**
 * Fills the user cache after a model loads, most recently active users
 * first, up to the cache's size: a shop's returning shoppers then get their
 * first recommendation from the cache instead of a database read and a
 * forward pass. All of it (the bulk read of histories, encoding, forward
 * passes, scoring) runs on the inference pool's background worker at the
 * lowest OS priority, so it takes only the CPU live requests leave idle;
 * this thread only files the represented users into the cache, chunk by
 * chunk. A newer model stops an older warm-up.
 */
export class CacheWarmer {
  private progress_: WarmProgress = { version: null, done: 0, total: 0, finished: true };
  private generation = 0;
  private stopCurrent: (() => void) | undefined;
  /** Whether the server takes requests (see MEMO_REST_MS). */
  private listening = false;
  /** The last warm-up that finished: its version, and where and how that version's memo is written. */
  private completed: { readonly version: number; readonly path: string; readonly header: MemoBasis } | undefined;
  /** Resolves once the current warm-up has filed every user its version's stored representations held (or ended). */
  private memoPhase: Promise<void> = Promise.resolve();

  constructor(
    private readonly pool: InferencePool,
    private readonly databaseUrl: string | undefined,
    private readonly recommender: Recommender,
    private readonly limit: number,
    private readonly log: (message: string, error?: unknown) => void,
  ) {}

  get progress(): WarmProgress {
    return this.progress_;
  }

  /** Starts warming for `model` in the background (resting `pace` × each chunk's time after it); resolves when done (or superseded). */
  warm(model: PooledModel, pace = WARM_PACE): Promise<void> {
    const generation = ++this.generation;
    this.stopCurrent?.();
    this.stopCurrent = undefined;
    // Reported as unfinished from now on: an older warm-up's "finished" must not describe this model.
    this.progress_ = { version: model.version, done: 0, total: 0, finished: this.limit <= 0 };
    if (this.limit <= 0) return Promise.resolve();
    const started = performance.now();
    const readAt = this.recommender.currentEpoch;
    let memoFiled!: () => void;
    this.memoPhase = new Promise<void>((resolve) => (memoFiled = resolve));
    model.acquire();
    const { done, stop } = this.pool.warm(model.version, this.databaseUrl, this.limit, (users, total, fromMemo) => {
      if (generation !== this.generation) return;
      if (!fromMemo) memoFiled();
      this.recommender.primeWarmed(model, users, readAt);
      this.progress_ = { version: model.version, done: Math.min(total, this.progress_.done + users.length), total, finished: false };
    }, pace, this.listening ? MEMO_REST_MS : 0);
    this.stopCurrent = stop;
    return done
      .then((outcome) => {
        if (generation !== this.generation) return;
        this.progress_ = { ...this.progress_, total: Math.max(this.progress_.total, outcome.users), finished: true };
        if (outcome.header) this.completed = { version: model.version, path: memoPath(model.artifactPath, outcome.header.scoring), header: outcome.header };
        const memo = outcome.memo === 'none' ? 'none stored' : outcome.memo;
        this.log(`user cache warmed for model version ${model.version}: ${outcome.users} users in ${((performance.now() - started) / 1000).toFixed(1)} s, ${outcome.fromMemo} of them read from the version's stored representations (${memo})`);
      })
      .catch((error: unknown) => this.log(`cache warm-up for model version ${model.version} failed`, error))
      .finally(() => {
        memoFiled();
        model.release();
      });
  }

  /**
   * Warms the cache for a version about to serve (Recommender.prepareNext),
   * while the current one keeps serving, for up to `seconds`. Resolves true
   * when every user was filed; false when the time ran out, and then the
   * warm-up goes on after the swap, filing into the adopted cache.
   */
  async prewarm(model: PooledModel, seconds: number): Promise<boolean> {
    this.beforePrewarm = this.progress_;
    this.recommender.prepareNext(model);
    const done = this.warm(model);
    let timer: NodeJS.Timeout | undefined;
    const inTime = await Promise.race([
      done.then(() => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), seconds * 1000);
      }),
    ]);
    clearTimeout(timer);
    return inTime && this.progress_.version === model.version && this.progress_.finished;
  }

  /** The version prepared for will not serve (its activation failed): its warm-up stops, the progress shown is the serving version's again. */
  cancelPrewarm(model: PooledModel): void {
    this.recommender.dropNext(model);
    if (this.progress_.version !== model.version) return;
    this.stop();
    this.progress_ = this.beforePrewarm ?? { version: null, done: 0, total: 0, finished: true };
  }

  private beforePrewarm: WarmProgress | undefined;

  /** The server listens: warm-ups from now on leave live requests room between the chunks they read. */
  markListening(): void {
    this.listening = true;
  }

  /**
   * Waits, at most `seconds`, until the warm-up under way has filed the users
   * it read from the version's stored representations (src/model/representation-memo.ts):
   * a starting server does so before it listens, so its first shoppers meet
   * the cache a restart would otherwise take a minute of background work to
   * rebuild. Resolves whether that part is done.
   */
  async filedFromMemo(seconds: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const done = await Promise.race([
      this.memoPhase.then(() => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), seconds * 1000);
      }),
    ]);
    clearTimeout(timer);
    return done;
  }

  /**
   * Stores the user cache's representations of `model` as its version's memo
   * (a server that stops: the next start reads them instead of computing),
   * when the last warm-up that finished was for it: the cache then holds
   * every user the warm-up read, less those whose events came since, and a
   * memo that already holds more is never overwritten by a cache still
   * filling. Returns how many were stored, or a note of why none were.
   */
  storeRepresentations(model: PooledModel | undefined): number | string {
    const completed = this.completed;
    if (!model || !completed || completed.version !== model.version || this.progress_.version !== model.version || !this.progress_.finished) return 'no finished warm-up for the serving version';
    return writeMemo(completed.path, completed.header, this.recommender.cachedRepresentations(model));
  }

  /** Whether a warm-up for `version` is running or has finished (so a swap to it needs no other). */
  warming(version: number): boolean {
    return this.progress_.version === version;
  }

  stop(): void {
    this.generation++;
    this.stopCurrent?.();
  }
}
