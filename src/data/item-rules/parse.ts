import { readFileSync } from 'node:fs';
import peggy from 'peggy';

/**
 * Parsing the filter and boost language (the grammar: rules.peggy beside
 * this file). Peggy turns the grammar into a parser once, when this module
 * loads (~20 ms); its errors say what was expected and where, which the API
 * passes on (RuleError's offset).
 */

/** A name as written: a built-in or a property path; `quoted` names (in backticks) are always properties. */
export interface RuleName {
  readonly path: readonly string[];
  readonly quoted: boolean;
  readonly text: string;
  readonly offset: number;
}

export interface RuleLiteral {
  readonly value: string | number | boolean;
  readonly offset: number;
}

export type Operator = '=' | '!=' | '<' | '<=' | '>' | '>=';

export type RuleExpression =
  | { readonly kind: 'or' | 'and'; readonly of: readonly RuleExpression[] }
  | { readonly kind: 'not'; readonly of: RuleExpression }
  | { readonly kind: 'compare'; readonly name: RuleName; readonly op: Operator; readonly value: RuleLiteral }
  | { readonly kind: 'in'; readonly name: RuleName; readonly negated: boolean; readonly values: readonly RuleLiteral[] }
  | { readonly kind: 'missing'; readonly name: RuleName; readonly negated: boolean };

export interface RuleBoost {
  readonly factor: number;
  readonly offset: number;
  readonly when: RuleExpression;
}

/** A rule that cannot be used: where (offset, 0-based, in the rule's text) and why. */
export class RuleError extends Error {
  constructor(
    readonly code: 'RULE_SYNTAX' | 'RULE_TYPE' | 'RULE_VALUE',
    message: string,
    readonly offset: number,
  ) {
    super(message);
    this.name = 'RuleError';
  }
}

/** Longest rule text accepted: rules are a few conditions, and parsing is linear in the text. */
export const MAX_RULE_LENGTH = 2_000;

const parser = peggy.generate(readFileSync(new URL('./rules.peggy', import.meta.url), 'utf8'), { allowedStartRules: ['Filter', 'Boosts', 'GroupName'] });

export function parseFilter(text: string): RuleExpression {
  return parse(text, 'Filter') as RuleExpression;
}

export function parseBoosts(text: string): RuleBoost[] {
  return parse(text, 'Boosts') as RuleBoost[];
}

/** A name alone (a built-in or a property), as the diversity cap groups items by. */
export function parseName(text: string): RuleName {
  return parse(text, 'GroupName') as RuleName;
}

function parse(text: string, startRule: 'Filter' | 'Boosts' | 'GroupName'): unknown {
  if (text.length > MAX_RULE_LENGTH) throw new RuleError('RULE_SYNTAX', `a rule may be at most ${MAX_RULE_LENGTH} characters; got ${text.length}`, MAX_RULE_LENGTH);
  try {
    return parser.parse(text, { startRule });
  } catch (error) {
    if (!(error instanceof parser.SyntaxError)) throw error;
    const offset = error.location.start.offset;
    const found = offset >= text.length ? 'the end' : `'${text.slice(offset, offset + 12)}'`;
    const expected = describeExpected(error.expected);
    throw new RuleError('RULE_SYNTAX', `expected ${expected} at character ${offset + 1}, found ${found}`, offset);
  }
}

/** Peggy's expectations in words, named rules first, duplicates and whitespace left out. */
function describeExpected(expected: readonly peggy.parser.Expectation[] | null): string {
  const words = new Set<string>();
  for (const e of expected ?? []) {
    if (e.type === 'other') words.add(e.description);
    else if (e.type === 'literal') words.add(`'${e.text}'`);
    else if (e.type === 'end') words.add('the end');
  }
  words.delete('whitespace');
  const list = [...words];
  if (list.length === 0) return 'something else';
  return list.length === 1 ? list[0]! : `${list.slice(0, -1).join(', ')} or ${list.at(-1)}`;
}
