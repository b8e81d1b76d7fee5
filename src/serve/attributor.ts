import { attributeBatch, attributionMark, markSettled, type AttributionBatch, type AttributionMark } from '../data/attributions.js';
import { BUILTIN_EVENT_TYPES } from '../data/import/event-types.js';
import type { Store } from '../data/store.js';
import { ServeMetrics } from './metrics.js';
import { ThrottledFailures } from './throttled-failures.js';

/** The online counters' event type label of a built-in type id (others count as 'other'). */
const EVENT_TYPE_NAMES = new Map(Object.entries(BUILTIN_EVENT_TYPES).map(([name, id]) => [id, name]));

/** Where the attributor reads and writes: the store (src/data/attributions.ts), or a stand-in in tests. */
export interface AttributionSink {
  mark(): Promise<AttributionMark>;
  settled(mark: AttributionMark): Promise<boolean>;
  attribute(upTo: number, limit: number): Promise<AttributionBatch | 'busy'>;
}

export interface AttributorOptions {
  /** Off: nothing runs (no timer, no queries). */
  readonly enabled: boolean;
  /** The attribution window (--attribution-window), ms. */
  readonly windowMs: number;
  /** A round this often (default 1,000 ms). */
  readonly intervalMs?: number;
  /**
   * A mark is used this long after it was taken at the earliest (default 5,000 ms), so that the impressions
   * of the responses events follow (written in batches within a second, by this or another replica) are
   * stored before those events are attributed.
   */
  readonly settleMs?: number;
  /** Events per transaction at most (default: 1,000 on PostgreSQL, 250 on SQLite, whose batch holds the write lock that event ingestion waits for). */
  readonly batchSize?: number;
  /**
   * Resolves when a batch of this many events may run: background work yields to live requests (the
   * server passes its bulk governor, src/serve/bulk-governor.ts, so a catch-up after a bulk import waits
   * while shoppers' requests are slow). Absent: batches run back to back.
   */
  readonly pace?: (events: number) => Promise<void>;
}

/** A failing store logs at most one line this often (with the count since the last). */
const FAILURE_LOG_EVERY_MS = 10_000;
/** Marks waiting to settle at most; beyond it the newest is replaced (a later mark covers an earlier one). */
const MAX_MARKS = 120;

/**
 * Attributes stored events to the recommendation responses that showed their
 * items (src/data/attributions.ts has the rules), in the background: every
 * intervalMs it takes a mark (the newest event id) and attributes the events up
 * to the newest mark that has settled, batchSize per transaction, yielding
 * between batches. Nothing here runs inside a request; event ingestion is not
 * touched. A batch the store refuses is counted and logged, and retried at the
 * next round (the cursor did not move); the events themselves were stored and
 * acknowledged long before. On PostgreSQL, replicas share the cursor: the one
 * holding its row does the batch, the others skip the round.
 */
export class Attributor {
  private readonly marks: (AttributionMark & { readonly at: number })[] = [];
  private running: Promise<void> | undefined;
  private closed = false;
  private readonly timer: NodeJS.Timeout | undefined;
  private readonly failures = new ThrottledFailures(FAILURE_LOG_EVERY_MS);
  /** The cursor as this server last saw it. */
  private cursor = -1;
  private readonly batchSize: number;

  constructor(
    private readonly sink: AttributionSink,
    private readonly metrics: ServeMetrics,
    private readonly log: (message: string, error?: unknown) => void,
    private readonly options: AttributorOptions & { readonly batchSize: number },
  ) {
    this.batchSize = Math.max(1, Math.floor(options.batchSize));
    if (!options.enabled) return;
    this.timer = setInterval(() => void this.tick(), options.intervalMs ?? 1_000);
    this.timer.unref();
  }

  /** The attributor of a server on `store`. */
  static forStore(store: Store, metrics: ServeMetrics, log: (message: string, error?: unknown) => void, options: AttributorOptions): Attributor {
    const sink: AttributionSink = {
      mark: () => attributionMark(store),
      settled: (mark) => markSettled(store, mark),
      attribute: (upTo, limit) => attributeBatch(store, upTo, { windowMs: options.windowMs, limit }),
    };
    return new Attributor(sink, metrics, log, { ...options, batchSize: options.batchSize ?? (store.provider === 'sqlite' ? 250 : 1_000) });
  }

  /** One round now (unless one is running, whose end it waits for): a new mark, then the events up to the newest settled one. */
  tick(): Promise<void> {
    if (!this.options.enabled || this.closed) return Promise.resolve();
    this.running ??= this.round(false).finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /**
   * Attributes every event stored before the call, without the settling delay (tests, benchmarks, tools):
   * waits for a running round, takes a mark, waits until it is settled (at most `waitMs`), and works
   * through it. Store failures are counted and logged as in a round.
   */
  async catchUp(waitMs = 10_000): Promise<void> {
    if (!this.options.enabled || this.closed) return;
    while (this.running) await this.running;
    const run = this.round(true, waitMs).finally(() => {
      if (this.running === run) this.running = undefined;
    });
    this.running = run;
    await run;
  }

  /** Stops the timer and waits for a running batch, at most `waitMs` (the cursor keeps the place for the next start). */
  async close(waitMs = 5_000): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    if (!this.running) return;
    let timeout: NodeJS.Timeout | undefined;
    await Promise.race([this.running, new Promise((resolve) => (timeout = setTimeout(resolve, waitMs)))]);
    clearTimeout(timeout);
  }

  private async round(now: boolean, waitMs = 0): Promise<void> {
    try {
      const mark = await this.sink.mark();
      let target: number | undefined;
      if (now) {
        const deadline = performance.now() + waitMs;
        while (!(await this.sink.settled(mark))) {
          if (performance.now() > deadline) throw new Error(`events up to id ${mark.eventKey} were not all committed within ${waitMs} ms`);
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        target = mark.eventKey;
      } else {
        const at = performance.now();
        if (this.marks.length >= MAX_MARKS) this.marks[this.marks.length - 1] = { ...mark, at };
        else this.marks.push({ ...mark, at });
        // Marks only settle in order: the first one that has not stops the search.
        const settleMs = this.options.settleMs ?? 5_000;
        while (this.marks.length > 0 && at - this.marks[0]!.at >= settleMs && (await this.sink.settled(this.marks[0]!))) target = this.marks.shift()!.eventKey;
      }
      if (this.cursor >= 0) this.metrics.attributionBacklog.set(Math.max(0, mark.eventKey - this.cursor));
      if (target === undefined || target <= this.cursor) return;
      for (;;) {
        await this.options.pace?.(this.batchSize);
        if (this.closed) return;
        const batch = await this.sink.attribute(target, this.batchSize);
        if (batch === 'busy') return;
        this.count(batch);
        this.cursor = batch.cursor;
        this.metrics.attributionBacklog.set(Math.max(0, mark.eventKey - batch.cursor));
        if (batch.cursor >= target || batch.read === 0) return;
        // Between two batches, requests and (on SQLite) ingestion's transactions get their turn.
        await new Promise((resolve) => setImmediate(resolve));
        if (this.closed) return;
      }
    } catch (error) {
      this.metrics.attributionFailures.inc();
      this.failed(error);
    }
  }

  private count(batch: AttributionBatch): void {
    for (const [kind, n] of Object.entries(batch.attributed)) if (n > 0) this.metrics.attributions.inc({ kind }, n);
    for (const [reason, n] of Object.entries(batch.unattributed)) if (n > 0) this.metrics.unattributed.inc({ reason }, n);
    for (const row of batch.rows) {
      const group = ServeMetrics.onlineGroup(row);
      this.metrics.onlineEvents.inc({ ...group, type: EVENT_TYPE_NAMES.get(row.typeId) ?? 'other' });
      // A counter only rises: a refund (negative value) shows in GET /v1/metrics/online's revenue, not here.
      const revenue = row.typeId === BUILTIN_EVENT_TYPES.purchase && row.value !== null ? row.value * (row.quantity ?? 1) : 0;
      if (revenue > 0) this.metrics.onlineRevenue.inc(group, revenue);
    }
  }

  /** A log line for a failing store, at most one per FAILURE_LOG_EVERY_MS (with the count since the last). */
  private failed(error: unknown): void {
    const count = this.failures.add();
    if (count !== undefined) this.log(`attribution: ${count} batch(es) could not be stored; the events are stored, and their attribution is retried at the next round`, error);
  }
}
