import * as tf from '@tensorflow/tfjs';
import { inputLengths, type LeaveOneOutSplit } from '../data/leave-one-out-split.js';
import { addTerm, type CooccurrenceBlend } from '../model/cooccurrence-blend.js';
import type { SasRecEnsemble } from '../model/ensemble.js';
import { Random } from '../random.js';
import { historyBatch, type EncodedSequences } from '../data/encoded-sequences.js';
import { MetricAccumulator, MISS, rankAmongCandidates, rankOfTarget, sampleNegatives, type RankingMetrics } from './metrics.js';
import { DEFAULT_EXCLUDE, excludedItems, type ExcludePolicy } from '../data/exclusion.js';

export interface EvaluationOptions {
  /** 'valid' ranks each sequence's validation target, 'test' its test target, each from the events before it (see LeaveOneOutSplit). */
  readonly phase: 'valid' | 'test';
  /**
   * Which of the history's items the ranking leaves out, as the API's `exclude` does (default
   * DEFAULT_EXCLUDE, the API's default): a held-out item the policy leaves out counts as a miss.
   */
  readonly exclude?: ExcludePolicy;
  /** Also rank against `count` sampled negatives (the SASRec paper's protocol), seeded. */
  readonly sampled?: { readonly count: number; readonly seed: number };
  readonly batchSize?: number;
  /** Evaluate only these sequences (a subset of split.evaluated); default: all of them. */
  readonly sequences?: Int32Array;
  /** Also break the metrics down by a group of the held-out item (e.g. its popularity band, see target-popularity.ts). */
  readonly groups?: { readonly count: number; readonly of: (target: number) => number };
}

export interface Evaluation {
  /** Ranked against every item: the metrics to trust. */
  readonly full: RankingMetrics;
  /** Ranked against sampled negatives only: comparable with the SASRec paper, overstates accuracy. */
  readonly sampled?: RankingMetrics;
  /**
   * Full ranking split by the held-out item: one the history does not hold (novel) or one it does
   * (repeat: bought, carted or viewed before), each with its own user count.
   */
  readonly novel?: RankingMetrics;
  readonly repeat?: RankingMetrics;
  /** Per group of options.groups, in group order (only when asked for). */
  readonly groups?: readonly Omit<Evaluation, 'groups'>[];
}

/**
 * Scores a batch of histories: returns [sequences.length, numItems + 1]
 * row-major scores (column 0 is padding and never ranked). The history of
 * sequence s is its first inputLength(s) events.
 */
export type BatchScorer = (sequences: readonly number[], inputLength: (s: number) => number) => Float32Array;

/** Several scorings of the same batch (variant v: [sequences.length, numItems + 1], as BatchScorer). */
export type BatchScorers = (sequences: readonly number[], inputLength: (s: number) => number) => readonly Float32Array[];

/** Scores each evaluated sequence's history with the model (and its co-occurrence term, if given) and ranks its held-out item. */
export function evaluateModel(model: SasRecEnsemble, data: EncodedSequences, split: LeaveOneOutSplit, options: EvaluationOptions, blend?: CooccurrenceBlend): Evaluation {
  return evaluateScorer(modelScorer(model, data, blend), model.config.numItems, data, split, options, byModelLength(model));
}

/**
 * A version with a co-occurrence term evaluated as served (network + term)
 * and as the network alone, from one pass of the network: the same metrics
 * as two evaluateModel calls (each user's sampled negatives are drawn once
 * and serve both), for about half the cost.
 */
export function evaluateModelAndNetwork(model: SasRecEnsemble, data: EncodedSequences, split: LeaveOneOutSplit, options: EvaluationOptions, blend: CooccurrenceBlend): { readonly model: Evaluation; readonly network: Evaluation } {
  const network = modelScorer(model, data);
  const both: BatchScorers = (sequences, inputLength) => {
    const scores = network(sequences, inputLength);
    const served = Float32Array.from(scores);
    addHistoryTerms(served, model.config, data, sequences, inputLength, blend);
    return [served, scores];
  };
  const [served, alone] = evaluateScorers(both, 2, model.config.numItems, data, split, options, byModelLength(model));
  return { model: served!, network: alone! };
}

/** Scored in order of history length, so each batch is only as long as its longest history. */
function byModelLength(model: SasRecEnsemble): (historyLength: number) => number {
  return (s) => Math.min(model.config.maxLength, s);
}

/**
 * The model's scores of a batch of histories, with the co-occurrence term of
 * each history (its last maxLength events, as served) added when given.
 */
export function modelScorer(model: SasRecEnsemble, data: EncodedSequences, blend?: CooccurrenceBlend): BatchScorer {
  const { maxLength } = model.config;
  return (sequences, inputLength) => {
    const batch = historyBatch(data, sequences, inputLength, maxLength);
    const T = batch.length;
    // tf.tidy walks whatever its callback returns looking for tensors: handing it a
    // [batch, items] Float32Array (6M values on amazon-games) cost 5 s per batch. The
    // tensor leaves the scope instead, is read here and disposed.
    const scoreTensor = tf.tidy(() => model.scores(model.lastQueries(tf.tensor2d(batch.items, [batch.batchSize, T], 'int32'), tf.tensor2d(batch.types, [batch.batchSize, T], 'int32')).queries));
    const scores = scoreTensor.dataSync() as Float32Array;
    scoreTensor.dispose();
    if (blend) addHistoryTerms(scores, model.config, data, sequences, inputLength, blend);
    return scores;
  };
}

/** Adds to each row of a batch's scores the co-occurrence term of its history's last maxLength events. */
function addHistoryTerms(scores: Float32Array, config: { readonly numItems: number; readonly maxLength: number }, data: EncodedSequences, sequences: readonly number[], inputLength: (s: number) => number, blend: CooccurrenceBlend): void {
  const width = config.numItems + 1;
  sequences.forEach((s, row) => {
    const end = data.offsets[s]! + inputLength(s);
    addTerm(scores.subarray(row * width, (row + 1) * width), blend.term(data.items.subarray(Math.max(data.offsets[s]!, end - config.maxLength), end)));
  });
}

/**
 * The evaluation protocol for any scorer (the model, or a baseline): ranks
 * each evaluated sequence's held-out item among all items but the history's
 * items the exclusion policy leaves out (a held-out item among them is a
 * miss), split into novel and repeat targets, and, optionally, among sampled
 * unseen items.
 * `batchKey` orders the sequences by history length before batching.
 */
export function evaluateScorer(
  scorer: BatchScorer,
  numItems: number,
  data: EncodedSequences,
  split: LeaveOneOutSplit,
  options: EvaluationOptions,
  batchKey: (historyLength: number) => number = () => 0,
): Evaluation {
  return evaluateScorers((sequences, inputLength) => [scorer(sequences, inputLength)], 1, numItems, data, split, options, batchKey)[0]!;
}

/**
 * evaluateScorer for `count` scorings of each batch at once: one evaluation
 * per variant, each ranking against the same sampled negatives per user.
 */
export function evaluateScorers(
  scorers: BatchScorers,
  count: number,
  numItems: number,
  data: EncodedSequences,
  split: LeaveOneOutSplit,
  options: EvaluationOptions,
  batchKey: (historyLength: number) => number = () => 0,
): Evaluation[] {
  const batchSize = options.batchSize ?? 256;
  const policy = options.exclude ?? DEFAULT_EXCLUDE;
  const inputs = inputLengths(split, options.phase);
  const inputLength = (s: number): number => inputs[s]!;
  const accumulators = () => ({ full: new MetricAccumulator(), sampled: options.sampled ? new MetricAccumulator() : undefined });
  const variants = Array.from({ length: count }, () => ({ ...accumulators(), novel: new MetricAccumulator(), repeat: new MetricAccumulator(), groups: Array.from({ length: options.groups?.count ?? 0 }, accumulators) }));
  const random = new Random(options.sampled?.seed ?? 0);
  const order = Array.from(options.sequences ?? split.evaluated).sort((a, b) => batchKey(inputLength(a)) - batchKey(inputLength(b)) || a - b);
  for (let start = 0; start < order.length; start += batchSize) {
    const sequences = order.slice(start, start + batchSize);
    const scores = scorers(sequences, inputLength);
    if (scores.length !== count) throw new RangeError(`expected ${count} scorings of the batch, got ${scores.length}`);
    sequences.forEach((s, row) => {
      const begin = data.offsets[s]!;
      const target = data.items[begin + inputLength(s)]!;
      const historyItems = data.items.subarray(begin, begin + inputLength(s));
      const excluded = excludedItems(policy, historyItems, data.types.subarray(begin, begin + inputLength(s)));
      const hidden = excluded.has(target); // the API would never show it: a miss
      const repeat = historyItems.includes(target);
      const group = options.groups ? options.groups.of(target) : undefined;
      // Negatives: items the user never interacted with in the whole sequence.
      const negatives = options.sampled ? sampleNegatives(random, numItems, new Set(data.items.subarray(begin, data.offsets[s + 1]!)), options.sampled.count) : undefined;
      variants.forEach((variant, v) => {
        const rowScores = scores[v]!.subarray(row * (numItems + 1), (row + 1) * (numItems + 1));
        const fullRank = hidden ? MISS : rankOfTarget(rowScores, target, excluded);
        variant.full.add(fullRank);
        (repeat ? variant.repeat : variant.novel).add(fullRank);
        const inGroup = group === undefined ? undefined : variant.groups[group];
        inGroup?.full.add(fullRank);
        if (negatives) {
          const sampledRank = hidden ? MISS : rankAmongCandidates(rowScores, target, negatives);
          variant.sampled!.add(sampledRank);
          inGroup?.sampled?.add(sampledRank);
        }
      });
    });
  }
  const result = (f: MetricAccumulator, p: MetricAccumulator | undefined): Omit<Evaluation, 'groups'> => (p ? { full: f.result(), sampled: p.result() } : { full: f.result() });
  return variants.map((variant) => ({
    ...result(variant.full, variant.sampled),
    novel: variant.novel.result(),
    repeat: variant.repeat.result(),
    ...(options.groups && { groups: variant.groups.map((g) => result(g.full, g.sampled)) }),
  }));
}

/**
 * A fixed, seeded sample of the evaluated sequences (all of them when there
 * are at most `size`), ascending. Per-epoch validation only has to rank
 * epochs for early stopping; a few thousand users do that reliably at a
 * fraction of the cost of scoring every user against every item.
 */
export function sampleEvaluated(split: LeaveOneOutSplit, size: number, seed: number): Int32Array {
  const all = split.evaluated;
  if (size <= 0 || size >= all.length) return all;
  const random = new Random(seed);
  const picked = Array.from(all);
  for (let i = 0; i < size; i++) {
    const j = i + random.int(picked.length - i);
    [picked[i], picked[j]] = [picked[j]!, picked[i]!];
  }
  return Int32Array.from(picked.slice(0, size)).sort();
}
