import { createHash, timingSafeEqual } from 'node:crypto';
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
  private readonly keys: readonly { key: ApiKey; digest: Buffer }[];

  constructor(keys: readonly ApiKey[]) {
    this.keys = keys.map((key) => ({ key, digest: Buffer.from(key.hash, 'hex') }));
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
      await limiter?.charge(key, res);
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
