import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'jobs/**/*.test.ts', 'test/**/*.test.ts', 'bench/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    reporters: ['default', './test/support/summary-reporter.ts'],
    // Every reply the routes send is parsed against its response schema (src/serve/responses.ts), in this
    // process and in the servers the tests start: a field the OpenAPI document does not describe fails.
    env: { ATTNREC_CHECK_RESPONSES: '1' },
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Two cores: files run in two forks; database work is mostly I/O-bound.
    pool: 'forks',
    maxWorkers: 2,
  },
});
