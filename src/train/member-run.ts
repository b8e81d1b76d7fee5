import { existsSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { EvalType, LeaveOneOutSplit } from '../data/leave-one-out-split.js';
import { DEFAULT_EXCLUDE, type ExcludePolicy } from '../data/exclusion.js';
import { AppError } from '../errors.js';
import { evaluateModel } from '../evaluate/evaluate.js';
import type { ModelConfig } from '../model/config.js';
import { SasRecEnsemble } from '../model/ensemble.js';
import { SasRec } from '../model/sasrec.js';
import type { EncodedSequences } from '../data/encoded-sequences.js';
import { readCheckpoint, writeCheckpoint } from './checkpoint.js';
import { Trainer, type EpochReport, type TrainerState, type TrainingOptions } from './trainer.js';

/**
 * One member of a model version's ensemble, trained start to finish: epochs
 * with validation after each (the best epoch's weights are kept; training
 * stops after `patience` epochs without improvement), and after every epoch a
 * checkpoint of its own (checkpoint-<member>.bin) replacing the previous one.
 * Member k is seeded with the run's seed + k, so it trains the same wherever
 * it runs: in the job's thread or in a worker thread beside the others.
 */

/** What a version was built with: saved in model_versions.config and in every checkpoint. */
export interface RunConfig {
  /** The first member's model; member k differs only in its seed (seed + k). */
  readonly model: ModelConfig;
  readonly training: TrainingOptions;
  /** Ensemble members (absent in versions trained before ensembles: one). */
  readonly members?: number;
  readonly epochs: number;
  readonly patience: number;
  readonly sampledNegatives: number;
  readonly validUsers: number;
  /** Which events were read (absent: all). */
  readonly window?: TrainingWindowOptions;
  /**
   * What the members validate on (absent: 'event', each user's next event):
   * 'purchase' validates on the next purchase and trains only on events before
   * both evaluations' targets (evaluationSplits).
   */
  readonly evalType?: EvalType;
  /** Which history items every evaluation of the run leaves out of the ranking (absent: DEFAULT_EXCLUDE, the API's default). */
  readonly exclude?: ExcludePolicy;
}

/** Incremental training: only recent events, only each user's latest ones. */
export interface TrainingWindowOptions {
  /** ISO 8601: events at or after this instant. */
  readonly since?: string;
  /** Each user's most recent N events. */
  readonly maxEventsPerUser?: number;
}

export interface EpochSummary extends EpochReport {
  /** The ensemble member this epoch trained (0 for a single model). */
  readonly member: number;
  readonly validNdcg10: number;
  readonly validHr10: number;
  readonly best: boolean;
}

/** A member's state in its checkpoint. */
export interface MemberCheckpointState {
  readonly versionId: number;
  readonly dataHash: string;
  readonly run: RunConfig;
  readonly member: number;
  readonly trainer: TrainerState;
  readonly epochs: EpochSummary[];
  readonly best: { readonly epoch: number; readonly ndcg: number } | null;
  readonly sinceBest: number;
  readonly trainSeconds: number;
  /** Training ended (epochs or patience used up): a resumed run only loads its best weights. */
  readonly finished: boolean;
}

export interface MemberRunInput {
  readonly member: number;
  readonly run: RunConfig;
  readonly versionId: number;
  readonly dataHash: string;
  readonly artifactPath: string;
  readonly data: EncodedSequences;
  readonly split: LeaveOneOutSplit;
  /** The fixed sample of users validated after every epoch. */
  readonly validSample: Int32Array;
  /** Continue from this member's checkpoint, if it has one. */
  readonly resume: boolean;
  /** The item table to start from ([numItems + 1, dim] row-major; training.itemInit 'cooccurrence'), unless resumed. */
  readonly initialItems?: Float32Array;
}

export interface MemberRunCallbacks {
  /** At the start of each epoch (done = 0, loss NaN) and after every step. */
  readonly onStep?: (member: number, epoch: number, done: number, total: number, loss: number) => void;
  readonly onEpoch?: (summary: EpochSummary) => void;
}

/** Named weights as plain arrays: they cross thread boundaries without TensorFlow.js. */
export type NamedWeights = { readonly name: string; readonly shape: number[]; readonly values: Float32Array }[];

export interface MemberRunResult {
  readonly member: number;
  readonly epochs: EpochSummary[];
  readonly bestEpoch: number;
  readonly trainSeconds: number;
  /** The best epoch's weights, by SasRec.namedVariables() names. */
  readonly weights: NamedWeights;
  /** Epochs done before this call (0 unless resumed). */
  readonly resumedFromEpoch: number;
}

export function memberCheckpointPath(artifactPath: string, member: number): string {
  return join(artifactPath, `checkpoint-${member}.bin`);
}

/** Member k's model: the run's model config with seed + k. */
export function memberConfig(run: RunConfig, member: number): ModelConfig {
  return { ...run.model, seed: run.model.seed + member };
}

export async function trainMember(input: MemberRunInput, callbacks: MemberRunCallbacks = {}): Promise<MemberRunResult> {
  const { member, run, data, split, artifactPath } = input;
  const checkpointPath = memberCheckpointPath(artifactPath, member);
  const resumed = input.resume && existsSync(checkpointPath) ? readCheckpoint<MemberCheckpointState>(checkpointPath) : undefined;
  if (resumed && (resumed.state.member !== member || resumed.state.versionId !== input.versionId || resumed.state.dataHash !== input.dataHash)) {
    throw new AppError('CHECKPOINT_CORRUPT', `${checkpointPath} belongs to another version, member or data snapshot`);
  }
  const model = new SasRec(memberConfig(run, member));
  if (input.initialItems && !resumed) model.itemEmbedding.assign(tf.tensor2d(input.initialItems, model.itemEmbedding.shape as [number, number]));
  const trainer = new Trainer(model, data, split, { ...run.training, seed: run.training.seed + member });
  const network = new SasRecEnsemble([model]);
  let best: { epoch: number; ndcg: number; weights: tf.Tensor[] } | undefined;
  const epochs: EpochSummary[] = [];
  let sinceBest = 0;
  let trainSeconds = 0;
  let finished = false;
  try {
    if (resumed) {
      const { state, tensors } = resumed;
      const restore = (prefix: string): tf.Tensor[] =>
        model.namedVariables().map(([name, v]) => {
          const saved = tensors.get(`${prefix}/${name}`);
          if (!saved || saved.shape.join('x') !== v.shape.join('x')) throw new AppError('CHECKPOINT_CORRUPT', `${checkpointPath} lacks ${prefix}/${name}`);
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
      finished = state.finished;
    }
    const resumedFromEpoch = epochs.length;
    while (!finished) {
      const epoch = epochs.length + 1;
      const started = performance.now();
      const report = trainer.trainEpoch((done, total, loss) => callbacks.onStep?.(member, epoch, done, total, loss));
      const valid = evaluateModel(network, data, split, { phase: 'valid', sequences: input.validSample, exclude: run.exclude ?? DEFAULT_EXCLUDE }).full;
      const improved = !best || valid.ndcg[10]! > best.ndcg;
      if (improved) {
        best?.weights.forEach((w) => w.dispose());
        best = { epoch, ndcg: valid.ndcg[10]!, weights: model.variables.map((v) => tf.clone(v)) };
        sinceBest = 0;
      } else sinceBest++;
      trainSeconds += (performance.now() - started) / 1000;
      const summary: EpochSummary = { ...report, member, validNdcg10: valid.ndcg[10]!, validHr10: valid.hr[10]!, best: improved };
      epochs.push(summary);
      finished = epoch >= run.epochs || sinceBest >= run.patience;
      const trainerState = await trainer.saveState();
      const state: MemberCheckpointState = {
        versionId: input.versionId,
        dataHash: input.dataHash,
        run,
        member,
        trainer: trainerState.state,
        epochs,
        best: { epoch: best!.epoch, ndcg: best!.ndcg },
        sinceBest,
        trainSeconds,
        finished,
      };
      writeCheckpoint(checkpointPath, state, [
        ...model.namedVariables().map(([name, v]): [string, tf.Tensor] => [`model/${name}`, v]),
        ...model.namedVariables().map(([name], i): [string, tf.Tensor] => [`best/${name}`, best!.weights[i]!]),
        ...trainerState.tensors,
      ]);
      callbacks.onEpoch?.(summary);
    }
    if (!best) throw new AppError('CHECKPOINT_CORRUPT', `${checkpointPath} says member ${member} finished without a best epoch`);
    const names = model.namedVariables().map(([name]) => name);
    const weights = best.weights.map((w, i) => ({ name: names[i]!, shape: [...w.shape], values: w.dataSync() as Float32Array }));
    return { member, epochs, bestEpoch: best.epoch, trainSeconds, weights, resumedFromEpoch };
  } finally {
    best?.weights.forEach((w) => w.dispose());
    trainer.dispose();
    model.dispose();
  }
}

/** Member k's network with the given weights (as trainMember returned them). */
export function memberFromWeights(run: RunConfig, member: number, weights: NamedWeights): SasRec {
  const model = new SasRec(memberConfig(run, member));
  const byName = new Map(model.namedVariables());
  for (const { name, shape, values } of weights) {
    const variable = byName.get(name);
    if (!variable || variable.shape.join('x') !== shape.join('x')) {
      model.dispose();
      throw new Error(`member ${member}: weight ${name} [${shape}] does not fit the model`);
    }
    variable.assign(tf.tensor(values, shape));
  }
  return model;
}
