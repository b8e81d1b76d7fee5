import { existsSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../model/backend.js';
import { memoPath } from '../model/representation-memo.js';
import { KEYS, servedShop, type ServedShop } from '../../test/support/served-shop.js';
import { SERVE_DEFAULTS, parseApiKeys, validateServeConfig } from './config.js';
import { startServer, type RunningServer } from './server.js';

/**
 * A version's stored representations (src/model/representation-memo.ts) as a
 * server meets them: the training job's fill the user cache before the server
 * listens; a server that stops stores its cache; the next start reads that,
 * events since included, and answers exactly what computing would.
 */
describe('stored representations and the user cache', () => {
  let shop: ServedShop;
  const messages: string[] = [];
  let second: RunningServer | undefined;

  beforeAll(async () => {
    await selectBackend('wasm');
    shop = await servedShop('sqlite', { workers: 1 }, { log: (message) => messages.push(message) });
  });

  afterAll(async () => {
    await second?.close();
    await shop?.dispose();
  });

  const recommendations = async (url: string, user: string): Promise<{ item: string; score: number }[]> => {
    const response = await fetch(`${url}/v1/users/${user}/recommendations?k=5`, { headers: { authorization: `Bearer ${KEYS.read}` } });
    expect(response.status).toBe(200);
    return ((await response.json()) as { items: { item: string; score: number }[] }).items.map(({ item, score }) => ({ item, score }));
  };
  const cacheHits = async (url: string): Promise<number> => {
    const text = await (await fetch(`${url}/metrics`)).text();
    return Number(/^attnrec_user_cache_total\{result="hit"\} (\S+)$/m.exec(text)?.[1] ?? 0);
  };

  it('fills the cache from the training job\'s representations before listening, stores it on stopping, and reads it back at the next start', async () => {
    const version = await shop.store.prisma.modelVersion.findFirstOrThrow({ where: { active: true } });
    const path = memoPath(version.artifactPath, 'exact'); // 12 items: too few for the 8-bit table
    expect(existsSync(path)).toBe(true);
    // All 120 shoppers were filed before the server listened: the first request is a hit.
    expect(messages.some((m) => /^user cache: 120 users before listening, read from stored representations/.test(m))).toBe(true);
    await until(() => messages.some((m) => /user cache warmed for model version \d+: 120 users .*, 120 of them read from the version's stored representations/.test(m)));
    const before = await cacheHits(shop.url);
    const fromMemo = await recommendations(shop.url, 'user-3');
    expect(await cacheHits(shop.url)).toBe(before + 1);

    // user-7 views something: the cache recomputes them; that is what the server stores when it stops.
    expect((await shop.call('/v1/events', { body: { events: [{ userId: 'user-7', itemId: 'sku-2', type: 'view' }] }, role: 'write' })).status).toBe(200);
    const afterEvent = await recommendations(shop.url, 'user-7');
    const written = statSync(path).mtimeMs;
    await shop.server.close();
    // The training job's 52 distinct histories (the shop's shoppers repeat each other's), and user-7's new one.
    expect(messages.some((m) => /^stored the user cache's representations for model version \d+ \(53 distinct histories\)/.test(m))).toBe(true);
    expect(statSync(path).mtimeMs).toBeGreaterThan(written);

    // The next start on the same store reads all 120, user-7's new history among them, and answers the same.
    const next: string[] = [];
    second = await startServer(
      validateServeConfig({ ...SERVE_DEFAULTS, port: 0, databaseUrl: shop.store.target.url, apiKeys: parseApiKeys(`read:${KEYS.read},write:${KEYS.write},admin:${KEYS.admin}`), workers: 1, modelPollSeconds: 0 }),
      (message) => next.push(message),
    );
    expect(next.some((m) => /^user cache: 120 users before listening, read from stored representations/.test(m))).toBe(true);
    const hits = await cacheHits(second.url);
    expect(await recommendations(second.url, 'user-7')).toEqual(afterEvent);
    expect(await recommendations(second.url, 'user-3')).toEqual(fromMemo);
    expect(await cacheHits(second.url)).toBe(hits + 2);
  });

  it('computes what no stored representation holds: a store without them warms as before', async () => {
    const version = await shop.store.prisma.modelVersion.findFirstOrThrow({ where: { active: true } });
    await second?.close();
    second = undefined;
    rmSync(memoPath(version.artifactPath, 'exact'));
    const next: string[] = [];
    second = await startServer(
      validateServeConfig({ ...SERVE_DEFAULTS, port: 0, databaseUrl: shop.store.target.url, apiKeys: parseApiKeys(`read:${KEYS.read},write:${KEYS.write},admin:${KEYS.admin}`), workers: 1, modelPollSeconds: 0 }),
      (message) => next.push(message),
    );
    expect(next.some((m) => /^user cache: \d+ users before listening/.test(m))).toBe(true);
    await until(() => next.some((m) => /user cache warmed for model version \d+: 120 users .*, 0 of them read .*\(none stored\)/.test(m)));
    expect(existsSync(join(version.artifactPath, 'model.json'))).toBe(true);
  });
});

async function until(condition: () => boolean, ms = 10_000): Promise<void> {
  const started = Date.now();
  while (!condition()) {
    if (Date.now() - started > ms) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
