import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from '../../src/cli/processes.js';

// Started servers live in src/ so the benchmarks can start them too (nothing imports test/).
export { ROOT, startServeProcess, type ServeProcess } from '../../src/cli/processes.js';

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
