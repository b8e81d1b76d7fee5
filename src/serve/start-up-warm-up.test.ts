import { afterEach, expect, it } from 'vitest';
import { servedShop, type ServedShop } from '../../test/support/served-shop.js';
import { describeEachProvider } from '../../test/support/test-stores.js';
import { Authenticator } from './auth.js';
import { parseApiKeys } from './config.js';

it("authenticates the warm-up's temporary key until it is revoked, and never a configured key's role above its own", () => {
  const auth = new Authenticator(parseApiKeys('read:a-read-key-for-tests'));
  const key = auth.temporaryKey('write', 'start-up warm-up');
  expect(key.secret).toMatch(/^[\w-]{43}$/);
  expect(auth.identify(key.secret)).toMatchObject({ role: 'write', label: 'start-up warm-up' });
  expect(auth.identify('a-read-key-for-tests')).toMatchObject({ role: 'read' });
  key.revoke();
  expect(auth.identify(key.secret)).toBeUndefined();
  expect(auth.identify('a-read-key-for-tests')).toMatchObject({ role: 'read' });
});

describeEachProvider('start-up warm-up of the request path', (provider) => {
  let shop: ServedShop | undefined;
  afterEach(async () => {
    await shop?.dispose();
    shop = undefined;
  });

  it('sends the shopper routes before it listens, and leaves no event, impression, count or key behind', async () => {
    const lines: string[] = [];
    // A count of impressions would show a recorded one within the recorder's 1-s flush; 5 ms batches make it immediate.
    shop = await servedShop(provider, { warmUpRequests: 30 }, { log: (message) => lines.push(message), tuning: { impressions: { flushMs: 5 } } });
    const warmed = lines.find((l) => l.startsWith('request path warmed'));
    expect(warmed).toMatch(/^request path warmed: 30 requests to itself in \d+ ms \(30 2xx\)$/);
    // The events were dry runs (timestamped now; the shop's log is years old), and nothing was shown to anyone.
    expect(await shop.store.prisma.event.count({ where: { ts: { gte: new Date(Date.now() - 3_600_000) } } })).toBe(0);
    await new Promise((r) => setTimeout(r, 100));
    expect(await shop.store.prisma.impression.count()).toBe(0);
    const metrics = (await shop.call('/metrics', { role: 'none' })).body as string;
    expect(metrics).not.toMatch(/^attnrec_recommendations_total\{/m);
    expect(metrics).not.toMatch(/^attnrec_user_cache_total\{/m);
    expect(metrics).not.toMatch(/^attnrec_http_request_duration_seconds_count\{method="POST",route="\/v1\/events"/m);
    // Shoppers' requests are recorded and counted as ever.
    expect((await shop.call('/v1/users/user-3/recommendations', { role: 'read' })).status).toBe(200);
    await new Promise((r) => setTimeout(r, 100));
    expect(await shop.store.prisma.impression.count()).toBe(1);
    expect((await shop.call('/metrics', { role: 'none' })).body).toMatch(/^attnrec_recommendations_total\{strategy="model"\} 1$/m);
  }, 120_000);

  it('is left out with --warm-up-requests 0', async () => {
    const lines: string[] = [];
    shop = await servedShop(provider, { warmUpRequests: 0 }, { log: (message) => lines.push(message) });
    expect(lines.some((l) => l.startsWith('request path warmed'))).toBe(false);
  }, 120_000);
});
