import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readFileSync, readSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { kernelDigest } from './kernel-module.js';
import { SHORTLIST, type ModelHistory, type Representation, type ServedModel } from './served-model.js';

/**
 * Stored representations of a version: what `ServedModel.represent` computed
 * for histories, kept beside the version's artifact so that a server that
 * starts (or activates the version) fills its user cache by reading instead
 * of a forward pass and a catalogue scan per shopper.
 *
 * A representation is a function of the version, its scoring mode, the code
 * that computes it (the SIMD kernels) and the model's view of the history
 * (`ModelHistory`: items and types, oldest first) — nothing else. So the memo
 * is keyed by that history itself: a shopper whose history changed since it
 * was written simply is not found and is computed as before, whatever replica
 * stored the events and whenever. A memo written under another version,
 * creation time, scoring mode, width, shortlist length or kernel build is not
 * used at all.
 *
 * Written by the training job for the version it trains (every user's history
 * at that time) and by a server that stops with its warm-up finished (the
 * cache then). Format: a magic line, a JSON header's length (u32 LE) and the
 * header, then 8-aligned little-endian sections: offsets Int32[count + 1] into
 * items Int32[total] and types Int32[total], queries Float32[count × width],
 * normalisers Float64[count], shortlist lengths Int32[count], shortlist
 * indices Int32[count × shortlist] and scores Float32[count × shortlist].
 */
const MAGIC = 'attnrec representations\n';
const FORMAT = 1;
/** The kernels a representation runs through (the network, then the catalogue's scoring). */
const KERNELS = ['inference', 'scoring'] as const;

export interface MemoHeader {
  readonly format: number;
  readonly version: number;
  /** The version's creation time, ms since the epoch: a rebuilt store may reuse a version id, never this pair. */
  readonly createdAt: number;
  readonly scoring: string;
  /** Floats per query. */
  readonly width: number;
  /** Shortlist rows per entry (SHORTLIST, or the catalogue if smaller). */
  readonly shortlist: number;
  /** kernelDigest of the kernels: another build may round differently. */
  readonly kernels: string;
  readonly count: number;
  /** Items over all histories. */
  readonly total: number;
}

/** The memo file of `model`'s scoring mode in the version's artifact directory. */
export function memoPath(artifactPath: string, scoring: string): string {
  return join(artifactPath, `representations-${scoring}.bin`);
}

/** A memo's header without its sizes: what it must say to be used for a version as this build computes it. */
export type MemoBasis = Omit<MemoHeader, 'count' | 'total'>;

/** What a memo must say to be used for `model` (count and total aside). */
export function expectedHeader(model: ServedModel): MemoBasis {
  return {
    format: FORMAT,
    version: model.version,
    createdAt: model.createdAt.getTime(),
    scoring: model.scoring,
    width: model.queryWidth,
    shortlist: Math.min(SHORTLIST, model.numItems),
    kernels: kernelDigest(KERNELS),
  };
}

export interface MemoEntry {
  readonly encoded: ModelHistory;
  readonly representation: Representation;
}

/**
 * Writes `entries` (duplicated histories once) as `path`, atomically: a
 * temporary file beside it, then a rename, so a reader (another replica on
 * the same directory) sees the old memo or the new one, never a part.
 * Returns how many entries it wrote; entries of another width or shortlist
 * length than the header's are left out.
 */
export function writeMemo(path: string, header: MemoBasis, entries: Iterable<MemoEntry>): number {
  const seen = new Set<string>();
  const kept: MemoEntry[] = [];
  let total = 0;
  for (const entry of entries) {
    const { encoded, representation } = entry;
    if (encoded.items.length === 0 || representation.state.query.length !== header.width || representation.shortlist.indices.length > header.shortlist) continue;
    const key = historyKey(encoded.items, encoded.types);
    if (seen.has(key)) continue;
    seen.add(key);
    kept.push(entry);
    total += encoded.items.length;
  }
  const count = kept.length;
  const S = header.shortlist;
  const offsets = new Int32Array(count + 1);
  const items = new Int32Array(total);
  const types = new Int32Array(total);
  const queries = new Float32Array(count * header.width);
  const normalisers = new Float64Array(count);
  const lengths = new Int32Array(count);
  const indices = new Int32Array(count * S);
  const scores = new Float32Array(count * S);
  let at = 0;
  kept.forEach(({ encoded, representation: { state, shortlist } }, i) => {
    offsets[i] = at;
    items.set(encoded.items, at);
    types.set(encoded.types, at);
    at += encoded.items.length;
    queries.set(state.query, i * header.width);
    normalisers[i] = state.logNormaliser;
    lengths[i] = shortlist.indices.length;
    indices.set(shortlist.indices, i * S);
    scores.set(shortlist.scores, i * S);
  });
  offsets[count] = at;
  const head = Buffer.from(JSON.stringify({ ...header, count, total } satisfies MemoHeader), 'utf8');
  const parts: Uint8Array[] = [Buffer.from(MAGIC, 'latin1'), u32(head.length), head];
  let length = parts.reduce((n, p) => n + p.length, 0);
  for (const section of [offsets, items, types, queries, normalisers, lengths, indices, scores]) {
    const pad = (8 - (length % 8)) % 8;
    if (pad > 0) parts.push(new Uint8Array(pad));
    parts.push(new Uint8Array(section.buffer, section.byteOffset, section.byteLength));
    length += pad + section.byteLength;
  }
  const temporary = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    writeFileSync(temporary, Buffer.concat(parts, length));
    renameSync(temporary, path);
  } catch (error) {
    rmSync(temporary, { force: true });
    throw error;
  }
  return count;
}

/** A memo read back: representations by history. */
export class RepresentationMemo {
  private readonly index = new Map<string, number>();

  private constructor(
    readonly header: MemoHeader,
    private readonly offsets: Int32Array,
    private readonly items: Int32Array,
    private readonly types: Int32Array,
    private readonly queries: Float32Array,
    private readonly normalisers: Float64Array,
    private readonly lengths: Int32Array,
    private readonly indices: Int32Array,
    private readonly scores: Float32Array,
  ) {
    for (let i = 0; i < header.count; i++) this.index.set(historyKey(items.subarray(offsets[i]!, offsets[i + 1]!), types.subarray(offsets[i]!, offsets[i + 1]!)), i);
  }

  get size(): number {
    return this.index.size;
  }

  /**
   * The memo at `path` if it was written for what `expected` describes;
   * undefined when there is none, and a MemoMismatch (with the reason) when
   * there is one that does not fit or cannot be read.
   */
  static read(path: string, expected: MemoBasis): RepresentationMemo | MemoMismatch | undefined {
    // The header first: a memo for something else is refused without reading its tables.
    let head: Buffer;
    try {
      const fd = openSync(path, 'r');
      try {
        const buffer = Buffer.alloc(HEAD_BYTES);
        head = buffer.subarray(0, readSync(fd, buffer, 0, HEAD_BYTES, 0));
      } finally {
        closeSync(fd);
      }
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      return { reason: `cannot read ${path}: ${(error as Error).message}` };
    }
    try {
      const checked = checkedHeader(head, expected);
      if ('reason' in checked) return checked;
      return RepresentationMemo.parse(readFileSync(path), expected);
    } catch (error) {
      return { reason: `${path} is not a readable memo: ${(error as Error).message}` };
    }
  }

  private static parse(bytes: Buffer, expected: MemoBasis): RepresentationMemo | MemoMismatch {
    // Checked again on the whole file: another replica may have replaced it since its header was read.
    const header = checkedHeader(bytes, expected);
    if ('reason' in header) return header;
    const { count, total, width, shortlist: S } = header;
    if (!Number.isInteger(count) || !Number.isInteger(total) || count < 0 || total < 0) throw new Error('bad counts');
    // The sections are views of the file's bytes (8-aligned in it); a buffer that does not start 8-aligned is copied once.
    const data = bytes.byteOffset % 8 === 0 ? new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length) : Uint8Array.from(bytes);
    let at = MAGIC.length + 4 + bytes.readUInt32LE(MAGIC.length);
    const take = <T>(make: (buffer: ArrayBuffer, offset: number, length: number) => T, elements: number, size: number): T => {
      at += (8 - (at % 8)) % 8;
      if (at + elements * size > data.length) throw new Error('truncated');
      const view = make(data.buffer as ArrayBuffer, data.byteOffset + at, elements);
      at += elements * size;
      return view;
    };
    const offsets = take((b, o, n) => new Int32Array(b, o, n), count + 1, 4);
    const items = take((b, o, n) => new Int32Array(b, o, n), total, 4);
    const types = take((b, o, n) => new Int32Array(b, o, n), total, 4);
    const queries = take((b, o, n) => new Float32Array(b, o, n), count * width, 4);
    const normalisers = take((b, o, n) => new Float64Array(b, o, n), count, 8);
    const lengths = take((b, o, n) => new Int32Array(b, o, n), count, 4);
    const indices = take((b, o, n) => new Int32Array(b, o, n), count * S, 4);
    const scores = take((b, o, n) => new Float32Array(b, o, n), count * S, 4);
    if (at !== data.length || offsets[count] !== total) throw new Error('sizes do not add up');
    return new RepresentationMemo(header, offsets, items, types, queries, normalisers, lengths, indices, scores);
  }

  /** Whether the memo holds exactly this history. */
  has(encoded: ModelHistory): boolean {
    return this.index.has(historyKey(encoded.items, encoded.types));
  }

  /** The stored representation of exactly this history (fresh arrays), or undefined. */
  get(encoded: ModelHistory): Representation | undefined {
    const i = this.index.get(historyKey(encoded.items, encoded.types));
    if (i === undefined) return undefined;
    const { width, shortlist: S } = this.header;
    const length = this.lengths[i]!;
    return {
      state: { query: this.queries.slice(i * width, (i + 1) * width), logNormaliser: this.normalisers[i]!, items: encoded.items },
      shortlist: { indices: this.indices.slice(i * S, i * S + length), scores: this.scores.slice(i * S, i * S + length) },
    };
  }
}

export interface MemoMismatch {
  readonly reason: string;
}

export function isMismatch(value: RepresentationMemo | MemoMismatch | undefined): value is MemoMismatch {
  return value !== undefined && !(value instanceof RepresentationMemo);
}

/** Bytes read to check a memo's header before its tables (a header is a few hundred). */
const HEAD_BYTES = 4_096;

/** The header at the start of `bytes` (throws on anything that is not one). */
function readHeader(bytes: Buffer): MemoHeader {
  if (bytes.length < MAGIC.length + 4 || bytes.toString('latin1', 0, MAGIC.length) !== MAGIC) throw new Error('no memo header');
  const headLength = bytes.readUInt32LE(MAGIC.length);
  if (MAGIC.length + 4 + headLength > bytes.length) throw new Error('header cut short');
  return JSON.parse(bytes.toString('utf8', MAGIC.length + 4, MAGIC.length + 4 + headLength)) as MemoHeader;
}

/** The header at the start of `bytes` if it is written for `expected`, else why not. */
function checkedHeader(bytes: Buffer, expected: MemoBasis): MemoHeader | MemoMismatch {
  const header = readHeader(bytes);
  for (const key of Object.keys(expected) as (keyof MemoBasis)[]) {
    if (header[key] !== expected[key]) return { reason: `written for ${key} ${String(header[key])}, not ${String(expected[key])}` };
  }
  return header;
}

/** A history as a map key: its items, then its types. */
function historyKey(items: ArrayLike<number>, types: ArrayLike<number>): string {
  let key = '';
  for (let i = 0; i < items.length; i++) key += `${items[i]},`;
  key += '|';
  for (let i = 0; i < types.length; i++) key += `${types[i]},`;
  return key;
}

function u32(value: number): Uint8Array {
  const out = Buffer.alloc(4);
  out.writeUInt32LE(value);
  return out;
}
