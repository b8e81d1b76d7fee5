import { SMALL_BATCH_EVENTS } from '../data/ingest-events.js';

export interface BulkGovernorOptions {
  /** Live requests slower than this (ms) are slow; 0 turns the governor off (bulk batches never wait). */
  readonly targetMs: number;
  /** The lowest bulk rate, events/s. */
  readonly floorPerS?: number;
  /** The additive step a tick without slow live requests adds, events/s. */
  readonly stepPerS?: number;
  /** The longest a bulk batch waits, ms. */
  readonly maxWaitMs?: number;
  readonly tickMs?: number;
  /** The clock (tests). */
  readonly now?: () => number;
  /** Called with each admitted batch's wait in seconds and its kind (metrics). */
  readonly onWait?: (seconds: number, kind: BulkWork) => void;
}

/** Batches of more events than this are bulk (a shopper's own events come one or a few at a time); the writer also puts them behind the small ones. */
export const BULK_BATCH_EVENTS = SMALL_BATCH_EVENTS;
/** More than this share of a tick's live requests over the target halves the bulk rate. */
export const SLOW_SHARE = 0.05;
/** The longest a bulk batch waits by default, ms. */
export const BULK_MAX_WAIT_MS = 2_000;
const IDLE_TICKS_TO_LIFT = 10;

/** Marks a response as a bulk batch's: its time is not a live request's. */
export function markBulk(locals: Record<string, unknown>): void {
  locals[BULK_LOCAL] = true;
}

/** Whether a response was marked with markBulk. */
export function isBulk(locals: Record<string, unknown>): boolean {
  return locals[BULK_LOCAL] === true;
}

const BULK_LOCAL = 'attnrecBulk';

/** What waits: an API batch of events to store, or a batch of stored events to attribute. */
export type BulkWork = 'ingestion' | 'attribution';

interface Waiter {
  readonly events: number;
  readonly kind: BulkWork;
  readonly arrived: number;
  readonly resolve: () => void;
}

/**
 * Live requests come first: bulk event batches take the capacity that live requests leave.
 *
 * Why: a shop's bulk import (back-to-back batches over several connections) and its shoppers share the
 * server's cores. On 2 cores, batches of 100 over 4 connections beside active shoppers at 500 pairs/s do
 * not fit, and served in arrival order the side with more connections won: the shoppers got half of what
 * they asked for, at a median of 7.1 s (docs/serving-performance.md, "Ingestion beside active shoppers").
 *
 * How: a batch of more than `BULK_BATCH_EVENTS` events is bulk; every other request (recommendations, a
 * shopper's own event, …) is live, and its time in the server, from arrival to the response's last byte,
 * is observed. Every tick the governor looks at the live requests that finished in it:
 *  - more than `SLOW_SHARE` of them slower than `targetMs`: the bulk rate is halved (from what it
 *    admitted in the tick, or from its limit if that was lower), never below `floorPerS`;
 *  - otherwise it grows by `stepPerS` each tick; after a second with no live request at all it is lifted.
 * A bulk batch waits until the rate's token bucket is not in debt, or until it has waited `maxWaitMs`
 * (a bulk import always moves, and a waiting client is answered well within its timeout); the bucket
 * saves nothing up, so batches go evenly spaced. Validation comes before the wait, so a bad batch is
 * refused at once; an acknowledged batch is stored as before. Other background writes take their batches
 * from the same budget: the attributor's catch-up after an import (its batches run on the SQLite writer
 * thread, but hold the process's write lock, which a shopper's own event waits for, and a core). A shop's
 * batches, which a client waits for, go ahead of the attributor's, which nobody waits for: after 60 s of
 * active shoppers at saturation its backlog was ~120,000 events, and catching up beside ingestion and
 * shoppers it took the budget, ingestion getting 5,260 events/s against 9,830 with attribution off
 * (docs/serving-performance.md, "The attributor's catch-up after the shop's batches"). Its batches still
 * go after their longest wait, so attribution falls behind under sustained bulk load
 * (attnrec_attribution_backlog_events) and catches up when the load stops.
 * Measured in docs/serving-performance.md, "Live requests first".
 */
export class BulkGovernor {
  private readonly floor: number;
  private readonly step: number;
  private readonly maxWait: number;
  private readonly tickMs: number;
  private readonly now: () => number;
  /** Events/s; Infinity while not limited. */
  private limit = Infinity;
  private tokens = 0;
  private refilledAt: number;
  private tickStarted: number;
  private live = 0;
  private slow = 0;
  private admitted = 0;
  private idleTicks = 0;
  private readonly waiting: Waiter[] = [];
  private ticker: NodeJS.Timeout | undefined;
  private wake: NodeJS.Timeout | undefined;

  constructor(private readonly options: BulkGovernorOptions) {
    this.floor = options.floorPerS ?? 2_000;
    this.step = options.stepPerS ?? 1_000;
    this.maxWait = options.maxWaitMs ?? BULK_MAX_WAIT_MS;
    this.tickMs = options.tickMs ?? 100;
    this.now = options.now ?? (() => performance.now());
    this.refilledAt = this.tickStarted = this.now();
  }

  get enabled(): boolean {
    return this.options.targetMs > 0;
  }

  /** The bulk rate allowed now, events/s (Infinity: not limited). */
  get limitPerS(): number {
    return this.limit;
  }

  /** Bulk batches waiting now. */
  get waitingBatches(): number {
    return this.waiting.length;
  }

  /** Starts the ticks (a timer that does not keep the process alive). */
  start(): void {
    if (!this.enabled || this.ticker) return;
    this.ticker = setInterval(() => this.tick(), this.tickMs);
    this.ticker.unref();
  }

  /** Stops the ticks and lets every waiting batch through (a server that stops still stores what it acknowledges). */
  close(): void {
    if (this.ticker) clearInterval(this.ticker);
    this.ticker = undefined;
    this.limit = Infinity;
    this.release();
  }

  /** A live request finished after `ms` in the server. */
  observeLive(ms: number): void {
    this.live++;
    if (ms > this.options.targetMs) this.slow++;
  }

  /** Resolves when a batch of `events` (bulk ingestion, or background work such as attribution) may run. */
  admit(events: number, kind: BulkWork = 'ingestion'): Promise<void> {
    if (!this.enabled) return Promise.resolve();
    this.refill();
    if (this.waiting.length === 0 && (this.limit === Infinity || this.tokens >= 0)) {
      this.take(events);
      this.options.onWait?.(0, kind);
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      this.waiting.push({ events, kind, arrived: this.now(), resolve });
      this.schedule();
    });
  }

  /** One control step: the live requests since the last tick set the bulk rate. */
  tick(): void {
    const now = this.now();
    const seconds = Math.max(1e-3, (now - this.tickStarted) / 1_000);
    const admittedPerS = this.admitted / seconds;
    if (this.live === 0) {
      if (++this.idleTicks >= IDLE_TICKS_TO_LIFT) this.limit = Infinity;
      else if (this.limit !== Infinity) this.limit += this.step;
    } else {
      this.idleTicks = 0;
      if (this.slow > this.live * SLOW_SHARE) this.limit = Math.max(this.floor, Math.min(this.limit, admittedPerS) / 2);
      else if (this.limit !== Infinity) this.limit += this.step;
    }
    this.live = this.slow = this.admitted = 0;
    this.tickStarted = now;
    this.release();
  }

  private take(events: number): void {
    this.admitted += events;
    // The debt is capped at what the rate repays within the longest wait: batches let through by their
    // longest wait do not pile up a debt that would hold later ones after the live requests calmed down.
    if (this.limit !== Infinity) this.tokens = Math.max(this.tokens - events, (-this.limit * this.maxWait) / 1_000);
  }

  private refill(): void {
    const now = this.now();
    if (this.limit === Infinity) this.tokens = 0;
    // Nothing saved up: batches go evenly spaced, never in a burst (a burst of batches is a stretch of
    // synchronous writes on the event loop that live requests wait behind).
    else this.tokens = Math.min(0, this.tokens + ((now - this.refilledAt) / 1_000) * this.limit);
    this.refilledAt = now;
  }

  /**
   * Lets through the batches that may go now: any that has waited its longest (oldest first), then, while
   * the bucket is out of debt, a shop's ingestion ahead of the attributor's background batches, each kind
   * oldest first.
   */
  private release(): void {
    this.refill();
    const now = this.now();
    while (this.waiting.length > 0) {
      // `waiting` is in arrival order, so an overdue batch, if any, is the first.
      let index = now - this.waiting[0]!.arrived >= this.maxWait ? 0 : -1;
      if (index < 0) {
        if (!(this.limit === Infinity || this.tokens >= 0)) break;
        index = Math.max(0, this.waiting.findIndex((w) => w.kind === 'ingestion'));
      }
      const [next] = this.waiting.splice(index, 1);
      this.take(next!.events);
      this.options.onWait?.((now - next!.arrived) / 1_000, next!.kind);
      next!.resolve();
    }
    this.schedule();
  }

  /** A timer for the first waiting batch: when the bucket is out of debt, or its longest wait is up. */
  private schedule(): void {
    if (this.wake) clearTimeout(this.wake);
    this.wake = undefined;
    const first = this.waiting[0];
    if (!first) return;
    const untilTokens = this.limit === Infinity ? 0 : (-this.tokens / this.limit) * 1_000;
    const untilMaxWait = first.arrived + this.maxWait - this.now();
    this.wake = setTimeout(() => this.release(), Math.max(1, Math.min(untilTokens, untilMaxWait)));
  }
}
