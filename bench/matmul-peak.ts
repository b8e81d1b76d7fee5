import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * A SIMD matrix-product peak to set the serving benchmark's achieved GFLOP/s
 * against: @tensorflow/tfjs-backend-wasm's matMul (XNNPACK, SIMD; one thread
 * under Node) on float32 operands, measured in a child process of its own so
 * neither the benchmark's TensorFlow.js state nor the server's threads share
 * it. Two shapes: 1024 × 1024 by 1024 × 1024 (the compute-bound peak) and
 * 64 × 128 by 128 × 128 (the size of one serving matrix product, where call
 * overhead and cache traffic count). After a warm-up, each repetition is
 * timed on its own; the median is reported, GFLOP/s = 2·m·k·n / seconds.
 *
 * `npx tsx bench/matmul-peak.ts` prints the JSON.
 */
export interface MatMulShape {
  readonly shape: string;
  readonly flops: number;
  readonly repetitions: number;
  readonly products_per_repetition: number;
  readonly median_ms_per_product: number;
  readonly gflops_median: number;
  readonly gflops_best: number;
}

export interface MatMulPeak {
  readonly backend: string;
  readonly simd: boolean;
  readonly threads: number;
  readonly shapes: MatMulShape[];
}

/** Measures the peak in a child process; resolves with its JSON. */
export function measureMatMulPeak(): Promise<MatMulPeak> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`matmul-peak exited with ${code}: ${err}`));
      try {
        resolve(JSON.parse(out) as MatMulPeak);
      } catch (error) {
        reject(new Error(`matmul-peak printed no JSON: ${(error as Error).message}: ${out}`));
      }
    });
  });
}

async function main(): Promise<void> {
  const tf = await import('@tensorflow/tfjs');
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  const require = createRequire(import.meta.url);
  wasm.setWasmPaths(`${dirname(require.resolve('@tensorflow/tfjs-backend-wasm'))}/`);
  if (!(await tf.setBackend('wasm'))) throw new Error('the wasm backend did not start');
  await tf.ready();
  const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');

  const time = (m: number, k: number, n: number, repetitions: number, perRepetition: number): MatMulShape => {
    const a = tf.randomUniform([m, k], -1, 1, 'float32', 1);
    const b = tf.randomUniform([k, n], -1, 1, 'float32', 2);
    const once = (): void => {
      for (let i = 0; i < perRepetition; i++) {
        const c = tf.matMul(a, b);
        if (i === perRepetition - 1) c.dataSync();
        c.dispose();
      }
    };
    once();
    once();
    const ms: number[] = [];
    for (let r = 0; r < repetitions; r++) {
      const started = performance.now();
      once();
      ms.push((performance.now() - started) / perRepetition);
    }
    a.dispose();
    b.dispose();
    ms.sort((x, y) => x - y);
    const flops = 2 * m * k * n;
    const median = ms[ms.length >> 1]!;
    const gflops = (msPerProduct: number): number => Math.round((flops / (msPerProduct / 1000) / 1e9) * 10) / 10;
    return {
      shape: `[${m}, ${k}] x [${k}, ${n}]`,
      flops,
      repetitions,
      products_per_repetition: perRepetition,
      median_ms_per_product: Math.round(median * 10_000) / 10_000,
      gflops_median: gflops(median),
      gflops_best: gflops(ms[0]!),
    };
  };
  const shapes = [time(1024, 1024, 1024, 5, 1), time(64, 128, 128, 7, 500)];
  process.stdout.write(`${JSON.stringify({ backend: tf.getBackend(), simd: Boolean(simd), threads: wasm.getThreadsCount(), shapes } satisfies MatMulPeak)}\n`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
