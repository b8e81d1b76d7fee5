import * as tf from '@tensorflow/tfjs';
import type { LeaveOneOutSplit } from '../data/leave-one-out-split.js';
import { embeddingLookup } from '../model/ops.js';
import type { SasRec } from '../model/sasrec.js';
import { Random } from '../random.js';
import { trainingItemCounts, type Batch, type EncodedSequences } from '../data/encoded-sequences.js';
import { epochBatches, replaceInputItems, trainingBatch } from './batches.js';
import { bceLoss, fullSoftmaxLoss, gbceBeta, gbceLoss, NegativeSampler, sampledSoftmaxBatch, sampledSoftmaxLoss } from './losses.js';

export const DEFAULT_GBCE_T = 0.75;

export const LOSSES = ['sampled', 'full', 'gbce', 'bce'] as const;
export type LossName = (typeof LOSSES)[number];

export interface TrainingOptions {
  /**
   * sampled: softmax over shared negatives with logQ correction; full: softmax over the
   * catalogue; gbce: gSASRec's generalised BCE over shared uniform negatives; bce: the
   * original SASRec's BCE with one uniform negative per position.
   */
  readonly loss: LossName;
  /** Negatives: shared by the whole step (sampled loss) or per position (gbce). */
  readonly negatives: number;
  /** Popularity exponent of negative sampling for the sampled loss: 0 uniform, 1 unigram. */
  readonly negativeAlpha: number;
  /** gBCE calibration t in [0, 1] (gSASRec's default 0.75). */
  readonly gbceT?: number;
  readonly learningRate: number;
  /**
   * Linear learning-rate decay: epoch 1 trains at learningRate, epoch
   * `epochs` (and later) at learningRate × finalFactor. On amazon-games, decaying
   * to 0.1× over 18 epochs raised test NDCG@10 from 0.0497 to 0.0564 (full)
   * and 0.5130 to 0.5232 (sampled) against a constant rate.
   */
  readonly learningRateDecay?: { readonly finalFactor: number; readonly epochs: number };
  readonly batchSize: number;
  /** Group histories of similar length into a batch (less padding; see epochBatches). Default true. */
  readonly bucketByLength?: boolean;
  readonly seed: number;
  /**
   * Stochastic shared embeddings: the probability that an input event's item
   * is replaced by a random item for one step (replaceInputItems). Default 0;
   * the training job uses DEFAULT_TRAINING's 0.1.
   */
  readonly itemReplacement?: number;
  /**
   * A batch with more positions (rows × window) than this is run as several
   * micro-batches whose gradients are summed into one optimizer step: the same
   * update with a lower peak memory. Default DEFAULT_MAX_STEP_POSITIONS.
   */
  readonly maxStepPositions?: number;
  /**
   * Sampled loss only: each position also predicts the events after its next
   * one, up to `size` targets (the next event and size − 1 later ones, within
   * the training events), the j-th later one weighted decay^j, each in a
   * softmax of its own against the step's negatives. Absent or size 1: the
   * next event only.
   */
  readonly targetWindow?: { readonly size: number; readonly decay: number };
  /**
   * Each target's weight in the loss by its event type, indexed by type id
   * (1 view, 2 cart, 3 purchase, custom types after; index 0 unused); a type
   * not listed weighs 1. Weight 0 trains no position whose next event has
   * that type, so [0, 0, 0, 1] trains only the positions followed by a
   * purchase. Weights other than 0 and 1 need the sampled loss, whose softmax
   * is a weighted mean. Absent: every target weighs 1.
   */
  readonly targetWeights?: readonly number[];
  /**
   * How the item table starts: 'random' (N(0, 1/dim)) or 'cooccurrence', a
   * spectral embedding of the training histories' item co-occurrence
   * (spectral-embedding.ts), computed by the training run. Default 'random';
   * the training job uses DEFAULT_TRAINING's 'cooccurrence'.
   */
  readonly itemInit?: ItemInit;
  /** With itemInit 'cooccurrence': the table's spread in units of the random start's 1/√dim (default 1). */
  readonly itemInitSpread?: number;
  /**
   * Blend an item-to-item co-occurrence term into the version's scores
   * (CooccurrenceBlend), its weights fitted on validation after training;
   * kept only where it raises validation NDCG@10. Used by the training run,
   * not the trainer. Default false; the training job uses DEFAULT_TRAINING's true.
   */
  readonly cooccurrenceTerm?: boolean;
}

export const ITEM_INITS = ['random', 'cooccurrence'] as const;
export type ItemInit = (typeof ITEM_INITS)[number];

/**
 * 128 rows of 25 events. On amazon-games only the ~10 longest of 243 batches
 * per epoch are longer, and they set the peak memory of training: splitting
 * them cut a dim-128 training thread's WebAssembly heap from 656 to 387 MB and its peak RSS
 * from ~1,000 to ~700 MB at the same epoch time (same loss to 4 digits).
 */
export const DEFAULT_MAX_STEP_POSITIONS = 3200;

/** Row ranges [from, to) of a batch, each with at most maxPositions positions (at least one row each). */
export function microBatches(batch: Batch, maxPositions: number): [number, number][] {
  const rowsPerChunk = Math.max(1, Math.floor(maxPositions / Math.max(1, batch.length)));
  if (rowsPerChunk >= batch.batchSize) return [[0, batch.batchSize]];
  const parts = Math.ceil(batch.batchSize / rowsPerChunk);
  // Equal parts rather than full ones and a remainder: similar shapes, similar cost.
  const size = Math.ceil(batch.batchSize / parts);
  return Array.from({ length: parts }, (_, k): [number, number] => [k * size, Math.min(batch.batchSize, (k + 1) * size)]).filter(([a, b]) => b > a);
}

/** Each position's targets under a target window, [positions, width] row-major, and their weights. */
export interface TargetWindow {
  readonly width: number;
  readonly targets: Int32Array;
  readonly weights: Float32Array;
}

/**
 * The target window of each position of a training batch (`positions`
 * index its flattened rows): its next event, then the later ones of the same
 * row — the targets of the positions after it, all training events — the
 * j-th after the next weighted decay^j; 0 with weight 0 past the row's end.
 */
export function windowTargets(batch: Batch, positions: readonly number[], size: number, decay: number, typeWeight: (type: number) => number = () => 1): TargetWindow {
  const targets = new Int32Array(positions.length * size);
  const weights = new Float32Array(positions.length * size);
  positions.forEach((p, i) => {
    const column = p % batch.length;
    for (let j = 0; j < size && column + j < batch.length; j++) {
      const target = batch.targets[p + j]!;
      if (target === 0) break;
      const weight = decay ** j * typeWeight(batch.targetTypes?.[p + j] ?? 0);
      if (weight === 0) continue; // an empty slot: a later target of the window may still count
      targets[i * size + j] = target;
      weights[i * size + j] = weight;
    }
  });
  return { width: size, targets, weights };
}

/** The weight of a target of each event type under TrainingOptions.targetWeights (1 where not listed). */
export function targetTypeWeight(weights: readonly number[] | undefined): (type: number) => number {
  if (!weights) return () => 1;
  return (type) => (type > 0 && type < weights.length ? weights[type]! : 1);
}

function sum(values: Float32Array): number {
  let total = 0;
  for (const v of values) total += v;
  return total;
}

/** A trainer's position, saved in checkpoints (see saveState). */
export interface TrainerState {
  readonly epoch: number;
  readonly random: number;
  readonly accBeta1: number;
  readonly accBeta2: number;
}

/** tfjs's Adam keeps its bias-correction products in private variables; their names are stable across 4.x. */
interface AdamInternals {
  readonly accBeta1: tf.Variable;
  readonly accBeta2: tf.Variable;
  /** Read by every Adam update; set per epoch for the decay schedule. */
  learningRate: number;
}

/**
 * Defaults chosen by measurement on amazon-games (docs/experiments.md): the
 * sampled softmax over 2,048 shared negatives reached the best validation
 * NDCG@10 of the losses tried (0.059; 1,024 negatives 0.058, 256 lower) at
 * about a sixth of the full softmax's cost per step; lr 0.005 converged
 * where 0.001 had barely started after 2 epochs, and 0.01 peaked lower.
 */
/**
 * The training job decays the learning rate linearly to this fraction of --lr
 * over --epochs (measured on amazon-games, docs/experiments.md).
 */
export const DEFAULT_LR_FINAL = 0.1;

export const DEFAULT_TRAINING: TrainingOptions = {
  loss: 'sampled',
  negatives: 2048,
  negativeAlpha: 0.5,
  learningRate: 0.005,
  batchSize: 128,
  bucketByLength: true,
  seed: 42,
  // Off: re-checked on validation (bench/results/ablation-2026-12-03T00-03-04-400Z.json), the defaults without
  // replacement reached held-out validation NDCG@10 0.0783 against 0.0768 with 10 % replaced (which had been
  // chosen on test numbers, before the co-occurrence start and term). The option stays for other data.
  itemReplacement: 0,
  // The next 3 events weighted 1, 0.3, 0.09, and the item table started from co-occurrence: on validation
  // (the same ablation) 0.0768 against 0.0764 with one target and 0.0744 with a random start.
  targetWindow: { size: 3, decay: 0.3 },
  itemInit: 'cooccurrence',
  itemInitSpread: 1.5,
  cooccurrenceTerm: true,
};

export interface EpochReport {
  readonly epoch: number;
  readonly loss: number;
  readonly steps: number;
  readonly seconds: number;
}

/**
 * Trains a SasRec on encoded sequences: every position of every training
 * window predicts the next event. Deterministic for a seed on a given
 * backend: batch order, dropout masks and negative samples all come from it.
 */
export class Trainer {
  private readonly optimizer: tf.Optimizer;
  private readonly random: Random;
  private readonly sampler: NegativeSampler | undefined;
  private readonly typeWeight: (type: number) => number;
  /** Some target type weighs neither 0 nor 1: the loss is a weighted mean. */
  private readonly weighted: boolean;
  private epoch = 0;

  constructor(
    private readonly model: SasRec,
    private readonly data: EncodedSequences,
    private readonly split: LeaveOneOutSplit,
    private readonly options: TrainingOptions,
  ) {
    if ((options.targetWindow?.size ?? 1) > 1 && options.loss !== 'sampled') throw new RangeError(`a target window needs the sampled loss, not ${options.loss}`);
    const weights = options.targetWeights ?? [];
    if (weights.some((w) => !Number.isFinite(w) || w < 0)) throw new RangeError(`target weights must be finite and at least 0, not ${weights.join(', ')}`);
    this.weighted = weights.some((w, type) => type > 0 && w !== 0 && w !== 1);
    if (this.weighted && options.loss !== 'sampled') throw new RangeError(`target weights other than 0 and 1 need the sampled loss, not ${options.loss}`);
    this.typeWeight = targetTypeWeight(options.targetWeights);
    this.optimizer = tf.train.adam(options.learningRate, 0.9, 0.98);
    this.random = new Random(options.seed);
    if (options.loss !== 'full') {
      // Popularity over the training events only: held-out targets must not leak into sampling.
      const counts = trainingItemCounts(data, split, model.config.numItems);
      // gSASRec and SASRec sample negatives uniformly; only the softmax corrects for popularity.
      this.sampler = new NegativeSampler(counts, options.loss === 'sampled' ? options.negativeAlpha : 0);
    }
  }

  /** One optimisation step on a batch; returns the mean loss over its target positions. */
  step(batch: Batch): number {
    const positions: number[] = [];
    const targetValues: number[] = [];
    batch.targets.forEach((target, i) => {
      if (target > 0 && this.typeWeight(batch.targetTypes?.[i] ?? 0) > 0) {
        positions.push(i);
        targetValues.push(target);
      }
    });
    if (positions.length === 0) return 0;
    const dropoutSeed = this.random.int(2 ** 31);
    // Replaced on a copy: the caller's batch stays as it was (a benchmark steps the same batch repeatedly).
    const replace = this.options.itemReplacement ?? 0;
    const inputItems = replace > 0 ? Int32Array.from(batch.items) : batch.items;
    replaceInputItems(inputItems, replace, this.model.config.numItems, this.random);
    const { loss } = this.options;
    // bce: one negative per position; gbce: k per position; sampled: k shared by the whole batch.
    const perPosition = loss === 'bce' ? 1 : loss === 'gbce' ? this.options.negatives : 0;
    const negatives = this.sampler?.sample(() => this.random.next(), perPosition > 0 ? positions.length * perPosition : this.options.negatives);
    if (perPosition > 0 && negatives) {
      // Never a position's own target.
      negatives.forEach((n, i) => {
        const target = targetValues[Math.floor(i / perPosition)];
        while (negatives[i] === target) negatives[i] = this.sampler!.sample(() => this.random.next(), 1)[0]!;
      });
    }
    const size = this.options.targetWindow?.size ?? 1;
    // Type weights ride on the window's per-target weights; a window of one when there is no target window.
    const window = size > 1 || this.weighted ? windowTargets(batch, positions, size, this.options.targetWindow?.decay ?? 1, this.typeWeight) : undefined;
    const chunks = microBatches(batch, this.options.maxStepPositions ?? DEFAULT_MAX_STEP_POSITIONS);
    return tf.tidy(() => {
      const variables = this.model.variables;
      if (chunks.length === 1) {
        const cost = this.optimizer.minimize(() => this.batchLoss(batch, inputItems, 0, batch.batchSize, dropoutSeed, positions, targetValues, negatives, window), true, variables);
        return cost!.dataSync()[0]!;
      }
      // Gradient accumulation: each micro-batch's mean loss weighted by its share of the target
      // positions, so the summed gradient is the whole batch's, applied in one optimizer step.
      const accumulated: Record<string, tf.Tensor> = {};
      let lossSum = 0;
      let first = 0;
      chunks.forEach(([from, to], c) => {
        const rowStart = from * batch.length;
        const rowEnd = to * batch.length;
        while (first < positions.length && positions[first]! < rowStart) first++;
        let last = first;
        while (last < positions.length && positions[last]! < rowEnd) last++;
        if (last === first) return;
        const share = (last - first) / positions.length;
        const chunkPositions = positions.slice(first, last).map((p) => p - rowStart);
        const chunkNegatives = perPosition > 0 && negatives ? negatives.subarray(first * perPosition, last * perPosition) : negatives;
        const chunkWindow = window && { width: window.width, targets: window.targets.subarray(first * window.width, last * window.width), weights: window.weights.subarray(first * window.width, last * window.width) };
        // A window's loss is a mean over target weights rather than positions: the chunk's share is its share of the weight.
        const chunkShare = window ? sum(chunkWindow!.weights) / sum(window.weights) : share;
        const { value, grads } = tf.variableGrads(
          () => tf.mul(this.batchLoss(batch, inputItems, from, to, dropoutSeed + c, chunkPositions, targetValues.slice(first, last), chunkNegatives, chunkWindow), chunkShare) as tf.Scalar,
          variables,
        );
        lossSum += value.dataSync()[0]!;
        for (const [name, grad] of Object.entries(grads)) {
          const previous = accumulated[name];
          accumulated[name] = previous ? tf.add(previous, grad) : grad;
          if (previous) {
            previous.dispose();
            grad.dispose();
          }
        }
        value.dispose();
        first = last;
      });
      this.optimizer.applyGradients(accumulated);
      return lossSum;
    });
  }

  /**
   * The mean loss of rows [from, to) of a batch: `positions` index the
   * flattened rows of that range, `targetValues` are their targets, and
   * `negatives` the step's (shared) or theirs (per position).
   */
  private batchLoss(batch: Batch, inputItems: Int32Array, from: number, to: number, dropoutSeed: number, positions: number[], targetValues: number[], negatives: Int32Array | undefined, window: TargetWindow | undefined): tf.Scalar {
    const { dim, numItems } = this.model.config;
    const { loss } = this.options;
    const rows = to - from;
    const items = tf.tensor2d(inputItems.subarray(from * batch.length, to * batch.length), [rows, batch.length], 'int32');
    const types = tf.tensor2d(batch.types.subarray(from * batch.length, to * batch.length), [rows, batch.length], 'int32');
    const at = tf.tensor1d(positions, 'int32');
    const targets = tf.tensor1d(targetValues, 'int32');
    const { hidden } = this.model.forward(items, types, { training: true, dropoutSeed });
    // Only positions with a target: a gather whose gradient works on wasm too.
    const states = this.model.outputStates(embeddingLookup(tf.reshape(hidden, [rows * batch.length, dim]) as tf.Tensor2D, at));
    const table = this.model.outputTable();
    if (loss === 'full' || !negatives || !this.sampler) return fullSoftmaxLoss(states, table, targets);
    const negativeTensor = tf.tensor1d(negatives, 'int32');
    if (loss === 'bce') return bceLoss(states, table, targets, negativeTensor);
    if (loss === 'gbce') return gbceLoss(states, table, targets, negativeTensor, gbceBeta(this.options.negatives, numItems, this.options.gbceT ?? DEFAULT_GBCE_T));
    if (window) return sampledSoftmaxLoss(states, table, sampledSoftmaxBatch(window.targets, negatives, this.sampler.logQ, window));
    return sampledSoftmaxLoss(states, table, sampledSoftmaxBatch(targetValues, negatives, this.sampler.logQ));
  }

  /**
   * One pass over every trainable sequence in a seeded random order. onStep is
   * called with done = 0 (and loss NaN) before the first step, then after each.
   */
  trainEpoch(onStep?: (done: number, total: number, loss: number) => void): EpochReport {
    const started = performance.now();
    (this.optimizer as unknown as AdamInternals).learningRate = this.learningRateAt(this.epoch + 1);
    const batches = epochBatches(this.split, this.options.batchSize, this.random, this.options.bucketByLength ?? true, this.model.config.maxLength);
    onStep?.(0, batches.length, NaN);
    let lossSum = 0;
    batches.forEach((sequences, k) => {
      const loss = this.step(trainingBatch(this.data, this.split, sequences, this.model.config.maxLength));
      lossSum += loss;
      onStep?.(k + 1, batches.length, loss);
    });
    return { epoch: ++this.epoch, loss: lossSum / Math.max(1, batches.length), steps: batches.length, seconds: (performance.now() - started) / 1000 };
  }

  /** The learning rate of a (1-based) epoch under the decay schedule. */
  learningRateAt(epoch: number): number {
    const decay = this.options.learningRateDecay;
    if (!decay || decay.epochs <= 1) return this.options.learningRate;
    const progress = Math.min(1, (epoch - 1) / (decay.epochs - 1));
    return this.options.learningRate * (1 - (1 - decay.finalFactor) * progress);
  }

  /** Epochs trained so far. */
  get epochsDone(): number {
    return this.epoch;
  }

  /**
   * Everything needed to continue exactly where this trainer stands: the
   * epoch count and random state, and Adam's step count and moments. The
   * tensors stay owned by the optimizer; write them out before the next step.
   */
  async saveState(): Promise<{ state: TrainerState; tensors: [string, tf.Tensor][] }> {
    const weights = await this.optimizer.getWeights();
    const adam = this.optimizer as unknown as AdamInternals;
    const state: TrainerState = {
      epoch: this.epoch,
      random: this.random.state,
      // Adam's bias corrections are running float32 products; restoring them as saved keeps a resumed run bit-identical.
      accBeta1: adam.accBeta1.dataSync()[0]!,
      accBeta2: adam.accBeta2.dataSync()[0]!,
    };
    return { state, tensors: weights.map((w, i) => [`optimizer/${i}`, w.tensor]) };
  }

  async restoreState(state: TrainerState, tensors: ReadonlyMap<string, { shape: number[]; values: Float32Array }>): Promise<void> {
    const weights: { name: string; tensor: tf.Tensor }[] = [];
    for (let i = 0; tensors.has(`optimizer/${i}`); i++) {
      const { shape, values } = tensors.get(`optimizer/${i}`)!;
      weights.push({ name: `optimizer/${i}`, tensor: tf.tensor(values, shape) });
    }
    if (weights.length > 0) await this.optimizer.setWeights(weights);
    const adam = this.optimizer as unknown as AdamInternals;
    tf.tidy(() => {
      adam.accBeta1.assign(tf.scalar(state.accBeta1));
      adam.accBeta2.assign(tf.scalar(state.accBeta2));
    });
    this.epoch = state.epoch;
    this.random.state = state.random;
  }

  dispose(): void {
    this.optimizer.dispose();
  }
}
