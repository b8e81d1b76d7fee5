import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { evaluationSplits, leaveOneOutSplit } from '../data/leave-one-out-split.js';
import { evaluateModel } from '../evaluate/evaluate.js';
import { selectBackend } from '../model/backend.js';
import { MODEL_DEFAULTS } from '../model/config.js';
import { SasRec } from '../model/sasrec.js';
import { Random } from '../random.js';
import type { EncodedSequences } from '../data/encoded-sequences.js';
import { trainingBatch } from './batches.js';
import { microBatches, targetTypeWeight, Trainer, windowTargets, type TrainingOptions } from './trainer.js';
import { SasRecEnsemble } from '../model/ensemble.js';

/** Histories where the next item is a function of the last one: item k is followed by k mod n + 1. */
function cycles(users: number, items: number, seed: number): EncodedSequences {
  const random = new Random(seed);
  const offsets = [0];
  const sequence: number[] = [];
  for (let u = 0; u < users; u++) {
    let item = 1 + random.int(items);
    const length = 8 + random.int(8);
    for (let k = 0; k < length; k++) {
      sequence.push(item);
      item = (item % items) + 1;
    }
    offsets.push(sequence.length);
  }
  return { offsets: Int32Array.from(offsets), items: Int32Array.from(sequence), types: new Uint8Array(sequence.length).fill(1) };
}

/** Item k is followed by a view of k mod n + 1 (70 %) or a purchase of (k + 7) mod n + 1 (30 %). */
function viewsAndPurchases(users: number, seed: number): EncodedSequences {
  const random = new Random(seed);
  const offsets = [0];
  const items: number[] = [];
  const types: number[] = [];
  for (let u = 0; u < users; u++) {
    let item = 1 + random.int(NUM_ITEMS);
    let type = 1;
    const length = 10 + random.int(8);
    for (let k = 0; k < length; k++) {
      items.push(item);
      types.push(type);
      const purchase = random.next() < 0.3;
      item = ((item + (purchase ? 7 : 0)) % NUM_ITEMS) + 1;
      type = purchase ? 3 : 1;
    }
    offsets.push(items.length);
  }
  return { offsets: Int32Array.from(offsets), items: Int32Array.from(items), types: Uint8Array.from(types) };
}

const NUM_ITEMS = 15;
const modelConfig = { ...MODEL_DEFAULTS, numItems: NUM_ITEMS, numEventTypes: 3, maxLength: 10, dim: 32, heads: 2, blocks: 2, ffnDim: 32, dropout: 0.1, seed: 1 };
const base: TrainingOptions = { loss: 'full', negatives: 8, negativeAlpha: 0, learningRate: 0.01, batchSize: 32, seed: 1 };

describe('Trainer', () => {
  beforeAll(async () => {
    await selectBackend('wasm');
  });

  for (const loss of ['full', 'sampled', 'gbce', 'bce'] as const) {
    it(`learns a deterministic next-item rule to test HR@1 > 0.9 (${loss} loss)`, () => {
      const data = cycles(256, NUM_ITEMS, 7);
      const split = leaveOneOutSplit(data.offsets);
      const model = new SasRec(modelConfig);
      const trainer = new Trainer(model, data, split, { ...base, loss });
      const before = evaluateModel(new SasRecEnsemble([model]), data, split, { phase: 'test', exclude: 'none' });
      const losses: number[] = [];
      for (let epoch = 0; epoch < 12; epoch++) losses.push(trainer.trainEpoch().loss);
      const after = evaluateModel(new SasRecEnsemble([model]), data, split, { phase: 'test', exclude: 'none' });
      expect(before.full.hr[1]).toBeLessThan(0.3);
      expect(after.full.hr[1]).toBeGreaterThan(0.9);
      expect(losses[losses.length - 1]).toBeLessThan(losses[0]! / 2);
      trainer.dispose();
      model.dispose();
    });
  }

  it('learns the rule with an item bias on the output too (sampled softmax)', () => {
    const data = cycles(256, NUM_ITEMS, 7);
    const split = leaveOneOutSplit(data.offsets);
    const model = new SasRec({ ...modelConfig, itemBias: true });
    const trainer = new Trainer(model, data, split, { ...base, loss: 'sampled' });
    for (let epoch = 0; epoch < 12; epoch++) trainer.trainEpoch();
    expect(evaluateModel(new SasRecEnsemble([model]), data, split, { phase: 'test', exclude: 'none' }).full.hr[1]).toBeGreaterThan(0.9);
    expect(Array.from(model.itemBias!.dataSync()).some((b) => b !== 0)).toBe(true); // it was trained
    trainer.dispose();
    model.dispose();
  });

  it('learns the rule with 10 % of input items replaced at random, which changes what it trains on', () => {
    const data = cycles(256, NUM_ITEMS, 7);
    const split = leaveOneOutSplit(data.offsets);
    const trained = (itemReplacement: number, epochs: number): SasRec => {
      const model = new SasRec(modelConfig);
      const trainer = new Trainer(model, data, split, { ...base, loss: 'sampled', itemReplacement });
      for (let epoch = 0; epoch < epochs; epoch++) trainer.trainEpoch();
      trainer.dispose();
      return model;
    };
    const plain = trained(0, 1);
    const replaced = trained(0.1, 12);
    expect(evaluateModel(new SasRecEnsemble([replaced]), data, split, { phase: 'test', exclude: 'none' }).full.hr[1]).toBeGreaterThan(0.9);
    const once = trained(0.1, 1);
    // Same seed, same batches: only the replaced inputs differ.
    expect(Array.from(once.itemEmbedding.dataSync())).not.toEqual(Array.from(plain.itemEmbedding.dataSync()));
    for (const m of [plain, replaced, once]) m.dispose();
  });

  it('replaces input items on its own copy: the batch it is given stays as it was', () => {
    const data = cycles(64, NUM_ITEMS, 3);
    const split = leaveOneOutSplit(data.offsets);
    const model = new SasRec(modelConfig);
    const trainer = new Trainer(model, data, split, { ...base, loss: 'sampled', itemReplacement: 0.5 });
    const batch = trainingBatch(data, split, Int32Array.from({ length: 32 }, (_, s) => s), modelConfig.maxLength);
    const before = Array.from(batch.items);
    for (let k = 0; k < 3; k++) trainer.step(batch);
    expect(Array.from(batch.items)).toEqual(before);
    trainer.dispose();
    model.dispose();
  });

  it('splits a batch into near-equal row ranges of at most maxPositions positions, one row at least', () => {
    const batch = (batchSize: number, length: number) => ({ batchSize, length, items: new Int32Array(0), types: new Int32Array(0), targets: new Int32Array(0) });
    expect(microBatches(batch(128, 25), 3200)).toEqual([[0, 128]]);
    expect(microBatches(batch(128, 50), 3200)).toEqual([[0, 64], [64, 128]]);
    expect(microBatches(batch(128, 30), 3200)).toEqual([[0, 64], [64, 128]]); // 106 rows fit: two parts of 64, not 106 + 22
    expect(microBatches(batch(10, 50), 20)).toEqual(Array.from({ length: 10 }, (_, k) => [k, k + 1]));
  });

  it('builds each position\'s target window from the later targets of its own row only', () => {
    // Two rows of length 4: row 0 has targets at columns 1..3 (left padding at column 0), row 1 at all four.
    const batch = { batchSize: 2, length: 4, items: new Int32Array(8), types: new Int32Array(8), targets: Int32Array.from([0, 5, 6, 7, /**/ 1, 2, 3, 4]) };
    const { width, targets, weights } = windowTargets(batch, [1, 2, 3, 4, 5, 6, 7], 3, 0.5);
    expect(width).toBe(3);
    expect(Array.from(targets)).toEqual([5, 6, 7, /**/ 6, 7, 0, /**/ 7, 0, 0, /**/ 1, 2, 3, /**/ 2, 3, 4, /**/ 3, 4, 0, /**/ 4, 0, 0]);
    expect(Array.from(weights)).toEqual([1, 0.5, 0.25, /**/ 1, 0.5, 0, /**/ 1, 0, 0, /**/ 1, 0.5, 0.25, /**/ 1, 0.5, 0.25, /**/ 1, 0.5, 0, /**/ 1, 0, 0]);
  });

  it('learns the rule with a target window (sampled loss), and the window changes the step', () => {
    const data = cycles(256, NUM_ITEMS, 7);
    const split = leaveOneOutSplit(data.offsets);
    const model = new SasRec(modelConfig);
    const trainer = new Trainer(model, data, split, { ...base, loss: 'sampled', targetWindow: { size: 3, decay: 0.3 } });
    for (let epoch = 0; epoch < 12; epoch++) trainer.trainEpoch();
    expect(evaluateModel(new SasRecEnsemble([model]), data, split, { phase: 'test', exclude: 'none' }).full.hr[1]).toBeGreaterThan(0.9);
    trainer.dispose();
    model.dispose();
    const batch = trainingBatch(data, split, Int32Array.from({ length: 32 }, (_, s) => s), modelConfig.maxLength);
    const firstLoss = (targetWindow?: { size: number; decay: number }): number => {
      const m = new SasRec({ ...modelConfig, dropout: 0 });
      const t = new Trainer(m, data, split, { ...base, loss: 'sampled', ...(targetWindow && { targetWindow }) });
      const loss = t.step(batch);
      t.dispose();
      m.dispose();
      return loss;
    };
    // Decay 0 weighs only the next event: the plain loss. A real window adds the later events' terms.
    expect(firstLoss({ size: 3, decay: 0 })).toBeCloseTo(firstLoss(), 5);
    expect(Math.abs(firstLoss({ size: 3, decay: 0.5 }) - firstLoss())).toBeGreaterThan(1e-3);
  });

  it('weighs each window target by its event type; a zero-weight slot is empty and the later ones still count', () => {
    const batch = { batchSize: 1, length: 4, items: new Int32Array(4), types: new Int32Array(4), targets: Int32Array.from([5, 6, 7, 8]), targetTypes: Int32Array.from([1, 3, 2, 1]) };
    const weightOf = targetTypeWeight([0, 0, 2, 3]); // view 0, cart 2, purchase 3
    expect([1, 2, 3, 4].map(weightOf)).toEqual([0, 2, 3, 1]); // a type past the list weighs 1
    const { targets, weights } = windowTargets(batch, [1], 3, 0.5, weightOf);
    expect(Array.from(targets)).toEqual([6, 7, 0]);
    expect(Array.from(weights)).toEqual([3, 0.5 * 2, 0]);
    expect(Array.from(windowTargets(batch, [0], 3, 0.5, weightOf).targets)).toEqual([0, 6, 7]);
  });

  // Item k is followed by a view of k + 1 (70 %) or a purchase of k + 8 (30 %): trained on every event,
  // the model ranks the view first; trained towards purchases it must rank the purchase first.
  // Weighted 4 : 1 the purchase's share of the loss is 1.2 against the view's 0.7, so it should come first for most users.
  for (const [name, loss, targetWeights, atLeast] of [
    ['only positions followed by a purchase (full loss)', 'full', [0, 0, 0, 1], 0.8],
    ['purchases weighted 4, views 1 (sampled loss)', 'sampled', [0, 1, 1, 4], 0.5],
  ] as const) {
    it(`learns the next purchase rather than the next view with target weights: ${name}`, () => {
      const data = viewsAndPurchases(384, 9);
      const splits = evaluationSplits(data.offsets, data.types, 'purchase');
      const trained = (weights?: readonly number[]): number => {
        const model = new SasRec(modelConfig);
        const trainer = new Trainer(model, data, splits.primary, { ...base, loss, ...(weights && { targetWeights: weights }) });
        for (let epoch = 0; epoch < 10; epoch++) trainer.trainEpoch();
        const hr1 = evaluateModel(new SasRecEnsemble([model]), data, splits.purchase!, { phase: 'test', exclude: 'none' }).full.hr[1]!;
        trainer.dispose();
        model.dispose();
        return hr1;
      };
      expect(splits.purchase!.evaluated.length).toBeGreaterThan(200);
      expect(trained()).toBeLessThan(0.3);
      expect(trained(targetWeights)).toBeGreaterThan(atLeast);
    });
  }

  it('refuses target weights it cannot honour', () => {
    const data = cycles(16, NUM_ITEMS, 7);
    const model = new SasRec(modelConfig);
    const split = leaveOneOutSplit(data.offsets);
    expect(() => new Trainer(model, data, split, { ...base, loss: 'bce', targetWeights: [0, 1, 1, 2] })).toThrow(/sampled loss/);
    expect(() => new Trainer(model, data, split, { ...base, loss: 'sampled', targetWeights: [0, -1, 1, 1] })).toThrow(/at least 0/);
    expect(() => new Trainer(model, data, split, { ...base, loss: 'bce', targetWeights: [0, 0, 1, 1] })).not.toThrow();
    model.dispose();
  });

  it('refuses a target window with a loss other than the sampled softmax', () => {
    const data = cycles(16, NUM_ITEMS, 7);
    const model = new SasRec(modelConfig);
    expect(() => new Trainer(model, data, leaveOneOutSplit(data.offsets), { ...base, loss: 'bce', targetWindow: { size: 2, decay: 0.5 } })).toThrow(/sampled loss/);
    model.dispose();
  });

  for (const [loss, targetWindow] of [['full', undefined], ['sampled', undefined], ['sampled', { size: 3, decay: 0.5 }], ['gbce', undefined]] as const) {
    it(`takes the same step when a batch runs as micro-batches: gradients add up to the whole batch's (${loss} loss${targetWindow ? ', target window' : ''})`, () => {
      const data = cycles(64, NUM_ITEMS, 4);
      const split = leaveOneOutSplit(data.offsets);
      const batch = trainingBatch(data, split, Int32Array.from({ length: 32 }, (_, s) => s), modelConfig.maxLength);
      const stepped = (maxStepPositions: number): { loss: number; weights: Float32Array[] } => {
        const model = new SasRec({ ...modelConfig, dropout: 0 });
        const trainer = new Trainer(model, data, split, { ...base, loss, maxStepPositions, ...(targetWindow && { targetWindow }) });
        const first = trainer.step(batch);
        trainer.step(batch); // a second step: Adam's moments carry the accumulated gradient too
        const weights = model.variables.map((v) => v.dataSync() as Float32Array);
        trainer.dispose();
        model.dispose();
        return { loss: first, weights };
      };
      const whole = stepped(1_000_000);
      const split4 = stepped(batch.length * 9); // 4 micro-batches of 8 rows
      const fresh = new SasRec({ ...modelConfig, dropout: 0 });
      const untouched = fresh.variables.map((v) => v.dataSync() as Float32Array);
      fresh.dispose();
      expect(split4.loss).toBeCloseTo(whole.loss, 4);
      let largest = 0;
      let moved = 0;
      whole.weights.forEach((w, i) => w.forEach((x, j) => {
        largest = Math.max(largest, Math.abs(x - split4.weights[i]![j]!));
        moved = Math.max(moved, Math.abs(x - untouched[i]![j]!));
      }));
      expect(moved).toBeGreaterThan(0.01); // two steps of lr 0.01 moved the weights…
      // …and both ways moved them alike (Adam divides by the gradient's magnitude, so float rounding in
      // near-zero gradients shows up as ~1e-4; a lost or double-counted micro-batch moves weights ~1e-2).
      expect(largest).toBeLessThan(1e-3);
    });
  }

  it('decays the learning rate linearly over the given epochs; a rate of 0 leaves the weights as they are', () => {
    const data = cycles(40, NUM_ITEMS, 5);
    const model = new SasRec({ ...modelConfig, dropout: 0 });
    const trainer = new Trainer(model, data, leaveOneOutSplit(data.offsets), { ...base, learningRate: 0.01, learningRateDecay: { finalFactor: 0, epochs: 3 } });
    expect([1, 2, 3, 4].map((e) => trainer.learningRateAt(e))).toEqual([0.01, 0.005, 0, 0]);
    trainer.trainEpoch();
    const afterFirst = Array.from(model.itemEmbedding.dataSync());
    trainer.trainEpoch();
    const afterSecond = Array.from(model.itemEmbedding.dataSync());
    expect(afterSecond).not.toEqual(afterFirst); // epoch 2 still learns, at half the rate
    trainer.trainEpoch(); // epoch 3: rate 0
    expect(Array.from(model.itemEmbedding.dataSync())).toEqual(afterSecond);
    const constant = new Trainer(model, data, leaveOneOutSplit(data.offsets), base);
    expect(constant.learningRateAt(7)).toBe(base.learningRate);
    for (const t of [trainer, constant, model]) t.dispose();
  });

  it('reports the epoch start (step 0) and then every step', () => {
    const data = cycles(40, NUM_ITEMS, 5);
    const model = new SasRec(modelConfig);
    const trainer = new Trainer(model, data, leaveOneOutSplit(data.offsets), { ...base, batchSize: 16 });
    const calls: [number, number][] = [];
    trainer.trainEpoch((done, total) => calls.push([done, total]));
    expect(calls).toEqual([[0, 3], [1, 3], [2, 3], [3, 3]]);
    trainer.dispose();
    model.dispose();
  });

  it('is reproducible: same seed, same data, same backend → same losses and metrics', () => {
    const data = cycles(64, NUM_ITEMS, 3);
    const split = leaveOneOutSplit(data.offsets);
    const run = (): { losses: number[]; ndcg: number } => {
      const model = new SasRec(modelConfig);
      const trainer = new Trainer(model, data, split, { ...base, loss: 'sampled' });
      const losses = [trainer.trainEpoch().loss, trainer.trainEpoch().loss];
      const ndcg = evaluateModel(new SasRecEnsemble([model]), data, split, { phase: 'valid', exclude: 'none' }).full.ndcg[10]!;
      trainer.dispose();
      model.dispose();
      return { losses, ndcg };
    };
    expect(run()).toEqual(run());
  });

  it('saves and restores its state: a restored trainer continues exactly like the original', async () => {
    const data = cycles(64, NUM_ITEMS, 9);
    const split = leaveOneOutSplit(data.offsets);
    const model = new SasRec(modelConfig);
    const trainer = new Trainer(model, data, split, { ...base, loss: 'sampled' });
    trainer.trainEpoch();
    const saved = await trainer.saveState();
    const tensors = new Map(saved.tensors.map(([name, t]) => [name, { shape: [...t.shape], values: t.dataSync() as Float32Array }]));
    const weights = model.variables.map((v) => v.dataSync().slice());
    const continued = trainer.trainEpoch().loss;

    const copy = new SasRec(modelConfig);
    copy.variables.forEach((v, i) => v.assign(tf.tensor(weights[i]!, v.shape)));
    const restored = new Trainer(copy, data, split, { ...base, loss: 'sampled' });
    await restored.restoreState(saved.state, tensors);
    expect(restored.epochsDone).toBe(1);
    const report = restored.trainEpoch();
    expect(report.epoch).toBe(2);
    expect(report.loss).toBe(continued);
    expect(Array.from(copy.itemEmbedding.dataSync())).toEqual(Array.from(model.itemEmbedding.dataSync()));
    for (const t of [trainer, restored, model, copy]) t.dispose();
  });
});
