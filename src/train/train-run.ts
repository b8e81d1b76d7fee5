import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { AppError } from '../errors.js';
import { toJsonValue } from '../data/json.js';
import { leaveOneOutSplit } from '../data/leave-one-out-split.js';
import { hashSequences, loadSequences } from '../data/sequences.js';
import type { Store } from '../data/store.js';
import { BASELINES, evaluateBaseline, type BaselineName } from '../evaluate/baselines.js';
import { evaluateModel, sampleEvaluated, type Evaluation } from '../evaluate/evaluate.js';
import { saveModel } from '../model/artifact.js';
import { selectBackend, type BackendPreference } from '../model/backend.js';
import { MODEL_DEFAULTS, type ModelConfig } from '../model/config.js';
import { SasRec } from '../model/sasrec.js';
import { readCheckpoint, removeCheckpoint, writeCheckpoint, type Checkpoint } from './checkpoint.js';
import { renderTrainingReport } from './report.js';
import { Trainer, type EpochReport, type TrainerState, type TrainingOptions } from './trainer.js';
import { ItemVocabulary } from './vocabulary.js';

export const DEFAULT_VALID_USERS = 10_000;
/** 16 epochs of the default model fit the 15-minute budget on 2 CPU cores (amazon-games). */
export const DEFAULT_EPOCHS = 16;
export const DEFAULT_PATIENCE = 3;

export interface TrainRunOptions {
  readonly model: Partial<Pick<ModelConfig, 'maxLength' | 'dim' | 'heads' | 'blocks' | 'ffnDim' | 'dropout' | 'itemBias'>> & { readonly eventTypes?: boolean };
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
  /**
   * Continue an unfinished version from its last checkpoint ('latest': the
   * newest one) instead of starting a new version. Every setting then comes
   * from the checkpoint; the ones given here are ignored.
   */
  readonly resume?: number | 'latest';
  /**
   * Make the new version the one the API serves: 'auto' (default) when no
   * version is active yet, 'always', or 'never' (activate later with
   * POST /v1/models/:version/activate after comparing).
   */
  readonly activate?: 'auto' | 'always' | 'never';
  /** Train on a window of the events (ignored on resume: the run's own window applies). */
  readonly window?: TrainingWindowOptions;
  /** At the start of each epoch (done = 0, loss NaN) and after every step. */
  readonly onStep?: (done: number, total: number, loss: number) => void;
  readonly onEpoch?: (report: EpochSummary) => void;
  /** Once, when the run knows its version (and whether it resumed). */
  readonly onStart?: (info: { versionId: number; backend: string; resumedFromEpoch: number }) => void;
}

export interface EpochSummary extends EpochReport {
  readonly validNdcg10: number;
  readonly validHr10: number;
  readonly best: boolean;
}

export interface TrainRunResult {
  readonly versionId: number;
  readonly artifactPath: string;
  readonly reportPath: string;
  readonly backend: string;
  readonly dataHash: string;
  readonly epochs: EpochSummary[];
  readonly bestEpoch: number;
  readonly trainSeconds: number;
  /** Whether this version is now the active one. */
  readonly activated: boolean;
  readonly test: Evaluation;
  /** The baselines on the same test split and protocol. */
  readonly baselines: Record<BaselineName, Evaluation>;
}

/** What a version was built with: saved in model_versions.config and in every checkpoint. */
interface RunConfig {
  readonly model: ModelConfig;
  readonly training: TrainingOptions;
  readonly epochs: number;
  readonly patience: number;
  readonly sampledNegatives: number;
  readonly validUsers: number;
  /** Which events were read (absent: all). */
  readonly window?: TrainingWindowOptions;
}

/** Incremental training: only recent events, only each user's latest ones. */
export interface TrainingWindowOptions {
  /** ISO 8601: events at or after this instant. */
  readonly since?: string;
  /** Each user's most recent N events. */
  readonly maxEventsPerUser?: number;
}

interface CheckpointState {
  readonly versionId: number;
  readonly dataHash: string;
  readonly run: RunConfig;
  readonly trainer: TrainerState;
  readonly epochs: EpochSummary[];
  readonly best: { readonly epoch: number; readonly ndcg: number } | null;
  readonly sinceBest: number;
  readonly trainSeconds: number;
}

export const CHECKPOINT_FILE = 'checkpoint.bin';
export const REPORT_FILE = 'report.html';
const LOCK_FILE = 'train.lock';

/**
 * One training run, start to finish: histories from the store, the
 * leave-one-out split, training with validation after every epoch (the best
 * epoch's weights are kept, training stops after `patience` epochs without
 * improvement), test metrics beside the baselines, then the versioned
 * artifact, the HTML report, the item embeddings and a ModelVersion row
 * that records how it was made. After every epoch a checkpoint replaces the
 * previous one, so a crash or Ctrl-C loses at most the epoch in progress
 * (`resume`); a finished run deletes it.
 */
export async function trainRun(store: Store, options: TrainRunOptions): Promise<TrainRunResult> {
  const backend = await selectBackend(options.backend);
  // A resumed run reads the window it started with.
  const resumable = options.resume !== undefined ? await findResumable(store, options.resume) : undefined;
  const window = resumable ? (resumable.checkpoint.state.run.window ?? {}) : (options.window ?? {});
  const sequences = await loadSequences(store, {
    ...(window.since !== undefined && { since: new Date(window.since) }),
    ...(window.maxEventsPerUser !== undefined && { maxPerOwner: window.maxEventsPerUser }),
  });
  if (sequences.items.length === 0) throw new AppError('NO_TRAINING_DATA', 'the store has no user events to train on; import some first');
  const vocabulary = ItemVocabulary.fromItems(sequences.items);
  const data = { offsets: sequences.offsets, items: vocabulary.encode(sequences.items), types: sequences.types };
  const split = leaveOneOutSplit(sequences.offsets);
  if (split.evaluated.length === 0) throw new AppError('NO_TRAINING_DATA', 'no user has the 4 events the leave-one-out protocol needs');
  const dataHash = hashSequences(sequences);

  let resumed: Checkpoint<CheckpointState> | undefined;
  let version: { id: number; artifactPath: string; createdAt: Date };
  let run: RunConfig;
  if (resumable) {
    ({ version, checkpoint: resumed } = resumable);
    if (resumed.state.dataHash !== dataHash) {
      throw new AppError('RESUME_DATA_CHANGED', `version ${version.id} was trained on data snapshot ${resumed.state.dataHash.slice(0, 12)}; the store now holds ${dataHash.slice(0, 12)}. Start a new run instead.`);
    }
    run = resumed.state.run;
    await store.prisma.modelVersion.update({ where: { id: version.id }, data: { status: 'training' } });
  } else {
    const { eventTypes = true, ...modelOptions } = options.model;
    const model: ModelConfig = {
      ...MODEL_DEFAULTS,
      ...modelOptions,
      ffnDim: options.model.ffnDim ?? options.model.dim ?? MODEL_DEFAULTS.dim,
      numItems: vocabulary.size,
      numEventTypes: eventTypes ? Math.max(3, largest(sequences.types)) : 0,
      seed: options.training.seed,
    };
    run = {
      model,
      training: options.training,
      epochs: options.epochs,
      patience: options.patience,
      sampledNegatives: options.sampledNegatives,
      validUsers: options.validUsers ?? DEFAULT_VALID_USERS,
      ...((window.since !== undefined || window.maxEventsPerUser !== undefined) && { window }),
    };
    const created = await store.prisma.modelVersion.create({ data: { status: 'training', config: toJsonValue({ ...run, backend: backend.name }), dataHash, artifactPath: '' } });
    const artifactPath = resolve(join(options.artifactsRoot, `v${created.id}`));
    await store.prisma.modelVersion.update({ where: { id: created.id }, data: { artifactPath } });
    version = { id: created.id, artifactPath, createdAt: created.createdAt };
  }
  const { artifactPath } = version;
  mkdirSync(artifactPath, { recursive: true });
  const releaseLock = takeLock(artifactPath, version.id);

  const validSample = sampleEvaluated(split, run.validUsers, run.training.seed);
  const model = new SasRec(run.model);
  const trainer = new Trainer(model, data, split, run.training);
  let best: { epoch: number; ndcg: number; weights: tf.Tensor[] } | undefined;
  const epochs: EpochSummary[] = [];
  let sinceBest = 0;
  let trainSeconds = 0;
  try {
    if (resumed) {
      const state = resumed.state;
      const tensors = resumed.tensors;
      const restore = (prefix: string): tf.Tensor[] =>
        model.namedVariables().map(([name, v]) => {
          const saved = tensors.get(`${prefix}/${name}`);
          if (!saved || saved.shape.join('x') !== v.shape.join('x')) throw new AppError('CHECKPOINT_CORRUPT', `checkpoint of version ${version.id} lacks ${prefix}/${name}`);
          return tf.tensor(saved.values, saved.shape);
        });
      const variables = model.variables;
      restore('model').forEach((t, i) => {
        variables[i]!.assign(t);
        t.dispose();
      });
      if (state.best) best = { ...state.best, weights: restore('best') };
      await trainer.restoreState(state.trainer, tensors);
      epochs.push(...state.epochs);
      sinceBest = state.sinceBest;
      trainSeconds = state.trainSeconds;
    }
    options.onStart?.({ versionId: version.id, backend: backend.name, resumedFromEpoch: epochs.length });
    for (let epoch = epochs.length + 1; epoch <= run.epochs && sinceBest < run.patience; epoch++) {
      const started = performance.now();
      const report = trainer.trainEpoch(options.onStep);
      const valid = evaluateModel(model, data, split, { phase: 'valid', sequences: validSample }).full;
      const improved = !best || valid.ndcg[10]! > best.ndcg;
      if (improved) {
        best?.weights.forEach((w) => w.dispose());
        best = { epoch, ndcg: valid.ndcg[10]!, weights: model.variables.map((v) => tf.clone(v)) };
        sinceBest = 0;
      } else sinceBest++;
      trainSeconds += (performance.now() - started) / 1000;
      const summary: EpochSummary = { ...report, validNdcg10: valid.ndcg[10]!, validHr10: valid.hr[10]!, best: improved };
      epochs.push(summary);
      const trainerState = await trainer.saveState();
      const state: CheckpointState = { versionId: version.id, dataHash, run, trainer: trainerState.state, epochs, best: { epoch: best!.epoch, ndcg: best!.ndcg }, sinceBest, trainSeconds };
      writeCheckpoint(join(artifactPath, CHECKPOINT_FILE), state, [
        ...model.namedVariables().map(([name, v]): [string, tf.Tensor] => [`model/${name}`, v]),
        ...model.namedVariables().map(([name], i): [string, tf.Tensor] => [`best/${name}`, best!.weights[i]!]),
        ...trainerState.tensors,
      ]);
      options.onEpoch?.(summary);
    }
    // Serve and report the best epoch, not the last.
    model.variables.forEach((v, i) => v.assign(best!.weights[i]!));
    const testOptions = { phase: 'test', sampled: { count: run.sampledNegatives, seed: run.training.seed } } as const;
    const test = evaluateModel(model, data, split, testOptions);
    const baselines = Object.fromEntries(BASELINES.map((name) => [name, evaluateBaseline(name, vocabulary.size, data, split, testOptions)])) as Record<BaselineName, Evaluation>;
    const metrics = { bestEpoch: best!.epoch, trainSeconds, test, baselines, epochs };
    saveModel(model, artifactPath, { vocabulary: Array.from(vocabulary.itemIds), dataHash, metrics });
    const reportPath = join(artifactPath, REPORT_FILE);
    writeFileSync(
      reportPath,
      renderTrainingReport({ versionId: version.id, createdAt: version.createdAt, backend: backend.name, dataHash, config: { ...run, backend: backend.name }, epochs, bestEpoch: best!.epoch, trainSeconds, test, baselines }),
    );
    await writeItemEmbeddings(store, version.id, model, vocabulary);
    const policy = options.activate ?? 'auto';
    const activate = policy === 'always' || (policy === 'auto' && (await store.prisma.modelVersion.count({ where: { active: true } })) === 0);
    await store.prisma.$transaction([
      ...(activate ? [store.prisma.modelVersion.updateMany({ where: { active: true }, data: { active: false } })] : []),
      store.prisma.modelVersion.update({ where: { id: version.id }, data: { status: 'ready', metrics: toJsonValue(metrics), ...(activate && { active: true }) } }),
    ]);
    removeCheckpoint(join(artifactPath, CHECKPOINT_FILE));
    return { versionId: version.id, artifactPath, reportPath, backend: backend.name, dataHash, epochs, bestEpoch: best!.epoch, trainSeconds, test, baselines, activated: activate };
  } catch (error) {
    await store.prisma.modelVersion.update({ where: { id: version.id }, data: { status: 'failed', metrics: { error: (error as Error).message } } }).catch(() => {});
    throw error;
  } finally {
    best?.weights.forEach((w) => w.dispose());
    trainer.dispose();
    model.dispose();
    releaseLock();
  }
}

/** The version to resume and its checkpoint: the given one, or the newest unfinished version that has a checkpoint. */
async function findResumable(store: Store, which: number | 'latest'): Promise<{ version: { id: number; artifactPath: string; createdAt: Date }; checkpoint: Checkpoint<CheckpointState> }> {
  const candidates =
    which === 'latest'
      ? await store.prisma.modelVersion.findMany({ where: { status: { in: ['training', 'failed'] } }, orderBy: { id: 'desc' } })
      : await store.prisma.modelVersion.findMany({ where: { id: which } });
  if (which !== 'latest' && candidates.length === 0) throw new AppError('MODEL_VERSION_NOT_FOUND', `there is no model version ${which}`);
  for (const version of candidates) {
    if (version.status === 'ready') throw new AppError('RESUME_FINISHED', `model version ${version.id} finished training; there is nothing to resume`);
    const path = join(version.artifactPath, CHECKPOINT_FILE);
    if (!existsSync(path)) {
      if (which !== 'latest') throw new AppError('CHECKPOINT_NOT_FOUND', `model version ${version.id} has no checkpoint (it stopped before finishing its first epoch); start a new run`);
      continue;
    }
    return { version, checkpoint: readCheckpoint<CheckpointState>(path) };
  }
  throw new AppError('CHECKPOINT_NOT_FOUND', 'no unfinished model version has a checkpoint to resume; start a new run');
}

/**
 * A lock file with the owner's pid in the artifact folder: two processes
 * never train the same version (a second --resume while the first still
 * runs is refused). A lock left by a dead process is taken over.
 */
function takeLock(directory: string, versionId: number): () => void {
  const path = join(directory, LOCK_FILE);
  try {
    const pid = Number(readFileSync(path, 'utf8'));
    if (pid !== process.pid && isAlive(pid)) throw new AppError('TRAINING_IN_PROGRESS', `model version ${versionId} is being trained by process ${pid}`);
  } catch (error) {
    if (error instanceof AppError) throw error; // anything else: no lock, or an unreadable one to replace
  }
  writeFileSync(path, String(process.pid));
  return () => rmSync(path, { force: true });
}

function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
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
