import { beforeAll, describe, expect, it } from 'vitest';
import { leaveOneOutSplit } from '../data/leave-one-out-split.js';
import { selectBackend } from '../model/backend.js';
import { MODEL_DEFAULTS } from '../model/config.js';
import { CooccurrenceBlend } from '../model/cooccurrence-blend.js';
import { SasRecEnsemble } from '../model/ensemble.js';
import { SasRec } from '../model/sasrec.js';
import { Random } from '../random.js';
import { itemCooccurrence, strongestNeighbours } from '../model/item-cooccurrence.js';
import { evaluateModel, evaluateModelAndNetwork, evaluateScorer, type BatchScorer } from './evaluate.js';
import { DEFAULT_EXCLUDE, type ExcludePolicy } from '../data/exclusion.js';

describe('evaluateModelAndNetwork', () => {
  beforeAll(async () => {
    await selectBackend('wasm');
  });

  it('gives, from one pass, the metrics of evaluateModel with the term and without it, groups and sampled negatives included', () => {
    // 200 shoppers, each walking forward through 30 items from a random start, 4 to 12 events.
    const random = new Random(7);
    const offsets = [0];
    const items: number[] = [];
    for (let u = 0; u < 200; u++) {
      let item = random.int(30);
      for (let k = 4 + random.int(9); k > 0; k--) items.push(1 + (item++ % 30));
      offsets.push(items.length);
    }
    const data = { offsets: Int32Array.from(offsets), items: Int32Array.from(items), types: new Uint8Array(items.length).fill(1) };
    const split = leaveOneOutSplit(data.offsets);
    const network = new SasRecEnsemble([new SasRec({ ...MODEL_DEFAULTS, numItems: 30, numEventTypes: 3, maxLength: 6, dim: 8, heads: 2, blocks: 1, ffnDim: 8, dropout: 0, seed: 5 })]);
    const blend = new CooccurrenceBlend(strongestNeighbours(itemCooccurrence(data, split, 30), 5), { weight: 2, scale: 1, decay: 0.8 });
    const options = { phase: 'test', sampled: { count: 10, seed: 3 }, batchSize: 64, groups: { count: 3, of: (target: number) => target % 3 } } as const;
    const both = evaluateModelAndNetwork(network, data, split, options, blend);
    const served = evaluateModel(network, data, split, options, blend);
    expect(both.model).toEqual(served);
    expect(both.network).toEqual(evaluateModel(network, data, split, options));
    expect(served.full.ndcg[10]).not.toBe(both.network.full.ndcg[10]); // the term changed the ranking: two different evaluations
    expect(served.groups).toHaveLength(3);
    network.dispose();
  });
});

describe('the exclusion policy and the novel/repeat split', () => {
  // Four users; the test target (last event) is item 1 each time. Types: 1 view, 3 purchase.
  // u0: viewed 1 before (repeat, viewed); u1: bought 1 before (repeat, purchased); u2, u3: never touched 1 (novel).
  const sequences: [number, number][][] = [
    [[1, 1], [2, 1], [3, 1], [1, 3]],
    [[1, 3], [2, 1], [3, 1], [1, 3]],
    [[4, 1], [2, 1], [3, 1], [1, 3]],
    [[5, 3], [2, 1], [3, 1], [1, 3]],
  ];
  const offsets = [0];
  for (const s of sequences) offsets.push(offsets[offsets.length - 1]! + s.length);
  const data = { offsets: Int32Array.from(offsets), items: Int32Array.from(sequences.flat().map(([item]) => item)), types: Uint8Array.from(sequences.flat().map(([, type]) => type)) };
  const split = leaveOneOutSplit(data.offsets);
  // Scores fall with the item number, so item 1 is best, and the history's items (2, 3, …) outrank nothing above it.
  const scorer: BatchScorer = (batch) => {
    const out = new Float32Array(batch.length * 6);
    for (let row = 0; row < batch.length; row++) for (let item = 1; item <= 5; item++) out[row * 6 + item] = 10 - item;
    return out;
  };

  it('counts a held-out item the policy would never show as a miss, and splits novel from repeat targets', () => {
    const hits = (exclude: ExcludePolicy) => evaluateScorer(scorer, 5, data, split, { phase: 'test', exclude });
    // purchased: u1's item 1 was bought before, so it is a miss; u0 only viewed it: shown and first.
    const purchased = hits('purchased');
    expect(purchased.full.hr[1]).toBe(3 / 4);
    expect([purchased.novel!.users, purchased.repeat!.users]).toEqual([2, 2]);
    expect([purchased.novel!.hr[1], purchased.repeat!.hr[1]]).toEqual([1, 1 / 2]);
    // seen: both repeats are misses; none: every target is ranked first.
    expect(hits('seen').full.hr[1]).toBe(1 / 2);
    expect(hits('seen').repeat!.hr[20]).toBe(0);
    expect(hits('none').full.hr[1]).toBe(1);
    // The default is the API's.
    expect(evaluateScorer(scorer, 5, data, split, { phase: 'test' })).toEqual(purchased);
    expect(DEFAULT_EXCLUDE).toBe('purchased');
  });
});
