/**
 * The one error type attnrec raises on purpose. `code` is stable (clients and
 * tests match on it); `message` is for people. HTTP handlers map it to RFC 9457
 * problem+json; CLIs print `code: message` and exit non-zero.
 */
export class AppError extends Error {
  readonly code: string;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: string, message: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AppError';
    this.code = code;
    this.details = details;
  }
}

export function isAppError(error: unknown): error is AppError {
  return error instanceof AppError;
}
