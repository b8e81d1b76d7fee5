import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import { ROLES, type ApiKey, type Role } from './config.js';
import { ProblemError } from './problem.js';
import type { RateLimiter } from './rate-limit.js';

/**
 * API-key authentication: `Authorization: Bearer <key>` or `X-API-Key: <key>`.
 * The presented key is hashed and compared with every configured hash in
 * constant time (no early exit, so timing says nothing about which key came
 * close). Keys never reach logs: the request carries only the key's label.
 */
export class Authenticator {
  private keys: readonly { key: ApiKey; digest: Buffer }[];
  /** Keys made by temporaryKey(), not yet revoked: never rate-limited. */
  private readonly temporary = new Set<ApiKey>();

  constructor(keys: readonly ApiKey[]) {
    this.keys = keys.map((key) => ({ key, digest: Buffer.from(key.hash, 'hex') }));
  }

  /**
   * A random key of `role` that works until revoked, for the server's own
   * requests (the start-up warm-up of the request path): 32 random bytes,
   * never logged nor written anywhere, and exempt from the rate limit.
   */
  temporaryKey(role: Role, label: string): { readonly secret: string; revoke(): void } {
    const secret = randomBytes(32).toString('base64url');
    const hash = createHash('sha256').update(secret, 'utf8').digest();
    const key: ApiKey = { role, hash: hash.toString('hex'), label };
    this.keys = [...this.keys, { key, digest: hash }];
    this.temporary.add(key);
    return {
      secret,
      revoke: () => {
        this.keys = this.keys.filter((k) => k.key !== key);
        this.temporary.delete(key);
      },
    };
  }

  identify(presented: string): ApiKey | undefined {
    const digest = createHash('sha256').update(presented, 'utf8').digest();
    let found: ApiKey | undefined;
    for (const { key, digest: expected } of this.keys) {
      if (timingSafeEqual(digest, expected) && found === undefined) found = key;
    }
    return found;
  }

  /**
   * Router-level middleware: identifies the key (401 without a known one),
   * then charges the key's rate limit, before the body is even read.
   */
  authenticate(limiter?: RateLimiter): RequestHandler {
    return async (req, res, next) => {
      const presented = presentedKey(req.headers.authorization, req.headers['x-api-key']);
      if (presented === undefined) {
        res.set('WWW-Authenticate', 'Bearer realm="attnrec"');
        throw new ProblemError('UNAUTHORIZED', 'send an API key as "Authorization: Bearer <key>" or "X-API-Key: <key>"');
      }
      const key = this.identify(presented);
      if (!key) {
        res.set('WWW-Authenticate', 'Bearer realm="attnrec", error="invalid_token"');
        throw new ProblemError('UNAUTHORIZED', 'the API key is not known');
      }
      res.locals.apiKey = key;
      if (!this.temporary.has(key)) await limiter?.charge(key, res);
      next();
    };
  }

  /** Route-level middleware: the authenticated key must have at least `role`. */
  require(role: Role): RequestHandler {
    const needed = ROLES.indexOf(role);
    return (_req, res, next) => {
      const key = res.locals.apiKey as ApiKey | undefined;
      if (!key) throw new ProblemError('UNAUTHORIZED', 'send an API key as "Authorization: Bearer <key>" or "X-API-Key: <key>"');
      if (ROLES.indexOf(key.role) < needed) throw new ProblemError('FORBIDDEN', `this route needs a ${role} key; this key is ${key.role}`);
      next();
    };
  }
}

function presentedKey(authorization: string | undefined, apiKey: string | string[] | undefined): string | undefined {
  if (typeof apiKey === 'string' && apiKey.trim() !== '') return apiKey.trim();
  if (authorization) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (match) return match[1];
  }
  return undefined;
}
