import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { AppError } from '../errors.js';
import { shareIdentityBuffers } from './wasm-kernels.js';

/**
 * Picks the fastest TensorFlow.js backend this machine can run, in order:
 * libtensorflow with CUDA (@tensorflow/tfjs-node-gpu), libtensorflow on the
 * CPU (@tensorflow/tfjs-node), WebGPU through Dawn (`webgpu` +
 * @tensorflow/tfjs-backend-webgpu), WebAssembly, plain JavaScript. The
 * native and GPU packages are optional dependencies: the libtensorflow
 * installers download from a host that may be unreachable, which `npm ci`
 * tolerates.
 */
export type BackendPreference = 'auto' | 'tensorflow-gpu' | 'tensorflow' | 'webgpu' | 'wasm' | 'cpu';
export const BACKEND_PREFERENCES: readonly BackendPreference[] = ['auto', 'tensorflow-gpu', 'tensorflow', 'webgpu', 'wasm', 'cpu'];

export interface BackendChoice {
  /** What runs: 'tensorflow-gpu', 'tensorflow', 'wasm' or 'cpu'. */
  readonly name: Exclude<BackendPreference, 'auto'>;
  /** The candidates tried before it, and why each was passed over. */
  readonly skipped: readonly { readonly name: string; readonly reason: string }[];
}

type Candidate = { readonly name: BackendChoice['name']; activate(auto: boolean): Promise<void> };

const require = createRequire(import.meta.url);
let identityShared = false;

const CANDIDATES: readonly Candidate[] = [
  {
    name: 'tensorflow-gpu',
    async activate() {
      // Registers the 'tensorflow' backend, bound to CUDA, on the shared tfjs-core.
      await import('@tensorflow/tfjs-node-gpu' as string);
      await useBackend('tensorflow');
    },
  },
  {
    name: 'tensorflow',
    async activate() {
      await import('@tensorflow/tfjs-node' as string);
      await useBackend('tensorflow');
    },
  },
  {
    // Dawn's WebGPU for Node (the `webgpu` package ships dawn.node for linux-x64 in the npm package)
    // with tfjs's WebGPU backend. Dawn needs a Vulkan driver for a real GPU; software Vulkan is refused.
    name: 'webgpu',
    async activate(auto) {
      // Probing Dawn where there is no GPU prints a native warning on stderr: auto only tries it next to a GPU device node.
      if (auto && !['/dev/dri', '/dev/nvidia0', '/dev/nvidiactl'].some((path) => existsSync(path))) throw new Error('no GPU device node (/dev/dri, /dev/nvidia0)');
      const { create, globals } = (await import('webgpu' as string)) as { create(flags: string[]): { requestAdapter(): Promise<unknown> }; globals: object };
      Object.assign(globalThis, globals);
      const gpu = create([]);
      if (!(await gpu.requestAdapter())) throw new Error('WebGPU found no adapter (Dawn needs a Vulkan GPU driver)');
      const navigator = (globalThis as { navigator?: object }).navigator ?? {};
      Object.defineProperty(globalThis, 'navigator', { value: Object.assign(Object.create(navigator), { gpu }), configurable: true, writable: true });
      await import('@tensorflow/tfjs-backend-webgpu' as string);
      await useBackend('webgpu');
    },
  },
  {
    name: 'wasm',
    async activate() {
      setWasmPaths(`${dirname(require.resolve('@tensorflow/tfjs-backend-wasm'))}/`);
      if (!identityShared) {
        shareIdentityBuffers();
        identityShared = true;
      }
      await useBackend('wasm');
    },
  },
  {
    name: 'cpu',
    async activate() {
      await useBackend('cpu');
    },
  },
];

async function useBackend(name: string): Promise<void> {
  if (!(await tf.setBackend(name))) throw new Error(`tf.setBackend('${name}') refused`);
  await tf.ready();
}

let chosen: BackendChoice | undefined;

/** Activates the backend (once per process) and says which one runs and why the others did not. */
export async function selectBackend(preference: BackendPreference = 'auto'): Promise<BackendChoice> {
  if (chosen && (preference === 'auto' || preference === chosen.name)) return chosen;
  const candidates = preference === 'auto' ? CANDIDATES : CANDIDATES.filter((c) => c.name === preference);
  const skipped: { name: string; reason: string }[] = [];
  for (const candidate of candidates) {
    try {
      await candidate.activate(preference === 'auto');
      chosen = { name: candidate.name, skipped };
      return chosen;
    } catch (error) {
      skipped.push({ name: candidate.name, reason: firstLine(error) });
    }
  }
  throw new AppError('BACKEND_UNAVAILABLE', `no TensorFlow.js backend could start: ${skipped.map((s) => `${s.name}: ${s.reason}`).join('; ')}`);
}

export function describeBackend(choice: BackendChoice): string {
  const passed = choice.skipped.map((s) => `${s.name} (${s.reason})`).join(', ');
  return `backend: ${choice.name}${passed ? `; not available: ${passed}` : ''}`;
}

function firstLine(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.split('\n')[0]!.slice(0, 200);
}
