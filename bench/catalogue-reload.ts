/**
 * What an activation's catalogue step costs the event loop: on a copy of the serve benchmark's store
 * (23,715 items; run `npm run bench -- serve` once first), in this process as the API server does it
 * (src/serve/catalog-cache.ts), `--runs` times each:
 *  - `reload`: every item read again, a page at a time (what each activation did before 2026-12-05);
 *  - `refresh, unchanged`: the catalogue's state read (the number of items and the store's count of
 *    changes to stored items) and found as held, so nothing else is read (an activation since);
 *  - `refresh, one item changed`: one item's price updated first, so the refresh reads everything.
 * For each: the wall time, and the event loop's longest stall and its time held in stalls over 1 ms
 * (a 1-ms timer's lateness while the step runs).
 *
 *   npx tsx bench/catalogue-reload.ts [--runs 5]
 *
 * Prints one JSON line. Nothing is written to bench/results.
 */
import { rmSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { integerFlag } from '../src/cli/job.js';
import { servingReader } from '../src/data/serving-reader.js';
import { openStore } from '../src/data/store.js';
import { CatalogCache } from '../src/serve/catalog-cache.js';
import { median } from './machine.js';
import { copyScratchStore } from './warm-server.js';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' } } });
const runs = integerFlag('runs', values.runs, 1, 100);
const database = await copyScratchStore('catalogue-reload');
const store = openStore(`file:${database}`);
if (store.provider !== 'sqlite') throw new Error('the serve benchmark\'s store is SQLite');
const reader = servingReader(store);
const catalog = new CatalogCache(reader);
await catalog.reload();

const round = (x: number): number => Math.round(x * 100) / 100;

/** Runs `step` with a 1-ms timer beside it: wall ms, the longest stall and the ms held in stalls over 1 ms. */
async function timed(step: () => Promise<unknown>): Promise<{ wall: number; longest: number; held: number }> {
  let last = performance.now();
  let longest = 0;
  let held = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    const stall = now - last - 1;
    if (stall > 1) held += stall;
    longest = Math.max(longest, stall);
    last = now;
  }, 1);
  const started = performance.now();
  await step();
  const wall = performance.now() - started;
  clearInterval(timer);
  const stall = performance.now() - last - 1;
  if (stall > 1) held += stall;
  return { wall, longest: Math.max(longest, stall), held };
}

async function measure(name: string, step: () => Promise<unknown>, before?: () => void) {
  const samples = [];
  for (let i = 0; i < runs; i++) {
    before?.();
    await new Promise((resolve) => setTimeout(resolve, 50));
    samples.push(await timed(step));
  }
  return {
    step: name,
    wall_ms: round(median(samples.map((s) => s.wall))),
    longest_stall_ms: round(median(samples.map((s) => s.longest))),
    stalled_ms: round(median(samples.map((s) => s.held))),
    runs: samples.map((s) => ({ wall_ms: round(s.wall), longest_stall_ms: round(s.longest), stalled_ms: round(s.held) })),
  };
}

let price = 0;
const results = [
  await measure('reload', () => catalog.reload()),
  await measure('refresh, unchanged', async () => {
    if (await catalog.refresh()) throw new Error('the catalogue was read again though nothing changed');
  }),
  await measure(
    'refresh, one item changed',
    async () => {
      if (!(await catalog.refresh())) throw new Error('the catalogue was not read again after a change');
    },
    () => void store.db.prepare('UPDATE items SET price = ? WHERE id = (SELECT MIN(id) FROM items)').run(++price),
  ),
];
reader.close();
await store.close();
for (const suffix of ['', '-wal', '-shm']) rmSync(database + suffix, { force: true });
console.log(JSON.stringify({ benchmark: 'catalogue-reload', items: catalog.size, median_of: runs, results }));
