import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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

/**
 * Starts one PostgreSQL cluster for the whole run; each test file makes its own databases in it.
 * Every temporary folder of the run (the tests', the servers' and jobs' they start, the cluster's) goes
 * into one folder that is removed at the end: TMPDIR is set before the test processes fork, and they
 * and their children inherit it (a run used to leave ~700 folders, ~200 MB, in the system's).
 */
export default async function setup(project: TestProject): Promise<() => void> {
  const runTmp = mkdtempSync(join(tmpdir(), 'attnrec-test-run-'));
  chmodSync(runTmp, 0o1777); // as /tmp: the PostgreSQL cluster runs as its own user when the suite runs as root
  process.env.TMPDIR = runTmp;
  const removeRunTmp = (): void => rmSync(runTmp, { recursive: true, force: true });
  if (!findRedisServer()) {
    const line = '!'.repeat(78);
    console.warn(`\n${line}\n!! redis-server is not installed: every Redis test is SKIPPED.\n!! Install it (apt-get install redis-server); .ci/run does this itself.\n${line}\n`);
  }
  const external = process.env.ATTNREC_TEST_PG_URL;
  if (external) {
    project.provide('pgAdminUrl', external);
    return removeRunTmp;
  }
  if (!findPostgresBin()) {
    const line = '!'.repeat(78);
    console.warn(
      `\n${line}\n!! PostgreSQL server binaries are not installed: every PostgreSQL test is SKIPPED.\n` +
        `!! Install them (apt-get install postgresql) or set ATTNREC_TEST_PG_URL; .ci/run does this itself.\n${line}\n`,
    );
    project.provide('pgAdminUrl', '');
    return removeRunTmp;
  }
  server = await startThrowawayPostgres();
  project.provide('pgAdminUrl', server.url);
  return () => {
    server?.stop();
    removeRunTmp();
  };
}
