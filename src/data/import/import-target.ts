import type { CatalogRow } from './catalog.js';

/** Events of one batch in internal ids, column by column. 0 / NaN mean NULL. */
export interface ResolvedEvents {
  readonly count: number;
  readonly userId: Int32Array;
  readonly sessionId: Int32Array;
  readonly itemId: Int32Array;
  readonly typeId: Int32Array;
  readonly ts: Float64Array;
  readonly value: Float64Array;
  readonly quantity: Int32Array;
  readonly eventId: (string | null)[];
  /** The recommendationId an event names (explicit attribution), or null. */
  readonly recommendationId: (string | null)[];
}

/** A batch in the target's own form (opaque to the orchestrator). */
export interface PreparedEvents {
  readonly count: number;
}

export interface SessionRef {
  readonly id: number;
  readonly userId: number | null;
}

/**
 * What an import needs from a database, all inside one transaction that
 * begin() opens and commit() or rollback() closes. One implementation per
 * provider, each on its raw driver: Prisma's createMany manages ~10k rows/s,
 * these paths manage hundreds of thousands.
 */
export interface ImportTarget {
  begin(): Promise<void>;
  eventTypes(): Promise<Map<string, number>>;
  addEventTypes(types: readonly { id: number; name: string }[]): Promise<void>;
  /** Internal ids of the given (distinct) external user ids, in order; creates the missing users. */
  resolveUsers(externalIds: readonly string[]): Promise<number[]>;
  /** Same for items: unknown items are created with no metadata. */
  resolveItems(externalIds: readonly string[]): Promise<number[]>;
  /** Same for sessions; a session without a user gets the given one attached. */
  resolveSessions(sessions: readonly { externalId: string; userId: number | null }[]): Promise<SessionRef[]>;
  /** Inserts or updates items; only the attributes present (not undefined) in the rows are written. */
  upsertCatalog(rows: readonly CatalogRow[]): Promise<{ inserted: number; updated: number }>;
  /**
   * Writing events is split in three so the orchestrator can overlap the
   * database's work on one batch with JavaScript work on the next:
   * prepare (synchronous, e.g. COPY text), stage (hand it to the database),
   * flush (move staged events into `events`, skipping duplicates by event id
   * or content key; resolves to how many were new). At most one batch is
   * staged at a time.
   */
  prepareEvents(events: ResolvedEvents): PreparedEvents;
  stageEvents(prepared: PreparedEvents): Promise<void>;
  flushStaged(): Promise<number>;
  commit(): Promise<void>;
  rollback(): Promise<void>;
  /** PostgreSQL: NOTIFY on a channel inside the transaction (delivered at COMMIT, never after a rollback). */
  notify?(channel: string, payload: string): Promise<void>;
  readonly created: { users: number; items: number; sessions: number };
}

/** Keeps the last row per item id (a catalogue listing an item twice means its last line). */
export function lastRowPerItem(rows: readonly CatalogRow[]): CatalogRow[] {
  const byId = new Map<string, CatalogRow>();
  for (const row of rows) byId.set(row.externalId, row);
  return [...byId.values()];
}

/** Which catalogue attributes the file provides (the same for every row of a file). */
export function catalogColumns(rows: readonly CatalogRow[]): ('title' | 'category' | 'price' | 'active' | 'properties')[] {
  const first = rows[0];
  if (!first) return [];
  return (['title', 'category', 'price', 'active', 'properties'] as const).filter((c) => first[c] !== undefined || rows.some((r) => r[c] !== undefined));
}

/**
 * Reorders a batch by user, anonymous events last, keeping file order within
 * a user. The user content key leads with user_id, so grouped inserts sweep
 * the index pages once per batch instead of jumping per row (measured 1.6x
 * faster on 1M events). Keys pack (user, position) into one float64 so the
 * native comparator-free TypedArray sort does the work.
 */
export function groupByUser(e: ResolvedEvents): ResolvedEvents {
  const n = e.count;
  const SLOT = 2 ** 21; // positions per batch; user ids < 2^31, so keys stay below 2^52
  if (n >= SLOT) throw new Error(`batch of ${n} events is too large to sort`);
  const keys = new Float64Array(n);
  for (let i = 0; i < n; i++) keys[i] = (e.userId[i] || 0x7fffffff) * SLOT + i;
  keys.sort();
  const out: ResolvedEvents = {
    count: n,
    userId: new Int32Array(n),
    sessionId: new Int32Array(n),
    itemId: new Int32Array(n),
    typeId: new Int32Array(n),
    ts: new Float64Array(n),
    value: new Float64Array(n),
    quantity: new Int32Array(n),
    eventId: new Array<string | null>(n),
    recommendationId: new Array<string | null>(n),
  };
  for (let k = 0; k < n; k++) {
    const i = keys[k]! % SLOT;
    out.userId[k] = e.userId[i]!;
    out.sessionId[k] = e.sessionId[i]!;
    out.itemId[k] = e.itemId[i]!;
    out.typeId[k] = e.typeId[i]!;
    out.ts[k] = e.ts[i]!;
    out.value[k] = e.value[i]!;
    out.quantity[k] = e.quantity[i]!;
    out.eventId[k] = e.eventId[i]!;
    out.recommendationId[k] = e.recommendationId[i]!;
  }
  return out;
}
