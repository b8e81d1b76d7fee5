// The two heavy steps of the spectral item embedding's subspace iteration
// (src/train/spectral-embedding.ts), in AssemblyScript with 128-bit SIMD.
// Compiled by scripts/build-kernels.ts to generated/kernels/spectral.wasm;
// driven by src/train/spectral-kernel.ts.
//
// The co-occurrence matrix S is CSR: offsets [rows + 1] int32, columns and
// weights [nnz] (int32, float32). Bases are float32, width a multiple of 4.

// out [rows, width] = x + S x, both row-major.
export function shiftedProduct(rows: i32, width: i32, offsets: usize, columns: usize, weights: usize, x: usize, out: usize): void {
  const rowBytes = <usize>(width << 2);
  for (let i = 0; i < rows; i++) {
    const target = out + <usize>i * rowBytes;
    memory.copy(target, x + <usize>i * rowBytes, rowBytes);
    const end = load<i32>(offsets + (<usize>(i + 1) << 2));
    for (let k = load<i32>(offsets + (<usize>i << 2)); k < end; k++) {
      const w = f32x4.splat(load<f32>(weights + (<usize>k << 2)));
      const source = x + <usize>load<i32>(columns + (<usize>k << 2)) * rowBytes;
      for (let d = 0; d < width; d += 4) {
        const at = <usize>(d << 2);
        v128.store(target + at, f32x4.add(v128.load(target + at), f32x4.mul(w, v128.load(source + at))));
      }
    }
  }
}

// dst [width][rows] (column-major) = src [rows, width] (row-major), and back.
export function toColumns(rows: i32, width: i32, src: usize, dst: usize): void {
  for (let i = 0; i < rows; i++) {
    for (let d = 0; d < width; d++) store<f32>(dst + ((<usize>d * <usize>rows + <usize>i) << 2), load<f32>(src + ((<usize>i * <usize>width + <usize>d) << 2)));
  }
}

export function toRows(rows: i32, width: i32, src: usize, dst: usize): void {
  for (let d = 0; d < width; d++) {
    for (let i = 0; i < rows; i++) store<f32>(dst + ((<usize>i * <usize>width + <usize>d) << 2), load<f32>(src + ((<usize>d * <usize>rows + <usize>i) << 2)));
  }
}

// Σ a[n] b[n] over `length` floats (a multiple of 4), products accumulated in float64.
@inline function dot(a: usize, b: usize, length: i32): f64 {
  let low = f64x2.splat(0);
  let high = f64x2.splat(0);
  for (let n = 0; n < length; n += 4) {
    const at = <usize>(n << 2);
    const p = f32x4.mul(v128.load(a + at), v128.load(b + at));
    low = f64x2.add(low, f64x2.promote_low_f32x4(p));
    high = f64x2.add(high, f64x2.promote_low_f32x4(i8x16.shuffle(p, p, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7)));
  }
  return f64x2.extract_lane(low, 0) + f64x2.extract_lane(low, 1) + f64x2.extract_lane(high, 0) + f64x2.extract_lane(high, 1);
}

// Modified Gram–Schmidt on the columns of q [width][rows] (column-major,
// rows a multiple of 4), in place. A column left with under 1e-4 of its
// length once the others are taken out lies in their span (a basis wider
// than the catalogue's rank): it becomes zero, not normalised rounding noise.
export function orthonormalise(rows: i32, width: i32, q: usize): void {
  const columnBytes = <usize>(rows << 2);
  for (let j = 0; j < width; j++) {
    const column = q + <usize>j * columnBytes;
    const before = Math.sqrt(dot(column, column, rows));
    for (let i = 0; i < j; i++) {
      const previous = q + <usize>i * columnBytes;
      const r = f32x4.splat(<f32>dot(previous, column, rows));
      for (let n = 0; n < rows; n += 4) {
        const at = <usize>(n << 2);
        v128.store(column + at, f32x4.sub(v128.load(column + at), f32x4.mul(r, v128.load(previous + at))));
      }
    }
    const norm = Math.sqrt(dot(column, column, rows));
    const scale = f32x4.splat(norm > 1e-4 * before ? <f32>(1 / norm) : 0);
    for (let n = 0; n < rows; n += 4) {
      const at = <usize>(n << 2);
      v128.store(column + at, f32x4.mul(v128.load(column + at), scale));
    }
  }
}

// out [width, width] (float64) = aᵀ b for column-major a, b [width][rows].
export function gram(rows: i32, width: i32, a: usize, b: usize, out: usize): void {
  const columnBytes = <usize>(rows << 2);
  for (let i = 0; i < width; i++) {
    for (let j = 0; j < width; j++) store<f64>(out + ((<usize>i * <usize>width + <usize>j) << 3), dot(a + <usize>i * columnBytes, b + <usize>j * columnBytes, rows));
  }
}
