import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openStore } from '../src/data/store.js';
import { runJobProcess, startServeProcess } from '../test/support/run-job.js';

describe('npm start killed under load', () => {
  it('loses no acknowledged event: SIGKILL mid-stream, restart, every 200 is stored', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'attnrec-crash-'));
    const database = `file:${join(dir, 'crash.db')}`;
    expect((await runJobProcess('migrate', ['--database-url', database])).code).toBe(0);
    const key = 'crash-test-write-key';
    const first = await startServeProcess(['--database-url', database, '--api-keys', `write:${key}`, '--rate-limit', '0']);
    // The allocator setting npm start gives the server reaches the process (Linux: its environment is readable).
    if (process.platform === 'linux' && process.env.MALLOC_ARENA_MAX === undefined) {
      expect(readFileSync(`/proc/${first.pid}/environ`, 'utf8').split('\0')).toContain('MALLOC_ARENA_MAX=2');
    }
    // So does its one V8 platform thread (SERVER_NODE_FLAGS), as the server's start-up log says.
    expect(first.stderr()).toMatch(/"V8 platform threads: 1"/);

    const acknowledged: string[] = [];
    let sent = 0;
    let stop = false;
    const writer = async (w: number): Promise<void> => {
      for (let batch = 0; !stop; batch++) {
        const ids = Array.from({ length: 50 }, (_, j) => `w${w}-b${batch}-e${j}`);
        sent += ids.length;
        try {
          const r = await fetch(`${first.url}/v1/events`, {
            method: 'POST',
            headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
            body: JSON.stringify({ events: ids.map((eventId, j) => ({ userId: `u${w}`, itemId: `i${j}`, type: 'view', timestamp: 1_700_000_000_000 + batch * 100 + j, eventId })) }),
          });
          if (r.status === 200) acknowledged.push(...ids);
        } catch {
          return; // the server died with this request in flight: not acknowledged
        }
      }
    };
    const writers = Array.from({ length: 4 }, (_, w) => writer(w));
    await new Promise((r) => setTimeout(r, 1_500));
    await first.kill('SIGKILL');
    stop = true;
    await Promise.all(writers);
    expect(acknowledged.length).toBeGreaterThan(0);
    expect(sent).toBeGreaterThan(acknowledged.length); // some were in flight when it died

    // Restarted on the same database: every acknowledged event is there.
    const second = await startServeProcess(['--database-url', database, '--api-keys', `write:${key}`, '--rate-limit', '0']);
    const store = openStore(database);
    try {
      const stored = new Set((await store.prisma.event.findMany({ select: { eventId: true } })).map((e) => e.eventId));
      expect(acknowledged.filter((id) => !stored.has(id))).toEqual([]);
      const health = await fetch(`${second.url}/health/live`);
      expect(health.status).toBe(200);
    } finally {
      await store.close();
      await second.kill('SIGTERM');
    }
  }, 60_000);
});
