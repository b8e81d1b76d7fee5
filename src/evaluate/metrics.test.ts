import { describe, expect, it } from 'vitest';
import { Random } from '../random.js';
import { MetricAccumulator, rankAmongCandidates, rankOfTarget, sampleNegatives } from './metrics.js';

describe('rankOfTarget', () => {
  //              pad   1    2    3    4    5
  const scores = [9, 0.5, 0.9, 0.1, 0.7, 0.5];
  it('counts the items scoring higher, ignoring padding', () => {
    expect(rankOfTarget(scores, 2, new Set())).toBe(0);
    expect(rankOfTarget(scores, 4, new Set())).toBe(1);
    expect(rankOfTarget(scores, 3, new Set())).toBe(4);
  });
  it('skips excluded items (the user history)', () => {
    expect(rankOfTarget(scores, 4, new Set([2]))).toBe(0);
  });
  it('counts ties against the target', () => {
    expect(rankOfTarget(scores, 1, new Set())).toBe(3); // 2, 4 higher; 5 tied
    expect(rankOfTarget([0, 1, 1, 1], 2, new Set())).toBe(2);
  });
});

describe('MetricAccumulator', () => {
  it('computes NDCG, HR and MRR on a hand-checked case', () => {
    const metrics = new MetricAccumulator([1, 5, 10]);
    for (const rank of [0, 2, 9, 50]) metrics.add(rank);
    const r = metrics.result();
    expect(r.users).toBe(4);
    expect(r.hr).toEqual({ 1: 0.25, 5: 0.5, 10: 0.75 });
    expect(r.ndcg[1]).toBeCloseTo(0.25, 10);
    expect(r.ndcg[5]).toBeCloseTo((1 + 1 / Math.log2(4)) / 4, 10); // (1 + 0.5) / 4
    expect(r.ndcg[10]).toBeCloseTo((1 + 0.5 + 1 / Math.log2(11)) / 4, 10);
    expect(r.mrr).toBeCloseTo((1 + 1 / 3 + 1 / 10 + 1 / 51) / 4, 10);
  });
  it('reports zeros, not NaN, with no users', () => {
    expect(new MetricAccumulator([10]).result()).toEqual({ users: 0, ndcg: { 10: 0 }, hr: { 10: 0 }, mrr: 0 });
  });
});

describe('sampled protocol', () => {
  it('draws distinct items the user never interacted with', () => {
    const interacted = new Set([1, 2, 3, 50]);
    const negatives = sampleNegatives(new Random(1), 200, interacted, 100);
    expect(new Set(negatives).size).toBe(100);
    for (const item of negatives) {
      expect(item).toBeGreaterThanOrEqual(1);
      expect(item).toBeLessThanOrEqual(200);
      expect(interacted.has(item)).toBe(false);
    }
    expect(Array.from(sampleNegatives(new Random(1), 200, interacted, 100))).toEqual(Array.from(negatives));
    // Fewer untouched items than asked for: all of them.
    expect(Array.from(sampleNegatives(new Random(1), 10, interacted, 100)).sort((a, b) => a - b)).toEqual([4, 5, 6, 7, 8, 9, 10]);
  });
  it('ranks the target among the candidates only', () => {
    const scores = [0, 0.2, 0.9, 0.5, 0.1];
    expect(rankAmongCandidates(scores, 3, [1, 4])).toBe(0);
    expect(rankAmongCandidates(scores, 3, [2, 4])).toBe(1);
  });
});

describe('sampleEvaluated', () => {
  it('draws a fixed, seeded, sorted subset of the evaluated sequences, or all of them', async () => {
    const { leaveOneOutSplit } = await import('../data/leave-one-out-split.js');
    const { sampleEvaluated } = await import('./evaluate.js');
    const offsets = Int32Array.from({ length: 101 }, (_, i) => i * 5); // 100 sequences of 5 events
    const split = leaveOneOutSplit(offsets);
    const sample = sampleEvaluated(split, 10, 7);
    expect(sample.length).toBe(10);
    expect(new Set(sample).size).toBe(10);
    expect(Array.from(sample)).toEqual([...sample].sort((a, b) => a - b));
    expect(Array.from(sampleEvaluated(split, 10, 7))).toEqual(Array.from(sample));
    expect(Array.from(sampleEvaluated(split, 10, 8))).not.toEqual(Array.from(sample));
    expect(sampleEvaluated(split, 0, 7).length).toBe(100);
    expect(sampleEvaluated(split, 500, 7).length).toBe(100);
  });
});
