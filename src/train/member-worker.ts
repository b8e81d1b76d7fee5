import { parentPort, workerData } from 'node:worker_threads';
import { evaluationSplits } from '../data/leave-one-out-split.js';
import { selectBackend, type BackendPreference } from '../model/backend.js';
import { trainMember, type MemberRunInput } from './member-run.js';
import type { MemberMessage } from './member-thread.js';

/** Trains the member described by workerData and reports to the parent thread (member-thread.ts). */
const input = workerData as Omit<MemberRunInput, 'split'> & { readonly backend: BackendPreference };
const post = (message: MemberMessage, transfer: ArrayBuffer[] = []): void => parentPort!.postMessage(message, transfer);
try {
  await selectBackend(input.backend);
  const result = await trainMember(
    { ...input, split: evaluationSplits(input.data.offsets, input.data.types, input.run.evalType ?? 'event').primary },
    {
      onStep: (member, epoch, done, total, loss) => post({ type: 'step', member, epoch, done, total, loss }),
      onEpoch: (summary) => post({ type: 'epoch', summary }),
    },
  );
  post({ type: 'done', result }, result.weights.map((w) => w.values.buffer as ArrayBuffer));
} catch (error) {
  const { message, code } = error as { message?: string; code?: string };
  post({ type: 'error', message: message ?? String(error), ...(code !== undefined && { code }) });
}
