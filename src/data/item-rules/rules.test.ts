import { describe, expect, it } from 'vitest';
import type { ItemProperties } from '../item-properties.js';
import type { CatalogItem } from '../serving-reader.js';
import { compileBoosts, compileFilter, PropertyTypes } from './compile.js';
import { MAX_RULE_LENGTH, parseFilter, RuleError } from './parse.js';

const NOW = Date.UTC(2026, 11, 4);
const DAY = 86_400_000;

function item(id: number, properties: ItemProperties | null, extra: Partial<CatalogItem> = {}): CatalogItem {
  return { id, externalId: `sku-${id}`, title: `Item ${id}`, category: 'games', price: 10 * id, active: true, createdAt: NOW - id * DAY, properties, ...extra };
}

const CATALOG = [
  item(1, { brand: 'a', stock: 5, tags: ['promo', 'new'], size: { cm: 30 } }),
  item(2, { brand: 'b', stock: 0, tags: ['clearance'] }),
  item(3, { brand: 'c', stock: 12, 'in stock': true }, { category: 'toys' }),
  item(4, null, { category: null, price: null }),
];
const TYPES = PropertyTypes.of(CATALOG);

function matching(filter: string): string[] {
  const compiled = compileFilter(filter, TYPES);
  return CATALOG.filter((i) => compiled.test(i, NOW)).map((i) => i.externalId);
}

function ruleError(run: () => unknown): RuleError {
  try {
    run();
  } catch (error) {
    if (error instanceof RuleError) return error;
    throw error;
  }
  throw new Error('no RuleError thrown');
}

describe('filter rules', () => {
  it('combine comparisons, IN lists and parentheses with AND, OR and NOT (keywords in any case)', () => {
    expect(matching('stock > 0 AND brand IN ("a","b")')).toEqual(['sku-1']);
    expect(matching('stock > 0 and (brand = "a" or category = "toys")')).toEqual(['sku-1', 'sku-3']);
    expect(matching('NOT brand IN ("a", "b")')).toEqual(['sku-3', 'sku-4']);
    expect(matching('brand NOT IN ("a")')).toEqual(['sku-2', 'sku-3']); // the item without a brand is not "not a"
    expect(matching('price >= 20 AND price < 40')).toEqual(['sku-2', 'sku-3']);
    expect(matching('stock <> 0')).toEqual(['sku-1', 'sku-3']);
  });

  it('match an array when any element does, reach into nested objects, and take backticked names as properties', () => {
    expect(matching('tags = "promo"')).toEqual(['sku-1']);
    expect(matching('tags IN ("new", "clearance")')).toEqual(['sku-1', 'sku-2']);
    expect(matching('size.cm > 20')).toEqual(['sku-1']);
    expect(matching('`in stock` = true')).toEqual(['sku-3']);
  });

  it('read the built-ins: category, title, price, active and age in days', () => {
    expect(matching('category = "toys"')).toEqual(['sku-3']);
    expect(matching('title = "Item 2"')).toEqual(['sku-2']);
    expect(matching('age <= 2')).toEqual(['sku-1', 'sku-2']);
    expect(compileFilter('age < 3', TYPES).usesAge).toBe(true);
    expect(compileFilter('price < 3', TYPES).usesAge).toBe(false);
    expect(matching('active = true')).toHaveLength(4);
    expect(matching('category IS NULL')).toEqual(['sku-4']);
    expect(matching('brand IS NOT NULL')).toEqual(['sku-1', 'sku-2', 'sku-3']);
  });

  it('let an unknown property match nothing, != included, and never fail on it', () => {
    expect(matching('colour = "red"')).toEqual([]);
    expect(matching('colour != "red"')).toEqual([]);
    expect(matching('NOT colour = "red"')).toHaveLength(4);
  });

  it('refuse a comparison with the wrong type, naming the built-in or the property and pointing at the value', () => {
    let error = ruleError(() => compileFilter('price > "cheap"', TYPES));
    expect(error.code).toBe('RULE_TYPE');
    expect(error.message).toBe('price holds numbers: it cannot be compared with "cheap" (a string)');
    expect(error.offset).toBe(8);
    error = ruleError(() => compileFilter('brand = "a" AND stock > "5"', TYPES));
    expect(error.message).toBe('property stock holds numbers in the catalogue: it cannot be compared with "5" (a string)');
    expect(error.offset).toBe(24);
    error = ruleError(() => compileFilter('active > true', TYPES));
    expect(error.message).toMatch(/active holds true or false: > does not apply/);
    expect(ruleError(() => compileFilter('brand IN ("a", 3)', TYPES)).offset).toBe(15);
  });

  it('point a syntax error at the offending character', () => {
    let error = ruleError(() => parseFilter('stock > > 0'));
    expect(error.code).toBe('RULE_SYNTAX');
    expect(error.offset).toBe(8);
    expect(error.message).toBe("expected a value (a string in double quotes, a number, true or false) at character 9, found '> 0'");
    error = ruleError(() => parseFilter('brand IN ("a", "b"'));
    expect(error.offset).toBe(18);
    expect(error.message).toMatch(/expected .*'\)'.* at character 19, found the end/);
    error = ruleError(() => parseFilter('stock > 0 AND'));
    expect(error.offset).toBe(13);
    error = ruleError(() => parseFilter('brand = "a" extra'));
    expect(error.offset).toBe(12);
    expect(ruleError(() => parseFilter('x = "unterminated')).offset).toBe(4);
    expect(ruleError(() => parseFilter('AND = 1')).offset).toBe(0); // a keyword is not a name unless quoted
    expect(ruleError(() => parseFilter('a'.repeat(MAX_RULE_LENGTH + 1))).message).toMatch(/at most 2000 characters/);
  });
});

describe('boost rules', () => {
  it('multiply the factors whose conditions hold, and know the largest possible factor', () => {
    const boosts = compileBoosts('1.5 IF tags = "promo"; 2 IF stock > 4; 0.1 IF stock = 0;', TYPES);
    expect(CATALOG.map((i) => boosts.factor(i, NOW))).toEqual([3, 0.1, 2, 1]);
    expect(boosts.maxFactor).toBe(3);
  });

  it('refuse a factor out of range or a malformed rule, pointing at it', () => {
    let error = ruleError(() => compileBoosts('0 IF stock = 0', TYPES));
    expect(error.code).toBe('RULE_VALUE');
    expect(error.offset).toBe(0);
    error = ruleError(() => compileBoosts('1.5 IF tags = "promo"; IF stock = 0', TYPES));
    expect(error.code).toBe('RULE_SYNTAX');
    expect(error.offset).toBe(23); // 'IF', where a factor belongs
    error = ruleError(() => compileBoosts('1.5 tags = "promo"', TYPES));
    expect(error.offset).toBe(4);
  });
});
