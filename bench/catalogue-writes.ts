/**
 * Catalogue upkeep through the API while nothing else runs: `PUT /v1/items` with one item per request
 * (a shop keeping prices in step, an item at a time) over 8 connections back to back, twice, on a warm
 * `--workers 2` server on a copy of the serve benchmark's store (23,715 items; run `npm run bench -- serve`
 * once first). Every write reloads the server's catalogue; concurrent writes share one reload
 * (src/serve/catalog-cache.ts).
 *
 *   npx tsx bench/catalogue-writes.ts [--seconds 10]
 *
 * Prints one JSON line. Nothing is written to bench/results.
 */
import { parseArgs } from 'node:util';
import { integerFlag } from '../src/cli/job.js';
import { httpRequest, runLoad } from './load-generator.js';
import { SCRATCH_SERVER_KEYS, startScratchServer } from './warm-server.js';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '10' } } });
const seconds = integerFlag('seconds', values.seconds, 1, 600);
const CONNECTIONS = 8;
const port = 22_000 + Math.floor(Math.random() * 1_000);
const server = await startScratchServer({ name: 'catalogue-writes', flags: [], workers: 2, port });
let written = 0;
const runs = [];
try {
  for (let round = 0; round < 2; round++) {
    const result = await runLoad({
      host: '127.0.0.1',
      port,
      mode: 'closed',
      connections: CONNECTIONS,
      seconds,
      next: () => [
        httpRequest('put', 'PUT', '/v1/items', {
          host: `127.0.0.1:${port}`,
          headers: { authorization: `Bearer ${SCRATCH_SERVER_KEYS.admin}` },
          body: JSON.stringify({ items: [{ id: `catalogue-writes-${++written % 500}`, price: written }] }),
        }),
      ],
    });
    runs.push({ requests_per_s: Math.round(result.rps * 10) / 10, p50_ms: result.request.p50_ms, p99_ms: result.request.p99_ms, failed: result.failed });
  }
} finally {
  server.process.kill('SIGTERM');
  if (server.process.exitCode === null) await new Promise((resolve) => server.process.once('exit', resolve));
}
console.log(JSON.stringify({ benchmark: 'catalogue-writes', connections: CONNECTIONS, seconds, runs }));
