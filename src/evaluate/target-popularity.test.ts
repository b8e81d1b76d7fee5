import { describe, expect, it } from 'vitest';
import { leaveOneOutSplit } from '../data/leave-one-out-split.js';
import { Random } from '../random.js';
import { trainingItemCounts, type EncodedSequences } from '../data/encoded-sequences.js';
import { evaluateScorer, type BatchScorer } from './evaluate.js';
import { POPULARITY_BANDS, popularityBand, targetPopularityGroups } from './target-popularity.js';

function encode(sequences: number[][]): EncodedSequences {
  const offsets = [0];
  for (const s of sequences) offsets.push(offsets[offsets.length - 1]! + s.length);
  return { offsets: Int32Array.from(offsets), items: Int32Array.from(sequences.flat()), types: new Uint8Array(offsets[offsets.length - 1]!).fill(1) };
}

describe('target popularity bands', () => {
  it('puts each count in the first band whose bound holds', () => {
    expect([0, 1, 2, 3, 5, 6, 10, 11, 20, 21, 50, 51, 100, 101, 1e6].map(popularityBand)).toEqual([0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7]);
    expect(POPULARITY_BANDS.map((b) => b.label)).toEqual(['0', '1-2', '3-5', '6-10', '11-20', '21-50', '51-100', '>100']);
  });

  it('counts training events only, never the validation or test items', () => {
    // Held out: user 0's 4 (valid) and 5 (test); user 1's 3 and 5; user 2 (3 events) trains on all.
    const data = encode([[1, 2, 1, 4, 5], [2, 2, 3, 5], [5, 1, 6]]);
    const counts = trainingItemCounts(data, leaveOneOutSplit(data.offsets), 6);
    expect(Array.from(counts)).toEqual([0, 3, 3, 0, 0, 1, 1]);
  });

  it('breaks the metrics down so that the bands add up to the whole', () => {
    const random = new Random(3);
    const numItems = 40;
    // Skewed popularity so that several bands are populated.
    const sequences = Array.from({ length: 120 }, () => Array.from({ length: 4 + random.int(5) }, () => 1 + Math.floor(numItems * random.next() ** 2)));
    const data = encode(sequences);
    const split = leaveOneOutSplit(data.offsets);
    const scorer: BatchScorer = (batch) => {
      const scores = new Float32Array(batch.length * (numItems + 1));
      for (let i = 0; i < scores.length; i++) scores[i] = random.next();
      return scores;
    };
    const groups = targetPopularityGroups(data, split, numItems);
    const result = evaluateScorer(scorer, numItems, data, split, { phase: 'test', sampled: { count: 10, seed: 1 }, groups });
    const bands = result.groups!;
    expect(bands).toHaveLength(POPULARITY_BANDS.length);
    expect(bands.filter((b) => b.full.users > 0).length).toBeGreaterThan(2);
    expect(bands.reduce((n, b) => n + b.full.users, 0)).toBe(result.full.users);
    for (const metric of ['full', 'sampled'] as const) {
      const weighted = bands.reduce((sum, b) => sum + b[metric]!.hr[10]! * b[metric]!.users, 0) / result[metric]!.users;
      expect(weighted).toBeCloseTo(result[metric]!.hr[10]!, 10);
      const mrr = bands.reduce((sum, b) => sum + b[metric]!.mrr * b[metric]!.users, 0) / result[metric]!.users;
      expect(mrr).toBeCloseTo(result[metric]!.mrr, 10);
    }
    // Each user landed in the band of its own test item.
    const counts = trainingItemCounts(data, split, numItems);
    const expected = new Array<number>(POPULARITY_BANDS.length).fill(0);
    for (const s of split.evaluated) expected[popularityBand(counts[data.items[data.offsets[s]! + split.trainLength[s]! + 1]!]!)]!++;
    expect(bands.map((b) => b.full.users)).toEqual(expected);
  });
});
