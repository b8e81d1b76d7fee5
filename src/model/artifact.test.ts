import { mkdtempSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadModel, saveModel } from './artifact.js';
import { selectBackend } from './backend.js';
import { MODEL_DEFAULTS } from './config.js';
import { SasRec } from './sasrec.js';
import { SasRecEnsemble } from './ensemble.js';
import { CooccurrenceBlend } from './cooccurrence-blend.js';

const config = { ...MODEL_DEFAULTS, numItems: 12, numEventTypes: 3, maxLength: 6, dim: 8, heads: 2, blocks: 2, ffnDim: 8, dropout: 0.1, seed: 5 };
const history = [[0, 0, 3, 1, 7, 2]];

function lastState(model: SasRec): number[] {
  return tf.tidy(() => Array.from(model.forward(tf.tensor2d(history, undefined, 'int32'), tf.tensor2d([[0, 0, 1, 1, 2, 3]], undefined, 'int32')).hidden.dataSync()));
}

describe('model artifacts', () => {
  beforeAll(async () => {
    await selectBackend('wasm');
  });

  it('round-trips weights, config and extra data exactly', () => {
    const dir = mkdtempSync(join(tmpdir(), 'attnrec-artifact-'));
    const original = new SasRec(config);
    // Make the weights differ from a fresh init with the same seed, so loading must really read them.
    original.itemEmbedding.assign(tf.mul(original.itemEmbedding, 3));
    saveModel(new SasRecEnsemble([original]), dir, { vocabulary: [10, 11, 12] });
    const { model, extra } = loadModel(dir);
    expect(model.config).toEqual(original.config);
    expect(extra).toEqual({ vocabulary: [10, 11, 12] });
    expect(lastState(model.members[0]!)).toEqual(lastState(original));
    const json = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8'));
    expect(json.weightsManifest[0].weights.map((w: { name: string }) => w.name)).toContain('members/0/blocks/1/wq');
  });

  it('round-trips a model with an item bias, and the bias moves the scores', () => {
    const dir = mkdtempSync(join(tmpdir(), 'attnrec-artifact-'));
    const original = new SasRec({ ...config, itemBias: true });
    original.itemBias!.assign(tf.tensor2d(Array.from({ length: 13 }, (_, i) => [i / 10]), [13, 1]));
    saveModel(new SasRecEnsemble([original]), dir);
    const { model } = loadModel(dir);
    expect(model.config.itemBias).toBe(true);
    expect(Array.from(model.members[0]!.itemBias!.dataSync())).toEqual(Array.from(original.itemBias!.dataSync()));
    const state = tf.tensor2d([new Array(8).fill(0)]);
    // With a zero state, the scores are the bias itself (column 0 stays masked).
    expect(Array.from(model.members[0]!.scores(state).dataSync()).slice(1)).toEqual(Array.from({ length: 12 }, (_, i) => Math.fround((i + 1) / 10)));
  });

  it('refuses truncated weights, a foreign format and mismatched shapes with ARTIFACT_CORRUPT', () => {
    const make = (): string => {
      const dir = mkdtempSync(join(tmpdir(), 'attnrec-artifact-'));
      saveModel(new SasRecEnsemble([new SasRec(config)]), dir);
      return dir;
    };
    const truncated = make();
    truncateSync(join(truncated, 'weights.bin'), 100);
    expect(() => loadModel(truncated)).toThrow(expect.objectContaining({ code: 'ARTIFACT_CORRUPT', message: expect.stringContaining('weights.bin has 100 bytes') }));

    const foreign = make();
    const json = JSON.parse(readFileSync(join(foreign, 'model.json'), 'utf8'));
    writeFileSync(join(foreign, 'model.json'), JSON.stringify({ ...json, format: 'something-else' }));
    expect(() => loadModel(foreign)).toThrow(expect.objectContaining({ code: 'ARTIFACT_CORRUPT' }));

    const reshaped = make();
    writeFileSync(join(reshaped, 'model.json'), JSON.stringify({ ...json, members: [{ ...json.members[0], dim: 4, ffnDim: 4 }] }));
    expect(() => loadModel(reshaped)).toThrow(expect.objectContaining({ code: 'ARTIFACT_CORRUPT' }));

    expect(() => loadModel(join(tmpdir(), 'attnrec-no-such-model'))).toThrow(expect.objectContaining({ code: 'ARTIFACT_CORRUPT' }));
  });

  it('round-trips an ensemble: every member with its own seed and weights, averaged in the scores', () => {
    const dir = mkdtempSync(join(tmpdir(), 'attnrec-artifact-'));
    const original = SasRecEnsemble.fresh(config, 2);
    expect(original.members.map((m) => m.config.seed)).toEqual([5, 6]);
    saveModel(original, dir, { vocabulary: [1] });
    const { model } = loadModel(dir);
    expect(model.size).toBe(2);
    model.members.forEach((m, k) => expect(lastState(m)).toEqual(lastState(original.members[k]!)));
    // The ensemble's logits are the mean of its members' logits.
    const items = tf.tensor2d(history, undefined, 'int32');
    const perMember = model.members.map((m) => tf.tidy(() => Array.from(m.scores(tf.reshape(tf.slice(m.forward(items, undefined).hidden, [0, 5, 0], [1, 1, 8]), [1, 8]) as tf.Tensor2D).dataSync())));
    const joint = tf.tidy(() => Array.from(model.scores(model.lastQueries(items, undefined).queries).dataSync()));
    joint.slice(1).forEach((v, i) => expect(v).toBeCloseTo((perMember[0]![i + 1]! + perMember[1]![i + 1]!) / 2, 5));
  });

  it('still loads a format 1 artifact (one model, unprefixed weight names) as a one-member ensemble', () => {
    const dir = mkdtempSync(join(tmpdir(), 'attnrec-artifact-'));
    const original = new SasRec(config);
    saveModel(new SasRecEnsemble([original]), dir);
    const json = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8'));
    const v1 = { ...json, formatVersion: 1, members: undefined, weightsManifest: [{ ...json.weightsManifest[0], weights: json.weightsManifest[0].weights.map((w: { name: string }) => ({ ...w, name: w.name.replace(/^members\/0\//, '') })) }] };
    writeFileSync(join(dir, 'model.json'), JSON.stringify(v1));
    const { model } = loadModel(dir);
    expect(model.size).toBe(1);
    expect(lastState(model.members[0]!)).toEqual(lastState(original));
  });

  it('round-trips the co-occurrence term (neighbours and parameters) and refuses a damaged one with ARTIFACT_CORRUPT', () => {
    const dir = mkdtempSync(join(tmpdir(), 'attnrec-artifact-'));
    const neighbours = { numItems: 12, offsets: Int32Array.from([0, 0, 2, 3, ...new Array(10).fill(3)]), items: Int32Array.from([2, 12, 1]), weights: Float32Array.from([0.5, 0.125, 0.5]) };
    saveModel(new SasRecEnsemble([new SasRec(config)]), dir, undefined, new CooccurrenceBlend(neighbours, { weight: 2, scale: 10, decay: 0.9 }));
    const { blend } = loadModel(dir);
    expect(blend!.params).toEqual({ weight: 2, scale: 10, decay: 0.9 });
    expect(blend!.neighbours).toEqual(neighbours);
    const plain = mkdtempSync(join(tmpdir(), 'attnrec-artifact-'));
    saveModel(new SasRecEnsemble([new SasRec(config)]), plain);
    expect(loadModel(plain).blend).toBeUndefined();

    truncateSync(join(dir, 'cooccurrence.bin'), 20);
    expect(() => loadModel(dir)).toThrow(expect.objectContaining({ code: 'ARTIFACT_CORRUPT', message: expect.stringContaining('cooccurrence.bin has 20 bytes') }));
    const json = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8'));
    saveModel(new SasRecEnsemble([new SasRec(config)]), dir, undefined, new CooccurrenceBlend({ ...neighbours, items: Int32Array.from([2, 13, 1]) }, json.cooccurrence.params));
    expect(() => loadModel(dir)).toThrow(expect.objectContaining({ code: 'ARTIFACT_CORRUPT', message: expect.stringContaining('neighbour 13 is outside 1..12') }));
    writeFileSync(join(dir, 'model.json'), JSON.stringify({ ...json, cooccurrence: { ...json.cooccurrence, params: { weight: -1, scale: 1, decay: 1 } } }));
    expect(() => loadModel(dir)).toThrow(expect.objectContaining({ code: 'ARTIFACT_CORRUPT', message: expect.stringContaining('bad parameters') }));
    writeFileSync(join(dir, 'model.json'), JSON.stringify({ ...json, cooccurrence: { ...json.cooccurrence, params: { weight: 1, scale: 1, decay: 1, repeatWeight: 2, repeatDecay: 1.5 } } }));
    expect(() => loadModel(dir)).toThrow(expect.objectContaining({ code: 'ARTIFACT_CORRUPT', message: expect.stringContaining('the repeat term has bad parameters') }));
  });

  it('round-trips the repeat part of the history term', () => {
    const dir = mkdtempSync(join(tmpdir(), 'attnrec-artifact-'));
    const neighbours = { numItems: 12, offsets: new Int32Array(14), items: new Int32Array(0), weights: new Float32Array(0) };
    const params = { weight: 0, scale: 0, decay: 0, repeatWeight: 4, repeatDecay: 0.8 };
    saveModel(new SasRecEnsemble([new SasRec(config)]), dir, undefined, new CooccurrenceBlend(neighbours, params));
    const { blend } = loadModel(dir);
    expect(blend!.params).toEqual(params);
    expect(Array.from(blend!.term([3, 5, 3]).items).sort()).toEqual([3, 5]);
  });
});
