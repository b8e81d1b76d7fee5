import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { Random } from '../random.js';
import { readArtifact } from './artifact-format.js';
import { saveModel } from './artifact.js';
import { selectBackend } from './backend.js';
import type { ModelConfig } from './config.js';
import { SasRecEnsemble } from './ensemble.js';
import { InferenceEngine, queryLayout, type EngineHistory } from './inference-engine.js';
import { SasRec } from './sasrec.js';

/** Members with every weight random (layer norms and biases too), so no path of the pass hides behind a 1 or a 0. */
function randomEnsemble(configs: ModelConfig[]): SasRecEnsemble {
  const ensemble = new SasRecEnsemble(configs.map((c) => new SasRec(c)));
  let seed = 1;
  for (const member of ensemble.members) for (const v of member.variables) v.assign(tf.randomNormal(v.shape, 0, 0.5, 'float32', seed++));
  return ensemble;
}

function engineOf(ensemble: SasRecEnsemble): InferenceEngine {
  const dir = mkdtempSync(join(tmpdir(), 'attnrec-engine-'));
  saveModel(ensemble, dir, { vocabulary: [] });
  const data = readArtifact(dir);
  return new InferenceEngine(data.configs, data.members);
}

function randomHistories(config: ModelConfig, count: number, seed: number, lengths?: number[]): EngineHistory[] {
  const random = new Random(seed);
  return Array.from({ length: count }, (_, i) => {
    const T = lengths?.[i] ?? 1 + random.int(config.maxLength);
    return { items: Array.from({ length: T }, () => 1 + random.int(config.numItems)), types: Array.from({ length: T }, () => random.int(config.numEventTypes + 1)) };
  });
}

/** TensorFlow.js's queries for the same histories, left-padded to the longest (the training and evaluation path). */
function referenceQueries(ensemble: SasRecEnsemble, histories: readonly EngineHistory[]): Float32Array {
  const T = Math.max(...histories.map((h) => h.items.length));
  const items = new Int32Array(histories.length * T);
  const types = new Int32Array(histories.length * T);
  histories.forEach((h, b) => h.items.forEach((item, j) => {
    items[b * T + T - h.items.length + j] = item;
    types[b * T + T - h.items.length + j] = h.types[j]!;
  }));
  return tf.tidy(() => ensemble.lastQueries(tf.tensor2d(items, [histories.length, T], 'int32'), tf.tensor2d(types, [histories.length, T], 'int32')).queries.dataSync() as Float32Array);
}

function expectClose(actual: Float32Array, expected: Float32Array, tolerance: number): void {
  expect(actual.length).toBe(expected.length);
  let worst = 0;
  for (let i = 0; i < actual.length; i++) worst = Math.max(worst, Math.abs(actual[i]! - expected[i]!) / Math.max(1, Math.abs(expected[i]!)));
  expect(worst).toBeLessThan(tolerance);
}

const base = { numItems: 40, numEventTypes: 3, maxLength: 12, dropout: 0.3, itemBias: false, seed: 3 };

describe('InferenceEngine', () => {
  beforeAll(async () => {
    await selectBackend('wasm');
  });

  it.each([
    ['dim 16, 2 heads, 2 blocks, feed-forward 24 (the 8-column kernel and its tail)', [{ ...base, dim: 16, heads: 2, blocks: 2, ffnDim: 24 }]],
    ['dim 6, 1 head, 3 blocks (widths that are not multiples of 4)', [{ ...base, dim: 6, heads: 1, blocks: 3, ffnDim: 5 }]],
    ['one block, an item bias, no event types', [{ ...base, numEventTypes: 0, dim: 8, heads: 2, blocks: 1, ffnDim: 8, itemBias: true }]],
    ['an ensemble of two members of different widths', [{ ...base, dim: 16, heads: 2, blocks: 2, ffnDim: 16 }, { ...base, dim: 8, heads: 2, blocks: 2, ffnDim: 12, seed: 4, itemBias: true }]],
    ['the default shape (dim 128, 2 heads, 2 blocks) on 2 members', [0, 1].map((k) => ({ ...base, maxLength: 50, dim: 128, heads: 2, blocks: 2, ffnDim: 128, seed: 42 + k }))],
  ] as [string, ModelConfig[]][])('gives the last position\'s query of TensorFlow.js\'s forward pass: %s', (_name, configs) => {
    const ensemble = randomEnsemble(configs);
    const engine = engineOf(ensemble);
    expect(engine.width).toBe(ensemble.width);
    // Lengths from 1 to maxLength in one batch: the engine runs them unpadded, TensorFlow.js left-padded.
    const histories = randomHistories(configs[0]!, 9, 5, [1, 2, configs[0]!.maxLength, 3, configs[0]!.maxLength - 1, 7, 1, 5, 4]);
    expectClose(engine.queries(histories), referenceQueries(ensemble, histories), 1e-4);
    // Each history alone gives what it gave in the batch.
    const alone = histories.map((h) => engine.queries([h]));
    const together = engine.queries(histories);
    alone.forEach((q, i) => expect(Array.from(q)).toEqual(Array.from(together.subarray(i * engine.width, (i + 1) * engine.width))));
    ensemble.dispose();
  });

  it('splits batches larger than one pass without changing a query', () => {
    const config = { ...base, dim: 8, heads: 2, blocks: 2, ffnDim: 8 };
    const ensemble = randomEnsemble([config]);
    const engine = engineOf(ensemble);
    const histories = randomHistories(config, 150, 9);
    expectClose(engine.queries(histories), referenceQueries(ensemble, histories), 1e-4);
    ensemble.dispose();
  });

  it('returns every layer\'s attention weights, member by member, as TensorFlow.js computes them', () => {
    const configs = [{ ...base, dim: 8, heads: 2, blocks: 2, ffnDim: 8 }, { ...base, dim: 8, heads: 2, blocks: 2, ffnDim: 8, seed: 9 }];
    const ensemble = randomEnsemble(configs);
    const engine = engineOf(ensemble);
    const [history] = randomHistories(configs[0]!, 1, 2, [7]);
    const { query, layers } = engine.forward(history!);
    expectClose(query, referenceQueries(ensemble, [history!]), 1e-4);
    const reference = tf.tidy(() => {
      const { attention } = ensemble.lastQueries(tf.tensor2d([[...history!.items]], [1, 7], 'int32'), tf.tensor2d([[...history!.types]], [1, 7], 'int32'), { returnAttention: true });
      return attention!.map((a) => a.dataSync() as Float32Array);
    });
    expect(layers).toHaveLength(4);
    layers.forEach((layer, l) => expectClose(layer, reference[l]!, 1e-5));
    ensemble.dispose();
  });

  it('reads its input embeddings from rows it shares (the serving output table) and computes exactly what it computes with its own copy', () => {
    const configs = [{ ...base, dim: 16, heads: 2, blocks: 2, ffnDim: 16 }, { ...base, dim: 8, heads: 2, blocks: 2, ffnDim: 12, seed: 4, itemBias: true }];
    const ensemble = randomEnsemble(configs);
    const dir = mkdtempSync(join(tmpdir(), 'attnrec-engine-'));
    saveModel(ensemble, dir, { vocabulary: [] });
    const data = readArtifact(dir);
    // Members side by side as queries are (the second with a bias column), and spare columns of NaN: a misread row shows.
    const rows = base.numItems + 1;
    const { columns: at, width } = queryLayout(configs);
    const stride = 28;
    expect(width).toBeLessThan(stride);
    const table = new Float32Array(rows * stride).fill(Number.NaN);
    configs.forEach((c, k) => {
      const embedding = data.members[k]!.get('item_embedding')!.values;
      for (let r = 0; r < rows; r++) table.set(embedding.subarray(r * c.dim, (r + 1) * c.dim), r * stride + at[k]!);
    });
    const own = new InferenceEngine(data.configs, data.members);
    const shared = new InferenceEngine(data.configs, data.members, { itemRows: { table, stride } });
    const histories = randomHistories(configs[0]!, 150, 11);
    expect(Array.from(shared.queries(histories))).toEqual(Array.from(own.queries(histories)));
    const { query, layers } = shared.forward(histories[3]!);
    const reference = own.forward(histories[3]!);
    expect(Array.from(query)).toEqual(Array.from(reference.query));
    expect(layers.map((l) => Array.from(l))).toEqual(reference.layers.map((l) => Array.from(l)));
    expect(() => new InferenceEngine(data.configs, data.members, { itemRows: { table: table.subarray(0, 10 * stride), stride } })).toThrow(/item rows/);
    expect(() => new InferenceEngine(data.configs, data.members, { itemRows: { table, stride: 20 } })).toThrow(/item rows/);
    ensemble.dispose();
  });

  it('reads the last maxLength events of a longer history; refuses empty histories, unknown items, and weights that do not fit', () => {
    const config = { ...base, dim: 8, heads: 2, blocks: 1, ffnDim: 8 };
    const ensemble = randomEnsemble([config]);
    const engine = engineOf(ensemble);
    const [long] = randomHistories(config, 1, 4, [12]);
    const longer = { items: [5, 6, ...long!.items], types: [1, 2, ...long!.types] };
    expect(Array.from(engine.queries([longer]))).toEqual(Array.from(engine.queries([long!])));
    expect(() => engine.queries([{ items: [], types: [] }])).toThrow(RangeError);
    expect(() => engine.queries([{ items: [1, 2], types: [0] }])).toThrow(RangeError);
    expect(() => engine.queries([{ items: [41], types: [0] }])).toThrow(/outside 1..40/);
    const dir = mkdtempSync(join(tmpdir(), 'attnrec-engine-'));
    saveModel(ensemble, dir, {});
    const data = readArtifact(dir);
    expect(() => new InferenceEngine([{ ...config, dim: 16, ffnDim: 16 }], data.members)).toThrow(/item_embedding/);
    ensemble.dispose();
  });
});
