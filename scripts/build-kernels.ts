// Compiles the AssemblyScript kernels in kernels/ to WebAssembly in
// generated/kernels/ (run by `npm install` / `npm ci` through postinstall,
// or by hand: `npm run build:kernels`). Pure JavaScript toolchain: works
// offline, nothing downloaded. The runtime falls back to TensorFlow.js ops
// when a kernel is missing, so a failed build costs speed, not correctness.
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import asc from 'assemblyscript/asc';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const KERNELS = ['attention', 'scoring', 'sampled-softmax', 'spectral', 'inference'] as const;

export async function buildKernels(): Promise<void> {
  mkdirSync(join(root, 'generated', 'kernels'), { recursive: true });
  for (const name of KERNELS) {
    const { error, stderr } = await asc.main([
      join(root, 'kernels', `${name}.ts`),
      '--outFile', join(root, 'generated', 'kernels', `${name}.wasm`),
      '-O3', '--runtime', 'stub', '--noAssert', '--enable', 'simd', '--use', 'abort=',
    ]);
    if (error) throw new Error(`building kernel ${name} failed: ${error.message}\n${stderr.toString()}`);
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await buildKernels();
  process.stdout.write(`built ${KERNELS.map((k) => `generated/kernels/${k}.wasm`).join(', ')}\n`);
}
