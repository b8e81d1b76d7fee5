/**
 * What a recommendation id costs on the event loop (src/serve/recommendation-ids.ts): uuid's v7() with its
 * own random bytes (WebCrypto's getRandomValues on every call) against v7() given bytes from a pool that
 * one randomFillSync refills every 256 ids. Prints µs per id for each, three rounds.
 *
 *   npx tsx bench/uuid-random.ts
 */
import { v7 } from 'uuid';
import { RecommendationIds } from '../src/serve/recommendation-ids.js';

const N = 200_000;
const time = (make: () => string): number => {
  const started = performance.now();
  for (let i = 0; i < N; i++) make();
  return Math.round(((performance.now() - started) / N) * 1000 * 1000) / 1000;
};
const pooled = new RecommendationIds();
const rounds = Array.from({ length: 3 }, () => ({ uuid_v7_us: time(() => v7()), pooled_us: time(() => pooled.next()) }));
console.log(JSON.stringify({ ids_per_round: N, rounds }));
