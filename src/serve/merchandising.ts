import type { ItemProperties, JsonValue } from '../data/item-properties.js';
import { RuleError } from '../data/item-rules/parse.js';
import type { CatalogCache } from './catalog-cache.js';
import { ProblemError } from './problem.js';
import type { Filters, Pin } from './recommender.js';

/**
 * The recommendation routes' merchandising parameters (docs/merchandising.md):
 * the filter and boost rules compiled against the catalogue (a rule that
 * cannot be used is a 400 that points at the character), and the items'
 * properties added to an answer when asked for.
 */

/** What the routes' filter parameters look like once validated (src/serve/validation.ts). */
export interface FilterParameters {
  readonly exclude: Filters['exclude'];
  readonly category?: string | undefined;
  readonly includeItems?: readonly string[] | undefined;
  readonly excludeItems?: readonly string[] | undefined;
  readonly filter?: string | undefined;
  readonly boost?: string | undefined;
  readonly pins?: readonly Pin[] | undefined;
  /** `name:n`: at most n items with the same value of name. */
  readonly maxPer?: string | undefined;
  readonly explore?: number | undefined;
}

export function filtersOf(catalog: CatalogCache, given: FilterParameters): Filters {
  return {
    exclude: given.exclude,
    category: given.category,
    includeItems: given.includeItems,
    excludeItems: given.excludeItems,
    where: given.filter === undefined ? undefined : compiled('filter', given.filter, () => catalog.filter(given.filter!)),
    boosts: given.boost === undefined ? undefined : compiled('boost', given.boost, () => catalog.boosts(given.boost!)),
    pins: given.pins,
    explore: given.explore,
    maxPer: given.maxPer === undefined ? undefined : compiled('maxPer', given.maxPer, () => diversityCap(catalog, given.maxPer!)),
  };
}

/** `name:n` → the group and its cap; a malformed one is a RuleError pointing at it. */
function diversityCap(catalog: CatalogCache, text: string): NonNullable<Filters['maxPer']> {
  const colon = text.lastIndexOf(':');
  const max = Number(text.slice(colon + 1));
  if (colon <= 0 || !Number.isInteger(max) || max < 1 || max > 100) throw new RuleError('RULE_SYNTAX', 'expected name:n, a name (category, or a property) and the most items of one value (1-100)', colon <= 0 ? text.length : colon + 1);
  return { group: catalog.group(text.slice(0, colon)), max };
}

function compiled<T>(parameter: 'filter' | 'boost' | 'maxPer', text: string, compile: () => T): T {
  try {
    return compile();
  } catch (error) {
    if (!(error instanceof RuleError)) throw error;
    // offset: 0-based, in the rule's text; the detail counts characters from 1.
    throw new ProblemError(error.code, `${parameter}: ${error.message}`, { parameter, offset: error.offset, rule: text, excerpt: pointAt(text, error.offset) });
  }
}

/** The rule's text (up to 60 characters around the offset) and a caret under the offending character. */
function pointAt(text: string, offset: number): string {
  const from = Math.max(0, offset - 40);
  const line = text.slice(from, from + 60).replace(/[\r\n\t]/g, ' ');
  return `${line}\n${' '.repeat(offset - from)}^`;
}

/** returnProperties: every property (true) or the names listed. */
export type PropertySelection = true | readonly string[] | undefined;

/** The items with their properties added as asked (the catalogue's current values). */
export function withProperties<T extends { readonly item: string }>(catalog: CatalogCache, items: readonly T[], selection: PropertySelection): (T & { properties?: ItemProperties | null })[] {
  if (selection === undefined) return items as T[];
  return items.map((entry) => ({ ...entry, properties: pick(catalog.byExternalId(entry.item)?.properties ?? null, selection) }));
}

function pick(properties: ItemProperties | null, selection: true | readonly string[]): ItemProperties | null {
  if (properties === null || selection === true) return properties;
  const picked: Record<string, JsonValue> = {};
  for (const name of selection) if (Object.hasOwn(properties, name)) picked[name] = properties[name]!;
  return picked;
}
