import { Redis } from 'ioredis';
import { AppError } from '../errors.js';

/** The URL with any password replaced, for logs and errors. */
export function redactRedisUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(unparseable URL)';
  }
}

/**
 * Connects to the Redis at `url` (redis://[user:password@]host:port[/db], rediss:// for TLS) and checks
 * it answers, or throws REDIS_UNAVAILABLE: a server configured to share its limits must not start
 * without the store. Once running, the client reconnects by itself. It does not queue commands while
 * disconnected, so callers fail at once and can fall back; `log` hears of a lost and a regained
 * connection once each, not of every retry.
 */
export async function connectRedis(url: string, log: (message: string, error?: unknown) => void, timeoutMs = 5_000): Promise<Redis> {
  const shown = redactRedisUrl(url);
  const client = new Redis(url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: timeoutMs,
    retryStrategy: (attempt) => Math.min(attempt * 200, 2_000),
  });
  let started = false;
  let lost = false;
  let lastError: Error | undefined;
  // Without a listener an 'error' event would throw; the reconnection loop reports each failed attempt here.
  client.on('error', (error: Error) => (lastError = error));
  client.on('close', () => {
    if (!started || lost) return; // before start-up's check answers, the thrown error says it
    lost = true;
    log(`connection to redis at ${shown} lost; rate limits fall back to this process's budget until it is back`, lastError);
  });
  client.on('ready', () => {
    if (!lost) return;
    lost = false;
    log(`redis at ${shown} reachable again; rate limits are shared again`);
  });
  try {
    await client.connect();
    await client.ping();
  } catch (error) {
    client.disconnect();
    throw new AppError('REDIS_UNAVAILABLE', `cannot reach redis at ${shown}: ${(error as Error).message}`, {}, { cause: error });
  }
  started = true;
  return client;
}
