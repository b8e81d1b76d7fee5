/**
 * Writes the shipped repeat-purchase sample (samples/repeat-events.csv, samples/repeat-catalog.csv): a
 * generated consumables shop, where buying the same item again is what most purchases are. Seeded, so
 * the files are reproducible byte for byte (test/sample-data.test.ts regenerates and compares them).
 *
 * How shoppers behave (the structure a model can learn):
 * - 12 categories of 25 items (coffee, detergent, pet food, …); each item has a repurchase cycle of 7-56
 *   days (longer for bigger packs), the same for every shopper.
 * - Each shopper has 2-5 staples (items of 1-3 preferred categories) and buys each again when its cycle
 *   is due, give or take 20 %; 10 % of the time a due staple is skipped (bought elsewhere).
 * - Besides, every visit 35 % of the time tries something new: a view or two in a preferred category,
 *   then (half the time) a purchase; an item tried and liked (40 %) becomes a staple from then on.
 * - Visits happen when a staple is due; every event of a visit is a minute apart, over 240 days from
 *   2026-01-05.
 *
 *   npx tsx scripts/generate-repeat-sample.ts [--out samples] [--users 500]
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Random } from '../src/random.js';

export const REPEAT_SAMPLE_SEED = 20_261_205;
const CATEGORIES = ['coffee', 'tea', 'detergent', 'dish-soap', 'shampoo', 'toothpaste', 'pet-food', 'cat-litter', 'baby-wipes', 'vitamins', 'paper-towels', 'water-filters'];
const ITEMS_PER_CATEGORY = 25;
const USERS = 500;
const START = Date.UTC(2026, 0, 5);
const DAYS = 240;
const MINUTE = 60_000;
const DAY = 86_400_000;

interface Item {
  readonly id: string;
  readonly category: number;
  readonly cycleDays: number;
  readonly price: number;
}

export function generateRepeatSample(seed = REPEAT_SAMPLE_SEED, users = USERS): { catalog: string; events: string } {
  const random = new Random(seed);
  const items: Item[] = [];
  const catalogLines = ['item_id,title,category,price,properties'];
  for (let c = 0; c < CATEGORIES.length; c++) {
    for (let n = 0; n < ITEMS_PER_CATEGORY; n++) {
      const pack = 1 + random.int(4); // 1-4: bigger packs last longer and cost more
      const cycleDays = Math.min(56, 7 * pack + random.int(14));
      const price = Math.round((3 + random.next() * 12) * pack * 100) / 100;
      const id = `rp-${String(items.length + 1).padStart(4, '0')}`;
      items.push({ id, category: c, cycleDays, price });
      catalogLines.push(`${id},${CATEGORIES[c]} ${n + 1} (pack of ${pack}),${CATEGORIES[c]},${price},"${JSON.stringify({ brand: `${CATEGORIES[c]}-brand-${1 + random.int(4)}`, pack, cycle_days: cycleDays }).replace(/"/g, '""')}"`);
    }
  }
  const inCategory = (c: number): number => c * ITEMS_PER_CATEGORY + random.int(ITEMS_PER_CATEGORY);

  const eventLines = ['user_id,session_id,item_id,event_type,timestamp,value,quantity'];
  let sessions = 0;
  for (let u = 0; u < users; u++) {
    const user = `u-${u + 1}`;
    const preferred = Array.from({ length: 1 + random.int(3) }, () => random.int(CATEGORIES.length));
    const staples = new Map<number, number>(); // item → when it is next due
    let t = START + random.int(30) * DAY + random.int(12 * 60) * MINUTE;
    for (let s = 2 + random.int(4); s > 0; s--) staples.set(inCategory(preferred[random.int(preferred.length)]!), t + random.int(21) * DAY);
    while (true) {
      // The next visit: when the earliest staple is due.
      const due = Math.min(...staples.values());
      t = Math.max(t + DAY, due) + random.int(10 * 60) * MINUTE;
      if (t >= START + DAYS * DAY) break;
      const session = `s-${++sessions}`;
      for (const [item, when] of [...staples]) {
        if (when > t + 2 * DAY) continue;
        const cycle = items[item]!.cycleDays * DAY * (0.8 + 0.4 * random.next());
        staples.set(item, t + cycle);
        if (random.next() < 0.1) continue; // bought elsewhere this time
        t += MINUTE;
        eventLines.push(`${user},${session},${items[item]!.id},purchase,${new Date(t).toISOString()},${items[item]!.price},1`);
      }
      if (random.next() < 0.35) {
        const tried = inCategory(preferred[random.int(preferred.length)]!);
        for (let v = 1 + random.int(2); v > 0; v--) {
          t += MINUTE;
          eventLines.push(`${user},${session},${items[tried]!.id},view,${new Date(t).toISOString()},,`);
        }
        if (!staples.has(tried) && random.next() < 0.5) {
          t += MINUTE;
          eventLines.push(`${user},${session},${items[tried]!.id},purchase,${new Date(t).toISOString()},${items[tried]!.price},1`);
          if (random.next() < 0.4) staples.set(tried, t + items[tried]!.cycleDays * DAY);
        }
      }
    }
  }
  return { catalog: `${catalogLines.join('\n')}\n`, events: `${eventLines.join('\n')}\n` };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { out: { type: 'string', default: 'samples' }, users: { type: 'string', default: String(USERS) } } });
  const users = Number(values.users);
  if (!Number.isInteger(users) || users < 1 || users > 1_000_000) throw new Error(`--users must be a whole number from 1 to 1,000,000; got '${values.users}'`);
  const { catalog, events } = generateRepeatSample(REPEAT_SAMPLE_SEED, users);
  writeFileSync(join(values.out, 'repeat-catalog.csv'), catalog);
  writeFileSync(join(values.out, 'repeat-events.csv'), events);
  process.stderr.write(`wrote ${join(values.out, 'repeat-catalog.csv')} (${catalog.split('\n').length - 2} items) and ${join(values.out, 'repeat-events.csv')} (${events.split('\n').length - 2} events)\n`);
}
