import { describe, expect, it } from 'vitest';
import { leaveOneOutSplit } from '../data/leave-one-out-split.js';
import type { EncodedSequences } from '../data/encoded-sequences.js';
import { ITEM_NEIGHBOURS, itemCooccurrence, strongestNeighbours } from '../model/item-cooccurrence.js';
import { evaluateBaseline } from './baselines.js';

// Four users over items 1..6. Item 1 is always followed by 2 in what the baselines may see.
const sequences = [
  [1, 2, 3, 4, 1, 2], // test: after 1 comes 2 — but 2 is in the history, so it is excluded (the standard protocol)
  [5, 1, 2, 6, 1, 3], // valid target 1, test target 3
  [6, 6, 6, 1, 2, 5],
  [4, 4, 1, 2], // valid target 1, test target 2 (not in the first two events)
];
const offsets = [0];
for (const s of sequences) offsets.push(offsets[offsets.length - 1]! + s.length);
const data: EncodedSequences = { offsets: Int32Array.from(offsets), items: Int32Array.from(sequences.flat()), types: new Uint8Array(offsets[4]!).fill(1) };
const split = leaveOneOutSplit(data.offsets);

describe('baselines', () => {
  it('most-recent-item ranks the usual follower of the last item first', () => {
    // User 3, test: history 4 4 1. Visible transitions out of 1: 1→2 three times; user 1's 1→3 is its test target, hidden.
    const result = evaluateBaseline('most-recent-item', 6, data, split, { phase: 'test', exclude: 'none', sequences: Int32Array.from([3]) });
    expect(result.full.hr[1]).toBe(1);
  });

  it('popularity ranks by visible counts, never counting held-out targets', () => {
    // Validation sees training events only. Counts: 6:4, 1:3, 4:3, 2:2, 3:1, 5:1.
    const result = evaluateBaseline('popularity', 6, data, split, { phase: 'valid', exclude: 'seen', sequences: Int32Array.from([3]) });
    // User 3's target 1: item 6 outranks it; 4 ties but is history (excluded). Rank 1.
    expect(result.full.hr[1]).toBe(0);
    expect(result.full.hr[5]).toBe(1);
    expect(result.full.mrr).toBeCloseTo(1 / 2, 10);
  });

  it('item-knn ranks what was bought beside the history, and chooses its decay on validation users', () => {
    // Item 1 is bought with 7 by three of four users. User 3's test history is 8 9 10 1 and its target 7:
    // 1's strongest neighbour, and 10's and 9's too, so it ranks first whatever the decay. The most
    // popular item is 11, which no history with 1 holds: popularity ranks it first instead.
    const knn = [
      [5, 6, 1, 7, 2, 3],
      [4, 9, 1, 7, 2, 5],
      [10, 3, 1, 7, 6, 4],
      [8, 9, 10, 1, 7],
      [11, 11, 11, 11, 12, 13],
    ];
    const knnOffsets = [0];
    for (const q of knn) knnOffsets.push(knnOffsets[knnOffsets.length - 1]! + q.length);
    const knnData: EncodedSequences = { offsets: Int32Array.from(knnOffsets), items: Int32Array.from(knn.flat()), types: new Uint8Array(knnOffsets[5]!).fill(1) };
    const knnSplit = leaveOneOutSplit(knnData.offsets);
    const result = evaluateBaseline('item-knn', 13, knnData, knnSplit, { phase: 'test', sequences: Int32Array.from([3]) });
    expect(result.full.hr[1]).toBe(1);
    expect(evaluateBaseline('popularity', 13, knnData, knnSplit, { phase: 'test', sequences: Int32Array.from([3]) }).full.hr[1]).toBe(0);
    expect(result.chosen?.users).toBe(5); // every evaluated user's validation target
    // The training job hands over the training events' neighbours it built for its term: the same result.
    const handed = strongestNeighbours(itemCooccurrence(knnData, knnSplit, 13), ITEM_NEIGHBOURS);
    expect(evaluateBaseline('item-knn', 13, knnData, knnSplit, { phase: 'test', sequences: Int32Array.from([3]) }, handed)).toEqual(result);
    expect(evaluateBaseline('item-knn', 13, knnData, knnSplit, { phase: 'valid' }, handed)).toEqual(evaluateBaseline('item-knn', 13, knnData, knnSplit, { phase: 'valid' }));
    expect([0.1, 0.3, 0.5, 0.7, 0.9, 1]).toContain(result.chosen?.decay);
  });

  it('reports the sampled protocol beside full ranking when asked', () => {
    const result = evaluateBaseline('popularity', 6, data, split, { phase: 'test', sampled: { count: 3, seed: 1 } });
    expect(result.sampled?.users).toBe(4);
    expect(result.full.users).toBe(4);
  });

  it("history-frequency lists the history's own items, most frequent first, then the most recent, then popularity", () => {
    const repeats = [
      [4, 5, 4, 1, 4, 2],
      [5, 6, 1, 1, 6, 3],
      [7, 7, 7, 7, 8, 9],
    ];
    const o = [0];
    for (const q of repeats) o.push(o[o.length - 1]! + q.length);
    const repeatData: EncodedSequences = { offsets: Int32Array.from(o), items: Int32Array.from(repeats.flat()), types: new Uint8Array(o[3]!).fill(3) };
    const repeatSplit = leaveOneOutSplit(repeatData.offsets);
    // Validation targets 4, 6, 8 after 4 5 4 1, 5 6 1 1, 7 7 7 7: user 0's 4 (twice) is first; user 1's 6 comes after 1
    // (twice) and before 5 (once each, 6 more recent): second; user 2's 8 is novel.
    const none = evaluateBaseline('history-frequency', 9, repeatData, repeatSplit, { phase: 'valid', exclude: 'none' });
    expect(none.repeat!.users).toBe(2);
    expect(none.repeat!.hr[1]).toBe(1 / 2);
    expect(none.repeat!.mrr).toBeCloseTo((1 + 1 / 2) / 2, 10);
    // Under the default policy those purchases may not be shown: a miss, whatever the baseline.
    expect(evaluateBaseline('history-frequency', 9, repeatData, repeatSplit, { phase: 'valid' }).repeat!.hr[20]).toBe(0);
  });
});

