#!/usr/bin/env -S npx tsx
import { integerFlag, runJob, type FlagSpec, type JobSpec } from '../src/cli/job.js';
import { DEFAULT_DATABASE_URL } from '../src/config/database-url.js';
import { openStore } from '../src/data/store.js';
import { AppError } from '../src/errors.js';
import { compareVersions } from '../src/evaluate/compare-versions.js';

const spec = {
  name: 'jobs/compare',
  summary: "print two model versions' settings and metrics side by side",
  usage: 'npm run compare -- <version> <version> [--all] [--json]',
  flags: {
    all: { type: 'boolean', default: false, description: 'List every setting, not only those that differ' },
    'database-url': { type: 'string', value: 'url', description: `Database (default: $DATABASE_URL, else ${DEFAULT_DATABASE_URL})` },
    json: { type: 'boolean', default: false, description: 'Print the comparison as JSON on stdout' },
  },
  positionals: { max: 2 },
  details: `
Settings are the version's saved configuration (model shape, training options, seed, backend) and its
data snapshot hash; '*' marks those that differ. Metrics come from the training job: validation first
(held-out users, full ranking; choose between versions on it), then test (full ranking, the sampled
protocol, the baselines: reported, not chosen on); the better value is marked with '<'/'>'.`,
} satisfies JobSpec<Record<string, FlagSpec>>;

await runJob(spec, async ({ flags, positionals }) => {
  if (positionals.length !== 2) throw new AppError('USAGE', 'give two model versions, e.g. `npm run compare -- 3 5` (see --help)');
  const [a, b] = positionals.map((p, i) => integerFlag(i === 0 ? 'first version' : 'second version', p, 1, 2 ** 31 - 1)) as [number, number];
  const store = openStore(flags['database-url'] ?? process.env.DATABASE_URL);
  try {
    const comparison = await compareVersions(store, a, b);
    if (flags.json) {
      process.stdout.write(`${JSON.stringify(comparison, null, 2)}\n`);
      return;
    }
    const [va, vb] = comparison.versions;
    const show = (v: unknown): string => (v === undefined ? '—' : typeof v === 'string' ? v : JSON.stringify(v));
    const settings = comparison.settings.filter((s) => flags.all || s.differs);
    const rows: [string, string, string, string][] = [
      ['', `v${va.id}`, `v${vb.id}`, ''],
      ['status', `${va.status}${va.active ? ' (active)' : ''}`, `${vb.status}${vb.active ? ' (active)' : ''}`, ''],
      ['created', va.createdAt, vb.createdAt, ''],
      ...settings.map((s): [string, string, string, string] => [s.key, show(s.values[0]), show(s.values[1]), s.differs ? '*' : '']),
      ['', '', '', ''],
      ...comparison.metrics.map((m): [string, string, string, string] => {
        const [x, y] = m.values;
        const mark = x === undefined || y === undefined || x === y || /seconds|epoch/.test(m.key) ? '' : x > y ? '>' : '<';
        return [m.key, x === undefined ? '—' : fmt(x), y === undefined ? '—' : fmt(y), mark];
      }),
    ];
    if (!flags.all && settings.length === 0) rows.splice(3, 0, ['(settings)', 'identical', 'identical', '']);
    const widths = [0, 1, 2].map((i) => Math.max(...rows.map((r) => r[i]!.length)));
    process.stdout.write(`${rows.map((r) => `${r[0].padEnd(widths[0]!)}  ${r[1].padStart(widths[1]!)}  ${r[2].padStart(widths[2]!)}  ${r[3]}`.trimEnd()).join('\n')}\n`);
  } finally {
    await store.close();
  }
});

function fmt(value: number): string {
  return Number.isInteger(value) ? String(value) : value.toFixed(4);
}
