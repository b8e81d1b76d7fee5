/**
 * A probe of scenario (d)'s transients, for trying a change on the first seconds after a start or after an
 * activation without the whole serve benchmark (docs/serving-performance.md). Each round starts one server
 * per variant, in turn (so variants alternate and share the machine's moods), each `--workers 2` on a fresh
 * copy of the serve benchmark's store with the versions' representations stored once up front and put back
 * before every server, as a training job leaves them:
 *  - start: the (d) mix at --rate from the moment the server listens, for --seconds in --window windows;
 *    then a 5-s closed-loop warm-up and 15 s at --rate, the steady state the windows are compared with;
 *  - activation: a warm server; --drift seconds of active shoppers in a closed loop (32 connections), so that
 *    histories drift from the stored representations as (d)'s three minutes of load make them drift; 5 s
 *    of the mix in a closed loop; then the mix at --rate for 10 + --seconds s, version 2 activated 10 s in.
 * With --cpu n, each server thread's CPU (ms) in each of the n seconds from the listen or the activation.
 * Run `npm run bench -- serve` once first: it builds bench/scratch/serve-bench.db and its two versions.
 *
 *   npx tsx bench/transient-probe.ts start|activation [--rate 250] [--window 10] [--seconds 30]
 *     [--rounds 2] [--drift 15] [--cpu 0] [--variant 'name=words' …]
 *
 * A variant's words are server flags (`--warm-up-requests 1000`), Node options written `node:--option`
 * (`node:--interrupt-budget=16384`), or environment assignments (`NAME=value`); every server also gets
 * SERVER_NODE_FLAGS, as `npm start` runs it. Without --variant, one variant: the server as served.
 * Prints one JSON line per server: the windows' p99s, and the first window's (after a start) or the one
 * from the activation (after an activation) over the steady state or the windows before it, with that
 * window's p99 per step.
 */
import { copyFileSync, existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ROOT } from '../src/cli/processes.js';
import { memoPath } from '../src/model/representation-memo.js';
import { runLoad, type LoadResult } from './load-generator.js';
import { readHistories, Workloads, type Histories } from './serve-workloads.js';
import { threadCpu, threadCpuPerSecond } from './thread-cpu.js';
import { copyScratchStore, SCRATCH_SERVER_KEYS, serverVariants, startScratchServer } from './warm-server.js';

const USAGE = `usage: npx tsx bench/transient-probe.ts start|activation [--rate 250] [--window 10] [--seconds 30] [--rounds 2] [--drift 15] [--cpu 0] [--variant 'name=words' …]`;
const { values, positionals } = parseArgs({
  options: {
    rate: { type: 'string', default: '250' },
    window: { type: 'string', default: '10' },
    seconds: { type: 'string', default: '30' },
    rounds: { type: 'string', default: '2' },
    drift: { type: 'string', default: '15' },
    cpu: { type: 'string', default: '0' },
    variant: { type: 'string', multiple: true, default: [] },
    help: { type: 'boolean', default: false },
  },
  allowPositionals: true,
});
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
const event = positionals[0];
if (positionals.length !== 1 || (event !== 'start' && event !== 'activation')) fail(`name the transient: start or activation\n${USAGE}`);
const number = (name: keyof typeof values, min: number): number => {
  const value = Number(values[name]);
  if (!Number.isFinite(value) || value < min) fail(`--${name} must be a number ≥ ${min}; got '${String(values[name])}'`);
  return value;
};
const rate = number('rate', 1);
const window = number('window', 1);
const seconds = number('seconds', window);
const rounds = number('rounds', 1);
const drift = number('drift', 0);
const cpuSeconds = number('cpu', 0);
const variants = parseVariants(values.variant.length > 0 ? values.variant : ['served=']);
if (!existsSync(join(ROOT, 'bench', 'scratch', 'serve-bench.db'))) fail('bench/scratch/serve-bench.db is missing: run `npm run bench -- serve` once first');

// The versions' representations, stored once from a copy of the store and put back before every server
// (a server stores its cache's representations when it stops, so each would otherwise see its forerunner's).
const name = `transient-${event}`;
let histories: Histories | undefined;
let artifacts: { id: number; artifactPath: string }[] = [];
const prepared = await copyScratchStore(name, 'serve-bench', async (store) => {
  histories = await readHistories(store);
  artifacts = await store.prisma.modelVersion.findMany({ where: { id: { in: event === 'start' ? [1] : [1, 2] } }, select: { id: true, artifactPath: true }, orderBy: { id: 'asc' } });
});
process.stderr.write(`storing the representations of version(s) ${artifacts.map((a) => a.id).join(', ')}\n`);
execFileSync(process.execPath, ['--import', 'tsx', join(ROOT, 'bench', 'store-representations.ts'), `file:${prepared}`, ...artifacts.map((a) => String(a.id))], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
const memos = artifacts.map((a) => ({ file: memoPath(a.artifactPath, 'quantised'), saved: join(ROOT, 'bench', 'scratch', `${name}-v${a.id}.bin`) }));
for (const memo of memos) copyFileSync(memo.file, memo.saved);

try {
  for (let round = 0; round < rounds; round++) {
    for (const variant of variants) {
      for (const memo of memos) copyFileSync(memo.saved, memo.file);
      const port = 31_000 + Math.floor(Math.random() * 1_000);
      const server = await startScratchServer({ name, flags: variant.flags, nodeFlags: variant.nodeFlags, env: variant.env, workers: 2, port, until: event === 'start' ? 'listening' : 'warm' });
      try {
        const work = new Workloads(histories!, `http://127.0.0.1:${port}`, SCRATCH_SERVER_KEYS, 1 + round);
        const base = { host: '127.0.0.1', port, connections: 16 } as const;
        const result = event === 'start' ? await afterStart(server.process.pid!, work, base) : await afterActivation(server.process.pid!, work, base);
        console.log(JSON.stringify({ event, variant: variant.name, round, ...result }));
      } finally {
        server.process.kill('SIGKILL');
        await new Promise((resolve) => server.process.once('exit', resolve));
      }
    }
  }
} finally {
  for (const memo of memos) copyFileSync(memo.saved, memo.file);
}

type Base = { readonly host: string; readonly port: number; readonly connections: number };

async function afterStart(pid: number, work: Workloads, base: Base): Promise<Record<string, unknown>> {
  const cpu = sampleCpu(pid);
  const run = await runLoad({ ...base, mode: 'open', rate, seconds, windowSeconds: window, next: () => work.mix(0.5) });
  const perSecond = cpu.stop();
  await runLoad({ ...base, mode: 'closed', seconds: 5, next: () => work.mix(0.5) });
  const steady = await runLoad({ ...base, mode: 'open', rate, seconds: 15, next: () => work.mix(0.5) });
  const p99 = windowsP99(run);
  return {
    steady_p99_ms: steady.request.p99_ms,
    windows_p99_ms: p99,
    first_over_steady: ratio(p99[0], steady.request.p99_ms),
    first_window_steps_p99_ms: stepsP99(run, 0),
    failed: run.failed + steady.failed,
    ...(cpuSeconds > 0 && { cpu_ms_per_second: perSecond.slice(0, cpuSeconds) }),
  };
}

async function afterActivation(pid: number, work: Workloads, base: Base): Promise<Record<string, unknown>> {
  if (drift > 0) await runLoad({ ...base, connections: 32, mode: 'closed', seconds: drift, next: () => work.active() });
  await runLoad({ ...base, mode: 'closed', seconds: 5, next: () => work.mix(0.5) });
  let answered: { status: number; seconds: number } | undefined;
  let activated: Promise<void> = Promise.resolve();
  let cpu: ReturnType<typeof sampleCpu> | undefined;
  const run = await runLoad({
    ...base,
    mode: 'open',
    rate,
    seconds: 10 + seconds,
    windowSeconds: window,
    next: () => work.mix(0.5),
    onStart: (t0) => {
      setTimeout(() => {
        cpu = sampleCpu(pid);
        const sent = performance.now();
        activated = fetch(`http://127.0.0.1:${base.port}/v1/models/2/activate`, { method: 'POST', headers: { authorization: `Bearer ${SCRATCH_SERVER_KEYS.admin}` } }).then(
          (r) => void (answered = { status: r.status, seconds: round2((performance.now() - sent) / 1000) }),
          () => void (answered = { status: 0, seconds: round2((performance.now() - sent) / 1000) }),
        );
      }, Math.max(0, t0 + 10_000 - performance.now()));
    },
  });
  const perSecond = cpu?.stop() ?? [];
  await activated;
  const p99 = windowsP99(run);
  // With 10-s windows, windows [0, 10 / window) come before the activation.
  const before = Math.ceil(10 / window);
  return {
    activation: answered,
    windows_p99_ms: p99,
    first_after_over_before: ratio(p99[before], Math.max(...p99.slice(0, before).map((x) => x ?? 0))),
    first_after_steps_p99_ms: stepsP99(run, before),
    failed: run.failed,
    ...(cpuSeconds > 0 && { cpu_ms_per_second: perSecond.slice(0, cpuSeconds) }),
  };
}

/** Each server thread's CPU (ms; names without the `attnrec-` prefix, those under 20 ms left out) in each second from now. */
function sampleCpu(pid: number): { stop(): Record<string, number>[] } {
  const seconds: Record<string, number>[] = [];
  let last = threadCpu(pid);
  const timer = setInterval(() => {
    const now = threadCpu(pid);
    seconds.push(Object.fromEntries(Object.entries(threadCpuPerSecond(last, now, 1)).filter(([, ms]) => ms >= 20).map(([thread, ms]) => [thread.replace(/^attnrec-/, ''), ms])));
    last = now;
  }, 1000);
  return {
    stop: () => {
      clearInterval(timer);
      return seconds;
    },
  };
}

/** Each window's p99 (null: no request answered in it). */
function windowsP99(run: LoadResult): (number | null)[] {
  return (run.windows ?? []).map((w) => w.request.p99_ms);
}

/** A window's p99 per step (an event, recommendations after it, recommendations of an idle user). */
function stepsP99(run: LoadResult, window: number): Record<string, number | null> {
  return Object.fromEntries(Object.entries(run.windows?.[window]?.steps ?? {}).map(([step, stats]) => [step, stats.p99_ms]));
}

function ratio(x: number | null | undefined, y: number | null): number | null {
  return x === null || x === undefined || !y ? null : round2(x / y);
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}

/** The --variant specs (name=words, as serverVariants reads them), each word a server flag, a `node:` option or an environment assignment. */
function parseVariants(specs: readonly string[]): { name: string; flags: string[]; nodeFlags: string[]; env: Record<string, string> }[] {
  let parsed: Map<string, readonly string[]>;
  try {
    parsed = serverVariants(specs);
  } catch (error) {
    fail((error as Error).message);
  }
  const isEnv = (w: string): boolean => /^[A-Z_][A-Z0-9_]*=/.test(w);
  return [...parsed].map(([name, words]) => ({
    name,
    nodeFlags: words.filter((w) => w.startsWith('node:')).map((w) => w.slice('node:'.length)),
    env: Object.fromEntries(words.filter(isEnv).map((w) => [w.slice(0, w.indexOf('=')), w.slice(w.indexOf('=') + 1)])),
    flags: words.filter((w) => !w.startsWith('node:') && !isEnv(w)),
  }));
}

function fail(message: string): never {
  process.stderr.write(`${message}\n`);
  process.exit(2);
}
