import { loadSequences } from '../src/data/sequences.js';
import type { Store } from '../src/data/store.js';
import type { ModelConfig } from '../src/model/config.js';
import { servingFlops } from '../src/model/serving-flops.js';
import { Random } from '../src/random.js';
import { httpRequest, type LoadRequest } from './load-generator.js';

/**
 * What the serve benchmark sends, built from the stored histories (for the
 * amazon-games benchmark: samples/amazon-games.txt as imported, one history
 * per user) so requests look like real traffic.
 */
export interface Histories {
  /** External user id per history. */
  readonly users: readonly string[];
  /** History s spans [offsets[s], offsets[s + 1]) of `items`. */
  readonly offsets: Int32Array;
  /** External item ids, history after history, oldest event first. */
  readonly items: readonly string[];
  /** History indices ordered by length, shortest first. */
  readonly byLength: Int32Array;
}

/** Reads every user's history from the store, once, before any server starts. */
export async function readHistories(store: Store): Promise<Histories> {
  const sequences = await loadSequences(store, { by: 'user' });
  const userIds = new Map((await store.prisma.user.findMany({ select: { id: true, externalId: true } })).map((u) => [u.id, u.externalId]));
  const itemIds = new Map((await store.prisma.item.findMany({ select: { id: true, externalId: true } })).map((i) => [i.id, i.externalId]));
  const users = Array.from(sequences.owners, (id) => userIds.get(id)!);
  const items = Array.from(sequences.items, (id) => itemIds.get(id)!);
  const length = (s: number): number => sequences.offsets[s + 1]! - sequences.offsets[s]!;
  const byLength = Int32Array.from(users.keys()).sort((a, b) => length(a) - length(b));
  return { users, offsets: sequences.offsets, items, byLength };
}

export function historyLength(h: Histories, s: number): number {
  return h.offsets[s + 1]! - h.offsets[s]!;
}

/** Largest session the API accepts (POST /v1/sessions/recommendations). */
const MAX_SESSION = 1_000;

export interface Keys {
  readonly read: string;
  readonly write: string;
}

/**
 * Request builders, each drawing from a seeded generator:
 *  - active(): an event then recommendations for the same user — POST
 *    /v1/events with one 'view' of an item drawn from the stored events (so
 *    popular items come up as often as they do in the log), then GET
 *    /v1/users/:id/recommendations?k=10 on the same connection once the POST
 *    is answered; the user is drawn uniformly;
 *  - idle(): GET recommendations for a user drawn uniformly;
 *  - session(): POST /v1/sessions/recommendations with 'view' events: a
 *    length drawn from the users' history lengths (a uniform user's length,
 *    at most 1,000), then a window of that many consecutive events of a
 *    uniform user whose history is at least that long; session(30): 30;
 *  - ingestBatch(): POST /v1/events with 100 events (uniform users, items as
 *    in active()), each with a fresh eventId;
 *  - mix(share): active() with probability share, else idle().
 */
export class Workloads {
  private readonly random: Random;
  private sequence = 0;
  private newItems = 0;
  private readonly host: string;
  private readonly tag = Date.now().toString(36);
  /** Events this builder has sent per history (user): the stored histories grow by these. */
  private readonly added: Int32Array;

  constructor(
    private readonly h: Histories,
    url: string,
    private readonly keys: Keys,
    seed: number,
  ) {
    this.host = new URL(url).host;
    this.random = new Random(seed);
    this.added = new Int32Array(h.users.length);
  }

  private user(): number {
    return this.random.int(this.h.users.length);
  }

  private item(): string {
    return this.h.items[this.random.int(this.h.items.length)]!;
  }

  private recommendations(name: string, externalId: string): LoadRequest[number] {
    return httpRequest(name, 'GET', `/v1/users/${encodeURIComponent(externalId)}/recommendations?k=10`, { host: this.host, headers: { authorization: `Bearer ${this.keys.read}` } });
  }

  /** Events for these users (history indices), each of an item drawn from the stored events; the first `newItems` name items never seen before (created on first sight). */
  private events(name: string, users: number[], newItems = 0): LoadRequest[number] {
    const events = users.map((u, i) => {
      this.added[u]!++;
      return { userId: this.h.users[u]!, itemId: i < newItems ? `bench-new-${this.tag}-${++this.newItems}` : this.item(), type: 'view', eventId: `bench-${this.tag}-${++this.sequence}` };
    });
    const body = JSON.stringify({ events });
    return httpRequest(name, 'POST', '/v1/events', { host: this.host, headers: { authorization: `Bearer ${this.keys.write}` }, body });
  }

  active(names = { event: 'event', recommendations: 'recommendations' }): LoadRequest {
    const user = this.user();
    return [this.events(names.event, [user]), this.recommendations(names.recommendations, this.h.users[user]!)];
  }

  idle(name = 'recommendations'): LoadRequest {
    return [this.recommendations(name, this.h.users[this.user()]!)];
  }

  /** Each user's history length now: as stored when the benchmark began, plus the events sent since (answered or not). */
  currentLengths(): number[] {
    return Array.from(this.added, (added, s) => historyLength(this.h, s) + added);
  }

  /** A session's length: a uniform user's history length (at most 1,000), or `fixed`. */
  sessionLength(fixed?: number): number {
    return fixed ?? Math.min(MAX_SESSION, historyLength(this.h, this.random.int(this.h.users.length)));
  }

  session(fixed?: number): LoadRequest {
    const length = this.sessionLength(fixed);
    // Histories at least `length` long are a suffix of byLength; pick one, then a window in it.
    let lo = 0;
    let hi = this.h.byLength.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (historyLength(this.h, this.h.byLength[mid]!) >= length) hi = mid;
      else lo = mid + 1;
    }
    if (lo === this.h.byLength.length) throw new Error(`no stored history has ${length} events`);
    const s = this.h.byLength[lo + this.random.int(this.h.byLength.length - lo)]!;
    const start = this.h.offsets[s]! + this.random.int(historyLength(this.h, s) - length + 1);
    const events = this.h.items.slice(start, start + length).map((item) => ({ item, type: 'view' }));
    return [httpRequest('session', 'POST', '/v1/sessions/recommendations', { host: this.host, headers: { authorization: `Bearer ${this.keys.read}` }, body: JSON.stringify({ events, k: 10 }) })];
  }

  /** A batch of `size` events on uniform users; `newItems` of them name an item the store has never seen (a shop's launches). */
  ingestBatch(size = 100, newItems = 0): LoadRequest {
    return [this.events('events', Array.from({ length: size }, () => this.user()), newItems)];
  }

  mix(activeShare: number): LoadRequest {
    return this.random.next() < activeShare
      ? this.active({ event: 'event', recommendations: 'recommendations (after an event)' })
      : this.idle('recommendations (idle)');
  }
}

export type FlopsConfig = Pick<ModelConfig, 'dim' | 'ffnDim' | 'blocks' | 'itemBias' | 'maxLength' | 'numItems'>;

/** Mean FLOPs of one uncached request over these history lengths (each capped at maxLength: the model reads the last maxLength events). */
export function meanServingFlops(config: FlopsConfig, members: number, lengths: Iterable<number>): { mean_length: number; network: number; scoring: number; total: number } {
  let n = 0;
  let length = 0;
  let network = 0;
  let scoring = 0;
  const memo = new Map<number, ReturnType<typeof servingFlops>>();
  for (const raw of lengths) {
    const T = Math.max(1, Math.min(config.maxLength, raw));
    let f = memo.get(T);
    if (!f) memo.set(T, (f = servingFlops(config, members, T, config.numItems)));
    n++;
    length += T;
    network += f.network;
    scoring += f.scoring;
  }
  const mean = (x: number): number => Math.round(x / Math.max(1, n));
  return { mean_length: Math.round((length / Math.max(1, n)) * 100) / 100, network: mean(network), scoring: mean(scoring), total: mean(network + scoring) };
}
