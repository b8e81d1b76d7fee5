import type { LeaveOneOutSplit } from '../data/leave-one-out-split.js';
import type { Random } from '../random.js';

/** Sequences already in model indices: CSR offsets over items/types. */
export interface EncodedSequences {
  readonly offsets: Int32Array;
  /** Model item indices 1..V (0 never occurs here). */
  readonly items: Int32Array;
  readonly types: Uint8Array;
}

/** A left-padded batch, row-major [batchSize, length]; 0 is padding everywhere. */
export interface Batch {
  readonly batchSize: number;
  readonly length: number;
  readonly items: Int32Array;
  readonly types: Int32Array;
  /** Training batches: the next item at each position (0 = no target). */
  readonly targets: Int32Array;
}

/**
 * Training batch: for each sequence, its training events e0..e(L-1) become
 * inputs e0..e(L-2) with targets e1..e(L-1) (every position predicts the next
 * event), the most recent `length` of them, right-aligned.
 */
export function trainingBatch(data: EncodedSequences, split: LeaveOneOutSplit, sequences: ArrayLike<number>, length: number): Batch {
  const batchSize = sequences.length;
  const items = new Int32Array(batchSize * length);
  const types = new Int32Array(batchSize * length);
  const targets = new Int32Array(batchSize * length);
  for (let row = 0; row < batchSize; row++) {
    const s = sequences[row]!;
    const start = data.offsets[s]!;
    const pairs = Math.min(length, split.trainLength[s]! - 1);
    const firstTarget = start + split.trainLength[s]! - pairs; // targets are the last `pairs` training events
    for (let k = 0; k < pairs; k++) {
      const at = row * length + (length - pairs + k);
      items[at] = data.items[firstTarget + k - 1]!;
      types[at] = data.types[firstTarget + k - 1]!;
      targets[at] = data.items[firstTarget + k]!;
    }
  }
  return { batchSize, length, items, types, targets };
}

/**
 * Evaluation batch: for each sequence the `inputLength` first events are the
 * history (the training events for validation, plus the validation target for
 * test), most recent `length` kept, right-aligned.
 */
export function historyBatch(data: EncodedSequences, sequences: ArrayLike<number>, inputLength: (s: number) => number, length: number): Batch {
  const batchSize = sequences.length;
  const items = new Int32Array(batchSize * length);
  const types = new Int32Array(batchSize * length);
  for (let row = 0; row < batchSize; row++) {
    const s = sequences[row]!;
    const end = data.offsets[s]! + inputLength(s);
    const n = Math.min(length, inputLength(s));
    for (let k = 0; k < n; k++) {
      items[row * length + length - n + k] = data.items[end - n + k]!;
      types[row * length + length - n + k] = data.types[end - n + k]!;
    }
  }
  return { batchSize, length, items, types, targets: new Int32Array(0) };
}

/** Sequences with at least one (input, target) pair of training data, shuffled, cut into batches. */
export function epochBatches(split: LeaveOneOutSplit, batchSize: number, random: Random): Int32Array[] {
  const trainable: number[] = [];
  split.trainLength.forEach((length, s) => {
    if (length >= 2) trainable.push(s);
  });
  for (let i = trainable.length - 1; i > 0; i--) {
    const j = random.int(i + 1);
    [trainable[i], trainable[j]] = [trainable[j]!, trainable[i]!];
  }
  const batches: Int32Array[] = [];
  for (let i = 0; i < trainable.length; i += batchSize) batches.push(Int32Array.from(trainable.slice(i, i + batchSize)));
  return batches;
}
