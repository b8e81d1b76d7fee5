import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { AppError } from '../errors.js';
import { toJsonValue } from '../data/json.js';
import { leaveOneOutSplit } from '../data/leave-one-out-split.js';
import { hashSequences, loadSequences } from '../data/sequences.js';
import type { Store } from '../data/store.js';
import { evaluateModel, sampleEvaluated, type Evaluation } from '../evaluate/evaluate.js';
import { saveModel } from '../model/artifact.js';
import { selectBackend, type BackendPreference } from '../model/backend.js';
import { MODEL_DEFAULTS, type ModelConfig } from '../model/config.js';
import { SasRec } from '../model/sasrec.js';
import { Trainer, type EpochReport, type TrainingOptions } from './trainer.js';
import { ItemVocabulary } from './vocabulary.js';

export const DEFAULT_VALID_USERS = 10_000;

export interface TrainRunOptions {
  readonly model: Partial<Pick<ModelConfig, 'maxLength' | 'dim' | 'heads' | 'blocks' | 'ffnDim' | 'dropout'>>;
  readonly training: TrainingOptions;
  readonly epochs: number;
  /** Stop after this many epochs without a better validation NDCG@10. */
  readonly patience: number;
  readonly backend: BackendPreference;
  /** Folder under which each version gets `v<id>/`. */
  readonly artifactsRoot: string;
  /** The sampled protocol of the SASRec paper, reported beside full ranking. */
  readonly sampledNegatives: number;
  /** Users in the per-epoch validation sample (0 = all); the test set is always complete. */
  readonly validUsers?: number;
  /** At the start of each epoch (done = 0, loss NaN) and after every step. */
  readonly onStep?: (done: number, total: number, loss: number) => void;
  readonly onEpoch?: (report: EpochSummary) => void;
}

export interface EpochSummary extends EpochReport {
  readonly validNdcg10: number;
  readonly validHr10: number;
  readonly best: boolean;
}

export interface TrainRunResult {
  readonly versionId: number;
  readonly artifactPath: string;
  readonly backend: string;
  readonly dataHash: string;
  readonly epochs: EpochSummary[];
  readonly bestEpoch: number;
  readonly trainSeconds: number;
  readonly test: Evaluation;
}

/**
 * One training run, start to finish: histories from the store, the
 * leave-one-out split, training with validation after every epoch (the best
 * epoch's weights are kept, training stops after `patience` epochs without
 * improvement), test metrics, then the versioned artifact, the item
 * embeddings and a ModelVersion row that records how it was made.
 */
export async function trainRun(store: Store, options: TrainRunOptions): Promise<TrainRunResult> {
  const backend = await selectBackend(options.backend);
  const sequences = await loadSequences(store);
  if (sequences.items.length === 0) throw new AppError('NO_TRAINING_DATA', 'the store has no user events to train on; import some first');
  const vocabulary = ItemVocabulary.fromItems(sequences.items);
  const data = { offsets: sequences.offsets, items: vocabulary.encode(sequences.items), types: sequences.types };
  const split = leaveOneOutSplit(sequences.offsets);
  if (split.evaluated.length === 0) throw new AppError('NO_TRAINING_DATA', 'no user has the 4 events the leave-one-out protocol needs');
  const config: ModelConfig = {
    ...MODEL_DEFAULTS,
    ...options.model,
    ffnDim: options.model.ffnDim ?? options.model.dim ?? MODEL_DEFAULTS.dim,
    numItems: vocabulary.size,
    numEventTypes: Math.max(3, largest(sequences.types)),
    seed: options.training.seed,
  };
  const dataHash = hashSequences(sequences);
  const runConfig = {
    model: config,
    training: options.training,
    epochs: options.epochs,
    patience: options.patience,
    sampledNegatives: options.sampledNegatives,
    validUsers: options.validUsers ?? DEFAULT_VALID_USERS,
  };
  const version = await store.prisma.modelVersion.create({
    data: { status: 'training', config: toJsonValue({ ...runConfig, backend: backend.name }), dataHash, artifactPath: '' },
  });
  const artifactPath = resolve(join(options.artifactsRoot, `v${version.id}`));
  await store.prisma.modelVersion.update({ where: { id: version.id }, data: { artifactPath } });

  const validSample = sampleEvaluated(split, options.validUsers ?? DEFAULT_VALID_USERS, options.training.seed);
  const model = new SasRec(config);
  const trainer = new Trainer(model, data, split, options.training);
  let best: { epoch: number; ndcg: number; weights: tf.Tensor[] } | undefined;
  const epochs: EpochSummary[] = [];
  const started = performance.now();
  try {
    let sinceBest = 0;
    for (let epoch = 1; epoch <= options.epochs && sinceBest < options.patience; epoch++) {
      const report = trainer.trainEpoch(options.onStep);
      const valid = evaluateModel(model, data, split, { phase: 'valid', sequences: validSample }).full;
      const improved = !best || valid.ndcg[10]! > best.ndcg;
      if (improved) {
        best?.weights.forEach((w) => w.dispose());
        best = { epoch, ndcg: valid.ndcg[10]!, weights: model.variables.map((v) => tf.clone(v)) };
        sinceBest = 0;
      } else sinceBest++;
      const summary: EpochSummary = { ...report, validNdcg10: valid.ndcg[10]!, validHr10: valid.hr[10]!, best: improved };
      epochs.push(summary);
      options.onEpoch?.(summary);
    }
    // Serve and report the best epoch, not the last.
    model.variables.forEach((v, i) => v.assign(best!.weights[i]!));
    const trainSeconds = (performance.now() - started) / 1000;
    const test = evaluateModel(model, data, split, { phase: 'test', sampled: { count: options.sampledNegatives, seed: options.training.seed } });
    const metrics = { bestEpoch: best!.epoch, trainSeconds, test, epochs };
    saveModel(model, artifactPath, { vocabulary: Array.from(vocabulary.itemIds), dataHash, metrics });
    await writeItemEmbeddings(store, version.id, model, vocabulary);
    await store.prisma.modelVersion.update({ where: { id: version.id }, data: { status: 'ready', metrics: toJsonValue(metrics) } });
    return { versionId: version.id, artifactPath, backend: backend.name, dataHash, epochs, bestEpoch: best!.epoch, trainSeconds, test };
  } catch (error) {
    await store.prisma.modelVersion.update({ where: { id: version.id }, data: { status: 'failed', metrics: { error: (error as Error).message } } }).catch(() => {});
    throw error;
  } finally {
    best?.weights.forEach((w) => w.dispose());
    trainer.dispose();
    model.dispose();
  }
}

/** One row per item: its learned embedding (little-endian float32), keyed by the store's item id. */
async function writeItemEmbeddings(store: Store, versionId: number, model: SasRec, vocabulary: ItemVocabulary): Promise<void> {
  const { dim } = model.config;
  const table = model.itemEmbedding.dataSync() as Float32Array;
  const rows = Array.from(vocabulary.itemIds, (itemId, k) => {
    const vector = Buffer.alloc(dim * 4);
    for (let d = 0; d < dim; d++) vector.writeFloatLE(table[(k + 1) * dim + d]!, d * 4);
    return { modelVersionId: versionId, itemId, vector };
  });
  for (let i = 0; i < rows.length; i += 5000) await store.prisma.itemEmbedding.createMany({ data: rows.slice(i, i + 5000) });
}

/** The largest value of a typed array (spreading millions of values into Math.max overflows the stack). */
export function largest(values: ArrayLike<number>): number {
  let max = -Infinity;
  for (let i = 0; i < values.length; i++) if (values[i]! > max) max = values[i]!;
  return max;
}
