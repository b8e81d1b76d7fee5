import { beforeAll, describe, expect, it } from 'vitest';
import { leaveOneOutSplit } from '../data/leave-one-out-split.js';
import { selectBackend } from '../model/backend.js';
import { MODEL_DEFAULTS } from '../model/config.js';
import { CooccurrenceBlend } from '../model/cooccurrence-blend.js';
import { SasRecEnsemble } from '../model/ensemble.js';
import { SasRec } from '../model/sasrec.js';
import { Random } from '../random.js';
import { itemCooccurrence, strongestNeighbours } from '../model/item-cooccurrence.js';
import { evaluateModel, evaluateModelAndNetwork } from './evaluate.js';

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
