import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { KERNELS, PREBUILT_DIR, buildKernels, kernelStamp, prebuiltStamp } from '../scripts/build-kernels.js';

// npm ci copies kernels/prebuilt/*.wasm instead of compiling when its stamp matches the sources.
describe('the prebuilt kernels', () => {
  it('were built from the kernel sources as they are (run npm run build:kernels and commit kernels/prebuilt/ after changing a kernel)', () => {
    expect(prebuiltStamp()).toBe(kernelStamp());
  });

  it('are exactly what compiling those sources gives', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'attnrec-kernels-'));
    try {
      await buildKernels(dir);
      for (const name of KERNELS) expect(readFileSync(join(dir, `${name}.wasm`)).equals(readFileSync(join(PREBUILT_DIR, `${name}.wasm`))), name).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 180_000);
});
