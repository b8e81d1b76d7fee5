import { Agent, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { earliestShoppers } from '../data/serving-reader.js';
import type { ServeContext } from './context.js';

/** Shoppers whose histories the warm-up's requests are made of. */
const SHOPPERS = 32;
/** Events of a warm-up session at most (the serve benchmark's long sessions are 30). */
const SESSION_EVENTS = 30;
/** Requests in flight at once: two, so concurrent requests (batched inference) are among the paths run. */
const CONNECTIONS = 2;

export interface WarmUpSummary {
  readonly requests: number;
  /** Answers by status class, e.g. { '2xx': 118, '5xx': 2 }. */
  readonly statuses: Record<string, number>;
  readonly ms: number;
}

/**
 * The start-up warm-up of the request path. Before the server takes traffic
 * it sends itself `requests` requests over loopback HTTP, through the whole
 * stack shoppers meet (HTTP parsing, Express, authentication, body parsing,
 * validation, the recommender, the inference workers, serialisation), made of
 * stored shoppers' histories: in turn an event as a dry run (POST /v1/events
 * ?dryRun=true: written and rolled back), recommendations for the shopper, and
 * an anonymous session of their last events.
 *
 * Why: a server that took traffic the moment it listened answered its first
 * quarter-second of requests in 100-200 ms (p99 of the first 10 s at 250 req/s
 * 119-159 ms against a steady 11-15), while V8 compiled the request path one
 * request at a time on cores already busy; the same server after 100 such
 * requests from the load generator, 21-37 ms (docs/serving-performance.md,
 * "The first requests after a start").
 *
 * Nothing of it stays: the events are rolled back, no impression is recorded
 * (ImpressionRecorder.discardWhile), the request counters are reset after it,
 * and it authenticates with a random key that is revoked when it ends. It runs
 * on `server`, listening on an ephemeral loopback port, before the server
 * listens where shoppers reach it. What it cannot do (no stored shopper, no
 * model yet) it leaves out; a failed request is counted, never fatal.
 */
export async function warmUpRequestPath(server: Server, ctx: ServeContext, requests: number): Promise<WarmUpSummary | undefined> {
  if (requests <= 0) return undefined;
  const started = performance.now();
  const bodies = await warmUpRequests(ctx, requests);
  if (bodies.length === 0) return undefined;
  const key = ctx.auth.temporaryKey('write', 'start-up warm-up');
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const agent = new Agent({ keepAlive: true, maxSockets: CONNECTIONS });
  const statuses: Record<string, number> = {};
  try {
    await ctx.impressions.discardWhile(async () => {
      let next = 0;
      const lane = async (): Promise<void> => {
        while (next < bodies.length) {
          const status = await send(agent, port, key.secret, bodies[next++]!);
          const family = status === 0 ? 'error' : `${Math.floor(status / 100)}xx`;
          statuses[family] = (statuses[family] ?? 0) + 1;
        }
      };
      await Promise.all(Array.from({ length: CONNECTIONS }, lane));
    });
  } finally {
    key.revoke();
    agent.destroy();
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
    ctx.metrics.forgetRequests();
  }
  return { requests: bodies.length, statuses, ms: performance.now() - started };
}

interface WarmUpRequest {
  readonly method: 'GET' | 'POST';
  readonly path: string;
  readonly body?: string;
}

/** The requests, in turn per shopper: a dry-run event, their recommendations, a session of their last events. */
async function warmUpRequests(ctx: ServeContext, count: number): Promise<WarmUpRequest[]> {
  const shoppers = await earliestShoppers(ctx.store, SHOPPERS);
  if (shoppers.length === 0) return [];
  const typeNames = new Map([...(await ctx.reader.eventTypes())].map(([name, id]) => [id, name]));
  const recommending = ctx.models.current !== undefined || ctx.config.fallback === 'popular';
  // One history read per shopper; their requests repeat, in the same order, up to `count`.
  const lap: WarmUpRequest[] = [];
  for (const shopper of shoppers) {
    if (lap.length >= count) break;
    const history = await ctx.reader.userHistory(shopper.id);
    const events: { item: string; type: string }[] = [];
    for (let j = Math.max(0, history.items.length - SESSION_EVENTS); j < history.items.length; j++) {
      const item = ctx.catalog.byInternalId(history.items[j]!);
      if (item) events.push({ item: item.externalId, type: typeNames.get(history.types[j]!) ?? 'view' });
    }
    const last = events.at(-1);
    if (last) lap.push({ method: 'POST', path: '/v1/events?dryRun=true', body: JSON.stringify({ events: [{ userId: shopper.externalId, itemId: last.item, type: last.type }] }) });
    if (!recommending) continue;
    lap.push({ method: 'GET', path: `/v1/users/${encodeURIComponent(shopper.externalId)}/recommendations?k=10` });
    if (events.length > 0) lap.push({ method: 'POST', path: '/v1/sessions/recommendations', body: JSON.stringify({ events, k: 10 }) });
  }
  return lap.length === 0 ? [] : Array.from({ length: count }, (_, i) => lap[i % lap.length]!);
}

/** One request; resolves with its status (0: it failed below HTTP). The body is read and dropped. */
function send(agent: Agent, port: number, secret: string, r: WarmUpRequest): Promise<number> {
  return new Promise((resolve) => {
    const headers: Record<string, string> = { authorization: `Bearer ${secret}` };
    if (r.body !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(Buffer.byteLength(r.body));
    }
    const req = request({ host: '127.0.0.1', port, method: r.method, path: r.path, agent, headers }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', () => resolve(0));
    });
    req.on('error', () => resolve(0));
    req.end(r.body);
  });
}
