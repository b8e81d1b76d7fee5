import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../src/cli/throwaway-postgres.js';

/** Debian's redis-server, or ATTNREC_REDIS_SERVER; undefined when neither runs. */
export function findRedisServer(): string | undefined {
  const candidate = process.env.ATTNREC_REDIS_SERVER ?? 'redis-server';
  return spawnSync(candidate, ['--version'], { encoding: 'utf8' }).status === 0 ? candidate : undefined;
}

export interface ThrowawayRedis {
  readonly url: string;
  readonly port: number;
  /** Stops the server (SIGKILL, like a crash) and removes its folder. */
  stop(): Promise<void>;
}

/** A Redis server on a free loopback port, nothing persisted; ready when this resolves. */
export async function startThrowawayRedis(port?: number): Promise<ThrowawayRedis> {
  const bin = findRedisServer();
  if (!bin) throw new Error('redis-server is not installed (apt-get install redis-server, or set ATTNREC_REDIS_SERVER)');
  const chosen = port ?? (await freePort());
  const dir = mkdtempSync(join(tmpdir(), 'attnrec-redis-'));
  const child = spawn(bin, ['--port', String(chosen), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      if (output.includes('Ready to accept connections')) resolve();
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) => reject(new Error(`redis-server exited with ${code}: ${output.slice(-2_000)}`)));
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    url: `redis://127.0.0.1:${chosen}`,
    port: chosen,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
