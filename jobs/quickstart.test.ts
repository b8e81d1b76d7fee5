import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT, runJobProcess } from '../test/support/run-job.js';
import { shopLog } from '../test/support/served-shop.js';
import { until } from '../test/support/until.js';

const dir = mkdtempSync(join(tmpdir(), 'attnrec-quickstart-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('jobs/quickstart', () => {
  it('documents every flag in --help', async () => {
    const { code, stdout } = await runJobProcess('quickstart', ['--help']);
    expect(code).toBe(0);
    for (const flag of ['--sample', '--port', '--database-url', '--[no-]background', '--model-poll', '--artifacts', '--train-log', '--help']) expect(stdout).toContain(flag);
  });

  it('serves a quick first version, then switches to the default model trained in the background; Ctrl-C stops both', async () => {
    const sample = join(dir, 'shop.csv');
    writeFileSync(sample, shopLog(80, 3));
    const log = join(dir, 'train.log');
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'jobs', 'quickstart.ts'), '--sample', sample, '--database-url', `file:${join(dir, 'shop.db')}`, '--port', '0', '--model-poll', '0.5', '--artifacts', join(dir, 'models'), '--train-log', log], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr!.on('data', () => {});
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      await until(() => /listening on (\S+)/.test(stdout), 120_000, 250);
      const url = /listening on (\S+)/.exec(stdout)![1]!;
      const recommend = async (): Promise<{ strategy: string; modelVersion: number }> =>
        (await (await fetch(`${url}/v1/users/user-1/recommendations?k=3`, { headers: { authorization: 'Bearer dev-read-key' } })).json()) as { strategy: string; modelVersion: number };
      expect(await recommend()).toMatchObject({ strategy: 'model', modelVersion: 1 });
      expect(stdout).toContain('training a quick first version');
      expect(stdout).toContain('training the default model in the background');
      // The background training activates version 2; the server picks it up by itself.
      await until(async () => (await recommend()).modelVersion === 2, 240_000, 250);
      expect(readFileSync(log, 'utf8')).toContain('model version 2');
      child.kill('SIGINT');
      expect(await exited).toBe(0);
      // Run again: a version is active and a default one is ready, so nothing is trained.
      const again = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'jobs', 'quickstart.ts'), '--sample', sample, '--database-url', `file:${join(dir, 'shop.db')}`, '--port', '0', '--artifacts', join(dir, 'models'), '--train-log', log], { cwd: ROOT, stdio: ['ignore', 'pipe', 'ignore'] });
      let second = '';
      again.stdout!.on('data', (chunk: Buffer) => (second += chunk.toString()));
      const secondExit = new Promise<number | null>((resolve) => again.once('exit', (code) => resolve(code)));
      await until(() => /listening on (\S+)/.test(second), 120_000, 250);
      again.kill('SIGINT');
      expect(await secondExit).toBe(0);
      expect(second).not.toContain('training');
      expect(existsSync(join(dir, 'models', 'v3'))).toBe(false);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  }, 420_000);
});
