import * as tf from '@tensorflow/tfjs';
import { Random } from '../random.js';
import { ModelConfigSchema, type ModelConfig } from './config.js';
import { glorotUniform, normal } from './init.js';
import { attention } from './attention.js';
import { dense, dropout as dropoutOp, embeddingLookup, layerNorm } from './ops.js';

/**
 * SASRec (Kang & McAuley, ICDM 2018): a causal self-attention decoder over a
 * shopper's history. Item embeddings (shared with the output layer) plus
 * learned position embeddings plus, optionally, event-type embeddings; then
 * `blocks` pre-norm blocks of multi-head causal self-attention and a
 * position-wise feed-forward layer, each with a residual connection; a final
 * layer norm. Sequences are left-padded with item 0.
 */

interface BlockWeights {
  readonly ln1Gamma: tf.Variable;
  readonly ln1Beta: tf.Variable;
  readonly wq: tf.Variable;
  readonly bq: tf.Variable;
  readonly wk: tf.Variable;
  readonly bk: tf.Variable;
  readonly wv: tf.Variable;
  readonly bv: tf.Variable;
  readonly wo: tf.Variable;
  readonly bo: tf.Variable;
  readonly ln2Gamma: tf.Variable;
  readonly ln2Beta: tf.Variable;
  readonly w1: tf.Variable;
  readonly b1: tf.Variable;
  readonly w2: tf.Variable;
  readonly b2: tf.Variable;
}

export interface ForwardOptions {
  /** Dropout on (training) or off (inference). */
  readonly training?: boolean;
  /** Also return each layer's attention weights [batch, heads, T, T]. */
  readonly returnAttention?: boolean;
  /** Seed for this pass's dropout masks (training only). */
  readonly dropoutSeed?: number;
  /** Attention implementation (see attention.ts); default auto. */
  readonly attention?: 'auto' | 'kernel' | 'ops';
}

export interface ForwardResult {
  /** [batch, T, dim] after the final layer norm; padded positions are zero. */
  readonly hidden: tf.Tensor3D;
  /** Per layer: [batch, heads, T, T]; row t is what position t attended to. */
  readonly attention?: tf.Tensor4D[];
}

/** A large negative rather than -Infinity: the padding column of the scores stays finite. */
const MASKED = -1e9;

export class SasRec {
  readonly config: ModelConfig;
  readonly itemEmbedding: tf.Variable; // [numItems + 1, dim]
  readonly positionEmbedding: tf.Variable; // [maxLength, dim]
  readonly typeEmbedding: tf.Variable | undefined; // [numEventTypes + 1, dim]
  readonly itemBias: tf.Variable | undefined; // [numItems + 1, 1]
  readonly blocks: BlockWeights[];
  readonly finalGamma: tf.Variable;
  readonly finalBeta: tf.Variable;

  constructor(config: ModelConfig) {
    this.config = ModelConfigSchema.parse(config);
    const { numItems, numEventTypes, maxLength, dim, ffnDim, blocks, seed } = this.config;
    const random = new Random(seed);
    const variable = (values: Float32Array, shape: number[], name: string): tf.Variable => tf.variable(tf.tensor(values, shape), true, `${name}_${seed}_${Math.random().toString(36).slice(2)}`);
    const zeros = (n: number, name: string): tf.Variable => variable(new Float32Array(n), [n], name);
    const ones = (n: number, name: string): tf.Variable => variable(new Float32Array(n).fill(1), [n], name);
    const zeros2d = (n: number, name: string): tf.Variable => variable(new Float32Array(n), [n, 1], name);
    const std = 1 / Math.sqrt(dim);
    this.itemEmbedding = variable(normal(random, (numItems + 1) * dim, std), [numItems + 1, dim], 'item_embedding');
    this.positionEmbedding = variable(normal(random, maxLength * dim, std), [maxLength, dim], 'position_embedding');
    this.itemBias = this.config.itemBias ? zeros2d(numItems + 1, 'item_bias') : undefined;
    this.typeEmbedding = numEventTypes > 0 ? variable(normal(random, (numEventTypes + 1) * dim, std), [numEventTypes + 1, dim], 'type_embedding') : undefined;
    this.blocks = Array.from({ length: blocks }, (_, b) => ({
      ln1Gamma: ones(dim, `b${b}_ln1_gamma`),
      ln1Beta: zeros(dim, `b${b}_ln1_beta`),
      wq: variable(glorotUniform(random, dim, dim), [dim, dim], `b${b}_wq`),
      bq: zeros(dim, `b${b}_bq`),
      wk: variable(glorotUniform(random, dim, dim), [dim, dim], `b${b}_wk`),
      bk: zeros(dim, `b${b}_bk`),
      wv: variable(glorotUniform(random, dim, dim), [dim, dim], `b${b}_wv`),
      bv: zeros(dim, `b${b}_bv`),
      wo: variable(glorotUniform(random, dim, dim), [dim, dim], `b${b}_wo`),
      bo: zeros(dim, `b${b}_bo`),
      ln2Gamma: ones(dim, `b${b}_ln2_gamma`),
      ln2Beta: zeros(dim, `b${b}_ln2_beta`),
      w1: variable(glorotUniform(random, dim, ffnDim), [dim, ffnDim], `b${b}_w1`),
      b1: zeros(ffnDim, `b${b}_b1`),
      w2: variable(glorotUniform(random, ffnDim, dim), [ffnDim, dim], `b${b}_w2`),
      b2: zeros(dim, `b${b}_b2`),
    }));
    this.finalGamma = ones(dim, 'final_gamma');
    this.finalBeta = zeros(dim, 'final_beta');
  }

  /** Every trainable variable, in a fixed order (for optimizers and serialisation). */
  get variables(): tf.Variable[] {
    return this.namedVariables().map(([, v]) => v);
  }

  /** Variables under stable logical names ("blocks/0/wq"), the names saved in artifacts. */
  namedVariables(): [string, tf.Variable][] {
    return [
      ['item_embedding', this.itemEmbedding],
      ['position_embedding', this.positionEmbedding],
      ...(this.typeEmbedding ? [['type_embedding', this.typeEmbedding] as [string, tf.Variable]] : []),
      ...(this.itemBias ? [['item_bias', this.itemBias] as [string, tf.Variable]] : []),
      ...this.blocks.flatMap((block, b) => Object.entries(block).map(([name, v]) => [`blocks/${b}/${name}`, v] as [string, tf.Variable])),
      ['final/gamma', this.finalGamma],
      ['final/beta', this.finalBeta],
    ];
  }

  /**
   * items, types: [batch, T] int32, left-padded with 0, T <= maxLength (the
   * last T position embeddings are used, so the newest event always has the
   * same position).
   */
  forward(items: tf.Tensor2D, types: tf.Tensor2D | undefined, options: ForwardOptions = {}): ForwardResult {
    const { dim, heads, maxLength, dropout } = this.config;
    const [batch, T] = items.shape;
    if (T > maxLength) throw new RangeError(`sequence length ${T} exceeds maxLength ${maxLength}`);
    const training = options.training === true && dropout > 0;
    const dropoutRandom = new Random(options.dropoutSeed ?? 0);
    const drop = (x: tf.Tensor): tf.Tensor => (training ? dropoutOp(x, dropout, dropoutRandom) : x);
    const dk = dim / heads;
    const attention4d: tf.Tensor4D[] = [];

    const flatItems = tf.reshape(items, [batch * T]) as tf.Tensor1D;
    const keep = tf.cast(tf.notEqual(items, 0), 'float32'); // [batch, T]: 1 for real events
    const keep3 = tf.expandDims(keep, 2); // [batch, T, 1]
    let x: tf.Tensor = tf.mul(tf.reshape(embeddingLookup(this.itemEmbedding as tf.Tensor2D, flatItems), [batch, T, dim]), Math.sqrt(dim));
    x = tf.add(x, tf.slice(this.positionEmbedding, [maxLength - T, 0], [T, dim])); // broadcast over batch
    if (this.typeEmbedding && types) {
      const flatTypes = tf.reshape(types, [batch * T]) as tf.Tensor1D;
      x = tf.add(x, tf.reshape(embeddingLookup(this.typeEmbedding as tf.Tensor2D, flatTypes), [batch, T, dim]));
    }
    x = tf.mul(drop(x), keep3);

    // Heads are folded into the leading axis: [batch × heads, T, dk], as the attention op expects.
    const toHeads = (t2d: tf.Tensor2D): tf.Tensor3D =>
      tf.reshape(tf.transpose(tf.reshape(t2d, [batch, T, heads, dk]), [0, 2, 1, 3]), [batch * heads, T, dk]) as tf.Tensor3D;
    // Which positions are real events; the attention op adds the causal rule.
    const mask = { keep: keep.dataSync() as Float32Array, heads };
    for (const block of this.blocks) {
      const normed = tf.reshape(layerNorm(x, block.ln1Gamma as tf.Tensor1D, block.ln1Beta as tf.Tensor1D), [batch * T, dim]) as tf.Tensor2D;
      const q = toHeads(dense(normed, block.wq as tf.Tensor2D, block.bq as tf.Tensor1D));
      const k = toHeads(dense(normed, block.wk as tf.Tensor2D, block.bk as tf.Tensor1D));
      const v = toHeads(dense(normed, block.wv as tf.Tensor2D, block.bv as tf.Tensor1D));
      // No dropout on the attention probabilities themselves: they stay exact for inspection, and
      // the fused op keeps every product on the fast path; dropout still acts on the block's output.
      const { context, weights } = attention(q, k, v, mask, { returnWeights: options.returnAttention === true, ...(options.attention && { implementation: options.attention }) });
      if (weights) attention4d.push(tf.reshape(weights, [batch, heads, T, T]) as tf.Tensor4D);
      const merged = tf.reshape(tf.transpose(tf.reshape(context, [batch, heads, T, dk]), [0, 2, 1, 3]), [batch * T, dim]) as tf.Tensor2D;
      x = tf.add(x, tf.reshape(drop(dense(merged, block.wo as tf.Tensor2D, block.bo as tf.Tensor1D)), [batch, T, dim]));

      const normed2 = tf.reshape(layerNorm(x, block.ln2Gamma as tf.Tensor1D, block.ln2Beta as tf.Tensor1D), [batch * T, dim]) as tf.Tensor2D;
      const hiddenFfn = drop(tf.relu(dense(normed2, block.w1 as tf.Tensor2D, block.b1 as tf.Tensor1D))) as tf.Tensor2D;
      x = tf.add(x, tf.reshape(drop(dense(hiddenFfn, block.w2 as tf.Tensor2D, block.b2 as tf.Tensor1D)), [batch, T, dim]));
      x = tf.mul(x, keep3);
    }
    const hidden = tf.mul(layerNorm(x, this.finalGamma as tf.Tensor1D, this.finalBeta as tf.Tensor1D), keep3) as tf.Tensor3D;
    return options.returnAttention ? { hidden, attention: attention4d } : { hidden };
  }

  /**
   * The output layer as one table [numItems + 1, dim (+ 1)]: the item embeddings,
   * with the item bias as an extra column when the model has one; pair it with
   * outputStates. Every loss and the scores use this pair, so the bias needs no
   * loss of its own.
   */
  outputTable(): tf.Tensor2D {
    return (this.itemBias ? tf.concat([this.itemEmbedding, this.itemBias], 1) : this.itemEmbedding) as tf.Tensor2D;
  }

  /** States [n, dim] → [n, dim (+ 1)]: a constant 1 multiplies the bias column. */
  outputStates(states: tf.Tensor2D): tf.Tensor2D {
    return this.itemBias ? (tf.concat([states, tf.ones([states.shape[0], 1])], 1) as tf.Tensor2D) : states;
  }

  /** Scores of every item [batch, numItems + 1] from states [batch, dim]; column 0 (padding) is -Infinity-like. */
  scores(states: tf.Tensor2D): tf.Tensor2D {
    // [batch, dim] · [dim, V]: the item table doubles as the output layer.
    const logits = tf.matMul(this.outputStates(states), tf.transpose(this.outputTable()));
    const padding = tf.concat([tf.tensor1d([MASKED]), tf.zeros([this.config.numItems])]);
    return tf.add(logits, padding) as tf.Tensor2D;
  }

  dispose(): void {
    for (const v of this.variables) v.dispose();
  }
}
