import type { TestProject } from 'vitest/node';
import { findPostgresBin, startThrowawayPostgres, type ThrowawayPostgres } from '../../src/cli/throwaway-postgres.js';
import { findRedisServer } from './throwaway-redis.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Superuser URL of the test cluster, or '' when PostgreSQL cannot run here. */
    pgAdminUrl: string;
  }
}

let server: ThrowawayPostgres | undefined;

/** Starts one PostgreSQL cluster for the whole run; each test file makes its own databases in it. */
export default async function setup(project: TestProject): Promise<() => void> {
  if (!findRedisServer()) {
    const line = '!'.repeat(78);
    console.warn(`\n${line}\n!! redis-server is not installed: every Redis test is SKIPPED.\n!! Install it (apt-get install redis-server); .ci/run does this itself.\n${line}\n`);
  }
  const external = process.env.ATTNREC_TEST_PG_URL;
  if (external) {
    project.provide('pgAdminUrl', external);
    return () => {};
  }
  if (!findPostgresBin()) {
    const line = '!'.repeat(78);
    console.warn(
      `\n${line}\n!! PostgreSQL server binaries are not installed: every PostgreSQL test is SKIPPED.\n` +
        `!! Install them (apt-get install postgresql) or set ATTNREC_TEST_PG_URL; .ci/run does this itself.\n${line}\n`,
    );
    project.provide('pgAdminUrl', '');
    return () => {};
  }
  server = await startThrowawayPostgres();
  project.provide('pgAdminUrl', server.url);
  return () => server?.stop();
}
