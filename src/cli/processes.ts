import { spawn } from 'node:child_process';
import { join } from 'node:path';

/** The repository root (this file is src/cli/processes.ts). */
export const ROOT = join(import.meta.dirname, '..', '..');

/** A server started by startServeProcess. */
export interface ServeProcess {
  readonly url: string;
  readonly pid: number;
  /** Sends the signal (unless the process has already exited) and resolves once it has exited. */
  kill(signal: NodeJS.Signals): Promise<void>;
  /** Everything the process has written to stderr so far (its JSON log lines). */
  stderr(): string;
  /** Whether the process is still running. */
  running(): boolean;
}

/**
 * What the server's process environment sets for the C allocator, as the
 * `npm start` script does (package.json; a test checks they agree): glibc
 * otherwise keeps up to 8 malloc arenas per core, one per thread that
 * allocates, and the inference workers' freed model-loading and message
 * buffers stayed resident in theirs. With 2 arenas the server's RSS after
 * its warm-up fell 632 → 514 MB (serve benchmark store, 2 workers), and on
 * a machine that pages out cold memory, resident memory is latency
 * (docs/serving-performance.md, "Resident memory").
 */
export const SERVER_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: '2' };

/**
 * The Node options the server's process starts with, as the `npm start`
 * script gives them (package.json; a test checks they agree).
 *
 * `--v8-pool-size=1`: one V8 platform thread instead of Node's 4. Those
 * threads do every isolate's background work (concurrent marking, the helpers
 * of a scavenge, optimising compiles) at the process's priority, whichever
 * thread it is for. An activation starts the background inference worker, a
 * fresh isolate that loads its modules and the new version. On 2 cores the
 * four platform threads then took 1.2 s of CPU in its first 3 s (perf) beside
 * the live requests, though the worker itself runs under SCHED_IDLE. With one
 * of them, the 10-s window after an activation had a p99 of 14.0-17.6 ms
 * against 16.9-24.9 (an emulation at half speed, four and five activations,
 * alternating), and saturation and cached requests did not move beyond the
 * spread (docs/serving-performance.md, "One V8 platform thread").
 */
export const SERVER_NODE_FLAGS: readonly string[] = ['--v8-pool-size=1'];

/**
 * Starts `npm start` (jobs/serve.ts, SERVER_NODE_FLAGS, SERVER_ENV) on port 0 in a child process, with extra
 * environment variables; resolves with its URL once it listens (its stdout
 * says `listening on <url>`), rejects if it exits before that. Used by the
 * tests (through test/support/run-job.ts) and by the serve benchmark.
 */
export function startServeProcess(args: string[], env: Record<string, string> = {}): Promise<ServeProcess> {
  const child = spawn(process.execPath, [...SERVER_NODE_FLAGS, '--import', 'tsx', join(ROOT, 'jobs', 'serve.ts'), '--port', '0', ...args], { cwd: ROOT, env: { ...SERVER_ENV, ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve, reject) => {
    let stdout = '';
    let listening = false;
    child.stdout!.on('data', (chunk: Buffer) => {
      if (listening) return;
      stdout += chunk.toString();
      const match = /listening on (\S+)/.exec(stdout);
      if (!match) return;
      listening = true;
      resolve({
        url: match[1]!,
        pid: child.pid!,
        kill: async (signal) => void (child.exitCode === null && child.signalCode === null && child.kill(signal), await exited),
        stderr: () => stderr,
        running: () => child.exitCode === null && child.signalCode === null,
      });
    });
    child.once('exit', (code) => reject(new Error(`serve exited early with ${code}: ${stderr}`)));
  });
}
