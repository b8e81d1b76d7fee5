import { instantiateKernel, layoutKernelMemory, type KernelMemory } from '../model/kernel-module.js';

/**
 * The subspace iteration of the spectral item embedding in the SIMD kernel
 * (kernels/spectral.ts → generated/kernels/spectral.wasm): the sparse product
 * with the co-occurrence matrix and Gram–Schmidt, the two steps that cost
 * ~4 s an iteration on amazon-games in JavaScript. The matrix and the basis
 * stay in the kernel's memory between calls. Columns are padded to a
 * multiple of 4 rows (the padding rows are empty and stay zero).
 */
export interface SpectralKernel {
  /** Copies the matrix (CSR over `rows` rows) and lays out a basis of `width` columns. */
  load(matrix: { readonly offsets: Int32Array; readonly columns: Int32Array; readonly weights: Float32Array }, rows: number, width: number): SubspaceBasis;
}

/** A basis of `width` columns over the padded rows, column-major, in the kernel's memory. */
export interface SubspaceBasis {
  readonly paddedRows: number;
  /** Sets the basis from [width][paddedRows] column-major values. */
  set(columns: Float32Array): void;
  /** basis ← (S + I) basis. */
  multiply(): void;
  /** Modified Gram–Schmidt on the basis columns. */
  orthonormalise(): void;
  /** Qᵀ (S + I) Q, [width × width] row-major (leaves the basis as it was). */
  projected(): Float64Array;
  /** A copy of the basis, column-major. */
  read(): Float32Array;
}

interface Exports {
  readonly memory: KernelMemory;
  shiftedProduct(rows: number, width: number, offsets: number, columns: number, weights: number, x: number, out: number): void;
  toColumns(rows: number, width: number, src: number, dst: number): void;
  toRows(rows: number, width: number, src: number, dst: number): void;
  orthonormalise(rows: number, width: number, q: number): void;
  gram(rows: number, width: number, a: number, b: number, out: number): void;
}

/**
 * A new instance of the kernel, or null when it is not built (then the
 * embedding runs in JavaScript). Not shared: a WebAssembly memory never
 * shrinks, and this one holds the whole matrix (~90 MB on amazon-games), so
 * each embedding gets its own instance and the memory goes with it.
 */
export function spectralKernel(): SpectralKernel | null {
  const wasm = instantiateKernel<Exports>('spectral');
  return wasm ? wrap(wasm) : null;
}

function wrap(wasm: Exports): SpectralKernel {
  return {
    load(matrix, rows, width) {
      if (width % 4 !== 0) throw new RangeError(`spectral kernel: width ${width} is not a multiple of 4`);
      const paddedRows = Math.ceil(rows / 4) * 4;
      const nnz = matrix.columns.length;
      const floats = paddedRows * width;
      const [oo, co, wo, xo, yo, qo, go] = layoutKernelMemory(wasm.memory, [4 * (paddedRows + 1), 4 * nnz, 4 * nnz, 4 * floats, 4 * floats, 4 * floats, 8 * width * width]) as [number, number, number, number, number, number, number];
      const offsets = new Int32Array(wasm.memory.buffer, oo, paddedRows + 1);
      offsets.set(matrix.offsets.subarray(0, rows + 1));
      offsets.fill(matrix.offsets[rows]!, rows + 1);
      new Int32Array(wasm.memory.buffer, co, nnz).set(matrix.columns);
      new Float32Array(wasm.memory.buffer, wo, nnz).set(matrix.weights);
      // (S + I) Q: to rows, the product, back to columns.
      const product = (into: number): void => {
        wasm.toRows(paddedRows, width, qo, xo);
        wasm.shiftedProduct(paddedRows, width, oo, co, wo, xo, yo);
        wasm.toColumns(paddedRows, width, yo, into);
      };
      return {
        paddedRows,
        set(columns) {
          new Float32Array(wasm.memory.buffer, qo, floats).set(columns);
        },
        multiply() {
          product(qo);
        },
        orthonormalise() {
          wasm.orthonormalise(paddedRows, width, qo);
        },
        projected() {
          product(xo);
          wasm.gram(paddedRows, width, qo, xo, go);
          return Float64Array.from(new Float64Array(wasm.memory.buffer, go, width * width));
        },
        read() {
          return Float32Array.from(new Float32Array(wasm.memory.buffer, qo, floats));
        },
      };
    },
  };
}
