import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { servingReader } from '../data/serving-reader.js';
import { evaluateVersion } from '../evaluate/evaluate-version.js';
import { modelScorer } from '../evaluate/evaluate.js';
import type { RankingMetrics } from '../evaluate/metrics.js';
import { loadModel } from '../model/artifact.js';
import { selectBackend } from '../model/backend.js';
import { ItemVocabulary } from '../model/vocabulary.js';
import { InferencePool } from './inference-pool.js';
import { servedShop, type ServedShop } from '../../test/support/served-shop.js';
import { threadNames } from '../../test/support/thread-names.js';

/**
 * The API's inference on its worker threads against the evaluation job's
 * (TensorFlow.js, modelScorer): the same scores for stored users and inline
 * sessions, one request at a time and in concurrent batches, on every
 * worker; the same test metrics through the served path; and what a
 * crashed worker does to the requests it held.
 */
describe('inference on worker threads', () => {
  let shop: ServedShop;

  beforeAll(async () => {
    await selectBackend('wasm');
    shop = await servedShop('sqlite', { workers: 2, userCacheSize: 0 });
  });

  afterAll(async () => {
    await shop?.dispose();
  });

  it('answers users and sessions with the evaluation job\'s scores (1e-4), batched, on every worker (the second built from the first\'s tables)', async () => {
    const version = await shop.store.prisma.modelVersion.findFirstOrThrow({ where: { active: true } });
    const { model, blend, extra } = loadModel(version.artifactPath);
    const vocabulary = new ItemVocabulary(Int32Array.from((extra as { vocabulary: number[] }).vocabulary));
    const reader = servingReader(shop.store);
    const users = Array.from({ length: 40 }, (_, u) => `user-${u}`);
    // Each user's whole history, encoded as the evaluation encodes it, and the evaluation's scores of it.
    const histories = await Promise.all(users.map(async (u) => reader.userHistory((await reader.userId(u))!)));
    const offsets = [0];
    const items: number[] = [];
    const types: number[] = [];
    for (const h of histories) {
      h.items.forEach((item, i) => {
        items.push(vocabulary.indexOf(item));
        types.push(h.types[i]!);
      });
      offsets.push(items.length);
    }
    const data = { offsets: Int32Array.from(offsets), items: Int32Array.from(items), types: Uint8Array.from(types) };
    const rows = model.config.numItems + 1;
    const expected = modelScorer(model, data, blend)(users.map((_, s) => s), (s) => offsets[s + 1]! - offsets[s]!);
    model.dispose();
    const catalog = new Map((await reader.catalog()).map((c) => [c.externalId, c.id]));
    const check = (s: number, body: { items: { item: string; score: number; probability: number }[] }): void => {
      expect(body.items).toHaveLength(12);
      let total = 0;
      for (const { item, score, probability } of body.items) {
        expect(Math.abs(score - expected[s * rows + vocabulary.indexOf(catalog.get(item)!)]!)).toBeLessThan(1e-4);
        total += probability;
      }
      expect(total).toBeCloseTo(1, 4); // all 12 items: the softmax over the catalogue
    };
    // Worker 0 read the version's files and built its tables; worker 1 copied them from worker 0.
    const metrics = (await shop.call('/metrics', { role: 'none' })).body as string;
    const loads = Object.fromEntries([...metrics.matchAll(/attnrec_model_loads_total\{worker="(\d+)",from="(\w+)"\} (\d+)/g)].map((m) => [`${m[1]} ${m[2]}`, Number(m[3])]));
    expect(loads).toEqual({ '0 files': 1, '1 shared': 1 });
    const before = await workerBatches(shop);
    // Concurrent: they queue behind busy workers and go out in batches, to both workers.
    const [stored, inline] = await Promise.all([
      Promise.all(users.map((u) => shop.call(`/v1/users/${u}/recommendations?k=12&exclude=none`, { role: 'read' }))),
      Promise.all(histories.map((h) => shop.call('/v1/sessions/recommendations', { role: 'read', body: { k: 12, exclude: 'none', events: Array.from(h.items, (item, i) => ({ item: [...catalog].find(([, id]) => id === item)![0], type: ['view', 'cart', 'purchase'][h.types[i]! - 1] })) } }))),
    ]);
    stored.forEach((r, s) => check(s, r.body));
    inline.forEach((r, s) => check(s, r.body));
    // One at a time, too.
    check(3, (await shop.call(`/v1/sessions/recommendations`, { role: 'read', body: { k: 12, exclude: 'none', events: Array.from(histories[3]!.items, (item, i) => ({ item: [...catalog].find(([, id]) => id === item)![0], type: ['view', 'cart', 'purchase'][histories[3]!.types[i]! - 1] })) } })).body);
    const after = await workerBatches(shop);
    for (const worker of ['0', '1']) expect(after.histories[worker]! - (before.histories[worker] ?? 0)).toBeGreaterThan(0);
    expect(sum(after.histories) - sum(before.histories)).toBe(81);
    // Histories that arrive while the workers are busy share a pass (over HTTP that depends on timing; here it does not).
    const encoded = histories.map((_, s) => ({ items: items.slice(offsets[s], offsets[s + 1]).slice(-10), types: types.slice(offsets[s], offsets[s + 1]).slice(-10) }));
    const together = await shop.server.context.pool.represent(version.id, encoded, 12);
    const batched = await workerBatches(shop);
    expect(sum(batched.histories) - sum(after.histories)).toBe(40);
    expect(sum(batched.batches) - sum(after.batches)).toBeLessThan(40);
    together.forEach(({ shortlist }, s) => shortlist.indices.forEach((index, j) => expect(Math.abs(shortlist.scores[j]! - expected[s * rows + index]!)).toBeLessThan(1e-4)));
    reader.close();
  });

  it('holds a lone history for the busy worker rather than waking an idle one for it, unless a second joins it', async () => {
    const version = (await shop.store.prisma.modelVersion.findFirstOrThrow({ where: { active: true } })).id;
    const history = (n: number) => ({ items: Array.from({ length: 8 }, (_, i) => 1 + ((n + i) % 10)), types: Array.from({ length: 8 }, () => 1) });
    const { pool } = shop.server.context;
    const before = await workerBatches(shop);
    // Worker 0 takes the first history; one that arrives meanwhile waits for it rather than wake worker 1.
    await Promise.all([pool.represent(version, [history(1)], 12), pool.represent(version, [history(2)], 12)]);
    const held = await workerBatches(shop);
    expect(delta(held, before, '0')).toEqual({ histories: 2, batches: 2 });
    expect(delta(held, before, '1')).toEqual({ histories: 0, batches: 0 });
    // Two that arrive while worker 0 is busy go to worker 1, together.
    await Promise.all([pool.represent(version, [history(3)], 12), pool.represent(version, [history(4)], 12), pool.represent(version, [history(5)], 12)]);
    const shared = await workerBatches(shop);
    expect(delta(shared, held, '0')).toEqual({ histories: 1, batches: 1 });
    expect(delta(shared, held, '1')).toEqual({ histories: 2, batches: 1 });
  });

  it('gives the training job\'s test metrics through the served path', async () => {
    const version = await shop.store.prisma.modelVersion.findFirstOrThrow({ where: { active: true } });
    const trained = (version.metrics as unknown as { test: { full: RankingMetrics } }).test.full;
    // The shop's training run ranked against 5 sampled negatives; the full ranking is what must agree.
    const served = await evaluateVersion(shop.store, version.id, { sampledNegatives: 5, baselines: false, served: true });
    expect(served.model.full.users).toBe(trained.users);
    expect(served.model.full.users).toBeGreaterThan(100);
    for (const k of [1, 5, 10, 20]) {
      expect(served.model.full.ndcg[k]).toBeCloseTo(trained.ndcg[k]!, 6);
      expect(served.model.full.hr[k]).toBeCloseTo(trained.hr[k]!, 6);
    }
    expect(served.model.full.mrr).toBeCloseTo(trained.mrr, 6);
  });

  it('fails only the requests a crashed worker held, with 503 and Retry-After, replaces it, and loses no acknowledged event', async () => {
    const sessions = Array.from({ length: 60 }, (_, i) => ({ k: 3, events: Array.from({ length: 8 }, (__, j) => ({ item: `sku-${(i + j) % 12}`, type: 'view' })) }));
    const events = Array.from({ length: 20 }, (_, i) => ({ userId: `crash-user-${i}`, itemId: `sku-${i % 12}`, type: 'view', eventId: `crash-${i}` }));
    const requests = sessions.map((body) => shop.call('/v1/sessions/recommendations', { role: 'read', body }));
    const writes = events.map((event) => shop.call('/v1/events', { role: 'write', body: { events: [event] } }));
    // Wait until a worker has work in flight, then kill it.
    const { pool } = shop.server.context;
    for (let i = 0; i < 2_000 && pool.busyWorkers.length === 0; i++) await new Promise((r) => setImmediate(r));
    await pool.crash(pool.busyWorkers[0] ?? 0);
    const answers = await Promise.all(requests);
    for (const a of answers) {
      if (a.status === 200) continue;
      expect(a.status).toBe(503);
      expect(a.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(a.headers.get('retry-after')).toBe('1');
      expect(a.body.code).toBe('INFERENCE_UNAVAILABLE');
    }
    expect(answers.filter((a) => a.status === 200).length).toBeGreaterThan(0);
    expect(answers.filter((a) => a.status === 503).length).toBeGreaterThan(0);
    const acknowledged = (await Promise.all(writes)).filter((w) => w.status === 200).length;
    expect(acknowledged).toBe(events.length);
    expect(await shop.store.prisma.event.count({ where: { eventId: { startsWith: 'crash-' } } })).toBe(events.length);
    // The replacement serves.
    for (let i = 0; i < 100; i++) {
      const again = await shop.call('/v1/sessions/recommendations', { role: 'read', body: sessions[0] });
      if (again.status === 200) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error('no inference worker answered after the crash');
  });

  it('keeps answering on its only worker while that worker loads another version', async () => {
    const version = await shop.store.prisma.modelVersion.findFirstOrThrow({ where: { active: true } });
    const pool = await InferencePool.start({ workers: 1, background: false, log: () => {} });
    try {
      await pool.load(version.id, version.createdAt, version.artifactPath);
      // A worker that loaded in one piece would have answered nothing until the load was done.
      expect(await answeredWhileReloading(pool, version)).toBeGreaterThan(0);
    } finally {
      await pool.close();
    }
  });

  it('takes a loading worker out of the rotation while the other answers, and copies the first worker\'s build', async () => {
    const version = await shop.store.prisma.modelVersion.findFirstOrThrow({ where: { active: true } });
    const events: string[] = [];
    const pool = await InferencePool.start({ workers: 2, background: false, log: () => {}, onBatch: (worker) => events.push(`batch ${worker}`), onLoad: (worker, from) => events.push(`load ${worker} ${from}`) });
    try {
      await pool.load(version.id, version.createdAt, version.artifactPath);
      await answeredWhileReloading(pool, version, () => (events.length = 0));
      const firstLoaded = events.indexOf('load 0 files');
      expect(firstLoaded).toBeGreaterThan(0);
      expect(events.slice(firstLoaded + 1)).toContain('load 1 shared');
      // While worker 0 built, worker 1 answered everything (and answered something).
      expect(events.slice(0, firstLoaded)).toContain('batch 1');
      expect(events.slice(0, firstLoaded)).not.toContain('batch 0');
      // And while worker 1 copied, worker 0 did.
      expect(events.slice(firstLoaded, events.indexOf('load 1 shared'))).not.toContain('batch 1');
    } finally {
      await pool.close();
    }
  });

  it('runs the background worker only while a load or a warm-up does, and warms again after it ended', async () => {
    const version = await shop.store.prisma.modelVersion.findFirstOrThrow({ where: { active: true } });
    const loads: string[] = [];
    const pool = await InferencePool.start({ workers: 1, background: true, log: () => {}, backgroundGraceMs: 100, onLoad: (worker, from) => loads.push(`${worker} ${from}`) });
    try {
      // The background worker built the version's tables for the live worker, and waits for a warm-up a little while.
      await pool.load(version.id, version.createdAt, version.artifactPath);
      expect(loads).toEqual(['0 shared']);
      expect(pool.backgroundRunning).toBe(true);
      // At nice 19: the worker's thread and the thread its TypeScript loader compiles modules on, which it started.
      expect(threadsAtNice(19)).toBeGreaterThanOrEqual(2);
      // And under SCHED_IDLE (where util-linux's chrt is, as on Debian): preempted at once when a live thread wakes.
      if (existsSync('/usr/bin/chrt')) expect(threadsUnderSchedIdle()).toBeGreaterThanOrEqual(2);
      // Named, so top -H and ps -L tell them apart (every thread of Node is `node` otherwise).
      expect(threadNames()).toEqual(expect.arrayContaining(['attnrec-live-0', 'attnrec-bg']));
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(pool.backgroundRunning).toBe(false);
      const users = (await shop.store.prisma.event.findMany({ distinct: ['userId'], select: { userId: true } })).length;
      for (let round = 0; round < 2; round++) {
        const warmed: string[] = [];
        const { done } = pool.warm(version.id, shop.store.target.url, 1_000, (users) => warmed.push(...users.map((u) => u.externalId)));
        expect((await done).users).toBe(users);
        expect(new Set(warmed).size).toBe(users);
        // Its thread ends with the last warm-up.
        expect(pool.backgroundRunning).toBe(false);
      }
      // Live requests never needed it.
      expect((await pool.represent(version.id, [{ items: [1, 2, 3], types: [1, 1, 1] }], 5))[0]!.shortlist.indices.length).toBe(5);
    } finally {
      await pool.close();
    }
  });

  it('builds an urgent load (an analyst waits for it) on a live worker, without starting the background one', async () => {
    const version = await shop.store.prisma.modelVersion.findFirstOrThrow({ where: { active: true } });
    const loads: string[] = [];
    const pool = await InferencePool.start({ workers: 2, background: true, log: () => {}, backgroundGraceMs: 100, onLoad: (worker, from) => loads.push(`${worker} ${from}`) });
    try {
      await pool.load(version.id, version.createdAt, version.artifactPath, { urgent: true });
      expect(loads).toEqual(['0 files', '1 shared']);
      expect(pool.backgroundRunning).toBe(false);
      expect((await pool.represent(version.id, [{ items: [1, 2, 3], types: [1, 1, 1] }], 5))[0]!.shortlist.indices.length).toBe(5);
    } finally {
      await pool.close();
    }
  });

  it('answers bad sessions with 4xx problem+json, never 5xx', async () => {
    const oversized = await shop.call('/v1/sessions/recommendations', { role: 'read', body: { events: Array.from({ length: 1_001 }, () => ({ item: 'sku-1' })) } });
    expect(oversized.status).toBe(400);
    expect(oversized.body.code).toBe('VALIDATION_FAILED');
    // Items the catalogue does not know cannot inform the model: left out, and the answer says so.
    const unknown = await shop.call('/v1/sessions/recommendations', { role: 'read', body: { events: [{ item: 'no-such-item' }, { item: 'sku-3' }] } });
    expect(unknown.status).toBe(200);
    expect(unknown.body.history).toEqual({ events: 2, used: 1 });
    const onlyUnknown = await shop.call('/v1/sessions/recommendations', { role: 'read', body: { events: [{ item: 'no-such-item' }] } });
    expect(onlyUnknown.status).toBe(200);
    expect(onlyUnknown.body.strategy).toBe('popular');
    const badType = await shop.call('/v1/sessions/recommendations', { role: 'read', body: { events: [{ item: 'sku-1', type: '' }] } });
    expect(badType.status).toBe(400);
  });
});

/** How many of this process's threads run at nice value `nice` (Linux: field 19 of /proc/self/task/<tid>/stat). */
function threadsAtNice(nice: number): number {
  return threadsWhere(19, nice);
}

/** How many of this process's threads run under the SCHED_IDLE policy (5, field 41). */
function threadsUnderSchedIdle(): number {
  return threadsWhere(41, 5);
}

/** How many of this process's threads have `value` in field `field` (numbered from 1, as proc(5) does) of their stat. */
function threadsWhere(field: number, value: number): number {
  return readdirSync('/proc/self/task').filter((tid) => {
    const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    // Fields 3 on follow the command name's closing parenthesis.
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[field - 3]) === value;
  }).length;
}

function sum(counts: Record<string, number>): number {
  return Object.values(counts).reduce((a, b) => a + b, 0);
}

/** Histories and batches per worker so far, from /metrics. */
async function workerBatches(shop: ServedShop): Promise<{ histories: Record<string, number>; batches: Record<string, number> }> {
  const text = (await shop.call('/metrics', { role: 'none' })).body as string;
  const read = (name: string): Record<string, number> =>
    Object.fromEntries([...text.matchAll(new RegExp(`${name}\\{worker="([^"]+)"\\} (\\d+)`, 'g'))].map((m) => [m[1]!, Number(m[2])]));
  return { histories: read('attnrec_inference_histories_total'), batches: read('attnrec_inference_batches_total') };
}

/**
 * Loads `version` again under another number (the same files) while asking for the first one's shortlist, one
 * request at a time (`started` runs just before the load begins): every answer is the first's, and so is the new
 * number's after. How many were answered while the load ran.
 */
async function answeredWhileReloading(pool: InferencePool, version: { id: number; createdAt: Date; artifactPath: string }, started: () => void = () => {}): Promise<number> {
  const history = { items: [1, 2, 3], types: [1, 1, 1] };
  const expected = Array.from((await pool.represent(version.id, [history], 5))[0]!.shortlist.indices);
  started();
  let loaded = false;
  const loading = pool.load(version.id + 1_000, version.createdAt, version.artifactPath).then(() => (loaded = true));
  await new Promise((resolve) => setImmediate(resolve)); // the first worker's load is under way
  let answered = 0;
  while (!loaded) {
    const [answer] = await pool.represent(version.id, [history], 5);
    expect(Array.from(answer!.shortlist.indices)).toEqual(expected);
    if (!loaded) answered++;
  }
  await loading;
  const [fromNew] = await pool.represent(version.id + 1_000, [history], 5);
  expect(Array.from(fromNew!.shortlist.indices)).toEqual(expected);
  return answered;
}

/** One worker's histories and batches between two readings of workerBatches. */
function delta(after: Awaited<ReturnType<typeof workerBatches>>, before: Awaited<ReturnType<typeof workerBatches>>, worker: string): { histories: number; batches: number } {
  return { histories: (after.histories[worker] ?? 0) - (before.histories[worker] ?? 0), batches: (after.batches[worker] ?? 0) - (before.batches[worker] ?? 0) };
}
