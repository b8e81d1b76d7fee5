import { spawn } from 'node:child_process';
import { join } from 'node:path';

/**
 * How cost grows with events and catalogue size: each size runs in its own
 * process (bench/scale-run.ts) so each peak-memory figure is its own —
 * synthetic log (Zipf items, ~50 events per user), import into SQLite,
 * histories read, one training epoch with the default sampled softmax, and
 * scoring the whole catalogue for one user (matvec, normaliser, top 10).
 */
export interface ScaleBenchOptions {
  /** "events:items" pairs. */
  readonly sizes: readonly (readonly [number, number])[];
  readonly scratch: string;
  readonly log: (line: string) => void;
}

export async function runScaleBench(options: ScaleBenchOptions): Promise<Record<string, unknown>> {
  const rows: Record<string, unknown>[] = [];
  for (const [events, items] of options.sizes) {
    options.log(`size: ${events} events, ${items} items`);
    rows.push(await runSize(events, items, options));
  }
  return { dataset: 'synthetic (bench/synthetic-log.ts, seed 7, ~50 events per user)', database: 'sqlite', loss: 'sampled softmax, 2,048 negatives', sizes: rows };
}

function runSize(events: number, items: number, options: ScaleBenchOptions): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'scale-run.ts'), '--events', String(events), '--items', String(items), '--scratch', options.scratch], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => {
      for (const line of chunk.toString().split('\n')) if (line.startsWith('[')) options.log(line);
    });
    child.on('close', (code) => {
      if (code !== 0) reject(new Error(`scale run for ${events} events exited with ${code}`));
      else resolve(JSON.parse(stdout.trim().split('\n').at(-1)!) as Record<string, unknown>);
    });
  });
}
