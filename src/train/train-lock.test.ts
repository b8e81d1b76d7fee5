import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { takeTrainingLock } from './train-lock.js';

/** The pid of a process that has exited. */
function deadPid(): number {
  return spawnSync(process.execPath, ['-e', '0']).pid!;
}

describe('training lock', () => {
  it('is taken and released; a live owner keeps it; a dead or unreadable owner loses it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'attnrec-lock-'));
    const release = takeTrainingLock(dir, 1);
    expect(readFileSync(join(dir, 'train.lock'), 'utf8')).toBe(String(process.pid));
    expect(takeTrainingLock(dir, 1)).toBeTypeOf('function'); // this process already holds it
    release();
    expect(existsSync(join(dir, 'train.lock'))).toBe(false);

    writeFileSync(join(dir, 'train.lock'), String(process.ppid)); // alive, and not this process
    expect(() => takeTrainingLock(dir, 7)).toThrow(expect.objectContaining({ code: 'TRAINING_IN_PROGRESS', message: expect.stringContaining(`process ${process.ppid}`) }));
    for (const left of [String(deadPid()), 'not a pid', '']) {
      writeFileSync(join(dir, 'train.lock'), left);
      takeTrainingLock(dir, 7)();
    }
    expect(readdirSync(dir)).toEqual([]); // nothing left aside
  });

  it('goes to exactly one of eight processes that try at once, with a dead owner\'s lock in place', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'attnrec-lock-race-'));
    writeFileSync(join(dir, 'train.lock'), String(deadPid()));
    const module = pathToFileURL(join(import.meta.dirname, 'train-lock.ts')).href;
    const start = Date.now() + 4_000;
    // Each child waits for the same moment, tries, and holds what it took long enough for the rest to try.
    const script = `
      const { takeTrainingLock } = await import(${JSON.stringify(module)});
      while (Date.now() < ${start}) {}
      try { takeTrainingLock(${JSON.stringify(dir)}, 3); console.log('took'); await new Promise((r) => setTimeout(r, 3000)); }
      catch (error) { console.log(error.code); }`;
    const outcomes = await Promise.all(
      Array.from({ length: 8 }, () => new Promise<string>((resolve, reject) => {
        const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
        let out = '';
        child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
        child.once('error', reject);
        child.once('exit', () => resolve(out.trim()));
      })),
    );
    expect(outcomes.filter((o) => o === 'took')).toHaveLength(1);
    expect(outcomes.filter((o) => o === 'TRAINING_IN_PROGRESS')).toHaveLength(7);
  }, 60_000);
});
