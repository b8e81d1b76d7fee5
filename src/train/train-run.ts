import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { AppError } from '../errors.js';
import { toJsonValue } from '../data/json.js';
import { evaluationSplits, type EvalType, type LeaveOneOutSplit } from '../data/leave-one-out-split.js';
import { DEFAULT_EXCLUDE, type ExcludePolicy } from '../data/exclusion.js';
import { hashSequences, loadSequences } from '../data/sequences.js';
import type { Store } from '../data/store.js';
import { BASELINES, evaluateBaseline, type BaselineName } from '../evaluate/baselines.js';
import { evaluateModel, evaluateModelAndNetwork, sampleEvaluated, type Evaluation, type EvaluationOptions } from '../evaluate/evaluate.js';
import { saveModel } from '../model/artifact.js';
import { selectBackend, type BackendPreference } from '../model/backend.js';
import { MODEL_DEFAULTS, type ModelConfig } from '../model/config.js';
import { CooccurrenceBlend, type ItemNeighbours } from '../model/cooccurrence-blend.js';
import { SasRecEnsemble } from '../model/ensemble.js';
import type { EncodedSequences } from '../data/encoded-sequences.js';
import { readCheckpointState, removeCheckpoint } from './checkpoint.js';
import { memberCheckpointPath, memberFromWeights, trainMember, type EpochSummary, type MemberCheckpointState, type MemberRunCallbacks, type MemberRunInput, type MemberRunResult, type RunConfig, type TrainingWindowOptions } from './member-run.js';
import { trainMemberInThread } from './member-thread.js';
import { renderTrainingReport } from './report.js';
import { storeRepresentations } from './store-representations.js';
import { takeTrainingLock } from './train-lock.js';
import type { TrainingOptions } from './trainer.js';
import { ITEM_NEIGHBOURS, itemCooccurrence, strongestNeighbours } from '../model/item-cooccurrence.js';
import { fitCooccurrenceBlend, type BlendFit } from './fit-cooccurrence-blend.js';
import { fitRepeatTerm, type RepeatFit } from './fit-repeat-term.js';
import { spectralItemEmbedding } from './spectral-embedding.js';
import { ItemVocabulary } from '../model/vocabulary.js';

export type { EpochSummary, RunConfig, TrainingWindowOptions } from './member-run.js';

export const DEFAULT_VALID_USERS = 10_000;
/** 16 epochs of the default model fit the 15-minute budget on 2 CPU cores (amazon-games). */
export const DEFAULT_EPOCHS = 16;
export const DEFAULT_PATIENCE = 3;
/**
 * The training job's ensemble: two members, trained side by side on a
 * two-core machine in the time one takes. On amazon-games two dim-128
 * members averaged gave test NDCG@10 0.0615 full and 0.5513 / HR@10 0.7400
 * sampled, against 0.0589 and 0.5377 / 0.7242 for one (docs/experiments.md).
 */
export const DEFAULT_MEMBERS = 2;

export interface TrainRunOptions {
  readonly model: Partial<Pick<ModelConfig, 'maxLength' | 'dim' | 'heads' | 'blocks' | 'ffnDim' | 'dropout' | 'itemBias'>> & { readonly eventTypes?: boolean };
  readonly training: TrainingOptions;
  readonly epochs: number;
  /** Stop a member after this many epochs without a better validation NDCG@10. */
  readonly patience: number;
  /**
   * Ensemble members (default 1): member k is trained from seed + k, and the
   * version predicts with the average of their logits (SasRecEnsemble).
   */
  readonly members?: number;
  /**
   * Members trained at once, each in a worker thread of its own (default: one
   * per core on the wasm and cpu backends, which run single-threaded; 1 on GPU
   * backends). 1 trains them one after another in this thread. The result is
   * the same either way.
   */
  readonly threads?: number;
  readonly backend: BackendPreference;
  /** Folder under which each version gets `v<id>/`. */
  readonly artifactsRoot: string;
  /** The sampled protocol of the SASRec paper, reported beside full ranking. */
  readonly sampledNegatives: number;
  /** Users in the per-epoch validation sample (0 = all); the test set is always complete. */
  readonly validUsers?: number;
  /** Evaluate the finished version on held-out validation users (default true; a throwaway preview may skip it). */
  readonly finalValidation?: boolean;
  /**
   * Continue an unfinished version from its members' last checkpoints
   * ('latest': the newest one) instead of starting a new version. Every
   * setting then comes from the checkpoints; the ones given here are ignored.
   */
  readonly resume?: number | 'latest';
  /**
   * Make the new version the one the API serves: 'auto' (default) when no
   * version is active yet, 'always', or 'never' (activate later with
   * POST /v1/models/:version/activate after comparing).
   */
  readonly activate?: 'auto' | 'always' | 'never';
  /** Store every user's representation beside the artifact for the API's user cache (default true; src/train/store-representations.ts). */
  readonly storeRepresentations?: boolean;
  /** Progress of storing them: histories represented so far, of `total` (after every batch). */
  readonly onRepresentations?: (done: number, total: number) => void;
  /** Train on a window of the events (ignored on resume: the run's own window applies). */
  readonly window?: TrainingWindowOptions;
  /**
   * 'purchase': validate (early stopping, the co-occurrence fit) on each user's next purchase and
   * report it beside the next-event metrics (RunConfig.evalType). Default 'event'. Ignored on resume.
   */
  readonly evalType?: EvalType;
  /** Which history items every evaluation leaves out of the ranking (RunConfig.exclude; default the API's). Ignored on resume. */
  readonly exclude?: ExcludePolicy;
  /** For each member: at the start of each epoch (done = 0, loss NaN) and after every step. */
  readonly onStep?: MemberRunCallbacks['onStep'];
  /** After each member's epoch. A callback that throws stops the run, which keeps its checkpoints. */
  readonly onEpoch?: (report: EpochSummary) => void;
  /** Once, when the run knows its version and how it trains. */
  readonly onStart?: (info: TrainStart) => void;
}

export interface TrainStart {
  readonly versionId: number;
  readonly backend: string;
  readonly members: number;
  /** Members trained at once (worker threads), 1 when they train one after another here. */
  readonly threads: number;
  /** Per member: epochs already done (a resumed run), else 0. */
  readonly resumedFromEpochs: readonly number[];
  /** Epochs each member trains at most, and the steps of one of its epochs. */
  readonly epochs: number;
}

/** One member of the trained version. */
export interface MemberSummary {
  readonly member: number;
  readonly seed: number;
  readonly bestEpoch: number;
  readonly epochs: EpochSummary[];
  /** Seconds this member spent in its epochs and their validation. */
  readonly trainSeconds: number;
  /** The member alone on the test split (only for ensembles: one member is the version itself). */
  readonly test?: Evaluation;
}

export interface TrainRunResult {
  readonly versionId: number;
  /** Distinct user histories whose representations were stored beside the artifact (src/train/store-representations.ts), and how long that took. */
  readonly representations?: { readonly users: number; readonly seconds: number };
  readonly artifactPath: string;
  readonly reportPath: string;
  readonly backend: string;
  readonly dataHash: string;
  readonly members: MemberSummary[];
  /** Members trained at once. */
  readonly threads: number;
  /** Wall-clock seconds of training (members side by side count once), earlier sessions of a resumed run included. */
  readonly trainSeconds: number;
  /** Whether this version is now the active one. */
  readonly activated: boolean;
  readonly test: Evaluation;
  /** The baselines on the same test split and protocol. */
  readonly baselines: Record<BaselineName, Evaluation>;
  /** The co-occurrence term's fit (training.cooccurrenceTerm), and the network's own test metrics beside `test`. */
  readonly cooccurrence?: CooccurrenceSummary;
  /** The version as served on held-out validation users: the numbers to choose settings on (absent when skipped). */
  readonly valid?: ValidationSummary;
  /** With evalType 'purchase': the same on each user's next purchase. */
  readonly nextPurchase?: NextPurchaseSummary;
  /** Which history items every evaluation left out of the ranking. */
  readonly exclude: ExcludePolicy;
}

/**
 * The version on the next-purchase split (evalType 'purchase'): each user's last purchase ranked from every
 * event before it, beside the baselines on the same split; validation is the purchase before it.
 */
export interface NextPurchaseSummary {
  readonly test: Evaluation;
  readonly baselines: Record<BaselineName, Evaluation>;
  readonly valid?: ValidationSummary;
}

/**
 * The version on the validation split (each user's second-to-last event, from the training events), full
 * ranking, over every evaluated user outside the sample the co-occurrence term's weights are fitted on
 * (the same users whether or not a run has the term, for a given seed). Comparisons that choose a
 * setting read these; `test` is reported, never chosen on.
 */
export interface ValidationSummary {
  readonly users: number;
  /** As served (with the term when the version kept it). */
  readonly model: Evaluation;
  /** The attention network alone, when the version kept a term. */
  readonly network?: Evaluation;
}

/**
 * How the history term was fitted (its co-occurrence part, then its repeat part), whether the version
 * kept it (either part), and the network alone on the test split.
 */
export interface CooccurrenceSummary extends BlendFit {
  readonly kept: boolean;
  /** The repeat part's fit; absent where the exclusion policy leaves every history item out (nothing to fit). */
  readonly repeat?: RepeatFit;
  readonly neighboursPerItem: number;
  readonly networkTest: Evaluation;
}

/** Validation users the term's weights are fitted on. */
export const BLEND_FIT_USERS = 5000;

/** The parts of a run computed from the training events' co-occurrence, when its options ask for them. */
function cooccurrenceParts(data: EncodedSequences, split: LeaveOneOutSplit, numItems: number, run: RunConfig): { initialItems?: Float32Array; neighbours?: ItemNeighbours } {
  const wantsStart = run.training.itemInit === 'cooccurrence';
  const wantsTerm = run.training.cooccurrenceTerm === true;
  if (!wantsStart && !wantsTerm) return {};
  const matrix = itemCooccurrence(data, split, numItems);
  return {
    ...(wantsStart && { initialItems: spectralItemEmbedding(matrix, { dim: run.model.dim, seed: run.training.seed, spread: run.training.itemInitSpread ?? 1 }) }),
    ...(wantsTerm && { neighbours: strongestNeighbours(matrix, ITEM_NEIGHBOURS) }),
  };
}

export const REPORT_FILE = 'report.html';
const CHECKPOINT_PATTERN = /^checkpoint-(\d+)\.bin$/;

/**
 * One training run, start to finish: histories from the store, the
 * leave-one-out split, its ensemble members trained (side by side in worker
 * threads where the backend runs on the CPU), each with validation after
 * every epoch (its best epoch's weights are kept; it stops after `patience`
 * epochs without improvement), the ensemble's test metrics beside the
 * baselines, then the versioned artifact, the HTML report, the item
 * embeddings and a ModelVersion row that records how it was made. After
 * every epoch a member's checkpoint replaces its previous one, so a crash
 * or Ctrl-C loses at most the epochs in progress (`resume`); a finished run
 * deletes them.
 */
export async function trainRun(store: Store, options: TrainRunOptions): Promise<TrainRunResult> {
  const backend = await selectBackend(options.backend);
  // A resumed run reads the window it started with.
  const resumable = options.resume !== undefined ? await findResumable(store, options.resume) : undefined;
  const window = resumable ? (resumable.run.window ?? {}) : (options.window ?? {});
  const sequences = await loadSequences(store, {
    ...(window.since !== undefined && { since: new Date(window.since) }),
    ...(window.maxEventsPerUser !== undefined && { maxPerOwner: window.maxEventsPerUser }),
  });
  if (sequences.items.length === 0) throw new AppError('NO_TRAINING_DATA', 'the store has no user events to train on; import some first');
  const vocabulary = ItemVocabulary.fromItems(sequences.items);
  const data = { offsets: sequences.offsets, items: vocabulary.encode(sequences.items), types: sequences.types };
  const dataHash = hashSequences(sequences);
  // A resumed run validates on what it started with. The members validate on the primary split; test and validation metrics are reported on both.
  const splits = evaluationSplits(sequences.offsets, sequences.types, (resumable ? resumable.run.evalType : options.evalType) ?? 'event');
  const split = splits.primary;
  if (splits.event.evaluated.length === 0) throw new AppError('NO_TRAINING_DATA', 'no user has the 4 events the leave-one-out protocol needs');
  if (split.evaluated.length === 0) throw new AppError('NO_TRAINING_DATA', 'no user has the two purchases, with an event before them, that the next-purchase protocol needs');

  let version: { id: number; artifactPath: string; createdAt: Date };
  let run: RunConfig;
  if (resumable) {
    if (resumable.dataHash !== dataHash) {
      throw new AppError('RESUME_DATA_CHANGED', `version ${resumable.version.id} was trained on data snapshot ${resumable.dataHash.slice(0, 12)}; the store now holds ${dataHash.slice(0, 12)}. Start a new run instead.`);
    }
    ({ version, run } = resumable);
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
      members: options.members ?? 1,
      epochs: options.epochs,
      patience: options.patience,
      sampledNegatives: options.sampledNegatives,
      validUsers: options.validUsers ?? DEFAULT_VALID_USERS,
      ...(options.evalType === 'purchase' && { evalType: 'purchase' as const }),
      exclude: options.exclude ?? DEFAULT_EXCLUDE,
      ...((window.since !== undefined || window.maxEventsPerUser !== undefined) && { window }),
    };
    const created = await store.prisma.modelVersion.create({ data: { status: 'training', config: toJsonValue({ ...run, backend: backend.name }), dataHash, artifactPath: '' } });
    const artifactPath = resolve(join(options.artifactsRoot, `v${created.id}`));
    await store.prisma.modelVersion.update({ where: { id: created.id }, data: { artifactPath } });
    version = { id: created.id, artifactPath, createdAt: created.createdAt };
  }
  const { artifactPath } = version;
  const memberCount = run.members ?? 1;
  mkdirSync(artifactPath, { recursive: true });
  const releaseLock = takeTrainingLock(artifactPath, version.id);
  const threads = Math.max(1, Math.min(memberCount, options.threads ?? (['wasm', 'cpu'].includes(backend.name) ? availableParallelism() : 1)));
  const resumedFromEpochs = Array.from({ length: memberCount }, (_, k) => resumable?.epochsDone.get(k) ?? 0);
  const previousSeconds = resumable ? Math.max(0, ...resumable.secondsDone.values()) * (threads > 1 ? 1 : memberCount) : 0;
  let ensemble: SasRecEnsemble | undefined;
  try {
    options.onStart?.({ versionId: version.id, backend: backend.name, members: memberCount, threads, resumedFromEpochs, epochs: run.epochs });
    const started = performance.now();
    const validSample = sampleEvaluated(split, run.validUsers, run.training.seed); // the same users for every member
    // Both from the training events' co-occurrence, computed once for every member, inside the timed part;
    // a member resumed from a checkpoint ignores the starting table. The full matrix is dropped before training.
    const { initialItems, neighbours } = cooccurrenceParts(data, split, vocabulary.size, run);
    const input = (member: number): Omit<MemberRunInput, 'split'> => ({
      member,
      run,
      versionId: version.id,
      dataHash,
      artifactPath,
      data,
      validSample,
      resume: resumable !== undefined,
      ...(initialItems && { initialItems }),
    });
    const callbacks: MemberRunCallbacks = { ...(options.onStep && { onStep: options.onStep }), ...(options.onEpoch && { onEpoch: options.onEpoch }) };
    const results = threads > 1 ? await trainInThreads(memberCount, threads, input, options.backend, callbacks) : await trainHere(memberCount, (k) => ({ ...input(k), split }), callbacks);
    ensemble = new SasRecEnsemble(results.map((r) => memberFromWeights(run, r.member, r.weights)));
    // The co-occurrence term's weights, fitted on validation: part of building the version, so inside the timed part.
    const fitUsers = sampleEvaluated(split, BLEND_FIT_USERS, run.training.seed + 1);
    const exclude = run.exclude ?? DEFAULT_EXCLUDE;
    const fit = neighbours ? fitCooccurrenceBlend(ensemble, neighbours, data, split, fitUsers, undefined, exclude) : undefined;
    // Then the repeat part, given the co-occurrence part (skipped when the policy lets no history item through).
    const repeat = neighbours && fit ? fitRepeatTerm(ensemble, neighbours, fit.params, data, split, fitUsers, exclude) : undefined;
    const repeatWeight = repeat?.repeatWeight ?? 0;
    const params = repeatWeight > 0 ? { ...fit!.params, repeatWeight, repeatDecay: repeat!.repeatDecay } : fit?.params;
    const blend = neighbours && params && (params.weight > 0 || repeatWeight > 0) ? new CooccurrenceBlend(neighbours, params) : undefined;
    const trainSeconds = previousSeconds + (performance.now() - started) / 1000;

    const testOptions = { phase: 'test', exclude, sampled: { count: run.sampledNegatives, seed: run.training.seed } } as const;
    // As served, and the attention network alone for comparison (the same as `test` when the version has no term).
    const { model: test, network } = evaluateAsServed(ensemble, data, splits.event, testOptions, blend);
    const validation = (on: LeaveOneOutSplit): ValidationSummary | undefined => {
      if (options.finalValidation === false) return undefined;
      const heldOut = heldOutValidationUsers(on, fitUsers);
      return { users: heldOut.length, ...evaluateAsServed(ensemble!, data, on, { phase: 'valid', sequences: heldOut, exclude }, blend) };
    };
    const valid = validation(splits.event);
    const baselinesOn = (on: LeaveOneOutSplit) => Object.fromEntries(BASELINES.map((name) => [name, evaluateBaseline(name, vocabulary.size, data, on, testOptions, neighbours)])) as Record<BaselineName, Evaluation>;
    const purchaseValid = splits.purchase && validation(splits.purchase);
    const nextPurchase: NextPurchaseSummary | undefined = splits.purchase && {
      test: evaluateAsServed(ensemble, data, splits.purchase, testOptions, blend).model,
      baselines: baselinesOn(splits.purchase),
      ...(purchaseValid && { valid: purchaseValid }),
    };
    const members: MemberSummary[] = results.map((r) => ({
      member: r.member,
      seed: run.training.seed + r.member,
      bestEpoch: r.bestEpoch,
      epochs: r.epochs,
      trainSeconds: r.trainSeconds,
      ...(memberCount > 1 && { test: evaluateModel(new SasRecEnsemble([ensemble!.members[r.member]!]), data, splits.event, testOptions) }),
    }));
    const baselines = baselinesOn(splits.event);
    const cooccurrence: CooccurrenceSummary | undefined = fit && { ...fit, ...(params && { params }), kept: blend !== undefined, ...(repeat && { repeat }), neighboursPerItem: ITEM_NEIGHBOURS, networkTest: network ?? test };
    const metrics = { trainSeconds, threads, exclude, test, ...(valid && { valid }), baselines, members, ...(cooccurrence && { cooccurrence }), ...(nextPurchase && { nextPurchase }) };
    saveModel(ensemble, artifactPath, { vocabulary: Array.from(vocabulary.itemIds), dataHash, metrics }, blend);
    const reportPath = join(artifactPath, REPORT_FILE);
    writeFileSync(
      reportPath,
      renderTrainingReport({ versionId: version.id, createdAt: version.createdAt, backend: backend.name, dataHash, config: { ...run, backend: backend.name }, exclude, trainSeconds, threads, test, ...(valid && { valid }), baselines, members, ...(cooccurrence && { cooccurrence }), ...(nextPurchase && { nextPurchase }) }),
    );
    await writeItemEmbeddings(store, version.id, ensemble, vocabulary);
    // What a server would compute for every user now, so that starting or activating the version fills the user cache by reading.
    const representations = options.storeRepresentations === false ? undefined : await storeRepresentations(store, version, { ...(options.onRepresentations && { onProgress: options.onRepresentations }) });
    const policy = options.activate ?? 'auto';
    const activate = policy === 'always' || (policy === 'auto' && (await store.prisma.modelVersion.count({ where: { active: true } })) === 0);
    await store.prisma.$transaction([
      ...(activate ? [store.prisma.modelVersion.updateMany({ where: { active: true }, data: { active: false } })] : []),
      store.prisma.modelVersion.update({ where: { id: version.id }, data: { status: 'ready', metrics: toJsonValue(metrics), ...(activate && { active: true }) } }),
    ]);
    for (let k = 0; k < memberCount; k++) removeCheckpoint(memberCheckpointPath(artifactPath, k));
    return { versionId: version.id, artifactPath, reportPath, backend: backend.name, dataHash, members, threads, trainSeconds, test, ...(valid && { valid }), baselines, ...(cooccurrence && { cooccurrence }), ...(nextPurchase && { nextPurchase }), exclude, activated: activate, ...(representations && { representations: { users: representations.users, seconds: representations.seconds } }) };
  } catch (error) {
    await store.prisma.modelVersion.update({ where: { id: version.id }, data: { status: 'failed', metrics: { error: (error as Error).message } } }).catch(() => {});
    throw error;
  } finally {
    ensemble?.dispose();
    releaseLock();
  }
}

/** The version as served, and the attention network alone when it has a co-occurrence term (one pass of the network). */
function evaluateAsServed(ensemble: SasRecEnsemble, data: EncodedSequences, split: LeaveOneOutSplit, options: EvaluationOptions, blend: CooccurrenceBlend | undefined): { model: Evaluation; network?: Evaluation } {
  return blend ? evaluateModelAndNetwork(ensemble, data, split, options, blend) : { model: evaluateModel(ensemble, data, split, options) };
}

/** The evaluated users outside `fitUsers` (both ascending); all of them when the fit took every user. */
export function heldOutValidationUsers(split: LeaveOneOutSplit, fitUsers: Int32Array): Int32Array {
  if (fitUsers.length >= split.evaluated.length) return split.evaluated;
  const fitted = new Set(fitUsers);
  return split.evaluated.filter((s) => !fitted.has(s));
}

/** Members one after another in this thread. */
async function trainHere(count: number, input: (member: number) => MemberRunInput, callbacks: MemberRunCallbacks): Promise<MemberRunResult[]> {
  const results: MemberRunResult[] = [];
  for (let k = 0; k < count; k++) results.push(await trainMember(input(k), callbacks));
  return results;
}

/**
 * Members in worker threads, at most `threads` at once, the next one
 * starting as soon as a thread is free. The first failure stops the others
 * (their checkpoints stay for --resume) and is rethrown.
 */
async function trainInThreads(count: number, threads: number, input: (member: number) => Omit<MemberRunInput, 'split'>, backend: BackendPreference, callbacks: MemberRunCallbacks): Promise<MemberRunResult[]> {
  const results: MemberRunResult[] = new Array(count);
  const running = new Set<{ stop: () => Promise<void> }>();
  let next = 0;
  let failure: { error: unknown } | undefined;
  const lane = async (): Promise<void> => {
    while (!failure && next < count) {
      const member = next++;
      const thread = trainMemberInThread(input(member), backend, callbacks);
      running.add(thread);
      try {
        results[member] = await thread.result;
      } catch (error) {
        failure ??= { error };
        await Promise.all([...running].map((t) => t.stop()));
      } finally {
        running.delete(thread);
      }
    }
  };
  await Promise.all(Array.from({ length: threads }, lane));
  if (failure) throw failure.error;
  return results;
}

/** The version to resume, its settings and how far each member got: the given one, or the newest unfinished version with checkpoints. */
async function findResumable(store: Store, which: number | 'latest'): Promise<{ version: { id: number; artifactPath: string; createdAt: Date }; run: RunConfig; dataHash: string; epochsDone: Map<number, number>; secondsDone: Map<number, number> }> {
  const candidates =
    which === 'latest'
      ? await store.prisma.modelVersion.findMany({ where: { status: { in: ['training', 'failed'] } }, orderBy: { id: 'desc' } })
      : await store.prisma.modelVersion.findMany({ where: { id: which } });
  if (which !== 'latest' && candidates.length === 0) throw new AppError('MODEL_VERSION_NOT_FOUND', `there is no model version ${which}`);
  for (const version of candidates) {
    if (version.status === 'ready') throw new AppError('RESUME_FINISHED', `model version ${version.id} finished training; there is nothing to resume`);
    const files = existsSync(version.artifactPath) ? readdirSync(version.artifactPath).filter((f) => CHECKPOINT_PATTERN.test(f)) : [];
    if (files.length === 0) {
      if (which !== 'latest') throw new AppError('CHECKPOINT_NOT_FOUND', `model version ${version.id} has no checkpoint (it stopped before any member finished an epoch); start a new run`);
      continue;
    }
    const states = files.map((f) => readCheckpointState<MemberCheckpointState>(join(version.artifactPath, f)));
    const { run, dataHash } = states[0]!;
    return {
      version,
      run,
      dataHash,
      epochsDone: new Map(states.map((s) => [s.member, s.epochs.length])),
      secondsDone: new Map(states.map((s) => [s.member, s.trainSeconds])),
    };
  }
  throw new AppError('CHECKPOINT_NOT_FOUND', 'no unfinished model version has a checkpoint to resume; start a new run');
}

/** One row per item: its learned embedding (little-endian float32; an ensemble's members side by side), keyed by the store's item id. */
async function writeItemEmbeddings(store: Store, versionId: number, model: SasRecEnsemble, vocabulary: ItemVocabulary): Promise<void> {
  const embeddings = model.itemEmbeddings();
  const dim = embeddings.shape[1];
  const table = embeddings.dataSync() as Float32Array;
  if (model.size > 1) embeddings.dispose();
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
