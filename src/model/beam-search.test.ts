import { describe, expect, it } from 'vitest';
import { beamSearch, topIndices, type NextItemLogProbs } from './beam-search.js';

/** A hand-built next-item table: the last item decides the distribution over items 0..4 (0 = padding). */
const TABLE: Record<number, number[]> = {
  9: [0, 0.6, 0.4, 0, 0], // from the history's last item 9: item 1 likelier than 2…
  1: [0, 0, 0.1, 0.5, 0.4], // …but after 1 the best is only 0.5
  2: [0, 0.05, 0, 0.9, 0.05], // while after 2 comes 3 with 0.9: path 2→3 (0.36) beats 1→3 (0.30)
  3: [0, 0.2, 0.2, 0, 0.6],
  4: [0, 0.25, 0.25, 0.25, 0.25],
};
const table: NextItemLogProbs = (histories) => histories.map((h) => Float32Array.from(TABLE[h[h.length - 1]!]!.map((p) => Math.log(p))));

describe('beamSearch', () => {
  it('greedy (width 1) takes the locally best item each step', async () => {
    const [best] = await beamSearch([9], table, { steps: 2, beamWidth: 1 });
    expect(best!.items).toEqual([1, 3]);
    expect(best!.logProb).toBeCloseTo(Math.log(0.6 * 0.5), 6);
  });

  it('a wider beam finds the more probable sequence greedy misses', async () => {
    const beams = await beamSearch([9], table, { steps: 2, beamWidth: 2 });
    expect(beams.map((b) => b.items)).toEqual([[2, 3], [1, 3]]);
    expect(beams[0]!.logProb).toBeCloseTo(Math.log(0.4 * 0.9), 6);
  });

  it('does not repeat items unless allowed, and honours exclusions', async () => {
    // After 3 the best is 4 (0.6), but 4 is already in this history: without repeats the next best,
    // 1 and 2 tied at 0.2, gives 1 (lower index); with repeats allowed, 4.
    expect((await beamSearch([4, 3], table, { steps: 1, beamWidth: 1 }))[0]!.items).toEqual([1]);
    expect((await beamSearch([4, 3], table, { steps: 1, beamWidth: 1, allowRepeats: true }))[0]!.items).toEqual([4]);
    expect((await beamSearch([9], table, { steps: 2, beamWidth: 2, exclude: new Set([3]) }))[0]!.items).toEqual([1, 4]);
    expect((await beamSearch([9], table, { steps: 2, beamWidth: 2, allow: (i) => i !== 3 }))[0]!.items).toEqual([1, 4]);
    // Greedy without repeats may not go back to 1 after 9→1→3→…: from 3, 4 (0.6).
    expect((await beamSearch([9], table, { steps: 3, beamWidth: 1 }))[0]!.items).toEqual([1, 3, 4]);
  });

  it('rejects nonsense arguments', async () => {
    await expect(beamSearch([9], table, { steps: 0, beamWidth: 1 })).rejects.toThrow(RangeError);
    await expect(beamSearch([9], table, { steps: 1, beamWidth: 0 })).rejects.toThrow(RangeError);
  });
});

describe('topIndices', () => {
  it('returns the k best indices, largest first, ties by index, filtered', async () => {
    expect(topIndices([0.1, 0.5, 0.5, 0.9, -1], 3)).toEqual([3, 1, 2]);
    expect(topIndices([0.1, 0.5, 0.5, 0.9, -1], 2, (i) => i !== 3)).toEqual([1, 2]);
    expect(topIndices([1, 2], 5)).toEqual([1, 0]);
  });
});
