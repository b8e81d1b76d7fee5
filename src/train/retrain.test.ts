import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { describeEachProvider, scratchStore } from '../../test/support/test-stores.js';
import { importEvents } from '../data/import/import-events.js';
import { DEFAULT_SASREC } from '../data/import/sources.js';
import { EXPERIMENT_ROUTES, getExperiment, listExperiments } from '../data/experiments.js';
import type { Store } from '../data/store.js';
import { evaluateVersionsOnWindow } from '../evaluate/evaluate-on-window.js';
import { Random } from '../random.js';
import { retrain } from './retrain.js';
import { trainRun, type TrainRunOptions } from './train-run.js';

/** Each user's next item follows a cycle over `items` items named `${prefix}-k`, from time `start` on. */
function cycleLog(users: number, seed: number, items: number, prefix: string, start: number): string {
  const random = new Random(seed);
  const lines = ['user_id,item_id,event_type,timestamp'];
  for (let u = 0; u < users; u++) {
    let item = random.int(items);
    const length = 8 + random.int(6);
    for (let k = 0; k < length; k++) {
      lines.push(`user-${u},${prefix}-${item},view,${start + u * 100 + k}`);
      item = (item + 1) % items;
    }
  }
  return `${lines.join('\n')}\n`;
}

async function importLog(store: Store, dir: string, name: string, csv: string): Promise<void> {
  const log = join(dir, name);
  writeFileSync(log, csv);
  await importEvents(store, { events: { path: log, format: 'csv', timeUnit: 'auto', sasrec: DEFAULT_SASREC }, skipBad: false, eventTypes: 'register' });
}

const recipe = (artifactsRoot: string, epochs: number): TrainRunOptions => ({
  model: { maxLength: 10, dim: 16, heads: 2, blocks: 1, dropout: 0.1 },
  training: { loss: 'sampled', negatives: 8, negativeAlpha: 0, learningRate: 0.01, batchSize: 32, seed: 5 },
  epochs,
  patience: epochs,
  backend: 'wasm',
  artifactsRoot,
  sampledNegatives: 5,
  activate: 'always',
});

describeEachProvider('retrain', (provider) => {
  it('promotes a version that wins on the same split, and keeps the active one when it does not win by the margin', async () => {
    const store = await scratchStore(provider);
    try {
      const dir = mkdtempSync(join(tmpdir(), 'attnrec-retrain-'));
      await importLog(store, dir, 'cycles.csv', cycleLog(150, 1, 12, 'sku', 1_700_000_000));
      // A barely trained version serves: one epoch.
      const first = await trainRun(store, recipe(join(dir, 'models'), 1));
      expect(first.activated).toBe(true);

      // A margin nothing reaches: the new version is compared, recorded and left ready; the first keeps serving.
      const kept = await retrain(store, { minGain: 1_000, promote: 'auto', epochs: 10, backend: 'wasm', artifactsRoot: join(dir, 'models') });
      expect(kept.decision).toBe('kept');
      expect(kept.previous).toBe(first.versionId);
      expect(kept.comparison.users).toBe(150);
      // Same split, same served scores: the new version's numbers here are the training job's test numbers.
      expect(kept.comparison.candidate.full.ndcg[10]).toBeCloseTo(kept.training.test.full.ndcg[10]!, 4);
      expect(kept.comparison.candidate.full.ndcg[10]).toBeGreaterThan(kept.comparison.previous.full.ndcg[10]!);
      expect(kept.reason).toContain(`version ${first.versionId} keeps serving`);
      const rows = await store.prisma.modelVersion.findMany({ orderBy: { id: 'asc' }, select: { id: true, active: true, status: true, metrics: true } });
      expect(rows.map((r) => [r.id, r.active, r.status])).toEqual([
        [first.versionId, true, 'ready'],
        [kept.candidate, false, 'ready'],
      ]);
      expect(rows[1]!.metrics).toMatchObject({ retrain: { previous: first.versionId, decision: 'kept', minGain: 1_000 } });

      // With no margin, the better version takes over, and the recipe (not the epochs) is the active one's.
      const promoted = await retrain(store, { minGain: 0, promote: 'auto', epochs: 10, backend: 'wasm', artifactsRoot: join(dir, 'models') });
      expect(promoted.decision).toBe('promoted');
      expect(promoted.comparison.gain).toBeGreaterThan(0);
      const active = await store.prisma.modelVersion.findMany({ where: { active: true }, select: { id: true, config: true } });
      expect(active.map((r) => r.id)).toEqual([promoted.candidate]);
      expect(active[0]!.config).toMatchObject({ epochs: 10, model: { dim: 16, blocks: 1 }, training: { seed: 5 } });
    } finally {
      await store.dispose();
    }
  }, 120_000);

  it('--promote canary: a winner serves a share of shoppers in a guarded experiment beside the active version; a second waits its turn', async () => {
    const store = await scratchStore(provider);
    try {
      const dir = mkdtempSync(join(tmpdir(), 'attnrec-retrain-'));
      await importLog(store, dir, 'cycles.csv', cycleLog(150, 1, 12, 'sku', 1_700_000_000));
      const first = await trainRun(store, recipe(join(dir, 'models'), 1));
      const canary = { share: 0.1, alpha: 0.01, minImpressions: 500 };
      const started = await retrain(store, { minGain: 0, promote: 'canary', canary, epochs: 6, backend: 'wasm', artifactsRoot: join(dir, 'models') });
      expect(started.decision).toBe('canary');
      expect(started.reason).toContain(`experiment ${started.experiment} serves it to 10 % of shoppers beside version ${first.versionId}`);
      // The active version is unchanged; the experiment runs on every experiment route, guarded.
      expect((await store.prisma.modelVersion.findMany({ where: { active: true }, select: { id: true } })).map((r) => r.id)).toEqual([first.versionId]);
      const experiment = await getExperiment(store, started.experiment!);
      expect(experiment).toMatchObject({ status: 'running', routes: [...EXPERIMENT_ROUTES], guardrail: { alpha: 0.01, minImpressions: 500 } });
      expect(experiment.variants.map((v) => [v.name, v.modelVersion, v.share, v.control])).toEqual([
        ['active', first.versionId, 0.9, true],
        ['canary', started.candidate, 0.1, false],
      ]);
      expect((await store.prisma.modelVersion.findUniqueOrThrow({ where: { id: started.candidate } })).metrics).toMatchObject({ retrain: { decision: 'canary', experiment: started.experiment } });

      // While it runs, another winner cannot take the same routes: it stays ready, its draft is retired.
      const second = await retrain(store, { minGain: 0, promote: 'canary', canary, epochs: 6, backend: 'wasm', artifactsRoot: join(dir, 'models') });
      expect(second.decision).toBe('kept');
      expect(second.experiment).toBeUndefined();
      expect(second.reason).toMatch(new RegExp(`its canary could not start \\(experiment ${started.experiment} .* already runs on`));
      const experiments = await listExperiments(store);
      expect(experiments.map((e) => e.status).sort()).toEqual(['running', 'stopped']);
    } finally {
      await store.dispose();
    }
  }, 120_000);

  it('refuses to run without an active version, and leaves the store as it was', async () => {
    const store = await scratchStore(provider);
    try {
      const dir = mkdtempSync(join(tmpdir(), 'attnrec-retrain-'));
      await importLog(store, dir, 'cycles.csv', cycleLog(20, 1, 12, 'sku', 1_700_000_000));
      await expect(retrain(store, { minGain: 0, promote: 'auto', backend: 'wasm', artifactsRoot: join(dir, 'models') })).rejects.toMatchObject({ code: 'NO_ACTIVE_VERSION' });
      expect(await store.prisma.modelVersion.count()).toBe(0);
    } finally {
      await store.dispose();
    }
  });
});

describeEachProvider('evaluateVersionsOnWindow', (provider) => {
  it('ranks versions on the same window; a held-out item a version never saw is its miss', async () => {
    const store = await scratchStore(provider);
    try {
      const dir = mkdtempSync(join(tmpdir(), 'attnrec-window-'));
      await importLog(store, dir, 'old.csv', cycleLog(120, 2, 12, 'sku', 1_700_000_000));
      const old = await trainRun(store, recipe(join(dir, 'models'), 8));
      // New shoppers buy new items: the old version knows none of them.
      await importLog(store, dir, 'new.csv', cycleLog(60, 3, 40, 'new', 1_800_000_000).replaceAll('user-', 'later-'));
      const since = new Date(1_800_000_000 * 1000);

      const all = await evaluateVersionsOnWindow(store, [old.versionId]);
      expect(all.users).toBe(180);
      expect(all.items).toBe(52);
      expect(all.versions[0]!.unknownTargets).toBe(60);

      const recent = await evaluateVersionsOnWindow(store, [old.versionId], { window: { since } });
      expect(recent.users).toBe(60);
      expect(recent.items).toBe(40);
      expect(recent.versions[0]!.unknownTargets).toBe(60);
      // Nothing it knows: every item ties at the bottom, and ties count against the target (40 items, at most 13 in a history).
      expect(recent.versions[0]!.model.full.hr[20]).toBe(0);

      // On its own snapshot's users, the old version scores what its training job measured.
      const own = all.versions[0]!.model.full.ndcg[10]! * 180;
      expect(own / 120).toBeCloseTo(old.test.full.ndcg[10]!, 4);
    } finally {
      await store.dispose();
    }
  }, 60_000);
});
