/**
 * Where a fixed-rate run's tail comes from (docs/serving-performance.md, "The tail's source: the
 * machine's memory monitor"). It serves a copy of the serve benchmark's store (run `npm run bench --
 * serve` once first) with bench/event-loop-gaps.mjs preloaded, warms the user cache, then sends one
 * scenario open loop over 16 connections and cuts the run into 20-ms windows of due time. A window is
 * in the tail when a request due in it took over --tail-ms. Each tail window is then checked against
 * what happened around it (from 5 ms before it to 15 ms after):
 *
 * - the kernel's memory monitor (DAMON's kdamond threads, where the machine runs one): its run time is
 *   read every 2 ms, and a burst is a stretch in which it ran over 2 ms;
 * - the server's event loop: a stretch over 5 ms in which its 1-ms timer could not run, and whether a
 *   garbage-collection pause over 3 ms was in it;
 * - the load generator's own GC pauses (LoadResult.generator_gc).
 *
 * Each share is printed beside the share of all windows with the same overlap (the base rate): a cause
 * of the tail overlaps tail windows far more often than windows at large.
 *
 * With --activate, the serve benchmark's other version is activated first (as in its scenario (d)), and
 * the run starts --after seconds after the activation answered.
 *
 * With --before, runs of the same scenario come first, as the serve benchmark's run before its last
 * fixed rate: `closed:15` is 15 s closed loop over 16 connections, `500:15` 15 s at 500 req/s.
 *
 *   npx tsx bench/tail-sources.ts [--scenario cached|session30|active] [--rate 1000] [--seconds 20] [--tail-ms 8] [--activate [--after 60]] [--before closed:15,closed:15,250:15,500:15] [-- <server flags>]
 *
 * Prints one JSON line. Nothing is written to bench/results: this is a probe for a question, run it again.
 */
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { ROOT } from '../src/cli/processes.js';
import { runLoad } from './load-generator.js';
import { memoryMonitorThreads, threadsCpuMs } from './machine.js';
import { readHistories, Workloads, type Histories } from './serve-workloads.js';
import { SCRATCH_SERVER_KEYS, startScratchServer } from './warm-server.js';

const { values, positionals } = parseArgs({
  options: {
    scenario: { type: 'string', default: 'cached' },
    rate: { type: 'string', default: '1000' },
    seconds: { type: 'string', default: '20' },
    'tail-ms': { type: 'string', default: '8' },
    activate: { type: 'boolean', default: false },
    after: { type: 'string', default: '60' },
    before: { type: 'string', default: '' },
  },
  allowPositionals: true,
});
const rate = Number(values.rate);
const seconds = Number(values.seconds);
const tailMs = Number(values['tail-ms']);
const after = Number(values.after);
for (const [flag, value] of [['--rate', rate], ['--seconds', seconds], ['--tail-ms', tailMs]] as const) {
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${flag} must be a positive number`);
}
if (!Number.isFinite(after) || after < 0) throw new Error('--after must be a number of seconds ≥ 0');
if (!['cached', 'session30', 'active'].includes(values.scenario)) throw new Error(`--scenario must be cached, session30 or active; got '${values.scenario}'`);

const scratch = join(ROOT, 'bench', 'scratch');
const keys = SCRATCH_SERVER_KEYS;
const port = 19_000 + Math.floor(Math.random() * 1_000);
const gapsFile = join(scratch, 'tail-sources-gaps.json');
rmSync(gapsFile, { force: true });
let histories: Histories | undefined;
const { process: server } = await startScratchServer({
  name: 'tail-sources',
  flags: positionals,
  port,
  nodeFlags: ['--import', join(ROOT, 'bench', 'event-loop-gaps.mjs')],
  env: { EVENT_LOOP_GAPS_FILE: gapsFile },
  onStore: async (store) => void (histories = await readHistories(store)),
});
await new Promise((resolve) => setTimeout(resolve, 3_000));
let activation: { version: number; status: number; seconds: number } | undefined;
if (values.activate) {
  const { first, second } = JSON.parse(readFileSync(join(scratch, 'serve-bench.json'), 'utf8')) as { first: number; second: number };
  const listing = (await (await fetch(`http://127.0.0.1:${port}/v1/models`, { headers: { authorization: `Bearer ${keys.admin}` } })).json()) as { serving: number | null };
  const version = listing.serving === second ? first : second;
  const started = performance.now();
  const response = await fetch(`http://127.0.0.1:${port}/v1/models/${version}/activate`, { method: 'POST', headers: { authorization: `Bearer ${keys.admin}` } });
  activation = { version, status: response.status, seconds: Math.round(performance.now() - started) / 1000 };
  await response.body?.cancel();
  await new Promise((resolve) => setTimeout(resolve, after * 1000));
}

const work = new Workloads(histories!, `http://127.0.0.1:${port}`, keys, 9);
const next = values.scenario === 'cached' ? () => work.idle() : values.scenario === 'session30' ? () => work.session(30) : () => work.active();
for (const spec of values.before.split(',').filter(Boolean)) {
  const [how, duration] = spec.split(':');
  const closed = how === 'closed';
  if ((!closed && !(Number(how) > 0)) || !(Number(duration) > 0)) throw new Error(`--before takes closed:<seconds> or <rate>:<seconds>, comma-separated; got '${spec}'`);
  await runLoad({ host: '127.0.0.1', port, mode: closed ? 'closed' : 'open', ...(closed ? {} : { rate: Number(how) }), connections: 16, seconds: Number(duration), next });
  await new Promise((resolve) => setTimeout(resolve, 1_000));
}
const monitor = memoryMonitorThreads();
const monitorSamples: { at: number; ms: number }[] = [];
const sampler = setInterval(() => monitorSamples.push({ at: performance.timeOrigin + performance.now(), ms: threadsCpuMs(monitor) }), 2);
let t0 = 0;
const result = await runLoad({ host: '127.0.0.1', port, mode: 'open', rate, connections: 16, seconds, next, windowSeconds: 0.02, onStart: (start) => (t0 = performance.timeOrigin + start) });
clearInterval(sampler);
server.kill('SIGTERM');
await new Promise((resolve) => server.once('exit', resolve));

interface Span {
  readonly from: number;
  readonly to: number;
  readonly ms: number;
}
// Memory-monitor bursts: runs of 2-ms samples in which it ran, merged across gaps under 3 ms.
const bursts: Span[] = [];
for (let i = 1; i < monitorSamples.length; i++) {
  const ran = monitorSamples[i]!.ms - monitorSamples[i - 1]!.ms;
  if (ran <= 0.05) continue;
  const last = bursts[bursts.length - 1];
  if (last && monitorSamples[i - 1]!.at - last.to < 3) bursts[bursts.length - 1] = { from: last.from, to: monitorSamples[i]!.at, ms: last.ms + ran };
  else bursts.push({ from: monitorSamples[i - 1]!.at, to: monitorSamples[i]!.at, ms: ran });
}
const monitorBursts = bursts.filter((b) => b.ms > 2);
const recorded = JSON.parse(readFileSync(gapsFile, 'utf8')) as { gaps: { at: number; ms: number }[]; gcs: { at: number; ms: number }[] };
const stalls: Span[] = recorded.gaps.filter((g) => g.ms > 5).map((g) => ({ from: g.at, to: g.at + g.ms, ms: g.ms }));
const gcPauses: Span[] = recorded.gcs.filter((g) => g.ms > 3).map((g) => ({ from: g.at, to: g.at + g.ms, ms: g.ms }));

const windows = result.windows ?? [];
const around = (w: { from_s: number; to_s: number }, spans: readonly Span[]) => spans.some((s) => s.to >= t0 + w.from_s * 1000 - 5 && s.from <= t0 + w.to_s * 1000 + 15);
const tail = windows.filter((w) => (w.request.max_ms ?? 0) > tailMs);
const share = (list: typeof windows, spans: readonly Span[]) => (list.length > 0 ? Math.round((list.filter((w) => around(w, spans)).length / list.length) * 1000) / 1000 : null);
const during = (spans: readonly Span[]) => spans.filter((s) => s.to >= t0 && s.from <= t0 + seconds * 1000);
const runBursts = during(monitorBursts);
console.log(
  JSON.stringify({
    scenario: values.scenario,
    rate,
    seconds,
    server_flags: positionals,
    activation,
    before: values.before || undefined,
    request: result.request,
    windows: windows.length,
    tail_windows: tail.length,
    tail_ms: tailMs,
    memory_monitor: monitor.length > 0
      ? { bursts: runBursts.length, cpu_ms: Math.round(runBursts.reduce((sum, b) => sum + b.ms, 0)), median_burst_ms: runBursts.map((b) => b.ms).sort((a, b) => a - b)[runBursts.length >> 1] ?? null, tail_windows_near: share(tail, monitorBursts), all_windows_near: share(windows, monitorBursts) }
      : null,
    event_loop_stalls_over_5ms: { count: during(stalls).length, tail_windows_near: share(tail, stalls), all_windows_near: share(windows, stalls) },
    event_loop_gc_over_3ms: { count: during(gcPauses).length, tail_windows_near: share(tail, gcPauses), all_windows_near: share(windows, gcPauses) },
    tail_windows_near_neither: tail.length > 0 ? Math.round((tail.filter((w) => !around(w, monitorBursts) && !around(w, gcPauses)).length / tail.length) * 1000) / 1000 : null,
    generator_gc: result.generator_gc,
  }),
);
