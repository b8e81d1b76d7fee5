import { createHash } from 'node:crypto';
import { z } from 'zod';
import { AppError } from '../errors.js';
import { availableParallelism } from 'node:os';

/** What an API key may do; each role includes the ones before it. */
export const ROLES = ['read', 'write', 'admin'] as const;
export type Role = (typeof ROLES)[number];

export interface ApiKey {
  readonly role: Role;
  /** SHA-256 of the key, hex: keys are compared and kept only in this form. */
  readonly hash: string;
  /** Names the key in logs and rate-limit buckets without revealing it: the hash's first 12 hex digits. */
  readonly label: string;
}

/** Keys that work only with --dev-keys, printed in the README's curl examples. Never use them in production. */
export const DEV_KEYS: Readonly<Record<Role, string>> = { read: 'dev-read-key', write: 'dev-write-key', admin: 'dev-admin-key' };

/** The longest attribution window: a year. */
export const MAX_ATTRIBUTION_WINDOW_SECONDS = 366 * 86_400;

export const ServeConfigSchema = z
  .object({
    host: z.string().min(1),
    port: z.number().int().min(0).max(65_535),
    databaseUrl: z.string().min(1).optional(),
    apiKeys: z.array(z.object({ role: z.enum(ROLES), hash: z.string().regex(/^[0-9a-f]{64}$/), label: z.string() })).min(1, 'at least one API key is needed (--api-keys, $ATTNREC_API_KEYS, or --dev-keys for local trials)'),
    /** Requests per minute per key; 0 turns rate limiting off. */
    rateLimitPerMinute: z.number().int().min(0),
    /** Redis that keeps the rate-limit budgets, shared by every replica that uses it (else PostgreSQL's table, or memory on SQLite). */
    redisUrl: z
      .string()
      .regex(/^rediss?:\/\/\S+$/, 'must be a redis:// or rediss:// URL')
      .optional(),
    /** Largest accepted JSON body, bytes. */
    bodyLimitBytes: z.number().int().min(1_024).max(64 * 1024 * 1024),
    strictCatalog: z.boolean(),
    eventTypes: z.enum(['register', 'strict']),
    /** What recommendation routes do without a model or usable history. */
    fallback: z.enum(['popular', 'none']),
    /** Popular items are counted over this many days before the newest stored event. */
    popularWindowDays: z.number().positive().max(36_500),
    userCacheSize: z.number().int().min(0),
    /**
     * A cached user representation is recomputed after this long even without new events; 0 = only when
     * this server stores new events for the user. Set it when several replicas share a database: one
     * replica does not see the events another stores.
     */
    userCacheTtlSeconds: z.number().min(0),
    /**
     * Before a new version serves (an activation, or one found by the poll), the user cache is warmed for it
     * for up to this long while the current version keeps serving, so shoppers do not meet a cold cache at
     * the swap; 0 = swap at once and warm afterwards.
     */
    activationWarmUpSeconds: z.number().min(0),
    /**
     * Before it listens, the server sends itself this many requests of the shopper routes, made of stored
     * shoppers' histories (events as dry runs; nothing is stored or recorded), so the first shoppers after a
     * start do not pay for compiling the request path (src/serve/start-up-warm-up.ts); 0 = none.
     */
    warmUpRequests: z.number().int().min(0),
    /** How often to look for a newly activated model version (another replica, a training job); 0 = never. */
    modelPollSeconds: z.number().min(0),
    /** Inference worker threads (forward passes and scoring run there, never on the event loop). */
    workers: z.number().int().min(1).max(256),
    /**
     * How the workers score the catalogue for a shortlist: 'quantised' through an 8-bit copy of the output
     * table, the rows that can reach the shortlist rescored in float32 (the same items and scores, the
     * normaliser within ~1.5e-4; src/model/item-scorer.ts), or 'exact' (float32 throughout, slower).
     */
    scoring: z.enum(['quantised', 'exact']),
    /** On SIGTERM, in-flight requests get this long to finish. */
    shutdownTimeoutSeconds: z.number().positive(),
    /**
     * Record what each recommendation response showed (an impression under its recommendationId), in
     * batches off the request path; off records and prunes nothing (responses still carry the id).
     */
    impressions: z.enum(['on', 'off']),
    /** Impressions older than this many days are deleted, hourly in bounded steps; 0 keeps them. */
    impressionRetentionDays: z.number().min(0).max(36_500),
    /**
     * Impressions per write transaction: larger batches share index pages (less CPU an impression), and
     * hold SQLite's write lock longer (~8 µs an impression); src/serve/impression-recorder.ts.
     */
    impressionBatch: z.number().int().min(1).max(10_000),
    /**
     * An event on an item that a recommendation response showed the same user or session is attributed to
     * the latest such response at most this long before it (an event that names its recommendationId, to
     * that one if it is at most this old), in the background; 0 attributes nothing. Needs impressions on.
     */
    attributionWindowSeconds: z.number().min(0).max(MAX_ATTRIBUTION_WINDOW_SECONDS),
    /**
     * Live requests come first: while more than 5 % of them take longer than this many ms in the server,
     * batches of more than 10 events (bulk imports) are slowed to leave them the cores
     * (src/serve/bulk-governor.ts); 0 = arrival order.
     */
    bulkYieldMs: z.number().min(0).max(60_000),
    /**
     * Run npm run retrain on this cron schedule (five fields, the server's time zone): in this process on
     * SQLite, through graphile-worker's queue on PostgreSQL (exactly one replica runs each tick). Absent: no schedule.
     */
    retrainSchedule: z.string().min(1).optional(),
    /** Flags for each scheduled retrain (jobs/retrain.ts): --since 90d, --min-gain 0.01, --artifacts … */
    retrainArgs: z.array(z.string()),
  })
  .strict();

export type ServeConfig = z.infer<typeof ServeConfigSchema>;

const SPAN_UNITS: Readonly<Record<string, number>> = { s: 1, m: 60, h: 3_600, d: 86_400 };

/**
 * A span of time flag in seconds: a number of seconds (90, 0.5) or a number and a unit, s, m, h or d
 * (30m, 24h, 7d). Anything else, or a span outside 0..max, is a USAGE error naming the flag.
 */
export function parseSpanSeconds(raw: string, flag: string, max: number): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$/.exec(raw);
  const seconds = m ? Number(m[1]) * (SPAN_UNITS[m[2] || 's'] ?? 1) : NaN;
  if (!Number.isFinite(seconds) || seconds > max) {
    throw new AppError('USAGE', `${flag} must be a span of time: seconds, or a number with s, m, h or d (e.g. 90, 30m, 24h, 7d), at most ${max / 86_400} days; got '${raw}'`);
  }
  return seconds;
}

export const SERVE_DEFAULTS = {
  host: '127.0.0.1',
  port: 8080,
  rateLimitPerMinute: 6_000,
  bodyLimitBytes: 1_048_576,
  strictCatalog: false,
  eventTypes: 'register',
  fallback: 'popular',
  popularWindowDays: 30,
  userCacheSize: 100_000,
  userCacheTtlSeconds: 0,
  activationWarmUpSeconds: 60,
  warmUpRequests: 120,
  modelPollSeconds: 10,
  workers: availableParallelism(),
  scoring: 'quantised',
  shutdownTimeoutSeconds: 10,
  impressions: 'on',
  impressionRetentionDays: 90,
  impressionBatch: 500,
  attributionWindowSeconds: 86_400,
  bulkYieldMs: 20,
  retrainArgs: [] as string[],
} as const satisfies Partial<ServeConfig>;

export function hashKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/**
 * Parses `role:key` entries separated by commas or newlines. A key written as
 * `sha256:<64 hex digits>` is already hashed (so configuration files need not
 * hold secrets); anything else is the key itself, hashed here and forgotten.
 */
export function parseApiKeys(text: string): ApiKey[] {
  return text
    .split(/[,\n]/)
    .map((entry) => entry.trim())
    .filter(Boolean)
    .map((entry, i) => {
      const colon = entry.indexOf(':');
      const role = entry.slice(0, colon);
      const secret = entry.slice(colon + 1);
      if (colon < 1 || !(ROLES as readonly string[]).includes(role)) {
        throw new AppError('CONFIG_INVALID', `API key #${i + 1} must be written role:key with role one of ${ROLES.join(', ')}`);
      }
      const hashed = /^sha256:([0-9a-fA-F]{64})$/.exec(secret);
      if (!hashed && secret.length < 12) throw new AppError('CONFIG_INVALID', `API key #${i + 1} (${role}) is shorter than 12 characters`);
      const hash = hashed ? hashed[1]!.toLowerCase() : hashKey(secret);
      return { role: role as Role, hash, label: hash.slice(0, 12) };
    });
}

export function devKeys(): ApiKey[] {
  return ROLES.map((role) => {
    const hash = hashKey(DEV_KEYS[role]);
    return { role, hash, label: hash.slice(0, 12) };
  });
}

/** Validates a complete configuration once, at start-up; every problem is named in one error. */
export function validateServeConfig(raw: unknown): ServeConfig {
  const parsed = ServeConfigSchema.safeParse(raw);
  if (!parsed.success) {
    throw new AppError('CONFIG_INVALID', parsed.error.issues.map((i) => `${i.path.join('.') || 'config'}: ${i.message}`).join('; '));
  }
  return parsed.data;
}
