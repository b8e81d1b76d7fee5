import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { importEvents } from '../src/data/import/import-events.js';
import { DEFAULT_SASREC } from '../src/data/import/sources.js';
import { migrate } from '../src/data/migrate.js';
import { openStore } from '../src/data/store.js';
import { MODEL_DEFAULTS } from '../src/model/config.js';
import { Random } from '../src/random.js';
import { DEFAULT_MEMBERS, trainRun } from '../src/train/train-run.js';
import { DEFAULT_TRAINING } from '../src/train/trainer.js';
import { startServeProcess } from '../src/cli/processes.js';
import { writeSyntheticCsv } from './synthetic-log.js';
// autocannon ships no types; the slice of its API used here is declared below.
// @ts-expect-error -- no declaration file
import autocannonUntyped from 'autocannon';

/**
 * The API under load on loopback: the amazon-games catalogue (23,715 items)
 * and a model of the default shape, the server in its own process (as
 * `npm start` runs it), autocannon in this one. Measures
 *  - recommendations for users drawn uniformly from all 31,013 (a mix of
 *    first requests, which read the history and run the network, and cached
 *    users) at a fixed 1,000 requests/s: latency percentiles with
 *    coordinated omission corrected;
 *    The server first warms its user cache (as it does whenever a model
 *    loads); the hit ratio of each run is reported;
 *  - the same at full speed: the most requests/s one server process gives;
 *  - POST /v1/events with batches of 100 new events: events/s stored;
 *  - recommendations from a second server with the user cache off, where
 *    every request reads the history and runs the network (the worst case:
 *    every shopper new to the server).
 * Accuracy is not the point here: the model is trained for one epoch.
 */
export interface ServeBenchOptions {
  readonly seconds: number;
  /** A synthetic catalogue instead of amazon-games (bench/synthetic-log.ts): events, items, users. */
  readonly synthetic?: { readonly events: number; readonly items: number; readonly users: number };
  readonly trainEpochs: number;
  readonly scratch: string;
  readonly log: (line: string) => void;
}

interface AutocannonResult {
  latency: { p50: number; p90: number; p99: number; p99_9?: number; average: number; max: number };
  requests: { average: number; total: number };
  duration: number;
  non2xx: number;
  errors: number;
  timeouts: number;
}
type Autocannon = (options: Record<string, unknown>) => Promise<AutocannonResult>;
const autocannon = autocannonUntyped as Autocannon;

const READ_KEY = 'bench-read-key-0000';
/**
 * A shop backend's keep-alive pool. autocannon paces each connection with its
 * own timer, so at a fixed rate n connections arrive as bursts of n: with 16
 * the last of each burst waited for 15 others (p99 14 ms at a server p99 of
 * 1 ms with one connection). Four is a common pool size.
 */
const FIXED_RATE_CONNECTIONS = 4;
const WRITE_KEY = 'bench-write-key-0000';

export async function runServeBench(options: ServeBenchOptions): Promise<Record<string, unknown>> {
  mkdirSync(options.scratch, { recursive: true });
  const file = join(options.scratch, 'serve-bench.db');
  for (const suffix of ['', '-wal', '-shm']) rmSync(file + suffix, { force: true });
  const url = `file:${file}`;
  const store = openStore(url);
  let users: string[];
  let items: string[];
  try {
    await migrate(store);
    if (options.synthetic) {
      const { events, items: catalogue, users: shoppers } = options.synthetic;
      const csv = join(options.scratch, `serve-${events}-${catalogue}-${shoppers}.csv`);
      if (!existsSync(csv)) await writeSyntheticCsv(csv, { events, items: catalogue, users: shoppers, seed: 11 });
      await importEvents(store, { events: { path: csv, format: 'csv', timeUnit: 'auto', sasrec: DEFAULT_SASREC }, skipBad: false, eventTypes: 'register' });
    } else {
      const sample = join(import.meta.dirname, '..', 'samples', 'amazon-games.txt');
      await importEvents(store, { events: { path: sample, format: 'sasrec', timeUnit: 'auto', sasrec: DEFAULT_SASREC }, skipBad: false, eventTypes: 'register' });
    }
    options.log(`training ${options.trainEpochs} epoch(s) for a model of the default shape (${DEFAULT_MEMBERS} members)`);
    await trainRun(store, {
      model: { maxLength: MODEL_DEFAULTS.maxLength, dim: MODEL_DEFAULTS.dim, heads: MODEL_DEFAULTS.heads, blocks: MODEL_DEFAULTS.blocks },
      training: DEFAULT_TRAINING,
      epochs: options.trainEpochs,
      members: DEFAULT_MEMBERS, // as the training job: serving an ensemble costs a forward pass per member
      patience: options.trainEpochs,
      backend: 'auto',
      artifactsRoot: join(options.scratch, 'serve-models'),
      sampledNegatives: 100,
      validUsers: 1_000,
      activate: 'always',
    });
    users = (await store.prisma.user.findMany({ select: { externalId: true } })).map((u) => u.externalId);
    items = (await store.prisma.item.findMany({ select: { externalId: true } })).map((i) => i.externalId);
  } finally {
    await store.close();
  }

  const server = await startServerProcess(url, []);
  try {
    options.log('waiting for the user-cache warm-up');
    const warmed = await waitForWarmUp(server.url);
    options.log(`user cache warmed: ${warmed.total} users in ${warmed.seconds.toFixed(1)} s`);
    const random = new Random(1);
    const auth = { authorization: `Bearer ${READ_KEY}` };
    const recommendations = (): Record<string, unknown> => ({
      method: 'GET',
      headers: auth,
      setupRequest: (request: Record<string, unknown>) => ({ ...request, path: `/v1/users/${users[random.int(users.length)]}/recommendations?k=10` }),
    });
    options.log(`JIT warm-up: ${Math.min(5, options.seconds)} s at full speed`);
    await autocannon({ url: server.url, connections: 8, duration: Math.min(5, options.seconds), requests: [recommendations()] });
    const before = await cacheCounts(server.url);
    options.log('recommendations at a fixed 1,000 requests/s');
    const fixed = await autocannon({ url: server.url, connections: FIXED_RATE_CONNECTIONS, duration: options.seconds, overallRate: 1_000, requests: [recommendations()] });
    const mid = await cacheCounts(server.url);
    options.log('recommendations at full speed');
    const full = await autocannon({ url: server.url, connections: 8, duration: options.seconds, requests: [recommendations()] });
    const after = await cacheCounts(server.url);
    const hitRatio = (a: { hit: number; miss: number }, b: { hit: number; miss: number }): number => round((b.hit - a.hit) / Math.max(1, b.hit - a.hit + b.miss - a.miss), 3);

    options.log('events: batches of 100 new events');
    let sequence = 0;
    const events = await autocannon({
      url: server.url,
      connections: 4,
      duration: options.seconds,
      requests: [
        {
          method: 'POST',
          path: '/v1/events',
          headers: { authorization: `Bearer ${WRITE_KEY}`, 'content-type': 'application/json' },
          setupRequest: (request: Record<string, unknown>) => {
            const batch = Array.from({ length: 100 }, () => ({
              userId: users[random.int(users.length)],
              itemId: items[random.int(items.length)],
              type: 'view',
              eventId: `bench-${++sequence}`,
            }));
            return { ...request, body: JSON.stringify({ events: batch }) };
          },
        },
      ],
    });
    const peakRssMb = serverPeakRssMb(server.pid);
    await server.kill('SIGTERM');

    options.log('recommendations with the user cache off (every request reads the history and runs the network)');
    const uncachedServer = await startServerProcess(url, ['--user-cache', '0']);
    let uncached: AutocannonResult;
    try {
      await autocannon({ url: uncachedServer.url, connections: 8, duration: Math.min(5, options.seconds), requests: [recommendations()] });
      uncached = await autocannon({ url: uncachedServer.url, connections: 8, duration: options.seconds, requests: [recommendations()] });
    } finally {
      await uncachedServer.kill('SIGTERM');
    }
    const failed = (r: AutocannonResult): number => r.non2xx + r.errors + r.timeouts;
    return {
      dataset: options.synthetic ? `synthetic (${options.synthetic.events} events, ${options.synthetic.users} users, bench/synthetic-log.ts)` : 'amazon-games',
      items: items.length,
      users: users.length,
      model: { dim: MODEL_DEFAULTS.dim, blocks: MODEL_DEFAULTS.blocks, members: DEFAULT_MEMBERS },
      seconds_per_run: options.seconds,
      recs: {
        route: 'GET /v1/users/:id/recommendations?k=10',
        offered_rps: 1_000,
        connections: FIXED_RATE_CONNECTIONS,
        rps: round(fixed.requests.average),
        p50_ms: fixed.latency.p50,
        p90_ms: fixed.latency.p90,
        p99_ms: fixed.latency.p99,
        max_ms: fixed.latency.max,
        failed: failed(fixed),
        user_cache_hit_ratio: hitRatio(before, mid),
      },
      recs_max: { connections: 8, rps: round(full.requests.average), p50_ms: full.latency.p50, p99_ms: full.latency.p99, failed: failed(full), user_cache_hit_ratio: hitRatio(mid, after) },
      recs_uncached: { connections: 8, rps: round(uncached.requests.average), p50_ms: uncached.latency.p50, p99_ms: uncached.latency.p99, failed: failed(uncached) },
      user_cache_warm_up: { users: warmed.total, seconds: round(warmed.seconds) },
      events: {
        route: 'POST /v1/events (100 per request)',
        requests_per_s: round(events.requests.average),
        events_per_s: round(events.requests.average * 100),
        p50_ms: events.latency.p50,
        p99_ms: events.latency.p99,
        failed: failed(events),
      },
      peak_rss_mb: peakRssMb,
      targets: { recs_p99_ms: 10, recs_rps: 1_000, events_per_s: 20_000 },
    };
  } finally {
    await server.kill('SIGTERM');
  }
}

/** Polls /health/ready until the server says its user cache is warm. */
async function waitForWarmUp(url: string): Promise<{ total: number; seconds: number }> {
  const started = performance.now();
  for (;;) {
    const ready = (await (await fetch(`${url}/health/ready`)).json()) as { userCache?: { warmUp?: { finished: boolean; total: number } } };
    const warmUp = ready.userCache?.warmUp;
    if (warmUp?.finished && warmUp.total > 0) return { total: warmUp.total, seconds: (performance.now() - started) / 1000 };
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** The server as `npm start` runs it, without rate limit or model polling, with the benchmark's keys. */
function startServerProcess(databaseUrl: string, extra: string[]): ReturnType<typeof startServeProcess> {
  return startServeProcess(['--database-url', databaseUrl, '--rate-limit', '0', '--model-poll', '0', ...extra], { ATTNREC_API_KEYS: `read:${READ_KEY},write:${WRITE_KEY}` });
}

/** The server's user-cache hit and miss counters, from /metrics. */
async function cacheCounts(url: string): Promise<{ hit: number; miss: number }> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const count = (result: string): number => Number(new RegExp(`attnrec_user_cache_total\\{result="${result}"\\} (\\d+)`).exec(text)?.[1] ?? 0);
  return { hit: count('hit'), miss: count('miss') };
}

/** The server process's peak resident set (VmHWM), Linux only. */
function serverPeakRssMb(pid: number): number | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = /VmHWM:\s+(\d+) kB/.exec(status)?.[1];
    return kb ? Math.round(Number(kb) / 1024) : null;
  } catch {
    return null;
  }
}

function round(x: number, digits = 1): number {
  return Math.round(x * 10 ** digits) / 10 ** digits;
}
