import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { generateShopSample } from '../scripts/generate-shop-sample.js';
import { generateRepeatSample } from '../scripts/generate-repeat-sample.js';
import { SERVER_ENV, SERVER_NODE_FLAGS } from '../src/cli/processes.js';
import { ROOT } from './support/run-job.js';

const SHA256 = 'b7376fe24430743f411dc7f567285657b2adb3f74361cc7ba0aee94f3024b651';
const BEAUTY_SHA256 = '3033c84a07a0e9fb2626aa640919393edb983a63acfd129481c199bf07c9e537';

describe('shipped sample data', () => {
  const sample = readFileSync(join(ROOT, 'samples', 'amazon-games.txt'));

  it('is the Amazon Games file of the SASRec paper, byte for byte', () => {
    expect(createHash('sha256').update(sample).digest('hex')).toBe(SHA256);
    expect(readFileSync(join(ROOT, 'samples', 'README.md'), 'utf8')).toContain(SHA256);
  });

  it('matches ../shared/data when that folder is present', () => {
    const shared = join(ROOT, '..', 'shared', 'data', 'amazon-games.txt');
    if (!existsSync(shared)) return;
    expect(readFileSync(shared).equals(sample)).toBe(true);
  });

  it('ships amazon-beauty beside it, byte for byte the file the published results used', () => {
    const beauty = readFileSync(join(ROOT, 'samples', 'amazon-beauty.txt'));
    expect(createHash('sha256').update(beauty).digest('hex')).toBe(BEAUTY_SHA256);
    expect(readFileSync(join(ROOT, 'samples', 'README.md'), 'utf8')).toContain(BEAUTY_SHA256);
    const lines = beauty.toString('utf8').trimEnd().split('\n');
    expect(lines).toHaveLength(198_502);
    expect(new Set(lines.map((l) => l.split(' ')[0])).size).toBe(22_363);
    expect(new Set(lines).size).toBe(lines.length); // no user has an item twice
  });
});

describe('shipped shop sample', () => {
  it('is what scripts/generate-shop-sample.ts writes, byte for byte', () => {
    const { catalog, events } = generateShopSample();
    expect(readFileSync(join(ROOT, 'samples', 'shop-catalog.csv'), 'utf8')).toBe(catalog);
    expect(readFileSync(join(ROOT, 'samples', 'shop-events.csv'), 'utf8')).toBe(events);
  });

  it('has views, carts and purchases in sessions, anonymous ones too, and categories with properties', () => {
    const lines = readFileSync(join(ROOT, 'samples', 'shop-events.csv'), 'utf8').trim().split('\n').slice(1).map((l) => l.split(','));
    const types = new Map<string, number>();
    for (const l of lines) types.set(l[3]!, (types.get(l[3]!) ?? 0) + 1);
    expect([...types.keys()].sort()).toEqual(['cart', 'purchase', 'view']);
    expect(lines.some((l) => l[0] === '')).toBe(true);
    const catalog = readFileSync(join(ROOT, 'samples', 'shop-catalog.csv'), 'utf8').trim().split('\n');
    expect(catalog[0]).toBe('item_id,title,category,price,properties');
    expect(new Set(catalog.slice(1).map((l) => l.split(',')[2])).size).toBe(16);
  });
});

describe('README', () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const scripts = Object.keys(JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).scripts as Record<string, string>);

  it('names only npm scripts that exist', () => {
    const named = [...readme.matchAll(/npm run ([\w:-]+)/g)].map((m) => m[1]!);
    expect(named.length).toBeGreaterThan(0);
    for (const name of named) expect(scripts, `npm run ${name}`).toContain(name);
  });

  it('starts the server with the allocator environment and Node options the served-API helper gives it', () => {
    const start = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).scripts as Record<string, string>).start!;
    expect(Object.keys(SERVER_ENV).length).toBeGreaterThan(0);
    for (const [name, value] of Object.entries(SERVER_ENV)) expect(start).toContain(`${name}=\${${name}:-${value}} `);
    expect(SERVER_NODE_FLAGS.length).toBeGreaterThan(0);
    expect(start).toContain(`tsx ${SERVER_NODE_FLAGS.join(' ')} jobs/serve.ts`);
  });

  it('links only to files that exist, from the README and every page in docs/', () => {
    const pages = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => join('docs', f))];
    let links = 0;
    for (const page of pages) {
      const text = readFileSync(join(ROOT, page), 'utf8');
      for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^[a-z]+:/i.test(target!) || target!.startsWith('#')) continue;
        const file = target!.split('#')[0]!;
        links++;
        expect(existsSync(join(ROOT, dirname(page), file)), `${page} links to ${target}`).toBe(true);
      }
    }
    expect(links).toBeGreaterThan(10);
  });

  it('gives the one-line set-up commands for the main job and the tests', () => {
    expect(readme).toContain('npm ci && npm run quickstart');
    expect(readme).toContain('npm ci && npm test');
  });
});

describe('shipped repeat-purchase sample', () => {
  it('is what scripts/generate-repeat-sample.ts writes, byte for byte', () => {
    const { catalog, events } = generateRepeatSample();
    expect(readFileSync(join(ROOT, 'samples', 'repeat-catalog.csv'), 'utf8')).toBe(catalog);
    expect(readFileSync(join(ROOT, 'samples', 'repeat-events.csv'), 'utf8')).toBe(events);
  });

  it('is mostly repeat purchases, on cycles', () => {
    const lines = readFileSync(join(ROOT, 'samples', 'repeat-events.csv'), 'utf8').trim().split('\n').slice(1).map((l) => l.split(','));
    const bought = new Map<string, Set<string>>();
    let purchases = 0;
    let repeats = 0;
    for (const [user, , item, type] of lines) {
      if (type !== 'purchase') continue;
      purchases++;
      const mine = bought.get(user!) ?? bought.set(user!, new Set()).get(user!)!;
      if (mine.has(item!)) repeats++;
      mine.add(item!);
    }
    expect(repeats / purchases).toBeGreaterThan(0.7);
    expect(bought.size).toBe(500);
    expect(readFileSync(join(ROOT, 'samples', 'repeat-catalog.csv'), 'utf8').split('\n')[1]).toMatch(/cycle_days/);
  });
});

