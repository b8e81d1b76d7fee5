import { describe, expect, it } from 'vitest';
import type { ImpressionRow } from './impressions.js';
import { ImpressionPacker, packedImpressionGroups, packImpressions, unpackImpressions } from './packed-impressions.js';

const rows: ImpressionRow[] = [
  {
    id: '0192f1a2-0b3c-7d4e-8f00-112233445566',
    ts: 1_733_300_000_123,
    route: 'user_recommendations',
    strategy: 'model',
    modelVersion: 7,
    experimentId: null,
    variant: null,
    userId: 'ann',
    sessionId: null,
    itemIds: [3, 0, 12],
    probabilities: [0.25, 0.125, Number.NaN],
    scores: [2.5, -1e-7, 1 / 3],
  },
  {
    id: '0192f1a2-0b3c-7d4e-8f00-112233445567',
    ts: 1_733_300_000_124,
    route: 'session_recommendations',
    strategy: 'popular',
    modelVersion: null,
    experimentId: 4,
    variant: 'contrôle ✓',
    userId: null,
    sessionId: 'sess-ü-42',
    itemIds: [5],
    probabilities: [1],
    scores: [17],
    explored: [1],
  },
  {
    id: '0192f1a2-0b3c-7d4e-8f00-112233445568',
    ts: 1_733_300_000_125,
    route: 'similar_items',
    strategy: 'model',
    modelVersion: 2,
    experimentId: 4,
    variant: 'v2',
    userId: null,
    sessionId: null,
    itemIds: [],
    probabilities: [],
    scores: [],
  },
];

describe('packed impressions', () => {
  it('round-trip every field exactly: owners, variants in UTF-8, unknown items, missing values, explored ranks', () => {
    const packed = packImpressions(rows);
    expect(packed.count).toBe(3);
    expect(packed.items).toBe(4);
    expect(unpackImpressions(packed)).toEqual(rows);
  });

  it('grow past their first buffer and start each batch in a new one', () => {
    const packer = new ImpressionPacker(64);
    for (let i = 0; i < 100; i++) packer.appendRow({ ...rows[0]!, userId: `user-${i}` });
    const first = packer.seal();
    packer.appendRow(rows[1]!);
    const second = packer.seal();
    expect(unpackImpressions(first).map((r) => r.userId)).toEqual(Array.from({ length: 100 }, (_, i) => `user-${i}`));
    expect(unpackImpressions(second)).toEqual([rows[1]]);
    expect(first.buffer).not.toBe(second.buffer);
  });

  it('count a batch by route, model version and experiment variant without decoding the rest', () => {
    const groups = packedImpressionGroups(packImpressions([...rows, rows[0]!, rows[2]!]));
    expect(groups.map(({ group, count }) => [group.route, group.modelVersion, group.experimentId, group.variant, count])).toEqual([
      ['user_recommendations', 7, null, null, 2],
      ['session_recommendations', null, 4, 'contrôle ✓', 1],
      ['similar_items', 2, 4, 'v2', 2],
    ]);
  });

  it('refuse what the format cannot hold, leaving the batch as it was', () => {
    const packer = new ImpressionPacker();
    packer.appendRow(rows[0]!);
    expect(() => packer.appendRow({ ...rows[0]!, userId: 'x'.repeat(70_000) })).toThrow(/at most 65535 bytes/);
    expect(() => packer.appendRow({ ...rows[0]!, route: 'nowhere' as ImpressionRow['route'] })).toThrow(/unknown impression route/);
    expect(unpackImpressions(packer.seal())).toEqual([rows[0]]);
  });
});
