import { describe, expect, it } from 'vitest';
import { attentionRollout, headMean } from './rollout.js';

describe('attentionRollout', () => {
  it('matches a hand-computed two-layer, two-head example', () => {
    // T = 2, causal. Layer 1: head 0 row 1 = [0.2, 0.8], head 1 row 1 = [0.6, 0.4] → mean [0.4, 0.6].
    // Layer 2: head 0 row 1 = [1, 0], head 1 row 1 = [0, 1] → mean [0.5, 0.5]. Row 0 is [1, 0] everywhere.
    const layer1 = Float32Array.from([1, 0, 0.2, 0.8, 1, 0, 0.6, 0.4]);
    const layer2 = Float32Array.from([1, 0, 1, 0, 1, 0, 0, 1]);
    // Ã1 = ([[1,0],[0.4,0.6]] + I) / 2 = [[1, 0], [0.2, 0.8]]; Ã2 = ([[1,0],[0.5,0.5]] + I) / 2 = [[1, 0], [0.25, 0.75]].
    // Rollout = Ã2 · Ã1; its row 1 = 0.25 · [1, 0] + 0.75 · [0.2, 0.8] = [0.4, 0.6].
    const row = attentionRollout([layer1, layer2], 2, 2);
    expect(row[0]).toBeCloseTo(0.4, 6);
    expect(row[1]).toBeCloseTo(0.6, 6);
    expect(Array.from(attentionRollout([layer1, layer2], 2, 2, 0))).toEqual([1, 0]);
  });

  it('is a distribution over positions for random causal attention', () => {
    const T = 5;
    const heads = 3;
    const layer = (): Float32Array => {
      const a = new Float32Array(heads * T * T);
      for (let h = 0; h < heads; h++)
        for (let t = 0; t < T; t++) {
          const w = Array.from({ length: t + 1 }, (_, s) => 1 + ((h * 7 + t * 3 + s) % 5));
          const sum = w.reduce((x, y) => x + y, 0);
          w.forEach((x, s) => (a[h * T * T + t * T + s] = x / sum));
        }
      return a;
    };
    const row = attentionRollout([layer(), layer(), layer()], heads, T);
    expect(row.reduce((x, y) => x + y, 0)).toBeCloseTo(1, 10);
    for (const x of row) expect(x).toBeGreaterThan(0);
  });

  it('averages heads', () => {
    expect(Array.from(headMean(Float32Array.from([1, 0, 0, 1, 0, 1, 1, 0]), 2, 2))).toEqual([0.5, 0.5, 0.5, 0.5]);
  });
});
