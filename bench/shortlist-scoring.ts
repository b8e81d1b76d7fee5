import { parseArgs } from 'node:util';
import { join } from 'node:path';
import { loadSequences } from '../src/data/sequences.js';
import { openStore } from '../src/data/store.js';
import { ROOT } from '../src/cli/processes.js';
import { ServedModel, type ModelHistory } from '../src/model/served-model.js';

/**
 * Shortlists (ServedModel.represent) through the 8-bit output table against
 * float32, on the serve benchmark's store and first version (run `npm run
 * bench -- serve` once first): whether they agree (shortlist items and
 * scores to the bit, the largest normaliser difference), and the worker's
 * milliseconds per history for passes of 1, 2, 4, 8 and 16 histories (the
 * network, the co-occurrence term, scoring, normaliser and shortlist), the
 * two alternating so the machine's drift hits both: passes back to back
 * (warm: the tables stay in the cache), and each pass after 64 MB of other
 * memory was read (cold: as in a server, where requests, the event loop and
 * other processes run between passes).
 *
 * `npx tsx bench/shortlist-scoring.ts [--database file:…] [--histories 512] [--rounds 6]` prints one JSON object.
 */
const { values } = parseArgs({
  options: {
    database: { type: 'string', default: `file:${join(ROOT, 'bench', 'scratch', 'serve-bench.db')}` },
    histories: { type: 'string', default: '512' },
    rounds: { type: 'string', default: '6' },
  },
});
const store = openStore(values.database);
const version = await store.prisma.modelVersion.findFirstOrThrow({ orderBy: { id: 'asc' } });
const sequences = await loadSequences(store, { by: 'user' });
await store.close();

const exact = ServedModel.load(version.id, version.createdAt, version.artifactPath, { scoring: 'exact' });
const quantised = ServedModel.load(version.id, version.createdAt, version.artifactPath);
const wanted = Number(values.histories);
const histories: ModelHistory[] = [];
for (let s = 0; s < sequences.offsets.length - 1 && histories.length < wanted; s++) {
  const from = sequences.offsets[s]!;
  const to = sequences.offsets[s + 1]!;
  const h = exact.encode(sequences.items.subarray(from, to), sequences.types.subarray(from, to));
  if (h.items.length > 0) histories.push(h);
}

let differentItems = 0;
let differentScores = 0;
let normaliser = 0;
for (let i = 0; i < histories.length; i += 8) {
  const a = exact.represent(histories.slice(i, i + 8));
  const b = quantised.represent(histories.slice(i, i + 8));
  a.forEach(({ state, shortlist }, j) => {
    const other = b[j]!;
    normaliser = Math.max(normaliser, Math.abs(state.logNormaliser - other.state.logNormaliser));
    shortlist.indices.forEach((index, n) => {
      if (index !== other.shortlist.indices[n]) differentItems++;
      if (shortlist.scores[n] !== other.shortlist.scores[n]) differentScores++;
    });
  });
}

const rounds = Number(values.rounds);
const timing: Record<string, { exact_ms: number; quantised_ms: number }> = {};
const other = new Float64Array(8 << 20);
let sink = 0;
/** Reads 64 MB (one value a cache line): what the caches held is gone. */
const flush = (): void => {
  for (let i = 0; i < other.length; i += 8) sink += other[i]!;
};
const timed = (model: ServedModel, batch: number, cold: boolean): number => {
  let ms = 0;
  let n = 0;
  for (let i = 0; i + batch <= Math.min(256, histories.length); i += batch, n += batch) {
    if (cold) flush();
    const t0 = performance.now();
    model.represent(histories.slice(i, i + batch));
    ms += performance.now() - t0;
  }
  return ms / n;
};
for (const cold of [false, true]) {
  for (const batch of [1, 2, 4, 8, 16]) {
    let e = 0;
    let q = 0;
    for (let r = 0; r < rounds; r++) {
      e += timed(exact, batch, cold);
      q += timed(quantised, batch, cold);
    }
    timing[`${batch}${cold ? ' cold' : ''}`] = { exact_ms: round(e / rounds), quantised_ms: round(q / rounds) };
  }
}
if (sink !== 0) throw new Error('the flush buffer is all zeros');
console.log(JSON.stringify({ version: version.id, items: exact.numItems, scoring: quantised.scoring, histories: histories.length, shortlist: exact.represent(histories.slice(0, 1))[0]!.shortlist.indices.length, different_items: differentItems, different_scores: differentScores, max_normaliser_difference: normaliser, ms_per_history_by_batch: timing }, null, 2));

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}
