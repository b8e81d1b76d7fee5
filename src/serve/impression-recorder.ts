import { pruneImpressions, uuidV7Millis, writeImpressions, type ImpressionRoute, type PruneOptions, type PruneResult } from '../data/impressions.js';
import { ImpressionPacker, PACKED_MAX_ITEMS, packedImpressionGroups, type PackedImpressions } from '../data/packed-impressions.js';
import type { Store } from '../data/store.js';
import { ServeMetrics } from './metrics.js';
import { RecommendationIds } from './recommendation-ids.js';
import { ThrottledFailures } from './throttled-failures.js';

/** An item as a recommendation response shows it (RecommendedItem, or a similar item with its cosine). */
export interface ShownItem {
  readonly item: string;
  readonly probability?: number;
  readonly score?: number;
  readonly similarity?: number;
  /** Shown by the exploration share rather than the ranking. */
  readonly exploration?: boolean;
}

/** What a response showed: the recommender's result, as it is. */
export interface Shown {
  readonly strategy: 'model' | 'popular';
  readonly modelVersion: number | null;
  readonly items: readonly ShownItem[];
}

/** Whom it was shown to: the shop's user id, or session id, as the request gave it; neither for similar items. */
export interface ImpressionOwner {
  readonly user?: string;
  readonly session?: string;
}

/** Where the recorder writes: the store (src/data/impressions.ts), or a stand-in in tests. */
export interface ImpressionSink {
  /** Stores one batch (its buffer may be transferred elsewhere: the recorder does not read it afterwards). */
  write(batch: PackedImpressions): Promise<unknown>;
  prune(before: number, options: PruneOptions): Promise<PruneResult>;
}

export interface ImpressionRecorderOptions {
  /** Off: record() only makes ids; nothing is buffered, written or pruned. */
  readonly enabled: boolean;
  /** Days impressions are kept; 0 = forever. */
  readonly retentionDays: number;
  /**
   * Impressions per transaction at most (default 500). A transaction's cost is mostly the pages it
   * writes, and each impression lands on a random page of the owner index, so larger batches share
   * pages: one-row impressions cost ~15-29 µs each (all threads) in batches of 50 and ~5-8 µs in
   * batches of 500 (in-process probe on the amazon-games bench store, docs/serving-performance.md).
   * On SQLite a batch holds the write lock while the writer thread inserts it (~4 ms for 500), and
   * event ingestion waits that long at most.
   */
  readonly batchSize?: number;
  /** Items shown per transaction at most (default 10,000; a batch has at least one impression): wide responses make smaller batches. */
  readonly batchItems?: number;
  /** What is buffered is written at least this often (default 1,000 ms). */
  readonly flushMs?: number;
  /** Impressions buffered at most; beyond it new ones are dropped and counted (default 10,000). */
  readonly maxBuffered?: number;
  /** The first retention pass this long after start (default 60 s), then every pruneEveryMs (default 1 h). */
  readonly pruneFirstMs?: number;
  readonly pruneEveryMs?: number;
  /** Rows one retention DELETE removes at most (default 1,000). */
  readonly pruneRowsPerStatement?: number;
}

const DAY_MS = 86_400_000;
/** A failing store logs at most one line this often (with the count since the last). */
const FAILURE_LOG_EVERY_MS = 10_000;

/**
 * Gives every recommendation response its recommendationId (a UUIDv7) and
 * records what it showed (an impression), off the request path: record() only
 * encodes it into a bounded binary buffer (src/data/packed-impressions.ts: no
 * object of it stays on the heap), which is written in batches, one transaction
 * each, when it reaches batchSize (on the next turn of the event loop, never
 * inside the request) or every flushMs. A full buffer drops new impressions and
 * counts them; a batch the store refuses is dropped, counted and logged, and
 * the responses it recorded were answered all the same. close() writes what is
 * buffered. When retention is on, impressions older than retentionDays are
 * deleted periodically in bounded statements.
 */
export class ImpressionRecorder {
  /** The batch being filled, and full batches waiting to be written, oldest first. */
  private packer = new ImpressionPacker();
  private sealed: PackedImpressions[] = [];
  private bufferedCount = 0;
  /** Where discardWhile() encodes rows, cleared after each. */
  private readonly discardPacker = new ImpressionPacker(4096);
  private readonly ids = new RecommendationIds();
  private flushing: Promise<void> | undefined;
  private sizeFlushQueued = false;
  private pruning: Promise<void> | undefined;
  private closed = false;
  /** Set by discardWhile(): rows are built, then dropped. */
  private discarding = false;
  private closing: Promise<void> | undefined;
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly failures = new ThrottledFailures(FAILURE_LOG_EVERY_MS);
  private readonly batchSize: number;
  private readonly batchItems: number;
  private readonly maxBuffered: number;

  constructor(
    private readonly sink: ImpressionSink,
    /** The catalogue's internal id of a shop's item id (undefined: the item row is left out). */
    private readonly itemId: (externalId: string) => number | undefined,
    private readonly metrics: ServeMetrics,
    private readonly log: (message: string, error?: unknown) => void,
    private readonly options: ImpressionRecorderOptions,
  ) {
    this.batchSize = Math.max(1, options.batchSize ?? 500);
    this.batchItems = Math.max(1, options.batchItems ?? 10_000);
    this.maxBuffered = Math.max(1, options.maxBuffered ?? 10_000);
    if (!options.enabled) return;
    metrics.watchImpressions(this);
    const flush = setInterval(() => {
      if (!this.flushing && this.bufferedCount > 0) void this.drain(true);
    }, options.flushMs ?? 1_000);
    this.timers.push(flush);
    if (options.retentionDays > 0) {
      this.timers.push(
        setTimeout(() => {
          void this.prune();
          const every = setInterval(() => void this.prune(), options.pruneEveryMs ?? 3_600_000);
          every.unref();
          this.timers.push(every);
        }, options.pruneFirstMs ?? 60_000),
      );
    }
    for (const timer of this.timers) timer.unref();
  }

  /** The recorder of a server on `store`: impressions go to its tables. */
  static forStore(store: Store, itemId: (externalId: string) => number | undefined, metrics: ServeMetrics, log: (message: string, error?: unknown) => void, options: ImpressionRecorderOptions): ImpressionRecorder {
    const sink: ImpressionSink = { write: (batch) => writeImpressions(store, batch), prune: (before, o) => pruneImpressions(store, before, o) };
    return new ImpressionRecorder(sink, itemId, metrics, log, options);
  }

  /** Impressions waiting to be written. */
  get buffered(): number {
    return this.bufferedCount;
  }

  /**
   * A new recommendationId for a response, and (when recording) its impression
   * buffered. Returns at once and never throws: nothing here can fail the response.
   */
  record(route: ImpressionRoute, owner: ImpressionOwner, shown: Shown, experiment?: { readonly experimentId: number; readonly variant: string }): string {
    const id = this.ids.next();
    if (!this.options.enabled) return id;
    try {
      if (this.discarding) {
        this.pack(this.discardPacker, id, route, owner, shown, experiment);
        this.discardPacker.clear();
      } else if (this.closed) {
        this.metrics.impressionsDropped.inc({ reason: 'closed' });
      } else if (this.bufferedCount >= this.maxBuffered) {
        this.metrics.impressionsDropped.inc({ reason: 'overflow' });
      } else {
        // A batch holds at most batchItems items shown (and at least one impression).
        const count = Math.min(shown.items.length, PACKED_MAX_ITEMS);
        if (this.packer.count > 0 && this.packer.items + count > this.batchItems) this.sealed.push(this.packer.seal());
        this.pack(this.packer, id, route, owner, shown, experiment);
        this.bufferedCount++;
        if (this.packer.count >= this.batchSize) this.sealed.push(this.packer.seal());
        if (this.sealed.length > 0 && !this.sizeFlushQueued) {
          this.sizeFlushQueued = true;
          setImmediate(() => {
            this.sizeFlushQueued = false;
            if (!this.flushing && this.sealed.length > 0) void this.drain(false);
          });
        }
      }
    } catch (error) {
      this.log('impressions: could not record an impression', error);
    }
    return id;
  }

  /** Writes everything buffered now (shutdown, tests); resolves when it is stored or dropped. */
  async flush(): Promise<void> {
    while (this.flushing) await this.flushing;
    if (this.bufferedCount > 0) await this.drain(true);
  }

  /** One retention pass now (unless one is running, whose end it waits for). */
  prune(): Promise<void> {
    if (!this.options.enabled || this.options.retentionDays <= 0 || this.closed) return Promise.resolve();
    if (this.pruning) return this.pruning;
    const days = this.options.retentionDays;
    const pass = (async () => {
      try {
        const result = await this.sink.prune(Date.now() - days * DAY_MS, { rowsPerStatement: this.options.pruneRowsPerStatement ?? 1_000, stop: () => this.closed });
        this.metrics.impressionsPruned.inc(result.impressions);
        if (result.impressions > 0) this.log(`impressions: deleted ${result.impressions} impression(s) older than ${days} days (and ${result.attributions} attributions to them, in ${result.statements} statements)`);
      } catch (error) {
        this.metrics.impressionStoreFailures.inc({ operation: 'prune' });
        this.log('impressions: the retention pass failed; it runs again at the next interval', error);
      }
    })().finally(() => {
      this.pruning = undefined;
    });
    this.pruning = pass;
    return this.pruning;
  }

  /**
   * Runs `work` with nothing recorded: responses still get their ids, and their rows are built (the
   * code path stays the one shoppers meet) and dropped. For the server's start-up warm-up, before it
   * listens, when no shopper's request can be among them.
   */
  async discardWhile<T>(work: () => Promise<T>): Promise<T> {
    this.discarding = true;
    try {
      return await work();
    } finally {
      this.discarding = false;
    }
  }

  /**
   * Stops the timers and writes what is buffered; a retention pass stops between two statements. Waits
   * at most `waitMs`: a store that does not answer must not hold up a shutdown, so what is still
   * buffered then is dropped, counted and logged.
   */
  close(waitMs = 5_000): Promise<void> {
    this.closing ??= (async () => {
      for (const timer of this.timers) clearTimeout(timer);
      this.closed = true;
      let timeout: NodeJS.Timeout | undefined;
      const finished = await Promise.race([
        (async () => {
          await this.flush();
          await this.pruning;
          return true;
        })(),
        new Promise<false>((resolve) => {
          timeout = setTimeout(() => resolve(false), waitMs);
        }),
      ]);
      clearTimeout(timeout);
      if (!finished) {
        const lost = this.bufferedCount;
        this.sealed = [];
        this.packer.clear();
        this.bufferedCount = 0;
        this.metrics.impressionsDropped.inc({ reason: 'closed' }, lost);
        this.log(`impressions: the store did not finish within ${waitMs} ms of shutdown; ${lost} buffered impression(s) dropped, and the batch being written may be lost`);
      }
    })();
    return this.closing;
  }

  /**
   * Writes batches one after another until nothing is buffered (`all`), or
   * while a full batch is waiting (a flush by size: a partial batch waits for
   * the timer, so a busy server writes full batches rather than many small ones).
   */
  private drain(all: boolean): Promise<void> {
    this.flushing = (async () => {
      while (this.sealed.length > 0 || (all && this.packer.count > 0)) {
        const batch = this.sealed.shift() ?? this.packer.seal();
        this.bufferedCount -= batch.count;
        // Read before the write: the sink may transfer the batch's buffer to another thread.
        const groups = packedImpressionGroups(batch);
        try {
          await this.sink.write(batch);
          this.metrics.impressionsStored.inc(batch.count);
          for (const { group, count } of groups) this.metrics.onlineImpressions.inc(ServeMetrics.onlineGroup(group), count);
          this.metrics.impressionBatches.inc();
        } catch (error) {
          this.metrics.impressionStoreFailures.inc({ operation: 'write' });
          this.metrics.impressionsDropped.inc({ reason: 'store_failed' }, batch.count);
          this.failed(batch.count, error);
        }
        // Between two batches, requests and event ingestion (SQLite's write lock) get their turn.
        if (this.bufferedCount > 0) await new Promise((resolve) => setImmediate(resolve));
      }
    })().finally(() => {
      this.flushing = undefined;
    });
    return this.flushing;
  }

  /** Encodes one impression into `packer`, reading the shown items in place (no arrays are built). */
  private pack(packer: ImpressionPacker, id: string, route: ImpressionRoute, owner: ImpressionOwner, shown: Shown, experiment: { readonly experimentId: number; readonly variant: string } | undefined): void {
    const { items } = shown;
    let explored: number[] | undefined;
    for (let i = 0; i < items.length; i++) if (items[i]!.exploration) (explored ??= []).push(i + 1);
    packer.append(
      {
        id,
        ts: uuidV7Millis(id),
        route,
        strategy: shown.strategy,
        modelVersion: shown.modelVersion,
        experimentId: experiment?.experimentId ?? null,
        variant: experiment?.variant ?? null,
        userId: owner.user ?? null,
        sessionId: owner.session ?? null,
      },
      Math.min(items.length, PACKED_MAX_ITEMS),
      (i) => this.itemId(items[i]!.item) ?? 0,
      (i) => items[i]!.probability ?? Number.NaN,
      (i) => items[i]!.score ?? items[i]!.similarity ?? Number.NaN,
      explored,
    );
  }

  /** A log line for a failing store, at most one per FAILURE_LOG_EVERY_MS (with the count lost since the last). */
  private failed(lost: number, error: unknown): void {
    const count = this.failures.add(lost);
    if (count !== undefined) this.log(`impressions: could not store ${count} impression(s), dropped (their responses were answered)`, error);
  }
}
