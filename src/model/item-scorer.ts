import { instantiateKernel, layoutKernelMemory, type KernelMemory } from './kernel-module.js';

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
  private readonly stride: number;
  private readonly wasm: Exports | undefined;
  private readonly table: Float32Array;
  private readonly query: Float32Array;
  private readonly out: Float32Array;

  /** table: [rows, cols] row-major. */
  constructor(table: Float32Array, rows: number, cols: number) {
    if (table.length !== rows * cols) throw new RangeError(`table has ${table.length} values, expected ${rows} x ${cols}`);
    this.rows = rows;
    this.cols = cols;
    this.stride = Math.ceil(cols / 4) * 4;
    this.wasm = instantiate();
    const sizes = [4 * rows * this.stride, 4 * this.stride, 4 * rows];
    const [tableAt, queryAt, outAt] = (this.wasm ? layoutKernelMemory(this.wasm.memory, sizes) : [0, 4 * rows * this.stride, 4 * (rows * this.stride + this.stride)]) as [number, number, number];
    const buffer = this.wasm ? this.wasm.memory.buffer : new ArrayBuffer(sizes.reduce((a, b) => a + b, 0));
    this.table = new Float32Array(buffer, tableAt, rows * this.stride);
    this.query = new Float32Array(buffer, queryAt, this.stride);
    this.out = new Float32Array(buffer, outAt, rows);
    for (let r = 0; r < rows; r++) this.table.set(table.subarray(r * cols, (r + 1) * cols), r * this.stride);
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
      return this.out;
    }
    const { table, query, out, stride } = this;
    for (let r = 0; r < this.rows; r++) {
      let s = 0;
      const o = r * stride;
      for (let i = 0; i < stride; i++) s += table[o + i]! * query[i]!;
      out[r] = s;
    }
    return out;
  }

  /**
   * log Σ exp over rows 1.. of the scores the last call to scores() returned
   * (row 0 is the padding item): the softmax normaliser.
   */
  logSumExpOfLast(): number {
    if (this.wasm) return this.wasm.logSumExp(this.out.byteOffset, this.rows);
    let max = -Infinity;
    for (let i = 1; i < this.rows; i++) if (this.out[i]! > max) max = this.out[i]!;
    let sum = 0;
    for (let i = 1; i < this.rows; i++) sum += Math.exp(this.out[i]! - max);
    return max + Math.log(sum);
  }

  /** A copy of row r (without padding). */
  row(r: number): Float32Array {
    return this.table.slice(r * this.stride, r * this.stride + this.cols);
  }
}

interface Exports {
  readonly memory: KernelMemory;
  matvec(table: number, rows: number, stride: number, x: number, out: number): void;
  logSumExp(scores: number, n: number): number;
}

/** A fresh instance (own memory) per table, or undefined when the kernel is not built. */
function instantiate(): Exports | undefined {
  return instantiateKernel<Exports>('scoring');
}
