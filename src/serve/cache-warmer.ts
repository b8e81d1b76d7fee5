import { setImmediate as nextTurn } from 'node:timers/promises';
import { loadSequences } from '../data/sequences.js';
import type { Store } from '../data/store.js';
import type { Recommender } from './recommender.js';
import type { ServedModel } from './served-model.js';

export interface WarmProgress {
  readonly version: number | null;
  readonly done: number;
  readonly total: number;
  readonly finished: boolean;
}

/**
 * Fills the user cache after a model loads, most recently active users
 * first, up to the cache's size: a shop's returning shoppers then get their
 * first recommendation from the cache instead of a database read and a
 * forward pass. Histories are read in one bulk query; users are encoded 64 at
 * a time, yielding to live requests between batches. A newer model stops an
 * older warm-up.
 */
export class CacheWarmer {
  private progress_: WarmProgress = { version: null, done: 0, total: 0, finished: true };
  private generation = 0;

  constructor(
    private readonly store: Store,
    private readonly recommender: Recommender,
    private readonly limit: number,
    private readonly log: (message: string, error?: unknown) => void,
  ) {}

  get progress(): WarmProgress {
    return this.progress_;
  }

  /** Starts warming for `model` in the background; resolves when done (or superseded). */
  warm(model: ServedModel): Promise<void> {
    const generation = ++this.generation;
    // Reported as unfinished from now on: an older warm-up's "finished" must not describe this model.
    this.progress_ = { version: model.version, done: 0, total: 0, finished: false };
    const run = this.run(model, generation).catch((error: unknown) => this.log(`cache warm-up for model version ${model.version} failed`, error));
    return run;
  }

  private async run(model: ServedModel, generation: number): Promise<void> {
    if (this.limit <= 0) {
      this.progress_ = { version: model.version, done: 0, total: 0, finished: true };
      return;
    }
    const started = performance.now();
    const readAt = this.recommender.currentEpoch;
    // Whole histories: the filters (never re-recommend a purchase) read all of them, not only the model's window.
    const sequences = await loadSequences(this.store, { by: 'user' });
    const count = sequences.owners.length;
    // Most recent last event first.
    const order = Array.from({ length: count }, (_, s) => s).sort((a, b) => sequences.timestamps[sequences.offsets[b + 1]! - 1]! - sequences.timestamps[sequences.offsets[a + 1]! - 1]!);
    const chosen = order.slice(0, Math.min(this.limit, count));
    const externalIds = await this.externalIds(chosen.map((s) => sequences.owners[s]!));
    if (generation !== this.generation) return;
    this.progress_ = { version: model.version, done: 0, total: chosen.length, finished: false };
    const BATCH = 64;
    model.acquire();
    try {
      for (let from = 0; from < chosen.length; from += BATCH) {
        if (generation !== this.generation) return;
        const batch = chosen.slice(from, from + BATCH).flatMap((s) => {
          const externalId = externalIds.get(sequences.owners[s]!);
          if (externalId === undefined) return [];
          const [a, b] = [sequences.offsets[s]!, sequences.offsets[s + 1]!];
          return [{ externalId, items: sequences.items.slice(a, b), types: Int32Array.from(sequences.types.subarray(a, b)) }];
        });
        this.recommender.prime(model, batch, readAt);
        if (generation !== this.generation) return;
        this.progress_ = { ...this.progress_, done: Math.min(chosen.length, from + BATCH) };
        await nextTurn();
      }
      if (generation !== this.generation) return;
      this.progress_ = { ...this.progress_, finished: true };
      this.log(`user cache warmed for model version ${model.version}: ${chosen.length} users in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    } finally {
      model.release();
    }
  }

  private async externalIds(ids: number[]): Promise<Map<number, string>> {
    const out = new Map<number, string>();
    for (let from = 0; from < ids.length; from += 10_000) {
      const rows = await this.store.prisma.user.findMany({ where: { id: { in: ids.slice(from, from + 10_000) } }, select: { id: true, externalId: true } });
      for (const row of rows) out.set(row.id, row.externalId);
    }
    return out;
  }
}
