import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT, SERVER_ENV } from '../src/cli/processes.js';
import { migrate } from '../src/data/migrate.js';
import { openStore } from '../src/data/store.js';
import type { ExportReport } from '../src/serve/batch-export.js';
import { prepareStore } from './serve-bench.js';

const run = promisify(execFile);

/**
 * `npm run bench -- export`: every amazon-games user's top 20 through `npm run export` (the job as a
 * user runs it, in its own process), to a JSONL file and to the recommendation_exports table, with 1
 * and 2 inference workers. The store is the serve benchmark's (the catalogue and a one-epoch default
 * model; --reuse-store takes the one an earlier serve run left), copied so every run starts alike.
 * Reports users/s over the whole job (the model's load included) and the job's peak RSS.
 */
export interface ExportBenchOptions {
  readonly reuseStore: boolean;
  readonly quick: boolean;
  readonly scratch: string;
  readonly log: (line: string) => void;
}

const K = 20;

export async function runExportBench(options: ExportBenchOptions): Promise<Record<string, unknown>> {
  const prepared = await prepareStore({ reuseStore: options.reuseStore, scratch: options.scratch, log: options.log, trainEpochs: 1 });
  const copy = join(options.scratch, 'export-bench.db');
  const output = join(options.scratch, 'export-bench.jsonl');
  const runs: Record<string, unknown>[] = [];
  const workerCounts = options.quick ? [2] : [1, 2];
  for (const workers of workerCounts) {
    for (const format of ['jsonl', 'table'] as const) {
      for (const suffix of ['', '-wal', '-shm']) rmSync(copy + suffix, { force: true });
      copyFileSync(prepared.file, copy);
      if (existsSync(`${prepared.file}-wal`)) copyFileSync(`${prepared.file}-wal`, `${copy}-wal`);
      const store = openStore(`file:${copy}`);
      await migrate(store);
      await store.close();
      options.log(`export: ${format}, --workers ${workers}`);
      const { stdout } = await run(
        process.execPath,
        ['--import', 'tsx', join(ROOT, 'jobs', 'export.ts'), '--database-url', `file:${copy}`, '--output', format === 'table' ? 'bench' : output, '--format', format, '--k', String(K), '--workers', String(workers), '--overwrite', '--json', '--quiet'],
        { cwd: ROOT, env: { ...SERVER_ENV, ...process.env }, maxBuffer: 16 << 20 },
      );
      const report = JSON.parse(stdout) as ExportReport;
      runs.push({
        format,
        workers,
        users: report.users,
        seconds: Math.round(report.seconds * 10) / 10,
        users_per_s: Math.round(report.usersPerSecond),
        peak_rss_mb: report.peakRssMb,
        ...(format === 'jsonl' && { output_mb: Math.round(statSync(output).size / 1e5) / 10 }),
      });
      options.log(`  ${report.users} users in ${report.seconds.toFixed(1)} s: ${Math.round(report.usersPerSecond)} users/s, peak RSS ${report.peakRssMb} MB`);
    }
  }
  rmSync(output, { force: true });
  return {
    dataset: 'amazon-games',
    model: { members: prepared.members, ...prepared.model },
    k: K,
    note: 'npm run export as a user runs it (its own process; users/s over the whole job, the model load included), every user of the store, the default exclusion policy (purchased), no filter',
    runs,
  };
}
