import { topIndices } from './beam-search.js';
import { addTerm, type CooccurrenceTerm } from './cooccurrence-blend.js';
import { instantiateKernel, layoutKernelMemory, type KernelMemory } from './kernel-module.js';
import { copySteps, rowSteps, runSteps, type Steps } from './steps.js';

/**
 * Dot products of one query vector with every row of a fixed table (the
 * output layer, or unit-length item embeddings for similarity), for serving.
 * The table is copied once into the memory of a private instance of the SIMD
 * kernel (kernels/scoring.ts); each call then copies in only the query. With
 * the kernel missing (not built) a JavaScript loop gives the same numbers,
 * about ten times slower.
 */
export class ItemScorer {
  readonly rows: number;
  readonly cols: number;
  /** The most queries scoresOf takes in one call. */
  readonly batch: number;
  private readonly stride: number;
  private readonly wasm: Exports | undefined;
  private readonly table: Float32Array;
  private readonly query: Float32Array;
  private readonly out: Float32Array;
  /** The first query's row of out: what scores() returns. */
  private readonly first: Float32Array;
  private readonly topIndices: Int32Array;
  private readonly topValues: Float32Array;
  private readonly quantised: Quantised | undefined;

  /**
   * table: [rows, cols] row-major, or another scorer's tables of the same shape (exportTables: copied, not
   * computed); batch: room for this many queries at once (scoresOf, shortlists).
   * `quantised` also keeps the table in 8-bit integers for shortlists() (see there); it needs the kernel.
   * The tables are filled in before the constructor returns, or, given `deferCopy`, handed
   * over as steps the caller runs before first use (see ItemScorer.build).
   */
  constructor(table: Float32Array | ScorerTables, rows: number, cols: number, batch = 1, options: ScorerOptions = {}) {
    const values = table instanceof Float32Array ? table : undefined;
    const prebuilt = table instanceof Float32Array ? undefined : table;
    if (prebuilt) checkTables(prebuilt, rows, cols);
    if (values && values.length !== rows * cols) throw new RangeError(`table has ${values.length} values, expected ${rows} x ${cols}`);
    this.rows = rows;
    this.cols = cols;
    this.batch = batch;
    this.stride = Math.ceil(cols / 4) * 4;
    this.wasm = instantiate();
    const quantised = options.quantised === true && this.wasm !== undefined;
    const stride8 = Math.ceil(cols / 16) * 16;
    const sizes = [4 * rows * this.stride, 4 * batch * this.stride, 4 * batch * rows, 4 * TOP_LIMIT, 4 * TOP_LIMIT];
    if (quantised) sizes.push(rows * stride8, 4 * rows, 4 * rows, 2 * batch * stride8, 4 * batch, 4 * MAX_CANDIDATES);
    const offsets = this.wasm ? layoutKernelMemory(this.wasm.memory, sizes) : sizes.map((_, i) => sizes.slice(0, i).reduce((a, b) => a + b, 0));
    const [tableAt, queryAt, outAt, indicesAt, valuesAt] = offsets as [number, number, number, number, number];
    const buffer = this.wasm ? this.wasm.memory.buffer : new ArrayBuffer(sizes.reduce((a, b) => a + b, 0));
    this.table = new Float32Array(buffer, tableAt, rows * this.stride);
    this.query = new Float32Array(buffer, queryAt, batch * this.stride);
    this.out = new Float32Array(buffer, outAt, batch * rows);
    this.first = this.out.subarray(0, rows);
    this.topIndices = new Int32Array(buffer, indicesAt, TOP_LIMIT);
    this.topValues = new Float32Array(buffer, valuesAt, TOP_LIMIT);
    let fill: Steps<void> = values ? rowSteps(0, rows, cols, (r) => this.table.set(values.subarray(r * cols, (r + 1) * cols), r * this.stride)) : copySteps(this.table, prebuilt!.table);
    if (quantised) {
      const [, , , , , table8At, scalesAt, l1At, query16At, qscalesAt, candidatesAt] = offsets as number[];
      const q: Quantised = {
        stride: stride8,
        table: new Int8Array(buffer, table8At, rows * stride8),
        scales: new Float32Array(buffer, scalesAt!, rows),
        rowL1: new Float32Array(buffer, l1At!, rows),
        query: new Int16Array(buffer, query16At, batch * stride8),
        queryScales: new Float32Array(buffer, qscalesAt!, batch),
        candidates: new Int32Array(buffer, candidatesAt!, MAX_CANDIDATES),
        marks: new Uint8Array(rows),
        queryLimit: Math.min(32_767, Math.floor(I32_LIMIT / (ROW_LIMIT * stride8))),
      };
      this.quantised = q;
      const copy = fill;
      const { wasm, stride } = this;
      const built = prebuilt?.quantised;
      fill = built
        ? (function* () {
            yield* copy;
            yield* copySteps(q.table, built.table);
            q.scales.set(built.scales);
            q.rowL1.set(built.rowL1);
          })()
        : // Row by row from the float32 copy, in the SIMD kernel (the JavaScript loop it replaced, bit for bit on
          // the test's rows; at every load of a version in each worker: amazon-games' 6.1 M values in ~7.5 ms into 16
          // bits, 69 ms one value at a time, bench/scratch/quant-time.ts). Each row's Σ|value| is rounded up, so the bound in
          // shortlists() stays a bound.
          (function* () {
            yield* copy;
            yield* rowSteps(0, rows, cols, (r) => wasm!.quantiseRows(tableAt, stride, cols, r, r + 1, ROW_LIMIT, table8At!, stride8, scalesAt!, l1At!));
          })();
    }
    if (options.deferCopy) options.deferCopy(fill);
    else runSteps(fill);
  }

  /** The constructor as steps: the tables' copy (the first touch of their pages, tens of ms) in pieces. */
  static *build(table: Float32Array | ScorerTables, rows: number, cols: number, batch = 1, options: Omit<ScorerOptions, 'deferCopy'> = {}): Steps<ItemScorer> {
    let copy: Steps<void> | undefined;
    const scorer = new ItemScorer(table, rows, cols, batch, { ...options, deferCopy: (steps) => (copy = steps) });
    yield;
    yield* copy!;
    return scorer;
  }

  /**
   * The tables as built (float32, and the 8-bit copy with its scales and row sums when there is one), copied
   * into shared memory: a scorer of the same table on another thread is built from them (the constructor)
   * by copying instead of computing.
   */
  *exportTables(): Steps<ScorerTables> {
    const table = new Float32Array(new SharedArrayBuffer(this.table.byteLength));
    yield* copySteps(table, this.table);
    const q = this.quantised;
    if (!q) return { rows: this.rows, cols: this.cols, stride: this.stride, table };
    const table8 = new Int8Array(new SharedArrayBuffer(q.table.byteLength));
    yield* copySteps(table8, q.table);
    const scales = new Float32Array(new SharedArrayBuffer(q.scales.byteLength));
    scales.set(q.scales);
    const rowL1 = new Float32Array(new SharedArrayBuffer(q.rowL1.byteLength));
    rowL1.set(q.rowL1);
    return { rows: this.rows, cols: this.cols, stride: this.stride, table, quantised: { stride: q.stride, table: table8, scales, rowL1 } };
  }

  /** Whether shortlists() scores through the 8-bit table. */
  get isQuantised(): boolean {
    return this.quantised !== undefined;
  }

  /** Whether the SIMD kernel runs (false: the JavaScript fallback). */
  get accelerated(): boolean {
    return this.wasm !== undefined;
  }

  /** table · x for every row. The result is a view, overwritten by the next call: copy what you keep. */
  scores(x: ArrayLike<number>): Float32Array {
    if (x.length !== this.cols) throw new RangeError(`query has ${x.length} values, expected ${this.cols}`);
    for (let i = 0; i < this.cols; i++) this.query[i] = x[i]!;
    if (this.wasm) {
      this.wasm.matvec(this.table.byteOffset, this.rows, this.stride, this.query.byteOffset, this.out.byteOffset);
      return this.first;
    }
    const { table, query, first: out, stride } = this;
    for (let r = 0; r < this.rows; r++) {
      let s = 0;
      const o = r * stride;
      for (let i = 0; i < stride; i++) s += table[o + i]! * query[i]!;
      out[r] = s;
    }
    return out;
  }

  /**
   * Scores of `count` queries ([count, cols] row-major) in one pass over the
   * table: [count, rows], a view overwritten by the next call. The table
   * streams from memory once for the batch instead of once per query.
   */
  scoresOf(queries: Float32Array, count: number): Float32Array {
    if (count < 1 || count > this.batch || queries.length !== count * this.cols) throw new RangeError(`scoresOf takes 1..${this.batch} queries of ${this.cols} values; got ${queries.length} values for ${count}`);
    for (let b = 0; b < count; b++) this.query.set(queries.subarray(b * this.cols, (b + 1) * this.cols), b * this.stride);
    const out = this.out.subarray(0, count * this.rows);
    if (this.wasm) {
      this.wasm.scoreBatch(this.table.byteOffset, this.rows, this.stride, this.query.byteOffset, count, this.out.byteOffset, this.rows);
      return out;
    }
    for (let b = 0; b < count; b++) out.set(this.scores(queries.subarray(b * this.cols, (b + 1) * this.cols)), b * this.rows);
    return out;
  }

  /**
   * log Σ exp over rows 1.. of the scores the last call to scores() returned
   * (row 0 is the padding item): the softmax normaliser. With `query`, of
   * that query's row of the last scoresOf().
   */
  logSumExpOfLast(query = 0): number {
    if (this.wasm) return this.wasm.logSumExp(this.out.byteOffset + 4 * query * this.rows, this.rows);
    const row = this.out.subarray(query * this.rows, (query + 1) * this.rows);
    let max = -Infinity;
    for (let i = 1; i < this.rows; i++) if (row[i]! > max) max = row[i]!;
    let sum = 0;
    for (let i = 1; i < this.rows; i++) sum += Math.exp(row[i]! - max);
    return max + Math.log(sum);
  }

  /**
   * The k best rows (1.., row 0 is padding) of query `query`'s scores in the
   * last scoresOf() (or of the last scores() for query 0), best first, ties
   * to the lower row: copies.
   */
  topOfLast(k: number, query = 0): { indices: Int32Array; scores: Float32Array } {
    if (!Number.isInteger(k) || k < 1 || k > TOP_LIMIT) throw new RangeError(`k must be 1..${TOP_LIMIT}`);
    const row = this.out.subarray(query * this.rows, (query + 1) * this.rows);
    if (this.wasm) {
      const n = this.wasm.topK(row.byteOffset, this.rows, k, this.topIndices.byteOffset, this.topValues.byteOffset);
      return { indices: this.topIndices.slice(0, n), scores: this.topValues.slice(0, n) };
    }
    const best = topIndices(row, k, (i) => i !== 0);
    return { indices: Int32Array.from(best), scores: Float32Array.from(best, (i) => row[i]!) };
  }

  /**
   * Each query's softmax normaliser and its k best rows (1..; best first, ties
   * to the lower row), with `terms[b]` (query b's co-occurrence term, if
   * any) added to its scores first. Queries: [count,
   * cols] row-major, count <= batch. The shortlist's rows and scores are
   * those of the float32 table (scoresOf, then topOfLast), to the bit.
   *
   * With the 8-bit table (`quantised`), the catalogue is scored through it
   * (a quarter of the bytes: one query at a time, reading the table is the
   * cost) and only the rows that can reach the top k are rescored from the
   * float32 rows. Row r's quantised
   * score is within a bound eps_r of its float32 score (from its scale and
   * Σ|value|, and the query's). Each of the quantised top k scores at least
   * (its quantised score − its bound) in float32, so the float32 k-th score
   * is at least the lowest of those, the line; a row whose quantised score +
   * eps_r is below the line cannot be in the float32 top k. Every other row
   * is rescored (~k + 26 rows on the serve benchmark's table), and the top k
   * of those is the float32 top k. The normaliser is taken over the rescored
   * rows and the others' quantised scores: it moved by at most 1.4e-4 on 512
   * real histories (5.3e-5 through the 16-bit table used before 2026-12-05;
   * docs/serving-performance.md). With more than
   * MAX_CANDIDATES rows to rescore, that query is scored in float32.
   */
  shortlists(queries: Float32Array, count: number, k: number, terms: readonly (CooccurrenceTerm | undefined)[] = []): ScoredShortlist[] {
    const q = this.quantised;
    if (!q || !this.wasm) {
      const scores = this.scoresOf(queries, count);
      return Array.from({ length: count }, (_, b) => {
        const term = terms[b];
        if (term) addTerm(scores.subarray(b * this.rows, (b + 1) * this.rows), term);
        return { logNormaliser: this.logSumExpOfLast(b), ...this.topOfLast(k, b) };
      });
    }
    if (count < 1 || count > this.batch || queries.length !== count * this.cols) throw new RangeError(`shortlists takes 1..${this.batch} queries of ${this.cols} values; got ${queries.length} values for ${count}`);
    const { cols, rows, stride, wasm } = this;
    // Row r's quantised score is within eps_r = A_b · scale_r + C_b · l1_r + D of its float32 score: each value of
    // the row is off by at most half the row's scale, each of the query by half the query's scale (and the quantised
    // row's values are within |w| + half a row scale), plus float32 rounding of both sums (a few ulps of Σ|x||w|).
    const A = new Float64Array(count);
    const C = new Float64Array(count);
    for (let b = 0; b < count; b++) {
      const x = queries.subarray(b * cols, (b + 1) * cols);
      this.query.set(x, b * stride);
      let max = 0;
      let l1 = 0;
      for (let i = 0; i < cols; i++) {
        const v = Math.abs(x[i]!);
        if (v > max) max = v;
        l1 += v;
      }
      const scale = Math.fround(max / q.queryLimit);
      q.queryScales[b] = scale;
      const at = b * q.stride;
      for (let i = 0; i < cols; i++) q.query[at + i] = scale > 0 ? Math.round(x[i]! / scale) : 0;
      A[b] = 1.01 * (l1 / 2 + (scale * cols) / 4);
      C[b] = 1.01 * (scale / 2 + (cols / 4 + 8) * 2 ** -24 * max);
    }
    wasm.scoreBatchI8(q.table.byteOffset, q.scales.byteOffset, rows, q.stride, q.query.byteOffset, q.queryScales.byteOffset, count, this.out.byteOffset, rows);
    const results: ScoredShortlist[] = [];
    for (let b = 0; b < count; b++) {
      const row = this.out.subarray(b * rows, (b + 1) * rows);
      const term = terms[b];
      if (term) addTerm(row, term);
      const xAt = this.query.byteOffset + 4 * b * stride;
      // The quantised top k: each of them scores at least its quantised score − its bound in float32, so the
      // float32 k-th score is at least the lowest of those (`line`); a row can reach the float32 top k only if its
      // quantised score + its bound reaches the line. D: the rounding of the term's addition and of the bound itself.
      const n = wasm.topK(row.byteOffset, rows, k, this.topIndices.byteOffset, this.topValues.byteOffset);
      let line = Infinity;
      // The largest |score| among them is at one end of the (sorted) list.
      const D = n > 0 ? 2 ** -20 * (1 + Math.max(Math.abs(this.topValues[0]!), Math.abs(this.topValues[n - 1]!))) : 0;
      for (let j = 0; j < n; j++) {
        const r = this.topIndices[j]!;
        line = Math.min(line, this.topValues[j]! - (A[b]! * q.scales[r]! + C[b]! * q.rowL1[r]! + D));
      }
      const found = Number.isFinite(line) ? wasm.candidates(row.byteOffset, q.scales.byteOffset, q.rowL1.byteOffset, rows, Math.fround(line - D), A[b]!, C[b]!, 2 * D, q.candidates.byteOffset, MAX_CANDIDATES) : -1;
      if (found < 0) {
        // Too many rows near the line (or nothing finite): this query in float32.
        wasm.matvec(this.table.byteOffset, rows, stride, xAt, row.byteOffset);
        if (term) addTerm(row, term);
        results.push({ logNormaliser: wasm.logSumExp(row.byteOffset, rows), ...this.topOfLast(k, b) });
        continue;
      }
      wasm.rescore(this.table.byteOffset, stride, xAt, q.candidates.byteOffset, found, row.byteOffset);
      const rescored = q.candidates.slice(0, found);
      if (term) {
        for (const r of rescored) q.marks[r] = 1;
        for (let j = 0; j < term.items.length; j++) if (q.marks[term.items[j]!] === 1) row[term.items[j]!]! += term.values[j]!;
        for (const r of rescored) q.marks[r] = 0;
      }
      // The float32 top k is among the rescored rows, in row order: a stable sort keeps ties to the lower row.
      const best = Array.from(rescored).sort((i, j) => row[j]! - row[i]!).slice(0, Math.min(k, found));
      results.push({ logNormaliser: wasm.logSumExp(row.byteOffset, rows), indices: Int32Array.from(best), scores: Float32Array.from(best, (r) => row[r]!) });
    }
    return results;
  }

  /**
   * The table as it sits in the kernel's memory: row r at table[r * stride]
   * (stride: cols rounded up to 4). A live view: whoever reads it (the
   * inference engine, for its input embeddings) must not write to it.
   */
  tableView(): { readonly table: Float32Array; readonly stride: number } {
    return { table: this.table, stride: this.stride };
  }

  /** A copy of row r (without padding). */
  row(r: number): Float32Array {
    return this.table.slice(r * this.stride, r * this.stride + this.cols);
  }
}

/** The longest list topOfLast returns. */
export const TOP_LIMIT = 1_024;

/** The most rows shortlists() rescores for one query before it scores that query in float32. */
export const MAX_CANDIDATES = 4_096;

/** A quantised row's values are within ±ROW_LIMIT (its scale: its largest |value| / ROW_LIMIT). */
const ROW_LIMIT = 127;
/** The kernel's dot products are summed in i32: |row| · |query| · stride stays below this. */
const I32_LIMIT = 2 ** 31 - 1;

/** A scorer's tables in shared memory (ItemScorer.exportTables), [rows, stride] row-major, rows padded with zeros. */
export interface ScorerTables {
  readonly rows: number;
  readonly cols: number;
  readonly stride: number;
  readonly table: Float32Array;
  /** The 8-bit copy, one scale and one rounded-up Σ|value| per row. */
  readonly quantised?: { readonly stride: number; readonly table: Int8Array; readonly scales: Float32Array; readonly rowL1: Float32Array };
}

/** Exported tables fit a scorer of rows x cols, or a RangeError (a message from another thread is not trusted blindly). */
function checkTables(tables: ScorerTables, rows: number, cols: number): void {
  const stride = Math.ceil(cols / 4) * 4;
  const q = tables.quantised;
  const fits =
    tables.rows === rows &&
    tables.cols === cols &&
    tables.stride === stride &&
    tables.table instanceof Float32Array &&
    tables.table.length === rows * stride &&
    (!q || (q.stride === Math.ceil(cols / 16) * 16 && q.table instanceof Int8Array && q.table.length === rows * q.stride && q.scales instanceof Float32Array && q.scales.length === rows && q.rowL1 instanceof Float32Array && q.rowL1.length === rows));
  if (!fits) throw new RangeError(`the exported tables do not fit a table of ${rows} x ${cols}`);
}

export interface ScorerOptions {
  /** Keep an 8-bit copy of the table for shortlists() (needs the SIMD kernel; ignored without it). */
  readonly quantised?: boolean;
  /** Hand the tables' filling over as steps instead of running it in the constructor (see build). */
  readonly deferCopy?: (fill: Steps<void>) => void;
}

/** A query's softmax normaliser (log Σ exp over rows 1..) and its best rows, best first. */
export interface ScoredShortlist {
  readonly logNormaliser: number;
  readonly indices: Int32Array;
  readonly scores: Float32Array;
}

/** The 8-bit copy of the table, its scales, and room for queries (in 16 bits) and candidates (see shortlists). */
interface Quantised {
  /** Values per row: cols rounded up to 16. */
  readonly stride: number;
  readonly table: Int8Array;
  readonly scales: Float32Array;
  readonly query: Int16Array;
  readonly queryScales: Float32Array;
  readonly candidates: Int32Array;
  /** Zero except while a query's candidates are marked. */
  readonly marks: Uint8Array;
  /** A quantised query's values are within ±queryLimit (ROW_LIMIT · queryLimit · stride < 2^31). */
  readonly queryLimit: number;
  /** Each row's Σ|value| (rounded up): with its scale, the row's term of the error bound. */
  readonly rowL1: Float32Array;
}

interface Exports {
  readonly memory: KernelMemory;
  matvec(table: number, rows: number, stride: number, x: number, out: number): void;
  logSumExp(scores: number, n: number): number;
  scoreBatch(table: number, rows: number, stride: number, queries: number, n: number, out: number, ldo: number): void;
  topK(scores: number, n: number, k: number, indices: number, values: number): number;
  scoreBatchI8(table: number, scales: number, rows: number, stride: number, queries: number, qscales: number, n: number, out: number, ldo: number): void;
  candidates(scores: number, scales: number, l1s: number, n: number, line: number, a: number, c: number, d: number, indices: number, max: number): number;
  rescore(table: number, stride: number, x: number, indices: number, count: number, scores: number): void;
  quantiseRows(table: number, stride: number, cols: number, from: number, to: number, rowLimit: number, out8: number, stride8: number, scales: number, l1s: number): void;
}

/** A fresh instance (own memory) per table, or undefined when the kernel is not built. */
function instantiate(): Exports | undefined {
  return instantiateKernel<Exports>('scoring');
}
