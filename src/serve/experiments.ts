import { createHash } from 'node:crypto';
import { listExperiments, type Experiment, type ExperimentRoute } from '../data/experiments.js';
import type { Store } from '../data/store.js';
import { checkGuardrail } from './experiment-guard.js';

/** What a shopper on an experiment's route gets: the experiment, the variant, and what serves it. */
export interface Assignment {
  readonly experimentId: number;
  readonly variant: string;
  readonly strategy: 'model' | 'popular';
  readonly modelVersion: number | null;
}

/** The shopper a request is for: a user id, or a session id (anonymous shoppers). */
export type AssignmentOwner = { readonly user: string } | { readonly session: string | undefined };

/**
 * A shopper's place in [0, 1) for an experiment: the first 48 bits of
 * SHA-256(salt, kind, id). The same salt and shopper give the same place on
 * every replica and after every restart; different salts give independent
 * places, so one experiment's split says nothing about the next one's.
 */
export function assignmentPoint(salt: string, kind: 'user' | 'session', id: string): number {
  const digest = createHash('sha256').update(`${salt}\u0000${kind}\u0000${id}`).digest();
  return digest.readUIntBE(0, 6) / 2 ** 48;
}

/** The variant whose share interval holds the point (variants in their stored order, control first). */
export function variantAt(experiment: Pick<Experiment, 'variants'>, point: number): Experiment['variants'][number] {
  let upTo = 0;
  for (const variant of experiment.variants) {
    upTo += variant.share;
    if (point < upTo) return variant;
  }
  // Shares sum to 1 up to rounding: a point past the last boundary belongs to the last variant.
  return experiment.variants.at(-1)!;
}

/**
 * The running experiments as this server knows them, by route. Read at
 * start-up, after every start or stop made through this server, and on the
 * model poll (--model-poll), so that replicas agree within one poll.
 */
export class ExperimentRegistry {
  private byRoute = new Map<ExperimentRoute, Experiment>();

  /** `onVersions`: after each sync, the model versions the running variants serve (to load them before shoppers ask). */
  constructor(
    private readonly store: Store,
    private readonly events: { readonly onStopped?: (experiment: Experiment, reason: string) => void } = {},
    private readonly onVersions: (versions: number[]) => void = () => {},
  ) {}

  /**
   * Each running experiment's guard rail (src/serve/experiment-guard.ts): run
   * on the model poll; an experiment it stops is served no more from then on.
   * Returns the reasons of those it stopped.
   */
  async guard(): Promise<string[]> {
    const stopped: string[] = [];
    for (const experiment of this.running) {
      if (!experiment.guardrail) continue;
      const reason = await checkGuardrail(this.store, experiment);
      if (!reason) continue;
      stopped.push(reason);
      this.events.onStopped?.(experiment, reason);
    }
    if (stopped.length > 0) await this.sync();
    return stopped;
  }

  async sync(): Promise<void> {
    const running = await listExperiments(this.store, 'running');
    const byRoute = new Map<ExperimentRoute, Experiment>();
    for (const experiment of running) for (const route of experiment.routes) byRoute.set(route, experiment);
    this.byRoute = byRoute;
    this.onVersions([...new Set(running.flatMap((e) => e.variants.flatMap((v) => (v.modelVersion === null ? [] : [v.modelVersion]))))]);
  }

  /** The running experiments this server serves. */
  get running(): Experiment[] {
    return [...new Set(this.byRoute.values())];
  }

  /** The shopper's variant on this route, or undefined (no experiment runs there, or the shopper has no id). */
  assign(route: ExperimentRoute, owner: AssignmentOwner): Assignment | undefined {
    const experiment = this.byRoute.get(route);
    if (!experiment) return undefined;
    const [kind, id] = 'user' in owner ? (['user', owner.user] as const) : (['session', owner.session] as const);
    if (id === undefined) return undefined;
    const variant = variantAt(experiment, assignmentPoint(experiment.salt, kind, id));
    return { experimentId: experiment.id, variant: variant.name, strategy: variant.strategy, modelVersion: variant.modelVersion };
  }
}
