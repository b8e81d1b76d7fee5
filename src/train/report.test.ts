import { describe, expect, it } from 'vitest';
import type { Evaluation } from '../evaluate/evaluate.js';
import { escapeHtml, renderTrainingReport } from './report.js';

const metrics = (x: number): Evaluation => ({
  full: { users: 10, ndcg: { 1: x, 5: x, 10: x, 20: x }, hr: { 1: x, 5: x, 10: x, 20: x }, mrr: x },
  sampled: { users: 10, ndcg: { 1: 2 * x, 5: 2 * x, 10: 2 * x, 20: 2 * x }, hr: { 1: 2 * x, 5: 2 * x, 10: 2 * x, 20: 2 * x }, mrr: 2 * x },
});

describe('training report', () => {
  it('is one self-contained page: charts, metrics beside baselines, escaped config', () => {
    const html = renderTrainingReport({
      versionId: 7,
      createdAt: new Date('2026-01-02T03:04:05Z'),
      backend: 'wasm',
      dataHash: 'abc123',
      exclude: 'purchased',
      config: { note: '<script>alert(1)</script>' },
      members: [
        {
          member: 0,
          seed: 1,
          bestEpoch: 2,
          epochs: [
            { epoch: 1, loss: 5, validNdcg10: 0.01, validHr10: 0.02, seconds: 3, best: true },
            { epoch: 2, loss: 4, validNdcg10: 0.03, validHr10: 0.05, seconds: 3, best: true },
          ],
        },
      ],
      threads: 1,
      trainSeconds: 6.5,
      test: { ...metrics(0.1), novel: { ...metrics(0.12).full, users: 8 }, repeat: { ...metrics(0.02).full, users: 2 } },
      baselines: { popularity: metrics(0.05), 'most-recent-item': metrics(0.07) },
    });
    expect(html).not.toMatch(/<script|src=|href=/); // no scripts, no external assets
    expect(html).toMatch(/the history&#39;s purchases left out \(exclude=purchased; a held-out item among them counts as a miss\)/);
    expect(html).toContain('novel (not in the history, 8 users) and repeat (bought, carted or viewed before, 2 users)');
    expect(html).toMatch(/<th scope="row">SASRec v7<\/th><td>0\.1200<\/td><td>0\.1200<\/td><td>0\.0200<\/td><td>0\.0200<\/td>/);
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(html.match(/<svg /g)).toHaveLength(2);
    expect(html).toContain('<title>epoch 2: 0.0300</title>');
    expect(html).toMatch(/<th scope="row">popularity<\/th><td>0\.0500<\/td>/);
    expect(html).toContain('Sampled protocol of the SASRec paper');
  });

  it('draws a single epoch and a flat curve without dividing by zero', () => {
    const html = renderTrainingReport({
      versionId: 1, createdAt: new Date(0), backend: 'cpu', dataHash: 'x', exclude: 'seen', config: {},
      members: [{ member: 0, seed: 1, bestEpoch: 1, epochs: [{ epoch: 1, loss: 2, validNdcg10: 0, validHr10: 0, seconds: 1, best: true }] }],
      threads: 1, trainSeconds: 1, test: metrics(0), baselines: {},
    });
    expect(html).not.toContain('NaN');
    expect(html).not.toContain('Infinity');
  });

  it('draws one line per ensemble member with a legend and lists each member alone beside the ensemble', () => {
    const epochs = (base: number) => [1, 2, 3].map((epoch) => ({ epoch, loss: base - epoch, validNdcg10: epoch / (10 * base), validHr10: 0, seconds: 1, best: epoch < 3 }));
    const html = renderTrainingReport({
      versionId: 3, createdAt: new Date(0), backend: 'wasm', dataHash: 'x', exclude: 'seen', config: {},
      members: [
        { member: 0, seed: 42, bestEpoch: 2, epochs: epochs(5), test: metrics(0.2) },
        { member: 1, seed: 43, bestEpoch: 2, epochs: epochs(6), test: metrics(0.3) },
      ],
      threads: 2, trainSeconds: 9, test: metrics(0.4), baselines: {},
    });
    expect(html.match(/<polyline/g)).toHaveLength(4); // two charts × two members
    expect(html).toContain('— member 2');
    expect(html).toContain('an ensemble of 2 members (2 trained at once), best epochs 2, 2');
    expect(html).toMatch(/<th scope="row">SASRec v3 \(ensemble of 2\)<\/th><td>0\.4000<\/td>/);
    expect(html).toMatch(/<th scope="row">member 2 alone \(seed 43\)<\/th><td>0\.3000<\/td>/);
    expect(html).toContain('<title>member 2, epoch 3: 0.0500</title>');
  });

  it('escapes the five HTML specials', () => {
    expect(escapeHtml(`<a href="x">'&'</a>`)).toBe('&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
  });
});
