import type { Response } from 'express';
import type { ApiKey } from './config.js';
import { ProblemError } from './problem.js';

/**
 * Per-key token buckets: `limit` requests per `windowSeconds`, refilled
 * continuously, so a client may burst up to the limit and then runs at the
 * average rate. Every response says where the client stands, in the IETF
 * RateLimit header fields (draft-ietf-httpapi-ratelimit-headers):
 * `RateLimit-Policy: "per-key";q=<limit>;w=<window>` and
 * `RateLimit: "per-key";r=<remaining>;t=<seconds until the bucket is full>`;
 * a refused request gets 429 problem+json and `Retry-After`.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly perMs: number;

  constructor(
    readonly limit: number,
    readonly windowSeconds = 60,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.perMs = limit / (windowSeconds * 1000);
    this.policy = `"per-key";q=${limit};w=${windowSeconds}`;
  }

  private readonly policy: string;

  /** Takes one token for `label`; returns the remaining tokens and how long until the next one and until full. */
  take(label: string): { allowed: boolean; remaining: number; retryAfterSeconds: number; fullInSeconds: number } {
    const now = this.now();
    const bucket = this.buckets.get(label) ?? { tokens: this.limit, at: now };
    bucket.tokens = Math.min(this.limit, bucket.tokens + (now - bucket.at) * this.perMs);
    bucket.at = now;
    const allowed = bucket.tokens >= 1;
    if (allowed) bucket.tokens -= 1;
    this.buckets.set(label, bucket);
    if (this.buckets.size > 100_000) this.forgetFull(now);
    return {
      allowed,
      remaining: Math.floor(bucket.tokens),
      retryAfterSeconds: allowed ? 0 : Math.ceil((1 - bucket.tokens) / this.perMs / 1000),
      fullInSeconds: Math.ceil((this.limit - bucket.tokens) / this.perMs / 1000),
    };
  }

  /** Takes a token for the key and sets the RateLimit headers; throws RATE_LIMITED when none is left. */
  charge(key: ApiKey, res: Response): void {
    const state = this.take(key.label);
    res.set({ 'RateLimit-Policy': this.policy, RateLimit: `"per-key";r=${state.remaining};t=${state.fullInSeconds}` });
    if (!state.allowed) {
      res.set('Retry-After', String(state.retryAfterSeconds));
      throw new ProblemError('RATE_LIMITED', `this key may make ${this.limit} requests per ${this.windowSeconds} s; retry in ${state.retryAfterSeconds} s`, {
        retryAfterSeconds: state.retryAfterSeconds,
      });
    }
  }

  /** Buckets that have refilled are indistinguishable from new ones: drop them. */
  private forgetFull(now: number): void {
    for (const [label, bucket] of this.buckets) if (bucket.tokens + (now - bucket.at) * this.perMs >= this.limit) this.buckets.delete(label);
  }
}
