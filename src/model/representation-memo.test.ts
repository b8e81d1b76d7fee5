import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { saveModel } from './artifact.js';
import { selectBackend } from './backend.js';
import { SasRecEnsemble } from './ensemble.js';
import { expectedHeader, isMismatch, memoPath, RepresentationMemo, writeMemo } from './representation-memo.js';
import { SasRec } from './sasrec.js';
import { ServedModel, type ModelHistory } from './served-model.js';

describe('stored representations (RepresentationMemo)', () => {
  let dir: string;
  let served: ServedModel;
  const histories: ModelHistory[] = [
    { items: [1, 2, 3], types: [1, 1, 2] },
    { items: [4], types: [1] },
    { items: [5, 6, 7, 8, 9, 10], types: [1, 2, 1, 2, 1, 3] },
    // The same items as the first under other types: another history.
    { items: [1, 2, 3], types: [1, 1, 1] },
  ];

  beforeAll(async () => {
    await selectBackend('wasm');
    dir = mkdtempSync(join(tmpdir(), 'attnrec-memo-'));
    const network = new SasRec({ numItems: 40, numEventTypes: 3, maxLength: 6, dim: 8, heads: 2, blocks: 2, ffnDim: 8, dropout: 0.2, itemBias: true, seed: 5 });
    saveModel(new SasRecEnsemble([network]), dir, { vocabulary: Array.from({ length: 40 }, (_, k) => 100 + k) });
    served = ServedModel.load(3, new Date('2026-12-01T10:00:00Z'), dir);
  });

  afterAll(() => {
    served?.retire();
    rmSync(dir, { recursive: true, force: true });
  });

  it('gives back exactly what was computed for each stored history, and nothing for another', () => {
    const represented = served.represent(histories);
    const path = memoPath(dir, served.scoring);
    // The first history twice: stored once.
    expect(writeMemo(path, expectedHeader(served), [...histories, histories[0]!].map((encoded, i) => ({ encoded, representation: represented[i % histories.length]! })))).toBe(4);
    // Written through a temporary file that is gone.
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    const memo = RepresentationMemo.read(path, expectedHeader(served));
    expect(memo).toBeInstanceOf(RepresentationMemo);
    if (!(memo instanceof RepresentationMemo)) return;
    expect(memo.size).toBe(4);
    histories.forEach((h, i) => {
      const got = memo.get({ items: [...h.items], types: [...h.types] })!;
      expect(got).toBeDefined();
      expect(got.state.query).toEqual(represented[i]!.state.query);
      expect(got.state.logNormaliser).toBe(represented[i]!.state.logNormaliser);
      expect(got.state.items).toEqual(h.items);
      expect(got.shortlist.indices).toEqual(represented[i]!.shortlist.indices);
      expect(got.shortlist.scores).toEqual(represented[i]!.shortlist.scores);
    });
    // A history that grew by one event, or one never stored.
    expect(memo.get({ items: [1, 2, 3, 4], types: [1, 1, 2, 1] })).toBeUndefined();
    expect(memo.get({ items: [4], types: [2] })).toBeUndefined();
  });

  it('is not used for another version, creation time, scoring mode or kernel build, and says why', () => {
    const path = memoPath(dir, served.scoring);
    writeMemo(path, expectedHeader(served), served.represent(histories).map((representation, i) => ({ encoded: histories[i]!, representation })));
    const expected = expectedHeader(served);
    for (const [key, value] of [['version', 4], ['createdAt', expected.createdAt + 1], ['scoring', expected.scoring === 'exact' ? 'quantised' : 'exact'], ['kernels', '0000000000000000'], ['width', expected.width + 1]] as const) {
      const read = RepresentationMemo.read(path, { ...expected, [key]: value });
      expect(isMismatch(read)).toBe(true);
      expect(isMismatch(read) && read.reason).toContain(key);
    }
  });

  it('treats a missing file as none, and a damaged one as a mismatch, never as data', () => {
    const path = join(dir, 'elsewhere.bin');
    expect(RepresentationMemo.read(path, expectedHeader(served))).toBeUndefined();
    writeMemo(path, expectedHeader(served), served.represent(histories).map((representation, i) => ({ encoded: histories[i]!, representation })));
    const whole = readFileSync(path);
    writeFileSync(path, whole.subarray(0, whole.length - 12));
    const truncated = RepresentationMemo.read(path, expectedHeader(served));
    expect(isMismatch(truncated) && truncated.reason).toContain('not a readable memo');
    writeFileSync(path, 'model.json, not a memo');
    expect(isMismatch(RepresentationMemo.read(path, expectedHeader(served)))).toBe(true);
  });
});
