import type { ItemProperties, JsonValue } from '../item-properties.js';
import type { CatalogItem } from '../serving-reader.js';
import { parseBoosts, parseFilter, parseName, RuleError, type Operator, type RuleExpression, type RuleLiteral, type RuleName } from './parse.js';

/**
 * Filter and boost rules, checked against the catalogue and turned into
 * functions of an item. Semantics (docs/merchandising.md):
 * - A name is a built-in (category, title, price, active, age: days since the
 *   item entered the catalogue) unless it is in backticks; otherwise a property,
 *   with dots into nested objects.
 * - A comparison holds only when the value is there and of the literal's type:
 *   a missing property, null, or a number compared with a string match
 *   nothing, `!=` included (`NOT brand = "a"` matches items without a brand).
 * - An array holds when any of its elements does (`tags = "promo"`).
 * - Types are checked where they are known: a built-in's always, a property's
 *   against what the catalogue holds under that name. A comparison no item could
 *   ever satisfy because of its type is an error that names the name; a property
 *   no item has is not (it matches nothing).
 * - A boost multiplies the probability of the items its condition holds for;
 *   several multiply. It never adds an item a filter left out.
 */

export type ScalarType = 'string' | 'number' | 'boolean';
type HeldType = ScalarType | 'object';

const DAY_MS = 86_400_000;
/** Nested objects deeper than this are not indexed for type checks (their values still match). */
const MAX_TYPED_DEPTH = 4;
/** A boost factor's range: beyond it one rule would decide the whole ranking. */
export const BOOST_RANGE = { min: 1e-6, max: 1e6 } as const;

/** What each property path holds across a catalogue, for the type checks. */
export class PropertyTypes {
  private readonly held = new Map<string, Set<HeldType>>();

  static of(items: Iterable<{ readonly properties: ItemProperties | null }>): PropertyTypes {
    const types = new PropertyTypes();
    for (const item of items) if (item.properties) types.add(item.properties, '', 1);
    return types;
  }

  /** The types seen under a dotted path; undefined when no item has it. */
  get(path: string): ReadonlySet<HeldType> | undefined {
    return this.held.get(path);
  }

  private add(object: ItemProperties, prefix: string, depth: number): void {
    for (const [name, value] of Object.entries(object)) {
      const path = prefix === '' ? name : `${prefix}.${name}`;
      for (const element of Array.isArray(value) ? (value as readonly JsonValue[]) : [value]) {
        if (element === null || Array.isArray(element)) continue;
        const type = typeof element === 'object' ? 'object' : (typeof element as ScalarType);
        let set = this.held.get(path);
        if (!set) this.held.set(path, (set = new Set()));
        set.add(type);
        if (type === 'object' && depth < MAX_TYPED_DEPTH) this.add(element as ItemProperties, path, depth + 1);
      }
    }
  }
}

/** A compiled filter: whether an item passes, at time `now` (epoch ms; only `age` reads it). */
export interface ItemFilter {
  readonly text: string;
  readonly usesAge: boolean;
  test(item: CatalogItem, now: number): boolean;
}

export interface ItemBoosts {
  readonly text: string;
  readonly usesAge: boolean;
  /** The most any item's probability can be multiplied by (the product of the factors above 1). */
  readonly maxFactor: number;
  /** The factor for an item: the product of the factors whose conditions hold (1 when none does). */
  factor(item: CatalogItem, now: number): number;
}

type Test = (item: CatalogItem, now: number) => boolean;
type Read = (item: CatalogItem, now: number) => JsonValue | undefined;

const BUILT_INS: Readonly<Record<string, { readonly type: ScalarType; readonly read: Read }>> = {
  category: { type: 'string', read: (item) => item.category },
  title: { type: 'string', read: (item) => item.title },
  price: { type: 'number', read: (item) => item.price },
  active: { type: 'boolean', read: (item) => item.active },
  age: { type: 'number', read: (item, now) => (now - item.createdAt) / DAY_MS },
};

/** What a diversity cap groups items by: a name's value, as a key (undefined: the item has none, and is in no group). */
export interface ItemGroup {
  readonly text: string;
  key(item: CatalogItem, now: number): string | undefined;
}

export function compileGroup(text: string, types: PropertyTypes): ItemGroup {
  const compiler = new Compiler(types);
  const read = compiler.read(parseName(text));
  return {
    text,
    key(item, now) {
      const value = read(item, now);
      if (value === undefined || value === null) return undefined;
      // Scalars group by value (a number apart from the same digits as a string); anything else by its JSON.
      return typeof value === 'object' ? `j:${JSON.stringify(value)}` : `${typeof value}:${String(value)}`;
    },
  };
}

export function compileFilter(text: string, types: PropertyTypes): ItemFilter {
  const compiler = new Compiler(types);
  const test = compiler.expression(parseFilter(text));
  return { text, usesAge: compiler.usesAge, test };
}

export function compileBoosts(text: string, types: PropertyTypes): ItemBoosts {
  const compiler = new Compiler(types);
  const rules = parseBoosts(text).map((boost) => {
    if (!(boost.factor >= BOOST_RANGE.min && boost.factor <= BOOST_RANGE.max)) {
      throw new RuleError('RULE_VALUE', `a boost factor must be between ${BOOST_RANGE.min} and ${BOOST_RANGE.max}; got ${boost.factor}`, boost.offset);
    }
    return { factor: boost.factor, test: compiler.expression(boost.when) };
  });
  const maxFactor = rules.reduce((product, rule) => product * Math.max(1, rule.factor), 1);
  return {
    text,
    usesAge: compiler.usesAge,
    maxFactor,
    factor(item, now) {
      let factor = 1;
      for (const rule of rules) if (rule.test(item, now)) factor *= rule.factor;
      return factor;
    },
  };
}

class Compiler {
  usesAge = false;

  constructor(private readonly types: PropertyTypes) {}

  expression(node: RuleExpression): Test {
    switch (node.kind) {
      case 'and': {
        const parts = node.of.map((part) => this.expression(part));
        return (item, now) => parts.every((test) => test(item, now));
      }
      case 'or': {
        const parts = node.of.map((part) => this.expression(part));
        return (item, now) => parts.some((test) => test(item, now));
      }
      case 'not': {
        const inner = this.expression(node.of);
        return (item, now) => !inner(item, now);
      }
      case 'missing': {
        const read = this.reader(node.name);
        return node.negated ? (item, now) => !absent(read(item, now)) : (item, now) => absent(read(item, now));
      }
      case 'compare': {
        this.check(node.name, node.value, node.op);
        const read = this.reader(node.name);
        const holds = comparison(node.op, node.value.value);
        return (item, now) => anyElement(read(item, now), holds);
      }
      case 'in': {
        for (const value of node.values) this.check(node.name, value, '=');
        const read = this.reader(node.name);
        const wanted = new Set(node.values.map((v) => v.value));
        const member = (value: string | number | boolean): boolean => wanted.has(value);
        return node.negated
          ? (item, now) => {
              const value = read(item, now);
              return !absent(value) && !anyElement(value, member);
            }
          : (item, now) => anyElement(read(item, now), member);
      }
    }
  }

  private builtIn(name: RuleName): (typeof BUILT_INS)[string] | undefined {
    return !name.quoted && name.path.length === 1 && Object.hasOwn(BUILT_INS, name.path[0]!) ? BUILT_INS[name.path[0]!] : undefined;
  }

  /** How to read a name's value from an item. */
  read(name: RuleName): Read {
    return this.reader(name);
  }

  private reader(name: RuleName): Read {
    const builtIn = this.builtIn(name);
    if (builtIn) {
      if (name.path[0] === 'age') this.usesAge = true;
      return builtIn.read;
    }
    const path = name.path;
    if (path.length === 1) {
      const key = path[0]!;
      return (item) => (item.properties && Object.hasOwn(item.properties, key) ? item.properties[key] : undefined);
    }
    return (item) => {
      let value: JsonValue | undefined = item.properties ?? undefined;
      for (const key of path) {
        if (typeof value !== 'object' || value === null || Array.isArray(value) || !Object.hasOwn(value, key)) return undefined;
        value = (value as ItemProperties)[key];
      }
      return value;
    };
  }

  /** Throws when no value this name can hold could satisfy the comparison, by type. */
  private check(name: RuleName, literal: RuleLiteral, op: Operator): void {
    const type = typeof literal.value as ScalarType;
    const builtIn = this.builtIn(name);
    if (builtIn) {
      if (builtIn.type !== type) throw new RuleError('RULE_TYPE', `${name.text} holds ${plural(builtIn.type)}: it cannot be compared with ${show(literal.value)} (${article(type)})`, literal.offset);
      if (type === 'boolean' && op !== '=' && op !== '!=') throw new RuleError('RULE_TYPE', `${name.text} holds true or false: ${op} does not apply to it`, name.offset);
      return;
    }
    if (type === 'boolean' && op !== '=' && op !== '!=') throw new RuleError('RULE_TYPE', `${op} does not apply to true or false`, literal.offset);
    const held = this.types.get(name.path.join('.'));
    if (held === undefined || held.has(type)) return; // a property no item has matches nothing; one with the type may match
    const kinds = [...held].map(plural).join(' and ');
    throw new RuleError('RULE_TYPE', `property ${name.text} holds ${kinds} in the catalogue: it cannot be compared with ${show(literal.value)} (${article(type)})`, literal.offset);
  }
}

function absent(value: JsonValue | undefined): boolean {
  return value === undefined || value === null;
}

/** Whether the value, or any element of an array value, is a scalar that `holds`. */
function anyElement(value: JsonValue | undefined, holds: (scalar: string | number | boolean) => boolean): boolean {
  if (value === undefined || value === null) return false;
  if (Array.isArray(value)) {
    for (const element of value as readonly JsonValue[]) if (element !== null && typeof element !== 'object' && holds(element)) return true;
    return false;
  }
  return typeof value !== 'object' && holds(value as string | number | boolean);
}

function comparison(op: Operator, literal: string | number | boolean): (value: string | number | boolean) => boolean {
  const type = typeof literal;
  switch (op) {
    case '=':
      return (value) => value === literal;
    case '!=':
      return (value) => typeof value === type && value !== literal;
    case '<':
      return (value) => typeof value === type && value < literal;
    case '<=':
      return (value) => typeof value === type && value <= literal;
    case '>':
      return (value) => typeof value === type && value > literal;
    case '>=':
      return (value) => typeof value === type && value >= literal;
  }
}

function plural(type: HeldType): string {
  return type === 'boolean' ? 'true/false values' : type === 'object' ? 'objects' : `${type}s`;
}

function article(type: ScalarType): string {
  return type === 'boolean' ? 'true/false' : `a ${type}`;
}

function show(value: string | number | boolean): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}
