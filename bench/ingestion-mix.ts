/**
 * Event ingestion while the production loop works (issue 17's ≥ 20,000 events/s, alone and beside active
 * shoppers; issue 19's attribution): one server at a time per variant (default: as `npm start` runs, and
 * with `--attribution-window 0`), each on a fresh copy of the serve benchmark's store, warmed. Then, as in
 * `npm run bench -- serve`: cached-user GETs at 3,000 req/s for 20 s and active shoppers at 500 pairs/s
 * for 10 s (impressions for the attributor to look up), ingestion alone (batches of 100 over 4
 * connections), 1 s later ingestion over 4 connections (`--mixed-connections`) beside active shoppers at 500 pairs/s offered; then
 * how long the attributor takes to catch up once the load stops (attnrec_attribution_backlog_events back
 * to 0), and the WAL's largest size during the runs. Each ingestion phase reports the server's CPU by
 * thread (bench/thread-cpu.ts: the event loop, attnrec-live-<n>, attnrec-writer, …) and the load
 * generator's, in ms a second: where the 2 cores went; and the WAL checkpoint's held rounds, during which
 * every write waits (attnrec_wal_held_rounds_total, attnrec_wal_held_seconds_total).
 *
 * `--mixed-connections` sets the connections of the ingestion beside active shoppers (default 4, as issue 17
 * states and the serve benchmark's scenario (e) mixed runs since 2026-12-04; 1 before).
 *
 * `--new-items <n>` makes n of each ingested batch's 100 events name an item never seen before (created on
 * first sight, as a shop's launches are; default 0).
 *
 * `--members 1` serves the one-member shape's store (bench/scratch/serve-bench-1-member.db, built by
 * `npm run bench -- serve --members 1`) instead of the default model's.
 *
 *   npm run bench -- serve --quick          # once, to build bench/scratch/serve-bench.db
 *   npx tsx bench/ingestion-mix.ts [--seconds 20] [--workers 2] [--mixed-connections 4] [--active-rate 500] [--members 1] [--new-items 5] [--variant 'name=server flags' …] [--no-write]
 *
 * Prints one JSON document and writes it to bench/results/ingestion-mix-<timestamp>.json.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { integerFlag } from '../src/cli/job.js';
import { ROOT } from '../src/cli/processes.js';
import { runLoad, type LoadResult } from './load-generator.js';
import { machineFacts, writeBenchResult } from './machine.js';
import { DEFAULT_MEMBERS } from '../src/train/train-run.js';
import { INGEST_BATCH, INGEST_CONNECTIONS, MIXED_ACTIVE_RATE, servedShapeSuffix } from './serve-bench.js';
import { readHistories, Workloads, type Histories } from './serve-workloads.js';
import { threadCpu, threadCpuPerSecond } from './thread-cpu.js';
import { SCRATCH_SERVER_KEYS, serverVariants, startScratchServer } from './warm-server.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '20' },
    workers: { type: 'string', default: '2' },
    'mixed-connections': { type: 'string', default: String(INGEST_CONNECTIONS) },
    'active-rate': { type: 'string', default: String(MIXED_ACTIVE_RATE) },
    members: { type: 'string', default: String(DEFAULT_MEMBERS) },
    'new-items': { type: 'string', default: '0' },
    variant: { type: 'string', multiple: true, default: [] },
    'no-write': { type: 'boolean', default: false },
  },
});
const seconds = integerFlag('seconds', values.seconds, 2, 600);
const workers = integerFlag('workers', values.workers, 1, 64);
const mixedConnections = integerFlag('mixed-connections', values['mixed-connections'], 1, 16);
/** The active shoppers' rate (pairs/s offered) beside the ingestion (the impressions before it are always at 500). */
const activeRate = integerFlag('active-rate', values['active-rate'], 1, 5_000);
/** The served shape: the store `npm run bench -- serve --members <n>` prepared (serve-bench.db for the default). */
const members = integerFlag('members', values.members, 1, 64);
const source = `serve-bench${servedShapeSuffix(members)}`;
/** Items never seen before in each ingested batch (created on first sight, as a shop's launches are). */
const newItems = integerFlag('new-items', values['new-items'], 0, INGEST_BATCH);
const IMPRESSIONS_RATE = 500;
const variants = serverVariants(values.variant?.length ? values.variant : ['default=', 'no-attribution=--attribution-window 0']);

const CATCH_UP_LIMIT_S = 300;
const keys = SCRATCH_SERVER_KEYS;
const log = (line: string): void => void process.stderr.write(`${line}\n`);
const round = (x: number, digits = 2): number => Math.round(x * 10 ** digits) / 10 ** digits;

/** A metric's value as the server reports it (0 when absent). */
async function metric(port: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const line = new RegExp(`^${name.replace(/[{}"]/g, '\\$&')} (\\S+)$`, 'm').exec(text);
  return line ? Number(line[1]) : 0;
}

/** The bulk governor's waits for the shop's batches (attnrec_bulk_batch_wait_seconds, work="ingestion"): how many, and their seconds in all. */
const BULK_WAIT_COUNT = 'attnrec_bulk_batch_wait_seconds_count{work="ingestion"}';
const BULK_WAIT_SUM = 'attnrec_bulk_batch_wait_seconds_sum{work="ingestion"}';

/** The attributor's backlog as the server reports it (events stored but not yet attributed). */
const backlog = (port: number): Promise<number> => metric(port, 'attnrec_attribution_backlog_events');

const summary = (r: LoadResult, perRequest = 1) => ({
  per_s: Math.round(r.rps * perRequest),
  p50_ms: r.request.p50_ms,
  p99_ms: r.request.p99_ms,
  failed: r.failed,
});

/** The shoppers' two requests apart: the event they send, then the recommendations they ask for. */
const stepLatencies = (r: LoadResult) => ({
  event_p50_ms: r.steps['event']?.p50_ms ?? null,
  event_p99_ms: r.steps['event']?.p99_ms ?? null,
  recommendations_p50_ms: r.steps['recommendations']?.p50_ms ?? null,
  recommendations_p99_ms: r.steps['recommendations']?.p99_ms ?? null,
});

async function measure(name: string, flags: readonly string[], histories: { value?: Histories }): Promise<Record<string, unknown>> {
  const port = 19_000 + Math.floor(Math.random() * 1_000);
  const { process: server, database } = await startScratchServer({
    name: `ingestion-mix-${name}`,
    flags,
    workers,
    port,
    source,
    onStore: async (store) => void (histories.value ??= await readHistories(store)),
  });
  let walPeak = 0;
  const sampler = setInterval(() => {
    if (existsSync(`${database}-wal`)) walPeak = Math.max(walPeak, statSync(`${database}-wal`).size);
  }, 250);
  try {
    const work = new Workloads(histories.value!, `http://127.0.0.1:${port}`, keys, 9);
    const base = { host: '127.0.0.1', port };
    log(`${name}: impressions to look up (cached GETs at 3,000 req/s, active shoppers at ${IMPRESSIONS_RATE} pairs/s)`);
    await runLoad({ ...base, mode: 'open', rate: 3_000, connections: 16, seconds, next: () => work.idle() });
    await runLoad({ ...base, mode: 'open', rate: IMPRESSIONS_RATE, connections: 16, seconds: Math.max(2, seconds / 2), next: () => work.active() });
    /** The server's CPU per thread during `phase`, ms per second of wall time, and the WAL checkpoint's held rounds in it. */
    const threadsDuring = async <T>(phase: () => Promise<T>): Promise<[T, Record<string, number>, { rounds: number; held_ms_per_s: number }, { batches: number; mean_ms: number }]> => {
      const walBefore = [await metric(port, 'attnrec_wal_held_rounds_total'), await metric(port, 'attnrec_wal_held_seconds_total')] as const;
      const waitBefore = [await metric(port, BULK_WAIT_COUNT), await metric(port, BULK_WAIT_SUM)] as const;
      const [before, from, generator] = [threadCpu(server.pid!), performance.now(), process.cpuUsage()];
      const result = await phase();
      const wall = (performance.now() - from) / 1_000;
      const { user, system } = process.cpuUsage(generator);
      const cpu = { ...threadCpuPerSecond(before, threadCpu(server.pid!), wall), 'load generator (this process)': Math.round((user + system) / 1_000 / wall) };
      const rounds = (await metric(port, 'attnrec_wal_held_rounds_total')) - walBefore[0];
      const heldMs = ((await metric(port, 'attnrec_wal_held_seconds_total')) - walBefore[1]) * 1_000;
      const waited = (await metric(port, BULK_WAIT_COUNT)) - waitBefore[0];
      const waitedMs = ((await metric(port, BULK_WAIT_SUM)) - waitBefore[1]) * 1_000;
      return [result, cpu, { rounds, held_ms_per_s: round(heldMs / wall, 1) }, { batches: waited, mean_ms: waited > 0 ? round(waitedMs / waited, 1) : 0 }];
    };
    log(`${name}: ingestion alone`);
    const [alone, aloneThreads, aloneWal, aloneWait] = await threadsDuring(() => runLoad({ ...base, mode: 'closed', connections: INGEST_CONNECTIONS, seconds, next: () => work.ingestBatch(INGEST_BATCH, newItems) }));
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    log(`${name}: ingestion beside active shoppers`);
    const [[ingestion, active], mixedThreads, mixedWal, mixedWait] = await threadsDuring(() =>
      Promise.all([
        runLoad({ ...base, mode: 'closed', connections: mixedConnections, seconds, next: () => work.ingestBatch(INGEST_BATCH, newItems) }),
        runLoad({ ...base, mode: 'open', rate: activeRate, connections: 16, seconds, next: () => work.active() }),
      ]),
    );
    const stopped = performance.now();
    const left = await backlog(port);
    let remaining = left;
    while (remaining > 0 && performance.now() - stopped < CATCH_UP_LIMIT_S * 1_000) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      remaining = await backlog(port);
    }
    const result = {
      flags: flags.join(' '),
      ingestion_alone_events: summary(alone, INGEST_BATCH),
      ingestion_alone_server_cpu_ms_per_s: aloneThreads,
      ingestion_alone_wal_held: aloneWal,
      ingestion_alone_governor_wait: aloneWait,
      beside_active_shoppers: { ingestion_events: summary(ingestion, INGEST_BATCH), active_pairs: summary(active), ...stepLatencies(active), server_cpu_ms_per_s: mixedThreads, wal_held: mixedWal, governor_wait: mixedWait },
      attribution_backlog_when_load_stopped_events: left,
      attribution_caught_up_s: remaining === 0 ? round((performance.now() - stopped) / 1_000, 1) : null,
      wal_peak_mb: round(walPeak / 1e6, 1),
    };
    log(`${name}: ${JSON.stringify(result)}`);
    return result;
  } finally {
    clearInterval(sampler);
    server.kill('SIGTERM');
    if (server.exitCode === null) await new Promise((resolve) => server.once('exit', resolve));
  }
}

const started = new Date();
const histories: { value?: Histories } = {};
const results: Record<string, unknown> = {};
for (const [name, flags] of variants) results[name] = await measure(name, flags, histories);
const body = {
  benchmark: 'ingestion-mix',
  started: started.toISOString(),
  machine: machineFacts(),
  members,
  new_items_per_batch: newItems,
  method: `per variant, one server (--workers ${workers}) on a fresh copy of bench/scratch/${source}.db, warmed; cached GETs at 3,000 req/s for ${seconds} s and active shoppers at ${IMPRESSIONS_RATE} pairs/s for ${Math.max(2, seconds / 2)} s; ingestion alone (batches of ${INGEST_BATCH}${newItems > 0 ? `, ${newItems} of each naming an item never seen before` : ''}, ${INGEST_CONNECTIONS} connections, closed loop, ${seconds} s); 1 s later ingestion (${mixedConnections} connection${mixedConnections === 1 ? '' : 's'}) beside active shoppers at ${activeRate} pairs/s offered (${seconds} s); the server's CPU per thread in each of the two (ms a second, bench/thread-cpu.ts) and the WAL checkpoint's held rounds (attnrec_wal_held_rounds_total, the ms a second writes were held) and the bulk governor's waits for the shop's batches (attnrec_bulk_batch_wait_seconds, their mean); then the seconds until attnrec_attribution_backlog_events is 0 (polled every 0.5 s, at most ${CATCH_UP_LIMIT_S} s); the WAL file's largest size sampled every 250 ms`,
  results,
};
const text = JSON.stringify(body, null, 2);
process.stdout.write(`${text}\n`);
if (!values['no-write']) log(`wrote ${writeBenchResult(join(ROOT, 'bench', 'results'), 'ingestion-mix', started, text)}`);
