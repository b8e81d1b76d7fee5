import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { saveModel } from '../model/artifact.js';
import { selectBackend } from '../model/backend.js';
import { SasRec } from '../model/sasrec.js';
import { ServedModel } from '../model/served-model.js';
import { explain } from './explain.js';
import { SasRecEnsemble } from '../model/ensemble.js';

const CONFIG = { numItems: 20, numEventTypes: 3, maxLength: 6, dim: 8, heads: 2, blocks: 2, ffnDim: 8, dropout: 0.3, itemBias: false, seed: 11 };

function servedModel(members = 1): ServedModel {
  const dir = mkdtempSync(join(tmpdir(), 'attnrec-explain-'));
  saveModel(members === 1 ? new SasRecEnsemble([new SasRec(CONFIG)]) : SasRecEnsemble.fresh(CONFIG, members), dir, { vocabulary: Array.from({ length: 20 }, (_, k) => 100 + k) });
  return ServedModel.load(1, new Date(), dir);
}

describe('explain', () => {
  beforeAll(async () => {
    await selectBackend('wasm');
  });

  it('returns causal attention rows that sum to 1 in every layer and head', () => {
    const model = servedModel();
    const events = [101, 105, 999, 103, 110].map((itemId, i) => ({ itemId, type: 1 + (i % 3), ts: i }));
    const result = explain(model, events, { k: 3 })!;
    expect(result.positions).toEqual([0, 1, 3, 4]);
    expect(result.ignored).toEqual({ unknownItems: 1, beyondWindow: 0 });
    const T = 4;
    expect(result.layers).toHaveLength(2);
    for (const layer of result.layers) {
      expect(layer.length).toBe(2 * T * T);
      for (let h = 0; h < 2; h++)
        for (let t = 0; t < T; t++) {
          let sum = 0;
          for (let s = 0; s < T; s++) {
            const w = layer[h * T * T + t * T + s]!;
            if (s > t) expect(w).toBe(0);
            else expect(w).toBeGreaterThan(0);
            sum += w;
          }
          expect(sum).toBeCloseTo(1, 5);
        }
    }
    expect(result.rollout.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6);
    expect(result.predictions).toHaveLength(3);
    expect(result.target.index).toBe(result.predictions[0]!.index);
    expect(result.target.probability).toBeCloseTo(result.predictions[0]!.probability, 10);
  });

  it('explains an ensemble: every member\'s layers in turn, the rollout the mean of the members\' rollouts, the scores the mean of their logits', () => {
    const ensemble = servedModel(2);
    const events = [101, 105, 103, 110].map((itemId) => ({ itemId, type: 1, ts: null }));
    const result = explain(ensemble, events, { k: 3 })!;
    expect(result).toMatchObject({ members: 2, blocks: 2, heads: 2 });
    expect(result.layers).toHaveLength(4);
    const T = 4;
    // Member 2 on its own (seed 12), its layers and rollout as a one-member model.
    const dir = mkdtempSync(join(tmpdir(), 'attnrec-explain-'));
    saveModel(new SasRecEnsemble([new SasRec({ ...CONFIG, seed: 12 })]), dir, { vocabulary: Array.from({ length: 20 }, (_, k) => 100 + k) });
    const second = explain(ServedModel.load(2, new Date(), dir), events, { k: 3 })!;
    const first = explain(servedModel(1), events, { k: 3 })!;
    [...first.layers, ...second.layers].forEach((layer, l) => Array.from(layer).forEach((w, i) => expect(result.layers[l]![i]).toBeCloseTo(w, 6)));
    for (let s = 0; s < T; s++) expect(result.rollout[s]).toBeCloseTo((first.rollout[s]! + second.rollout[s]!) / 2, 6);
    const logits = (m: ServedModel): Float32Array => m.scores(m.state(m.encode([101, 105, 103, 110], [1, 1, 1, 1]))).slice();
    const [both, one, two] = [logits(ensemble), logits(servedModel(1)), logits(ServedModel.load(3, new Date(), dir))];
    for (let i = 1; i <= 20; i++) expect(both[i]).toBeCloseTo((one[i]! + two[i]!) / 2, 5);
  });

  it('leave-one-out equals scoring each shortened history on its own', () => {
    const model = servedModel();
    const events = [101, 105, 103, 110, 102].map((itemId) => ({ itemId, type: 1, ts: null }));
    const result = explain(model, events, { k: 2, target: 7 })!;
    expect(result.target.index).toBe(7);
    const full = model.state(model.encode([101, 105, 103, 110, 102], [1, 1, 1, 1, 1]));
    const p = Math.exp(model.scores(full)[7]! - full.logNormaliser);
    expect(result.target.probability).toBeCloseTo(p, 6);
    const ids = [101, 105, 103, 110, 102];
    ids.forEach((_, drop) => {
      const rest = ids.filter((__, j) => j !== drop);
      const state = model.state(model.encode(rest, rest.map(() => 1)));
      const without = Math.exp(model.scores(state)[7]! - state.logNormaliser);
      expect(result.leaveOneOut[drop]!.without).toBeCloseTo(without, 6);
      expect(result.leaveOneOut[drop]!.drop).toBeCloseTo(p - without, 6);
    });
  });

  it('keeps only the model window and has no leave-one-out for a single event', () => {
    const model = servedModel();
    const long = Array.from({ length: 9 }, (_, i) => ({ itemId: 100 + i, type: 1, ts: i }));
    expect(explain(model, long, { k: 1 })!.positions).toEqual([3, 4, 5, 6, 7, 8]);
    expect(explain(model, long, { k: 1 })!.ignored.beyondWindow).toBe(3);
    expect(explain(model, [{ itemId: 104, type: 1, ts: 0 }], { k: 1 })!.leaveOneOut).toEqual([null]);
    expect(explain(model, [{ itemId: 5, type: 1, ts: 0 }], { k: 1 })).toBeNull();
  });
});
