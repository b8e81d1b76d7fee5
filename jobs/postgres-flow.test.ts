import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openStore } from '../src/data/store.js';
import { runJobProcess, startServeProcess } from '../test/support/run-job.js';
import { shopLog } from '../test/support/served-shop.js';
import { postgresAvailable, scratchDatabase, type ScratchDatabase } from '../test/support/test-stores.js';

describe.skipIf(!postgresAvailable())('the whole flow on PostgreSQL through the jobs: import → train → serve → ingest', () => {
  let database: ScratchDatabase | undefined;
  afterAll(async () => {
    await database?.dispose();
  });

  it('runs every step against a real PostgreSQL server, training on a window of the events', async () => {
    database = await scratchDatabase('postgresql');
    const dir = mkdtempSync(join(tmpdir(), 'attnrec-pg-flow-'));
    writeFileSync(join(dir, 'events.csv'), shopLog(120, 9));
    const imported = await runJobProcess('import', ['--database-url', database.url, '--json', join(dir, 'events.csv')]);
    expect(imported.code).toBe(0);
    expect(JSON.parse(imported.stdout)).toMatchObject({ database: 'postgresql', events: { duplicates: 0 } });

    const trained = await runJobProcess('train', [
      '--database-url', database.url, '--artifacts', join(dir, 'models'), '--json', '--quiet',
      '--epochs', '2', '--dim', '16', '--blocks', '1', '--max-length', '10', '--negatives', '8', '--batch-size', '32',
      '--backend', 'wasm', '--since', '2023-01-01', '--max-events-per-user', '8',
    ]);
    expect(trained.stderr).toBe('');
    expect(trained.code).toBe(0);
    const result = JSON.parse(trained.stdout);
    expect(result).toMatchObject({ versionId: 1, activated: true });
    const store = openStore(database.url);
    try {
      const version = await store.prisma.modelVersion.findUniqueOrThrow({ where: { id: 1 } });
      expect(version.config).toMatchObject({ window: { since: '2023-01-01T00:00:00.000Z', maxEventsPerUser: 8 } });
    } finally {
      await store.close();
    }

    const server = await startServeProcess(['--database-url', database.url, '--api-keys', 'write:pg-flow-write-key']);
    try {
      const headers = { authorization: 'Bearer pg-flow-write-key', 'content-type': 'application/json' };
      const ingest = await fetch(`${server.url}/v1/events`, { method: 'POST', headers, body: JSON.stringify({ events: [{ userId: 'user-1', itemId: 'sku-3', type: 'purchase', eventId: 'pg-flow-1' }] }) });
      expect(await ingest.json()).toEqual({ received: 1, stored: 1, duplicates: 0 });
      const recs = await fetch(`${server.url}/v1/users/user-1/recommendations?k=3`, { headers });
      const body = (await recs.json()) as { strategy: string; modelVersion: number; items: { item: string }[] };
      expect(body).toMatchObject({ strategy: 'model', modelVersion: 1 });
      expect(body.items.map((x) => x.item)).not.toContain('sku-3');
    } finally {
      await server.kill('SIGTERM');
    }
  }, 120_000);
});
