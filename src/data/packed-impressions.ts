import type { ImpressionRoute, ImpressionRow } from './impressions.js';

/**
 * Impressions packed into one binary buffer, as a server buffers them before
 * they are written: each is encoded when its response is answered, so nothing
 * of it stays on the JavaScript heap while the batch fills (held rows outlived
 * the young generation and cost the event loop's garbage collector), and the
 * batch goes to the SQLite writer thread as one transferred ArrayBuffer
 * instead of a structured clone of hundreds of objects.
 *
 * A row, little-endian: its length (u32), ts (f64), route, strategy and
 * flags (u8 each), modelVersion and experimentId (i32, when the flags say
 * so), the count of items (u16), then the id, user id, session id and variant
 * (u16 byte length + UTF-8, the last three when present), the item ids (i32
 * each), probabilities and scores (f64 each, NaN for none) and the explored
 * ranks (u16 count + u16 each).
 */
export interface PackedImpressions {
  /** The rows, back to back, in `bytes` bytes from the start. */
  readonly buffer: ArrayBuffer;
  readonly bytes: number;
  /** Rows in the buffer. */
  readonly count: number;
  /** Items shown in all its rows. */
  readonly items: number;
}

const ROUTES: readonly ImpressionRoute[] = ['user_recommendations', 'session_recommendations', 'next_sequence', 'rank', 'similar_items'];
const ROUTE_CODES = new Map(ROUTES.map((route, code) => [route, code]));
const STRATEGIES = ['model', 'popular'] as const;

const HAS_VERSION = 1;
const HAS_EXPERIMENT = 2;
const HAS_USER = 4;
const HAS_SESSION = 8;
const HAS_VARIANT = 16;
const HAS_EXPLORED = 32;

/** Fixed part of a row: length, ts, route, strategy, flags, version, experiment, item count. */
const HEAD_BYTES = 4 + 8 + 3 + 4 + 4 + 2;
/** At most this many items per row, and bytes per string (u16 lengths). */
export const PACKED_MAX_ITEMS = 0xffff;
const MAX_STRING_BYTES = 0xffff;

/** An impression's fields other than the items it showed. */
export type ImpressionFields = Omit<ImpressionRow, 'itemIds' | 'probabilities' | 'scores' | 'explored'>;

/**
 * Appends impressions to a growing buffer. `seal()` hands over what was
 * appended as one batch, and the packer starts a new buffer.
 */
export class ImpressionPacker {
  private buffer: ArrayBuffer;
  private view: DataView;
  private bytesView: Buffer;
  private offset = 0;
  private rows = 0;
  private itemCount = 0;

  constructor(private readonly initialBytes = 256 * 1024) {
    this.buffer = new ArrayBuffer(initialBytes);
    this.view = new DataView(this.buffer);
    this.bytesView = Buffer.from(this.buffer);
  }

  /** Writes go to `buffer` from now on (its views made once here). */
  private useBuffer(buffer: ArrayBuffer): void {
    this.buffer = buffer;
    this.view = new DataView(buffer);
    this.bytesView = Buffer.from(buffer);
  }

  /** Rows appended since the last seal. */
  get count(): number {
    return this.rows;
  }

  /** Items shown in the rows appended since the last seal. */
  get items(): number {
    return this.itemCount;
  }

  /**
   * Appends one impression. The items are given by index (`item(i)` the internal id, 0 for unknown;
   * `probability(i)`, `score(i)` NaN for none), so the caller builds no arrays; `explored` holds 1-based ranks.
   */
  append(fields: ImpressionFields, count: number, item: (i: number) => number, probability: (i: number) => number, score: (i: number) => number, explored?: readonly number[]): void {
    if (count > PACKED_MAX_ITEMS) throw new RangeError(`an impression shows at most ${PACKED_MAX_ITEMS} items; got ${count}`);
    const route = ROUTE_CODES.get(fields.route);
    if (route === undefined) throw new RangeError(`unknown impression route '${fields.route}'`);
    const strings = [fields.id, fields.userId, fields.sessionId, fields.variant];
    let most = HEAD_BYTES + count * 20 + 2 + (explored?.length ?? 0) * 2;
    for (const s of strings) if (s !== null) most += 2 + s.length * 3;
    this.reserve(most);
    const start = this.offset;
    const view = this.view;
    let flags = 0;
    if (fields.modelVersion !== null) flags |= HAS_VERSION;
    if (fields.experimentId !== null) flags |= HAS_EXPERIMENT;
    if (fields.userId !== null) flags |= HAS_USER;
    if (fields.sessionId !== null) flags |= HAS_SESSION;
    if (fields.variant !== null) flags |= HAS_VARIANT;
    if (explored !== undefined && explored.length > 0) flags |= HAS_EXPLORED;
    view.setFloat64(start + 4, fields.ts, true);
    view.setUint8(start + 12, route);
    view.setUint8(start + 13, fields.strategy === 'popular' ? 1 : 0);
    view.setUint8(start + 14, flags);
    view.setInt32(start + 15, fields.modelVersion ?? 0, true);
    view.setInt32(start + 19, fields.experimentId ?? 0, true);
    view.setUint16(start + 23, count, true);
    let at = start + HEAD_BYTES;
    at = this.writeString(at, fields.id);
    if (fields.userId !== null) at = this.writeString(at, fields.userId);
    if (fields.sessionId !== null) at = this.writeString(at, fields.sessionId);
    if (fields.variant !== null) at = this.writeString(at, fields.variant);
    for (let i = 0; i < count; i++, at += 4) view.setInt32(at, item(i), true);
    for (let i = 0; i < count; i++, at += 8) view.setFloat64(at, probability(i), true);
    for (let i = 0; i < count; i++, at += 8) view.setFloat64(at, score(i), true);
    if (flags & HAS_EXPLORED) {
      view.setUint16(at, explored!.length, true);
      at += 2;
      for (const rank of explored!) {
        view.setUint16(at, rank, true);
        at += 2;
      }
    }
    view.setUint32(start, at - start, true);
    this.offset = at;
    this.rows++;
    this.itemCount += count;
  }

  /** Forgets what was appended since the last seal, keeping the buffer. */
  clear(): void {
    this.offset = 0;
    this.rows = 0;
    this.itemCount = 0;
  }

  /** Appends a whole row (tests, and writeImpressions given rows). */
  appendRow(row: ImpressionRow): void {
    const { itemIds, probabilities, scores } = row;
    this.append(
      row,
      itemIds.length,
      (i) => itemIds[i] ?? 0,
      (i) => probabilities[i] ?? Number.NaN,
      (i) => scores[i] ?? Number.NaN,
      row.explored,
    );
  }

  /** What was appended since the last seal, as one batch; the packer goes on in a new buffer. */
  seal(): PackedImpressions {
    const packed: PackedImpressions = { buffer: this.buffer, bytes: this.offset, count: this.rows, items: this.itemCount };
    this.useBuffer(new ArrayBuffer(this.initialBytes));
    this.clear();
    return packed;
  }

  private reserve(bytes: number): void {
    if (this.offset + bytes <= this.buffer.byteLength) return;
    const grown = new ArrayBuffer(Math.max(this.buffer.byteLength * 2, this.offset + bytes));
    new Uint8Array(grown).set(new Uint8Array(this.buffer, 0, this.offset));
    this.useBuffer(grown);
  }

  private writeString(at: number, value: string): number {
    const written = this.bytesView.write(value, at + 2, 'utf8');
    if (written > MAX_STRING_BYTES) throw new RangeError(`an impression's id, owner or variant is at most ${MAX_STRING_BYTES} bytes`);
    this.view.setUint16(at, written, true);
    return at + 2 + written;
  }
}

/** Packs rows into one batch (writeImpressions given rows, tests). */
export function packImpressions(rows: readonly ImpressionRow[]): PackedImpressions {
  const packer = new ImpressionPacker(Math.max(1024, rows.length * 256));
  for (const row of rows) packer.appendRow(row);
  return packer.seal();
}

/** Where a row's parts are: its fixed fields, read, and the offsets of its strings (-1: absent) and items. */
interface RowHead {
  readonly length: number;
  readonly flags: number;
  readonly count: number;
  readonly ts: number;
  readonly route: ImpressionRoute;
  readonly strategy: 'model' | 'popular';
  readonly modelVersion: number | null;
  readonly experimentId: number | null;
  readonly idAt: number;
  readonly userAt: number;
  readonly sessionAt: number;
  readonly variantAt: number;
  readonly itemsAt: number;
}

/** The head of the row at `start`: the one place that knows the layout's order (strings are skipped, not decoded). */
function rowHead(view: DataView, start: number): RowHead {
  const flags = view.getUint8(start + 14);
  let at = start + HEAD_BYTES;
  const next = (present: number): number => {
    if (!present) return -1;
    const here = at;
    at += 2 + view.getUint16(at, true);
    return here;
  };
  const idAt = next(1);
  const userAt = next(flags & HAS_USER);
  const sessionAt = next(flags & HAS_SESSION);
  const variantAt = next(flags & HAS_VARIANT);
  return {
    length: view.getUint32(start, true),
    flags,
    count: view.getUint16(start + 23, true),
    ts: view.getFloat64(start + 4, true),
    route: ROUTES[view.getUint8(start + 12)]!,
    strategy: STRATEGIES[view.getUint8(start + 13)]!,
    modelVersion: flags & HAS_VERSION ? view.getInt32(start + 15, true) : null,
    experimentId: flags & HAS_EXPERIMENT ? view.getInt32(start + 19, true) : null,
    idAt,
    userAt,
    sessionAt,
    variantAt,
    itemsAt: at,
  };
}

/** The string at `at` of a row (rowHead's offsets; -1: null). */
function stringAt(view: DataView, text: Buffer, at: number): string | null {
  return at < 0 ? null : text.toString('utf8', at + 2, at + 2 + view.getUint16(at, true));
}

/**
 * Calls `visit` with each row of a batch, in order, its arrays typed (item ids
 * as stored: 0 for an unknown item; NaN for no probability or score).
 */
export function forEachPackedImpression(packed: PackedImpressions, visit: (row: ImpressionRow & { readonly itemIds: ArrayLike<number>; readonly probabilities: ArrayLike<number>; readonly scores: ArrayLike<number> }) => void): void {
  const view = new DataView(packed.buffer, 0, packed.bytes);
  const text = Buffer.from(packed.buffer, 0, packed.bytes);
  let start = 0;
  for (let n = 0; n < packed.count; n++) {
    const head = rowHead(view, start);
    const { count } = head;
    let at = head.itemsAt;
    const itemIds = new Int32Array(count);
    const probabilities = new Float64Array(count);
    const scores = new Float64Array(count);
    for (let i = 0; i < count; i++, at += 4) itemIds[i] = view.getInt32(at, true);
    for (let i = 0; i < count; i++, at += 8) probabilities[i] = view.getFloat64(at, true);
    for (let i = 0; i < count; i++, at += 8) scores[i] = view.getFloat64(at, true);
    let explored: number[] | undefined;
    if (head.flags & HAS_EXPLORED) {
      const ranks = view.getUint16(at, true);
      at += 2;
      explored = [];
      for (let i = 0; i < ranks; i++, at += 2) explored.push(view.getUint16(at, true));
    }
    if (at !== start + head.length) throw new Error(`a packed impression is corrupt (row ${n}: ${at - start} bytes read, ${head.length} written)`);
    visit({
      id: stringAt(view, text, head.idAt)!,
      ts: head.ts,
      route: head.route,
      strategy: head.strategy,
      modelVersion: head.modelVersion,
      experimentId: head.experimentId,
      variant: stringAt(view, text, head.variantAt),
      userId: stringAt(view, text, head.userAt),
      sessionId: stringAt(view, text, head.sessionAt),
      itemIds,
      probabilities,
      scores,
      ...(explored && { explored }),
    });
    start = at;
  }
}

/** The rows of a batch, with plain arrays (PostgreSQL's path, tests). */
export function unpackImpressions(packed: PackedImpressions): ImpressionRow[] {
  const rows: ImpressionRow[] = [];
  forEachPackedImpression(packed, (row) => rows.push({ ...row, itemIds: Array.from(row.itemIds), probabilities: Array.from(row.probabilities), scores: Array.from(row.scores) }));
  return rows;
}

/** What the online metrics count an impression under (ServeMetrics.onlineGroup). */
export interface ImpressionGroup {
  readonly route: ImpressionRoute;
  readonly modelVersion: number | null;
  readonly experimentId: number | null;
  readonly variant: string | null;
}

/** The batch's rows counted by route, model version and experiment variant, reading only what those need. */
export function packedImpressionGroups(packed: PackedImpressions): { readonly group: ImpressionGroup; count: number }[] {
  const view = new DataView(packed.buffer, 0, packed.bytes);
  const text = Buffer.from(packed.buffer, 0, packed.bytes);
  const groups = new Map<string, { readonly group: ImpressionGroup; count: number }>();
  for (let n = 0, at = 0; n < packed.count; n++) {
    const { route, modelVersion, experimentId, variantAt, length } = rowHead(view, at);
    const variant = stringAt(view, text, variantAt);
    const key = `${route} ${modelVersion} ${experimentId} ${variant}`;
    const known = groups.get(key);
    if (known) known.count++;
    else groups.set(key, { group: { route, modelVersion, experimentId, variant }, count: 1 });
    at += length;
  }
  return [...groups.values()];
}
