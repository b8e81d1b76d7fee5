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
    model.acquire();
    const { done, stop } = this.pool.warm(model.version, this.databaseUrl, this.limit, (users, total) => {
      if (generation !== this.generation) return;
      this.recommender.primeWarmed(model, users, readAt);
      this.progress_ = { version: model.version, done: Math.min(total, this.progress_.done + users.length), total, finished: false };
    }, pace);
    this.stopCurrent = stop;
    return done
      .then((users) => {
        if (generation !== this.generation) return;
        this.progress_ = { ...this.progress_, total: Math.max(this.progress_.total, users), finished: true };
        this.log(`user cache warmed for model version ${model.version}: ${users} users in ${((performance.now() - started) / 1000).toFixed(1)} s`);
      })
      .catch((error: unknown) => this.log(`cache warm-up for model version ${model.version} failed`, error))
      .finally(() => model.release());
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

  /** Whether a warm-up for `version` is running or has finished (so a swap to it needs no other). */
  warming(version: number): boolean {
    return this.progress_.version === version;
  }

  stop(): void {
    this.generation++;
    this.stopCurrent?.();
  }
}
