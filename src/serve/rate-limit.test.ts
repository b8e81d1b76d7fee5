import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../cli/throwaway-postgres.js';
import { KEYS } from '../../test/support/served-shop.js';
import { runJobProcess, startServeProcess, type ServeProcess } from '../../test/support/run-job.js';
import { scratchStore } from '../../test/support/test-stores.js';
import { findRedisServer, startThrowawayRedis, type ThrowawayRedis } from '../../test/support/throwaway-redis.js';
import { until } from '../../test/support/until.js';
import { RateLimiter } from './rate-limit.js';
import { connectRedis, redactRedisUrl } from './redis-client.js';

const quiet = (): void => {};

describe('redis URLs in logs', () => {
  it('hide the password, keep the rest', () => {
    expect(redactRedisUrl('redis://shop:s3cret@cache.internal:6380/2')).toBe('redis://shop:***@cache.internal:6380/2');
    expect(redactRedisUrl('redis://127.0.0.1:6379')).toBe('redis://127.0.0.1:6379');
  });
});

describe.skipIf(!findRedisServer())('rate limits in redis [redis]', () => {
  let redis: ThrowawayRedis;
  const clients: Redis[] = [];
  beforeAll(async () => {
    redis = await startThrowawayRedis();
  });
  afterAll(async () => {
    for (const client of clients) client.disconnect();
    await redis?.stop();
  });
  const replica = async (limit: number, windowSeconds: number): Promise<RateLimiter> => {
    const client = await connectRedis(redis.url, quiet);
    clients.push(client);
    return RateLimiter.onRedis(client, limit, windowSeconds);
  };

  it('two limiters on their own connections draw from one budget per key', async () => {
    const [a, b] = [await replica(5, 60), await replica(5, 60)];
    expect(a.store).toBe('redis');
    const allowed: boolean[] = [];
    for (let i = 0; i < 4; i++) for (const limiter of [a, b]) allowed.push((await limiter.take('shared-key')).allowed);
    expect(allowed.filter(Boolean)).toHaveLength(5);
    const refused = await b.take('shared-key');
    expect(refused).toMatchObject({ allowed: false, remaining: 0 });
    expect(refused.retryAfterSeconds).toBeGreaterThanOrEqual(1);
    expect((await a.take('another-key')).allowed).toBe(true);
  });

  it('fall back to their own budget while redis is down, and share again once it is back', async () => {
    const logged: string[] = [];
    const client = await connectRedis(redis.url, (message) => logged.push(message));
    clients.push(client);
    const limiter = RateLimiter.onRedis(client, 3, 60);
    expect((await limiter.take('outage-key')).allowed).toBe(true);
    await redis.stop();
    await until(() => client.status !== 'ready', 5_000);
    // Requests keep being answered, from this process's budget of 3, not failed.
    const during = [await limiter.take('outage-key'), await limiter.take('outage-key'), await limiter.take('outage-key'), await limiter.take('outage-key')];
    expect(during.map((t) => t.allowed)).toEqual([true, true, true, false]);
    expect(logged.some((m) => m.includes('lost'))).toBe(true);
    // A new server on the same port: the client reconnects by itself and the budget is Redis's again (empty server, full budget).
    redis = await startThrowawayRedis(redis.port);
    await until(() => client.status === 'ready', 10_000);
    expect((await limiter.take('outage-key')).remaining).toBe(2);
    expect(logged.some((m) => m.includes('reachable again'))).toBe(true);
  }, 30_000);

  it('a server that cannot reach its redis at start-up says so', async () => {
    const closed = `redis://127.0.0.1:${await freePort()}`;
    await expect(connectRedis(closed, quiet, 1_000)).rejects.toMatchObject({ code: 'REDIS_UNAVAILABLE' });
  });
});

describe.skipIf(!findRedisServer())('two server processes sharing one redis [sqlite] [redis]', () => {
  let redis: ThrowawayRedis;
  let store: Awaited<ReturnType<typeof scratchStore>>;
  const replicas: ServeProcess[] = [];
  const env = { ATTNREC_API_KEYS: `read:${KEYS.read},write:${KEYS.write},admin:${KEYS.admin}` };
  beforeAll(async () => {
    redis = await startThrowawayRedis();
    store = await scratchStore('sqlite');
    // Two processes on one SQLite file; their budgets are in redis, not in the database or in memory.
    const args = ['--database-url', store.target.url, '--workers', '1', '--model-poll', '0', '--user-cache', '0', '--rate-limit', '10'];
    replicas.push(...(await Promise.all([startServeProcess(args, { ...env, ATTNREC_REDIS_URL: redis.url }), startServeProcess([...args, '--redis-url', redis.url], env)])));
  }, 120_000);
  afterAll(async () => {
    await Promise.all(replicas.map((r) => r.kill('SIGTERM')));
    await store?.dispose();
    await redis?.stop();
  });

  it('enforce one limit per key between them', async () => {
    const [a, b] = [replicas[0]!, replicas[1]!];
    expect(a.stderr()).toContain('kept in redis, shared by the replicas');
    const get = (replica: ServeProcess, key: string): Promise<Response> => fetch(`${replica.url}/v1/models`, { headers: { authorization: `Bearer ${key}` } });
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) for (const replica of [a, b]) statuses.push((await get(replica, KEYS.read)).status);
    // Each alone would have answered its 8.
    expect(statuses.filter((s) => s === 200)).toHaveLength(10);
    expect(statuses.filter((s) => s === 429)).toHaveLength(6);
    const refused = await get(a, KEYS.read);
    expect(refused.status).toBe(429);
    expect(refused.headers.get('content-type')).toContain('application/problem+json');
    expect((await refused.json()).code).toBe('RATE_LIMITED');
    expect((await get(b, KEYS.write)).status).toBe(200);
  }, 60_000);

  it('a server whose redis cannot be reached exits with code 2 and says why', async () => {
    const closed = `redis://:hunter2@127.0.0.1:${await freePort()}`;
    const result = await runJobProcess('serve', ['--port', '0', '--database-url', store.target.url, '--workers', '1', '--redis-url', closed], env);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('REDIS_UNAVAILABLE');
    expect(result.stderr).not.toContain('hunter2');
  }, 60_000);
});
