/**
 * What recording impressions costs a cached request's latency (issue 19: at most 1 ms of p99 at
 * 1,000 req/s), measured so that the machine's drift cannot pass for it. Two servers run side by side
 * on copies of the serve benchmark's store, `--impressions on` and `off` (attribution on, as by
 * default), each warmed fully, one at a time. Then cached-user GETs at a fixed rate go to one server
 * for a slice (10 s), then to the other, alternating which goes first, for N slices each. A slice of
 * each kind runs within seconds of the other, so the paired difference of their p99s (on − off) is
 * the cost; its mean over the slices is the estimate, since each server runs first in half of them.
 *
 *   npm run bench -- serve --quick          # once, to build bench/scratch/serve-bench.db
 *   npx tsx bench/impression-cost.ts [--slices 16] [--seconds 10] [--rate 1000] [--workers 2] [--no-write]
 *   npx tsx bench/impression-cost.ts --variant 'batch100=--impressions on --impression-batch 100'
 *
 * --variant name=flags (repeatable) adds a server with those flags; the defaults are on and off, and
 * every variant's cost is its paired difference from off. With more than two servers the order of a
 * slice rotates, so each runs in each position equally often.
 *
 * Prints one JSON document and writes it to bench/results/impression-cost-<timestamp>.json: per
 * slice p50/p99 and the server's CPU per request (all threads, and the event loop's main thread),
 * summaries, and the paired p99 differences.
 */
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { integerFlag } from '../src/cli/job.js';
import { ROOT } from '../src/cli/processes.js';
import { runLoad } from './load-generator.js';
import { machineFacts, median, writeBenchResult } from './machine.js';
import { writeSummary } from './summary.js';
import { readHistories, Workloads, type Histories } from './serve-workloads.js';
import { statCpuSeconds } from './thread-cpu.js';
import { SCRATCH_SERVER_KEYS, serverVariants, startScratchServer } from './warm-server.js';

const { values } = parseArgs({
  options: {
    slices: { type: 'string', default: '16' },
    seconds: { type: 'string', default: '10' },
    rate: { type: 'string', default: '1000' },
    workers: { type: 'string', default: '2' },
    variant: { type: 'string', multiple: true, default: [] },
    'no-write': { type: 'boolean', default: false },
  },
});
const slices = integerFlag('slices', values.slices, 2, 200);
const seconds = integerFlag('seconds', values.seconds, 2, 120);
const rate = integerFlag('rate', values.rate, 10, 20_000);
const workers = integerFlag('workers', values.workers, 1, 64);
const variants = serverVariants(values.variant ?? [], [
  ['on', ['--impressions', 'on']],
  ['off', ['--impressions', 'off']],
]);
const keys = SCRATCH_SERVER_KEYS;
const log = (line: string): void => void process.stderr.write(`${line}\n`);

/** CPU time (ms) of a process, or of one of its threads. */
function cpuMs(pid: number, tid?: number): number {
  return statCpuSeconds(tid ? `/proc/${pid}/task/${tid}/stat` : `/proc/${pid}/stat`) * 1_000;
}

interface Server {
  readonly name: string;
  readonly port: number;
  readonly process: ChildProcess;
  work?: Workloads;
}

async function startServer(name: string, flags: readonly string[], histories: { value?: Histories }, k: number): Promise<Server> {
  const port = 18_000 + k * 500 + Math.floor(Math.random() * 500);
  const server = await startScratchServer({
    name: `impression-cost-${name}`,
    flags,
    workers,
    port,
    onStore: async (store) => void (histories.value ??= await readHistories(store)),
  });
  return { name, port, process: server.process };
}

const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
const round = (x: number, digits = 3): number => Math.round(x * 10 ** digits) / 10 ** digits;

const started = new Date();
const histories: { value?: Histories } = {};
const servers: Server[] = [];
try {
  for (const [name, flags] of variants) {
    log(`starting the server '${name}' (${flags.join(' ')}) and warming its user cache`);
    servers.push(await startServer(name, flags, histories, servers.length));
  }
  for (const s of servers) {
    s.work = new Workloads(histories.value!, `http://127.0.0.1:${s.port}`, keys, 9);
    await runLoad({ host: '127.0.0.1', port: s.port, mode: 'open', rate, connections: 16, seconds: 5, next: () => s.work!.idle() });
  }
  type Slice = { slice: number; p50_ms: number; p99_ms: number; server_cpu_ms_per_request: number; event_loop_cpu_ms_per_request: number };
  const results = new Map<string, Slice[]>(servers.map((s) => [s.name, []]));
  for (let i = 0; i < slices; i++) {
    // The order rotates every two slices and is reversed every other slice, so over each 2n slices every
    // one of the n servers runs in every position equally often.
    const rotated = servers.map((_, j) => servers[(j + Math.floor(i / 2)) % servers.length]!);
    for (const s of i % 2 === 0 ? rotated : [...rotated].reverse()) {
      const pid = s.process.pid!;
      const [all, main] = [cpuMs(pid), cpuMs(pid, pid)];
      const r = await runLoad({ host: '127.0.0.1', port: s.port, mode: 'open', rate, connections: 16, seconds, next: () => s.work!.idle() });
      const per = (ms: number): number => round(ms / r.completed);
      if (r.request.p50_ms === null || r.request.p99_ms === null) throw new Error(`no request of slice ${i} to '${s.name}' completed`);
      results.get(s.name)!.push({ slice: i, p50_ms: r.request.p50_ms, p99_ms: r.request.p99_ms, server_cpu_ms_per_request: per(cpuMs(pid) - all), event_loop_cpu_ms_per_request: per(cpuMs(pid, pid) - main) });
    }
    log(`slice ${i + 1}/${slices}: p99 ${[...results].map(([name, xs]) => `${name} ${xs[i]!.p99_ms} ms`).join(', ')}`);
  }
  const summary = (xs: readonly Slice[]) => ({
    p99_ms_median: round(median(xs.map((x) => x.p99_ms)), 2),
    p50_ms_median: round(median(xs.map((x) => x.p50_ms)), 2),
    server_cpu_ms_per_request_mean: round(mean(xs.map((x) => x.server_cpu_ms_per_request))),
    event_loop_cpu_ms_per_request_mean: round(mean(xs.map((x) => x.event_loop_cpu_ms_per_request))),
  });
  // The cost of each variant: the mean of its paired p99 differences from off, since the order of the
  // slices puts every server in every position equally often.
  const off = results.get('off')!;
  const costs = Object.fromEntries(
    [...results].filter(([name]) => name !== 'off').map(([name, xs]) => {
      const diffs = xs.map((x, i) => round(x.p99_ms - off[i]!.p99_ms, 2));
      const cpu = round(mean(xs.map((x) => x.server_cpu_ms_per_request)) - mean(off.map((x) => x.server_cpu_ms_per_request)));
      return [name, { p99_cost_ms: { mean: round(mean(diffs), 2), median: round(median(diffs), 2), per_slice: diffs }, server_cpu_cost_ms_per_request: cpu }];
    }),
  );
  const body = {
    benchmark: 'impression-cost',
    started: started.toISOString(),
    machine: machineFacts(),
    method: `cached-user GETs at ${rate} req/s over 16 connections (open loop), ${slices} slices of ${seconds} s per server in rotating order, servers with --workers ${workers}`,
    variants: Object.fromEntries([...variants].map(([name, flags]) => [name, flags.join(' ')])),
    summaries: Object.fromEntries([...results].map(([name, xs]) => [name, summary(xs)])),
    costs,
    slices: Object.fromEntries(results),
  };
  const text = JSON.stringify(body, null, 2);
  process.stdout.write(`${text}\n`);
  if (!values['no-write']) {
    log(`wrote ${writeBenchResult(join(ROOT, 'bench', 'results'), 'impression-cost', started, text)}`);
    writeSummary(join(ROOT, 'bench', 'results'));
  }
} finally {
  for (const s of servers) s.process.kill('SIGTERM');
  await Promise.all(servers.map((s) => (s.process.exitCode !== null ? undefined : new Promise((resolve) => s.process.once('exit', resolve)))));
}
