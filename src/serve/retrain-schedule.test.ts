import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { servedShop, type ServedShop } from '../../test/support/served-shop.js';
import { describeEachProvider, postgresAvailable } from '../../test/support/test-stores.js';
import { until } from '../../test/support/until.js';
import { validateCron } from './cron-expression.js';
import { SERVE_DEFAULTS, parseApiKeys, validateServeConfig } from './config.js';
import { startServer, type RunningServer } from './server.js';

async function metric(url: string, name: string, labels = ''): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

/** A stand-in for jobs/retrain.ts: appends a line to `file`, waits `ms`, then prints `output` and exits with `code`. */
function fakeRetrain(file: string, output: string, code = 0, ms = 300): string[] {
  const script = `require('fs').appendFileSync(${JSON.stringify(file)}, process.pid + '\\n'); setTimeout(() => { process.stdout.write(${JSON.stringify(output)}); process.stderr.write('fake retrain ended'); process.exit(${code}); }, ${ms});`;
  return [process.execPath, '-e', script, '--'];
}

const lines = (file: string): string[] => {
  try {
    return readFileSync(file, 'utf8').split('\n').filter(Boolean);
  } catch {
    return [];
  }
};

describe('validateCron', () => {
  it('takes five numeric cron fields and names what is wrong with anything else', () => {
    for (const ok of ['0 3 * * *', '*/15 * * * *', '0 2 * * 1-5', '30 1,13 1 * *']) expect(() => validateCron(ok)).not.toThrow();
    expect(() => validateCron('0 0 3 * * *')).toThrow(/must have five fields .* it has 6/);
    expect(() => validateCron('@daily')).toThrow(/must have five fields/);
    expect(() => validateCron('0 3 * * MON')).toThrow(/only digits and \* \/ , -/);
    expect(() => validateCron('61 3 * * *')).toThrow(/is not a valid cron expression/);
  });
});

describe('retraining from the server [sqlite]', () => {
  let shop: ServedShop;
  const logs: string[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'attnrec-retrain-serve-'));
  beforeAll(async () => {
    // The real job, compare-only, so the outcome does not depend on which version wins.
    shop = await servedShop('sqlite', { modelPollSeconds: 0, retrainArgs: ['--artifacts', join(dir, 'models'), '--epochs', '2', '--threads', '1', '--promote', 'never'] }, { log: (m) => logs.push(m) });
  }, 120_000);
  afterAll(async () => {
    await shop?.dispose();
  });

  it('runs npm run retrain on request, one at a time, and reports its outcome', async () => {
    const first = await shop.call('/v1/models/retrain', { method: 'POST', role: 'admin' });
    expect(first.status).toBe(202);
    expect(first.body).toEqual({ status: 'queued' });
    const again = await shop.call('/v1/models/retrain', { method: 'POST', role: 'admin' });
    expect(again.body).toEqual({ status: 'running' });
    expect((await shop.call('/v1/models/retrain', { method: 'POST', role: 'write' })).status).toBe(403);
    await until(async () => (await metric(shop.url, 'attnrec_retrain_runs_total', '{outcome="kept"}')) === 1, 90_000);
    expect(await metric(shop.url, 'attnrec_retrain_running')).toBe(0);
    expect(await metric(shop.url, 'attnrec_retrain_last_run_timestamp_seconds', '{outcome="kept"}')).toBeGreaterThan(Date.now() / 1000 - 120);
    const versions = await shop.store.prisma.modelVersion.findMany({ orderBy: { id: 'asc' }, select: { id: true, active: true, status: true, metrics: true } });
    expect(versions.map((v) => [v.id, v.active, v.status])).toEqual([
      [1, true, 'ready'],
      [2, false, 'ready'],
    ]);
    expect(versions[1]!.metrics).toMatchObject({ retrain: { previous: 1, decision: 'kept' } });
    expect(logs.some((l) => /^retrain: version 2 .*version 1 keeps serving \(\d+ s\)$/.test(l))).toBe(true);
    expect((await shop.call('/v1/users/user-1/recommendations')).body.modelVersion).toBe(1);
  }, 120_000);
});

describe('retraining outcomes on the server [sqlite]', () => {
  it('keeps serving when a retrain fails, and serves a promoted version at once, before any poll', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'attnrec-retrain-outcome-'));
    const runs = join(dir, 'runs.txt');
    const output = join(dir, 'output.json');
    const logs: string[] = [];
    // The stand-in job prints what output.json holds (exit 0), or fails (exit 3) when it holds nothing.
    const script = `const fs = require('fs'); fs.appendFileSync(${JSON.stringify(runs)}, 'run\\n'); setTimeout(() => { const out = fs.existsSync(${JSON.stringify(output)}) ? fs.readFileSync(${JSON.stringify(output)}, 'utf8') : ''; if (!out) { process.stderr.write('fake retrain ended'); process.exit(3); } process.stdout.write(out); }, 1000);`;
    const shop = await servedShop('sqlite', { modelPollSeconds: 0, activationWarmUpSeconds: 0 }, { tuning: { retrainCommand: [process.execPath, '-e', script, '--'] }, log: (m) => logs.push(m) });
    try {
      expect((await shop.call('/v1/models/retrain', { method: 'POST', role: 'admin' })).status).toBe(202);
      await until(async () => (await metric(shop.url, 'attnrec_retrain_runs_total', '{outcome="failed"}')) === 1, 20_000);
      expect(logs.some((l) => /^retrain failed after \d+ s \(exit code 3\); the active version keeps serving: fake retrain ended$/.test(l))).toBe(true);
      expect((await shop.call('/v1/users/user-1/recommendations')).body.modelVersion).toBe(1);

      // What the job does when its version wins: the version is active in the store, and the job says so.
      const second = await shop.trainAnother(7);
      writeFileSync(output, JSON.stringify({ previous: 1, candidate: second, decision: 'promoted', reason: `version ${second} won` }));
      expect((await shop.call('/v1/models/retrain', { method: 'POST', role: 'admin' })).status).toBe(202);
      await shop.store.prisma.$transaction([
        shop.store.prisma.modelVersion.update({ where: { id: 1 }, data: { active: false } }),
        shop.store.prisma.modelVersion.update({ where: { id: second }, data: { active: true } }),
      ]);
      await until(async () => (await metric(shop.url, 'attnrec_retrain_runs_total', '{outcome="promoted"}')) === 1, 20_000);
      expect(logs.some((l) => l.startsWith(`retrain: version ${second} won (`))).toBe(true);
      // --model-poll 0: only the retrain's outcome can have made this server switch.
      await until(async () => (await shop.call('/v1/users/user-1/recommendations')).body.modelVersion === second, 20_000);
      expect(lines(runs)).toHaveLength(2);
    } finally {
      await shop.dispose();
    }
  }, 120_000);
});

describe.skipIf(!postgresAvailable())('retraining with replicas [postgresql]', () => {
  it('registers the schedule in the job queue, and exactly one replica runs each requested retrain', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'attnrec-retrain-pg-'));
    const runs = join(dir, 'runs.txt');
    const kept = JSON.stringify({ previous: 1, candidate: 2, decision: 'kept', reason: 'version 2 did not win' });
    const shop = await servedShop('postgresql', { retrainSchedule: '0 3 * * *' }, { tuning: { retrainCommand: fakeRetrain(runs, kept) } });
    const replicas: RunningServer[] = [];
    try {
      const config = validateServeConfig({ ...SERVE_DEFAULTS, port: 0, databaseUrl: shop.store.target.url, apiKeys: parseApiKeys('admin:an-admin-key-for-tests'), workers: 1, retrainSchedule: '0 3 * * *' });
      replicas.push(await startServer(config, () => {}, { retrainCommand: fakeRetrain(runs, kept) }));
      const client = new pg.Client({ connectionString: shop.store.target.url });
      await client.connect();
      try {
        const known = await client.query<{ identifier: string }>('SELECT identifier FROM graphile_worker._private_known_crontabs');
        expect(known.rows.map((r) => r.identifier)).toEqual(['attnrec_retrain']);
      } finally {
        await client.end();
      }
      for (let k = 0; k < 3; k++) expect((await fetch(`${replicas[0]!.url}/v1/models/retrain`, { method: 'POST', headers: { authorization: 'Bearer an-admin-key-for-tests' } })).status).toBe(202);
      await until(() => lines(runs).length >= 3, 30_000);
      // Three requests, three runs, one at a time (one queue), whichever replica took each.
      await new Promise((resolve) => setTimeout(resolve, 3_000));
      expect(lines(runs)).toHaveLength(3);
      const counted = (await metric(shop.url, 'attnrec_retrain_runs_total', '{outcome="kept"}')) + (await metric(replicas[0]!.url, 'attnrec_retrain_runs_total', '{outcome="kept"}'));
      expect(counted).toBe(3);
    } finally {
      await Promise.all(replicas.map((r) => r.close()));
      await shop.dispose();
    }
  }, 120_000);
});
