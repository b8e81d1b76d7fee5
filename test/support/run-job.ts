import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

export const ROOT = join(import.meta.dirname, '..', '..');

export interface JobResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** The signal that ended the job, if one did. */
  readonly signal: NodeJS.Signals | null;
}

/** Runs a job the way a user does (`tsx jobs/<name>.ts …`) in a child process. */
export function runJobProcess(job: string, args: string[], env: Record<string, string> = {}, onStart?: (child: ChildProcess) => void): Promise<JobResult> {
  return runScriptProcess(join(ROOT, 'jobs', `${job}.ts`), args, env, onStart);
}

/** Runs a TypeScript file through tsx in a child process from the repository root; resolves when it closes. */
export function runScriptProcess(script: string, args: string[], env: Record<string, string> = {}, onStart?: (child: ChildProcess) => void): Promise<JobResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, stdout, stderr, signal }));
    onStart?.(child);
  });
}

/**
 * Starts `npm start` (jobs/serve.ts) on port 0 in a child process, with extra
 * environment variables; resolves with its URL once it listens. `kill` sends
 * the signal and waits for the exit. Used by tests and by the serve benchmark.
 */
export function startServeProcess(args: string[], env: Record<string, string> = {}): Promise<{ url: string; pid: number; kill(signal: NodeJS.Signals): Promise<void> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'jobs', 'serve.ts'), '--port', '0', ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      const match = /listening on (\S+)/.exec(chunk.toString());
      if (match) resolve({ url: match[1]!, pid: child.pid!, kill: async (signal) => void (child.exitCode === null && child.kill(signal), await exited) });
    });
    child.once('exit', (code) => reject(new Error(`serve exited early with ${code}: ${stderr}`)));
  });
}
