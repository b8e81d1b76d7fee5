import { leaveOneOutSplit } from '../src/data/leave-one-out-split.js';
import { selectBackend } from '../src/model/backend.js';
import { MODEL_DEFAULTS } from '../src/model/config.js';
import { SasRec } from '../src/model/sasrec.js';
import { Random } from '../src/random.js';
import type { EncodedSequences } from '../src/data/encoded-sequences.js';
import { trainingBatch } from '../src/train/batches.js';
import { DEFAULT_TRAINING, Trainer, type LossName } from '../src/train/trainer.js';

/**
 * Training steps on long histories: 128 generated sequences that each fill a
 * 200-event window (so no padding to skip), over a 23,715-item catalogue like
 * amazon-games, dim 64, 2 blocks: with the default loss, and with BCE and
 * one negative per position, the loss of the reference PyTorch SASRec, which
 * needs ~2.2 s per step of this shape on this CPU.
 */
/** The speed reference shape is dim 64 (the PyTorch reference uses 50), whatever the default. */
export const REFERENCE_DIM = 64;

export interface LongStepOptions {
  readonly steps: number;
  readonly batchSize?: number;
  readonly maxLength?: number;
  readonly log: (line: string) => void;
}

export async function runLongStepBench(options: LongStepOptions): Promise<Record<string, unknown>> {
  const backend = await selectBackend('auto');
  const batchSize = options.batchSize ?? 128;
  const maxLength = options.maxLength ?? 200;
  const numItems = 23_715;
  const random = new Random(7);
  const length = maxLength + 3; // every training window is full after the leave-one-out split
  const items = new Int32Array(batchSize * length);
  for (let i = 0; i < items.length; i++) items[i] = 1 + random.int(numItems);
  const offsets = Int32Array.from({ length: batchSize + 1 }, (_, s) => s * length);
  const data: EncodedSequences = { offsets, items, types: new Uint8Array(items.length).fill(3) };
  const split = leaveOneOutSplit(offsets);
  const timeSteps = (options_: { loss: LossName }): number[] => {
    const model = new SasRec({ ...MODEL_DEFAULTS, dim: REFERENCE_DIM, ffnDim: REFERENCE_DIM, maxLength, numItems, numEventTypes: 3, seed: 1 });
    // The target window belongs to the sampled loss; the reference's BCE step predicts the next event only.
    const { targetWindow, ...others } = DEFAULT_TRAINING;
    const trainer = new Trainer(model, data, split, options_.loss === 'sampled' ? DEFAULT_TRAINING : { ...others, loss: options_.loss });
    const batch = trainingBatch(data, split, Int32Array.from({ length: batchSize }, (_, s) => s), maxLength);
    if (batch.length !== maxLength) throw new Error(`expected full windows, got ${batch.length}`);
    trainer.step(batch); // warm-up: first-use allocations
    const seconds: number[] = [];
    for (let k = 0; k < options.steps; k++) {
      const started = performance.now();
      trainer.step(batch);
      seconds.push((performance.now() - started) / 1000);
      options.log(`long step (${options_.loss}) ${k + 1}/${options.steps}: ${seconds[k]!.toFixed(3)} s`);
    }
    trainer.dispose();
    model.dispose();
    return seconds.sort((a, b) => a - b);
  };
  const median = (xs: number[]): number => Math.round(xs[Math.floor(xs.length / 2)]! * 1000) / 1000;
  const sampled = timeSteps({ loss: DEFAULT_TRAINING.loss });
  const bce = timeSteps({ loss: 'bce' });
  return {
    backend: backend.name,
    batch: batchSize,
    max_length: maxLength,
    dim: REFERENCE_DIM,
    blocks: MODEL_DEFAULTS.blocks,
    loss: DEFAULT_TRAINING.loss,
    negatives: DEFAULT_TRAINING.negatives,
    steps: options.steps,
    step_seconds_median: median(sampled),
    step_seconds_min: Math.round(sampled[0]! * 1000) / 1000,
    bce_step_seconds_median: median(bce),
    reference_pytorch_step_seconds: 2.2,
    reference_loss: 'bce, one negative per position',
  };
}
