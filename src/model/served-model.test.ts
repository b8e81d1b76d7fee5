import { mkdtempSync, rmSync } from 'node:fs';
import { MessageChannel } from 'node:worker_threads';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { saveModel } from './artifact.js';
import { selectBackend } from './backend.js';
import { SasRec } from './sasrec.js';
import { QUANTISED_MIN_ROWS, ServedModel, type SharedVersion } from './served-model.js';
import { SasRecEnsemble } from './ensemble.js';
import { CooccurrenceBlend } from './cooccurrence-blend.js';

describe('ServedModel', () => {
  beforeAll(async () => {
    await selectBackend('wasm');
  });

  it.each([false, true])('scores every item exactly as the network does (item bias %s), with a normaliser that makes probabilities sum to 1', (itemBias) => {
    const network = new SasRec({ numItems: 30, numEventTypes: 3, maxLength: 6, dim: 8, heads: 2, blocks: 2, ffnDim: 8, dropout: 0.2, itemBias, seed: 9 });
    if (itemBias) network.itemBias!.assign(tf.randomNormal([31, 1], 0, 1, 'float32', 4));
    const dir = mkdtempSync(join(tmpdir(), 'attnrec-served-'));
    const vocabulary = Array.from({ length: 30 }, (_, k) => 100 + k); // internal ids 100..129
    saveModel(new SasRecEnsemble([network]), dir, { vocabulary });
    const served = ServedModel.load(7, new Date(), dir);

    // Internal ids with an unknown one (999) and more events than maxLength: encode drops and trims.
    const encoded = served.encode([105, 999, 101, 102, 103, 104, 110, 111], [1, 1, 2, 3, 1, 1, 3, 9]);
    expect(encoded.items).toEqual([2, 3, 4, 5, 11, 12]);
    expect(encoded.types).toEqual([2, 3, 1, 1, 3, 0]); // type 9 is unknown to the model: padding

    const state = served.state(encoded);
    const expected = tf.tidy(() => {
      const { hidden } = network.forward(tf.tensor2d([[...encoded.items]], [1, 6], 'int32'), tf.tensor2d([[...encoded.types]], [1, 6], 'int32'));
      return network.scores(tf.reshape(tf.slice(hidden, [0, 5, 0], [1, 1, 8]), [1, 8]) as tf.Tensor2D).dataSync() as Float32Array;
    });
    const scores = served.scores(state);
    for (let i = 1; i <= 30; i++) expect(scores[i]).toBeCloseTo(expected[i]!, 4);
    let total = 0;
    for (let i = 1; i <= 30; i++) total += Math.exp(scores[i]! - state.logNormaliser);
    expect(total).toBeCloseTo(1, 5);

    // A batch of histories of different lengths gives each one's own state.
    const short = served.encode([120], [1]);
    const [a, b] = served.states([encoded, short]);
    expect(Array.from(a!.query)).toEqual(Array.from(state.query).map((x) => expect.closeTo(x, 5)));
    expect(Array.from(b!.query)).toEqual(Array.from(served.state(short).query).map((x) => expect.closeTo(x, 5)));
    served.retire();
  });

  it('adds the version\'s co-occurrence term to the network\'s scores, probabilities still summing to 1', () => {
    const network = new SasRec({ numItems: 30, numEventTypes: 3, maxLength: 6, dim: 8, heads: 2, blocks: 2, ffnDim: 8, dropout: 0, itemBias: false, seed: 4 });
    const dir = mkdtempSync(join(tmpdir(), 'attnrec-served-'));
    // Item k's neighbours: k + 1 and k + 2 (where they exist), cosines 0.5 and 0.25.
    const offsets = [0, 0];
    const items: number[] = [];
    const weights: number[] = [];
    for (let k = 1; k <= 30; k++) {
      for (const [step, w] of [[1, 0.5], [2, 0.25]] as const) {
        if (k + step <= 30) {
          items.push(k + step);
          weights.push(w);
        }
      }
      offsets.push(items.length);
    }
    const blend = new CooccurrenceBlend({ numItems: 30, offsets: Int32Array.from(offsets), items: Int32Array.from(items), weights: Float32Array.from(weights) }, { weight: 1.5, scale: 10, decay: 0.8 });
    saveModel(new SasRecEnsemble([network]), dir, { vocabulary: Array.from({ length: 30 }, (_, k) => k + 1) }, blend);
    const served = ServedModel.load(3, new Date(), dir);
    const history = served.encode([4, 9, 17], [1, 1, 3]);
    const state = served.state(history);
    const expected = tf.tidy(() => {
      const { hidden } = network.forward(tf.tensor2d([[...history.items]], [1, 3], 'int32'), tf.tensor2d([[...history.types]], [1, 3], 'int32'));
      return Array.from(network.scores(tf.reshape(tf.slice(hidden, [0, 2, 0], [1, 1, 8]), [1, 8]) as tf.Tensor2D).dataSync());
    });
    const term = blend.term(history.items);
    term.items.forEach((item, i) => (expected[item]! += term.values[i]!));
    const scores = Array.from(served.scores(state));
    for (let i = 1; i <= 30; i++) expect(scores[i]).toBeCloseTo(expected[i]!, 4);
    expect(term.values[Array.from(term.items).indexOf(18)]).toBeCloseTo(1.5 * Math.log1p(10 * 0.5), 5); // 18 is 17's neighbour; 17 is the newest event
    let total = 0;
    for (let i = 1; i <= 30; i++) total += Math.exp(scores[i]! - state.logNormaliser);
    expect(total).toBeCloseTo(1, 5);
    // Scored again (a cached state), the term is applied once, not twice.
    expect(Array.from(served.scores(state))).toEqual(scores);
    served.retire();
  });

  it('represents a batch of histories as it scores each alone: normaliser and shortlist after the history term (co-occurrence and repeat parts)', () => {
    const network = new SasRec({ numItems: 30, numEventTypes: 3, maxLength: 6, dim: 8, heads: 2, blocks: 2, ffnDim: 8, dropout: 0, itemBias: false, seed: 5 });
    const dir = mkdtempSync(join(tmpdir(), 'attnrec-served-'));
    const offsets = [0, ...Array.from({ length: 31 }, (_, k) => Math.min(k, 29))];
    const blend = new CooccurrenceBlend({ numItems: 30, offsets: Int32Array.from(offsets), items: Int32Array.from({ length: 29 }, (_, k) => k + 2), weights: new Float32Array(29).fill(0.5) }, { weight: 2, scale: 4, decay: 0.5, repeatWeight: 3, repeatDecay: 0.8 });
    saveModel(new SasRecEnsemble([network]), dir, { vocabulary: Array.from({ length: 30 }, (_, k) => k + 1) }, blend);
    const served = ServedModel.load(2, new Date(), dir);
    const histories = [served.encode([3, 9, 4, 9], [1, 2, 3, 1]), served.encode([30], [1]), served.encode([1, 2, 3, 4, 5, 6, 7], [1, 1, 1, 1, 1, 1, 3])];
    const represented = served.represent(histories, 5);
    histories.forEach((history, i) => {
      const state = served.state(history);
      const scores = Array.from(served.scores(state));
      const best = scores.map((x, j) => [x, j] as const).filter(([, j]) => j !== 0).sort((a, b) => b[0] - a[0] || a[1] - b[1]).slice(0, 5);
      const { state: batched, shortlist } = represented[i]!;
      expect(batched.logNormaliser).toBeCloseTo(state.logNormaliser, 4);
      expect(Array.from(shortlist.indices)).toEqual(best.map(([, j]) => j));
      Array.from(shortlist.scores).forEach((x, k) => expect(x).toBeCloseTo(best[k]![0], 4));
    });
    served.retire();
  });

  it('gives the same shortlists and scores through the 8-bit table as in float32, the normaliser within 1e-4', () => {
    const { numItems, dir } = savedQuantisableEnsemble((k) => k + 1);
    const exact = ServedModel.load(1, new Date(), dir, { scoring: 'exact' });
    const quantised = ServedModel.load(1, new Date(), dir);
    const histories = Array.from({ length: 9 }, (_, h) => exact.encode(Array.from({ length: 1 + (h % 8) }, (_, i) => 1 + ((h * 811 + i * 37) % numItems)), Array.from({ length: 1 + (h % 8) }, (_, i) => 1 + (i % 3))));
    expect([exact.scoring, quantised.scoring]).toEqual(['exact', 'quantised']);
    const want = exact.represent(histories);
    const got = quantised.represent(histories);
    got.forEach(({ state, shortlist }, h) => {
      expect(Array.from(shortlist.indices)).toEqual(Array.from(want[h]!.shortlist.indices));
      expect(Array.from(shortlist.scores)).toEqual(Array.from(want[h]!.shortlist.scores));
      expect(Math.abs(state.logNormaliser - want[h]!.state.logNormaliser)).toBeLessThan(1e-4);
    });
    exact.retire();
    quantised.retire();
  });

  it.each(['quantised', 'exact'] as const)('loads a version from another thread\'s shared parts (%s), reading no file, and answers bit for bit as one loaded from the files', async (scoring) => {
    const { numItems, dir } = savedQuantisableEnsemble((k) => 3 * k + 5);
    const pause = () => Promise.resolve();
    const fromFiles = await ServedModel.loadPausing(1, new Date(), dir, pause, { scoring });
    const { model: sharing, shared } = await ServedModel.loadSharing(1, new Date(), dir, pause, { scoring });
    // In shared memory: the tables, the weights and the co-occurrence term are not copied when posted to a worker.
    for (const array of [shared.output.table, shared.norms, shared.members[1]!.get('item_embedding')!.values, shared.blend!.neighbours.items]) expect(array.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(shared.output.quantised !== undefined).toBe(scoring === 'quantised');
    // Posted as the pool posts it (structured clone), then loaded with the artifact gone.
    const channel = new MessageChannel();
    const received = new Promise<SharedVersion>((resolve) => channel.port2.once('message', resolve));
    channel.port1.postMessage(shared);
    const posted = await received;
    channel.port1.close();
    rmSync(dir, { recursive: true });
    const fromShared = await ServedModel.loadPausing(2, new Date(), dir, pause, { scoring, from: posted });
    expect([fromShared.scoring, fromShared.members, fromShared.numItems]).toEqual([scoring, 2, numItems]);

    const raw = Array.from({ length: 9 }, (_, h) => ({ items: Array.from({ length: 1 + (h % 8) }, (_, i) => 3 * ((h * 811 + i * 37) % numItems) + 5), types: Array.from({ length: 1 + (h % 8) }, (_, i) => 1 + (i % 3)) }));
    const histories = raw.map((h) => fromFiles.encode(h.items, h.types));
    expect(raw.map((h) => fromShared.encode(h.items, h.types))).toEqual(histories);
    const [want, got, alsoSharing] = [fromFiles, fromShared, sharing].map((m) => m.represent(histories));
    for (const other of [got!, alsoSharing!]) {
      other.forEach(({ state, shortlist }, h) => {
        expect(Array.from(state.query)).toEqual(Array.from(want![h]!.state.query));
        expect(state.logNormaliser).toBe(want![h]!.state.logNormaliser);
        expect(Array.from(shortlist.indices)).toEqual(Array.from(want![h]!.shortlist.indices));
        expect(Array.from(shortlist.scores)).toEqual(Array.from(want![h]!.shortlist.scores));
      });
    }
    expect(Array.from(fromShared.scores(got![4]!.state))).toEqual(Array.from(fromFiles.scores(want![4]!.state)));
    expect(Array.from(fromShared.similarities(17))).toEqual(Array.from(fromFiles.similarities(17)));
    // Parts that do not fit the version are refused, not served.
    await expect(ServedModel.loadPausing(3, new Date(), dir, pause, { scoring, from: { ...posted, vocabulary: posted.vocabulary.subarray(1) } })).rejects.toMatchObject({ code: 'ARTIFACT_CORRUPT' });
    await expect(ServedModel.loadPausing(3, new Date(), dir, pause, { scoring, from: { ...posted, output: { ...posted.output, table: posted.output.table.subarray(8) } } })).rejects.toMatchObject({ code: 'ARTIFACT_CORRUPT' });
    for (const m of [fromFiles, sharing, fromShared]) m.retire();
  });

  it('gives cosine similarities, 1 for the item itself, 0 for padding', () => {
    const network = new SasRec({ numItems: 5, numEventTypes: 0, maxLength: 4, dim: 4, heads: 1, blocks: 1, ffnDim: 4, dropout: 0, itemBias: false, seed: 1 });
    network.itemEmbedding.assign(tf.tensor2d([[0, 0, 0, 0], [1, 0, 0, 0], [2, 0, 0, 0], [0, 3, 0, 0], [1, 1, 0, 0], [-1, 0, 0, 0]]));
    const dir = mkdtempSync(join(tmpdir(), 'attnrec-served-'));
    saveModel(new SasRecEnsemble([network]), dir, { vocabulary: [1, 2, 3, 4, 5] });
    const served = ServedModel.load(1, new Date(), dir);
    const sims = Array.from(served.similarities(1));
    expect(sims.map((x) => Number(x.toFixed(4)))).toEqual([0, 1, 1, 0, Number(Math.SQRT1_2.toFixed(4)), -1]);
    served.retire();
  });

  it("gives an ensemble's similarity as the mean of its members' cosines", () => {
    const config = { numItems: 3, numEventTypes: 0, maxLength: 4, dim: 2, heads: 1, blocks: 1, ffnDim: 2, dropout: 0, itemBias: false, seed: 1 };
    const [a, b] = [new SasRec(config), new SasRec({ ...config, seed: 2 })];
    a.itemEmbedding.assign(tf.tensor2d([[0, 0], [1, 0], [0, 2], [3, 3]])); // item 1 vs 2: cos 0, vs 3: cos 0.7071
    b.itemEmbedding.assign(tf.tensor2d([[0, 0], [1, 1], [2, 2], [-1, 0]])); // item 1 vs 2: cos 1, vs 3: cos -0.7071
    const dir = mkdtempSync(join(tmpdir(), 'attnrec-served-'));
    saveModel(new SasRecEnsemble([a, b]), dir, { vocabulary: [1, 2, 3] });
    const served = ServedModel.load(1, new Date(), dir);
    expect(served.members).toBe(2);
    expect(Array.from(served.similarities(1)).map((x) => Number(x.toFixed(4)))).toEqual([0, 1, 0.5, 0]);
    served.retire();
  });

  it('refuses an artifact without a usable vocabulary', () => {
    const network = new SasRec({ numItems: 5, numEventTypes: 0, maxLength: 4, dim: 4, heads: 1, blocks: 1, ffnDim: 4, dropout: 0, itemBias: false, seed: 1 });
    const dir = mkdtempSync(join(tmpdir(), 'attnrec-served-'));
    // Too short; then the right length with an id that is not an integer, not a number, or beyond 32 bits.
    for (const vocabulary of [[1, 2], [1, 2, 3.5, 4, 5], [1, 2, '3', 4, 5], [1, 2, 2 ** 31, 4, 5]]) {
      saveModel(new SasRecEnsemble([network]), dir, { vocabulary });
      expect(() => ServedModel.load(1, new Date(), dir)).toThrow(/no usable item vocabulary/);
    }
  });

  it('stays usable while a request holds it after retirement, and is freed after', () => {
    const network = new SasRec({ numItems: 5, numEventTypes: 0, maxLength: 4, dim: 4, heads: 1, blocks: 1, ffnDim: 4, dropout: 0, itemBias: false, seed: 1 });
    const dir = mkdtempSync(join(tmpdir(), 'attnrec-served-'));
    saveModel(new SasRecEnsemble([network]), dir, { vocabulary: [1, 2, 3, 4, 5] });
    const served = ServedModel.load(1, new Date(), dir);
    served.acquire();
    served.retire();
    expect(() => served.state(served.encode([1, 2], [0, 0]))).not.toThrow();
    served.release();
    expect(() => served.state(served.encode([1, 2], [0, 0]))).toThrow(/retired/);
  });
});

/**
 * A two-member ensemble with a co-occurrence term (repeat part included), large enough to score through the
 * 8-bit table (QUANTISED_MIN_ROWS + 900 items), saved with internal id `itemId(k)` for model index k + 1.
 */
function savedQuantisableEnsemble(itemId: (k: number) => number): { numItems: number; dir: string } {
  const numItems = QUANTISED_MIN_ROWS + 900;
  const config = { numItems, numEventTypes: 3, maxLength: 8, dim: 16, heads: 2, blocks: 1, ffnDim: 16, dropout: 0, itemBias: true };
  const dir = mkdtempSync(join(tmpdir(), 'attnrec-served-'));
  const offsets = Int32Array.from({ length: numItems + 2 }, (_, k) => Math.min(k, numItems - 1));
  const blend = new CooccurrenceBlend({ numItems, offsets, items: Int32Array.from({ length: numItems - 1 }, (_, k) => k + 2), weights: new Float32Array(numItems - 1).fill(0.5) }, { weight: 2, scale: 4, decay: 0.5, repeatWeight: 1, repeatDecay: 0.9 });
  saveModel(new SasRecEnsemble([new SasRec({ ...config, seed: 8 }), new SasRec({ ...config, seed: 9 })]), dir, { vocabulary: Array.from({ length: numItems }, (_, k) => itemId(k)) }, blend);
  return { numItems, dir };
}
