import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { NOISY_FLOOR_MS, noisyMachineNote } from './http-floor.js';
import { MONITOR_NOTE_MARK, MONITOR_TAIL_SHARE } from './machine.js';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- benchmark result files are read as loose JSON

/**
 * bench/results/SUMMARY.md: the latest result of each benchmark as one
 * Markdown table per benchmark, regenerated after every `npm run bench`.
 */
export function writeSummary(resultsDir: string): string {
  const latest = new Map<string, { file: string; json: Json }>();
  for (const file of readdirSync(resultsDir).filter((f) => f.endsWith('.json')).sort()) {
    const json = JSON.parse(readFileSync(join(resultsDir, file), 'utf8')) as Json;
    if (!json.quick) latest.set(String(json.benchmark), { file, json });
  }
  const out: string[] = ['# Benchmark summary', '', 'Latest full run of each benchmark (`npm run bench`); each file has the details.', ''];
  // The run's own matrix-product peak, where it measured one: the same machine type's speed moves from day to day.
  const peak = (j: Json): string => (typeof j.matmul_peak?.shapes?.[0]?.gflops_median === 'number' ? `; one core's SIMD matrix-product peak in this run: ${j.matmul_peak.shapes[0].gflops_median} GFLOP/s` : '');
  const machine = (j: Json): string => `${j.machine?.cpu}, ${j.machine?.cores} cores, ${j.machine?.memory_gib} GiB, Node ${j.machine?.node}${peak(j)}`;
  const section = (name: string, rows: [string, string, string][]): void => {
    const entry = latest.get(name);
    if (!entry) return;
    out.push(`## ${name} — \`${entry.file}\``, '', machine(entry.json), '', '| measure | result | target |', '| --- | ---: | --- |', ...rows.map((r) => `| ${r.join(' | ')} |`), '');
  };
  const j = (name: string): Json => latest.get(name)?.json ?? {};
  const n = (x: unknown, digits = 0): string => (typeof x === 'number' ? x.toLocaleString('en-US', { maximumFractionDigits: digits }) : '–');
  section('import', [
    ['SQLite, 1M generated events', `${n(j('import').sqlite_events_per_s)} events/s`, '≥ 200,000'],
    ['PostgreSQL, 1M generated events', `${n(j('import').postgres_events_per_s)} events/s`, '≥ 100,000'],
    ['1M events into typed arrays (SQLite / PostgreSQL)', `${n(j('import').sequence_load_seconds?.sqlite, 2)} s / ${n(j('import').sequence_load_seconds?.postgres, 2)} s`, '< 5 s'],
  ]);
  // Files since 2026-12-04 hold one entry per dataset; earlier ones were amazon-games alone at the top level.
  const train = j('train');
  const trained: [string, Json][] = train.datasets ? Object.entries(train.datasets as Record<string, Json>) : [['amazon-games', train]];
  section('train', [
    ['seconds per epoch, amazon-games, reference shape (dim 64)', n(train.reference_shape_epoch?.seconds, 1), '< 47.7 (PyTorch)'],
    ...trained.flatMap(([name, d]): [string, string, string][] => [
      [`${name}: seconds per epoch, default model (dim ${n(d.config?.dim)})`, n(d.epoch_seconds, 1), ''],
      [`${name}: training time`, `${n(d.train_seconds)} s`, '≤ 900 s'],
      [`${name}: peak RSS`, `${n(d.peak_rss_mb)} MB`, '≤ 2,048 MB'],
      [`${name}: valid NDCG@10 / HR@10, full ranking`, `${n(d.valid?.ndcg10_full, 4)} / ${n(d.valid?.hr10_full, 4)}`, 'chosen on'],
      [`${name}: test NDCG@10 / HR@10, full ranking`, `${n(d.test?.ndcg10_full, 4)} / ${n(d.test?.hr10_full, 4)}`, d.targets?.ndcg10_full !== undefined ? `≥ ${d.targets.ndcg10_full}` : '≥ 0.05'],
      [`${name}: test NDCG@10 / HR@10, sampled (100)`, `${n(d.test?.ndcg10_sampled100, 4)} / ${n(d.test?.hr10_sampled100, 4)}`, name === 'amazon-games' ? '≥ 0.55 / ≥ 0.76' : ''],
    ]),
  ]);
  for (const name of ['serve', 'serve-1-member', 'serve-large-catalogue']) {
    const serve = j(name);
    if (Array.isArray(serve.configurations)) section(name, serveRows(serve, n));
    else if (name === 'serve')
      // Files written before the load generator (autocannon, one configuration).
      section(name, [
        ['recommendations at 1,000 req/s, p99', `${n(serve.recs?.p99_ms)} ms (${n(serve.recs?.rps)} req/s)`, '≤ 10 ms at ≥ 1,000 req/s'],
        ['recommendations, most req/s', `${n(serve.recs_max?.rps)} req/s, p99 ${n(serve.recs_max?.p99_ms)} ms`, ''],
        ['recommendations, user cache off', `${n(serve.recs_uncached?.rps)} req/s, p99 ${n(serve.recs_uncached?.p99_ms)} ms`, ''],
        ['events, batches of 100', `${n(serve.events?.events_per_s)} events/s`, '≥ 20,000'],
      ]);
    else
      section(name, [
        [`items in the model`, n(serve.items), ''],
        ['recommendations at 1,000 req/s, p99 (cache warm)', `${n(serve.recs?.p99_ms)} ms`, ''],
        ['recommendations, user cache off', `${n(serve.recs_uncached?.rps)} req/s, p99 ${n(serve.recs_uncached?.p99_ms)} ms`, ''],
      ]);
  }
  // bench/impression-cost.ts: what recording impressions costs cached GETs' p99, per variant against off.
  section(
    'impression-cost',
    Object.entries((j('impression-cost').costs ?? {}) as Record<string, Json>).map(([variant, c]) => [
      `${variant} − off: p99 at ${n(Number(j('impression-cost').method?.match(/at (\d+) req\/s/)?.[1] ?? 1000))} req/s, mean (median) of paired slices; server CPU per request`,
      `${n(c.p99_cost_ms?.mean, 2)} (${n(c.p99_cost_ms?.median, 2)}) ms; ${n(c.server_cpu_cost_ms_per_request, 3)} ms`,
      '≤ 1 ms',
    ]),
  );
  section(
    'scale',
    ((j('scale').sizes ?? []) as Json[]).map((s) => [
      `${n(s.events)} events, ${n(s.items)} items`,
      `import ${n(s.import_seconds, 1)} s, epoch ${n(s.epoch_seconds, 1)} s, peak ${n(s.peak_rss_mb_after_epoch)} MB, scoring p99 ${n(s.scoring_ms?.p99, 3)} ms`,
      '',
    ]),
  );
  section(
    'export',
    ((j('export').runs ?? []) as Json[]).map((r) => [`${r.format}, --workers ${r.workers}, top ${n(j('export').k)}`, `${n(r.users_per_s)} users/s (${n(r.users)} users in ${n(r.seconds, 1)} s), peak ${n(r.peak_rss_mb)} MB`, '']),
  );
  const text = `${out.join('\n')}\n`;
  writeFileSync(join(resultsDir, 'SUMMARY.md'), text);
  return text;
}

/** Rows of a serve result (bench/serve-bench.ts): per server configuration, saturation rates and every target. */
function serveRows(serve: Json, n: (x: unknown, digits?: number) => string): [string, string, string][] {
  const rows: [string, string, string][] = [];
  // Where even a server doing no work missed (c)'s 10 ms here, a latency verdict is the machine's as much as the server's.
  const noisy = serve.http_floor ? noisyMachineNote(serve.http_floor) !== undefined : false;
  for (const c of serve.configurations as Json[]) {
    const label = (c.server_args as string[]).length > 0 ? `[${(c.server_args as string[]).join(' ')}] ` : '';
    const scenarios = [c.idle_cached_users, c.sessions, c.sessions_30, c.active_shoppers] as Json[];
    // Since 2026-12-04 saturation is the best of a sweep over connection counts; say which count it was.
    const swept = scenarios.every((x) => Array.isArray(x?.saturation_sweep));
    rows.push([
      `${label}requests/s at saturation: idle cached / sessions / sessions of 30 / active shoppers${swept ? ' (closed-loop connections)' : ''}`,
      scenarios.map((x) => `${n(x?.saturation?.rps)}${swept ? ` (${n(x.saturation.connections)})` : ''}`).join(' / '),
      '',
    ]);
    for (const t of c.targets as Json[]) {
      const monitorBusy = typeof t.note === 'string' && t.note.includes(MONITOR_NOTE_MARK);
      const machine = [
        ...(noisy && t.unit === 'ms' && t.result !== null ? [`the machine's own HTTP floor p99 was over ${NOISY_FLOOR_MS} ms`] : []),
        ...(monitorBusy ? [`its memory monitor held a core ≥ ${MONITOR_TAIL_SHARE * 100} % of the run`] : []),
      ];
      const verdict = `${t.met === false ? ' — not met' : ''}${machine.length > 0 ? ` (${machine.join('; ')})` : ''}`;
      rows.push([`${label}${t.measure}`, `${n(t.result, 1)} ${t.unit}${verdict}`, String(t.target)]);
    }
    // Since 2026-12-06: what the cores could carry beside the shoppers (bench/ingestion-budget.ts).
    const budget = c.ingestion_with_active_shoppers?.cpu_budget as Json | null | undefined;
    if (budget)
      rows.push([
        `${label}ingestion beside active shoppers: the most the cores could carry, by the CPU the shoppers and an event cost alone (cores the phase used)`,
        `${n(budget.bound_events_per_s)} events/s (${n(budget.used_cores, 2)} of ${n(budget.cores)})`,
        '',
      ]);
    // The machine's own tail: its memory monitor's CPU beside (c) at 1,000 req/s (a run's p99 targets sit on it).
    const cached = c.idle_cached_users?.fixed_rate?.['1000'] as Json | undefined;
    if (typeof cached?.memory_monitor_cpu_ms === 'number' && cached.seconds > 0)
      rows.push([`${label}the machine's memory monitor (DAMON) beside idle cached users at 1,000 req/s`, `${n(cached.memory_monitor_cpu_ms / cached.seconds)} ms of CPU a second`, '']);
    rows.push([`${label}server peak RSS`, `${n(c.peak_rss_mb)} MB`, '']);
  }
  // Since 2026-12-02: the p99 of servers that do no work, under the same load generator in the same run.
  const floor = ((serve.http_floor?.servers ?? []) as Json[]).find((s) => s.server === 'express_born');
  if (floor)
    rows.push([
      `HTTP latency floor: p99 at ${n(serve.http_floor.rate)} req/s of Express as served, answering a fixed body (no work)`,
      (floor.runs as Json[]).map((r) => `${n(r.p99_ms, 1)} ms`).join(' / '),
      '',
    ]);
  return rows;
}
