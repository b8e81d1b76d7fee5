import type { ErrorRequestHandler, Response } from 'express';
import { isAppError } from '../errors.js';

/**
 * RFC 9457 problem details. Every error the API returns has this shape, with
 * `code` as the stable, machine-readable reason clients match on; `detail` is
 * for people and may change. Stack traces never leave the process.
 */
export interface Problem {
  readonly type: string;
  readonly title: string;
  readonly status: number;
  readonly detail: string;
  readonly code: string;
  readonly instance?: string;
  readonly [extension: string]: unknown;
}

/** HTTP status and title of each code the API can return (the OpenAPI document lists the same table). */
export const PROBLEM_CODES: Readonly<Record<string, { status: number; title: string }>> = {
  BAD_JSON: { status: 400, title: 'Request body is not valid JSON' },
  VALIDATION_FAILED: { status: 400, title: 'Request is invalid' },
  RULE_SYNTAX: { status: 400, title: 'Filter or boost rule does not parse' },
  RULE_TYPE: { status: 400, title: 'Filter or boost rule compares a name with a value of the wrong type' },
  RULE_VALUE: { status: 400, title: 'Boost factor out of range' },
  UNAUTHORIZED: { status: 401, title: 'API key missing or unknown' },
  FORBIDDEN: { status: 403, title: 'API key lacks the role for this route' },
  NOT_FOUND: { status: 404, title: 'No such route' },
  ITEM_NOT_FOUND: { status: 404, title: 'Item not found' },
  USER_NOT_FOUND: { status: 404, title: 'User not found' },
  MODEL_VERSION_NOT_FOUND: { status: 404, title: 'Model version not found' },
  NO_USABLE_HISTORY: { status: 422, title: 'No event of the history is on an item the model knows' },
  METHOD_NOT_ALLOWED: { status: 405, title: 'Method not allowed on this route' },
  MODEL_VERSION_NOT_READY: { status: 409, title: 'Model version is not ready to serve' },
  EXPERIMENT_NOT_FOUND: { status: 404, title: 'Experiment not found' },
  EXPERIMENT_OVERLAP: { status: 409, title: 'Another running experiment has this traffic' },
  EXPERIMENT_NOT_DRAFT: { status: 409, title: 'Experiment has already started' },
  EXPERIMENT_STOPPED: { status: 409, title: 'Experiment was already stopped' },
  ARTIFACT_CORRUPT: { status: 409, title: 'Model artifact is unusable' },
  ITEM_NOT_IN_MODEL: { status: 404, title: 'Item is newer than the model' },
  BODY_TOO_LARGE: { status: 413, title: 'Request body too large' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, title: 'Request body must be application/json' },
  UNKNOWN_ITEMS: { status: 422, title: 'Events refer to items the catalogue does not have' },
  RATE_LIMITED: { status: 429, title: 'Too many requests' },
  INTERNAL: { status: 500, title: 'Internal error' },
  MODEL_NOT_LOADED: { status: 503, title: 'No model is loaded' },
  DATABASE_UNAVAILABLE: { status: 503, title: 'Database unavailable' },
  INFERENCE_UNAVAILABLE: { status: 503, title: 'Inference worker unavailable' },
  SHUTTING_DOWN: { status: 503, title: 'Server is shutting down' },
};

export class ProblemError extends Error {
  constructor(
    readonly code: keyof typeof PROBLEM_CODES | string,
    readonly detail: string,
    readonly extensions: Record<string, unknown> = {},
  ) {
    super(detail);
    this.name = 'ProblemError';
  }
}

export function problemBody(code: string, detail: string, instance?: string, extensions: Record<string, unknown> = {}): Problem {
  const known = PROBLEM_CODES[code] ?? PROBLEM_CODES.INTERNAL!;
  // Extension members never replace RFC 9457's own (a detail named `status` once turned a 409 into a 500).
  return {
    ...extensions,
    type: `urn:attnrec:problem:${code}`,
    title: known.title,
    status: known.status,
    detail,
    code,
    ...(instance !== undefined && { instance }),
  };
}

export function sendProblem(res: Response, problem: Problem, headers: Record<string, string> = {}): void {
  res.status(problem.status).set({ 'Content-Type': 'application/problem+json', ...headers }).send(JSON.stringify(problem));
}

/** Errors the app raised on purpose keep their code; body-parser's get theirs; anything else is INTERNAL, logged, and described vaguely. */
export function problemHandler(log: (message: string, error: unknown) => void): ErrorRequestHandler {
  return (error: unknown, req, res, next) => {
    if (res.headersSent) {
      next(error);
      return;
    }
    const instance = req.originalUrl.split('?')[0];
    if (error instanceof ProblemError) {
      sendProblem(res, problemBody(error.code, error.detail, instance, error.extensions));
      return;
    }
    if (isAppError(error) && PROBLEM_CODES[error.code]) {
      // A worker that failed mid-request is being replaced: the same request succeeds in a moment.
      const retry = error.code === 'INFERENCE_UNAVAILABLE' ? { 'Retry-After': '1' } : undefined;
      sendProblem(res, problemBody(error.code, error.message, instance, error.details as Record<string, unknown>), retry);
      return;
    }
    const parserType = (error as { type?: unknown }).type;
    if (parserType === 'entity.parse.failed') {
      sendProblem(res, problemBody('BAD_JSON', `the body is not valid JSON: ${(error as Error).message}`, instance));
      return;
    }
    if (parserType === 'entity.too.large') {
      const limit = (error as { limit?: number }).limit;
      sendProblem(res, problemBody('BODY_TOO_LARGE', `the body exceeds the limit of ${limit ?? '?'} bytes`, instance, { limit }));
      return;
    }
    const status = (error as { status?: unknown; statusCode?: unknown }).status ?? (error as { statusCode?: unknown }).statusCode;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      // Other body-parser rejections (charset, encoding, aborted request): the client's fault, said plainly.
      sendProblem(res, { ...problemBody('VALIDATION_FAILED', (error as Error).message, instance), status });
      return;
    }
    if (isDatabaseUnavailable(error)) {
      log(`${req.method} ${instance}: database unavailable`, error);
      sendProblem(res, problemBody('DATABASE_UNAVAILABLE', 'the database cannot be reached; retry later', instance), { 'Retry-After': '5' });
      return;
    }
    log(`${req.method} ${instance} failed`, error);
    sendProblem(res, problemBody('INTERNAL', 'the server failed to handle this request; it has been logged', instance));
  };
}

/** Connection-level failures of either driver (or Prisma over them): the store is down, not the request wrong. */
export function isDatabaseUnavailable(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && DATABASE_DOWN_CODES.has(code)) return true;
    const message = (e as { message?: unknown }).message;
    if (typeof message === 'string' && /Connection terminated|connect ECONNREFUSED|database is locked|Can't reach database/i.test(message)) return true;
  }
  return false;
}

const DATABASE_DOWN_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND',
  '57P01', '57P02', '57P03', '08000', '08001', '08003', '08004', '08006', '53300', // PostgreSQL: shutdown, connection failures, too many clients
  'SQLITE_BUSY', 'SQLITE_CANTOPEN', 'SQLITE_IOERR',
  'P1001', 'P1002', 'P1008', 'P1017', 'P2024', // Prisma: unreachable, timed out, connection closed, pool timeout
]);
