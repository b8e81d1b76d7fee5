import { evaluationSplits, type EvalType } from '../data/leave-one-out-split.js';
import { DEFAULT_EXCLUDE, type ExcludePolicy } from '../data/exclusion.js';
import { hashSequences, loadSequences } from '../data/sequences.js';
import type { Store } from '../data/store.js';
import { AppError } from '../errors.js';
import { loadModel } from '../model/artifact.js';
import { ItemVocabulary } from '../model/vocabulary.js';
import { BASELINES, evaluateBaseline, type BaselineName } from './baselines.js';
import { evaluateModel, evaluateModelAndNetwork, evaluateScorer, type BatchScorer, type Evaluation, type EvaluationOptions } from './evaluate.js';
import type { LeaveOneOutSplit } from '../data/leave-one-out-split.js';
import type { EncodedSequences } from '../data/encoded-sequences.js';
import { ServedModel } from '../model/served-model.js';
import { POPULARITY_BANDS, targetPopularityGroups } from './target-popularity.js';

export interface VersionEvaluation {
  readonly versionId: number;
  readonly phase: 'valid' | 'test';
  /** What was held out: each user's next event, or next purchase. */
  readonly evalType: EvalType;
  /** Which history items the ranking left out (a held-out item among them counted as a miss). */
  readonly exclude: ExcludePolicy;
  /** Set when the numbers may flatter the version: it trained on some of the held-out targets. */
  readonly warning?: string;
  /** The snapshot the version was trained on, and whether the store still holds exactly it. */
  readonly dataHash: string;
  readonly dataChanged: boolean;
  /** Events of items the model never saw (only when the data changed): left out of the histories. */
  readonly unknownItemEvents: number;
  /** The version as served: the network, plus its co-occurrence term when it has one. */
  readonly model: Evaluation;
  /** The attention network alone (only for versions with a co-occurrence term). */
  readonly network?: Evaluation;
  readonly baselines: Partial<Record<BaselineName, Evaluation>>;
  /** The model's metrics per band of how often the held-out item occurs in training (only when asked for). */
  readonly byTargetPopularity?: readonly ({ readonly band: string } & Omit<Evaluation, 'groups'>)[];
}

export interface VersionEvaluationOptions {
  readonly phase?: 'valid' | 'test';
  /** Hold out each user's next event or next purchase (default: what the version was trained to validate on). */
  readonly evalType?: EvalType;
  /** Which history items the ranking leaves out (default: the version's training setting, else the API's default). */
  readonly exclude?: ExcludePolicy;
  readonly sampledNegatives: number;
  /** Seed of the sampled protocol (default: the version's training seed, as the training job used). */
  readonly seed?: number;
  readonly baselines?: boolean;
  /** Also break the model's metrics down by the held-out item's training occurrences. */
  readonly byTargetPopularity?: boolean;
  /**
   * Score through the served path (ServedModel: the inference kernel and the SIMD scorers, as the API
   * runs them) instead of TensorFlow.js; the metrics must agree (tested). No network-alone evaluation then.
   */
  readonly served?: boolean;
}

/**
 * Re-evaluates a stored model version on the histories in the store, with the
 * leave-one-out protocol, beside the baselines. On the data it was trained on
 * this reproduces the training job's test metrics; on newer data it measures
 * the version on today's histories (items it never saw are dropped).
 */
export async function evaluateVersion(store: Store, versionId: number, options: VersionEvaluationOptions): Promise<VersionEvaluation> {
  const version = await store.prisma.modelVersion.findUnique({ where: { id: versionId } });
  if (!version) throw new AppError('MODEL_VERSION_NOT_FOUND', `there is no model version ${versionId}`);
  if (version.status !== 'ready') throw new AppError('MODEL_VERSION_NOT_READY', `model version ${versionId} is ${version.status}, not ready`);
  const { model, blend, extra } = loadModel(version.artifactPath);
  try {
    const vocabulary = new ItemVocabulary(Int32Array.from((extra as { vocabulary?: number[] } | undefined)?.vocabulary ?? []));
    if (vocabulary.size !== model.config.numItems) throw new AppError('ARTIFACT_CORRUPT', `model version ${versionId}: the vocabulary has ${vocabulary.size} items, the model ${model.config.numItems}`);
    const sequences = await loadSequences(store);
    const dataHash = hashSequences(sequences);
    const encoded = vocabulary.encode(sequences.items);
    // Keep only known items, sequence by sequence (a no-op on the training snapshot).
    const offsets = new Int32Array(sequences.offsets.length);
    const items: number[] = [];
    const types: number[] = [];
    for (let s = 0; s + 1 < sequences.offsets.length; s++) {
      for (let k = sequences.offsets[s]!; k < sequences.offsets[s + 1]!; k++) {
        if (encoded[k]! === 0) continue;
        items.push(encoded[k]!);
        types.push(sequences.types[k]!);
      }
      offsets[s + 1] = items.length;
    }
    const data = { offsets, items: Int32Array.from(items), types: Uint8Array.from(types) };
    const trainedFor = (version.config as { evalType?: EvalType } | null)?.evalType ?? 'event';
    const evalType = options.evalType ?? trainedFor;
    // The training events the version's own run used (so the baselines see what they saw then), whichever split is ranked.
    const splits = evaluationSplits(offsets, data.types, evalType === 'purchase' || trainedFor === 'purchase' ? 'purchase' : 'event');
    const split = evalType === 'purchase' ? splits.purchase! : splits.event;
    if (split.evaluated.length === 0) {
      throw new AppError('NO_EVALUATION_DATA', evalType === 'purchase' ? 'no user in the store has the two purchases, with an event before them, that the next-purchase protocol needs' : 'no user in the store has the 4 events the leave-one-out protocol needs');
    }
    // Trained on the next-event split, a version saw purchases that the next-purchase split holds out.
    const warning = evalType === 'purchase' && trainedFor !== 'purchase' ? `version ${versionId} was trained with --eval-type ${trainedFor}: its training data may include the purchases held out here, so these numbers may flatter it (train with --eval-type purchase to measure it cleanly)` : undefined;
    const phase = options.phase ?? 'test';
    const trainingSeed = (version.config as { training?: { seed?: number } } | null)?.training?.seed ?? 0;
    const exclude = options.exclude ?? (version.config as { exclude?: ExcludePolicy } | null)?.exclude ?? DEFAULT_EXCLUDE;
    const protocol = { phase, exclude, sampled: { count: options.sampledNegatives, seed: options.seed ?? trainingSeed } } as const;
    const baselines: Partial<Record<BaselineName, Evaluation>> = {};
    if (options.baselines ?? true) for (const name of BASELINES) baselines[name] = evaluateBaseline(name, vocabulary.size, data, split, protocol);
    const modelOptions = options.byTargetPopularity ? { ...protocol, groups: targetPopularityGroups(data, split, vocabulary.size) } : protocol;
    // A version with a term: as served and the network alone, from one pass of the network.
    const both = options.served
      ? { model: evaluateServed(version, data, split, modelOptions), network: undefined }
      : blend
        ? evaluateModelAndNetwork(model, data, split, modelOptions, blend)
        : { model: evaluateModel(model, data, split, modelOptions), network: undefined };
    const { groups, ...overall } = both.model;
    const network = both.network && (({ groups: _groups, ...rest }) => rest)(both.network);
    return {
      versionId,
      phase,
      evalType,
      exclude,
      ...(warning && { warning }),
      dataHash: version.dataHash,
      dataChanged: dataHash !== version.dataHash,
      unknownItemEvents: sequences.items.length - items.length,
      model: overall,
      ...(network && { network }),
      baselines,
      ...(groups && { byTargetPopularity: groups.map((g, i) => ({ band: POPULARITY_BANDS[i]!.label, ...g })) }),
    };
  } finally {
    model.dispose();
  }
}

/** The version as the API scores it (ServedModel), through the same protocol as evaluateModel. */
function evaluateServed(version: { id: number; createdAt: Date; artifactPath: string }, data: EncodedSequences, split: LeaveOneOutSplit, options: EvaluationOptions): Evaluation {
  const served = ServedModel.load(version.id, version.createdAt, version.artifactPath);
  try {
    const { maxLength, numItems } = served.config;
    return evaluateScorer(servedScorer(served, data), numItems, data, split, options, (s) => Math.min(maxLength, s));
  } finally {
    served.retire();
  }
}

/** Each history's scores from the served model: its last maxLength events, network plus the version's term. */
function servedScorer(served: ServedModel, data: EncodedSequences): BatchScorer {
  return (sequences, inputLength) => {
    const rows = served.numItems + 1;
    const histories = sequences.map((s) => {
      const end = data.offsets[s]! + inputLength(s);
      const from = Math.max(data.offsets[s]!, end - served.config.maxLength);
      return { items: Array.from(data.items.subarray(from, end)), types: Array.from(data.types.subarray(from, end)) };
    });
    const out = new Float32Array(sequences.length * rows);
    served.states(histories).forEach((state, b) => out.set(served.scores(state), b * rows));
    return out;
  };
}
