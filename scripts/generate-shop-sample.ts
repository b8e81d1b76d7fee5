/**
 * Writes the shipped shop sample (samples/shop-events.csv, samples/shop-catalog.csv): a small generated
 * e-commerce log with what the amazon files lack: views, carts and purchases grouped in sessions
 * (anonymous ones too), categories, prices and properties (brand, stock, tags). Seeded, so the files are
 * reproducible byte for byte (test/sample-data.test.ts regenerates and compares them).
 *
 * How shoppers behave (the structure a model can learn):
 * - 16 categories of 30 items; each item has 3 companions (2 in other categories, 1 in its own): what
 *   a shopper looks at next follows a companion of the last item 55 % of the time, else an item of one
 *   of their 2 preferred categories (popular items more often), else any item.
 * - A session is 2-12 views; a viewed item is carted 15 % of the time; at the session's end each carted
 *   item is bought with probability 0.5. 10 % of sessions are anonymous (a session id, no user).
 * - Users have 1-6 sessions, days apart, from 2026-06-01 on.
 *
 *   npx tsx scripts/generate-shop-sample.ts [--out samples] [--users 1000]
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Random } from '../src/random.js';

export const SHOP_SAMPLE_SEED = 20_261_204;
const CATEGORIES = ['audio', 'cameras', 'coffee', 'books', 'toys', 'garden', 'kitchen', 'fitness', 'games', 'beauty', 'pets', 'office', 'shoes', 'bags', 'tools', 'lighting'];
const ITEMS_PER_CATEGORY = 30;
const BRANDS_PER_CATEGORY = 5;
const USERS = 1_000;
const START = Date.UTC(2026, 5, 1);
const MINUTE = 60_000;
const DAY = 86_400_000;

interface SampleItem {
  readonly id: string;
  readonly category: number;
  readonly price: number;
  readonly companions: number[];
}

/** Options for benchmarks; the shipped sample uses none of them. */
export interface ShopOptions {
  /** Users (default 1,000). */
  readonly users?: number;
  /**
   * This share of the items (chosen by a generator of their own, so the rest of the log is drawn as
   * without launches until a launched item would be picked) only exists from a launch day between day
   * 55 and day 85 of the timeline, which runs from day 0 to about day 140: a shopper who would look at
   * one earlier looks at another item instead. Default 0.
   * (Half the log's events happen by day 50, 90 % by day 87.)
   */
  readonly launchShare?: number;
}

/** The shipped sample with the defaults; a bigger shop of the same kind, or one with items launched late (benchmarks). */
export function generateShopSample(seed = SHOP_SAMPLE_SEED, options: ShopOptions = {}): { catalog: string; events: string } {
  const users = options.users ?? USERS;
  const random = new Random(seed);
  const items: SampleItem[] = [];
  const catalogLines = ['item_id,title,category,price,properties'];
  for (let c = 0; c < CATEGORIES.length; c++) {
    const base = 5 + random.int(60);
    for (let n = 0; n < ITEMS_PER_CATEGORY; n++) {
      const index = items.length;
      const id = `sku-${String(index + 1).padStart(4, '0')}`;
      const price = Math.round(base * (0.5 + 1.5 * random.next()) * 100) / 100;
      items.push({ id, category: c, price, companions: [] });
      const properties = {
        brand: `${CATEGORIES[c]}-brand-${1 + random.int(BRANDS_PER_CATEGORY)}`,
        stock: random.next() < 0.1 ? 0 : 1 + random.int(50),
        tags: [...(n >= ITEMS_PER_CATEGORY - 3 ? ['new'] : []), ...(random.next() < 0.1 ? ['promo'] : [])],
      };
      catalogLines.push(`${id},${CATEGORIES[c]} item ${n + 1},${CATEGORIES[c]},${price},"${JSON.stringify(properties).replace(/"/g, '""')}"`);
    }
  }
  const launches = new Float64Array(items.length); // 0: there from the start
  if ((options.launchShare ?? 0) > 0) {
    const draw = new Random(seed + 1);
    for (let i = 0; i < items.length; i++) if (draw.next() < options.launchShare!) launches[i] = START + (55 + draw.next() * 30) * DAY;
  }
  const inCategory = (c: number): number => c * ITEMS_PER_CATEGORY + zipf(random, ITEMS_PER_CATEGORY);
  for (const item of items) {
    const others = [random.int(CATEGORIES.length), random.int(CATEGORIES.length)].map((c) => (c === item.category ? (c + 1) % CATEGORIES.length : c));
    item.companions.push(inCategory(others[0]!), inCategory(others[1]!), inCategory(item.category));
  }

  const eventLines = ['user_id,session_id,item_id,event_type,timestamp,value,quantity'];
  let sessions = 0;
  for (let u = 0; u < users; u++) {
    const preferred = [random.int(CATEGORIES.length), random.int(CATEGORIES.length)];
    let t = START + random.int(90) * DAY + random.int(24 * 60) * MINUTE;
    let last = inCategory(preferred[0]!);
    const visits = 1 + Math.min(5, Math.floor(-Math.log(1 - random.next()) / 0.6));
    for (let v = 0; v < visits; v++) {
      const session = `s-${++sessions}`;
      const user = random.next() < 0.1 ? '' : `u-${u + 1}`;
      const carted: number[] = [];
      const views = 2 + random.int(11);
      for (let e = 0; e < views; e++) {
        let item = -1;
        for (let tries = 0; item < 0 || (launches[item]! > t && tries < 100); tries++) {
          const r = random.next();
          item = r < 0.55 ? items[last]!.companions[random.int(3)]! : r < 0.9 ? inCategory(preferred[random.int(2)]!) : random.int(items.length);
        }
        t += (1 + random.int(4)) * MINUTE;
        eventLines.push(`${user},${session},${items[item]!.id},view,${new Date(t).toISOString()},,`);
        if (random.next() < 0.15 && !carted.includes(item)) {
          t += MINUTE;
          carted.push(item);
          eventLines.push(`${user},${session},${items[item]!.id},cart,${new Date(t).toISOString()},,`);
        }
        last = item;
      }
      for (const item of carted) {
        if (random.next() >= 0.5) continue;
        t += 2 * MINUTE;
        eventLines.push(`${user},${session},${items[item]!.id},purchase,${new Date(t).toISOString()},${items[item]!.price},1`);
      }
      t += (1 + random.int(14)) * DAY;
    }
  }
  return { catalog: `${catalogLines.join('\n')}\n`, events: `${eventLines.join('\n')}\n` };
}

/** 0..n-1, the first most often (weights 1/(r+1)). */
function zipf(random: Random, n: number): number {
  let total = 0;
  for (let r = 0; r < n; r++) total += 1 / (r + 1);
  let x = random.next() * total;
  for (let r = 0; r < n; r++) {
    x -= 1 / (r + 1);
    if (x < 0) return r;
  }
  return n - 1;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { out: { type: 'string', default: 'samples' }, users: { type: 'string', default: String(USERS) } } });
  const users = Number(values.users);
  if (!Number.isInteger(users) || users < 1 || users > 1_000_000) throw new Error(`--users must be a whole number from 1 to 1,000,000; got '${values.users}'`);
  const { catalog, events } = generateShopSample(SHOP_SAMPLE_SEED, { users });
  writeFileSync(join(values.out, 'shop-catalog.csv'), catalog);
  writeFileSync(join(values.out, 'shop-events.csv'), events);
  process.stderr.write(`wrote ${join(values.out, 'shop-catalog.csv')} (${catalog.split('\n').length - 2} items) and ${join(values.out, 'shop-events.csv')} (${events.split('\n').length - 2} events)\n`);
}
