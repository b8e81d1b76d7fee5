import { describe, expect, it } from 'vitest';
import { groupByUser, lastRowPerItem, type ResolvedEvents } from './import-target.js';

function events(userIds: number[]): ResolvedEvents {
  const n = userIds.length;
  return {
    count: n,
    userId: Int32Array.from(userIds),
    sessionId: Int32Array.from(userIds.map((_, i) => i + 100)),
    itemId: Int32Array.from(userIds.map((_, i) => i + 1)),
    typeId: new Int32Array(n).fill(1),
    ts: Float64Array.from(userIds.map((_, i) => 1000 - i)),
    value: new Float64Array(n).fill(NaN),
    quantity: new Int32Array(n),
    eventId: userIds.map((_, i) => `e${i}`),
    recommendationId: userIds.map((_, i) => (i === 2 ? `r${i}` : null)),
  };
}

describe('groupByUser', () => {
  it('groups by user, anonymous (0) last, file order kept within a user, all columns moved together', () => {
    const sorted = groupByUser(events([3, 0, 1, 3, 2, 0, 1]));
    expect(Array.from(sorted.userId)).toEqual([1, 1, 2, 3, 3, 0, 0]);
    expect(Array.from(sorted.itemId)).toEqual([3, 7, 5, 1, 4, 2, 6]);
    expect(Array.from(sorted.sessionId)).toEqual([102, 106, 104, 100, 103, 101, 105]);
    expect(Array.from(sorted.ts)).toEqual([998, 994, 996, 1000, 997, 999, 995]);
    expect(sorted.eventId).toEqual(['e2', 'e6', 'e4', 'e0', 'e3', 'e1', 'e5']);
    expect(sorted.recommendationId).toEqual(['r2', null, null, null, null, null, null]);
  });

  it('handles an empty batch', () => {
    expect(groupByUser(events([])).count).toBe(0);
  });
});

describe('lastRowPerItem', () => {
  it('keeps the last line of an item listed twice', () => {
    const rows = [
      { line: 2, externalId: 'a', title: 'old' },
      { line: 3, externalId: 'b', title: 'b' },
      { line: 4, externalId: 'a', title: 'new' },
    ];
    expect(lastRowPerItem(rows).map((r) => [r.externalId, r.title])).toEqual([
      ['a', 'new'],
      ['b', 'b'],
    ]);
  });
});
