import { createExperiment, EXPERIMENT_ROUTES, startExperiment, stopExperiment } from '../data/experiments.js';
import type { Store } from '../data/store.js';
import { AppError } from '../errors.js';
import { evaluateVersionsOnWindow, type EventWindow } from '../evaluate/evaluate-on-window.js';
import type { Evaluation } from '../evaluate/evaluate.js';
import type { BackendPreference } from '../model/backend.js';
import { toJsonValue } from '../data/json.js';
import type { RunConfig } from './member-run.js';
import { trainRun, type TrainRunOptions, type TrainRunResult } from './train-run.js';

export interface RetrainOptions {
  /** The events the new version trains on and both versions are compared on (absent: all). */
  readonly window?: EventWindow;
  /**
   * The new version must beat the active one's test NDCG@10 by this relative
   * margin to be activated (0: any gain; 0.01: 1 % better).
   */
  readonly minGain: number;
  /**
   * What a win leads to. 'auto': activate the new version. 'canary': start an experiment on every
   * experiment route that serves the new version to `canary.share` of shoppers and the active one to the
   * rest, with a guard rail that stops it if the new version converts worse; a person activates it once
   * its online results say so. 'never': train and compare only.
   */
  readonly promote: 'auto' | 'canary' | 'never';
  readonly canary?: CanaryOptions;
  /** Overrides of the active version's recipe (tests and quick runs; absent: the recipe as it was). */
  readonly epochs?: number;
  readonly backend: BackendPreference;
  readonly threads?: number;
  readonly artifactsRoot: string;
  readonly onStart?: TrainRunOptions['onStart'];
  readonly onStep?: TrainRunOptions['onStep'];
  readonly onEpoch?: TrainRunOptions['onEpoch'];
  /** Once the new version is trained, before both are compared on the same split. */
  readonly onCompare?: () => void;
}

export interface CanaryOptions {
  /** The new version's share of the experiment's traffic (default 0.05). */
  readonly share: number;
  /** The guard rail: stop when the new version's purchase conversion is worse than the active one's at this significance (default 0.01: it looks at every model poll)… */
  readonly alpha: number;
  /** …once each variant has this many impressions (default 1,000). */
  readonly minImpressions: number;
}

export const DEFAULT_CANARY: CanaryOptions = { share: 0.05, alpha: 0.01, minImpressions: 1_000 };

/** promoted: the new version is active; canary: it serves a share of shoppers in an experiment; kept: the active version serves alone. */
export type RetrainDecision = 'promoted' | 'canary' | 'kept';

export interface RetrainResult {
  /** The version that served when the retrain began: its recipe was reused, and it is the bar to beat. */
  readonly previous: number;
  readonly candidate: number;
  readonly decision: RetrainDecision;
  /** The canary experiment started (decision 'canary'). */
  readonly experiment?: number;
  /** Why, in a sentence (for logs and the CLI). */
  readonly reason: string;
  /** Both versions ranked on the same test split of the window's histories, as served. */
  readonly comparison: {
    readonly users: number;
    readonly items: number;
    readonly previous: Evaluation;
    readonly candidate: Evaluation;
    /** Held-out items the previous version never saw (misses for it). */
    readonly previousUnknownTargets: number;
    /** candidate NDCG@10 / previous NDCG@10 − 1. */
    readonly gain: number;
  };
  readonly training: TrainRunResult;
}

/**
 * Scheduled retraining with guarded promotion: trains a new version with the
 * active version's recipe on the window's events, ranks both versions on the
 * same test split of those histories (the held-out last event of every user,
 * which neither version trained on or was tuned on: one binary decision, not
 * a search), and activates the new one only if its NDCG@10 wins by `minGain`.
 * Otherwise the active version keeps serving and the new one stays ready for
 * a manual activation or an experiment. A failure anywhere leaves the active
 * version untouched (the new version, if created, is marked failed).
 */
export async function retrain(store: Store, options: RetrainOptions): Promise<RetrainResult> {
  const active = await store.prisma.modelVersion.findFirst({ where: { active: true }, select: { id: true, config: true } });
  if (!active) throw new AppError('NO_ACTIVE_VERSION', 'no model version is active, so there is nothing to retrain against; train one first (npm run train)');
  const recipe = active.config as unknown as (RunConfig & { backend?: string }) | null;
  if (!recipe?.model || !recipe.training) throw new AppError('ARTIFACT_CORRUPT', `model version ${active.id} has no saved training recipe`);
  const { numItems: _items, numEventTypes, seed: _seed, ...model } = recipe.model;
  const window = options.window ?? {};
  const training = await trainRun(store, {
    model: { ...model, eventTypes: numEventTypes > 0 },
    training: recipe.training,
    epochs: options.epochs ?? recipe.epochs,
    patience: recipe.patience,
    members: recipe.members ?? 1,
    sampledNegatives: recipe.sampledNegatives,
    validUsers: recipe.validUsers,
    backend: options.backend,
    ...(options.threads !== undefined && { threads: options.threads }),
    artifactsRoot: options.artifactsRoot,
    activate: 'never',
    window: {
      ...(window.since !== undefined && { since: window.since.toISOString() }),
      ...(window.maxEventsPerUser !== undefined && { maxEventsPerUser: window.maxEventsPerUser }),
    },
    ...(options.onStart && { onStart: options.onStart }),
    ...(options.onStep && { onStep: options.onStep }),
    ...(options.onEpoch && { onEpoch: options.onEpoch }),
  });
  options.onCompare?.();
  const compared = await evaluateVersionsOnWindow(store, [active.id, training.versionId], { window, phase: 'test' });
  const [previous, candidate] = compared.versions as [(typeof compared.versions)[number], (typeof compared.versions)[number]];
  const before = previous.model.full.ndcg[10]!;
  const after = candidate.model.full.ndcg[10]!;
  const gain = before > 0 ? after / before - 1 : after > 0 ? Infinity : 0;
  const wins = after > before && gain >= options.minGain;
  const promote = wins && options.promote === 'auto';
  const versus = `test NDCG@10 ${after.toFixed(4)} against ${before.toFixed(4)} (${formatGain(gain)}) on the same ${compared.users} users`;
  let decision: RetrainDecision = promote ? 'promoted' : 'kept';
  let reason = promote
    ? `version ${training.versionId} won: ${versus}`
    : wins && options.promote === 'never'
      ? `version ${training.versionId} won (${versus}) but --promote never keeps version ${active.id} serving`
      : `version ${training.versionId} did not win by ${formatGain(options.minGain)}: ${versus}; version ${active.id} keeps serving`;
  let experiment: number | undefined;
  if (wins && options.promote === 'canary') {
    const canary = options.canary ?? DEFAULT_CANARY;
    const started = await startCanary(store, active.id, training.versionId, canary);
    if (typeof started === 'number') {
      experiment = started;
      decision = 'canary';
      reason = `version ${training.versionId} won (${versus}); experiment ${started} serves it to ${formatShare(canary.share)} of shoppers beside version ${active.id}, and stops itself if it converts worse (alpha ${canary.alpha})`;
    } else {
      reason = `version ${training.versionId} won (${versus}) but its canary could not start (${started}); version ${active.id} keeps serving`;
    }
  }
  const comparison = { users: compared.users, items: compared.items, previous: previous.model, candidate: candidate.model, previousUnknownTargets: previous.unknownTargets, gain };
  const record = { previous: active.id, decision, reason, minGain: options.minGain, ...(experiment !== undefined && { experiment }), comparison: { ...comparison, gain: Number.isFinite(gain) ? gain : null } };
  const row = await store.prisma.modelVersion.findUniqueOrThrow({ where: { id: training.versionId }, select: { metrics: true } });
  const metrics = toJsonValue({ ...(row.metrics as Record<string, unknown>), retrain: record });
  if (promote) {
    // Only if the version that was active is still the active one: a person's activation meanwhile wins.
    await store.prisma.$transaction(async (tx) => {
      const still = await tx.modelVersion.findFirst({ where: { active: true }, select: { id: true } });
      if (still?.id !== active.id) throw new AppError('ACTIVE_VERSION_CHANGED', `version ${still?.id ?? 'none'} was activated while version ${training.versionId} trained; not promoting over it`);
      await tx.modelVersion.update({ where: { id: active.id }, data: { active: false } });
      await tx.modelVersion.update({ where: { id: training.versionId }, data: { active: true, metrics } });
    });
  } else {
    await store.prisma.modelVersion.update({ where: { id: training.versionId }, data: { metrics } });
  }
  return { previous: active.id, candidate: training.versionId, decision, ...(experiment !== undefined && { experiment }), reason, comparison, training };
}

/**
 * Starts the canary experiment: the active version as control, the new one on `share` of the traffic of
 * every experiment route, with the guard rail. Returns its id, or why it could not start (another
 * experiment runs on those routes: the draft is retired, nothing else changes).
 */
async function startCanary(store: Store, active: number, candidate: number, canary: CanaryOptions): Promise<number | string> {
  const draft = await createExperiment(store, {
    name: `canary: version ${candidate} beside version ${active}`,
    routes: EXPERIMENT_ROUTES,
    variants: [
      { name: 'active', strategy: 'model', modelVersion: active, share: 1 - canary.share, control: true },
      { name: 'canary', strategy: 'model', modelVersion: candidate, share: canary.share, control: false },
    ],
    guardrail: { alpha: canary.alpha, minImpressions: canary.minImpressions },
  });
  try {
    return (await startExperiment(store, draft.id)).id;
  } catch (error) {
    if (!(error instanceof AppError) || error.code !== 'EXPERIMENT_OVERLAP') throw error;
    await stopExperiment(store, draft.id, `not started: ${error.message}`);
    return error.message;
  }
}

function formatShare(share: number): string {
  return `${Number((share * 100).toPrecision(3))} %`;
}

function formatGain(gain: number): string {
  if (!Number.isFinite(gain)) return '+∞ %';
  return `${gain >= 0 ? '+' : ''}${(gain * 100).toFixed(1)} %`;
}
