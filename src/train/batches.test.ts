import { describe, expect, it } from 'vitest';
import { leaveOneOutSplit } from '../data/leave-one-out-split.js';
import { Random } from '../random.js';
import { historyBatch, type EncodedSequences } from '../data/encoded-sequences.js';
import { epochBatches, replaceInputItems, trainingBatch } from './batches.js';

// Sequence 0: items 1..6 (evaluated: train 1..4, valid 5, test 6); sequence 1: items 7, 8 (train only).
const data: EncodedSequences = { offsets: Int32Array.from([0, 6, 8]), items: Int32Array.from([1, 2, 3, 4, 5, 6, 7, 8]), types: Uint8Array.from([1, 1, 2, 1, 3, 1, 1, 2]) };
const split = leaveOneOutSplit(data.offsets);

describe('batches', () => {
  it('training batch: inputs and next-item targets from training events only, right-aligned', () => {
    const batch = trainingBatch(data, split, [0, 1], 5);
    expect(batch.length).toBe(3); // the longest window: sequence 0 has 3 training pairs
    expect(Array.from(batch.items)).toEqual([1, 2, 3, /**/ 0, 0, 7]);
    expect(Array.from(batch.targets)).toEqual([2, 3, 4, /**/ 0, 0, 8]);
    expect(Array.from(batch.types)).toEqual([1, 1, 2, /**/ 0, 0, 1]);
  });

  it('training batch keeps the most recent pairs when the history is longer than the window', () => {
    const batch = trainingBatch(data, split, [0], 2);
    expect(Array.from(batch.items)).toEqual([2, 3]);
    expect(Array.from(batch.targets)).toEqual([3, 4]);
  });

  it('history batch: validation sees the training events, test also the validation item', () => {
    const valid = historyBatch(data, [0, 1], (s) => split.trainLength[s]!, 5);
    expect(Array.from(valid.items)).toEqual([1, 2, 3, 4, /**/ 0, 0, 7, 8]);
    const test = historyBatch(data, [0], (s) => split.trainLength[s]! + 1, 3);
    expect(Array.from(test.items)).toEqual([3, 4, 5]);
    expect(Array.from(test.types)).toEqual([2, 1, 3]);
  });

  it('a batch is only as long as its longest window (capped at maxLength)', () => {
    expect(trainingBatch(data, split, [1], 50).length).toBe(1);
    expect(trainingBatch(data, split, [0, 1], 50).length).toBe(3);
    expect(trainingBatch(data, split, [0, 1], 2).length).toBe(2);
    expect(historyBatch(data, [0], (s) => split.trainLength[s]! + 1, 50).length).toBe(5);
  });

  it('length buckets: every sequence once, batches of similar length, the order still shuffled by seed', () => {
    const lengths = Array.from({ length: 2000 }, (_, i) => 2 + ((i * 7919) % 60));
    const offsets = Int32Array.from([0, ...lengths.map((_, i) => lengths.slice(0, i + 1).reduce((a, b) => a + b, 0))]);
    const many = leaveOneOutSplit(offsets);
    const batches = epochBatches(many, 16, new Random(3), true, 50);
    const seen = batches.flatMap((b) => Array.from(b)).sort((a, b) => a - b);
    expect(seen).toEqual(Array.from({ length: 2000 }, (_, i) => i).filter((s) => many.trainLength[s]! >= 2));
    // Within a batch, windows differ little; across batches, lengths are not in sorted order.
    const windows = batches.map((b) => Array.from(b, (s) => Math.min(50, many.trainLength[s]! - 1)));
    const spread = windows.map((w) => Math.max(...w) - Math.min(...w));
    expect(spread.reduce((a, b) => a + b, 0) / spread.length).toBeLessThan(4);
    const firstOfEach = windows.map((w) => w[0]!);
    expect(firstOfEach).not.toEqual([...firstOfEach].sort((a, b) => a - b));
    // Padding: total cells against the unbucketed batches of the same seed.
    const cells = (bs: Int32Array[]): number => bs.reduce((n, b) => n + b.length * Math.max(...Array.from(b, (s) => Math.min(50, many.trainLength[s]! - 1))), 0);
    expect(cells(batches)).toBeLessThan(0.7 * cells(epochBatches(many, 16, new Random(3), false, 50)));
  });

  it('epoch batches cover every trainable sequence once, shuffled by seed', () => {
    const three = leaveOneOutSplit(Int32Array.from([0, 5, 6, 9, 13]));
    const batches = epochBatches(three, 2, new Random(1));
    expect(batches.flatMap((b) => Array.from(b)).sort()).toEqual([0, 2, 3]); // sequence 1 has one event: nothing to learn
    expect(batches.map((b) => Array.from(b))).toEqual(epochBatches(three, 2, new Random(1)).map((b) => Array.from(b)));
  });
});

describe('replaceInputItems', () => {
  it('replaces about the given share of real input items with items of the catalogue, never padding', () => {
    const items = new Int32Array(20_000);
    for (let i = 0; i < items.length; i++) items[i] = i % 4 === 0 ? 0 : 7; // a quarter padding
    const original = Int32Array.from(items);
    replaceInputItems(items, 0.1, 50, new Random(5));
    let changed = 0;
    for (let i = 0; i < items.length; i++) {
      if (original[i] === 0) expect(items[i]).toBe(0);
      else {
        expect(items[i]).toBeGreaterThanOrEqual(1);
        expect(items[i]).toBeLessThanOrEqual(50);
        if (items[i] !== 7) changed++;
      }
    }
    // 15,000 real items × 0.1, less the draws that land on 7 again (1 in 50).
    expect(changed / 15_000).toBeGreaterThan(0.09);
    expect(changed / 15_000).toBeLessThan(0.107);
  });

  it('changes nothing at probability 0 and is reproducible for a seed', () => {
    const items = Int32Array.from([0, 3, 4, 5]);
    replaceInputItems(items, 0, 10, new Random(1));
    expect(Array.from(items)).toEqual([0, 3, 4, 5]);
    const a = Int32Array.from({ length: 100 }, (_, i) => 1 + (i % 9));
    const b = Int32Array.from(a);
    replaceInputItems(a, 0.5, 10, new Random(9));
    replaceInputItems(b, 0.5, 10, new Random(9));
    expect(Array.from(a)).toEqual(Array.from(b));
  });
});
