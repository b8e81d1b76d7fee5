import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { Random } from '../src/random.js';

/**
 * A synthetic event log shaped like a shop's: Zipf-like item popularity,
 * users with sessions of a few events, a view → cart → purchase funnel, time
 * moving forward. Deterministic for a seed.
 */
export interface SyntheticLogOptions {
  readonly events: number;
  readonly users: number;
  readonly items: number;
  readonly seed: number;
}

export async function writeSyntheticCsv(path: string, options: SyntheticLogOptions): Promise<void> {
  const random = new Random(options.seed);
  const out = createWriteStream(path);
  out.write('user_id,session_id,item_id,event_type,timestamp,value\n');
  // Item popularity ~ 1/rank: sample by inverting the cumulative harmonic sum.
  const cumulative = new Float64Array(options.items);
  let sum = 0;
  for (let i = 0; i < options.items; i++) cumulative[i] = sum += 1 / (i + 1);
  const pickItem = (): number => {
    const target = random.next() * sum;
    let lo = 0;
    let hi = options.items - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cumulative[mid]! < target) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  let ts = Date.UTC(2024, 0, 1);
  let written = 0;
  let session = 0;
  let chunk = '';
  while (written < options.events) {
    const user = random.int(options.users);
    const sessionId = `s${session++}`;
    const length = 1 + random.int(8);
    for (let k = 0; k < length && written < options.events; k++) {
      ts += 1 + random.int(2000);
      const item = pickItem();
      const r = random.next();
      const type = r < 0.8 ? 'view' : r < 0.95 ? 'cart' : 'purchase';
      const value = type === 'purchase' ? (5 + (item % 100)).toFixed(2) : '';
      chunk += `u${user},${sessionId},i${item},${type},${new Date(ts).toISOString()},${value}\n`;
      written++;
      if (chunk.length > 1 << 16) {
        if (!out.write(chunk)) await once(out, 'drain');
        chunk = '';
      }
    }
  }
  out.end(chunk);
  await once(out, 'finish');
}
