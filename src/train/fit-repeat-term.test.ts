import { beforeAll, describe, expect, it } from 'vitest';
import { leaveOneOutSplit } from '../data/leave-one-out-split.js';
import type { EncodedSequences } from '../data/encoded-sequences.js';
import { BUILTIN_EVENT_TYPES } from '../data/import/event-types.js';
import { evaluateModel } from '../evaluate/evaluate.js';
import { selectBackend } from '../model/backend.js';
import { MODEL_DEFAULTS } from '../model/config.js';
import { CooccurrenceBlend } from '../model/cooccurrence-blend.js';
import { SasRecEnsemble } from '../model/ensemble.js';
import { itemCooccurrence, strongestNeighbours } from '../model/item-cooccurrence.js';
import { SasRec } from '../model/sasrec.js';
import { Random } from '../random.js';
import { fitCooccurrenceBlend } from './fit-cooccurrence-blend.js';
import { fitRepeatTerm } from './fit-repeat-term.js';

const PURCHASE = BUILTIN_EVENT_TYPES.purchase!;
const VIEW = BUILTIN_EVENT_TYPES.view!;

/** Shoppers with 2-4 staples of their own (of 60 items) bought again and again in random order: most next items repeat one. */
function staples(users: number, seed: number, type = PURCHASE): EncodedSequences {
  const random = new Random(seed);
  const offsets = [0];
  const items: number[] = [];
  for (let u = 0; u < users; u++) {
    const own = Array.from({ length: 2 + random.int(3) }, () => 1 + random.int(60));
    const length = 6 + random.int(6);
    for (let k = 0; k < length; k++) items.push(own[random.int(own.length)]!);
    offsets.push(items.length);
  }
  return { offsets: Int32Array.from(offsets), items: Int32Array.from(items), types: new Uint8Array(items.length).fill(type) };
}

const config = { ...MODEL_DEFAULTS, numItems: 60, numEventTypes: 4, maxLength: 10, dim: 8, heads: 2, blocks: 1, ffnDim: 8, dropout: 0, seed: 5 };

describe('fitRepeatTerm', () => {
  beforeAll(async () => {
    await selectBackend('wasm');
  });

  it('raises the history\'s own items when shoppers buy again, scoring each weight exactly as the evaluation does', () => {
    const data = staples(300, 1);
    const split = leaveOneOutSplit(data.offsets);
    const network = new SasRecEnsemble([new SasRec(config)]); // random weights
    const neighbours = strongestNeighbours(itemCooccurrence(data, split, 60), 20);
    const cooccurrence = fitCooccurrenceBlend(network, neighbours, data, split, split.evaluated, undefined, 'none').params;
    const fit = fitRepeatTerm(network, neighbours, cooccurrence, data, split, split.evaluated, 'none')!;
    expect(fit.repeatWeight).toBeGreaterThan(0);
    expect(fit.validNdcg10).toBeGreaterThan(fit.withoutValidNdcg10 + 0.05);
    expect(fit.repeatTargets).toBeGreaterThan(split.evaluated.length / 2);
    const options = { phase: 'valid', sequences: split.evaluated, exclude: 'none' } as const;
    const served = new CooccurrenceBlend(neighbours, { ...cooccurrence, repeatWeight: fit.repeatWeight, repeatDecay: fit.repeatDecay });
    expect(fit.validNdcg10).toBeCloseTo(evaluateModel(network, data, split, options, served).full.ndcg[10]!, 10);
    const without = cooccurrence.weight > 0 ? new CooccurrenceBlend(neighbours, cooccurrence) : undefined;
    expect(fit.withoutValidNdcg10).toBeCloseTo(evaluateModel(network, data, split, options, without).full.ndcg[10]!, 10);
    network.dispose();
  });

  it('fits nothing where the policy leaves every history item out, and raises viewed items the shopper has not bought', () => {
    const network = new SasRecEnsemble([new SasRec(config)]);
    const bought = staples(200, 2);
    const boughtSplit = leaveOneOutSplit(bought.offsets);
    const neighbours = strongestNeighbours(itemCooccurrence(bought, boughtSplit, 60), 20);
    const params = { weight: 0, scale: 0, decay: 0 };
    expect(fitRepeatTerm(network, neighbours, params, bought, boughtSplit, boughtSplit.evaluated, 'purchased')).toBeUndefined();
    expect(fitRepeatTerm(network, neighbours, params, bought, boughtSplit, boughtSplit.evaluated, 'seen')).toBeUndefined();
    // Views only: `purchased` leaves them in, so the shopper's viewed items can be raised.
    const viewed = staples(200, 3, VIEW);
    const viewedSplit = leaveOneOutSplit(viewed.offsets);
    const fit = fitRepeatTerm(network, neighbours, params, viewed, viewedSplit, viewedSplit.evaluated, 'purchased')!;
    expect(fit.repeatWeight).toBeGreaterThan(0);
    expect(fit.validNdcg10).toBeCloseTo(evaluateModel(network, viewed, viewedSplit, { phase: 'valid', sequences: viewedSplit.evaluated }, new CooccurrenceBlend(neighbours, { ...params, repeatWeight: fit.repeatWeight, repeatDecay: fit.repeatDecay })).full.ndcg[10]!, 10);
    network.dispose();
  });

  it('keeps weight 0 when repeats never come', () => {
    // Every shopper walks through items in order, never twice: raising history items only hurts.
    const offsets = [0];
    const items: number[] = [];
    const random = new Random(4);
    for (let u = 0; u < 200; u++) {
      const start = 1 + random.int(50);
      for (let k = 0; k < 8; k++) items.push(((start + k) % 60) + 1);
      offsets.push(items.length);
    }
    const data: EncodedSequences = { offsets: Int32Array.from(offsets), items: Int32Array.from(items), types: new Uint8Array(items.length).fill(VIEW) };
    const split = leaveOneOutSplit(data.offsets);
    const network = new SasRecEnsemble([new SasRec(config)]);
    const neighbours = strongestNeighbours(itemCooccurrence(data, split, 60), 20);
    const fit = fitRepeatTerm(network, neighbours, { weight: 0, scale: 0, decay: 0 }, data, split, split.evaluated, 'none')!;
    expect(fit.repeatWeight).toBe(0);
    expect(fit.validNdcg10).toBe(fit.withoutValidNdcg10);
    network.dispose();
  });
});
