import type { CatalogItem } from '../data/serving-reader.js';
import type { ExplainedEvent } from '../inspect/explain.js';
import type { InspectOptions } from '../inspect/inspect-history.js';
import type { AttentionReport } from '../inspect/report.js';
import { readArtifactInfo } from '../model/artifact-format.js';
import type { ModelConfig } from '../model/config.js';
import { Retirable } from '../model/retirable.js';
import { artifactVocabulary, encodeHistory, SHORTLIST, type ModelHistory, type Representation, type UserState } from '../model/served-model.js';
import type { ItemVocabulary } from '../model/vocabulary.js';
import type { InferencePool } from './inference-pool.js';

/**
 * A model version as the API's event loop sees it: its configuration and
 * vocabulary (read from model.json, no weights), and asynchronous
 * inference that runs on the pool's worker threads, which hold the weights.
 * Requests hold a reference (acquire/release) for as long as they use it;
 * once retired by an activation and let go by the last of them, the
 * workers free it.
 */
export class PooledModel extends Retirable {
  readonly config: ModelConfig;
  readonly members: number;
  readonly vocabulary: ItemVocabulary;

  private constructor(
    private readonly pool: InferencePool,
    readonly version: number,
    readonly createdAt: Date,
    readonly artifactPath: string,
    configs: readonly ModelConfig[],
    vocabulary: ItemVocabulary,
  ) {
    super();
    this.config = configs[0]!;
    this.members = configs.length;
    this.vocabulary = vocabulary;
  }

  /** Reads model.json here and loads the weights in every worker (InferencePool.load, `urgent` included); ARTIFACT_CORRUPT if any of it is unusable. */
  static async load(pool: InferencePool, version: number, createdAt: Date, artifactPath: string, options: { readonly urgent?: boolean } = {}): Promise<PooledModel> {
    const { configs, extra } = readArtifactInfo(artifactPath);
    const vocabulary = artifactVocabulary(extra, configs[0]!.numItems, artifactPath, version);
    await pool.load(version, createdAt, artifactPath, options);
    return new PooledModel(pool, version, createdAt, artifactPath, configs, vocabulary);
  }

  get numItems(): number {
    return this.config.numItems;
  }

  /** The last holder of a retired version let go: the workers free it. */
  protected free(): void {
    this.pool.unload(this.version);
  }

  encode(items: ArrayLike<number>, types: ArrayLike<number>): ModelHistory {
    return encodeHistory(this.vocabulary, this.config, items, types);
  }

  /** State, normaliser and shortlist of one non-empty history, batched on the workers with concurrent requests. */
  async represent(history: ModelHistory): Promise<Representation> {
    return (await this.pool.represent(this.version, [history], SHORTLIST))[0]!;
  }

  /** Every item's score (network + term) for a state: index = model item index, 0 is padding. */
  scores(state: UserState): Promise<Float32Array> {
    return this.pool.scores(this.version, state.query, state.items);
  }

  /** Log-probabilities of every item after each history, one row each. */
  async logProbs(histories: readonly ModelHistory[]): Promise<Float32Array[]> {
    const rows = this.numItems + 1;
    const all = await this.pool.logProbs(this.version, histories);
    return histories.map((_, b) => all.subarray(b * rows, (b + 1) * rows));
  }

  /** Attention inspection of one history, on a worker (see InferencePool.inspect). */
  inspect(catalog: { readonly generation: number; items(): readonly CatalogItem[] }, events: readonly ExplainedEvent[], typeNames: ReadonlyMap<number, string>, options: InspectOptions): Promise<AttentionReport> {
    return this.pool.inspect(this.version, catalog, events, typeNames, options);
  }

  /** Cosine similarity of every item to model item `index`. */
  similarities(index: number): Promise<Float32Array> {
    return this.pool.similarities(this.version, index);
  }
}
