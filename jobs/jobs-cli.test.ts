import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openStore } from '../src/data/store.js';
import { runJobProcess } from '../test/support/run-job.js';
import { tableCounts } from '../test/support/event-counts.js';

const dir = mkdtempSync(join(tmpdir(), 'attnrec-jobs-'));

describe('jobs/import', () => {
  it('documents every flag in --help', async () => {
    const { code, stdout } = await runJobProcess('import', ['--help']);
    expect(code).toBe(0);
    for (const flag of ['--format', '--items', '--skip-bad', '--event-types', '--time-unit', '--delimiter', '--sasrec-base-time', '--sasrec-step', '--sasrec-event-type', '--database-url', '--no-migrate', '--json', '--quiet', '--help']) {
      expect(stdout).toContain(flag);
    }
  });

  it('rejects an unknown flag and a bad choice with exit code 2 and a clear message', async () => {
    const unknown = await runJobProcess('import', ['--bogus', 'x.csv']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/^error \[USAGE\]: Unknown option '--bogus'/);
    const choice = await runJobProcess('import', ['--event-types', 'maybe', 'x.csv']);
    expect(choice.code).toBe(2);
    expect(choice.stderr).toContain('--event-types must be one of register, strict');
  });

  it('imports into a fresh database, migrating it first, and reports as JSON', async () => {
    const database = `file:${join(dir, 'fresh.db')}`;
    const log = join(dir, 'log.csv');
    writeFileSync(log, 'user_id,item_id,event_type,timestamp\nu1,i1,view,2024-01-01T00:00:00Z\nu1,i2,purchase,2024-01-01T00:05:00Z\n');
    const { code, stdout, stderr } = await runJobProcess('import', ['--database-url', database, '--json', log]);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const report = JSON.parse(stdout);
    expect(report).toMatchObject({ database: 'sqlite', events: { read: 2, inserted: 2, duplicates: 0 }, created: { users: 1, items: 2 } });
  });

  it('stops at a bad line with FILE:LINE, exit code 2, and stores nothing', async () => {
    const database = `file:${join(dir, 'bad.db')}`;
    const log = join(dir, 'bad.csv');
    writeFileSync(log, 'user_id,item_id,event_type,timestamp\nu1,i1,view,2024-01-01T00:00:00Z\nu1,i2,view,13/13/2024\n');
    const { code, stderr } = await runJobProcess('import', ['--database-url', database, '-q', log]);
    expect(code).toBe(2);
    expect(stderr).toContain(`error [IMPORT_BAD_LINE]: ${log}:3: timestamp '13/13/2024' is neither ISO 8601 nor a number`);
    const store = openStore(database);
    try {
      expect(await tableCounts(store)).toMatchObject({ events: 0, users: 0, items: 0 });
    } finally {
      await store.close();
    }
  });

  it('skips bad lines with --skip-bad and lists them', async () => {
    const log = join(dir, 'mixed.csv');
    writeFileSync(log, 'user_id,item_id,event_type,timestamp\nu1,i1,view,2024-01-01T00:00:00Z\nu1,,view,2024-01-01T00:00:00Z\n');
    const { code, stdout } = await runJobProcess('import', ['--database-url', `file:${join(dir, 'mixed.db')}`, '--skip-bad', '-q', log]);
    expect(code).toBe(0);
    expect(stdout).toContain('1 read, 1 new, 0 duplicates');
    expect(stdout).toContain(`skipped 1 bad lines:\n  ${log}:3: item_id is empty [MISSING_ITEM]`);
  });
});

describe('jobs/export', () => {
  it('documents every flag in --help and refuses missing or contradictory arguments with exit code 2', async () => {
    const { code, stdout } = await runJobProcess('export', ['--help']);
    expect(code).toBe(0);
    for (const flag of ['--users', '--k', '--format', '--output', '--overwrite', '--resume', '--exclude', '--category', '--filter', '--boost', '--max-per', '--workers', '--database-url', '--json', '--quiet', '--help']) {
      expect(stdout).toContain(flag);
    }
    const missing = await runJobProcess('export', []);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/^error \[USAGE\]: --output <file\|name> is required/);
    const both = await runJobProcess('export', ['--output', join(dir, 'x.jsonl'), '--overwrite', '--resume']);
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('give --overwrite or --resume, not both');
    const badK = await runJobProcess('export', ['--output', join(dir, 'x.jsonl'), '--k', '0']);
    expect(badK.code).toBe(2);
  });
});

describe('jobs/migrate', () => {
  it('migrates, then reports the database up to date', async () => {
    const database = `file:${join(dir, 'migrate.db')}`;
    const first = await runJobProcess('migrate', ['--database-url', database]);
    expect(first.code).toBe(0);
    // Every migration the repository ships, in order.
    const shipped = readdirSync(join(import.meta.dirname, '..', 'prisma', 'migrations', 'sqlite')).filter((f) => f.endsWith('.sql')).sort().map((f) => f.replace(/\.sql$/, ''));
    expect(shipped.slice(0, 2)).toEqual(['0001_init', '0002_rate_limits']);
    expect(first.stdout).toBe(`applied ${shipped.length} migration(s) to ${join(dir, 'migrate.db')}: ${shipped.join(', ')}\n`);
    const second = await runJobProcess('migrate', ['--database-url', database]);
    expect(second.stdout).toContain('is up to date');
  });

  it('refuses a DATABASE_URL it cannot use, without a stack trace', async () => {
    const { code, stderr } = await runJobProcess('migrate', [], { DATABASE_URL: 'mysql://localhost/x' });
    expect(code).toBe(2);
    expect(stderr).toBe("error [CONFIG_INVALID]: DATABASE_URL must start with file: (SQLite) or postgresql:// (PostgreSQL); got 'mysql:…'\n");
  });
});

describe('jobs/train', () => {
  it('documents every flag in --help', async () => {
    const { code, stdout } = await runJobProcess('train', ['--help']);
    expect(code).toBe(0);
    for (const flag of ['--epochs', '--patience', '--members', '--threads', '--ffn-dim', '--batch-size', '--lr', '--loss', '--negatives', '--negative-alpha', '--gbce-t', '--item-bias', '--[no-]event-types', '--max-length', '--dim', '--heads', '--blocks', '--dropout', '--seed', '--backend', '--sampled-negatives', '--valid-users', '--resume', '--version', '--[no-]store-representations', '--artifacts', '--database-url', '--json', '--quiet']) {
      expect(stdout).toContain(flag);
    }
  });

  it('trains a model version from an imported log and reports it as JSON', async () => {
    const database = `file:${join(dir, 'train.db')}`;
    const log = join(dir, 'train.csv');
    const lines = ['user_id,item_id,event_type,timestamp'];
    for (let u = 0; u < 40; u++) for (let k = 0; k < 6; k++) lines.push(`u${u},i${(u + k) % 9},view,${1_700_000_000 + u * 10 + k}`);
    writeFileSync(log, `${lines.join('\n')}\n`);
    expect((await runJobProcess('import', ['--database-url', database, '-q', log])).code).toBe(0);
    const { code, stdout, stderr } = await runJobProcess('train', ['--database-url', database, '--artifacts', join(dir, 'models'), '--epochs', '2', '--dim', '8', '--batch-size', '16', '--negatives', '4', '--sampled-negatives', '3', '--json']);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const result = JSON.parse(stdout);
    // The default: an ensemble of two members, trained side by side in worker threads.
    expect(result).toMatchObject({ versionId: 1, backend: 'wasm', members: [{ member: 0, epochs: [{ epoch: 1 }, { epoch: 2 }] }, { member: 1, epochs: [{ epoch: 1 }, { epoch: 2 }] }], test: { full: { users: 40 } } });
    expect(result.threads).toBe(Math.min(2, availableParallelism()));
    expect(result.reportPath).toBe(join(dir, 'models', 'v1', 'report.html'));
    // Every user's representation stored beside the version, for the API's user cache: 40 users, whose
    // histories (items (u + k) mod 9) are 9 distinct ones, each stored once.
    expect(result.representations).toMatchObject({ users: 9 });
    expect(readdirSync(join(dir, 'models', 'v1')).filter((f) => f.startsWith('representations-'))).toHaveLength(1);

    // A second version with another loss, then evaluate and compare them.
    const second = await runJobProcess('train', ['--database-url', database, '--artifacts', join(dir, 'models'), '--epochs', '1', '--dim', '8', '--batch-size', '16', '--loss', 'gbce', '--negatives', '4', '--sampled-negatives', '3', '--no-store-representations', '-q']);
    expect(second.code).toBe(0);
    expect(readdirSync(join(dir, 'models', 'v2')).filter((f) => f.startsWith('representations-'))).toEqual([]);
    expect(second.stdout).not.toContain('representations of');
    expect(second.stdout).toMatch(/model version 2 \(wasm\)/);
    // (The network-alone row shows when the version kept its co-occurrence term.)
    expect(second.stdout).toMatch(/full ranking, the history's purchases left out \(exclude=purchased; a held-out item among them counts as a miss\) \(40 users\)\n.*NDCG@10.*\n\s+SASRec v2 .*\n(\s+… network alone .*\n)?\s+member 1 .*\n\s+member 2 .*\n\s+popularity .*\n\s+most-recent-item .*\n\s+item-knn /);

    expect(second.stdout).toMatch(/by held-out item: novel \(not in the history, \d+ users\) and repeat \(in it, \d+ users\)/);
    const evaluated = await runJobProcess('evaluate', ['--database-url', database, '--model', '1', '--sampled-negatives', '3', '--json']);
    expect(evaluated.code).toBe(0);
    const evaluation = JSON.parse(evaluated.stdout);
    // Same data, same protocol, same seed: exactly the training job's test metrics.
    expect(evaluation.model).toEqual(result.test);
    expect(evaluation).toMatchObject({ versionId: 1, dataChanged: false, unknownItemEvents: 0, baselines: { popularity: { full: { users: 40 } } } });
    const table = await runJobProcess('evaluate', ['--database-url', database, '--model', '1', '--sampled-negatives', '3']);
    expect(table.stdout).toMatch(/NDCG@1\s+NDCG@5\s+NDCG@10\s+NDCG@20\s+HR@1\s+HR@5\s+HR@10\s+HR@20\s+MRR\n\s+SASRec v1\s+(\d\.\d{4}\s+){8}\d\.\d{4}\n/);
    expect(table.stdout).toContain('sampled protocol of the SASRec paper: 3 random unseen items');
    const bands = await runJobProcess('evaluate', ['--database-url', database, '--model', '1', '--sampled-negatives', '3', '--no-baselines', '--by-popularity', '--json']);
    const byBand = JSON.parse(bands.stdout).byTargetPopularity as { band: string; full: { users: number } }[];
    expect(byBand.map((b) => b.band)).toEqual(['0', '1-2', '3-5', '6-10', '11-20', '21-50', '51-100', '>100']);
    expect(byBand.reduce((n, b) => n + b.full.users, 0)).toBe(40);
    const bandText = await runJobProcess('evaluate', ['--database-url', database, '--model', '1', '--sampled-negatives', '3', '--by-popularity']);
    expect(bandText.stdout).toMatch(/by how often the held-out item occurs in the training events\n\s+seen in training\s+users\s+share\s+NDCG@10\s+HR@10\s+NDCG@10 sampled\s+HR@10 sampled\n\s+0 times\s+\d+/);

    const compared = await runJobProcess('compare', ['--database-url', database, '1', '2']);
    expect(compared.code).toBe(0);
    expect(compared.stdout).toMatch(/training\.loss\s+sampled\s+gbce\s+\*/);
    expect(compared.stdout).toMatch(/epochs\s+2\s+1\s+\*/);
    expect(compared.stdout).toMatch(/test full NDCG@10\s+\d(\.\d{1,4})?\s+\d(\.\d{1,4})?( +[<>])?\n/); // at most 4 decimals (a perfect 1 prints as 1)
    expect(compared.stdout).toMatch(/valid full NDCG@10\s+\d(\.\d{1,4})?\s+\d(\.\d{1,4})?( +[<>])?\n/); // validation, recorded by the training job
    expect(compared.stdout.indexOf('valid full NDCG@10')).toBeLessThan(compared.stdout.indexOf('test full NDCG@10'));
    expect(compared.stdout).not.toMatch(/^model\.dim/m); // identical settings are listed only with --all
    const all = await runJobProcess('compare', ['--database-url', database, '--all', '1', '2']);
    expect(all.stdout).toMatch(/^model\.dim\s+8\s+8$/m);
  }, 180_000); // seven job processes one after another (25 s alone, over 60 s beside the rest of the suite on 2 cores)

  it('evaluate and compare refuse unknown versions and bad arguments with exit code 2', async () => {
    const database = `file:${join(dir, 'train.db')}`;
    expect((await runJobProcess('evaluate', ['--database-url', database])).stderr).toBe('error [USAGE]: --model <version> is required (see --help)\n');
    expect((await runJobProcess('evaluate', ['--database-url', database, '--model', '99'])).stderr).toBe('error [MODEL_VERSION_NOT_FOUND]: there is no model version 99\n');
    expect((await runJobProcess('compare', ['--database-url', database, '1'])).stderr).toContain('error [USAGE]: give two model versions');
    const missing = await runJobProcess('compare', ['--database-url', database, '1', '42']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toBe('error [MODEL_VERSION_NOT_FOUND]: there is no model version 42\n');
    const help = await runJobProcess('evaluate', ['--help']);
    for (const flag of ['--model', '--phase', '--sampled-negatives', '--seed', '--[no-]baselines', '--backend', '--database-url', '--json']) expect(help.stdout).toContain(flag);
  });

  it.each(['SIGINT', 'SIGKILL'] as const)('%s (Ctrl-C, or a crash) loses at most the epoch in progress: --resume continues from the last checkpoint', async (signal) => {
    const database = `file:${join(dir, `interrupt-${signal}.db`)}`;
    const models = join(dir, `interrupt-${signal}-models`);
    const log = join(dir, `interrupt-${signal}.csv`);
    const lines = ['user_id,item_id,event_type,timestamp'];
    for (let u = 0; u < 60; u++) for (let k = 0; k < 8; k++) lines.push(`u${u},i${(u + k) % 11},view,${1_700_000_000 + u * 10 + k}`);
    writeFileSync(log, `${lines.join('\n')}\n`);
    expect((await runJobProcess('import', ['--database-url', database, '-q', log])).code).toBe(0);
    const args = ['--database-url', database, '--artifacts', models, '--epochs', '60', '--patience', '60', '--dim', '8', '--batch-size', '8', '--negatives', '4', '--sampled-negatives', '3'];
    const checkpoint = join(models, 'v1', 'checkpoint-0.bin');
    const interrupted = await runJobProcess('train', [...args, '-q'], {}, (child) => {
      const poll = setInterval(() => {
        if (existsSync(checkpoint)) {
          clearInterval(poll);
          child.kill(signal);
        }
      }, 20);
      child.on('exit', () => clearInterval(poll));
    });
    expect(interrupted.signal).toBe(signal);
    const resumed = await runJobProcess('train', ['--database-url', database, '--artifacts', models, '--resume', '--epochs', '3', '--json']);
    expect(resumed.code).toBe(0);
    const after = /^resuming model version 1 \(2 members, \d at once\) after epochs (\d+), (\d+) on the wasm backend/.exec(resumed.stderr);
    expect(Number(after?.[1])).toBeGreaterThanOrEqual(1); // member 1 had checkpointed when the job was stopped
    expect(Number(after?.[1])).toBeLessThan(60);
    const result = JSON.parse(resumed.stdout);
    expect(result.versionId).toBe(1);
    // Each member went on from where its checkpoint stood, under the saved settings (60 epochs, not 3).
    for (const member of result.members) expect(member.epochs.map((e: { epoch: number }) => e.epoch)).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
    expect(existsSync(checkpoint)).toBe(false);
  }, 120_000);

  it('--resume with nothing to resume says so', async () => {
    const { code, stderr } = await runJobProcess('train', ['--database-url', `file:${join(dir, 'train.db')}`, '--resume', '-q']);
    expect(code).toBe(2);
    expect(stderr).toBe('error [CHECKPOINT_NOT_FOUND]: no unfinished model version has a checkpoint to resume; start a new run\n');
  });

  it('rejects a value out of range before touching the store', async () => {
    const { code, stderr } = await runJobProcess('train', ['--database-url', `file:${join(dir, 'never.db')}`, '--dropout', '2']);
    expect(code).toBe(2);
    expect(stderr).toBe("error [USAGE]: --dropout must be a number from 0 to 0.9; got '2'\n");
  });
});

describe('npm start (jobs/serve)', () => {
  it('documents every flag in --help', async () => {
    const { code, stdout } = await runJobProcess('serve', ['--help']);
    expect(code).toBe(0);
    for (const flag of ['--host', '--port', '--database-url', '--api-keys', '--dev-keys', '--rate-limit', '--body-limit', '--strict-catalog', '--event-types', '--fallback', '--popular-window', '--user-cache', '--user-cache-ttl', '--model-poll', '--workers', '--shutdown-timeout', '--impressions', '--impression-retention-days', '--impression-batch', '--attribution-window', '--bulk-yield', '--retrain-schedule', '--retrain-args', '--help']) {
      expect(stdout).toContain(flag);
    }
  });

  it('validates its configuration at start-up and exits 2 with the reason', async () => {
    const database = `file:${join(dir, 'serve-config.db')}`;
    const noKeys = await runJobProcess('serve', ['--database-url', database, '--port', '0'], { ATTNREC_API_KEYS: '' });
    expect(noKeys.code).toBe(2);
    expect(noKeys.stderr).toMatch(/error \[CONFIG_INVALID\]: apiKeys: at least one API key is needed/);
    const badKey = await runJobProcess('serve', ['--database-url', database, '--api-keys', 'owner:abcdefghijklmnop']);
    expect(badKey.code).toBe(2);
    expect(badKey.stderr).toContain('role:key with role one of read, write, admin');
    const badPort = await runJobProcess('serve', ['--port', '70000', '--dev-keys']);
    expect(badPort.code).toBe(2);
    expect(badPort.stderr).toContain('--port must be an integer from 0 to 65535');
    for (const workers of ['0', 'many', '1.5']) {
      const badWorkers = await runJobProcess('serve', ['--workers', workers, '--dev-keys']);
      expect(badWorkers.code).toBe(2);
      expect(badWorkers.stderr).toContain(`--workers must be an integer from 1 to 256; got '${workers}'`);
    }
    const badBatch = await runJobProcess('serve', ['--impression-batch', '0', '--dev-keys']);
    expect(badBatch.code).toBe(2);
    expect(badBatch.stderr).toContain("--impression-batch must be an integer from 1 to 10000; got '0'");
    const badWindow = await runJobProcess('serve', ['--attribution-window', '1 day', '--dev-keys']);
    expect(badWindow.code).toBe(2);
    expect(badWindow.stderr).toContain("error [USAGE]: --attribution-window must be a span of time: seconds, or a number with s, m, h or d (e.g. 90, 30m, 24h, 7d), at most 366 days; got '1 day'");
    const badYield = await runJobProcess('serve', ['--bulk-yield', 'fast', '--dev-keys']);
    expect(badYield.code).toBe(2);
    expect(badYield.stderr).toContain("--bulk-yield must be a number from 0 to 60000; got 'fast'");
    const badCron = await runJobProcess('serve', ['--retrain-schedule', '0 3 * * * *', '--dev-keys']);
    expect(badCron.code).toBe(2);
    expect(badCron.stderr).toContain("error [USAGE]: --retrain-schedule '0 3 * * * *' must have five fields");
    const badCronFromEnv = await runJobProcess('serve', ['--dev-keys'], { ATTNREC_RETRAIN_SCHEDULE: 'nightly' });
    expect(badCronFromEnv.code).toBe(2);
    expect(badCronFromEnv.stderr).toContain("--retrain-schedule 'nightly' must have five fields");
    const unmigrated = await runJobProcess('serve', ['--database-url', database, '--dev-keys', '--port', '0']);
    expect(unmigrated.code).toBe(2);
    expect(unmigrated.stderr).toContain('error [DATABASE_NOT_READY]');
    expect(unmigrated.stderr).toContain('npm run db:migrate');
  });

  it('serves, then exits cleanly on SIGTERM', async () => {
    const database = `file:${join(dir, 'serve-sigterm.db')}`;
    expect((await runJobProcess('migrate', ['--database-url', database])).code).toBe(0);
    let url = '';
    const result = await runJobProcess('serve', ['--database-url', database, '--port', '0', '--api-keys', 'read:a-read-key-for-tests'], {}, (child) => {
      child.stdout!.on('data', (chunk: Buffer) => {
        const match = /listening on (\S+)/.exec(chunk.toString());
        if (!match) return;
        url = match[1]!;
        void (async () => {
          const ready = await fetch(`${url}/health/ready`);
          const recs = await fetch(`${url}/v1/users/anyone/recommendations`, { headers: { authorization: 'Bearer a-read-key-for-tests' } });
          expect(ready.status).toBe(200);
          expect(((await recs.json()) as { strategy: string }).strategy).toBe('popular');
          child.kill('SIGTERM');
        })();
      });
    });
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(result.signal).toBeNull();
    expect(result.code).toBe(0);
    expect(result.stderr).toContain('SIGTERM: finishing in-flight requests');
  });
});

describe('jobs/retrain', () => {
  it('documents every flag in --help, and refuses bad flags and a store with no active version', async () => {
    const help = await runJobProcess('retrain', ['--help']);
    expect(help.code).toBe(0);
    for (const flag of ['--since', '--max-events-per-user', '--min-gain', '--promote', '--epochs', '--threads', '--backend', '--artifacts', '--database-url', '--json', '--quiet']) expect(help.stdout).toContain(flag);
    const badGain = await runJobProcess('retrain', ['--min-gain', 'lots']);
    expect(badGain.code).toBe(2);
    expect(badGain.stderr).toContain("--min-gain must be a number from 0 to 10; got 'lots'");
    const badSince = await runJobProcess('retrain', ['--since', 'last tuesday']);
    expect(badSince.code).toBe(2);
    expect(badSince.stderr).toContain('--since must be an ISO 8601 date or a span such as 90d');
    const empty = await runJobProcess('retrain', ['--database-url', `file:${join(dir, 'retrain-empty.db')}`, '-q']);
    expect(empty.code).toBe(2);
    expect(empty.stderr).toContain('error [NO_ACTIVE_VERSION]');
  });

  it('retrains with the active recipe and says what it decided', async () => {
    const database = `file:${join(dir, 'retrain.db')}`;
    const log = join(dir, 'retrain.csv');
    const lines = ['user_id,item_id,event_type,timestamp'];
    for (let u = 0; u < 40; u++) for (let k = 0; k < 6; k++) lines.push(`u${u},i${(u + k) % 9},view,${1_700_000_000 + u * 10 + k}`);
    writeFileSync(log, `${lines.join('\n')}\n`);
    expect((await runJobProcess('import', ['--database-url', database, '-q', log])).code).toBe(0);
    const models = join(dir, 'retrain-models');
    const trained = await runJobProcess('train', ['--database-url', database, '--artifacts', models, '--epochs', '1', '--members', '1', '--dim', '8', '--batch-size', '16', '--negatives', '4', '-q']);
    expect(trained.code).toBe(0);
    const text = await runJobProcess('retrain', ['--database-url', database, '--artifacts', models, '--min-gain', '5', '-q']);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^version 1 keeps serving: version 2 did not win by \+500\.0 %: test NDCG@10 \d\.\d{4} against \d\.\d{4}/);
    expect(text.stdout).toMatch(/v1 \(was active\)\s+\d\.\d{4}/);
    expect(text.stdout).toMatch(/v2 \(retrained\)\s+\d\.\d{4}/);
    const json = await runJobProcess('retrain', ['--database-url', database, '--artifacts', models, '--promote', 'never', '--json']);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ previous: 1, candidate: 3, decision: 'kept', comparison: { users: 40, items: 9 } });
  }, 120_000);
});
