/**
 * A short latency probe of the server at moderate rates, for trying server
 * or Node.js flags (docs/serving-performance.md): 250 req/s of the serve
 * benchmark's (d) mix (active shoppers and cached users), then 1,000 req/s of
 * cached users, then 250 req/s of 30-event sessions, open loop over 16
 * connections. It serves a copy of the serve benchmark's store, so run
 * `npm run bench -- serve` once first. The server's stdout and stderr go to
 * bench/scratch/latency-probe.log (with --trace-gc unless --no-trace-gc).
 *
 *   npx tsx bench/latency-probe.ts [--seconds 40] [--node-flags "--max-semi-space-size=64"] [-- <server flags>]
 *
 * Prints one JSON line: p50/p99/max per phase and the flags used.
 */
import { copyFileSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { spawn } from 'node:child_process';
import { openStore } from '../src/data/store.js';
import { ROOT } from '../src/cli/processes.js';
import { runLoad, type LatencyStats } from './load-generator.js';
import { readHistories, Workloads } from './serve-workloads.js';
import { untilUserCacheWarm } from './warm-server.js';

const { values, positionals } = parseArgs({
  options: { seconds: { type: 'string', default: '40' }, 'node-flags': { type: 'string', default: '' }, 'no-trace-gc': { type: 'boolean', default: false } },
  allowPositionals: true,
});
const seconds = Number(values.seconds);
if (!Number.isFinite(seconds) || seconds < 2) throw new Error(`--seconds must be a number ≥ 2; got '${values.seconds}'`);
const scratch = join(ROOT, 'bench', 'scratch');
const database = join(scratch, 'latency-probe.db');
copyFileSync(join(scratch, 'serve-bench.db'), database);
const store = openStore(`file:${database}`);
const histories = await readHistories(store);
await store.close();

const keys = { read: 'probe-read-key-0000', write: 'probe-write-key-000' };
const port = 18_000 + Math.floor(Math.random() * 1_000);
const log = openSync(join(scratch, 'latency-probe.log'), 'w');
const nodeFlags = values['node-flags'].split(' ').filter(Boolean);
const server = spawn(
  process.execPath,
  [...nodeFlags, ...(values['no-trace-gc'] ? [] : ['--trace-gc']), '--import', 'tsx', join(ROOT, 'jobs', 'serve.ts'), '--port', String(port), '--database-url', `file:${database}`, '--rate-limit', '0', '--model-poll', '0', ...positionals],
  { cwd: ROOT, env: { ...process.env, ATTNREC_API_KEYS: `read:${keys.read},write:${keys.write}` }, stdio: ['ignore', log, log] },
);
try {
  // The user cache warms fully before the first phase: these are steady-state latencies.
  await untilUserCacheWarm(server, port, 'bench/scratch/latency-probe.log');
  const work = new Workloads(histories, `http://127.0.0.1:${port}`, keys, 9);
  const phase = async (rate: number, phaseSeconds: number, next: () => ReturnType<Workloads['idle']>) => {
    const result = await runLoad({ host: '127.0.0.1', port, mode: 'open', rate, connections: 16, seconds: phaseSeconds, next });
    const brief = (s: LatencyStats) => ({ p50_ms: s.p50_ms, p99_ms: s.p99_ms, max_ms: s.max_ms });
    return Object.fromEntries(Object.entries(result.steps).map(([name, stats]) => [name, brief(stats)]));
  };
  const mix = await phase(250, seconds, () => work.mix(0.5));
  const cached = await phase(1_000, seconds / 2, () => work.idle());
  const sessions = await phase(250, seconds / 2, () => work.session(30));
  console.log(JSON.stringify({ node_flags: nodeFlags, server_flags: positionals, seconds, mix_250: mix, cached_1000: cached, sessions_30_at_250: sessions }));
} finally {
  server.kill('SIGTERM');
  await new Promise((resolve) => server.once('exit', resolve));
}
