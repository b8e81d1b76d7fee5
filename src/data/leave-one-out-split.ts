import { BUILTIN_EVENT_TYPES } from './import/event-types.js';

/**
 * The standard leave-one-out protocol of sequential recommendation (SASRec
 * and successors). For a sequence of n events with n >= minLength (4):
 * training data is its first n - 2 events, the validation target is event
 * n - 2 (input: the training events), the test target is event n - 1
 * (input: training events + validation target). Shorter sequences are all
 * training data and are not evaluated.
 */
export interface LeaveOneOutSplit {
  /** Per sequence: how many leading events are training data. */
  readonly trainLength: Int32Array;
  /** Indices of the evaluated sequences, ascending. */
  readonly evaluated: Int32Array;
  /** Per evaluated sequence: index (into the item arrays) of the validation target. */
  readonly validIndex: Int32Array;
  /** Per evaluated sequence: index of the test target. */
  readonly testIndex: Int32Array;
  /**
   * Per sequence: how many leading events each phase sees as its history.
   * For an evaluated sequence, the events before its target (the standard
   * split: trainLength, and trainLength + 1 for test); for the others, the
   * training events.
   */
  readonly validInput: Int32Array;
  readonly testInput: Int32Array;
}

/** The history length each sequence has in a phase (see LeaveOneOutSplit.validInput). */
export function inputLengths(split: LeaveOneOutSplit, phase: 'valid' | 'test'): Int32Array {
  return phase === 'valid' ? split.validInput : split.testInput;
}

export const DEFAULT_MIN_EVALUATED_LENGTH = 4;

export function leaveOneOutSplit(offsets: Int32Array, minLength = DEFAULT_MIN_EVALUATED_LENGTH): LeaveOneOutSplit {
  if (minLength < 3) throw new RangeError('minLength must be at least 3: one training event, one validation and one test target');
  const sequences = offsets.length - 1;
  const trainLength = new Int32Array(sequences);
  const evaluated: number[] = [];
  for (let s = 0; s < sequences; s++) {
    const length = offsets[s + 1]! - offsets[s]!;
    if (length >= minLength) {
      trainLength[s] = length - 2;
      evaluated.push(s);
    } else {
      trainLength[s] = length;
    }
  }
  const validIndex = new Int32Array(evaluated.length);
  const testIndex = new Int32Array(evaluated.length);
  evaluated.forEach((s, k) => {
    validIndex[k] = offsets[s + 1]! - 2;
    testIndex[k] = offsets[s + 1]! - 1;
  });
  return withInputs(offsets, trainLength, Int32Array.from(evaluated), validIndex, testIndex);
}

function withInputs(offsets: Int32Array, trainLength: Int32Array, evaluated: Int32Array, validIndex: Int32Array, testIndex: Int32Array): LeaveOneOutSplit {
  const validInput = Int32Array.from(trainLength);
  const testInput = Int32Array.from(trainLength);
  evaluated.forEach((s, k) => {
    validInput[s] = validIndex[k]! - offsets[s]!;
    testInput[s] = testIndex[k]! - offsets[s]!;
  });
  return { trainLength, evaluated, validIndex, testIndex, validInput, testInput };
}

/** What an evaluation holds out: each sequence's next event, or its next event of one type (a purchase). */
export const EVAL_TYPES = ['event', 'purchase'] as const;
export type EvalType = (typeof EVAL_TYPES)[number];

/**
 * Leave-one-out on events of one type (a purchase): for a sequence with at
 * least two events of that type and an event before the second-to-last one,
 * the test target is its last such event (history: every event before it),
 * the validation target the one before (history: every event before that),
 * and the training data is the events before the validation target. So the
 * last purchase and everything after it never train the model, nor does the
 * validation purchase. Other sequences are all training data.
 */
export function nextOfTypeSplit(offsets: Int32Array, types: Uint8Array, type: number): LeaveOneOutSplit {
  const sequences = offsets.length - 1;
  const trainLength = new Int32Array(sequences);
  const evaluated: number[] = [];
  const valid: number[] = [];
  const test: number[] = [];
  for (let s = 0; s < sequences; s++) {
    const begin = offsets[s]!;
    let last = -1;
    let before = -1;
    for (let k = offsets[s + 1]! - 1; k >= begin && before < 0; k--) {
      if (types[k] !== type) continue;
      if (last < 0) last = k;
      else before = k;
    }
    if (before > begin) {
      trainLength[s] = before - begin;
      evaluated.push(s);
      valid.push(before);
      test.push(last);
    } else {
      trainLength[s] = offsets[s + 1]! - begin;
    }
  }
  return withInputs(offsets, trainLength, Int32Array.from(evaluated), Int32Array.from(valid), Int32Array.from(test));
}

/** The splits a training run evaluates: next event always, next purchase with evalType 'purchase'; `primary` is the one it validates on. */
export interface EvaluationSplits {
  readonly primary: LeaveOneOutSplit;
  readonly event: LeaveOneOutSplit;
  readonly purchase?: LeaveOneOutSplit;
}

/**
 * The splits of an evaluation type. With 'purchase', both splits share the
 * training events both allow (per sequence the shorter of the two training
 * prefixes), so neither evaluation's targets ever trained the model and the
 * next-event numbers can be reported beside the next-purchase ones.
 */
export function evaluationSplits(offsets: Int32Array, types: Uint8Array, evalType: EvalType): EvaluationSplits {
  const event = leaveOneOutSplit(offsets);
  if (evalType === 'event') return { primary: event, event };
  const purchase = nextOfTypeSplit(offsets, types, BUILTIN_EVENT_TYPES.purchase!);
  const trainLength = event.trainLength.map((length, s) => Math.min(length, purchase.trainLength[s]!));
  const shared = {
    event: withInputs(offsets, trainLength, event.evaluated, event.validIndex, event.testIndex),
    purchase: withInputs(offsets, Int32Array.from(trainLength), purchase.evaluated, purchase.validIndex, purchase.testIndex),
  };
  return { primary: shared.purchase, ...shared };
}
