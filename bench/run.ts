import { join } from 'node:path';
import { integerFlag, runJob, type FlagSpec, type JobSpec } from '../src/cli/job.js';
import { AppError } from '../src/errors.js';
import { DEFAULT_EPOCHS, DEFAULT_MEMBERS } from '../src/train/train-run.js';
import { runExportBench } from './export-bench.js';
import { runImportBench } from './import-bench.js';
import { runScaleBench } from './scale-bench.js';
import { writeSummary } from './summary.js';
import { runServeBench, servedShapeSuffix } from './serve-bench.js';
import { runTrainBench } from './train-bench.js';
import { SHIPPED_DATASETS, type ShippedDataset } from './shipped-sample.js';
import { machineFacts, writeBenchResult } from './machine.js';

const BENCHMARKS = ['import', 'train', 'serve', 'scale', 'export'] as const;
type Benchmark = (typeof BENCHMARKS)[number];

const spec = {
  name: 'bench',
  summary: 'run attnrec benchmarks and write machine-readable results to bench/results/',
  usage: `npm run bench -- [${BENCHMARKS.join('|')}] [options]`,
  positionals: { max: BENCHMARKS.length },
  flags: {
    quick: { type: 'boolean', default: false, description: 'Small inputs and one run each, for smoke checks' },
    runs: { type: 'string', value: 'n', description: 'import: repetitions per measurement; the median is reported (default 3, 1 with --quick)' },
    events: { type: 'string', value: 'n', description: 'import: events in the generated log (default 1000000, 100000 with --quick)' },
    epochs: { type: 'string', value: 'n', description: `train: epochs (default ${DEFAULT_EPOCHS}, as the training job; 2 with --quick)` },
    datasets: { type: 'string', value: 'list', description: `train: the shipped files to train on (default ${SHIPPED_DATASETS.join(',')}; --quick: amazon-games)` },
    'long-steps': { type: 'string', value: 'n', description: 'train: timed 128 × 200 steps on generated long histories (default 5, 2 with --quick; 0 skips)' },
    sizes: { type: 'string', value: 'list', description: 'scale: events:items pairs (default 1000000:10000,3000000:30000,10000000:100000; --quick 100000:5000,300000:10000)' },
    catalogue: { type: 'string', value: 'events:items:users', description: 'serve: a synthetic catalogue instead of amazon-games, e.g. 2000000:100000:10000 (large-catalogue retrieval)' },
    seconds: { type: 'string', value: 'n', description: 'serve: seconds per load run (default 15, 3 with --quick, which also shortens the transients to 30 s in windows of 5 s and runs 250 req/s only)' },
    workers: { type: 'string', value: 'list', description: 'serve: run everything once per value with the server\'s --workers N, e.g. 1,2 (default: the server\'s default, no --workers flag)' },
    impressions: { type: 'string', value: 'list', description: "serve: run everything once per value with the server's --impressions on|off, e.g. on,off, to measure what recording impressions costs (default: the server's default, on); with --workers, every pair" },
    members: { type: 'string', value: 'n', description: `serve: the served shape: versions of this many ensemble members (default ${DEFAULT_MEMBERS}, as the training job); results go to serve-<n>-member-<timestamp>.json when it differs` },
    'reuse-store': { type: 'boolean', default: false, description: 'serve, export: reuse bench/scratch/serve-bench.db and its two trained versions from an earlier run instead of importing and training again (runs serve a copy of it, so it holds the imported events only)' },
    write: { type: 'boolean', default: true, description: 'Print the result without writing bench/results/<name>-<timestamp>.json' },
  },
  details: `
With no benchmark named, every benchmark runs. Each prints one JSON document on stdout (progress on stderr)
and writes it to bench/results/<benchmark>-<timestamp>.json. Scratch files (generated logs, databases) go
to bench/scratch/, which git ignores. Speed targets live here, never in the test suite.`,
} satisfies JobSpec<Record<string, FlagSpec>>;

await runJob(spec, async ({ flags, positionals }) => {
  for (const name of positionals) {
    if (!(BENCHMARKS as readonly string[]).includes(name)) throw new AppError('USAGE', `unknown benchmark '${name}' (known: ${BENCHMARKS.join(', ')})`);
  }
  const selected = (positionals.length > 0 ? positionals : [...BENCHMARKS]) as Benchmark[];
  const root = join(import.meta.dirname);
  const log = (line: string): void => void process.stderr.write(`${line}\n`);
  // Validated before anything runs, so a bad value fails at once.
  const members = flags.members === undefined ? DEFAULT_MEMBERS : integerFlag('members', flags.members, 1, 8);
  const workerArgs = flags.workers ? flags.workers.split(',').map((n) => ['--workers', String(integerFlag('workers', n.trim(), 1, 256))]) : [[]];
  const impressionArgs = flags.impressions
    ? flags.impressions.split(',').map((mode) => {
        if (mode.trim() !== 'on' && mode.trim() !== 'off') throw new AppError('USAGE', `--impressions takes on and/or off, comma-separated; got '${mode}'`);
        return ['--impressions', mode.trim()];
      })
    : [[]];
  for (const benchmark of selected) {
    const started = new Date();
    const scratch = join(root, 'scratch');
    const body =
      benchmark === 'import'
        ? await runImportBench({
            events: flags.events ? integerFlag('events', flags.events, 1000, 100_000_000) : flags.quick ? 100_000 : 1_000_000,
            runs: flags.runs ? integerFlag('runs', flags.runs, 1, 20) : flags.quick ? 1 : 3,
            scratch,
            log,
          })
        : benchmark === 'train'
          ? await runTrainBench({
              epochs: flags.epochs ? integerFlag('epochs', flags.epochs, 1, 1000) : flags.quick ? 2 : DEFAULT_EPOCHS,
              longSteps: flags['long-steps'] ? integerFlag('long-steps', flags['long-steps'], 0, 100) : flags.quick ? 2 : 5,
              datasets: flags.datasets ? datasetsFlag(flags.datasets) : flags.quick ? ['amazon-games'] : SHIPPED_DATASETS,
              scratch,
              log,
            })
          : benchmark === 'serve'
            ? await runServeBench({
                seconds: flags.seconds ? integerFlag('seconds', flags.seconds, 1, 600) : flags.quick ? 3 : 15,
                quick: flags.quick,
                serverArgs: workerArgs.flatMap((workers) => impressionArgs.map((impressions) => [...workers, ...impressions])),
                reuseStore: flags['reuse-store'],
                trainEpochs: 1,
                members,
                scratch,
                log,
                ...(flags.catalogue && { synthetic: parseCatalogue(flags.catalogue) }),
              })
            : benchmark === 'export'
              ? await runExportBench({ reuseStore: flags['reuse-store'], quick: flags.quick, scratch, log })
              : await runScaleBench({ sizes: parseSizes(flags.sizes ?? (flags.quick ? '100000:5000,300000:10000' : '1000000:10000,3000000:30000,10000000:100000')), scratch, log });
    // A synthetic catalogue is a different benchmark from the amazon-games serve run: its own files.
    const name =
      benchmark === 'serve' && flags.catalogue
        ? 'serve-large-catalogue'
        : benchmark === 'serve'
          ? `serve${servedShapeSuffix(members)}`
          : benchmark;
    const result = { benchmark: name, started: started.toISOString(), quick: flags.quick, machine: machineFacts(), ...body };
    const json = JSON.stringify(result, null, 2);
    process.stdout.write(`${json}\n`);
    if (flags.write) {
      log(`wrote ${writeBenchResult(join(root, 'results'), name, started, json)}`);
    }
  }
  if (flags.write) {
    writeSummary(join(root, 'results'));
    log(`wrote ${join(root, 'results', 'SUMMARY.md')}`);
  }
});

function parseSizes(text: string): [number, number][] {
  return text.split(',').map((pair) => {
    const [events, items] = pair.split(':').map((x) => integerFlag('sizes', x.trim(), 1_000, 1_000_000_000));
    if (items === undefined) throw new AppError('USAGE', `--sizes wants events:items pairs; got '${pair}'`);
    return [events!, items];
  });
}

function parseCatalogue(text: string): { events: number; items: number; users: number } {
  const [events, items, users] = text.split(':').map((x) => integerFlag('catalogue', x.trim(), 1, 1_000_000_000));
  if (users === undefined) throw new AppError('USAGE', `--catalogue wants events:items:users; got '${text}'`);
  return { events: events!, items: items!, users };
}

/** --datasets: shipped file names, comma-separated. */
function datasetsFlag(raw: string): ShippedDataset[] {
  const names = raw.split(',').map((name) => name.trim());
  const unknown = names.filter((name) => !(SHIPPED_DATASETS as readonly string[]).includes(name));
  if (unknown.length > 0 || names.length === 0) throw new AppError('USAGE', `--datasets takes ${SHIPPED_DATASETS.join(', ')} (comma-separated); got '${raw}'`);
  return names as ShippedDataset[];
}
