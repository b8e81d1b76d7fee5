/**
 * Simulated shoppers for the production loop (issue #19): each follows a
 * hidden ground truth, the held-out continuation of a real history. A
 * shopper asks the API for recommendations, and if their true next item is
 * among them, views it with a probability that falls with its rank; a view
 * may lead to a cart and a cart to a purchase. Whatever they do is sent as
 * events (their time is the server's: now); then the shopper moves on to
 * their next true item, which they view either way. The simulator keeps
 * what the attribution rule must conclude (an event on an item goes to the
 * latest response that showed it to the shopper, or to the one it names),
 * counted per impression, so the online metrics can be checked exactly.
 *
 * Used by src/serve/shopper-simulation.test.ts (small) and runnable on its own against a server.
 */
import { Random } from '../src/random.js';

export interface SimulatedShopper {
  readonly id: string;
  /** Item ids still to come, in order: the hidden ground truth. */
  readonly next: readonly string[];
}

export interface ShopperBehaviour {
  /** P(view | the true next item is shown at rank r, 1-based) = viewAtTop / r^rankDecay. */
  readonly viewAtTop: number;
  readonly rankDecay: number;
  readonly cartAfterView: number;
  readonly purchaseAfterCart: number;
  /** Recommendations asked for each time. */
  readonly k: number;
  /** Price of a purchase (value) per item id; default 10. */
  readonly price?: (item: string) => number;
}

export const DEFAULT_BEHAVIOUR: ShopperBehaviour = { viewAtTop: 0.6, rankDecay: 1, cartAfterView: 0.5, purchaseAfterCart: 0.6, k: 10 };

/** What the simulator did, and what the server must have attributed. */
export interface SimulationTruth {
  readonly requests: number;
  /** Impressions after which the shopper viewed / carted / bought a shown item (each impression counted once per kind). */
  readonly viewed: number;
  readonly carted: number;
  readonly purchased: number;
  readonly revenue: number;
  /** Per variant name (responses outside experiments under 'none'). */
  readonly byVariant: ReadonlyMap<string, { requests: number; viewed: number; carted: number; purchased: number; revenue: number }>;
}

export interface SimulationOptions {
  readonly url: string;
  /** A key that may read recommendations and write events. */
  readonly key: string;
  readonly shoppers: readonly SimulatedShopper[];
  readonly behaviour?: ShopperBehaviour;
  readonly seed: number;
  /** Steps per shopper at most (default: their whole continuation). */
  readonly steps?: number;
  /** Send each event's recommendationId (explicit attribution) or leave it to the rule. */
  readonly explicit: boolean;
  /** Shoppers simulated at once (default 4). */
  readonly concurrency?: number;
}

interface RecommendationAnswer {
  recommendationId: string;
  items: { item: string }[];
  experiment?: { id: number; variant: string };
}

export async function simulateShoppers(options: SimulationOptions): Promise<SimulationTruth> {
  const behaviour = options.behaviour ?? DEFAULT_BEHAVIOUR;
  const random = new Random(options.seed);
  const price = behaviour.price ?? (() => 10);
  const headers = { authorization: `Bearer ${options.key}`, 'content-type': 'application/json' };
  // Each shopper's draws come from a generator of their own, seeded in order: the outcome does not depend on scheduling.
  const plans = options.shoppers.map((shopper) => ({ shopper, random: new Random(random.int(2 ** 31 - 1)) }));
  /** Every response the shoppers got, with what followed it as the attribution rule sees it. */
  const impressions: { variant: string; viewed: boolean; carted: boolean; purchased: boolean; revenue: number }[] = [];

  const one = async ({ shopper, random: r }: (typeof plans)[number]): Promise<void> => {
    // Item → the latest of this shopper's impressions that showed it: what the rule attributes an event on it to.
    const latestShowing = new Map<string, number>();
    const steps = Math.min(options.steps ?? Infinity, shopper.next.length);
    for (let s = 0; s < steps; s++) {
      const truth = shopper.next[s]!;
      const response = await fetch(`${options.url}/v1/users/${encodeURIComponent(shopper.id)}/recommendations?k=${behaviour.k}&exclude=none`, { headers });
      if (!response.ok) throw new Error(`recommendations for ${shopper.id}: HTTP ${response.status} ${await response.text()}`);
      const answer = (await response.json()) as RecommendationAnswer;
      const index = impressions.push({ variant: answer.experiment?.variant ?? 'none', viewed: false, carted: false, purchased: false, revenue: 0 }) - 1;
      for (const { item } of answer.items) latestShowing.set(item, index);
      const rank = answer.items.findIndex((i) => i.item === truth) + 1;
      const taken = rank > 0 && r.next() < behaviour.viewAtTop / rank ** behaviour.rankDecay;
      const types: string[] = ['view'];
      if (taken && r.next() < behaviour.cartAfterView) {
        types.push('cart');
        if (r.next() < behaviour.purchaseAfterCart) types.push('purchase');
      }
      // A shopper who did not take the recommendation still views their next item, found elsewhere.
      const named = taken && options.explicit ? answer.recommendationId : undefined;
      const events = types.map((type) => ({ userId: shopper.id, itemId: truth, type, ...(named && { recommendationId: named }), ...(type === 'purchase' && { value: price(truth), quantity: 1 }) }));
      // The truth, as the server must see it: the named response (which showed the item), else the latest that showed it.
      const attributed = named !== undefined ? index : latestShowing.get(truth);
      if (attributed !== undefined) {
        const shown = impressions[attributed]!;
        shown.viewed = true;
        if (types.includes('cart')) shown.carted = true;
        if (types.includes('purchase')) {
          shown.purchased = true;
          shown.revenue += price(truth);
        }
      }
      const sent = await fetch(`${options.url}/v1/events`, { method: 'POST', headers, body: JSON.stringify({ events }) });
      if (!sent.ok) throw new Error(`events for ${shopper.id}: HTTP ${sent.status} ${await sent.text()}`);
    }
  };
  const queue = [...plans];
  await Promise.all(
    Array.from({ length: Math.max(1, options.concurrency ?? 4) }, async () => {
      for (let plan = queue.shift(); plan; plan = queue.shift()) await one(plan);
    }),
  );
  const byVariant = new Map<string, { requests: number; viewed: number; carted: number; purchased: number; revenue: number }>();
  const totals = { requests: 0, viewed: 0, carted: 0, purchased: 0, revenue: 0 };
  for (const i of impressions) {
    const v = byVariant.get(i.variant) ?? { requests: 0, viewed: 0, carted: 0, purchased: 0, revenue: 0 };
    byVariant.set(i.variant, v);
    for (const t of [v, totals]) {
      t.requests++;
      t.viewed += Number(i.viewed);
      t.carted += Number(i.carted);
      t.purchased += Number(i.purchased);
      t.revenue += i.revenue;
    }
  }
  return { ...totals, byVariant };
}
