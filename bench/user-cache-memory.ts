import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { LRUCache } from 'lru-cache';
import { SHORTLIST } from '../src/model/served-model.js';
import { UserCache, type CachedUser } from '../src/serve/user-cache.js';

/**
 * What the user cache costs the server's heap, resident memory and full
 * garbage collections: src/serve/user-cache.ts (rows of large typed arrays
 * and one history arena) against the layout it replaced (an lru-cache of one
 * object graph per user: entry, history arrays, state with its query,
 * shortlist arrays). Users shaped as the default model serves them: a
 * 257-float query (2 members × dim 128 + a bias), a 100-item shortlist,
 * histories of 3–17 events; each entry built from fresh arrays, as the
 * warm-up worker's messages deliver them. Each layout and size in its own
 * process, so neither sees the other's garbage.
 *
 *   npx tsx bench/user-cache-memory.ts [users,...]     (default 31013,100000)
 *
 * Prints one JSON line per layout and size: heap and RSS growth (MB), and
 * the mean of five full collections (ms) with the cache alive.
 */
const QUERY = 257;

function entry(seed: number): CachedUser {
  const events = 3 + (seed % 15);
  const items = Int32Array.from({ length: events }, (_, i) => seed * 7 + i);
  const types = Int32Array.from({ length: events }, (_, i) => 1 + (i % 3));
  const encoded = { items: Array.from(items, (x) => 1 + (x % 23_715)), types: Array.from(types) };
  return {
    owner: { events, items, types, purchased: new Int32Array(0) },
    version: 1,
    encoded,
    state: { query: new Float32Array(QUERY).fill(seed), logNormaliser: 3, items: encoded.items },
    shortlist: { indices: new Int32Array(SHORTLIST).fill(seed), scores: new Float32Array(SHORTLIST) },
  };
}

function measure(layout: 'objects' | 'rows', users: number): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with --expose-gc');
  gc();
  const before = process.memoryUsage();
  let cache: { readonly size: number };
  if (layout === 'objects') {
    const objects = new LRUCache<string, CachedUser>({ max: 100_000 });
    for (let i = 0; i < users; i++) objects.set(`user${i}`, entry(i));
    cache = objects;
  } else {
    const rows = new UserCache(100_000);
    for (let i = 0; i < users; i++) rows.set(`user${i}`, entry(i));
    cache = rows;
  }
  gc();
  gc();
  const after = process.memoryUsage();
  const started = performance.now();
  for (let i = 0; i < 5; i++) gc();
  const fullGcMs = (performance.now() - started) / 5;
  const mb = (bytes: number) => Math.round((bytes / 2 ** 20) * 10) / 10;
  console.log(JSON.stringify({ layout, users: cache.size, heap_mb: mb(after.heapUsed - before.heapUsed), rss_mb: mb(after.rss - before.rss), full_gc_ms: Math.round(fullGcMs * 10) / 10 }));
}

const [mode, layout, users] = process.argv.slice(2);
if (mode === '--child') measure(layout as 'objects' | 'rows', Number(users));
else {
  const sizes = (mode ?? '31013,100000').split(',').map(Number);
  for (const size of sizes) {
    for (const each of ['objects', 'rows'] as const) {
      process.stdout.write(execFileSync(process.execPath, ['--expose-gc', '--import', 'tsx', fileURLToPath(import.meta.url), '--child', each, String(size)], { encoding: 'utf8' }));
    }
  }
}
