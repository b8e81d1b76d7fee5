import { BUILTIN_EVENT_TYPES } from './import/event-types.js';

/**
 * What a recommendation leaves out of a shopper's own history: what they
 * bought (the default), everything they touched, or nothing. The API's
 * `exclude` and the evaluation's `--exclude` are the same policy, so offline
 * numbers measure what the API can show: a held-out item the policy leaves
 * out counts as a miss.
 */
export const EXCLUDE_POLICIES = ['purchased', 'seen', 'none'] as const;
export type ExcludePolicy = (typeof EXCLUDE_POLICIES)[number];
export const DEFAULT_EXCLUDE: ExcludePolicy = 'purchased';

const PURCHASE = BUILTIN_EVENT_TYPES.purchase!;

/** The items of a history (items[i] of event type types[i]) the policy leaves out. */
export function excludedItems(policy: ExcludePolicy, items: ArrayLike<number>, types: ArrayLike<number>): Set<number> {
  const out = new Set<number>();
  if (policy === 'none') return out;
  for (let i = 0; i < items.length; i++) if (policy === 'seen' || types[i] === PURCHASE) out.add(items[i]!);
  return out;
}
