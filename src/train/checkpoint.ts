import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, readSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { AppError } from '../errors.js';

/**
 * A training checkpoint in one file, so that replacing it is a single atomic
 * rename: a crash while writing leaves the previous checkpoint intact.
 *
 * Layout: "ATRC" magic, u32 header length, the JSON header (format version,
 * caller state, tensor specs), zero padding to a multiple of 4, then every
 * tensor's float32 values, little-endian, in header order.
 */
const MAGIC = 'ATRC';
const FORMAT_VERSION = 1;

export interface TensorSpec {
  readonly name: string;
  readonly shape: number[];
}

interface Header {
  readonly formatVersion: number;
  readonly state: unknown;
  readonly tensors: TensorSpec[];
}

export interface Checkpoint<State> {
  readonly state: State;
  /** Values by name, each with its shape. */
  readonly tensors: Map<string, { shape: number[]; values: Float32Array }>;
}

export function writeCheckpoint(path: string, state: unknown, tensors: [string, tf.Tensor][]): void {
  const header: Header = { formatVersion: FORMAT_VERSION, state, tensors: tensors.map(([name, t]) => ({ name, shape: [...t.shape] })) };
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const headerEnd = 8 + json.length;
  const dataStart = Math.ceil(headerEnd / 4) * 4;
  const prefix = Buffer.alloc(dataStart);
  prefix.write(MAGIC, 0, 'latin1');
  prefix.writeUInt32LE(json.length, 4);
  json.copy(prefix, 8);
  mkdirSync(dirname(path), { recursive: true });
  const temporary = `${path}.tmp-${process.pid}`;
  const fd = openSync(temporary, 'w');
  try {
    writeSync(fd, prefix);
    for (const [, tensor] of tensors) {
      const values = tensor.dataSync() as Float32Array;
      const bytes = Buffer.alloc(values.length * 4);
      for (let i = 0; i < values.length; i++) bytes.writeFloatLE(values[i]!, i * 4);
      writeSync(fd, bytes);
    }
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temporary, path);
}

export function readCheckpoint<State>(path: string): Checkpoint<State> {
  const corrupt = (why: string): AppError => new AppError('CHECKPOINT_CORRUPT', `checkpoint ${path} is unusable: ${why}`, { path });
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    throw new AppError('CHECKPOINT_NOT_FOUND', `no checkpoint at ${path}: ${(error as Error).message}`, { path });
  }
  if (bytes.length < 8 || bytes.toString('latin1', 0, 4) !== MAGIC) throw corrupt('not an attnrec checkpoint');
  const headerLength = bytes.readUInt32LE(4);
  let header: Header;
  try {
    header = JSON.parse(bytes.toString('utf8', 8, 8 + headerLength)) as Header;
  } catch {
    throw corrupt('unreadable header');
  }
  if (header.formatVersion !== FORMAT_VERSION) throw corrupt(`format version ${header.formatVersion}, expected ${FORMAT_VERSION}`);
  let at = Math.ceil((8 + headerLength) / 4) * 4;
  const expected = at + header.tensors.reduce((n, t) => n + 4 * size(t.shape), 0);
  if (bytes.length !== expected) throw corrupt(`${bytes.length} bytes, the header describes ${expected}`);
  const tensors = new Map<string, { shape: number[]; values: Float32Array }>();
  for (const spec of header.tensors) {
    const values = new Float32Array(size(spec.shape));
    for (let i = 0; i < values.length; i++, at += 4) values[i] = bytes.readFloatLE(at);
    tensors.set(spec.name, { shape: spec.shape, values });
  }
  return { state: header.state as State, tensors };
}

/** Only the caller state of a checkpoint, without reading its tensors. */
export function readCheckpointState<State>(path: string): State {
  const corrupt = (why: string): AppError => new AppError('CHECKPOINT_CORRUPT', `checkpoint ${path} is unusable: ${why}`, { path });
  const fd = openSync(path, 'r');
  try {
    const prefix = Buffer.alloc(8);
    if (readSync(fd, prefix, 0, 8, 0) < 8 || prefix.toString('latin1', 0, 4) !== MAGIC) throw corrupt('not an attnrec checkpoint');
    const json = Buffer.alloc(prefix.readUInt32LE(4));
    if (readSync(fd, json, 0, json.length, 8) < json.length) throw corrupt('truncated header');
    let header: Header;
    try {
      header = JSON.parse(json.toString('utf8')) as Header;
    } catch {
      throw corrupt('unreadable header');
    }
    if (header.formatVersion !== FORMAT_VERSION) throw corrupt(`format version ${header.formatVersion}, expected ${FORMAT_VERSION}`);
    return header.state as State;
  } finally {
    closeSync(fd);
  }
}

export function removeCheckpoint(path: string): void {
  rmSync(path, { force: true });
}

function size(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}
