import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createInterface } from 'node:readline';
import { PerformanceObserver, constants } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import express from 'express';
import { createExpressServer } from '../src/serve/http-server.js';
import { httpRequest, latencyStats, runLoad, type LatencyStats } from './load-generator.js';
import { statCpuSeconds } from './thread-cpu.js';

/**
 * The latency floor of this machine for a cached recommendation: what a
 * server that does no work at all reaches under the serve benchmark's load
 * generator, measured in the same run, so scenario (c)'s p99 can be read
 * against what HTTP on these cores allows.
 *
 * Each server runs in a child process of its own and answers
 * `GET /v1/users/:id/recommendations` with a fixed JSON body the size of a
 * real 10-item answer:
 *   - `node_http`: node:http, the body written as is;
 *   - `express`: an Express app as apps usually build it (`app.listen`; the
 *     JSON body parser and a router of 13 routes, `res.json`);
 *   - `express_born`: the same app served through `createExpressServer`
 *     (src/serve/http-server.ts), as the attnrec server is.
 * The load: open loop at `rate` req/s over 16 keep-alive connections (as the
 * serve benchmark's fixed-rate runs), a 3-s warm-up, then `runs` runs of
 * `seconds`. Each server reports its event loop's GC pauses over the
 * measured runs (PerformanceObserver 'gc' entries), and each run the CPU a
 * request cost the server (every thread) and the load generator: what HTTP
 * costs before attnrec does anything (an active shopper's pair is two
 * requests).
 *
 *   npx tsx bench/http-floor.ts [rate=1000] [seconds=15] [runs=2]
 * prints the JSON.
 */
export type FloorServer = 'node_http' | 'express' | 'express_born';

export interface FloorRun {
  readonly p50_ms: number;
  readonly p99_ms: number;
  readonly max_ms: number;
  /** The server process's CPU (every thread) per answered request, µs; null where /proc cannot be read. */
  readonly server_cpu_us_per_request: number | null;
  /** The load generator's own CPU per answered request, µs. */
  readonly load_generator_cpu_us_per_request: number;
}

export interface FloorResult {
  readonly server: FloorServer;
  readonly runs: FloorRun[];
  readonly gc: GcSummary;
}

export interface GcSummary {
  readonly scavenges: number;
  readonly scavenge_median_ms: number;
  readonly scavenge_p90_ms: number;
  readonly scavenge_max_ms: number;
  readonly mark_compacts: number;
  readonly paused_ms: number;
}

export interface HttpFloor {
  readonly rate: number;
  readonly seconds: number;
  readonly connections: number;
  readonly body_bytes: number;
  readonly servers: FloorResult[];
}

/** Above this p99 (ms) of the floor's servers, a run's latency targets say more about the machine than the server: (c)'s target. */
export const NOISY_FLOOR_MS = 10;

/**
 * The note every latency target of a serve run carries when even a server that does no work, as attnrec serves
 * it (express_born), had a p99 past NOISY_FLOOR_MS in its best run on this machine; else undefined.
 */
export function noisyMachineNote(floor: Pick<HttpFloor, 'rate' | 'servers'>): string | undefined {
  const p99s = (floor.servers.find((s) => s.server === 'express_born')?.runs ?? []).map((r) => r.p99_ms);
  if (p99s.length === 0) return undefined;
  const best = Math.min(...p99s);
  return best > NOISY_FLOOR_MS
    ? `even a server doing no work had a p99 of ${best} ms at ${floor.rate} req/s on this machine in this run (the HTTP floor; over ${NOISY_FLOOR_MS} ms): this tail is the machine's as much as the server's`
    : undefined;
}

const CONNECTIONS = 16;
const SERVERS: readonly FloorServer[] = ['node_http', 'express', 'express_born'];

/** A 10-item answer shaped like the API's (ids, probabilities, category, price). */
export const FLOOR_BODY = JSON.stringify({
  userId: '12345',
  modelVersion: 1,
  items: Array.from({ length: 10 }, (_, i) => ({ itemId: String(10_000 + i * 37), probability: 0.0123456789 / (i + 1), score: 7.123456 - i / 7, category: 'Video Games', price: 19.99 + i })),
});

/** Runs every floor server in turn under the same load. */
export async function measureHttpFloor(options: { rate: number; seconds: number; runs: number; log?: (line: string) => void }): Promise<HttpFloor> {
  const servers: FloorResult[] = [];
  for (const server of SERVERS) {
    options.log?.(`  floor: ${server}, ${options.rate} req/s, ${options.runs} × ${options.seconds} s`);
    servers.push(await measureOne(server, options));
  }
  return { rate: options.rate, seconds: options.seconds, connections: CONNECTIONS, body_bytes: Buffer.byteLength(FLOOR_BODY), servers };
}

async function measureOne(server: FloorServer, options: { rate: number; seconds: number; runs: number }): Promise<FloorResult> {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--serve', server], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const line = async (): Promise<string> => String((await lines.next()).value);
  try {
    const port = Number(await line());
    const step = httpRequest('recommendations', 'GET', '/v1/users/12345/recommendations?k=10', { host: '127.0.0.1' });
    const load = (seconds: number) => runLoad({ host: '127.0.0.1', port, mode: 'open', rate: options.rate, connections: CONNECTIONS, seconds, next: () => [step] });
    await load(3);
    child.stdin.write('gc-reset\n');
    await line();
    const runs: FloorRun[] = [];
    for (let i = 0; i < options.runs; i++) {
      const serverBefore = processCpuSeconds(child.pid);
      const generatorBefore = process.cpuUsage();
      const result = await load(options.seconds);
      const generator = process.cpuUsage(generatorBefore);
      const serverAfter = processCpuSeconds(child.pid);
      const stats: LatencyStats | undefined = result.steps.recommendations;
      if (result.failed > 0 || result.abandoned > 0 || !stats || stats.p99_ms === null) throw new Error(`floor server ${server}: ${result.failed} failed, ${result.abandoned} abandoned requests`);
      runs.push({
        p50_ms: stats.p50_ms!,
        p99_ms: stats.p99_ms,
        max_ms: stats.max_ms!,
        server_cpu_us_per_request: serverBefore === null || serverAfter === null ? null : Math.round(((serverAfter - serverBefore) * 1e6) / result.completed),
        load_generator_cpu_us_per_request: Math.round((generator.user + generator.system) / result.completed),
      });
    }
    child.stdin.write('gc\n');
    const gc = JSON.parse(await line()) as GcSummary;
    return { server, runs, gc };
  } finally {
    child.kill();
  }
}

/** The child: serves one floor server on an ephemeral port, prints the port, answers 'gc-reset' and 'gc' on stdin. */
async function serve(kind: FloorServer): Promise<void> {
  const scavenges: number[] = [];
  let markCompacts = 0;
  let paused = 0;
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const gcKind = (entry as { detail?: { kind?: number } }).detail?.kind;
      paused += entry.duration;
      if (gcKind === constants.NODE_PERFORMANCE_GC_MINOR) scavenges.push(entry.duration);
      else if (gcKind === constants.NODE_PERFORMANCE_GC_MAJOR) markCompacts++;
    }
  }).observe({ entryTypes: ['gc'] });

  const server = kind === 'node_http' ? plainServer() : expressServer(kind === 'express_born');
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  process.stdout.write(`${(server.address() as AddressInfo).port}\n`);

  createInterface({ input: process.stdin }).on('line', (command) => {
    if (command === 'gc-reset') {
      scavenges.length = 0;
      markCompacts = 0;
      paused = 0;
      process.stdout.write('ok\n');
    } else if (command === 'gc') {
      // Entries are delivered asynchronously: let the last ones arrive.
      setTimeout(() => {
        const stats = latencyStats(scavenges);
        const summary: GcSummary = { scavenges: stats.count, scavenge_median_ms: stats.p50_ms ?? 0, scavenge_p90_ms: stats.p90_ms ?? 0, scavenge_max_ms: stats.max_ms ?? 0, mark_compacts: markCompacts, paused_ms: round(paused) };
        process.stdout.write(`${JSON.stringify(summary)}\n`);
      }, 100);
    }
  });
  process.stdin.on('end', () => process.exit(0));
}

function plainServer() {
  const length = Buffer.byteLength(FLOOR_BODY);
  return createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': length });
    res.end(FLOOR_BODY);
  });
}

function expressServer(born: boolean) {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use(express.json());
  const router = express.Router();
  for (let i = 0; i < 12; i++) router.get(`/other-${i}/:id`, (_req, res) => void res.json({ i }));
  const answer = JSON.parse(FLOOR_BODY) as unknown;
  router.get('/users/:id/recommendations', (_req, res) => void res.json(answer));
  app.use('/v1', router);
  return born ? createExpressServer(app) : createServer(app);
}

/** utime + stime of a process (every thread), seconds; null where /proc cannot be read. */
function processCpuSeconds(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    return statCpuSeconds(`/proc/${pid}/stat`);
  } catch {
    return null;
  }
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const serveAt = process.argv.indexOf('--serve');
  if (serveAt >= 0) await serve(process.argv[serveAt + 1] as FloorServer);
  else {
    const [rate = 1000, seconds = 15, runs = 2] = process.argv.slice(2).map(Number);
    console.log(JSON.stringify(await measureHttpFloor({ rate, seconds, runs, log: (line) => process.stderr.write(`${line}\n`) }), null, 2));
  }
}
