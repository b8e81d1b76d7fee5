import { beforeAll, describe, expect, it } from 'vitest';
import { leaveOneOutSplit } from '../data/leave-one-out-split.js';
import { evaluateModel } from '../evaluate/evaluate.js';
import { selectBackend } from '../model/backend.js';
import { MODEL_DEFAULTS } from '../model/config.js';
import { CooccurrenceBlend, type ItemNeighbours } from '../model/cooccurrence-blend.js';
import { SasRecEnsemble } from '../model/ensemble.js';
import { SasRec } from '../model/sasrec.js';
import { Random } from '../random.js';
import type { EncodedSequences } from '../data/encoded-sequences.js';
import { itemCooccurrence, strongestNeighbours } from '../model/item-cooccurrence.js';
import { fitCooccurrenceBlend } from './fit-cooccurrence-blend.js';

/** Shoppers who each buy within one of four groups of 10 items, in random order. */
function groups(users: number, seed: number): EncodedSequences {
  const random = new Random(seed);
  const offsets = [0];
  const items: number[] = [];
  for (let u = 0; u < users; u++) {
    const group = random.int(4);
    const length = 5 + random.int(5);
    for (let k = 0; k < length; k++) items.push(1 + group * 10 + random.int(10));
    offsets.push(items.length);
  }
  return { offsets: Int32Array.from(offsets), items: Int32Array.from(items), types: new Uint8Array(items.length).fill(1) };
}

const config = { ...MODEL_DEFAULTS, numItems: 40, numEventTypes: 3, maxLength: 10, dim: 8, heads: 2, blocks: 1, ffnDim: 8, dropout: 0, seed: 3 };

describe('fitCooccurrenceBlend', () => {
  beforeAll(async () => {
    await selectBackend('wasm');
  });

  it('finds a weight that helps an untrained network, and scores it exactly as the evaluation does', () => {
    const data = groups(300, 1);
    const split = leaveOneOutSplit(data.offsets);
    const network = new SasRecEnsemble([new SasRec(config)]); // random weights: its ranking is noise
    const neighbours = strongestNeighbours(itemCooccurrence(data, split, 40), 20);
    const fit = fitCooccurrenceBlend(network, neighbours, data, split, split.evaluated);
    expect(fit.params.weight).toBeGreaterThan(0);
    expect(fit.validNdcg10).toBeGreaterThan(fit.networkValidNdcg10 + 0.05);
    expect(fit.users).toBe(split.evaluated.length);
    // The fit's own ranking (one pass per combination) against evaluateModel with the chosen term.
    const blend = new CooccurrenceBlend(neighbours, fit.params);
    const evaluated = evaluateModel(network, data, split, { phase: 'valid', sequences: split.evaluated }, blend);
    expect(fit.validNdcg10).toBeCloseTo(evaluated.full.ndcg[10]!, 10);
    expect(fit.networkValidNdcg10).toBeCloseTo(evaluateModel(network, data, split, { phase: 'valid', sequences: split.evaluated }).full.ndcg[10]!, 10);
    // Under every exclusion policy (these views repeat within a group: 'seen' makes repeats misses).
    for (const exclude of ['seen', 'none'] as const) {
      const under = fitCooccurrenceBlend(network, neighbours, data, split, split.evaluated, undefined, exclude);
      const options = { phase: 'valid', sequences: split.evaluated, exclude } as const;
      expect(under.validNdcg10).toBeCloseTo(evaluateModel(network, data, split, options, new CooccurrenceBlend(neighbours, under.params)).full.ndcg[10]!, 10);
      expect(under.networkValidNdcg10).toBeCloseTo(evaluateModel(network, data, split, options).full.ndcg[10]!, 10);
    }
    expect(evaluateModel(network, data, split, { phase: 'valid', sequences: split.evaluated, exclude: 'seen' }).repeat!.users).toBeGreaterThan(0);
    network.dispose();
  });

  it('keeps the network alone (weight 0) when the term only raises wrong items', () => {
    const data = groups(300, 2);
    const split = leaveOneOutSplit(data.offsets);
    const network = new SasRecEnsemble([new SasRec(config)]);
    // Every item's "neighbours" are the next group's items: never bought together.
    const offsets = new Int32Array(42);
    const items: number[] = [];
    for (let i = 1; i <= 40; i++) {
      const next = (Math.floor((i - 1) / 10) + 1) % 4;
      for (let k = 1; k <= 10; k++) items.push(next * 10 + k);
      offsets[i + 1] = items.length;
    }
    const wrong: ItemNeighbours = { numItems: 40, offsets, items: Int32Array.from(items), weights: new Float32Array(items.length).fill(1) };
    const fit = fitCooccurrenceBlend(network, wrong, data, split, split.evaluated);
    expect(fit.params.weight).toBe(0);
    expect(fit.validNdcg10).toBe(fit.networkValidNdcg10);
    network.dispose();
  });
});
