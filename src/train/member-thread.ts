import { Worker } from 'node:worker_threads';
import { AppError } from '../errors.js';
import type { BackendPreference } from '../model/backend.js';
import type { EpochSummary, MemberRunCallbacks, MemberRunInput, MemberRunResult } from './member-run.js';

/** What a member's worker thread sends its parent. */
export type MemberMessage =
  | { readonly type: 'step'; readonly member: number; readonly epoch: number; readonly done: number; readonly total: number; readonly loss: number }
  | { readonly type: 'epoch'; readonly summary: EpochSummary }
  | { readonly type: 'done'; readonly result: MemberRunResult }
  | { readonly type: 'error'; readonly message: string; readonly code?: string };

const WORKER_ENTRY = new URL('./member-worker.mjs', import.meta.url);

/**
 * Trains one member in a worker thread of its own, with its own TensorFlow.js
 * and backend instance: WebAssembly runs single-threaded, so members in
 * separate threads use separate cores. The result is the same as training it
 * in this thread (trainMember; same seed, same data, same backend). Callbacks
 * run in this thread; one that throws stops the worker and rejects.
 */
export function trainMemberInThread(input: Omit<MemberRunInput, 'split'>, backend: BackendPreference, callbacks: MemberRunCallbacks = {}): { result: Promise<MemberRunResult>; stop: () => Promise<void> } {
  const worker = new Worker(WORKER_ENTRY, { workerData: { ...input, backend } });
  const result = new Promise<MemberRunResult>((resolve, reject) => {
    let settled = false;
    const fail = (error: unknown): void => {
      if (settled) return;
      settled = true;
      void worker.terminate();
      reject(error);
    };
    worker.on('message', (message: MemberMessage) => {
      try {
        if (message.type === 'step') callbacks.onStep?.(message.member, message.epoch, message.done, message.total, message.loss);
        else if (message.type === 'epoch') callbacks.onEpoch?.(message.summary);
        else if (message.type === 'error') fail(message.code ? new AppError(message.code, message.message) : new Error(message.message));
        else if (!settled) {
          settled = true;
          resolve(message.result);
          void worker.terminate();
        }
      } catch (error) {
        fail(error);
      }
    });
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`the worker training member ${input.member} exited with code ${code} before finishing`)));
  });
  return { result, stop: async () => void (await worker.terminate()) };
}
