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
  for (; r < rows; r++) {
    const a = table + <usize>r * rowBytes;
    let s = f32x4.splat(0);
    for (let i = 0; i < stride; i += 4) {
      const off = <usize>(i << 2);
      s = f32x4.add(s, f32x4.mul(v128.load(a + off), v128.load(x + off)));
    }
    store<f32>(out + (<usize>r << 2), horizontal(s));
  }
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
