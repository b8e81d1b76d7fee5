import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runJobProcess } from '../../test/support/run-job.js';
import { servedShop, type ServedShop } from '../../test/support/served-shop.js';

describe('jobs/inspect', () => {
  let shop: ServedShop;
  let url: string;
  const dir = mkdtempSync(join(tmpdir(), 'attnrec-inspect-'));
  beforeAll(async () => {
    shop = await servedShop('sqlite');
    url = shop.store.target.url;
  }, 120_000);
  afterAll(async () => {
    await shop?.dispose();
  });

  it('documents every flag in --help and wants exactly one of --user, --session-file, --sample', async () => {
    const help = await runJobProcess('inspect', ['--help']);
    expect(help.code).toBe(0);
    for (const flag of ['--user', '--session-file', '--sample', '--format', '--out', '--model', '--k', '--target', '--exclude', '--seed', '--backend', '--database-url']) expect(help.stdout).toContain(flag);
    const none = await runJobProcess('inspect', ['--database-url', url]);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('give exactly one of --user, --session-file and --sample');
  });

  it('exports a user as JSON equal to the API report, and as CSV', async () => {
    const json = await runJobProcess('inspect', ['--database-url', url, '--user', 'user-0', '--k', '3']);
    expect(json.code).toBe(0);
    const fromJob = JSON.parse(json.stdout);
    const fromApi = (await shop.call('/v1/users/user-0/attention?k=3', { role: 'read' })).body;
    expect(fromJob).toEqual(fromApi);
    const csv = await runJobProcess('inspect', ['--database-url', url, '--user', 'user-0', '--format', 'csv']);
    const lines = csv.stdout.trim().split('\n');
    expect(lines[0]).toBe('kind,member,layer,head,query_position,key_position,query_item,key_item,value');
    const T = fromApi.attention.length;
    expect(lines.filter((l) => l.startsWith('attention,')).length).toBe(2 * ((T * (T + 1)) / 2)); // 2 heads, causal half
    expect(lines.filter((l) => l.startsWith('rollout,')).length).toBe(T);
  });

  it('exports a session file to a self-contained HTML page', async () => {
    const session = join(dir, 'session.json');
    writeFileSync(session, JSON.stringify([{ item: 'sku-1', type: 'view' }, { item: 'sku-2', type: 'purchase', timestamp: '2024-01-01T00:00:00Z' }]));
    const out = join(dir, 'session.html');
    const html = await runJobProcess('inspect', ['--database-url', url, '--session-file', session, '--format', 'html', '--out', out]);
    expect(html.code).toBe(0);
    const page = readFileSync(out, 'utf8');
    expect(page).toContain('window.ATTNREC_REPORTS');
    expect(page).not.toContain('src="inspect.js"');
    expect(page).toContain('<style>');
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{"events": "nope"}');
    const refused = await runJobProcess('inspect', ['--database-url', url, '--session-file', bad]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('SESSION_FILE_INVALID');
  });

  it('aggregates attention by recency and event type over sampled users', async () => {
    const result = await runJobProcess('inspect', ['--database-url', url, '--sample', '50', '--quiet']);
    expect(result.code).toBe(0);
    const aggregate = JSON.parse(result.stdout);
    expect(aggregate).toMatchObject({ modelVersion: 1, users: 50, members: 1, layers: 1, heads: 2 });
    // From the last position, each user's attention sums to 1 over distances: the means, weighted by users, sum to 50.
    for (const head of [0, 1]) {
      const rows = aggregate.byDistance.filter((d: { head: number }) => d.head === head);
      expect(rows.reduce((s: number, d: { mean: number; users: number }) => s + d.mean * d.users, 0)).toBeCloseTo(50, 3);
      const shares = aggregate.byEventType.filter((t: { head: number }) => t.head === head);
      expect(shares.map((t: { type: string }) => t.type).sort()).toEqual(['purchase', 'view']);
      expect(shares.reduce((s: number, t: { share: number }) => s + t.share, 0)).toBeCloseTo(1, 5);
    }
  });
});
