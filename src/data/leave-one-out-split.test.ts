import { describe, expect, it } from 'vitest';
import { leaveOneOutSplit } from './leave-one-out-split.js';

describe('leaveOneOutSplit', () => {
  // Sequences of lengths 5, 3, 4, 1, 0: events [0..5), [5..8), [8..12), [12..13), [13..13).
  const offsets = Int32Array.from([0, 5, 8, 12, 13, 13]);

  it('holds out the last two events of sequences with at least 4 events', () => {
    const split = leaveOneOutSplit(offsets);
    expect(Array.from(split.trainLength)).toEqual([3, 3, 2, 1, 0]);
    expect(Array.from(split.evaluated)).toEqual([0, 2]);
    expect(Array.from(split.validIndex)).toEqual([3, 10]);
    expect(Array.from(split.testIndex)).toEqual([4, 11]);
  });

  it('honours another minimum length, but never below 3', () => {
    expect(Array.from(leaveOneOutSplit(offsets, 3).evaluated)).toEqual([0, 1, 2]);
    expect(Array.from(leaveOneOutSplit(offsets, 3).trainLength)).toEqual([3, 1, 2, 1, 0]);
    expect(() => leaveOneOutSplit(offsets, 2)).toThrow(RangeError);
  });

  it('handles no sequences', () => {
    const split = leaveOneOutSplit(Int32Array.from([0]));
    expect(split.evaluated.length).toBe(0);
    expect(split.trainLength.length).toBe(0);
  });
});
