import { Random } from '../random.js';

/**
 * Seeded weight initialisers computed in JavaScript, so the same seed gives
 * the same starting weights on every backend (tfjs's own random ops differ
 * between backends).
 */
export function normal(random: Random, size: number, std: number): Float32Array {
  const out = new Float32Array(size);
  for (let i = 0; i < size; i += 2) {
    // Box–Muller: two independent standard normals per pair of uniforms.
    const u = 1 - random.next();
    const v = random.next();
    const r = Math.sqrt(-2 * Math.log(u));
    out[i] = r * Math.cos(2 * Math.PI * v) * std;
    if (i + 1 < size) out[i + 1] = r * Math.sin(2 * Math.PI * v) * std;
  }
  return out;
}

/** Glorot/Xavier uniform for a [fanIn, fanOut] matrix. */
export function glorotUniform(random: Random, fanIn: number, fanOut: number): Float32Array {
  const limit = Math.sqrt(6 / (fanIn + fanOut));
  const out = new Float32Array(fanIn * fanOut);
  for (let i = 0; i < out.length; i++) out[i] = (random.next() * 2 - 1) * limit;
  return out;
}
