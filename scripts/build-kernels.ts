// The AssemblyScript kernels in kernels/ as WebAssembly in generated/kernels/, where the runtime loads
// them. Run by `npm install` / `npm ci` through postinstall: when the kernel sources, the compiler's
// version and its flags are those the committed kernels/prebuilt/*.wasm were built from (the stamp in
// kernels/prebuilt/stamp.txt), those are copied (milliseconds) instead of compiled (20-40 s on 2 cores);
// otherwise they are compiled. `npm run build:kernels` compiles them and refreshes kernels/prebuilt/
// and its stamp; commit both after changing a kernel (a test fails while they are stale, and another
// checks that compiling the sources gives exactly the committed bytes: the compiler is deterministic).
// Pure JavaScript toolchain: works offline, nothing downloaded. The runtime falls back to TensorFlow.js
// ops when a kernel is missing, so a failed build costs speed, not correctness.
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const KERNELS = ['attention', 'scoring', 'sampled-softmax', 'spectral', 'inference'] as const;
const FLAGS = ['-O3', '--runtime', 'stub', '--noAssert', '--enable', 'simd', '--use', 'abort='] as const;
export const SOURCES_DIR = join(root, 'kernels');
export const PREBUILT_DIR = join(SOURCES_DIR, 'prebuilt');
export const GENERATED_DIR = join(root, 'generated', 'kernels');
const STAMP_FILE = 'stamp.txt';

/** SHA-256 over every kernel source (shared helpers included), the compiler's version and the flags. */
export function kernelStamp(): string {
  const hash = createHash('sha256');
  const compiler = JSON.parse(readFileSync(join(root, 'node_modules', 'assemblyscript', 'package.json'), 'utf8')) as { version: string };
  hash.update(`assemblyscript ${compiler.version}\n${FLAGS.join(' ')}\n`);
  for (const file of readdirSync(SOURCES_DIR).filter((f) => f.endsWith('.ts')).sort()) {
    hash.update(`${file}\n`);
    hash.update(readFileSync(join(SOURCES_DIR, file)));
  }
  return hash.digest('hex');
}

/** The stamp the committed prebuilt kernels were built from, or undefined when there are none. */
export function prebuiltStamp(): string | undefined {
  const file = join(PREBUILT_DIR, STAMP_FILE);
  return existsSync(file) ? readFileSync(file, 'utf8').trim() : undefined;
}

export async function buildKernels(outDir = GENERATED_DIR): Promise<void> {
  // Loaded only to compile: loading the compiler takes most of the 20-40 s a build costs.
  const { default: asc } = await import('assemblyscript/asc');
  mkdirSync(outDir, { recursive: true });
  for (const name of KERNELS) {
    const { error, stderr } = await asc.main([join(SOURCES_DIR, `${name}.ts`), '--outFile', join(outDir, `${name}.wasm`), ...FLAGS]);
    if (error) throw new Error(`building kernel ${name} failed: ${error.message}\n${stderr.toString()}`);
  }
}

/** Puts the kernels in generated/kernels/: copied from kernels/prebuilt/ when its stamp matches, else compiled. Returns which. */
export async function installKernels(): Promise<'prebuilt' | 'compiled'> {
  const prebuilt = prebuiltStamp();
  if (prebuilt !== undefined && prebuilt === kernelStamp() && KERNELS.every((k) => existsSync(join(PREBUILT_DIR, `${k}.wasm`)))) {
    mkdirSync(GENERATED_DIR, { recursive: true });
    for (const name of KERNELS) copyFileSync(join(PREBUILT_DIR, `${name}.wasm`), join(GENERATED_DIR, `${name}.wasm`));
    return 'prebuilt';
  }
  await buildKernels();
  return 'compiled';
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const started = performance.now();
  const files = KERNELS.map((k) => `generated/kernels/${k}.wasm`).join(', ');
  if (process.argv.includes('--refresh')) {
    await buildKernels();
    mkdirSync(PREBUILT_DIR, { recursive: true });
    for (const name of KERNELS) copyFileSync(join(GENERATED_DIR, `${name}.wasm`), join(PREBUILT_DIR, `${name}.wasm`));
    writeFileSync(join(PREBUILT_DIR, STAMP_FILE), `${kernelStamp()}\n`);
    process.stdout.write(`compiled ${files} and refreshed kernels/prebuilt/ (commit it) in ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
  } else {
    const how = await installKernels();
    process.stdout.write(
      how === 'prebuilt'
        ? `kernels: copied the prebuilt ones (sources unchanged) to ${files}\n`
        : `kernels: compiled ${files} in ${((performance.now() - started) / 1000).toFixed(1)} s (the sources differ from kernels/prebuilt/; npm run build:kernels refreshes it)\n`,
    );
  }
}
