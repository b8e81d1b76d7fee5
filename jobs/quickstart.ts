#!/usr/bin/env -S npx tsx
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, openSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { runJob, integerFlag, type FlagSpec, type JobSpec } from '../src/cli/job.js';
import { ROOT, SERVER_ENV, SERVER_NODE_FLAGS } from '../src/cli/processes.js';
import { DEFAULT_DATABASE_URL } from '../src/config/database-url.js';
import { openStore } from '../src/data/store.js';
import { AppError } from '../src/errors.js';
import { DEFAULT_EPOCHS, DEFAULT_MEMBERS } from '../src/train/train-run.js';

/** The first version's settings: one model, one epoch (~1.5 min on 2 cores on the sample, against ~15 for the defaults). */
// A preview that the default model replaces: its validation numbers would only delay the first answer.
const QUICK_TRAIN = ['--members', '1', '--epochs', '1', '--no-final-validation'];

const spec = {
  name: 'quickstart',
  summary: 'import the shipped sample, train a quick first version and serve it, then train the default model in the background and serve that once it is done',
  usage: 'npm run quickstart -- [options]',
  flags: {
    sample: { type: 'string', value: 'file', default: 'samples/amazon-games.txt', description: 'Events to import (imports are idempotent: nothing is stored twice)' },
    port: { type: 'string', value: 'n', default: '8080', description: 'Port of the API' },
    'database-url': { type: 'string', value: 'url', description: `Database (default: $DATABASE_URL, else ${DEFAULT_DATABASE_URL})` },
    background: { type: 'boolean', default: true, description: 'Train the default model in the background when no version of it is ready; --no-background to skip' },
    'model-poll': { type: 'string', value: 'seconds', default: '10', description: "How often the server looks for a newly activated version (the background training's)" },
    artifacts: { type: 'string', value: 'dir', default: 'models', description: 'Folder for model versions (each in v<id>/)' },
    'train-log': { type: 'string', value: 'file', default: 'data/quickstart-train.log', description: "The background training's output" },
  },
  details: `
Steps: apply the migrations; import --sample; when no version is active, train a quick one (one model,
one epoch) and activate it; serve the API with the development keys (dev-read-key, dev-write-key,
dev-admin-key; never in production). Then, unless a version with the default settings (${DEFAULT_MEMBERS} members,
${DEFAULT_EPOCHS} epochs) is ready, the default training runs in the background at a lower priority, its output in
--train-log, and activates its version when done: the server switches to it under load
within --model-poll seconds, after warming its cache. Ctrl-C stops the server and the training (npm run
train -- --resume continues the training later).`,
} satisfies JobSpec<Record<string, FlagSpec>>;

await runJob(spec, async ({ flags }) => {
  const databaseUrl = flags['database-url'] ?? process.env.DATABASE_URL ?? DEFAULT_DATABASE_URL;
  const port = integerFlag('port', flags.port, 0, 65_535);
  const poll = Number(flags['model-poll']);
  if (!(poll >= 0)) throw new AppError('USAGE', `--model-poll must be a number of seconds ≥ 0; got '${flags['model-poll']}'`);
  const started = performance.now();
  const say = (line: string): void => void process.stdout.write(`[quickstart ${((performance.now() - started) / 1000).toFixed(0)} s] ${line}\n`);
  const withDb = ['--database-url', databaseUrl];
  const artifacts = ['--artifacts', resolve(flags.artifacts)];

  say('applying migrations');
  await runStep('migrate', withDb);
  say(`importing ${flags.sample}`);
  await runStep('import', [...withDb, resolve(flags.sample)]);
  const versions = await readVersions(databaseUrl);
  if (!versions.some((v) => v.active)) {
    say('training a quick first version (one model, one epoch)');
    await runStep('train', [...withDb, ...artifacts, ...QUICK_TRAIN, '--activate', 'always']);
  }

  say(`serving the API on port ${port}`);
  const server = spawnJob('serve', [...withDb, '--port', String(port), '--dev-keys', '--model-poll', String(poll)], { env: SERVER_ENV, nodeFlags: SERVER_NODE_FLAGS, stdio: 'inherit' });
  const children: ChildProcess[] = [server];
  // SIGTERM, also for a Ctrl-C: in a terminal the children get the SIGINT themselves too, and the server
  // shuts down gracefully on the first signal of each kind (a second SIGINT would end it at once).
  const stop = (): void => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);

  const hasDefault = (await readVersions(databaseUrl)).some((v) => v.status === 'ready' && v.members === DEFAULT_MEMBERS && v.epochs === DEFAULT_EPOCHS);
  if (flags.background && !hasDefault) {
    const log = resolve(flags['train-log']);
    mkdirSync(dirname(log), { recursive: true });
    const out = openSync(log, 'a');
    // Below the server's priority, so the API stays responsive while the model trains.
    const training = spawnJob('train', [...withDb, ...artifacts, '--activate', 'always'], { stdio: ['ignore', out, out], nice: 10 });
    children.push(training);
    say(`training the default model in the background (~13 min alone on 2 cores, longer beside the server; log: ${log}); the server switches to it when it is done`);
    training.once('exit', (code, signal) => {
      if (signal) return;
      say(code === 0 ? 'the default model is trained and activated; the server switches to it within seconds' : `the background training failed (exit code ${code}); see ${log}`);
    });
  }

  const code = await new Promise<number | null>((resolve) => server.once('exit', (c) => resolve(c)));
  stop();
  if (code !== 0 && code !== null) process.exitCode = code;
});

interface VersionFacts {
  readonly active: boolean;
  readonly status: string;
  readonly members: number | undefined;
  readonly epochs: number | undefined;
}

async function readVersions(databaseUrl: string): Promise<VersionFacts[]> {
  const store = openStore(databaseUrl);
  try {
    const rows = await store.prisma.modelVersion.findMany({ select: { active: true, status: true, config: true } });
    return rows.map((row) => {
      const config = (row.config ?? {}) as { members?: unknown; epochs?: unknown };
      return { active: row.active, status: row.status, members: typeof config.members === 'number' ? config.members : undefined, epochs: typeof config.epochs === 'number' ? config.epochs : undefined };
    });
  } finally {
    await store.close();
  }
}

function spawnJob(job: string, args: string[], options: { env?: Readonly<Record<string, string>>; nodeFlags?: readonly string[]; stdio: 'inherit' | ['ignore', number, number]; nice?: number }): ChildProcess {
  const command = [process.execPath, ...(options.nodeFlags ?? []), '--import', 'tsx', join(ROOT, 'jobs', `${job}.ts`), ...args];
  // nice(1) where it exists (Linux, macOS); elsewhere the training runs at the normal priority.
  const [file, ...rest] = options.nice !== undefined && process.platform !== 'win32' ? ['nice', '-n', String(options.nice), ...command] : command;
  return spawn(file!, rest, { cwd: ROOT, env: { ...process.env, ...options.env }, stdio: options.stdio });
}

/** Runs a job to its end with this terminal; a failure stops the quick start with the job's exit code. */
async function runStep(job: string, args: string[]): Promise<void> {
  const child = spawnJob(job, args, { stdio: 'inherit' });
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  if (code !== 0) throw new AppError('QUICKSTART_STEP_FAILED', `npm run ${job === 'migrate' ? 'db:migrate' : job} failed (exit code ${code}); the quick start stopped there`);
}
