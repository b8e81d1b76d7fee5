import { describe, expect, it } from 'vitest';
import { Authenticator } from './auth.js';
import { MAX_ATTRIBUTION_WINDOW_SECONDS, SERVE_DEFAULTS, devKeys, hashKey, parseApiKeys, parseSpanSeconds, validateServeConfig } from './config.js';
import { LruCache } from './lru-cache.js';
import { RateLimiter } from './rate-limit.js';

describe('API keys', () => {
  it('parses role:key lists, hashes plain keys and accepts pre-hashed ones', () => {
    const hashed = hashKey('a-secret-admin-key');
    const keys = parseApiKeys(`read:a-secret-read-key, write:a-secret-write-key\nadmin:sha256:${hashed.toUpperCase()}`);
    expect(keys.map((k) => k.role)).toEqual(['read', 'write', 'admin']);
    expect(keys[2]!.hash).toBe(hashed);
    expect(JSON.stringify(keys)).not.toContain('a-secret-read-key');
    const auth = new Authenticator(keys);
    expect(auth.identify('a-secret-admin-key')?.role).toBe('admin');
    expect(auth.identify('a-secret-read-key')?.role).toBe('read');
    expect(auth.identify('a-secret-read-kez')).toBeUndefined();
  });

  it('rejects unknown roles and short keys', () => {
    expect(() => parseApiKeys('root:a-long-enough-key')).toThrow(/role one of read, write, admin/);
    expect(() => parseApiKeys('read:short')).toThrow(/shorter than 12/);
    expect(() => parseApiKeys('a-key-without-role')).toThrow(/role:key/);
  });

  it('validates the whole configuration at once', () => {
    expect(validateServeConfig({ ...SERVE_DEFAULTS, apiKeys: devKeys() }).port).toBe(8080);
    expect(() => validateServeConfig({ ...SERVE_DEFAULTS, apiKeys: [] })).toThrow(/at least one API key/);
    expect(() => validateServeConfig({ ...SERVE_DEFAULTS, apiKeys: devKeys(), port: -1, fallback: 'random' })).toThrow(/port.*fallback/);
    expect(() => validateServeConfig({ ...SERVE_DEFAULTS, apiKeys: devKeys(), colour: 'red' })).toThrow(/colour/);
  });
});

describe('RateLimiter (in memory)', () => {
  it('allows the limit per window, refuses beyond it with the time to wait, and starts over with the next window', async () => {
    const limiter = RateLimiter.inMemory(3, 1);
    const taken = [await limiter.take('k'), await limiter.take('k'), await limiter.take('k')];
    expect(taken.map((t) => [t.allowed, t.remaining])).toEqual([
      [true, 2],
      [true, 1],
      [true, 0],
    ]);
    const refused = await limiter.take('k');
    expect(refused).toMatchObject({ allowed: false, remaining: 0, retryAfterSeconds: 1 });
    expect((await limiter.take('other')).allowed).toBe(true);
    await new Promise((r) => setTimeout(r, 1_100));
    expect(await limiter.take('k')).toMatchObject({ allowed: true, remaining: 2 });
  });
});

describe('LruCache', () => {
  it('forgets the least recently used entry and expired ones', () => {
    let now = 1; // lru-cache reads a start time of 0 as "no time to live"
    const cache = new LruCache<string, number>(2, 1_000, () => now);
    cache.set('a', 1);
    cache.set('b', 2);
    expect(cache.get('a')).toBe(1); // a is now the most recent
    cache.set('c', 3);
    expect(cache.get('b')).toBeUndefined();
    expect(cache.get('a')).toBe(1);
    now = 1_002;
    expect(cache.get('c')).toBeUndefined();
    expect(new LruCache<string, number>(0).get('x')).toBeUndefined();
  });
});

describe('spans of time (--attribution-window)', () => {
  it('reads seconds, or a number with s, m, h or d', () => {
    const span = (raw: string): number => parseSpanSeconds(raw, '--attribution-window', MAX_ATTRIBUTION_WINDOW_SECONDS);
    expect([span('90'), span('0.5'), span('45s'), span('30m'), span('24h'), span(' 7d '), span('0')]).toEqual([90, 0.5, 45, 1_800, 86_400, 604_800, 0]);
    expect(SERVE_DEFAULTS.attributionWindowSeconds).toBe(86_400);
  });

  it('refuses anything else, naming the flag', () => {
    for (const raw of ['', 'day', '-1h', '24 hours', '1w', '400d', 'Infinity']) {
      expect(() => parseSpanSeconds(raw, '--attribution-window', MAX_ATTRIBUTION_WINDOW_SECONDS), raw).toThrow(/--attribution-window must be a span of time/);
    }
  });
});
