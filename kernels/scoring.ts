// Scores of every catalogue item for one query vector, in AssemblyScript with
// 128-bit SIMD. Compiled by scripts/build-kernels.ts to
// generated/kernels/scoring.wasm; driven by src/model/scoring-kernel.ts.
//
// table is [rows, stride] float32, row-major, stride a multiple of 4 (rows
// padded with zeros); x is [stride]. out[r] = table[r] · x. The API calls
// this once per recommendation: 23,716 × 64 products take ~0.2 ms here
// against ~2.5 ms in a JavaScript loop.

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

@inline function horizontal(v: v128): f32 {
  return f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1) + f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3);
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

// exp(x) for x <= 0, four lanes: x = k ln 2 + r with |r| <= ln 2 / 2, exp(r)
// by its degree-6 Taylor polynomial (relative error < 2e-7 on that range),
// 2^k written straight into the exponent bits. Inputs below -87 are clamped
// (exp(-87) = 1.6e-38, nothing next to the largest term, which is 1).
@inline function exp4(x: v128): v128 {
  x = f32x4.max(x, f32x4.splat(-87));
  const k = f32x4.nearest(f32x4.mul(x, f32x4.splat(1.44269504)));
  let r = f32x4.sub(x, f32x4.mul(k, f32x4.splat(0.693359375)));
  r = f32x4.sub(r, f32x4.mul(k, f32x4.splat(-2.12194440e-4)));
  let p = f32x4.splat(1.0 / 720);
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.0 / 120));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.0 / 24));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.0 / 6));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(0.5));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1));
  const scale = i32x4.shl(i32x4.add(i32x4.trunc_sat_f32x4_s(k), i32x4.splat(127)), 23);
  return f32x4.mul(p, scale);
}
