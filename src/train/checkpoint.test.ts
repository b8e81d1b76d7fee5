import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../model/backend.js';
import { readCheckpoint, writeCheckpoint } from './checkpoint.js';

describe('checkpoint files', () => {
  beforeAll(async () => {
    await selectBackend('cpu');
  });

  it('round-trip state and tensors exactly', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'attnrec-ckpt-')), 'checkpoint.bin');
    const a = tf.tensor2d([[1.5, -2], [3.25, Math.fround(1 / 3)]]);
    const b = tf.scalar(7);
    writeCheckpoint(path, { epoch: 3, note: 'ü' }, [['a', a], ['b', b]]);
    const back = readCheckpoint<{ epoch: number; note: string }>(path);
    expect(back.state).toEqual({ epoch: 3, note: 'ü' });
    expect(back.tensors.get('a')).toEqual({ shape: [2, 2], values: Float32Array.from([1.5, -2, 3.25, Math.fround(1 / 3)]) });
    expect(back.tensors.get('b')).toEqual({ shape: [], values: Float32Array.from([7]) });
  });

  it('refuses truncated, foreign and missing files with stable codes', () => {
    const dir = mkdtempSync(join(tmpdir(), 'attnrec-ckpt-'));
    const path = join(dir, 'checkpoint.bin');
    writeCheckpoint(path, {}, [['a', tf.ones([10])]]);
    writeFileSync(path, readFileSync(path).subarray(0, -4));
    expect(() => readCheckpoint(path)).toThrow(expect.objectContaining({ code: 'CHECKPOINT_CORRUPT' }));
    writeFileSync(path, 'not a checkpoint');
    expect(() => readCheckpoint(path)).toThrow(expect.objectContaining({ code: 'CHECKPOINT_CORRUPT' }));
    expect(() => readCheckpoint(join(dir, 'none.bin'))).toThrow(expect.objectContaining({ code: 'CHECKPOINT_NOT_FOUND' }));
  });
});
