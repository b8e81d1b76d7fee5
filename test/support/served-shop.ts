import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { importEvents } from '../../src/data/import/import-events.js';
import { DEFAULT_SASREC } from '../../src/data/import/sources.js';
import type { Store } from '../../src/data/store.js';
import { Random } from '../../src/random.js';
import { SERVE_DEFAULTS, parseApiKeys, validateServeConfig, type ServeConfig } from '../../src/serve/config.js';
import { startServer, type Logger, type RunningServer, type ServerTuning } from '../../src/serve/server.js';
import { trainRun } from '../../src/train/train-run.js';
import { TcpProxy } from './tcp-proxy.js';
import { until } from './until.js';
import { scratchStore, type Provider } from './test-stores.js';

/**
 * A small shop with a trained model behind a real server on port 0: 12
 * items (sku-0..sku-11; even ones in category "even", odd ones in "odd"),
 * 120 users whose views follow the cycle sku-k → sku-(k+1), each history
 * ending in a purchase. Tiny model (dim 16, one block) trained in seconds.
 */
export const KEYS = { read: 'read-key-0123456789', write: 'write-key-0123456789', admin: 'admin-key-0123456789' } as const;

export interface ServedShop {
  readonly store: Store;
  readonly server: RunningServer;
  readonly url: string;
  readonly dir: string;
  /** The proxy between the server and PostgreSQL, with options.viaProxy. */
  readonly proxy: TcpProxy | undefined;
  /** Trains one more version (not activated); returns its id. */
  trainAnother(seed: number, model?: { maxLength?: number }): Promise<number>;
  /** Authenticated fetch: role picks the key; `none` sends no key. */
  call(path: string, init?: { method?: string; body?: unknown; role?: keyof typeof KEYS | 'none'; headers?: Record<string, string> }): Promise<{ status: number; body: any; headers: Headers }>; // eslint-disable-line @typescript-eslint/no-explicit-any -- response bodies are whatever the route returns; tests assert on them
  dispose(): Promise<void>;
}

export function shopLog(users: number, seed: number): string {
  const random = new Random(seed);
  const lines = ['user_id,item_id,event_type,timestamp'];
  for (let u = 0; u < users; u++) {
    let item = random.int(12);
    const length = 6 + random.int(5);
    for (let k = 0; k < length; k++) {
      lines.push(`user-${u},sku-${item},${k === length - 1 ? 'purchase' : 'view'},${1_700_000_000 + u * 100 + k}`);
      item = (item + 1) % 12;
    }
  }
  return `${lines.join('\n')}\n`;
}

export async function servedShop(
  provider: Provider,
  config: Partial<ServeConfig> = {},
  options: { train?: boolean; viaProxy?: boolean; tuning?: ServerTuning; log?: Logger } = {},
): Promise<ServedShop> {
  const store = await scratchStore(provider);
  const dir = mkdtempSync(join(tmpdir(), 'attnrec-serve-'));
  writeFileSync(join(dir, 'events.csv'), shopLog(120, 5));
  writeFileSync(
    join(dir, 'items.csv'),
    `item_id,title,category,price\n${Array.from({ length: 12 }, (_, k) => `sku-${k},Item ${k},${k % 2 === 0 ? 'even' : 'odd'},${10 + k}`).join('\n')}\n`,
  );
  await importEvents(store, {
    events: { path: join(dir, 'events.csv'), format: 'csv', timeUnit: 'auto', sasrec: DEFAULT_SASREC },
    catalogPath: join(dir, 'items.csv'),
    skipBad: false,
    eventTypes: 'register',
  });
  const train = async (seed: number, activate: 'auto' | 'never', overrides: { maxLength?: number } = {}): Promise<number> =>
    (
      await trainRun(store, {
        model: { maxLength: 10, dim: 16, heads: 2, blocks: 1, dropout: 0.1, ...overrides },
        training: { loss: 'sampled', negatives: 8, negativeAlpha: 0, learningRate: 0.02, batchSize: 32, seed },
        epochs: 8,
        patience: 8,
        backend: 'wasm',
        artifactsRoot: join(dir, 'models'),
        sampledNegatives: 5,
        activate,
      })
    ).versionId;
  if (options.train ?? true) await train(1, 'auto');
  // Optionally the server reaches PostgreSQL through a proxy the test can cut (a database outage).
  let proxy: TcpProxy | undefined;
  let databaseUrl = store.target.url;
  if (options.viaProxy) {
    const url = new URL(store.target.url);
    proxy = await TcpProxy.start(Number(url.port));
    url.port = String(proxy.port);
    databaseUrl = url.toString();
  }
  const server = await startServer(
    validateServeConfig({
      ...SERVE_DEFAULTS,
      port: 0,
      databaseUrl,
      apiKeys: parseApiKeys(`read:${KEYS.read},write:${KEYS.write},admin:${KEYS.admin}`),
      workers: 1,
      modelPollSeconds: 0,
      ...config,
    }),
    // Quiet by default; SHOP_LOG=1 prints the server's log (with stacks) when a test needs explaining.
    (message, error) => {
      options.log?.(message, error);
      if (process.env.SHOP_LOG) process.stderr.write(`${message} ${error instanceof Error ? error.stack : ''}\n`);
    },
    options.tuning,
  );
  return {
    store,
    server,
    url: server.url,
    dir,
    proxy,
    trainAnother: (seed, model) => train(seed, 'never', model),
    async call(path, init = {}) {
      const role = init.role ?? 'admin';
      const headers: Record<string, string> = { ...(role !== 'none' && { authorization: `Bearer ${KEYS[role]}` }), ...init.headers };
      let body: string | undefined;
      if (init.body !== undefined) {
        body = typeof init.body === 'string' ? init.body : JSON.stringify(init.body);
        headers['content-type'] ??= 'application/json';
      }
      const response = await fetch(`${server.url}${path}`, { method: init.method ?? (body === undefined ? 'GET' : 'POST'), headers, ...(body !== undefined && { body }) });
      const text = await response.text();
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {
        // not JSON (metrics): keep the text
      }
      return { status: response.status, body: parsed, headers: response.headers };
    },
    async dispose() {
      await proxy?.open().catch(() => {});
      await server.close();
      await proxy?.cut();
      await store.dispose();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * The server tuning of the production-loop tests: small impression batches,
 * and an attributor whose timer never fires, so that settleAttribution decides
 * when a round runs (never before the impressions it needs are written).
 */
export const LOOP_TUNING: ServerTuning = { impressions: { batchSize: 25, flushMs: 200 }, attribution: { intervalMs: 3_600_000, settleMs: 0 } };

/** Everything recorded and attributed so far is in the store: the impressions first, then attributor rounds up to the last event. */
export async function settleAttribution(shop: ServedShop): Promise<void> {
  await shop.server.context.impressions.flush();
  const last = await shop.store.prisma.event.aggregate({ _max: { id: true } });
  await until(async () => {
    await shop.server.context.attributor.tick();
    const cursor = await shop.store.prisma.attributionCursor.findUnique({ where: { name: 'events' } });
    return Number(cursor?.eventKey ?? 0) >= (last._max.id ?? 0);
  }, 20_000, 50);
}
