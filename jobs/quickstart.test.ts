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
    /** The quick start on the generated shop, in a child process: its output so far, its exit, and its URL once it listens. */
    const quickstart = (extra: string[]) => {
      const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'jobs', 'quickstart.ts'), '--sample', sample, '--database-url', `file:${join(dir, 'shop.db')}`, '--port', '0', '--artifacts', join(dir, 'models'), '--train-log', log, ...extra], {
        cwd: ROOT,
        stdio: ['ignore', 'pipe', 'ignore'],
      });
      let output = '';
      child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      const url = until(() => /listening on (\S+)/.test(output), 120_000, 250).then(() => /listening on (\S+)/.exec(output)![1]!);
      return { child, exited, url, output: () => output };
    };
    const first = quickstart(['--model-poll', '0.5']);
    try {
      const url = await first.url;
      const recommend = async (): Promise<{ strategy: string; modelVersion: number }> =>
        (await (await fetch(`${url}/v1/users/user-1/recommendations?k=3`, { headers: { authorization: 'Bearer dev-read-key' } })).json()) as { strategy: string; modelVersion: number };
      expect(await recommend()).toMatchObject({ strategy: 'model', modelVersion: 1 });
      expect(first.output()).toContain('training a quick first version');
      expect(first.output()).toContain('training the default model in the background');
      // The background training activates version 2; the server picks it up by itself.
      await until(async () => (await recommend()).modelVersion === 2, 240_000, 250);
      expect(readFileSync(log, 'utf8')).toContain('model version 2');
      first.child.kill('SIGINT');
      expect(await first.exited).toBe(0);
      // Run again: a version is active and a default one is ready, so nothing is trained.
      const again = quickstart([]);
      await again.url;
      again.child.kill('SIGINT');
      expect(await again.exited).toBe(0);
      expect(again.output()).not.toContain('training');
      expect(existsSync(join(dir, 'models', 'v3'))).toBe(false);
    } finally {
      if (first.child.exitCode === null) first.child.kill('SIGKILL');
    }
  }, 420_000);
});
