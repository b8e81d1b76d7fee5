import { topIndices } from './beam-search.js';
import { instantiateKernel, layoutKernelMemory, type KernelMemory } from './kernel-module.js';
import { rowSteps, runSteps, type Steps } from './steps.js';

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

  /**
   * table: [rows, cols] row-major; batch: room for this many queries at once (scoresOf).
   * The table is copied in before the constructor returns, or, given `deferCopy`, handed
   * over as steps the caller runs before first use (see ItemScorer.build).
   */
  constructor(table: Float32Array, rows: number, cols: number, batch = 1, deferCopy?: (copy: Steps<void>) => void) {
    if (table.length !== rows * cols) throw new RangeError(`table has ${table.length} values, expected ${rows} x ${cols}`);
    this.rows = rows;
    this.cols = cols;
    this.batch = batch;
    this.stride = Math.ceil(cols / 4) * 4;
    this.wasm = instantiate();
    const sizes = [4 * rows * this.stride, 4 * batch * this.stride, 4 * batch * rows, 4 * TOP_LIMIT, 4 * TOP_LIMIT];
    const offsets = this.wasm ? layoutKernelMemory(this.wasm.memory, sizes) : sizes.map((_, i) => sizes.slice(0, i).reduce((a, b) => a + b, 0));
    const [tableAt, queryAt, outAt, indicesAt, valuesAt] = offsets as [number, number, number, number, number];
    const buffer = this.wasm ? this.wasm.memory.buffer : new ArrayBuffer(sizes.reduce((a, b) => a + b, 0));
    this.table = new Float32Array(buffer, tableAt, rows * this.stride);
    this.query = new Float32Array(buffer, queryAt, batch * this.stride);
    this.out = new Float32Array(buffer, outAt, batch * rows);
    this.first = this.out.subarray(0, rows);
    this.topIndices = new Int32Array(buffer, indicesAt, TOP_LIMIT);
    this.topValues = new Float32Array(buffer, valuesAt, TOP_LIMIT);
    const copy = rowSteps(0, rows, cols, (r) => this.table.set(table.subarray(r * cols, (r + 1) * cols), r * this.stride));
    if (deferCopy) deferCopy(copy);
    else runSteps(copy);
  }

  /** The constructor as steps: the table's copy (the first touch of its pages, tens of ms) in pieces. */
  static *build(table: Float32Array, rows: number, cols: number, batch = 1): Steps<ItemScorer> {
    let copy: Steps<void> | undefined;
    const scorer = new ItemScorer(table, rows, cols, batch, (steps) => (copy = steps));
    yield;
    yield* copy!;
    return scorer;
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

interface Exports {
  readonly memory: KernelMemory;
  matvec(table: number, rows: number, stride: number, x: number, out: number): void;
  logSumExp(scores: number, n: number): number;
  scoreBatch(table: number, rows: number, stride: number, queries: number, n: number, out: number, ldo: number): void;
  topK(scores: number, n: number, k: number, indices: number, values: number): number;
}

/** A fresh instance (own memory) per table, or undefined when the kernel is not built. */
function instantiate(): Exports | undefined {
  return instantiateKernel<Exports>('scoring');
}
