import { createHash } from 'node:crypto';
import { to as copyTo } from 'pg-copy-streams';
import { AppError } from '../errors.js';
import type { Store } from './store.js';

/**
 * Time-ordered event sequences per user (or per session) in compressed
 * sparse row form: sequence s spans [offsets[s], offsets[s + 1]) of the
 * column arrays. Built straight from the raw driver into typed arrays; no
 * row objects, no Prisma, so a million events load in about a second.
 */
export interface SequenceSet {
  readonly by: 'user' | 'session';
  /** Internal user (or session) id of each sequence, ascending. */
  readonly owners: Int32Array;
  /** Length owners.length + 1. */
  readonly offsets: Int32Array;
  /** Internal item ids. */
  readonly items: Int32Array;
  /** Event-type ids (1 = view, 2 = cart, 3 = purchase, custom types after). */
  readonly types: Uint8Array;
  /** Milliseconds since the epoch. */
  readonly timestamps: Float64Array;
}

/**
 * The set's sequences (their indices), those with the latest last event
 * first, at most `limit`: the order the API's user cache is warmed in, and
 * the users whose representations a training job stores for it.
 */
export function recentlyActiveFirst(set: SequenceSet, limit: number): number[] {
  const last = (s: number): number => set.timestamps[set.offsets[s + 1]! - 1]!;
  return Array.from({ length: set.owners.length }, (_, s) => s)
    .sort((a, b) => last(b) - last(a))
    .slice(0, Math.max(0, limit));
}

export interface SequenceQuery {
  readonly by?: 'user' | 'session';
  /** Only events at or after this instant. */
  readonly since?: Date;
  /** Keep only the most recent N events of each sequence. */
  readonly maxPerOwner?: number;
  /** Drop sequences shorter than this (after maxPerOwner). */
  readonly minLength?: number;
}

/**
 * Events are ordered by time; events with the same timestamp by item and then
 * type id — the order of the user-history index, so no sort is needed, and
 * for one item within one second it is the funnel order view → cart → purchase.
 */
export async function loadSequences(store: Store, query: SequenceQuery = {}): Promise<SequenceSet> {
  const by = query.by ?? 'user';
  const owner = by === 'user' ? 'user_id' : 'session_id';
  const since = query.since?.getTime();
  if (since !== undefined && !Number.isFinite(since)) throw new AppError('VALIDATION_FAILED', 'since is not a valid date');
  const builder = new SequenceBuilder(by, query.maxPerOwner ?? Infinity);
  if (store.provider === 'sqlite') {
    // The user content key (user_id, ts, item_id, type_id) covers this query; pin it so a `since`
    // filter does not tempt the planner into the ts index followed by a full sort.
    const hint = by === 'user' ? 'INDEXED BY events_user_content_key' : '';
    const sql = `SELECT ${owner}, item_id, type_id, ts FROM events ${hint}
                 WHERE ${owner} IS NOT NULL ${since !== undefined ? 'AND ts >= ?' : ''}
                 ORDER BY ${owner}, ts, item_id, type_id`;
    const statement = store.db.prepare(sql).raw(true);
    const rows = (since !== undefined ? statement.iterate(since) : statement.iterate()) as IterableIterator<[number, number, number, number]>;
    for (const [o, item, type, ts] of rows) builder.push(o, item, type, ts);
  } else {
    const sinceSql = since !== undefined ? `AND ts >= TIMESTAMP '1970-01-01' + ${Math.trunc(since)} * INTERVAL '1 millisecond'` : '';
    const sql = `COPY (SELECT ${owner}, item_id, type_id, (EXTRACT(EPOCH FROM ts) * 1000)::bigint FROM events
                       WHERE ${owner} IS NOT NULL ${sinceSql} ORDER BY ${owner}, ts, item_id, type_id) TO STDOUT`;
    const client = await store.pool.connect();
    try {
      const stream = client.query(copyTo(sql));
      let carry = '';
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        const text = carry + chunk.toString('latin1'); // four integer columns: ASCII only
        let start = 0;
        for (let end = text.indexOf('\n', start); end !== -1; end = text.indexOf('\n', start)) {
          pushCopyLine(builder, text, start, end);
          start = end + 1;
        }
        carry = text.slice(start);
      }
    } finally {
      client.release();
    }
  }
  return builder.finish(query.minLength ?? 1);
}

function pushCopyLine(builder: SequenceBuilder, text: string, start: number, end: number): void {
  const t1 = text.indexOf('\t', start);
  const t2 = text.indexOf('\t', t1 + 1);
  const t3 = text.indexOf('\t', t2 + 1);
  builder.push(+text.slice(start, t1), +text.slice(t1 + 1, t2), +text.slice(t2 + 1, t3), +text.slice(t3 + 1, end));
}

/** Appends owner-ordered events into growing typed arrays, trimming each owner to its most recent N. */
export class SequenceBuilder {
  private owners = new Int32Array(1024);
  private offsets = new Int32Array(1025);
  private items = new Int32Array(1 << 16);
  private types = new Uint8Array(1 << 16);
  private timestamps = new Float64Array(1 << 16);
  private sequences = 0;
  private length = 0;
  private currentOwner = -1;

  constructor(
    private readonly by: 'user' | 'session',
    private readonly maxPerOwner: number,
  ) {}

  push(owner: number, item: number, type: number, ts: number): void {
    if (owner !== this.currentOwner) {
      this.closeOwner();
      if (this.sequences + 1 >= this.owners.length) {
        this.owners = grow(this.owners, this.owners.length * 2);
        this.offsets = grow(this.offsets, this.owners.length + 1);
      }
      this.owners[this.sequences] = owner;
      this.offsets[this.sequences] = this.length;
      this.sequences++;
      this.currentOwner = owner;
    }
    if (this.length === this.items.length) {
      const capacity = this.items.length * 2;
      this.items = grow(this.items, capacity);
      this.types = grow(this.types, capacity);
      this.timestamps = grow(this.timestamps, capacity);
    }
    this.items[this.length] = item;
    this.types[this.length] = type;
    this.timestamps[this.length] = ts;
    this.length++;
  }

  /** Keeps only the most recent maxPerOwner events of the sequence just finished. */
  private closeOwner(): void {
    if (this.sequences === 0) return;
    const start = this.offsets[this.sequences - 1]!;
    const excess = this.length - start - this.maxPerOwner;
    if (excess <= 0) return;
    this.items.copyWithin(start, start + excess, this.length);
    this.types.copyWithin(start, start + excess, this.length);
    this.timestamps.copyWithin(start, start + excess, this.length);
    this.length -= excess;
  }

  finish(minLength: number): SequenceSet {
    this.closeOwner();
    this.offsets[this.sequences] = this.length;
    const view: SequenceSet = {
      by: this.by,
      owners: this.owners.subarray(0, this.sequences),
      offsets: this.offsets.subarray(0, this.sequences + 1),
      items: this.items.subarray(0, this.length),
      types: this.types.subarray(0, this.length),
      timestamps: this.timestamps.subarray(0, this.length),
    };
    if (minLength > 1) return dropShort(view, minLength);
    // Copies, so the result does not pin the builder's spare capacity.
    return { by: this.by, owners: view.owners.slice(), offsets: view.offsets.slice(), items: view.items.slice(), types: view.types.slice(), timestamps: view.timestamps.slice() };
  }
}

function dropShort(set: SequenceSet, minLength: number): SequenceSet {
  const keep: number[] = [];
  let events = 0;
  for (let s = 0; s < set.owners.length; s++) {
    const length = set.offsets[s + 1]! - set.offsets[s]!;
    if (length >= minLength) {
      keep.push(s);
      events += length;
    }
  }
  const out = {
    by: set.by,
    owners: new Int32Array(keep.length),
    offsets: new Int32Array(keep.length + 1),
    items: new Int32Array(events),
    types: new Uint8Array(events),
    timestamps: new Float64Array(events),
  };
  let at = 0;
  keep.forEach((s, k) => {
    const start = set.offsets[s]!;
    const end = set.offsets[s + 1]!;
    out.owners[k] = set.owners[s]!;
    out.offsets[k] = at;
    out.items.set(set.items.subarray(start, end), at);
    out.types.set(set.types.subarray(start, end), at);
    out.timestamps.set(set.timestamps.subarray(start, end), at);
    at += end - start;
  });
  out.offsets[keep.length] = at;
  return out;
}

function grow<T extends Int32Array | Uint8Array | Float64Array>(array: T, capacity: number): T {
  const next = new (array.constructor as new (n: number) => T)(capacity);
  next.set(array);
  return next;
}

/**
 * A content hash of a sequence set (owners, items, types, timestamps): the
 * data snapshot a model version records, so a training run can say exactly
 * which data it saw.
 */
export function hashSequences(set: SequenceSet): string {
  const hash = createHash('sha256').update(set.by);
  for (const array of [set.owners, set.offsets, set.items, set.types, set.timestamps]) {
    hash.update(new Uint8Array(array.buffer, array.byteOffset, array.byteLength));
  }
  return hash.digest('hex');
}
