import { randomBytes } from 'node:crypto';
import { AppError } from '../errors.js';
import { toJsonValue } from './json.js';
import type { Store } from './store.js';
import { withWriteLock } from './write-lock.js';

/** The recommendation routes an experiment can take over: those whose shopper has an id to assign by. */
export const EXPERIMENT_ROUTES = ['user_recommendations', 'session_recommendations', 'next_sequence', 'rank'] as const;
export type ExperimentRoute = (typeof EXPERIMENT_ROUTES)[number];

export type ExperimentStatus = 'draft' | 'running' | 'stopped';

export interface VariantDefinition {
  readonly name: string;
  readonly strategy: 'model' | 'popular';
  /** The model version a 'model' variant serves (null for 'popular'). */
  readonly modelVersion: number | null;
  /** Its share of the experiment's traffic; the shares sum to 1. */
  readonly share: number;
  readonly control: boolean;
}

export interface Guardrail {
  /** Stop the experiment when a variant's purchase conversion is worse than control's at this significance. */
  readonly alpha: number;
  /** Not before each variant has this many impressions. */
  readonly minImpressions: number;
}

export interface ExperimentDefinition {
  readonly name: string;
  readonly routes: readonly ExperimentRoute[];
  readonly variants: readonly VariantDefinition[];
  readonly guardrail: Guardrail | null;
  /** Hash salt (default: random): the same salt and shopper give the same variant on every replica. */
  readonly salt?: string;
}

export interface Experiment extends ExperimentDefinition {
  readonly id: number;
  readonly salt: string;
  readonly status: ExperimentStatus;
  readonly createdAt: Date;
  readonly startedAt: Date | null;
  readonly stoppedAt: Date | null;
  readonly stopReason: string | null;
}

type Row = {
  id: number;
  name: string;
  salt: string;
  routes: unknown;
  status: string;
  guardrail: unknown;
  createdAt: Date;
  startedAt: Date | null;
  stoppedAt: Date | null;
  stopReason: string | null;
  variants: { name: string; strategy: string; modelVersion: number | null; share: number; control: boolean }[];
};

function toExperiment(row: Row): Experiment {
  return {
    id: row.id,
    name: row.name,
    salt: row.salt,
    routes: row.routes as ExperimentRoute[],
    status: row.status as ExperimentStatus,
    guardrail: (row.guardrail ?? null) as Guardrail | null,
    createdAt: row.createdAt,
    startedAt: row.startedAt,
    stoppedAt: row.stoppedAt,
    stopReason: row.stopReason,
    // Control first, then by name: one order everywhere (responses, assignment).
    variants: [...row.variants]
      .sort((a, b) => Number(b.control) - Number(a.control) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
      .map((v) => ({ name: v.name, strategy: v.strategy as 'model' | 'popular', modelVersion: v.modelVersion, share: v.share, control: v.control })),
  };
}

const withVariants = { variants: true } as const;

/** Experiments, newest first. */
export async function listExperiments(store: Store, status?: ExperimentStatus): Promise<Experiment[]> {
  const rows = await store.prisma.experiment.findMany({ where: status ? { status } : {}, orderBy: { id: 'desc' }, include: withVariants });
  return rows.map(toExperiment);
}

export async function getExperiment(store: Store, id: number): Promise<Experiment> {
  const row = await store.prisma.experiment.findUnique({ where: { id }, include: withVariants });
  if (!row) throw new AppError('EXPERIMENT_NOT_FOUND', `there is no experiment ${id}`);
  return toExperiment(row);
}

/** The model versions a definition names must exist and be ready. */
async function checkVersions(store: Store, variants: readonly VariantDefinition[]): Promise<void> {
  const wanted = [...new Set(variants.flatMap((v) => (v.modelVersion === null ? [] : [v.modelVersion])))];
  const rows = await store.prisma.modelVersion.findMany({ where: { id: { in: wanted } }, select: { id: true, status: true } });
  const found = new Map(rows.map((r) => [r.id, r.status]));
  const problems = wanted.flatMap((version) => {
    const status = found.get(version);
    return status === 'ready' ? [] : [`model version ${version} ${status === undefined ? 'does not exist' : `is '${status}', not 'ready'`}`];
  });
  if (problems.length > 0) throw new AppError('MODEL_VERSION_NOT_READY', `${problems.join('; ')}: an experiment can only serve ready versions`, { problems });
}

/** Stores a draft experiment (validated for shape by the caller); its model versions must be ready. */
export async function createExperiment(store: Store, definition: ExperimentDefinition): Promise<Experiment> {
  await checkVersions(store, definition.variants);
  const row = await store.prisma.experiment.create({
    data: {
      name: definition.name,
      salt: definition.salt ?? randomBytes(8).toString('hex'),
      routes: toJsonValue(definition.routes),
      status: 'draft',
      ...(definition.guardrail && { guardrail: toJsonValue(definition.guardrail) }),
      variants: { create: definition.variants.map((v) => ({ name: v.name, strategy: v.strategy, modelVersion: v.modelVersion, share: v.share, control: v.control })) },
    },
    include: withVariants,
  });
  return toExperiment(row);
}

/**
 * Starts a draft experiment. Refused (409) when another running experiment
 * shares one of its routes: a shopper on a route sees at most one
 * experiment. The check and the start are one transaction, serialised on
 * PostgreSQL by an advisory lock (two replicas starting overlapping
 * experiments at once: one wins) and on SQLite by the connection's write lock.
 */
export async function startExperiment(store: Store, id: number): Promise<Experiment> {
  const experiment = await getExperiment(store, id);
  if (experiment.status !== 'draft') throw new AppError('EXPERIMENT_NOT_DRAFT', `experiment ${id} is ${experiment.status}; only a draft can start (create a new one to run it again)`, { experimentStatus: experiment.status });
  await checkVersions(store, experiment.variants);
  await withWriteLock(store, () =>
    store.prisma.$transaction(async (tx) => {
      if (store.provider === 'postgresql') await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtext('attnrec_experiments'))`;
      const running = await tx.experiment.findMany({ where: { status: 'running' }, select: { id: true, name: true, routes: true } });
      for (const other of running) {
        const shared = (other.routes as string[]).filter((r) => experiment.routes.includes(r as ExperimentRoute));
        if (shared.length > 0) {
          throw new AppError('EXPERIMENT_OVERLAP', `experiment ${other.id} ('${other.name}') already runs on ${shared.join(', ')}; stop it first or choose other routes`, { experiment: other.id, routes: shared });
        }
      }
      const updated = await tx.experiment.updateMany({ where: { id, status: 'draft' }, data: { status: 'running', startedAt: new Date() } });
      if (updated.count !== 1) throw new AppError('EXPERIMENT_NOT_DRAFT', `experiment ${id} is no longer a draft`);
    }),
  );
  return getExperiment(store, id);
}

/** Stops a running experiment (a draft may be stopped too, to retire it) and records why. */
export async function stopExperiment(store: Store, id: number, reason: string): Promise<Experiment> {
  const experiment = await getExperiment(store, id);
  if (experiment.status === 'stopped') throw new AppError('EXPERIMENT_STOPPED', `experiment ${id} was already stopped (${experiment.stopReason ?? 'no reason given'})`);
  await store.prisma.experiment.updateMany({ where: { id, status: { not: 'stopped' } }, data: { status: 'stopped', stoppedAt: new Date(), stopReason: reason } });
  return getExperiment(store, id);
}
