import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, openSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, SERVER_ENV, SERVER_NODE_FLAGS } from '../src/cli/processes.js';
import { migrate } from '../src/data/migrate.js';
import { openStore, type Store } from '../src/data/store.js';

/**
 * Resolves once the server on `port` has warmed its user cache for the version it loaded, so what is
 * measured next is the steady state. Throws if the server process exits first (`logFile` says where
 * its output went). With --user-cache 0 the warm-up finishes at once.
 */
export async function untilUserCacheWarm(server: ChildProcess, port: number, logFile: string): Promise<void> {
  await pollServer(server, logFile, 300, async () => {
    const ready = await fetch(`http://127.0.0.1:${port}/health/ready`)
      .then((r) => r.json() as Promise<{ userCache?: { warmUp?: { version: number | null; finished: boolean } } }>)
      .catch(() => undefined);
    // The warm-up of the loaded version (version null: none has started).
    const warmUp = ready?.userCache?.warmUp;
    return warmUp !== undefined && warmUp.version !== null && warmUp.finished;
  });
}

/** Resolves once `done()` is true, asked every `everyMs`; throws if the server process exits first. */
async function pollServer(server: ChildProcess, logFile: string, everyMs: number, done: () => Promise<boolean>): Promise<void> {
  for (;;) {
    if (server.exitCode !== null) throw new Error(`the server exited (code ${server.exitCode}); see ${logFile}`);
    if (await done()) return;
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/** The API keys of a scratch server (startScratchServer). */
export const SCRATCH_SERVER_KEYS = { read: 'bench-read-key-00000', write: 'bench-write-key-0000', admin: 'bench-admin-key-0000' } as const;

/**
 * Server variants from `--variant name=server flags` specs (repeatable), added to `defaults` (a spec of
 * the same name replaces a default's flags), in order.
 */
export function serverVariants(specs: readonly string[], defaults: readonly (readonly [string, readonly string[]])[] = []): Map<string, readonly string[]> {
  const variants = new Map<string, readonly string[]>(defaults);
  for (const spec of specs) {
    const match = /^([a-z0-9-]+)=(.*)$/i.exec(spec);
    if (!match) throw new Error(`--variant must be name=server flags; got '${spec}'`);
    variants.set(match[1]!, match[2]!.split(' ').filter(Boolean));
  }
  return variants;
}

/**
 * A fresh, migrated copy of a prepared store in bench/scratch (`source`, default serve-bench: the serve
 * benchmark's) as bench/scratch/<name>.db; returns its path. `onStore` sees the copy before it is closed.
 */
export async function copyScratchStore(name: string, source = 'serve-bench', onStore?: (store: Store) => Promise<void>): Promise<string> {
  const scratch = join(ROOT, 'bench', 'scratch');
  const database = join(scratch, `${name}.db`);
  // A WAL left by an earlier run of the same name would be replayed into the fresh copy.
  for (const suffix of ['', '-wal', '-shm']) rmSync(database + suffix, { force: true });
  copyFileSync(join(scratch, `${source}.db`), database);
  const store = openStore(`file:${database}`);
  try {
    await migrate(store);
    await onStore?.(store);
  } finally {
    await store.close();
  }
  return database;
}

export interface ScratchServer {
  readonly port: number;
  readonly process: ChildProcess;
  /** The store's file (a copy of bench/scratch/serve-bench.db). */
  readonly database: string;
  readonly logFile: string;
}

/**
 * A server as `npm start` runs it (jobs/serve.ts in a process of its own, SERVER_NODE_FLAGS, SERVER_ENV) on a fresh copy of
 * the serve benchmark's store (bench/scratch/serve-bench.db, built by `npm run bench -- serve`, or `source`), migrated,
 * with SCRATCH_SERVER_KEYS, rate limits and the model poll off, `--workers` (the server's default when not
 * given) and `flags`; resolves once its user cache is warm (or, with `until: 'listening'`, once it listens).
 * `onStore` sees the copy before the server opens it (to read histories, say). `nodeFlags` go to Node before
 * the entry point (a preload, say), `env` is added to the server's environment.
 */
export async function startScratchServer(options: {
  readonly name: string;
  readonly flags: readonly string[];
  readonly workers?: number;
  readonly port: number;
  readonly onStore?: (store: Store) => Promise<void>;
  readonly nodeFlags?: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
  /** The prepared store to copy, by name in bench/scratch (default serve-bench: the default shape's; serve-bench-1-member for `--members 1`). */
  readonly source?: string;
  /** Resolve once the user cache is warm (default), or as soon as the server listens (its first requests are then a start's). */
  readonly until?: 'warm' | 'listening';
}): Promise<ScratchServer> {
  const database = await copyScratchStore(options.name, options.source, options.onStore);
  const logFile = `bench/scratch/${options.name}.log`;
  const out = openSync(join(ROOT, logFile), 'w');
  const child = spawn(
    process.execPath,
    [
      ...SERVER_NODE_FLAGS,
      ...(options.nodeFlags ?? []),
      '--import', 'tsx', join(ROOT, 'jobs', 'serve.ts'), '--port', String(options.port), '--database-url', `file:${database}`, '--rate-limit', '0', '--model-poll', '0',
      ...(options.workers === undefined ? [] : ['--workers', String(options.workers)]),
      ...options.flags,
    ],
    {
      cwd: ROOT,
      env: { ...process.env, ...SERVER_ENV, ...options.env, ATTNREC_API_KEYS: `read:${SCRATCH_SERVER_KEYS.read},write:${SCRATCH_SERVER_KEYS.write},admin:${SCRATCH_SERVER_KEYS.admin}` },
      stdio: ['ignore', out, out],
    },
  );
  if (options.until === 'listening') await untilListening(child, options.port, logFile);
  else await untilUserCacheWarm(child, options.port, logFile);
  return { port: options.port, process: child, database, logFile };
}

/** Resolves once the server answers /health/live (it answers only once it listens), polled every 20 ms. */
function untilListening(server: ChildProcess, port: number, logFile: string): Promise<void> {
  return pollServer(server, logFile, 20, () => fetch(`http://127.0.0.1:${port}/health/live`).then((r) => r.ok, () => false));
}
