import type { BadLine, EventRow } from './event-row.js';

/**
 * A batch of validated events, column by column and dictionary-encoded: each
 * distinct user, session, item and type string appears once, rows refer to it
 * by index. This is what crosses from the parsing worker to the writing
 * thread: typed arrays move without copying, the writer resolves each
 * distinct id once per batch instead of once per row.
 */
export interface EventColumns {
  readonly count: number;
  readonly line: Int32Array;
  readonly users: string[];
  /** Index into `users`, -1 = no user. */
  readonly user: Int32Array;
  readonly sessions: string[];
  /** Index into `sessions`, -1 = no session. */
  readonly session: Int32Array;
  readonly items: string[];
  readonly item: Int32Array;
  readonly types: string[];
  readonly type: Int32Array;
  readonly ts: Float64Array;
  /** NaN = no value. */
  readonly value: Float64Array;
  /** 0 = no quantity (quantities are positive). */
  readonly quantity: Int32Array;
  readonly eventId: (string | null)[];
  /** Explicit attribution: the recommendationId the event names, or null. */
  readonly recommendationId: (string | null)[];
}

export interface ColumnBatch {
  readonly events: EventColumns;
  readonly bad: BadLine[];
  readonly bytesRead: number;
  readonly linesRead: number;
}

class Dictionary {
  readonly values: string[] = [];
  private readonly index = new Map<string, number>();

  code(value: string | null): number {
    if (value === null) return -1;
    let i = this.index.get(value);
    if (i === undefined) {
      i = this.values.length;
      this.values.push(value);
      this.index.set(value, i);
    }
    return i;
  }
}

export function toColumns(rows: readonly EventRow[]): EventColumns {
  const n = rows.length;
  const users = new Dictionary();
  const sessions = new Dictionary();
  const items = new Dictionary();
  const types = new Dictionary();
  const columns = {
    count: n,
    line: new Int32Array(n),
    user: new Int32Array(n),
    session: new Int32Array(n),
    item: new Int32Array(n),
    type: new Int32Array(n),
    ts: new Float64Array(n),
    value: new Float64Array(n),
    quantity: new Int32Array(n),
    eventId: new Array<string | null>(n),
    recommendationId: new Array<string | null>(n),
  };
  for (let i = 0; i < n; i++) {
    const row = rows[i]!;
    columns.line[i] = row.line;
    columns.user[i] = users.code(row.user);
    columns.session[i] = sessions.code(row.session);
    columns.item[i] = items.code(row.item);
    columns.type[i] = types.code(row.type);
    columns.ts[i] = row.ts;
    columns.value[i] = row.value ?? NaN;
    columns.quantity[i] = row.quantity ?? 0;
    columns.eventId[i] = row.eventId;
    columns.recommendationId[i] = row.recommendationId;
  }
  return { ...columns, users: users.values, sessions: sessions.values, items: items.values, types: types.values };
}

/** The typed arrays of a batch, to hand to postMessage's transfer list. */
export function transferables(c: EventColumns): ArrayBuffer[] {
  return [c.line, c.user, c.session, c.item, c.type, c.ts, c.value, c.quantity].map((a) => a.buffer as ArrayBuffer);
}
