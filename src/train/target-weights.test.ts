import { describe, expect, it } from 'vitest';
import { parseTargetWeights } from './target-weights.js';

const known = new Map([['view', 1], ['cart', 2], ['purchase', 3], ['wishlist', 4]]);

describe('parseTargetWeights', () => {
  it('weighs the named types, 1 for the others, and accepts aliases', () => {
    expect(parseTargetWeights('view=0.5, add_to_cart=2,purchase=4', undefined, known)).toEqual([0, 0.5, 2, 4, 1]);
    expect(parseTargetWeights(undefined, undefined, known)).toBeUndefined();
  });

  it('trains only the positions followed by the given types', () => {
    expect(parseTargetWeights(undefined, 'purchase', known)).toEqual([0, 0, 0, 1, 0]);
    expect(parseTargetWeights('purchase=3', 'cart,purchase', known)).toEqual([0, 0, 1, 3, 0]);
  });

  it('refuses unknown types, malformed pairs, bad weights and weights that train nothing', () => {
    expect(() => parseTargetWeights('basket=2', undefined, known)).toThrow(/unknown event type 'basket' \(known: view, cart, purchase, wishlist\)/);
    expect(() => parseTargetWeights('purchase:2', undefined, known)).toThrow(/type=weight pairs/);
    expect(() => parseTargetWeights('purchase=-1', undefined, known)).toThrow(/from 0 to 1000/);
    expect(() => parseTargetWeights('purchase=x', undefined, known)).toThrow(/from 0 to 1000/);
    expect(() => parseTargetWeights(undefined, 'refund', known)).toThrow(/--target-types: unknown event type 'refund'/);
    expect(() => parseTargetWeights('purchase=0', 'purchase', known)).toThrow(/nothing would be trained/);
  });
});
