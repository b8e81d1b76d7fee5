import { mkdirSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { AppError } from '../errors.js';

/** Where the embedded default database lives, relative to the working directory. */
export const DEFAULT_DATABASE_URL = 'file:./data/attnrec.db';

export type DatabaseTarget =
  | { provider: 'sqlite'; url: string; file: string }
  | { provider: 'postgresql'; url: string };

/**
 * Reads a DATABASE_URL. `file:<path>` (relative to `cwd`) or `:memory:` selects
 * the embedded SQLite store; `postgres://` / `postgresql://` selects PostgreSQL.
 */
export function parseDatabaseUrl(url: string | undefined, cwd = process.cwd()): DatabaseTarget {
  const value = (url ?? '').trim() || DEFAULT_DATABASE_URL;
  if (value === ':memory:' || value === 'file::memory:') return { provider: 'sqlite', url: value, file: ':memory:' };
  if (value.startsWith('file:')) {
    const path = value.slice('file:'.length).replace(/^\/\/(?=\/)/, '');
    if (path === '') throw new AppError('CONFIG_INVALID', `DATABASE_URL '${value}' names no file`);
    return { provider: 'sqlite', url: value, file: isAbsolute(path) ? path : resolve(cwd, path) };
  }
  if (/^postgres(ql)?:\/\//.test(value)) {
    try {
      new URL(value);
    } catch {
      throw new AppError('CONFIG_INVALID', `DATABASE_URL is not a valid PostgreSQL URL`);
    }
    return { provider: 'postgresql', url: value };
  }
  throw new AppError(
    'CONFIG_INVALID',
    `DATABASE_URL must start with file: (SQLite) or postgresql:// (PostgreSQL); got '${value.split(':')[0]}:…'`,
  );
}

/** Creates the folder of an SQLite file so the first run needs no set-up. */
export function ensureSqliteFolder(target: DatabaseTarget): void {
  if (target.provider === 'sqlite' && target.file !== ':memory:') mkdirSync(dirname(target.file), { recursive: true });
}
