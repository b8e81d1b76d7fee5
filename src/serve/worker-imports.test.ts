import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';

const SRC = join(import.meta.dirname, '..');

/** The @tensorflow modules loaded after importing these modules (paths under src/) in a fresh process. */
async function tensorflowLoadedBy(modules: readonly string[]): Promise<string[]> {
  const urls = modules.map((m) => pathToFileURL(join(SRC, m)).href);
  const script = `
    import { createRequire } from 'node:module';
    for (const m of ${JSON.stringify(urls)}) await import(m);
    console.log(JSON.stringify(Object.keys(createRequire(import.meta.url).cache).filter((k) => k.includes('@tensorflow'))));`;
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: join(SRC, '..') });
  return JSON.parse(stdout) as string[];
}

/**
 * An inference worker holds a model version and nothing it does not use:
 * importing @tensorflow/tfjs (through the artifact writer or the training
 * model) cost every worker ~110 MB of resident memory. Checked in a fresh
 * process, since this one has TensorFlow.js loaded by other tests.
 */
it("loads no TensorFlow.js on the serving path: the inference worker's modules", async () => {
  expect(await tensorflowLoadedBy(['model/served-model.ts', 'serve/pooled-model.ts', 'inspect/inspect-history.ts', 'data/serving-reader.ts', 'data/sequences.ts', 'data/store.ts'])).toEqual([]);
  // The check sees TensorFlow.js where it is.
  expect((await tensorflowLoadedBy(['model/artifact.ts'])).length).toBeGreaterThan(0);
}, 60_000);
