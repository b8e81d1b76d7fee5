import type { ServedModel } from '../model/served-model.js';

/** One shopper's history in the model's terms, with event-type names. */
export interface AggregateHistory {
  readonly items: ArrayLike<number>;
  readonly types: ArrayLike<number>;
}

export interface AttentionAggregate {
  readonly modelVersion: number;
  readonly users: number;
  /** Ensemble members (1 for a single model); each has `layers` blocks. */
  readonly members: number;
  readonly layers: number;
  readonly heads: number;
  /** Mean attention from the last position to the event `distance` steps back (0 = itself), per member, layer and head. */
  readonly byDistance: { readonly member: number; readonly layer: number; readonly head: number; readonly distance: number; readonly mean: number; readonly users: number }[];
  /** Mean attention from the last position to one event of each type, and the type's share of all attention. */
  readonly byEventType: { readonly member: number; readonly layer: number; readonly head: number; readonly type: string; readonly mean: number; readonly share: number; readonly events: number }[];
}

/**
 * Where the prediction's attention goes on average over many shoppers: by
 * recency (distance from the last position) and by event type, per member,
 * layer and head. A head whose weight sits at distance 0–1 is a recency head; one
 * spread evenly reads the whole history.
 */
export function aggregateAttention(
  model: ServedModel,
  histories: readonly AggregateHistory[],
  typeNames: ReadonlyMap<number, string>,
  onProgress?: (done: number, total: number) => void,
): AttentionAggregate {
  const { blocks, heads, maxLength } = model.config;
  const { members } = model;
  const layers = members * blocks; // every member's blocks, member by member
  const distanceSum = new Float64Array(layers * heads * maxLength);
  const distanceCount = new Float64Array(maxLength);
  const typeSum = new Map<string, Float64Array>();
  const typeCount = new Map<string, number>();
  let users = 0;
  let done = 0;
  for (const history of histories) {
    if (++done % 100 === 0) onProgress?.(done, histories.length);
    const encoded = model.encode(history.items, history.types);
    const T = encoded.items.length;
    if (T === 0) continue;
    users++;
    const { layers: weights } = model.attention(encoded);
    // Types of the events the model read (encode keeps their order; unknown items are dropped first).
    const kept: number[] = [];
    for (let i = 0; i < history.items.length; i++) if (model.vocabulary.indexOf(history.items[i]!) !== 0) kept.push(history.types[i]!);
    const types = kept.slice(kept.length - T).map((t) => typeNames.get(t) ?? 'unknown');
    for (let d = 0; d < T; d++) distanceCount[d]!++;
    for (const type of types) typeCount.set(type, (typeCount.get(type) ?? 0) + 1);
    weights.forEach((layer, l) => {
      for (let h = 0; h < heads; h++) {
        const row = (T - 1) * T + h * T * T;
        for (let s = 0; s < T; s++) {
          const w = layer[row + s]!;
          distanceSum[(l * heads + h) * maxLength + (T - 1 - s)]! += w;
          let sums = typeSum.get(types[s]!);
          if (!sums) typeSum.set(types[s]!, (sums = new Float64Array(layers * heads)));
          sums[l * heads + h]! += w;
        }
      }
    });
  }
  const byDistance: AttentionAggregate['byDistance'][number][] = [];
  const byEventType: AttentionAggregate['byEventType'][number][] = [];
  for (let l = 0; l < layers; l++)
    for (let h = 0; h < heads; h++) {
      const where = { member: Math.floor(l / blocks), layer: l % blocks, head: h };
      for (let d = 0; d < maxLength; d++) {
        if (distanceCount[d]! === 0) continue;
        byDistance.push({ ...where, distance: d, mean: distanceSum[(l * heads + h) * maxLength + d]! / distanceCount[d]!, users: distanceCount[d]! });
      }
      for (const [type, sums] of [...typeSum].sort(([a], [b]) => (a < b ? -1 : 1))) {
        byEventType.push({ ...where, type, mean: sums[l * heads + h]! / typeCount.get(type)!, share: sums[l * heads + h]! / Math.max(1, users), events: typeCount.get(type)! });
      }
    }
  return { modelVersion: model.version, users, members, layers: blocks, heads, byDistance, byEventType };
}

export function aggregateCsv(aggregate: AttentionAggregate): string {
  const lines = ['kind,member,layer,head,key,mean,share,count'];
  for (const d of aggregate.byDistance) lines.push(`distance,${d.member},${d.layer},${d.head},${d.distance},${d.mean},,${d.users}`);
  for (const t of aggregate.byEventType) lines.push(`event_type,${t.member},${t.layer},${t.head},${t.type},${t.mean},${t.share},${t.events}`);
  return `${lines.join('\n')}\n`;
}
