import { PrismaBetterSqlite3 } from '@prisma/adapter-better-sqlite3';
import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient as PostgresPrismaClient } from '../../generated/prisma/postgres/client.js';
import { PrismaClient as SqlitePrismaClient } from '../../generated/prisma/sqlite/client.js';
import type { DatabaseTarget } from '../config/database-url.js';

/**
 * Both providers' clients are generated from the same models
 * (prisma/models.prisma, checked by test/schema-sync.test.ts). The code base is
 * typed against the SQLite client: its query options are the narrower set, so
 * a PostgreSQL-only option (`mode: 'insensitive'`, other isolation levels)
 * cannot creep in and break the embedded default.
 */
export type PrismaClient = InstanceType<typeof SqlitePrismaClient>;

export function createPrismaClient(target: DatabaseTarget): PrismaClient {
  if (target.provider === 'sqlite') {
    // Integer milliseconds: the format the raw bulk paths write and sort on.
    const adapter = new PrismaBetterSqlite3({ url: target.file }, { timestampFormat: 'unixepoch-ms' });
    return new SqlitePrismaClient({ adapter });
  }
  const client = new PostgresPrismaClient({ adapter: new PrismaPg({ connectionString: target.url }) });
  // Same models, same runtime; the generated types differ only in options that
  // PostgreSQL has and SQLite lacks, which the SQLite typing already forbids.
  return client as unknown as PrismaClient;
}
