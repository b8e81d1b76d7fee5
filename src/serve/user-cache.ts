import { SHORTLIST, type ModelHistory, type Shortlist, type UserState } from '../model/served-model.js';
import { LruCache } from './lru-cache.js';

/** A shopper's history as the filters and the model need it. */
export interface Owner {
  readonly events: number;
  readonly items: Int32Array;
  readonly types: Int32Array;
  /** The distinct items purchased (the filters build the one set a request needs from it). */
  readonly purchased: Int32Array;
}

/** What the recommendation routes know of a shopper under one model version (null: none served). */
export interface CachedUser {
  readonly owner: Owner;
  readonly version: number | null;
  readonly encoded: ModelHistory | undefined;
  readonly state: UserState | undefined;
  /**
   * The best items (model indices, best first; SHORTLIST of them) and their scores, before any filter.
   * A request whose filters leave k of them is answered from the list (the top k that pass among the
   * best 100 are the top k that pass among all); otherwise the whole catalogue is scored again.
   */
  readonly shortlist: Shortlist | undefined;
}

/** Rows per block of the fixed-size tables. */
const BLOCK_ROWS = 1024;
const BLOCK_SHIFT = 10;
/** Per-row facts in `meta`: version + 1 (0: none), shortlist length (-1: no state), history offset and length in the arena (-1: free row). */
const META = 4;
/** The history arena's first size, in int32s. */
const ARENA_START = 1 << 16;

/**
 * The user cache: the representations of the most recently used shoppers
 * (least recently used forgotten first, optional time to live), kept where
 * the garbage collector hardly sees them.
 *
 * A cached user used to be ~20 heap objects (the entry, its history arrays,
 * the state with its 1 KB query, the shortlist's two arrays), ~7.7 KB each:
 * ~240 MB for the benchmark's 31,013 users, twice that while an activation
 * fills the next version's cache, all of it traced by every full collection.
 * Here the fixed-size parts (the query, its normaliser, the shortlist) are
 * rows of a few large typed arrays, grown in blocks of 1,024 rows, and the
 * variable-size parts (history, purchases, the model's view of them) ranges
 * of one Int32Array arena: an LruCache (the `lru-cache` package) maps each id to its row (a
 * small integer) and hands the row back when the user is evicted, expires,
 * is invalidated or replaced. The arena only ever appends; once half of it
 * is left by users who went, the live ranges are copied into a new one.
 * Measured with bench/user-cache-memory.ts (100,000 users: heap 187 → 8 MB, a
 * full collection 273 → 14 ms); see docs/serving-performance.md.
 *
 * get() copies a row's fixed-size parts out, since a request that holds them
 * may outlive the row, which the next set() reuses; the history comes as
 * views of the arena, which never writes where it has written before.
 */
export class UserCache {
  private readonly rows: LruCache<string, number> | undefined;
  private free: number[] = [];
  /** Rows handed out so far, free or not. */
  private highWater = 0;
  /** Floats per query row; fixed by the first state cached (every state of one version has the same). */
  private queryWidth = 0;
  private queries: Float32Array[] = [];
  private normalisers: Float64Array[] = [];
  private shortIndices: Int32Array[] = [];
  private shortScores: Float32Array[] = [];
  private meta: Int32Array[] = [];
  private arena = new Int32Array(ARENA_START);
  /** The arena's first unwritten int32. */
  private top = 0;
  /** Int32s of the arena that rows in use hold. */
  private live = 0;

  /** capacity 0 keeps nothing; now: the clock of the time to live, milliseconds (tests pass their own). */
  constructor(capacity: number, ttlMs = Infinity, now: () => number = () => performance.now()) {
    this.rows = capacity > 0 ? new LruCache<string, number>(capacity, ttlMs, now, (row) => this.release(row)) : undefined;
  }

  get size(): number {
    return this.rows?.size ?? 0;
  }

  /** Rows the tables hold, in use or free (a user who leaves gives the row back for the next). */
  get allocatedRows(): number {
    return this.highWater;
  }

  /** Bytes of the tables and the arena (the id map's strings and the lru-cache's own arrays not counted). */
  get bytes(): number {
    const sum = (arrays: readonly ArrayBufferView[]) => arrays.reduce((n, a) => n + a.byteLength, 0);
    return sum(this.meta) + sum(this.normalisers) + sum(this.shortIndices) + sum(this.shortScores) + sum(this.queries) + this.arena.byteLength;
  }

  /** The user's entry (a copy), marked as recently used; undefined if not cached or expired. */
  get(externalId: string): CachedUser | undefined {
    const row = this.rows?.get(externalId);
    return row === undefined ? undefined : this.read(row);
  }

  /** The version the user is cached under (null: none served), without marking it used; undefined if not cached. */
  versionOf(externalId: string): number | null | undefined {
    const row = this.rows?.peek(externalId);
    if (row === undefined) return undefined;
    const version = this.meta[row >> BLOCK_SHIFT]![(row & (BLOCK_ROWS - 1)) * META]!;
    return version === 0 ? null : version - 1;
  }

  /**
   * Caches (or replaces) a user. An entry that does not fit the rows (a state of
   * another width, cached by a request that began under a version that has since
   * been replaced, or a longer shortlist) is left out: it is stale or unexpected,
   * and the next request computes it again.
   */
  set(externalId: string, entry: CachedUser): void {
    if (!this.rows) return;
    if (entry.state) {
      if (this.queryWidth === 0) this.queryWidth = entry.state.query.length;
      if (entry.state.query.length !== this.queryWidth || (entry.shortlist?.indices.length ?? 0) > SHORTLIST) return;
    }
    const row = this.take();
    this.write(row, entry);
    this.rows.set(externalId, row); // the user's previous row, or an evicted one, comes back through dispose
  }

  /** Every cached user (copies, in no particular order), without marking anyone used. */
  *entries(): Generator<CachedUser> {
    for (let row = 0; row < this.highWater; row++) {
      if (this.meta[row >> BLOCK_SHIFT]![(row & (BLOCK_ROWS - 1)) * META + 3]! > 0) yield this.read(row);
    }
  }

  delete(externalId: string): void {
    this.rows?.delete(externalId);
  }

  /** Forgets everyone and gives the tables back to the garbage collector. */
  clear(): void {
    this.rows?.clear();
    this.free = [];
    this.highWater = 0;
    this.queryWidth = 0;
    this.queries = [];
    this.normalisers = [];
    this.shortIndices = [];
    this.shortScores = [];
    this.meta = [];
    this.arena = new Int32Array(ARENA_START);
    this.top = 0;
    this.live = 0;
  }

  private take(): number {
    const row = this.free.pop();
    if (row !== undefined) return row;
    if ((this.highWater & (BLOCK_ROWS - 1)) === 0) this.grow();
    return this.highWater++;
  }

  private release(row: number): void {
    const meta = this.meta[row >> BLOCK_SHIFT]!;
    const at = (row & (BLOCK_ROWS - 1)) * META;
    this.live -= meta[at + 3]!;
    meta[at + 3] = -1;
    this.free.push(row);
  }

  /** Room for `length` int32s at the arena's top: its offset. Compacts or grows the arena when full. */
  private allocate(length: number): number {
    if (this.top + length > this.arena.length) {
      const needed = this.live + length;
      const size = needed * 2 <= this.arena.length ? this.arena.length : Math.max(needed * 2, this.arena.length * 2);
      const next = new Int32Array(size);
      let top = 0;
      for (let block = 0; block < this.meta.length; block++) {
        const meta = this.meta[block]!;
        for (let at = 0; at < BLOCK_ROWS * META; at += META) {
          const rowLength = meta[at + 3]!;
          if (rowLength <= 0) continue;
          next.set(this.arena.subarray(meta[at + 2]!, meta[at + 2]! + rowLength), top);
          meta[at + 2] = top;
          top += rowLength;
        }
      }
      this.arena = next;
      this.top = top;
    }
    const offset = this.top;
    this.top += length;
    this.live += length;
    return offset;
  }

  private grow(): void {
    const meta = new Int32Array(BLOCK_ROWS * META);
    for (let at = 3; at < meta.length; at += META) meta[at] = -1;
    this.meta.push(meta);
    this.normalisers.push(new Float64Array(BLOCK_ROWS));
    this.shortIndices.push(new Int32Array(BLOCK_ROWS * SHORTLIST));
    this.shortScores.push(new Float32Array(BLOCK_ROWS * SHORTLIST));
    // Query blocks wait for the first state (the width comes with it).
  }

  private queryBlock(block: number): Float32Array {
    while (this.queries.length <= block) this.queries.push(new Float32Array(BLOCK_ROWS * this.queryWidth));
    return this.queries[block]!;
  }

  private write(row: number, entry: CachedUser): void {
    const block = row >> BLOCK_SHIFT;
    const at = row & (BLOCK_ROWS - 1);
    const meta = this.meta[block]!;
    meta[at * META] = entry.version === null ? 0 : entry.version + 1;
    const { state, shortlist } = entry;
    if (state) {
      this.queryBlock(block).set(state.query, at * this.queryWidth);
      this.normalisers[block]![at] = state.logNormaliser;
      const length = shortlist?.indices.length ?? 0;
      meta[at * META + 1] = length;
      if (shortlist) {
        this.shortIndices[block]!.set(shortlist.indices, at * SHORTLIST);
        this.shortScores[block]!.set(shortlist.scores, at * SHORTLIST);
      }
    } else meta[at * META + 1] = -1;
    const size = historyLength(entry.owner, entry.encoded);
    const offset = this.allocate(size); // may move other rows' histories
    packHistory(this.arena.subarray(offset, offset + size), entry.owner, entry.encoded);
    meta[at * META + 2] = offset;
    meta[at * META + 3] = size;
  }

  private read(row: number): CachedUser {
    const block = row >> BLOCK_SHIFT;
    const at = row & (BLOCK_ROWS - 1);
    const meta = this.meta[block]!;
    const version = meta[at * META]! === 0 ? null : meta[at * META]! - 1;
    const offset = meta[at * META + 2]!;
    const { owner, encoded } = unpackHistory(this.arena.subarray(offset, offset + meta[at * META + 3]!));
    const length = meta[at * META + 1]!;
    if (length < 0 || !encoded) return { owner, version, encoded, state: undefined, shortlist: undefined };
    const from = at * this.queryWidth;
    const state: UserState = {
      query: this.queries[block]!.slice(from, from + this.queryWidth),
      logNormaliser: this.normalisers[block]![at]!,
      items: encoded.items,
    };
    const shortlist: Shortlist | undefined =
      length === 0
        ? undefined
        : {
            indices: this.shortIndices[block]!.slice(at * SHORTLIST, at * SHORTLIST + length),
            scores: this.shortScores[block]!.slice(at * SHORTLIST, at * SHORTLIST + length),
          };
    return { owner, version, encoded, state, shortlist };
  }
}

/**
 * One user's variable-size parts in one array:
 * [events, n, items × n, types × n, p, purchased × p, e, model items × e, model types × e],
 * e = -1 when there is no model view (no version served).
 */
function historyLength(owner: Owner, encoded: ModelHistory | undefined): number {
  return 5 + 2 * owner.items.length + owner.purchased.length + 2 * (encoded?.items.length ?? 0);
}

function packHistory(packed: Int32Array, owner: Owner, encoded: ModelHistory | undefined): void {
  const n = owner.items.length;
  const p = owner.purchased.length;
  const e = encoded?.items.length ?? 0;
  let at = 0;
  packed[at++] = owner.events;
  packed[at++] = n;
  packed.set(owner.items, at);
  packed.set(owner.types, (at += n));
  packed[(at += n)] = p;
  packed.set(owner.purchased, ++at);
  packed[(at += p)] = encoded ? e : -1;
  at++;
  if (encoded) {
    packed.set(encoded.items, at);
    packed.set(encoded.types, at + e);
  }
}

function unpackHistory(packed: Int32Array): { owner: Owner; encoded: ModelHistory | undefined } {
  let at = 0;
  const events = packed[at++]!;
  const n = packed[at++]!;
  const items = packed.subarray(at, (at += n));
  const types = packed.subarray(at, (at += n));
  const p = packed[at++]!;
  const purchased = packed.subarray(at, (at += p));
  const e = packed[at++]!;
  const encoded = e < 0 ? undefined : { items: Array.from(packed.subarray(at, at + e)), types: Array.from(packed.subarray(at + e, at + 2 * e)) };
  return { owner: { events, items, types, purchased }, encoded };
}
