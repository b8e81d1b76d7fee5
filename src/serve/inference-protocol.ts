import type { MemoBasis } from '../model/representation-memo.js';
import type { CatalogItem } from '../data/serving-reader.js';
import type { ExplainedEvent } from '../inspect/explain.js';
import type { InspectOptions } from '../inspect/inspect-history.js';
import type { ModelHistory, Representation, SharedVersion } from '../model/served-model.js';

/**
 * Messages between the API's event loop (InferencePool) and its inference
 * worker threads (inference-worker.ts). Every request carries an id; the
 * worker answers each with a reply of the same id, in order. Histories,
 * states and scores travel as plain arrays and typed arrays (structured
 * clone; a full row of scores is transferred, not copied).
 */
export type WorkerRequest =
  /**
   * Load a version: from its files, or from `from` (another worker's parts, ServedModel.loadSharing). With
   * `share`, the reply's result is this worker's SharedVersion for the others (null otherwise).
   */
  | { readonly type: 'load'; readonly id: number; readonly version: number; readonly createdAt: number; readonly artifactPath: string; readonly share?: boolean; readonly from?: SharedVersion }
  | { readonly type: 'unload'; readonly id: number; readonly version: number }
  | { readonly type: 'represent'; readonly id: number; readonly version: number; readonly histories: readonly ModelHistory[]; readonly shortlist: number }
  /** Every item's score (network + term) for each history, minus its normaliser: log-probabilities. */
  | { readonly type: 'log-probs'; readonly id: number; readonly version: number; readonly histories: readonly ModelHistory[] }
  /** Every item's score for a state already computed (query and history items). */
  | { readonly type: 'scores'; readonly id: number; readonly version: number; readonly query: Float32Array; readonly items: readonly number[] }
  | { readonly type: 'similarities'; readonly id: number; readonly version: number; readonly index: number }
  /** The catalogue (the attention report describes items with it); sent to a worker when its copy is older than `generation`. */
  | { readonly type: 'catalog'; readonly id: number; readonly generation: number; readonly items: readonly CatalogItem[] }
  /** Attention inspection of one history (inspectHistory): the report, as the API returns it. */
  | { readonly type: 'inspect'; readonly id: number; readonly version: number; readonly events: readonly ExplainedEvent[]; readonly typeNames: readonly (readonly [number, string])[]; readonly options: InspectOptions }
  /** Background worker only: read the most recently active users' histories and represent them, sending 'warmed' messages. */
  | { readonly type: 'warm'; readonly id: number; readonly version: number; readonly createdAt: number; readonly artifactPath: string; readonly databaseUrl: string | undefined; readonly limit: number; readonly chunk: number; readonly pace: number; readonly memoRestMs: number }
  | { readonly type: 'stop-warm'; readonly id: number };

/** A request before the pool gives it an id. */
export type WorkerCommand = WorkerRequest extends infer R ? (R extends unknown ? Omit<R, 'id'> : never) : never;

/** One warmed user: the whole history (the filters read all of it), the model's view of it, and its representation. */
export interface WarmedUser {
  readonly externalId: string;
  readonly items: Int32Array;
  readonly types: Int32Array;
  readonly encoded: ModelHistory;
  readonly representation: Representation | undefined;
}

export type WorkerReply =
  | { readonly type: 'reply'; readonly id: number; readonly ok: true; readonly result: unknown }
  | { readonly type: 'reply'; readonly id: number; readonly ok: false; readonly code?: string; readonly details?: Readonly<Record<string, unknown>>; readonly message: string }
  | { readonly type: 'warmed'; readonly id: number; readonly version: number; readonly total: number; readonly fromMemo: boolean; readonly users: readonly WarmedUser[] };

/** How a warm-up ended: users sent, how many of them came from the version's stored representations, and what became of those (a note for the log). */
export interface WarmOutcome {
  readonly users: number;
  readonly fromMemo: number;
  readonly memo: string;
  /** What a memo of this version's representations, as this worker computes them, must say (to store the cache as one). */
  readonly header?: MemoBasis;
}
