// Scores of every catalogue item for one query vector, in AssemblyScript with
// 128-bit SIMD. Compiled by scripts/build-kernels.ts to
// generated/kernels/scoring.wasm; driven by src/model/scoring-kernel.ts.
//
// table is [rows, stride] float32, row-major, stride a multiple of 4 (rows
// padded with zeros); x is [stride]. out[r] = table[r] · x. The API calls
// this once per recommendation: 23,716 × 64 products take ~0.2 ms here
// against ~2.5 ms in a JavaScript loop. scoreBatch scores several queries in
// one pass over the table, topK picks a shortlist.

import { exp4, horizontal } from './simd-math';

export function matvec(table: usize, rows: i32, stride: i32, x: usize, out: usize): void {
  const rowBytes = <usize>(stride << 2);
  let r = 0;
  // Four rows per pass: x is loaded once for four dot products.
  for (; r + 4 <= rows; r += 4) {
    const a = table + <usize>r * rowBytes;
    const b = a + rowBytes;
    const c = b + rowBytes;
    const d = c + rowBytes;
    let sa = f32x4.splat(0);
    let sb = f32x4.splat(0);
    let sc = f32x4.splat(0);
    let sd = f32x4.splat(0);
    for (let i = 0; i < stride; i += 4) {
      const off = <usize>(i << 2);
      const xv = v128.load(x + off);
      sa = f32x4.add(sa, f32x4.mul(v128.load(a + off), xv));
      sb = f32x4.add(sb, f32x4.mul(v128.load(b + off), xv));
      sc = f32x4.add(sc, f32x4.mul(v128.load(c + off), xv));
      sd = f32x4.add(sd, f32x4.mul(v128.load(d + off), xv));
    }
    const o = out + (<usize>r << 2);
    store<f32>(o, horizontal(sa));
    store<f32>(o + 4, horizontal(sb));
    store<f32>(o + 8, horizontal(sc));
    store<f32>(o + 12, horizontal(sd));
  }
  for (; r < rows; r++) store<f32>(out + (<usize>r << 2), rowDot(table + <usize>r * rowBytes, x, stride));
}

// One row's dot product with x, four lanes summed at the end: the order matvec's last rows and rescore share, so
// a rescored row's score is matvec's to the bit.
@inline function rowDot(a: usize, x: usize, stride: i32): f32 {
  let s = f32x4.splat(0);
  for (let i = 0; i < stride; i += 4) {
    const off = <usize>(i << 2);
    s = f32x4.add(s, f32x4.mul(v128.load(a + off), v128.load(x + off)));
  }
  return horizontal(s);
}

// log Σ exp(s[i]) over i in [1, n): the softmax normaliser of one row of
// scores (index 0 is the padding item). Two passes, max then sum, four lanes
// at a time, with a polynomial exp (below): ~0.03 ms for 23,715 items where
// JavaScript's Math.exp loop takes ~0.24 ms.
export function logSumExp(s: usize, n: i32): f32 {
  if (n <= 1) return -Infinity;
  let max: f32 = -Infinity;
  let i = 1;
  for (; i < n && (i & 3) != 0; i++) max = Mathf.max(max, load<f32>(s + (<usize>i << 2)));
  let vmax = f32x4.splat(max);
  for (; i + 4 <= n; i += 4) vmax = f32x4.max(vmax, v128.load(s + (<usize>i << 2)));
  max = Mathf.max(Mathf.max(f32x4.extract_lane(vmax, 0), f32x4.extract_lane(vmax, 1)), Mathf.max(f32x4.extract_lane(vmax, 2), f32x4.extract_lane(vmax, 3)));
  for (; i < n; i++) max = Mathf.max(max, load<f32>(s + (<usize>i << 2)));

  let sum: f32 = 0;
  i = 1;
  for (; i < n && (i & 3) != 0; i++) sum += Mathf.exp(load<f32>(s + (<usize>i << 2)) - max);
  const m = f32x4.splat(max);
  let vsum = f32x4.splat(0);
  for (; i + 4 <= n; i += 4) vsum = f32x4.add(vsum, exp4(f32x4.sub(v128.load(s + (<usize>i << 2)), m)));
  sum += horizontal(vsum);
  for (; i < n; i++) sum += Mathf.exp(load<f32>(s + (<usize>i << 2)) - max);
  return max + Mathf.log(sum);
}

/**
 * Scores of n queries against every row of a table: out[b, r] = table[r] · q[b],
 * table [rows, stride], queries [n, stride], out [n, ldo]; stride a multiple
 * of 4 (rows padded with zeros). Four table rows (in L1) against two queries
 * at a time, so the table streams from memory once per batch, not once per
 * query: scoring is memory-bound one query at a time.
 */
export function scoreBatch(table: usize, rows: i32, stride: i32, queries: usize, n: i32, out: usize, ldo: i32): void {
  const row = <usize>stride << 2;
  const outRow = <usize>ldo << 2;
  let r = 0;
  for (; r + 4 <= rows; r += 4) {
    const t0 = table + <usize>r * row;
    const t1 = t0 + row;
    const t2 = t1 + row;
    const t3 = t2 + row;
    let b = 0;
    for (; b + 2 <= n; b += 2) {
      const q0 = queries + <usize>b * row;
      const q1 = q0 + row;
      let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
      let c0 = f32x4.splat(0), c1 = f32x4.splat(0), c2 = f32x4.splat(0), c3 = f32x4.splat(0);
      for (let i = 0; i < stride; i += 4) {
        const off = <usize>i << 2;
        const x = v128.load(q0 + off);
        const y = v128.load(q1 + off);
        const u0 = v128.load(t0 + off);
        const u1 = v128.load(t1 + off);
        const u2 = v128.load(t2 + off);
        const u3 = v128.load(t3 + off);
        a0 = f32x4.add(a0, f32x4.mul(u0, x)); c0 = f32x4.add(c0, f32x4.mul(u0, y));
        a1 = f32x4.add(a1, f32x4.mul(u1, x)); c1 = f32x4.add(c1, f32x4.mul(u1, y));
        a2 = f32x4.add(a2, f32x4.mul(u2, x)); c2 = f32x4.add(c2, f32x4.mul(u2, y));
        a3 = f32x4.add(a3, f32x4.mul(u3, x)); c3 = f32x4.add(c3, f32x4.mul(u3, y));
      }
      const o0 = out + <usize>b * outRow + (<usize>r << 2);
      const o1 = o0 + outRow;
      store<f32>(o0, horizontal(a0)); store<f32>(o0, horizontal(a1), 4); store<f32>(o0, horizontal(a2), 8); store<f32>(o0, horizontal(a3), 12);
      store<f32>(o1, horizontal(c0)); store<f32>(o1, horizontal(c1), 4); store<f32>(o1, horizontal(c2), 8); store<f32>(o1, horizontal(c3), 12);
    }
    for (; b < n; b++) {
      const q0 = queries + <usize>b * row;
      let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
      for (let i = 0; i < stride; i += 4) {
        const off = <usize>i << 2;
        const x = v128.load(q0 + off);
        a0 = f32x4.add(a0, f32x4.mul(v128.load(t0 + off), x));
        a1 = f32x4.add(a1, f32x4.mul(v128.load(t1 + off), x));
        a2 = f32x4.add(a2, f32x4.mul(v128.load(t2 + off), x));
        a3 = f32x4.add(a3, f32x4.mul(v128.load(t3 + off), x));
      }
      const o0 = out + <usize>b * outRow + (<usize>r << 2);
      store<f32>(o0, horizontal(a0)); store<f32>(o0, horizontal(a1), 4); store<f32>(o0, horizontal(a2), 8); store<f32>(o0, horizontal(a3), 12);
    }
  }
  for (; r < rows; r++) {
    const t0 = table + <usize>r * row;
    for (let b = 0; b < n; b++) {
      const q0 = queries + <usize>b * row;
      let a = f32x4.splat(0);
      for (let i = 0; i < stride; i += 4) a = f32x4.add(a, f32x4.mul(v128.load(t0 + (<usize>i << 2)), v128.load(q0 + (<usize>i << 2))));
      store<f32>(out + <usize>b * outRow + (<usize>r << 2), horizontal(a));
    }
  }
}

/**
 * The k largest of s[1..n) (index 0 is padding) into indices/values, largest
 * first, ties to the lower index; returns how many (min(k, n − 1)). A value
 * enters only if it beats the current k-th, which after the first few
 * thousand items almost none do: one comparison per item.
 */
export function topK(s: usize, n: i32, k: i32, indices: usize, values: usize): i32 {
  let count = 0;
  let floor: f32 = -Infinity;
  for (let i = 1; i < n; i++) {
    const x = load<f32>(s + (<usize>i << 2));
    if (count == k && !(x > floor)) continue;
    if (x != x) continue; // NaN
    let at = count == k ? k - 1 : count;
    if (count < k) count++;
    while (at > 0 && load<f32>(values + (<usize>(at - 1) << 2)) < x) {
      store<f32>(values + (<usize>at << 2), load<f32>(values + (<usize>(at - 1) << 2)));
      store<i32>(indices + (<usize>at << 2), load<i32>(indices + (<usize>(at - 1) << 2)));
      at--;
    }
    store<f32>(values + (<usize>at << 2), x);
    store<i32>(indices + (<usize>at << 2), i);
    if (count == k) floor = load<f32>(values + (<usize>(k - 1) << 2));
  }
  return count;
}

// Rows [from, to) of the float32 table ([rows, stride], row-major) quantised for scoreBatchI8, as the
// JavaScript it replaced did (ItemScorer): per row, scale = max|x| / rowLimit in f32 (rowLimit ≤ 127), each value
// Math.round(x / scale) in f64 (halves toward +infinity) as i8 into out8 ([rows, stride8]), and
// l1s[r] = Σ|x| (in f64, four running sums) × (1 + 2^-20) rounded to f32, so the caller's error bound stays
// a bound. A row of zeros gets scale 0 and keeps its zeros. Four values a step for the maximum and the sum,
// eight for the rounding (two f64 lanes a division): 6.1 M values (amazon-games' table) took 69 ms one
// value at a time, at every load of a version in each worker (bench/scratch/quant-time.ts).
export function quantiseRows(table: usize, stride: i32, cols: i32, from: i32, to: i32, rowLimit: f32, out8: usize, stride8: i32, scales: usize, l1s: usize): void {
  const cols4 = cols & ~3;
  const cols8 = cols & ~7;
  const half = f64x2.splat(0.5);
  const one = f64x2.splat(1);
  for (let r = from; r < to; r++) {
    const row = table + <usize>r * <usize>(stride << 2);
    let m = f32x4.splat(0);
    let sumLow = f64x2.splat(0);
    let sumHigh = f64x2.splat(0);
    for (let i = 0; i < cols4; i += 4) {
      const v = f32x4.abs(v128.load(row + (<usize>i << 2)));
      // pmax keeps m where v is NaN, as the scalar `v > max` did.
      m = f32x4.pmax(m, v);
      sumLow = f64x2.add(sumLow, f64x2.promote_low_f32x4(v));
      sumHigh = f64x2.add(sumHigh, f64x2.promote_low_f32x4(i32x4.shuffle(v, v, 2, 3, 2, 3)));
    }
    let max: f32 = f32x4.extract_lane(m, 0);
    const m1 = f32x4.extract_lane(m, 1);
    const m2 = f32x4.extract_lane(m, 2);
    const m3 = f32x4.extract_lane(m, 3);
    if (m1 > max) max = m1;
    if (m2 > max) max = m2;
    if (m3 > max) max = m3;
    let l1: f64 = (f64x2.extract_lane(sumLow, 0) + f64x2.extract_lane(sumHigh, 0)) + (f64x2.extract_lane(sumLow, 1) + f64x2.extract_lane(sumHigh, 1));
    for (let i = cols4; i < cols; i++) {
      const v = Mathf.abs(load<f32>(row + (<usize>i << 2)));
      if (v > max) max = v;
      l1 += <f64>v;
    }
    const scale: f32 = max / rowLimit;
    store<f32>(scales + (<usize>r << 2), scale);
    store<f32>(l1s + (<usize>r << 2), <f32>(l1 * (1.0 + 1.0 / 1048576.0)));
    if (!(scale > 0)) continue;
    const out = out8 + <usize>r * <usize>stride8;
    const s = <f64>scale;
    const sv = f64x2.splat(s);
    let i = 0;
    for (; i < cols8; i += 8) {
      const a = v128.load(row + (<usize>i << 2));
      const b = v128.load(row + (<usize>(i + 4) << 2));
      const ab = i32x4.shuffle(roundedPair(f64x2.promote_low_f32x4(a), sv, half, one), roundedPair(f64x2.promote_low_f32x4(i32x4.shuffle(a, a, 2, 3, 2, 3)), sv, half, one), 0, 1, 4, 5);
      const cd = i32x4.shuffle(roundedPair(f64x2.promote_low_f32x4(b), sv, half, one), roundedPair(f64x2.promote_low_f32x4(i32x4.shuffle(b, b, 2, 3, 2, 3)), sv, half, one), 0, 1, 4, 5);
      const eight = i16x8.narrow_i32x4_s(ab, cd);
      store<i64>(out + <usize>i, i64x2.extract_lane(i8x16.narrow_i16x8_s(eight, eight), 0));
    }
    for (; i < cols; i++) {
      const v = <f64>load<f32>(row + (<usize>i << 2)) / s;
      const f = Math.floor(v);
      store<i8>(out + <usize>i, <i8>(<i32>(v - f >= 0.5 ? f + 1 : f)));
    }
  }
}

// Two values / s rounded as Math.round does (floor, then up where the remainder is at least a half), as i32 in
// the low two lanes.
@inline function roundedPair(x: v128, s: v128, half: v128, one: v128): v128 {
  const v = f64x2.div(x, s);
  const f = f64x2.floor(v);
  return i32x4.trunc_sat_f64x2_s_zero(v128.bitselect(f64x2.add(f, one), f, f64x2.ge(f64x2.sub(v, f), half)));
}

@inline function scaled(v: v128, rowScale: f32, queryScale: f32): f32 {
  const sum = i32x4.extract_lane(v, 0) + i32x4.extract_lane(v, 1) + i32x4.extract_lane(v, 2) + i32x4.extract_lane(v, 3);
  return <f32>sum * (rowScale * queryScale);
}

/**
 * Rows i in [1, n) whose score could reach `line`: s[i] + a × scales[i] +
 * c × l1s[i] + d >= line (the caller's bound on row i's quantisation error),
 * in order, into indices; returns how many, or -1 when there are more than
 * max (the caller then scores exactly).
 */
export function candidates(s: usize, scales: usize, l1s: usize, n: i32, line: f32, a: f32, c: f32, d: f32, indices: usize, max: i32): i32 {
  let count = 0;
  for (let i = 1; i < n; i++) {
    const at = <usize>i << 2;
    if (load<f32>(s + at) + a * load<f32>(scales + at) + c * load<f32>(l1s + at) + d >= line) {
      if (count == max) return -1;
      store<i32>(indices + (<usize>count << 2), i);
      count++;
    }
  }
  return count;
}

/**
 * Float32 scores of the given rows for one query into s (s[indices[j]] =
 * table[indices[j]] · x), summed in the order matvec and scoreBatch sum a
 * single row, so the values are theirs to the bit.
 */
export function rescore(table: usize, stride: i32, x: usize, indices: usize, count: i32, s: usize): void {
  const rowBytes = <usize>(stride << 2);
  for (let j = 0; j < count; j++) {
    const r = load<i32>(indices + (<usize>j << 2));
    store<f32>(s + (<usize>r << 2), rowDot(table + <usize>r * rowBytes, x, stride));
  }
}

// Scores of n queries against a table quantised to 8-bit integers, for shortlists (ItemScorer.shortlists): table
// [rows, stride] i8 with one scale per row (scales [rows] f32), queries [n, stride] i16 with one scale per query
// (qscales [n] f32), stride a multiple of 16 (rows padded with zeros); out[b, r] = (table[r] · q[b]) × scales[r] ×
// qscales[b], the dot product exact in i32 (the caller bounds |table| · |q| · stride below 2^31). A quarter of the
// float32 table's bytes, half those of the 16-bit table it replaced on 2026-12-05: one query at a time, a pass is
// bound by reading the table back into the cache after other work pushed it out (docs/serving-performance.md).
// Each 16 values are widened to two i16x8 and multiplied eight pairs an instruction (i32x4.dot_i16x8_s). Blocks of
// 128 rows (in L2) against every pair of queries, four rows at a time, so the table streams from memory once per
// batch (four rows against every pair in turn took twice as long for four queries as for three with the 16-bit
// table; blocks did not). The caller rescores the candidates near the cut-off from the float32 rows.
export function scoreBatchI8(table: usize, scales: usize, rows: i32, stride: i32, queries: usize, qscales: usize, n: i32, out: usize, ldo: i32): void {
  const block = 128;
  let from = 0;
  for (; from + 4 <= rows; from += block) {
    const to = min(rows & ~3, from + block);
    let b = 0;
    for (; b + 2 <= n; b += 2) pairI8(table, scales, from, to, stride, queries, qscales, b, out, ldo);
    if (b < n) oneI8(table, scales, from, to, stride, queries, qscales, b, out, ldo);
  }
  const row = <usize>stride;
  for (let r = rows & ~3; r < rows; r++) {
    const t0 = table + <usize>r * row;
    const s = load<f32>(scales + (<usize>r << 2));
    for (let b = 0; b < n; b++) {
      const q0 = queries + <usize>b * (row << 1);
      let a = i32x4.splat(0);
      for (let i = 0; i < stride; i += 16) {
        const off = <usize>i << 1;
        a = dot8(a, v128.load(t0 + <usize>i), v128.load(q0 + off), v128.load(q0 + off, 16));
      }
      store<f32>(out + <usize>b * (<usize>ldo << 2) + (<usize>r << 2), scaled(a, s, load<f32>(qscales + (<usize>b << 2))));
    }
  }
}
@inline function dot8(a: v128, u: v128, x0: v128, x1: v128): v128 {
  return i32x4.add(i32x4.add(a, i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(u), x0)), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(u), x1));
}
@inline function pairI8(table: usize, scales: usize, from: i32, to: i32, stride: i32, queries: usize, qscales: usize, b: i32, out: usize, ldo: i32): void {
  const row = <usize>stride;
  const qrow = row << 1;
  const outRow = <usize>ldo << 2;
  const q0 = queries + <usize>b * qrow;
  const q1 = q0 + qrow;
  const sx = load<f32>(qscales + (<usize>b << 2));
  const sy = load<f32>(qscales + (<usize>(b + 1) << 2));
  for (let r = from; r < to; r += 4) {
    const t0 = table + <usize>r * row;
    const t1 = t0 + row;
    const t2 = t1 + row;
    const t3 = t2 + row;
    let a0 = i32x4.splat(0), a1 = i32x4.splat(0), a2 = i32x4.splat(0), a3 = i32x4.splat(0);
    let c0 = i32x4.splat(0), c1 = i32x4.splat(0), c2 = i32x4.splat(0), c3 = i32x4.splat(0);
    for (let i = 0; i < stride; i += 16) {
      const off = <usize>i << 1;
      const x0 = v128.load(q0 + off);
      const x1 = v128.load(q0 + off, 16);
      const y0 = v128.load(q1 + off);
      const y1 = v128.load(q1 + off, 16);
      const u0 = v128.load(t0 + <usize>i);
      const u1 = v128.load(t1 + <usize>i);
      const u2 = v128.load(t2 + <usize>i);
      const u3 = v128.load(t3 + <usize>i);
      a0 = dot8(a0, u0, x0, x1); c0 = dot8(c0, u0, y0, y1);
      a1 = dot8(a1, u1, x0, x1); c1 = dot8(c1, u1, y0, y1);
      a2 = dot8(a2, u2, x0, x1); c2 = dot8(c2, u2, y0, y1);
      a3 = dot8(a3, u3, x0, x1); c3 = dot8(c3, u3, y0, y1);
    }
    const sr = scales + (<usize>r << 2);
    const o0 = out + <usize>b * outRow + (<usize>r << 2);
    const o1 = o0 + outRow;
    store<f32>(o0, scaled(a0, load<f32>(sr), sx)); store<f32>(o0, scaled(a1, load<f32>(sr, 4), sx), 4);
    store<f32>(o0, scaled(a2, load<f32>(sr, 8), sx), 8); store<f32>(o0, scaled(a3, load<f32>(sr, 12), sx), 12);
    store<f32>(o1, scaled(c0, load<f32>(sr), sy)); store<f32>(o1, scaled(c1, load<f32>(sr, 4), sy), 4);
    store<f32>(o1, scaled(c2, load<f32>(sr, 8), sy), 8); store<f32>(o1, scaled(c3, load<f32>(sr, 12), sy), 12);
  }
}
@inline function oneI8(table: usize, scales: usize, from: i32, to: i32, stride: i32, queries: usize, qscales: usize, b: i32, out: usize, ldo: i32): void {
  const row = <usize>stride;
  const q0 = queries + <usize>b * (row << 1);
  const sx = load<f32>(qscales + (<usize>b << 2));
  for (let r = from; r < to; r += 4) {
    const t0 = table + <usize>r * row;
    const t1 = t0 + row;
    const t2 = t1 + row;
    const t3 = t2 + row;
    let a0 = i32x4.splat(0), a1 = i32x4.splat(0), a2 = i32x4.splat(0), a3 = i32x4.splat(0);
    for (let i = 0; i < stride; i += 16) {
      const off = <usize>i << 1;
      const x0 = v128.load(q0 + off);
      const x1 = v128.load(q0 + off, 16);
      a0 = dot8(a0, v128.load(t0 + <usize>i), x0, x1);
      a1 = dot8(a1, v128.load(t1 + <usize>i), x0, x1);
      a2 = dot8(a2, v128.load(t2 + <usize>i), x0, x1);
      a3 = dot8(a3, v128.load(t3 + <usize>i), x0, x1);
    }
    const sr = scales + (<usize>r << 2);
    const o0 = out + <usize>b * (<usize>ldo << 2) + (<usize>r << 2);
    store<f32>(o0, scaled(a0, load<f32>(sr), sx)); store<f32>(o0, scaled(a1, load<f32>(sr, 4), sx), 4);
    store<f32>(o0, scaled(a2, load<f32>(sr, 8), sx), 8); store<f32>(o0, scaled(a3, load<f32>(sr, 12), sx), 12);
  }
}
