import { AppError } from '../errors.js';
import { readArtifact, readArtifactAsync, type ArtifactData, type MemberWeights } from './artifact-format.js';
import type { ModelConfig } from './config.js';
import { addTerm, CooccurrenceBlend, type CooccurrenceBlendParams, type ItemNeighbours } from './cooccurrence-blend.js';
import { ENGINE_MAX_BATCH, InferenceEngine, queryLayout } from './inference-engine.js';
import { ItemScorer, type ScorerTables } from './item-scorer.js';
import { groupMeans } from './metadata-peers.js';
import { Retirable } from './retirable.js';
import { rowSteps, runSteps, runStepsPausing, type Steps } from './steps.js';
import { ItemVocabulary } from './vocabulary.js';

/** A history in the model's own terms: item indices 1..numItems and event-type ids, oldest first. */
export interface ModelHistory {
  readonly items: readonly number[];
  readonly types: readonly number[];
}

/** The representation of a history: the last position's state and the softmax normaliser over the catalogue. */
export interface UserState {
  /** The query the output table is multiplied by: each member's last state (and a 1 for an item bias), divided by the member count. */
  readonly query: Float32Array;
  /** log Σ exp(score) over items 1..numItems; NaN until the state is first scored (see ServedModel.scores). */
  logNormaliser: number;
  /** The history's items (model indices, oldest first): the co-occurrence term is computed from them when scored. */
  readonly items: readonly number[];
}

/** A history's best items (model indices, best first) and their scores, before any filter. */
export interface Shortlist {
  readonly indices: Int32Array;
  readonly scores: Float32Array;
}

/** What serving keeps of a history: its state (normaliser filled in) and its shortlist. */
export interface Representation {
  readonly state: UserState;
  readonly shortlist: Shortlist;
}

/** How a version scores the catalogue for shortlists (represent). */
export interface LoadOptions {
  /**
   * 'quantised' (the default): through an 8-bit copy of the output table, the
   * rows that can reach the shortlist rescored in float32, so the shortlist
   * and its scores are float32's and the normaliser within ~1.5e-4 (see
   * ItemScorer.shortlists); 'exact': float32 throughout. scores() is float32 either way.
   */
  readonly scoring?: ScoringMode;
}

export type ScoringMode = 'quantised' | 'exact';

/**
 * A loaded version's parts in shared memory (SharedArrayBuffers), from
 * ServedModel.loadSharing: the weights and the co-occurrence term as read
 * from the artifact, and the output tables as built (float32, and the
 * 8-bit copy). Another thread loads the same version from them
 * (loadPausing's `from`) by copying the tables into its kernels' memory,
 * with no file read and nothing computed; the co-occurrence term stays
 * shared, one copy for every thread.
 */
export interface SharedVersion {
  readonly configs: readonly ModelConfig[];
  readonly members: readonly MemberWeights[];
  /** The internal item id of each model index (ItemVocabulary.itemIds). */
  readonly vocabulary: Int32Array;
  readonly blend: { readonly neighbours: ItemNeighbours; readonly params: CooccurrenceBlendParams } | undefined;
  readonly output: ScorerTables;
  /** Each member's item-embedding lengths, [members, rows]. */
  readonly norms: Float32Array;
}

/**
 * Smaller catalogues score in float32 whatever the option: their table (under 4 MB at 256 columns) stays in
 * cache, and with few rows a coarse row says more about the normaliser.
 */
export const QUANTISED_MIN_ROWS = 4_096;

/** Items kept per shortlist by default (see Recommender). */
export const SHORTLIST = 100;

/** What a loaded version computes with (dropped when it is retired and let go). */
interface Parts {
  readonly engine: InferenceEngine;
  /** The members' item embeddings (and biases) side by side: scores, and through `norms`, similarities. */
  readonly output: ItemScorer;
  /** Each member's item-embedding lengths, [members, rows]. */
  readonly norms: Float32Array;
  /** Where each member's item embedding sits in a row of `output` (queryLayout). */
  readonly embeddings: readonly { readonly at: number; readonly dim: number }[];
}

/**
 * A trained model version loaded for serving, on the CPU without
 * TensorFlow.js: the network runs in the SIMD inference kernel
 * (InferenceEngine, last position only), and the output layer sits in a
 * SIMD scorer, so scoring the catalogue is one kernel call (several
 * histories' scores one pass over the table). An ensemble's members are side
 * by side in that table (see SasRecEnsemble), so its logits are the members'
 * average; its similarities, the average of the members' cosines, come from
 * the same table and the embeddings' lengths. The version's
 * co-occurrence term, when it has one, is added to every score.
 *
 * Synchronous and single-threaded: the API runs one per worker thread (see
 * src/serve/inference-pool.ts); jobs and inspection use it directly.
 * In-flight users hold a reference (acquire/release); a model retired by
 * activation is dropped only when the last of them lets go.
 */
export class ServedModel extends Retirable {
  readonly config: ModelConfig;
  readonly vocabulary: ItemVocabulary;
  /** Ensemble members (1: a single SASRec); attention() returns members × blocks layers, member by member. */
  readonly members: number;
  /** The version's item-to-item term, when it has one (see CooccurrenceBlend). */
  readonly blend: CooccurrenceBlend | undefined;
  private parts: Parts | undefined;

  private constructor(
    readonly version: number,
    readonly createdAt: Date,
    data: ArtifactData,
    vocabulary: ItemVocabulary,
    parts: Parts,
  ) {
    super();
    this.config = data.configs[0]!;
    this.members = data.configs.length;
    this.vocabulary = vocabulary;
    this.blend = data.blend;
    this.parts = parts;
  }

  static load(version: number, createdAt: Date, artifactPath: string, options: LoadOptions = {}): ServedModel {
    return runSteps(ServedModel.build(version, createdAt, artifactPath, readArtifact(artifactPath), options));
  }

  /**
   * load() for a thread that keeps serving meanwhile: the files are read off
   * the thread, and the tables (~0.1 s of copying and quantising for the
   * default model) are built in pieces of a few milliseconds with `pause()`
   * between them, so requests for the versions already loaded are answered
   * in the gaps. Given `from` (another thread's loadSharing of the same
   * version), no file is read and no table computed: the tables are copied.
   */
  static async loadPausing(version: number, createdAt: Date, artifactPath: string, pause: () => Promise<void>, options: LoadOptions & { readonly from?: SharedVersion } = {}): Promise<ServedModel> {
    if (options.from) return runStepsPausing(ServedModel.buildFrom(version, createdAt, artifactPath, options.from, options), pause);
    const data = await readArtifactAsync(artifactPath);
    return runStepsPausing(ServedModel.build(version, createdAt, artifactPath, data, options), pause);
  }

  /**
   * loadPausing, and the version's parts in shared memory for the other
   * threads that load it (their loadPausing's `from`): the files are read
   * into shared memory, and the output tables copied there once built.
   */
  static async loadSharing(version: number, createdAt: Date, artifactPath: string, pause: () => Promise<void>, options: LoadOptions = {}): Promise<{ model: ServedModel; shared: SharedVersion }> {
    const data = await readArtifactAsync(artifactPath, { shared: true });
    const model = await runStepsPausing(ServedModel.build(version, createdAt, artifactPath, data, options), pause);
    const { output, norms } = model.live();
    const tables = await runStepsPausing(output.exportTables(), pause);
    const sharedNorms = new Float32Array(new SharedArrayBuffer(norms.byteLength));
    sharedNorms.set(norms);
    const blend = data.blend && { neighbours: data.blend.neighbours, params: data.blend.params };
    return { model, shared: { configs: data.configs, members: data.members, vocabulary: model.vocabulary.itemIds, blend, output: tables, norms: sharedNorms } };
  }

  private static *build(version: number, createdAt: Date, artifactPath: string, data: ArtifactData, options: LoadOptions): Steps<ServedModel> {
    const vocabulary = artifactVocabulary(data.extra, data.configs[0]!.numItems, artifactPath, version);
    return yield* unusableAsCorrupt(artifactPath, version, function* () {
      const rows = data.configs[0]!.numItems + 1;
      const { width } = queryLayout(data.configs);
      const output = yield* ItemScorer.build(yield* outputTable(data, rows), rows, width, ENGINE_MAX_BATCH, { quantised: quantisedFor(options, rows) });
      // The network reads its input item embeddings from the output table's rows: one copy of them per worker.
      const engine = yield* InferenceEngine.build(data.configs, data.members, output.tableView());
      const norms = yield* embeddingNorms(data, rows);
      return new ServedModel(version, createdAt, data, vocabulary, partsOf(data.configs, engine, output, norms));
    });
  }

  /** build() from another thread's parts (loadSharing): the tables copied into this thread's kernels, the weights' bytes and the co-occurrence term shared. */
  private static *buildFrom(version: number, createdAt: Date, artifactPath: string, shared: SharedVersion, options: LoadOptions): Steps<ServedModel> {
    const { configs } = shared;
    const rows = configs[0]!.numItems + 1;
    if (shared.vocabulary.length !== rows - 1) throw new AppError('ARTIFACT_CORRUPT', `model artifact in ${artifactPath} has no usable item vocabulary`, { version });
    const vocabulary = new ItemVocabulary(shared.vocabulary);
    return yield* unusableAsCorrupt(artifactPath, version, function* () {
      if (shared.norms.length !== configs.length * rows) throw new RangeError(`the shared embedding lengths do not hold ${configs.length} x ${rows} values`);
      const output = yield* ItemScorer.build(shared.output, rows, queryLayout(configs).width, ENGINE_MAX_BATCH, { quantised: quantisedFor(options, rows) });
      const engine = yield* InferenceEngine.build(configs, shared.members, output.tableView());
      const blend = shared.blend && new CooccurrenceBlend(shared.blend.neighbours, shared.blend.params);
      return new ServedModel(version, createdAt, { configs, members: shared.members, blend, extra: undefined }, vocabulary, partsOf(configs, engine, output, shared.norms));
    });
  }

  get numItems(): number {
    return this.config.numItems;
  }

  protected free(): void {
    this.parts = undefined;
  }

  /**
   * Internal ids → the model's history: items the model does not know (added
   * after training) are left out, event types it never saw become padding,
   * and only the last maxLength events are kept.
   */
  encode(items: ArrayLike<number>, types: ArrayLike<number>): ModelHistory {
    return encodeHistory(this.vocabulary, this.config, items, types);
  }

  /** States of several non-empty histories (normalisers not yet computed). */
  states(histories: readonly ModelHistory[]): UserState[] {
    const { engine } = this.live();
    const width = engine.width;
    const queries = engine.queries(histories);
    return histories.map((h, b) => ({ query: queries.slice(b * width, (b + 1) * width), logNormaliser: NaN, items: h.items }));
  }

  state(history: ModelHistory): UserState {
    return this.states([history])[0]!;
  }

  /**
   * States, normalisers and shortlists of several non-empty histories: the
   * network for the whole batch, then the catalogue scored for the batch in
   * one pass over the output table, each row with its co-occurrence term.
   */
  represent(histories: readonly ModelHistory[], shortlist = SHORTLIST): Representation[] {
    const { output } = this.live();
    const states = this.states(histories);
    const out: Representation[] = [];
    const rows = output.rows;
    for (let from = 0; from < states.length; from += output.batch) {
      const chunk = states.slice(from, from + output.batch);
      const queries = new Float32Array(chunk.length * output.cols);
      chunk.forEach((s, b) => queries.set(s.query, b * output.cols));
      // The term first, then the normaliser of the blended row in the SIMD kernel (~0.03 ms): cheaper than moving
      // the network's normaliser by an exp and an expm1 per raised item (~3,000 on a 30-event amazon-games history).
      const terms = this.blend ? chunk.map((s) => this.blend!.term(s.items)) : [];
      const lists = output.shortlists(queries, chunk.length, Math.min(shortlist, this.numItems), terms);
      chunk.forEach((state, b) => {
        const { logNormaliser, indices, scores } = lists[b]!;
        state.logNormaliser = logNormaliser;
        out.push({ state, shortlist: { indices, scores } });
      });
    }
    return out;
  }

  /**
   * One history's state and its attention weights: per layer a [heads, T, T]
   * array (row = the position attending, T = the history's length, no
   * padding), each row a distribution over the positions at or before it;
   * an ensemble's members one after another (member m's block b at
   * m · blocks + b).
   */
  attention(history: ModelHistory): { state: UserState; layers: Float32Array[] } {
    const T = history.items.length;
    if (T === 0 || T > this.config.maxLength) throw new RangeError(`history length ${T} is outside 1..${this.config.maxLength}`);
    const { query, layers } = this.live().engine.forward(history);
    return { state: { query, logNormaliser: NaN, items: history.items }, layers };
  }

  /**
   * Scores (logits) of every item for a state: the network's, plus the
   * co-occurrence term of the state's history when the version has one;
   * index = model item index, 0 is padding. A view, valid until the next
   * call. Fills in the state's normaliser the first time (the scores are at
   * hand then).
   */
  scores(state: UserState): Float32Array {
    const { output } = this.live();
    const scores = output.scores(state.query);
    // Recomputed from the history at each call (~5,000 additions) rather than kept: cached users keep only their state.
    if (this.blend) addTerm(scores, this.blend.term(state.items));
    if (Number.isNaN(state.logNormaliser)) state.logNormaliser = output.logSumExpOfLast();
    return scores;
  }

  /**
   * The mean output-table row of each group of model indices, [groups, cols]
   * row-major (one index: a copy of its row). A state's query times such a
   * row is the mean of the group's network scores: the placement of new items
   * that bench/new-items.ts measures against the one served (metadata-peers.ts).
   */
  meanRows(groups: readonly (readonly number[])[]): Float32Array {
    const { output } = this.live();
    return groupMeans((index) => output.row(index), output.cols, groups);
  }

  /** Cosine similarity of every item to model item `index` (the members' average; 0 for padding). */
  similarities(index: number): Float32Array {
    const { output, norms, embeddings } = this.live();
    const K = embeddings.length;
    const rows = output.rows;
    // One query per member: its embedding of the item in its own columns (zeros elsewhere, the bias column too),
    // so one pass over the output table gives every member's dot products.
    const item = output.row(index);
    const queries = new Float32Array(K * output.cols);
    embeddings.forEach(({ at, dim }, m) => queries.set(item.subarray(at, at + dim), m * output.cols + at));
    const dots = output.scoresOf(queries, K);
    const out = new Float32Array(rows);
    for (let m = 0; m < K; m++) {
      const norm = norms.subarray(m * rows, (m + 1) * rows);
      const scale = 1 / (K * norm[index]!);
      const dot = dots.subarray(m * rows, (m + 1) * rows);
      for (let r = 1; r < rows; r++) out[r] = out[r]! + (dot[r]! * scale) / norm[r]!;
    }
    return out;
  }

  /** Floats per state's query (UserState.query). */
  get queryWidth(): number {
    return this.live().engine.width;
  }

  /** How shortlists are scored: through the 8-bit table, or in float32 (asked for, a small catalogue, or no kernel). */
  get scoring(): ScoringMode {
    return this.live().output.isQuantised ? 'quantised' : 'exact';
  }

  /** Whether scoring runs in the SIMD kernel (false: a JavaScript loop). */
  get accelerated(): boolean {
    return this.live().output.accelerated;
  }

  private live(): NonNullable<ServedModel['parts']> {
    if (!this.parts) throw new Error(`model version ${this.version} was retired and freed; acquire the current model`);
    return this.parts;
  }
}

/**
 * Internal ids → a model's history: items the model does not know (added
 * after training) are left out, event types it never saw become padding,
 * and only the last maxLength events are kept.
 */
export function encodeHistory(vocabulary: ItemVocabulary, config: Pick<ModelConfig, 'numEventTypes' | 'maxLength'>, items: ArrayLike<number>, types: ArrayLike<number>): ModelHistory {
  const outItems: number[] = [];
  const outTypes: number[] = [];
  const maxType = config.numEventTypes;
  for (let i = 0; i < items.length; i++) {
    const index = vocabulary.indexOf(items[i]!);
    if (index === 0) continue;
    outItems.push(index);
    const type = types[i]!;
    outTypes.push(type >= 1 && type <= maxType ? type : 0);
  }
  const from = Math.max(0, outItems.length - config.maxLength);
  return { items: outItems.slice(from), types: outTypes.slice(from) };
}

/** The vocabulary an artifact's extra data holds (internal item id of each model index), or an ARTIFACT_CORRUPT error. */
export function artifactVocabulary(extra: unknown, numItems: number, artifactPath: string, version: number): ItemVocabulary {
  const ids = (extra as { vocabulary?: unknown } | undefined)?.vocabulary;
  const corrupt = () => new AppError('ARTIFACT_CORRUPT', `model artifact in ${artifactPath} has no usable item vocabulary`, { version });
  if (!Array.isArray(ids) || ids.length !== numItems) throw corrupt();
  // One pass (on the event loop at every load of a version): checked and copied together.
  const itemIds = new Int32Array(numItems);
  for (let k = 0; k < numItems; k++) {
    const id: unknown = ids[k];
    if (typeof id !== 'number' || !Number.isInteger(id) || id < -(2 ** 31) || id >= 2 ** 31) throw corrupt();
    itemIds[k] = id;
  }
  return new ItemVocabulary(itemIds);
}

/** A loaded version's parts for serving (see Parts). */
function partsOf(configs: readonly ModelConfig[], engine: InferenceEngine, output: ItemScorer, norms: Float32Array): Parts {
  const { columns } = queryLayout(configs);
  return { engine, output, norms, embeddings: configs.map((c, k) => ({ at: columns[k]!, dim: c.dim })) };
}

/** Whether a version of `rows` output rows scores through the 8-bit table (see QUANTISED_MIN_ROWS). */
function quantisedFor(options: LoadOptions, rows: number): boolean {
  return options.scoring !== 'exact' && rows >= QUANTISED_MIN_ROWS;
}

/** Runs a build; a RangeError (weights that do not fit their configuration) becomes ARTIFACT_CORRUPT. */
function* unusableAsCorrupt<T>(artifactPath: string, version: number, build: () => Steps<T>): Steps<T> {
  try {
    return yield* build();
  } catch (error) {
    if (error instanceof RangeError) throw new AppError('ARTIFACT_CORRUPT', `model artifact in ${artifactPath} is unusable: ${error.message}`, { version });
    throw error;
  }
}

/** The members' output tables side by side [rows, width], laid out as queries (queryLayout): item embeddings, and the item bias where a member has one. */
function* outputTable(data: ArtifactData, rows: number): Steps<Float32Array> {
  const { columns, width } = queryLayout(data.configs);
  const table = new Float32Array(rows * width);
  for (const [k, config] of data.configs.entries()) {
    const embedding = data.members[k]!.get('item_embedding')?.values;
    if (embedding?.length !== rows * config.dim) throw new RangeError(`member ${k}: item_embedding does not hold ${rows} x ${config.dim} values`);
    const bias = config.itemBias ? data.members[k]!.get('item_bias')?.values : undefined;
    if (config.itemBias && bias?.length !== rows) throw new RangeError(`member ${k}: item_bias does not hold ${rows} values`);
    const d = config.dim;
    const at = columns[k]!;
    yield* rowSteps(0, rows, d, (r) => {
      table.set(embedding.subarray(r * d, (r + 1) * d), r * width + at);
      if (bias) table[r * width + at + d] = bias[r]!;
    });
  }
  return table;
}

/**
 * Each member's item-embedding lengths, [members, rows] (at least 1e-12):
 * with them, similarities() turns the output table's dot products into the
 * average of the members' cosines. A unit-length copy of the embeddings (a
 * second 25 MB table per worker for the default model, which the API kept
 * until 2026-12-02) would give the same numbers; the lengths are 190 KB.
 */
function* embeddingNorms(data: ArtifactData, rows: number): Steps<Float32Array> {
  const norms = new Float32Array(data.configs.length * rows);
  for (const [k, config] of data.configs.entries()) {
    const embedding = data.members[k]!.get('item_embedding')!.values;
    const d = config.dim;
    yield* rowSteps(0, rows, d, (r) => {
      let norm = 0;
      for (let j = 0; j < d; j++) norm += embedding[r * d + j]! ** 2;
      norms[k * rows + r] = Math.max(Math.sqrt(norm), 1e-12);
    });
  }
  return norms;
}
