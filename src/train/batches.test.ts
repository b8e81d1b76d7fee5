import { describe, expect, it } from 'vitest';
import { leaveOneOutSplit } from '../data/leave-one-out-split.js';
import { Random } from '../random.js';
import { epochBatches, historyBatch, trainingBatch, type EncodedSequences } from './batches.js';

// Sequence 0: items 1..6 (evaluated: train 1..4, valid 5, test 6); sequence 1: items 7, 8 (train only).
const data: EncodedSequences = { offsets: Int32Array.from([0, 6, 8]), items: Int32Array.from([1, 2, 3, 4, 5, 6, 7, 8]), types: Uint8Array.from([1, 1, 2, 1, 3, 1, 1, 2]) };
const split = leaveOneOutSplit(data.offsets);

describe('batches', () => {
  it('training batch: inputs and next-item targets from training events only, right-aligned', () => {
    const batch = trainingBatch(data, split, [0, 1], 5);
    expect(Array.from(batch.items)).toEqual([0, 0, 1, 2, 3, /**/ 0, 0, 0, 0, 7]);
    expect(Array.from(batch.targets)).toEqual([0, 0, 2, 3, 4, /**/ 0, 0, 0, 0, 8]);
    expect(Array.from(batch.types)).toEqual([0, 0, 1, 1, 2, /**/ 0, 0, 0, 0, 1]);
  });

  it('training batch keeps the most recent pairs when the history is longer than the window', () => {
    const batch = trainingBatch(data, split, [0], 2);
    expect(Array.from(batch.items)).toEqual([2, 3]);
    expect(Array.from(batch.targets)).toEqual([3, 4]);
  });

  it('history batch: validation sees the training events, test also the validation item', () => {
    const valid = historyBatch(data, [0], (s) => split.trainLength[s]!, 5);
    expect(Array.from(valid.items)).toEqual([0, 1, 2, 3, 4]);
    const test = historyBatch(data, [0], (s) => split.trainLength[s]! + 1, 3);
    expect(Array.from(test.items)).toEqual([3, 4, 5]);
    expect(Array.from(test.types)).toEqual([2, 1, 3]);
  });

  it('epoch batches cover every trainable sequence once, shuffled by seed', () => {
    const three = leaveOneOutSplit(Int32Array.from([0, 5, 6, 9, 13]));
    const batches = epochBatches(three, 2, new Random(1));
    expect(batches.flatMap((b) => Array.from(b)).sort()).toEqual([0, 2, 3]); // sequence 1 has one event: nothing to learn
    expect(batches.map((b) => Array.from(b))).toEqual(epochBatches(three, 2, new Random(1)).map((b) => Array.from(b)));
  });
});
