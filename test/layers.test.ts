import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './support/run-job.js';

/**
 * The layer order as the README's Layout section states it: tiers from the
 * top, separated by →, each a comma-separated list of `folder/` (or
 * `src/*.ts`, the leaf helpers). Code imports its own tier or a lower one.
 */
function documentedTiers(): string[][] {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const line = readme.split('\n').find((l) => l.startsWith('`jobs/` →'));
  if (!line) throw new Error('README.md has no layer-order line starting with `jobs/` →');
  return line.split('→').map((tier) => [...tier.matchAll(/`([^`]+)`/g)].map((m) => m[1]!));
}

/** Every non-test source file under the folders the tiers name (and test/, which nothing may import). */
function sourceFiles(): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) {
        if (entry.name !== 'node_modules' && entry.name !== 'scratch' && entry.name !== 'web') walk(path);
      } else if (/\.(ts|mts|mjs)$/.test(entry.name) && !/\.test\.ts$/.test(entry.name)) out.push(path);
    }
  };
  for (const dir of ['src', 'jobs', 'bench']) walk(dir);
  return out;
}

/** Project files a source file imports (static, re-exports and dynamic imports of string literals), relative to the root. */
function importsOf(file: string): string[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  const specifiers = [...text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^'";]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g)].map((m) => m[1] ?? m[2]!);
  return specifiers.filter((s) => s.startsWith('.')).map((s) => relative(ROOT, normalize(join(ROOT, dirname(file), s))));
}

describe('layers', () => {
  const tiers = documentedTiers();
  /** The tier of a path: the index of the tier naming its folder (longest match), or undefined outside every tier. */
  const tierOf = (path: string): number | undefined => {
    let best: { tier: number; length: number } | undefined;
    tiers.forEach((names, tier) => {
      for (const name of names) {
        const matches = name === 'src/*.ts' ? /^src\/[^/]+$/.test(path) : path.startsWith(name);
        if (matches && (!best || name.length > best.length)) best = { tier, length: name.length };
      }
    });
    return best?.tier;
  };

  it('reads the order from the README: jobs on top, the leaf helpers at the bottom', () => {
    expect(tiers.length).toBeGreaterThanOrEqual(4);
    expect(tiers[0]).toEqual(['jobs/']);
    expect(tiers.at(-1)).toContain('src/*.ts');
    expect(tiers.flat()).toEqual(expect.arrayContaining(['src/serve/', 'src/train/', 'src/inspect/', 'src/evaluate/', 'src/model/', 'src/data/', 'bench/']));
  });

  /** What breaks the order among `files`, given what each imports. */
  const wrongImports = (files: readonly string[], imports: (file: string) => string[]): string[] => {
    const wrong: string[] = [];
    for (const file of files) {
      const from = tierOf(file);
      for (const target of imports(file)) {
        if (target.startsWith('test/')) wrong.push(`${file} imports ${target} (test support)`);
        const to = tierOf(target);
        if (from !== undefined && to !== undefined && to < from) wrong.push(`${file} imports ${target} (up from tier ${from + 1} to ${to + 1})`);
      }
    }
    return wrong;
  };

  it('has every import run down the order or within a tier, and nothing outside the tests import test/', () => {
    const files = sourceFiles();
    expect(files.length).toBeGreaterThan(100);
    expect(importsOf('src/serve/recommender.ts')).toEqual(expect.arrayContaining(['src/model/beam-search.js', 'src/serve/user-cache.js']));
    expect(wrongImports(files, importsOf)).toEqual([]);
  });

  it('names an upward import, an import of test support, and lets imports down or sideways pass', () => {
    const imports: Record<string, string[]> = {
      'src/model/served-model.ts': ['src/serve/recommender.js', 'src/data/store.js', 'src/errors.js'],
      'src/evaluate/evaluate.ts': ['src/train/batches.js', 'src/inspect/explain.js'],
      'bench/serve-bench.ts': ['test/support/postgres.js', 'src/train/train-run.js'],
      'src/errors.ts': ['src/cli/job.js'],
    };
    expect(wrongImports(Object.keys(imports), (file) => imports[file]!)).toEqual([
      'src/model/served-model.ts imports src/serve/recommender.js (up from tier 4 to 2)',
      'src/evaluate/evaluate.ts imports src/train/batches.js (up from tier 3 to 2)',
      'bench/serve-bench.ts imports test/support/postgres.js (test support)',
    ]);
  });
});
