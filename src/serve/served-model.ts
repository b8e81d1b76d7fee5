import * as tf from '@tensorflow/tfjs';
import { loadModel } from '../model/artifact.js';
import type { ModelConfig } from '../model/config.js';
import { ItemScorer } from '../model/item-scorer.js';
import type { SasRecEnsemble } from '../model/ensemble.js';
import { ItemVocabulary } from '../train/vocabulary.js';
import { addTerm, blendedLogNormaliser, EMPTY_TERM, type CooccurrenceBlend } from '../model/cooccurrence-blend.js';
import { AppError } from '../errors.js';

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

/**
 * A trained model version loaded for serving: the network (TensorFlow.js, one
 * or more SASRec members) for the history's representation, and the output
 * layer and unit-length item embeddings copied into SIMD scorers, so scoring
 * the whole catalogue is one kernel call rather than one tensor op per item.
 * An ensemble's members are side by side in both tables (see
 * SasRecEnsemble), so its logits are the members' average and its
 * similarities the average of the members' cosines.
 *
 * In-flight requests hold a reference (acquire/release); a model swapped out
 * by activation is disposed only when the last of them lets go.
 */
export class ServedModel {
  readonly config: ModelConfig;
  readonly vocabulary: ItemVocabulary;
  private readonly output: ItemScorer;
  private readonly unit: ItemScorer;
  private references = 0;
  private retired = false;
  private disposed = false;

  private constructor(
    readonly version: number,
    readonly createdAt: Date,
    private readonly network: SasRecEnsemble,
    vocabulary: ItemVocabulary,
    /** The version's item-to-item term, when it has one (see CooccurrenceBlend). */
    readonly blend: CooccurrenceBlend | undefined,
  ) {
    this.config = network.config;
    this.vocabulary = vocabulary;
    const [table, unit] = tf.tidy(() => [network.outputTable(), unitEmbeddings(network)]);
    this.output = new ItemScorer(table!.dataSync() as Float32Array, table!.shape[0], table!.shape[1]!);
    this.unit = new ItemScorer(unit!.dataSync() as Float32Array, unit!.shape[0], unit!.shape[1]!);
    table!.dispose();
    unit!.dispose();
  }

  static load(version: number, createdAt: Date, artifactPath: string): ServedModel {
    const { model, blend, extra } = loadModel(artifactPath);
    const ids = (extra as { vocabulary?: unknown } | undefined)?.vocabulary;
    if (!Array.isArray(ids) || ids.length !== model.config.numItems || !ids.every((id) => Number.isInteger(id))) {
      model.dispose();
      throw new AppError('ARTIFACT_CORRUPT', `model artifact in ${artifactPath} has no usable item vocabulary`, { version });
    }
    return new ServedModel(version, createdAt, model, new ItemVocabulary(Int32Array.from(ids as number[])), blend);
  }

  get numItems(): number {
    return this.config.numItems;
  }

  /** Ensemble members (1: a single SASRec); attention() returns members × blocks layers, member by member. */
  get members(): number {
    return this.network.size;
  }

  /** Keeps the model alive for the duration of a request. */
  acquire(): this {
    this.references++;
    return this;
  }

  release(): void {
    this.references--;
    if (this.retired && this.references === 0) this.dispose();
  }

  /** No new requests will use this model: free it once the current ones finish. */
  retire(): void {
    this.retired = true;
    if (this.references === 0) this.dispose();
  }

  /**
   * Internal ids → the model's history: items the model does not know (added
   * after training) are left out, event types it never saw become padding,
   * and only the last maxLength events are kept.
   */
  encode(items: ArrayLike<number>, types: ArrayLike<number>): ModelHistory {
    const outItems: number[] = [];
    const outTypes: number[] = [];
    const maxType = this.config.numEventTypes;
    for (let i = 0; i < items.length; i++) {
      const index = this.vocabulary.indexOf(items[i]!);
      if (index === 0) continue;
      outItems.push(index);
      const type = types[i]!;
      outTypes.push(type >= 1 && type <= maxType ? type : 0);
    }
    const from = Math.max(0, outItems.length - this.config.maxLength);
    return { items: outItems.slice(from), types: outTypes.slice(from) };
  }

  /** States of several non-empty histories in one forward pass. */
  states(histories: readonly ModelHistory[]): UserState[] {
    return histories.length === 0 ? [] : this.forwardLast(histories, false).states;
  }

  state(history: ModelHistory): UserState {
    return this.states([history])[0]!;
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
    const { states, layers } = this.forwardLast([history], true);
    return { state: states[0]!, layers };
  }

  /**
   * The forward pass behind states() and attention(): histories left-padded
   * to the longest (at most maxLength), the last position's output-layer
   * query per history, and, when asked, each layer's attention weights
   * ([batch, heads, T, T] flattened; for one unpadded history, [heads, T, T]).
   */
  private forwardLast(histories: readonly ModelHistory[], returnAttention: boolean): { states: UserState[]; layers: Float32Array[] } {
    if (this.disposed) throw new Error(`model version ${this.version} was retired and freed; acquire the current model`);
    const { maxLength } = this.config;
    const T = Math.min(maxLength, Math.max(...histories.map((h) => h.items.length)));
    const n = histories.length;
    const items = new Int32Array(n * T);
    const types = new Int32Array(n * T);
    histories.forEach((h, b) => {
      const from = Math.max(0, h.items.length - T);
      const length = h.items.length - from;
      for (let j = 0; j < length; j++) {
        items[b * T + T - length + j] = h.items[from + j]!;
        types[b * T + T - length + j] = h.types[from + j]!;
      }
    });
    const [last, ...attention] = tf.tidy(() => {
      const { queries, attention: weights } = this.network.lastQueries(tf.tensor2d(items, [n, T], 'int32'), tf.tensor2d(types, [n, T], 'int32'), { returnAttention });
      return [queries, ...(weights ?? [])];
    });
    const values = last!.dataSync() as Float32Array;
    const width = last!.shape[1]!;
    const layers = attention.map((layer) => (layer.dataSync() as Float32Array).slice());
    for (const t of [last!, ...attention]) t.dispose();
    return { states: histories.map((h, b) => ({ query: values.slice(b * width, (b + 1) * width), logNormaliser: NaN, items: h.items })), layers };
  }

  /**
   * The state of one history, computed together with every other history
   * asked for in the same turn of the event loop: under load, concurrent
   * requests share one forward pass (TensorFlow.js's per-op cost dominates
   * a single short history, so a batch of 32 costs little more than one).
   */
  stateSoon(history: ModelHistory): Promise<UserState> {
    return new Promise((resolve, reject) => {
      this.pending.push({ history, resolve, reject });
      if (this.pending.length === 1) setImmediate(() => this.flushPending());
    });
  }

  private pending: { history: ModelHistory; resolve: (state: UserState) => void; reject: (error: unknown) => void }[] = [];

  private flushPending(): void {
    const waiting = this.pending.splice(0);
    // Similar lengths together: a batch is as long as its longest history.
    waiting.sort((a, b) => a.history.items.length - b.history.items.length);
    for (let from = 0; from < waiting.length; from += MAX_BATCH) {
      const chunk = waiting.slice(from, from + MAX_BATCH);
      try {
        const states = this.states(chunk.map((w) => w.history));
        chunk.forEach((w, i) => w.resolve(states[i]!));
      } catch (error) {
        for (const w of chunk) w.reject(error);
      }
    }
  }

  /**
   * Scores (logits) of every item for a state: the network's, plus the
   * co-occurrence term of the state's history when the version has one;
   * index = model item index, 0 is padding. A view, valid until the next
   * call. Fills in the state's normaliser the first time (the scores are at
   * hand then).
   */
  scores(state: UserState): Float32Array {
    const scores = this.output.scores(state.query);
    // Recomputed from the history at each call (~5,000 additions) rather than kept: cached users keep only their state.
    const term = this.blend ? this.blend.term(state.items) : EMPTY_TERM;
    if (Number.isNaN(state.logNormaliser)) state.logNormaliser = blendedLogNormaliser(this.output.logSumExpOfLast(), scores, term);
    addTerm(scores, term);
    return scores;
  }

  /** Cosine similarity of every item to model item `index` (a view, valid until the next call). */
  similarities(index: number): Float32Array {
    return this.unit.scores(this.unit.row(index));
  }

  /** Whether scoring runs in the SIMD kernel (false: a JavaScript loop). */
  get accelerated(): boolean {
    return this.output.accelerated;
  }

  private dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.network.dispose();
  }
}

const MAX_BATCH = 64;

/**
 * Each member's item embeddings scaled to unit length, side by side and
 * divided by √K, so that the dot product of two rows is the average of the
 * members' cosine similarities; the padding row is zero and matches nothing.
 */
function unitEmbeddings(network: SasRecEnsemble): tf.Tensor2D {
  const k = network.size;
  const parts = network.members.map((m) => tf.div(m.itemEmbedding, tf.maximum(tf.norm(m.itemEmbedding, 'euclidean', 1, true), 1e-12)));
  const joined = parts.length === 1 ? parts[0]! : tf.div(tf.concat(parts, 1), Math.sqrt(k));
  const rows = joined.shape[0]!;
  return tf.concat([tf.zeros([1, joined.shape[1]!]), tf.slice(joined, [1, 0], [rows - 1, -1])], 0) as tf.Tensor2D;
}
