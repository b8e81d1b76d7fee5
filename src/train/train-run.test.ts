import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { describeEachProvider, scratchStore } from '../../test/support/test-stores.js';
import { importEvents } from '../data/import/import-events.js';
import { DEFAULT_SASREC } from '../data/import/sources.js';
import type { LeaveOneOutSplit } from '../data/leave-one-out-split.js';
import type { Store } from '../data/store.js';
import { evaluateVersion } from '../evaluate/evaluate-version.js';
import { loadModel } from '../model/artifact.js';
import { Random } from '../random.js';
import { heldOutValidationUsers, largest, trainRun, type TrainRunOptions } from './train-run.js';

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

/** Writes a CSV log into a fresh temporary folder and imports it; returns the folder. */
async function importLog(store: Store, prefix: string, name: string, csv: string): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const log = join(dir, name);
  writeFileSync(log, csv);
  await importEvents(store, { events: { path: log, format: 'csv', timeUnit: 'auto', sasrec: DEFAULT_SASREC }, skipBad: false, eventTypes: 'register' });
  return dir;
}

describeEachProvider('trainRun', (provider) => {
  it('trains from the store and writes a ready, reproducible model version', async () => {
    const store = await scratchStore(provider);
    try {
      const dir = await importLog(store, 'attnrec-train-', 'cycles.csv', cycleLog(200, 1));

      const result = await trainRun(store, options(join(dir, 'models')));
      // Cycles repeat items (views, which the default policy leaves in the ranking): the
      // next item of a cycle longer than the window is still learnable.
      expect(result.test.full.users).toBe(200);
      expect(result.members).toHaveLength(1);
      const [member] = result.members;
      expect(member!.epochs.length).toBe(12);
      expect(member!.epochs[member!.bestEpoch - 1]!.best).toBe(true);
      expect(result.test.full.hr[10]).toBeGreaterThan(0.5);
      expect(result.test.sampled?.users).toBe(200);

      const version = await store.prisma.modelVersion.findUniqueOrThrow({ where: { id: result.versionId } });
      expect(version.status).toBe('ready');
      expect(version.dataHash).toBe(result.dataHash);
      expect(version.artifactPath).toBe(result.artifactPath);
      expect(version.config).toMatchObject({ backend: 'wasm', training: { seed: 3 }, model: { numItems: 12, dim: 32 }, members: 1 });
      expect(version.metrics).toMatchObject({ members: [{ member: 0, seed: 3, bestEpoch: member!.bestEpoch }] });
      expect(existsSync(join(result.artifactPath, 'weights.bin'))).toBe(true);
      expect(existsSync(join(result.artifactPath, 'checkpoint-0.bin'))).toBe(false); // a finished run removes it
      // The baselines ran on the same protocol, and the model beats them on this learnable rule.
      expect(result.baselines.popularity.full.users).toBe(200);
      expect(result.test.full.ndcg[10]).toBeGreaterThan(result.baselines.popularity.full.ndcg[10]!);
      const html = readFileSync(result.reportPath, 'utf8');
      expect(html).toContain('<svg');
      expect(html).toContain('most-recent-item');
      expect(html.match(/<polyline/g)).toHaveLength(2);
      const { model, extra } = loadModel(result.artifactPath);
      expect((extra as { vocabulary: number[] }).vocabulary).toHaveLength(12);
      model.dispose();
      expect(await store.prisma.itemEmbedding.count({ where: { modelVersionId: result.versionId } })).toBe(12);

      // Same data, same seed, same backend: the same metrics.
      const again = await trainRun(store, options(join(dir, 'models')));
      expect(again.versionId).not.toBe(result.versionId);
      expect(again.test).toEqual(result.test);
      expect(again.members[0]!.epochs.map((e) => e.loss)).toEqual(member!.epochs.map((e) => e.loss));
    } finally {
      await store.dispose();
    }
  });
});

/** A shop log where each user buys, in random order, within one of four groups of 10 items. */
function groupLog(users: number, seed: number): string {
  const random = new Random(seed);
  const lines = ['user_id,item_id,event_type,timestamp'];
  for (let u = 0; u < users; u++) {
    const group = random.int(4);
    const length = 5 + random.int(6);
    for (let k = 0; k < length; k++) lines.push(`user-${u},sku-${group * 10 + random.int(10)},purchase,${1_700_000_000 + u * 100 + k}`);
  }
  return `${lines.join('\n')}\n`;
}

it('starts the item table from co-occurrence and keeps a co-occurrence term fitted on validation, which the evaluation job reproduces', async () => {
  const store = await scratchStore('sqlite');
  try {
    const dir = await importLog(store, 'attnrec-train-', 'groups.csv', groupLog(300, 2));
    const run = (itemInit: 'random' | 'cooccurrence'): TrainRunOptions => ({ ...options(join(dir, 'models')), model: { maxLength: 10, dim: 8, heads: 2, blocks: 1, dropout: 0.1 }, epochs: 1, training: { ...options('').training, itemInit, cooccurrenceTerm: true } });
    // From a random start, one epoch teaches the network little; bought-together items say a lot.
    const result = await trainRun(store, run('random'));
    const c = result.cooccurrence!;
    expect(c.kept).toBe(true);
    expect(c.validNdcg10).toBeGreaterThan(c.networkValidNdcg10);
    expect(result.test.full.ndcg[10]).toBeGreaterThan(c.networkTest.full.ndcg[10]!);
    const { model, blend } = loadModel(result.artifactPath);
    expect(blend!.params).toEqual(c.params);
    model.dispose();
    expect(readFileSync(result.reportPath, 'utf8')).toContain('Co-occurrence term');
    // Validation, the numbers to choose on: as served and the network alone, on the same users.
    const valid = result.valid!;
    expect(valid.users).toBeGreaterThan(200);
    expect(valid.model.full.users).toBe(valid.users);
    expect(valid.model.full.ndcg[10]).toBeGreaterThan(valid.network!.full.ndcg[10]!);
    expect(readFileSync(result.reportPath, 'utf8')).toContain('held-out validation users');
    const version = await store.prisma.modelVersion.findUniqueOrThrow({ where: { id: result.versionId } });
    expect(version.metrics).toMatchObject({ cooccurrence: { kept: true, params: c.params } });
    // The co-occurrence start: after the same epoch the network alone is already better.
    const started = await trainRun(store, run('cooccurrence'));
    expect(started.cooccurrence!.networkValidNdcg10).toBeGreaterThan(c.networkValidNdcg10 + 0.05);
    expect((await trainRun(store, run('cooccurrence'))).test).toEqual(started.test); // reproducible, the start included
    // Re-evaluated from the artifact: the same metrics, as served and for the network alone.
    const evaluated = await evaluateVersion(store, result.versionId, { sampledNegatives: 5, baselines: false });
    expect(evaluated.model).toEqual(result.test);
    expect(evaluated.network).toEqual(c.networkTest);
    // Without the term: no fit, the network's own scores.
    const plain = await trainRun(store, { ...run('random'), training: options('').training });
    expect(plain.cooccurrence).toBeUndefined();
    expect(plain.test).toEqual(c.networkTest);
    expect(plain.valid).toEqual({ users: valid.users, model: valid.network });
    // A throwaway preview may skip it: the same test numbers, no validation.
    const preview = await trainRun(store, { ...run('random'), training: options('').training, finalValidation: false });
    expect(preview.valid).toBeUndefined();
    expect(preview.test).toEqual(plain.test);
  } finally {
    await store.dispose();
  }
});

/** A consumables log: each user rebuys 2-3 staples of their own (of 40 items), in random order. */
function staplesLog(users: number, seed: number): string {
  const random = new Random(seed);
  const lines = ['user_id,item_id,event_type,timestamp'];
  for (let u = 0; u < users; u++) {
    const own = Array.from({ length: 2 + random.int(2) }, () => random.int(40));
    const length = 6 + random.int(6);
    for (let k = 0; k < length; k++) lines.push(`user-${u},sku-${own[random.int(own.length)]},purchase,${1_700_000_000 + u * 100 + k}`);
  }
  return `${lines.join('\n')}\n`;
}

it('fits a repeat term where the exclusion policy lets rebuys through, serves it from the artifact, and fits none under purchased', async () => {
  const store = await scratchStore('sqlite');
  try {
    const dir = await importLog(store, 'attnrec-train-', 'staples.csv', staplesLog(300, 4));
    const run: TrainRunOptions = { ...options(join(dir, 'models')), model: { maxLength: 10, dim: 8, heads: 2, blocks: 1, dropout: 0.1 }, epochs: 1, training: { ...options('').training, itemInit: 'random', cooccurrenceTerm: true } };
    const result = await trainRun(store, { ...run, exclude: 'none' });
    const repeat = result.cooccurrence!.repeat!;
    expect(repeat.repeatWeight).toBeGreaterThan(0);
    expect(repeat.validNdcg10).toBeGreaterThan(repeat.withoutValidNdcg10);
    expect(result.cooccurrence!.kept).toBe(true);
    expect(result.test.repeat!.users).toBeGreaterThan(result.test.novel!.users);
    expect(result.test.full.ndcg[10]).toBeGreaterThan(result.cooccurrence!.networkTest.full.ndcg[10]! + 0.1);
    const { model, blend } = loadModel(result.artifactPath);
    expect(blend!.params).toMatchObject({ repeatWeight: repeat.repeatWeight, repeatDecay: repeat.repeatDecay });
    model.dispose();
    expect(readFileSync(result.reportPath, 'utf8')).toContain('Repeat term');
    // The evaluation job reproduces it from the artifact, under the version's policy.
    expect((await evaluateVersion(store, result.versionId, { sampledNegatives: 5, baselines: false })).model).toEqual(result.test);
    // Under purchased every history item is a purchase the API would never show: nothing to fit.
    const purchased = await trainRun(store, run);
    expect(purchased.cooccurrence!.repeat).toBeUndefined();
  } finally {
    await store.dispose();
  }
});

it('resumes a run that died after an epoch from its checkpoint, ending exactly where an uninterrupted run ends', async () => {
  const store = await scratchStore('sqlite');
  try {
    const dir = await importLog(store, 'attnrec-resume-', 'cycles.csv', cycleLog(120, 2));
    const short = { ...options(join(dir, 'models')), epochs: 4, patience: 4 };
    const straight = await trainRun(store, short);

    const crash = new Error('simulated crash after epoch 2');
    await expect(trainRun(store, { ...short, onEpoch: (e) => { if (e.epoch === 2) throw crash; } })).rejects.toBe(crash);
    const failed = await store.prisma.modelVersion.findFirstOrThrow({ where: { status: 'failed' } });
    expect(existsSync(join(failed.artifactPath, 'checkpoint-0.bin'))).toBe(true);

    const starts: (readonly number[])[] = [];
    // Settings given on resume are ignored: the checkpoint's apply.
    const resumed = await trainRun(store, { ...short, epochs: 1, resume: 'latest', onStart: (info) => starts.push(info.resumedFromEpochs) });
    expect(starts).toEqual([[2]]);
    expect(resumed.versionId).toBe(failed.id);
    expect(resumed.members[0]!.epochs.map((e) => e.epoch)).toEqual([1, 2, 3, 4]);
    expect(resumed.members[0]!.epochs.map((e) => e.loss)).toEqual(straight.members[0]!.epochs.map((e) => e.loss));
    expect(resumed.test).toEqual(straight.test);
    expect((await store.prisma.modelVersion.findUniqueOrThrow({ where: { id: failed.id } })).status).toBe('ready');

    await expect(trainRun(store, { ...short, resume: failed.id })).rejects.toMatchObject({ code: 'RESUME_FINISHED' });
    await expect(trainRun(store, { ...short, resume: 'latest' })).rejects.toMatchObject({ code: 'CHECKPOINT_NOT_FOUND' });
    await expect(trainRun(store, { ...short, resume: 999 })).rejects.toMatchObject({ code: 'MODEL_VERSION_NOT_FOUND' });
  } finally {
    await store.dispose();
  }
});

it('trains an ensemble the same in worker threads as in this thread, and resumes it member by member', async () => {
  const store = await scratchStore('sqlite');
  try {
    const dir = await importLog(store, 'attnrec-ensemble-', 'cycles.csv', cycleLog(120, 4));
    const ensemble = { ...options(join(dir, 'models')), epochs: 3, patience: 3, members: 2 };
    const here = await trainRun(store, { ...ensemble, threads: 1 });
    const starts: { threads: number; members: number }[] = [];
    const threaded = await trainRun(store, { ...ensemble, threads: 2, onStart: (s) => starts.push({ threads: s.threads, members: s.members }) });
    expect(starts).toEqual([{ threads: 2, members: 2 }]);
    expect(threaded.threads).toBe(2);
    // Member k is seeded with seed + k: two different models, each the same wherever it trained.
    expect(here.members.map((m) => m.seed)).toEqual([3, 4]);
    expect(here.members[0]!.epochs.map((e) => e.loss)).not.toEqual(here.members[1]!.epochs.map((e) => e.loss));
    threaded.members.forEach((m, k) => expect(m.epochs.map((e) => e.loss)).toEqual(here.members[k]!.epochs.map((e) => e.loss)));
    expect(threaded.test).toEqual(here.test);
    // Each member is also measured alone; the version is measured as the ensemble.
    expect(here.members.every((m) => m.test?.full.users === 120)).toBe(true);
    const { model } = loadModel(threaded.artifactPath);
    expect(model.size).toBe(2);
    model.dispose();

    // A crash after member 2's first epoch: both members' checkpoints stay, and --resume finishes both.
    const crash = new Error('simulated crash');
    await expect(trainRun(store, { ...ensemble, threads: 1, onEpoch: (e) => { if (e.member === 1 && e.epoch === 1) throw crash; } })).rejects.toBe(crash);
    const failed = await store.prisma.modelVersion.findFirstOrThrow({ where: { status: 'failed' }, orderBy: { id: 'desc' } });
    const resumedFrom: (readonly number[])[] = [];
    const resumed = await trainRun(store, { ...ensemble, threads: 2, resume: failed.id, onStart: (s) => resumedFrom.push(s.resumedFromEpochs) });
    expect(resumedFrom).toEqual([[3, 1]]); // member 1 had finished, member 2 had one epoch
    expect(resumed.test).toEqual(here.test);
    expect(existsSync(join(failed.artifactPath, 'checkpoint-1.bin'))).toBe(false);
  } finally {
    await store.dispose();
  }
});

/** Views follow a cycle over 12 items; after a view of item k, a purchase of item (k + 5) mod 12 follows 30 % of the time. */
function purchaseLog(users: number, seed: number): string {
  const random = new Random(seed);
  const lines = ['user_id,item_id,event_type,timestamp'];
  for (let u = 0; u < users; u++) {
    let item = random.int(12);
    const length = 12 + random.int(8);
    for (let k = 0; k < length; k++) {
      const purchase = k > 0 && random.next() < 0.3;
      const sku = purchase ? (item + 5) % 12 : item;
      lines.push(`user-${u},sku-${sku},${purchase ? 'purchase' : 'view'},${1_700_000_000 + u * 100 + k}`);
      if (!purchase) item = (item + 1) % 12;
    }
  }
  return `${lines.join('\n')}\n`;
}

describeEachProvider('trainRun on the next purchase', (provider) => {
  it('validates on the next purchase, reports it beside the next event, and the evaluation job reproduces both', async () => {
    const store = await scratchStore(provider);
    try {
      const dir = await importLog(store, 'attnrec-purchase-', 'purchases.csv', purchaseLog(160, 4));
      const run: TrainRunOptions = { ...options(join(dir, 'models')), epochs: 4, members: 2, threads: 2, evalType: 'purchase', training: { ...options('').training, targetWeights: [0, 1, 1, 3] } };
      const result = await trainRun(store, run);
      const purchase = result.nextPurchase!;
      expect(purchase.test.full.users).toBeGreaterThan(100);
      expect(purchase.test.full.users).toBeLessThan(result.test.full.users); // users with two purchases, of 160 with a next event
      expect(purchase.valid!.model.full.users).toBe(purchase.valid!.users);
      expect(Object.keys(purchase.baselines).sort()).toEqual(Object.keys(result.baselines).sort());
      const version = await store.prisma.modelVersion.findUniqueOrThrow({ where: { id: result.versionId } });
      expect(version.config).toMatchObject({ evalType: 'purchase', training: { targetWeights: [0, 1, 1, 3] } });
      expect(version.metrics).toMatchObject({ nextPurchase: { test: { full: { users: purchase.test.full.users } } } });
      expect(readFileSync(result.reportPath, 'utf8')).toContain('Next purchase');
      // The evaluation job ranks what the version was validated on by default, and the next event on request.
      const again = await evaluateVersion(store, result.versionId, { sampledNegatives: 5 });
      expect(again.evalType).toBe('purchase');
      expect(again.warning).toBeUndefined();
      expect(again.model).toEqual(purchase.test);
      expect(again.baselines).toEqual(purchase.baselines);
      const nextEvent = await evaluateVersion(store, result.versionId, { sampledNegatives: 5, evalType: 'event' });
      expect(nextEvent.model).toEqual(result.test);
      expect(nextEvent.baselines).toEqual(result.baselines);
      // A version trained on the next-event split may have seen those purchases: said, not hidden.
      const plain = await trainRun(store, { ...options(join(dir, 'models')), epochs: 1 });
      expect(plain.nextPurchase).toBeUndefined();
      expect((await evaluateVersion(store, plain.versionId, { sampledNegatives: 5, evalType: 'purchase', baselines: false })).warning).toMatch(/trained with --eval-type event/);
    } finally {
      await store.dispose();
    }
  });
});

it('holds out of validation the users the co-occurrence term is fitted on, unless the fit took them all', () => {
  const split = { evaluated: Int32Array.from([1, 3, 4, 7, 9]) } as LeaveOneOutSplit;
  expect(Array.from(heldOutValidationUsers(split, Int32Array.from([3, 9])))).toEqual([1, 4, 7]);
  expect(heldOutValidationUsers(split, split.evaluated)).toBe(split.evaluated);
});

it('refuses to train on an empty store with a clear error', async () => {
  const store = await scratchStore('sqlite');
  try {
    await expect(trainRun(store, options(mkdtempSync(join(tmpdir(), 'attnrec-train-'))))).rejects.toMatchObject({ code: 'NO_TRAINING_DATA' });
    // Views only: nothing for the next-purchase protocol, said before any version is created.
    const dir = await importLog(store, 'attnrec-train-', 'views.csv', cycleLog(20, 1));
    await expect(trainRun(store, { ...options(join(dir, 'models')), evalType: 'purchase' })).rejects.toMatchObject({ code: 'NO_TRAINING_DATA', message: /two purchases/ });
    expect(await store.prisma.modelVersion.count()).toBe(0);
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
