import { describe, expect, it } from 'vitest';
import { evaluationSplits, leaveOneOutSplit, nextOfTypeSplit } from './leave-one-out-split.js';

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

describe('next-purchase splits', () => {
  // Types: 1 view, 2 cart, 3 purchase. Sequence 0: v p v v p v (purchases at 1 and 4); sequence 1: p v p (no
  // event before its first purchase); sequence 2: v v v v v (no purchase); sequence 3: v p v (one purchase).
  const offsets = Int32Array.from([0, 6, 9, 14, 17]);
  const types = Uint8Array.from([1, 3, 1, 1, 3, 1, /**/ 3, 1, 3, /**/ 1, 1, 1, 1, 1, /**/ 1, 3, 1]);

  it('holds out the last purchase (history: every event before it) and the one before for validation', () => {
    const split = nextOfTypeSplit(offsets, types, 3);
    expect(Array.from(split.evaluated)).toEqual([0]);
    expect(Array.from(split.validIndex)).toEqual([1]);
    expect(Array.from(split.testIndex)).toEqual([4]);
    expect(Array.from(split.trainLength)).toEqual([1, 3, 5, 3]); // the event after the last purchase never trains
    expect(split.validInput[0]).toBe(1);
    expect(split.testInput[0]).toBe(4);
    expect(split.testInput[2]).toBe(5); // not evaluated: its training events
  });

  it("with evalType 'purchase', both splits train only on events neither evaluation holds out", () => {
    const { primary, event, purchase } = evaluationSplits(offsets, types, 'purchase');
    expect(primary).toBe(purchase);
    expect(Array.from(event.evaluated)).toEqual([0, 2]);
    expect(Array.from(event.trainLength)).toEqual([1, 3, 3, 3]);
    expect(Array.from(purchase!.trainLength)).toEqual([1, 3, 3, 3]);
    expect([event.validInput[0], event.testInput[0]]).toEqual([4, 5]); // next-event targets keep their full histories
    expect(evaluationSplits(offsets, types, 'event')).toEqual({ primary: leaveOneOutSplit(offsets), event: leaveOneOutSplit(offsets) });
  });
});
