import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Loading the SIMD WebAssembly kernels that scripts/build-kernels.ts compiles
 * from kernels/*.ts into generated/kernels/*.wasm. Each kernel is compiled
 * once per process; callers take an instance (with its own memory) and lay
 * their arrays out in it above the first 64 KiB page, clear of anything the
 * compiler places there.
 */

// Node has WebAssembly, but the ES2023 lib this project compiles against does not describe it (that is in the DOM lib).
declare const WebAssembly: {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { readonly exports: unknown };
};

export interface KernelMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}

export const KERNEL_HEAP_START = 65_536;
const PAGE = 65_536;
const KERNELS_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'generated', 'kernels');
const compiled = new Map<string, object | null>();

/** A new instance of kernel `name`, or undefined when it is not built (callers then use a slower path). */
export function instantiateKernel<Exports extends { readonly memory: KernelMemory }>(name: string): Exports | undefined {
  if (!compiled.has(name)) {
    try {
      compiled.set(name, new WebAssembly.Module(readFileSync(join(KERNELS_DIR, `${name}.wasm`))));
    } catch {
      compiled.set(name, null);
    }
  }
  const module = compiled.get(name);
  return module ? (new WebAssembly.Instance(module, {}).exports as Exports) : undefined;
}

/**
 * A process-wide kernel: the first call instantiates kernel `name` and wraps
 * its exports; every call returns that wrapper, or null when the kernel is
 * not built (callers then use TensorFlow.js ops).
 */
export function sharedKernel<Exports extends { readonly memory: KernelMemory }, Kernel>(name: string, wrap: (exports: Exports) => Kernel): () => Kernel | null {
  let loaded: Kernel | null | undefined;
  return () => {
    if (loaded === undefined) {
      const wasm = instantiateKernel<Exports>(name);
      loaded = wasm ? wrap(wasm) : null;
    }
    return loaded;
  };
}

/**
 * Byte offsets for arrays of the given byte sizes, laid out from
 * KERNEL_HEAP_START, each 16-byte aligned for SIMD loads; the memory grows
 * to hold them.
 */
export function layoutKernelMemory(memory: KernelMemory, byteSizes: readonly number[]): number[] {
  let at = KERNEL_HEAP_START;
  const offsets = byteSizes.map((bytes) => {
    const here = at;
    at += Math.ceil(bytes / 16) * 16;
    return here;
  });
  const pages = Math.ceil(at / PAGE) - memory.buffer.byteLength / PAGE;
  if (pages > 0) memory.grow(pages);
  return offsets;
}

/**
 * A digest of the built kernels `names` (a missing one counts as absent): what
 * was computed with one build is known to be what another would compute only
 * when the digests agree (src/model/representation-memo.ts).
 */
export function kernelDigest(names: readonly string[]): string {
  const hash = createHash('sha256');
  for (const name of names) {
    hash.update(`${name}\0`);
    try {
      hash.update(readFileSync(join(KERNELS_DIR, `${name}.wasm`)));
    } catch {
      hash.update('absent');
    }
  }
  return hash.digest('hex').slice(0, 16);
}
