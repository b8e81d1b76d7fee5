import * as tf from '@tensorflow/tfjs';
import type { ModelConfig } from './config.js';
import { SasRec } from './sasrec.js';

/**
 * A model version's network: one or more SASRec members trained from
 * different seeds on the same data, whose next-item logits are averaged
 * (a geometric mean of their softmax distributions). One member is a plain
 * SASRec.
 *
 * Averaging is folded into one dot product: the query of a history is the
 * members' last-position states, each divided by K, side by side
 * [K · width], and the output table is the members' tables side by side
 * [numItems + 1, K · width]; query · tableᵀ = (1/K) Σ_k h_k · E_kᵀ. Serving,
 * scoring kernels and caches see one table and one query of the combined
 * width, whatever K is.
 */
export class SasRecEnsemble {
  readonly members: readonly SasRec[];

  constructor(members: readonly SasRec[]) {
    if (members.length === 0) throw new RangeError('an ensemble needs at least one member');
    const [first, ...rest] = members;
    for (const m of rest) {
      for (const key of ['numItems', 'numEventTypes', 'maxLength', 'heads', 'blocks'] as const) {
        if (m.config[key] !== first!.config[key]) throw new RangeError(`ensemble members differ in ${key}: ${first!.config[key]} and ${m.config[key]}`);
      }
    }
    this.members = members;
  }

  /** Builds K fresh members from one configuration: member k is seeded with seed + k. */
  static fresh(config: ModelConfig, size: number): SasRecEnsemble {
    return new SasRecEnsemble(Array.from({ length: size }, (_, k) => new SasRec({ ...config, seed: config.seed + k })));
  }

  /** The first member's configuration (every member shares its catalogue, window, heads and blocks). */
  get config(): ModelConfig {
    return this.members[0]!.config;
  }

  get size(): number {
    return this.members.length;
  }

  /** Width of the combined query and output table. */
  get width(): number {
    return this.members.reduce((sum, m) => sum + m.config.dim + (m.itemBias ? 1 : 0), 0);
  }

  /**
   * The query of each history's last position [batch, width] and, when asked
   * for, the attention weights of every member's layers, member by member
   * (member k's layer l at k · blocks + l), each [batch, heads, T, T].
   */
  lastQueries(items: tf.Tensor2D, types: tf.Tensor2D | undefined, options: { readonly returnAttention?: boolean } = {}): { queries: tf.Tensor2D; attention?: tf.Tensor4D[] } {
    const [batch, T] = items.shape;
    const attention: tf.Tensor4D[] = [];
    const queries = this.members.map((member) => {
      const { hidden, attention: layers } = member.forward(items, types, { returnAttention: options.returnAttention === true });
      if (layers) attention.push(...layers);
      const last = tf.reshape(tf.slice(hidden, [0, T - 1, 0], [batch, 1, member.config.dim]), [batch, member.config.dim]) as tf.Tensor2D;
      return member.outputStates(last);
    });
    const combined = (queries.length === 1 ? queries[0]! : tf.div(tf.concat(queries, 1), this.size)) as tf.Tensor2D;
    return options.returnAttention ? { queries: combined, attention } : { queries: combined };
  }

  /** The members' output tables side by side [numItems + 1, width]. */
  outputTable(): tf.Tensor2D {
    const tables = this.members.map((m) => m.outputTable());
    return (tables.length === 1 ? tables[0]! : tf.concat(tables, 1)) as tf.Tensor2D;
  }

  /** The members' item embeddings side by side [numItems + 1, Σ dim] (each member's rows as trained). */
  itemEmbeddings(): tf.Tensor2D {
    return (this.size === 1 ? this.members[0]!.itemEmbedding : tf.concat(this.members.map((m) => m.itemEmbedding), 1)) as tf.Tensor2D;
  }

  /** Averaged logits of every item [batch, numItems + 1] for queries [batch, width]; column 0 (padding) is -Infinity-like. */
  scores(queries: tf.Tensor2D): tf.Tensor2D {
    return tf.tidy(() => tf.add(tf.matMul(queries, tf.transpose(this.outputTable())), tf.concat([tf.tensor1d([MASKED]), tf.zeros([this.config.numItems])])) as tf.Tensor2D);
  }

  dispose(): void {
    for (const m of this.members) m.dispose();
  }
}

/** A large negative rather than -Infinity: the padding column of the scores stays finite. */
const MASKED = -1e9;
