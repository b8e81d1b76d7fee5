import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { describeEachProvider, scratchStore } from '../../test/support/test-stores.js';
import { importEvents } from '../data/import/import-events.js';
import { DEFAULT_SASREC } from '../data/import/sources.js';
import { loadModel } from '../model/artifact.js';
import { Random } from '../random.js';
import { largest, trainRun, type TrainRunOptions } from './train-run.js';

/** A shop log where each user's next item follows a fixed cycle over 12 items. */
function cycleLog(users: number, seed: number): string {
  const random = new Random(seed);
  const lines = ['user_id,item_id,event_type,timestamp'];
  for (let u = 0; u < users; u++) {
    let item = random.int(12);
    const length = 8 + random.int(6);
    for (let k = 0; k < length; k++) {
      lines.push(`user-${u},sku-${item},view,${1_700_000_000 + u * 100 + k}`);
      item = (item + 1) % 12;
    }
  }
  return `${lines.join('\n')}\n`;
}

const options = (artifactsRoot: string): TrainRunOptions => ({
  model: { maxLength: 10, dim: 32, heads: 2, blocks: 2, dropout: 0.1 },
  training: { loss: 'sampled', negatives: 8, negativeAlpha: 0, learningRate: 0.01, batchSize: 32, seed: 3 },
  epochs: 12,
  patience: 12,
  backend: 'wasm',
  artifactsRoot,
  sampledNegatives: 5,
});

describeEachProvider('trainRun', (provider) => {
  it('trains from the store and writes a ready, reproducible model version', async () => {
    const store = await scratchStore(provider);
    try {
      const dir = mkdtempSync(join(tmpdir(), 'attnrec-train-'));
      const log = join(dir, 'cycles.csv');
      writeFileSync(log, cycleLog(200, 1));
      await importEvents(store, { events: { path: log, format: 'csv', timeUnit: 'auto', sasrec: DEFAULT_SASREC }, skipBad: false, eventTypes: 'register' });

      const result = await trainRun(store, options(join(dir, 'models')));
      // Cycles repeat items, so the standard protocol (history excluded) is the hard case: the
      // next item of a cycle longer than the window is still learnable.
      expect(result.test.full.users).toBe(200);
      expect(result.epochs.length).toBe(12);
      expect(result.epochs[result.bestEpoch - 1]!.best).toBe(true);
      expect(result.test.full.hr[10]).toBeGreaterThan(0.5);
      expect(result.test.sampled?.users).toBe(200);

      const version = await store.prisma.modelVersion.findUniqueOrThrow({ where: { id: result.versionId } });
      expect(version.status).toBe('ready');
      expect(version.dataHash).toBe(result.dataHash);
      expect(version.artifactPath).toBe(result.artifactPath);
      expect(version.config).toMatchObject({ backend: 'wasm', training: { seed: 3 }, model: { numItems: 12, dim: 32 } });
      expect(version.metrics).toMatchObject({ bestEpoch: result.bestEpoch });
      expect(existsSync(join(result.artifactPath, 'weights.bin'))).toBe(true);
      const { model, extra } = loadModel(result.artifactPath);
      expect((extra as { vocabulary: number[] }).vocabulary).toHaveLength(12);
      model.dispose();
      expect(await store.prisma.itemEmbedding.count({ where: { modelVersionId: result.versionId } })).toBe(12);

      // Same data, same seed, same backend: the same metrics.
      const again = await trainRun(store, options(join(dir, 'models')));
      expect(again.versionId).not.toBe(result.versionId);
      expect(again.test).toEqual(result.test);
      expect(again.epochs.map((e) => e.loss)).toEqual(result.epochs.map((e) => e.loss));
    } finally {
      await store.dispose();
    }
  });
});

it('refuses to train on an empty store with a clear error', async () => {
  const store = await scratchStore('sqlite');
  try {
    await expect(trainRun(store, options(mkdtempSync(join(tmpdir(), 'attnrec-train-'))))).rejects.toMatchObject({ code: 'NO_TRAINING_DATA' });
  } finally {
    await store.dispose();
  }
});

it('finds the largest event type of millions of events without overflowing the stack', () => {
  const types = new Uint8Array(3_000_000).fill(1);
  types[2_999_999] = 7;
  expect(largest(types)).toBe(7);
  expect(largest(new Uint8Array(0))).toBe(-Infinity);
});
