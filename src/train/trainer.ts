import * as tf from '@tensorflow/tfjs';
import type { LeaveOneOutSplit } from '../data/leave-one-out-split.js';
import { embeddingLookup } from '../model/ops.js';
import type { SasRec } from '../model/sasrec.js';
import { Random } from '../random.js';
import { epochBatches, trainingBatch, type Batch, type EncodedSequences } from './batches.js';
import { fullSoftmaxLoss, NegativeSampler, sampledSoftmaxLoss } from './losses.js';

export interface TrainingOptions {
  readonly loss: 'full' | 'sampled';
  /** Shared negatives per step (sampled loss). */
  readonly negatives: number;
  /** Popularity exponent of negative sampling: 0 uniform, 1 unigram. */
  readonly negativeAlpha: number;
  readonly learningRate: number;
  readonly batchSize: number;
  readonly seed: number;
}

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
  private epoch = 0;

  constructor(
    private readonly model: SasRec,
    private readonly data: EncodedSequences,
    private readonly split: LeaveOneOutSplit,
    private readonly options: TrainingOptions,
  ) {
    this.optimizer = tf.train.adam(options.learningRate, 0.9, 0.98);
    this.random = new Random(options.seed);
    if (options.loss === 'sampled') {
      // Popularity over the training events only: held-out targets must not leak into sampling.
      const counts = new Float64Array(model.config.numItems + 1);
      for (let s = 0; s < split.trainLength.length; s++) {
        for (let k = data.offsets[s]!; k < data.offsets[s]! + split.trainLength[s]!; k++) counts[data.items[k]!]!++;
      }
      this.sampler = new NegativeSampler(counts, options.negativeAlpha);
    }
  }

  /** One optimisation step on a batch; returns the mean loss over its target positions. */
  step(batch: Batch): number {
    const positions: number[] = [];
    const targetValues: number[] = [];
    batch.targets.forEach((target, i) => {
      if (target > 0) {
        positions.push(i);
        targetValues.push(target);
      }
    });
    if (positions.length === 0) return 0;
    const dropoutSeed = this.random.int(2 ** 31);
    const negatives = this.sampler?.sample(() => this.random.next(), this.options.negatives);
    return tf.tidy(() => {
      const { dim } = this.model.config;
      const items = tf.tensor2d(batch.items, [batch.batchSize, batch.length], 'int32');
      const types = tf.tensor2d(batch.types, [batch.batchSize, batch.length], 'int32');
      const at = tf.tensor1d(positions, 'int32');
      const targets = tf.tensor1d(targetValues, 'int32');
      const cost = this.optimizer.minimize(
        () => {
          const { hidden } = this.model.forward(items, types, { training: true, dropoutSeed });
          // Only positions with a target: a gather whose gradient works on wasm too.
          const states = embeddingLookup(tf.reshape(hidden, [batch.batchSize * batch.length, dim]) as tf.Tensor2D, at);
          const table = this.model.itemEmbedding as tf.Tensor2D;
          if (!negatives || !this.sampler) return fullSoftmaxLoss(states, table, targets);
          const logQ = this.sampler.logQ;
          return sampledSoftmaxLoss(
            states,
            table,
            targets,
            tf.tensor1d(negatives, 'int32'),
            tf.tensor1d(targetValues.map((t) => logQ[t]!)),
            tf.tensor1d(Array.from(negatives, (n) => logQ[n]!)),
          );
        },
        true,
        this.model.variables,
      );
      return cost!.dataSync()[0]!;
    });
  }

  /**
   * One pass over every trainable sequence in a seeded random order. onStep is
   * called with done = 0 (and loss NaN) before the first step, then after each.
   */
  trainEpoch(onStep?: (done: number, total: number, loss: number) => void): EpochReport {
    const started = performance.now();
    const batches = epochBatches(this.split, this.options.batchSize, this.random);
    onStep?.(0, batches.length, NaN);
    let lossSum = 0;
    batches.forEach((sequences, k) => {
      const loss = this.step(trainingBatch(this.data, this.split, sequences, this.model.config.maxLength));
      lossSum += loss;
      onStep?.(k + 1, batches.length, loss);
    });
    return { epoch: ++this.epoch, loss: lossSum / Math.max(1, batches.length), steps: batches.length, seconds: (performance.now() - started) / 1000 };
  }

  dispose(): void {
    this.optimizer.dispose();
  }
}
