import { readFileSync } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { endianness } from 'node:os';
import { join } from 'node:path';
import { AppError } from '../errors.js';
import { ModelConfigSchema, type ModelConfig } from './config.js';
import { CooccurrenceBlend, type CooccurrenceBlendParams } from './cooccurrence-blend.js';
import { rowSteps, runSteps, runStepsPausing, type Steps } from './steps.js';

/**
 * A model on disk in TensorFlow.js's weights-manifest layout: model.json
 * (format, the members' configs, weight specs) and weights.bin (float32,
 * little-endian, in manifest order), readable with tf.io.decodeWeights by
 * other tools. Format version 2 holds an ensemble: member k's weights are
 * named members/k/<name>; version 1 (one model, unprefixed names) still
 * loads, as a one-member ensemble. A version with a co-occurrence term
 * (CooccurrenceBlend) also has cooccurrence.bin, described in model.json:
 * each item's neighbours as CSR, int32 offsets [numItems + 2], int32 items
 * and float32 weights [entries], little-endian. Files are written to
 * temporary names and renamed, model.json last, so a crash never leaves a
 * half-written artifact under the final name.
 *
 * This module reads artifacts into plain arrays and imports no TensorFlow.js:
 * the serving path (ServedModel in every inference worker) reads through it,
 * and importing @tensorflow/tfjs cost each worker ~110 MB of memory it never
 * used (RSS measured after the import alone). Writing, and building a
 * TensorFlow.js model, are in artifact.ts.
 */
export const ARTIFACT_FORMAT = 'attnrec-sasrec';
export const ARTIFACT_VERSION = 2;

export interface WeightSpec {
  readonly name: string;
  readonly shape: number[];
  readonly dtype: 'float32';
}

export interface ModelJson {
  readonly format: string;
  readonly formatVersion: number;
  /** The first member's (version 1: the model's). */
  readonly config: unknown;
  /** Version 2: every member's. */
  readonly members?: unknown[];
  readonly weightsManifest: { readonly paths: string[]; readonly weights: WeightSpec[] }[];
  /** The co-occurrence term: its parameters and the shape of cooccurrence.bin. */
  readonly cooccurrence?: { readonly path: string; readonly params: CooccurrenceBlendParams; readonly numItems: number; readonly entries: number };
  /** Anything the writer wants to keep beside the weights (vocabulary, training metadata). */
  readonly extra?: unknown;
}

export const COOCCURRENCE_FILE = 'cooccurrence.bin';

export type MemberWeights = ReadonlyMap<string, { readonly shape: readonly number[]; readonly values: Float32Array }>;

/** A model version's artifact as plain arrays: what both TensorFlow.js (loadModel) and the serving kernels (InferenceEngine) build from. */
export interface ArtifactData {
  /** Every member's configuration (one: a plain SASRec). */
  readonly configs: readonly ModelConfig[];
  /** Every member's weights, in the same order. */
  readonly members: readonly MemberWeights[];
  readonly blend?: CooccurrenceBlend;
  readonly extra: unknown;
}

/**
 * Reads and checks an artifact without building a model: formats 1 and 2,
 * the configurations, the weights' byte count against the manifest, and the
 * co-occurrence term. Whether each weight's shape fits its configuration is
 * checked by whoever builds from it (loadModel, InferenceEngine).
 */
export function readArtifact(directory: string): ArtifactData {
  const { json, configs } = readModelJson(directory);
  const weights = readArtifactFile(directory, () => readFileSync(join(directory, 'weights.bin')));
  const cooccurrence = json.cooccurrence ? readArtifactFile(directory, () => readFileSync(join(directory, COOCCURRENCE_FILE))) : undefined;
  return runSteps(parseArtifact(directory, json, configs, weights, cooccurrence));
}

/**
 * readArtifact with the files read off the calling thread (libuv's pool), so
 * a thread that serves requests can answer them while the bytes come in;
 * with `shared`, into shared memory (see ServedModel.loadSharing).
 */
export async function readArtifactAsync(directory: string, options: { readonly shared?: boolean } = {}): Promise<ArtifactData> {
  const { json, configs } = parseModelJson(directory, await readArtifactFileAsync(directory, () => readFile(join(directory, 'model.json'), 'utf8')));
  const read = (name: string) => readArtifactFileAsync(directory, () => (options.shared ? readShared(join(directory, name)) : readFile(join(directory, name))));
  const [weights, cooccurrence] = await Promise.all([read('weights.bin'), json.cooccurrence ? read(COOCCURRENCE_FILE) : undefined]);
  // The co-occurrence term's checks in pieces: in one, amazon-games' 1.4 M neighbours held a fresh worker's thread for
  // tens of milliseconds (interpreted until optimised), the requests queued to it waiting.
  return runStepsPausing(parseArtifact(directory, json, configs, weights, cooccurrence), () => nextTurn());
}

/** A file's bytes in shared memory (a SharedArrayBuffer): the weights and term it holds can be posted to other threads without a copy. */
async function readShared(path: string): Promise<Buffer> {
  const file = await open(path, 'r');
  try {
    const { size } = await file.stat();
    const bytes = Buffer.from(new SharedArrayBuffer(size));
    let at = 0;
    while (at < size) {
      const { bytesRead } = await file.read(bytes, at, size - at, at);
      if (bytesRead === 0) throw new Error(`${path} ended after ${at} of ${size} bytes`);
      at += bytesRead;
    }
    return bytes;
  } finally {
    await file.close();
  }
}

/** ARTIFACT_CORRUPT naming the artifact's directory and why. */
export function corrupt(directory: string, why: string): AppError {
  return new AppError('ARTIFACT_CORRUPT', `model artifact in ${directory} is unusable: ${why}`, { directory });
}

/** A file of the artifact read here, or ARTIFACT_CORRUPT when it cannot be. */
function readArtifactFile<T extends string | Buffer>(directory: string, read: () => T): T {
  try {
    return read();
  } catch (error) {
    throw corrupt(directory, (error as Error).message);
  }
}

/** A file of the artifact read off this thread, or ARTIFACT_CORRUPT when it cannot be. */
function readArtifactFileAsync<T extends string | Buffer>(directory: string, read: () => Promise<T>): Promise<T> {
  return read().catch((error: unknown) => Promise.reject(corrupt(directory, (error as Error).message)));
}

function* parseArtifact(directory: string, json: ModelJson, configs: ModelConfig[], bytes: Buffer, cooccurrence: Buffer | undefined): Steps<ArtifactData> {
  const specs = json.weightsManifest?.[0]?.weights ?? [];
  const expectedBytes = specs.reduce((n, s) => n + 4 * s.shape.reduce((a, b) => a * b, 1), 0);
  if (bytes.length !== expectedBytes) throw corrupt(directory, `weights.bin has ${bytes.length} bytes, the manifest describes ${expectedBytes}`);
  const floats = littleEndian(bytes, 0, bytes.length / 4, Float32Array);
  const members = configs.map(() => new Map<string, { shape: number[]; values: Float32Array }>());
  let at = 0;
  for (const spec of specs) {
    const size = spec.shape.reduce((a, b) => a * b, 1);
    const match = json.formatVersion === 1 ? { k: 0, name: spec.name } : /^members\/(\d+)\/(.+)$/.exec(spec.name)?.slice(1);
    const [k, name] = Array.isArray(match) ? [Number(match[0]), match[1]!] : match ? [match.k, match.name] : [-1, spec.name];
    const member = members[k];
    if (!member || member.has(name)) throw corrupt(directory, `weight ${spec.name} names no member or is given twice`);
    member.set(name, { shape: [...spec.shape], values: floats.subarray(at, at + size) });
    at += size;
  }
  if (!json.cooccurrence || !cooccurrence) return { configs, members, extra: json.extra };
  try {
    return { configs, members, blend: yield* readBlend(cooccurrence, json.cooccurrence, configs[0]!.numItems), extra: json.extra };
  } catch (error) {
    throw corrupt(directory, (error as Error).message);
  }
}

/** An artifact's configurations and extra data from model.json alone (no weights read): what a process that only routes requests needs. */
export function readArtifactInfo(directory: string): { configs: readonly ModelConfig[]; extra: unknown } {
  const { json, configs } = readModelJson(directory);
  return { configs, extra: json.extra };
}

function readModelJson(directory: string): { json: ModelJson; configs: ModelConfig[] } {
  return parseModelJson(directory, readArtifactFile(directory, () => readFileSync(join(directory, 'model.json'), 'utf8')));
}

function parseModelJson(directory: string, text: string): { json: ModelJson; configs: ModelConfig[] } {
  let json: ModelJson;
  try {
    json = JSON.parse(text) as ModelJson;
  } catch (error) {
    throw corrupt(directory, (error as Error).message);
  }
  if (json.format !== ARTIFACT_FORMAT || (json.formatVersion !== 1 && json.formatVersion !== ARTIFACT_VERSION)) throw corrupt(directory, `unknown format ${json.format} v${json.formatVersion}`);
  const rawConfigs = json.formatVersion === 1 ? [json.config] : (json.members ?? []);
  const configs: ModelConfig[] = [];
  for (const raw of rawConfigs) {
    const parsed = ModelConfigSchema.safeParse(raw);
    if (!parsed.success) throw corrupt(directory, `bad config: ${parsed.error.issues[0]?.message}`);
    configs.push(parsed.data);
  }
  if (configs.length === 0) throw corrupt(directory, 'no members');
  return { json, configs };
}

/**
 * `count` 32-bit values of a file's bytes from `byteOffset`, stored
 * little-endian: a view of the bytes themselves where the host is
 * little-endian and they are aligned (no copy: a 26 MB weights file was
 * copied in 65 ms, its first touch of fresh pages included), else a copy.
 */
function littleEndian<T extends Float32Array | Int32Array>(bytes: Buffer, byteOffset: number, count: number, Type: { new (buffer: ArrayBuffer, byteOffset: number, length: number): T; new (length: number): T }): T {
  const start = bytes.byteOffset + byteOffset;
  if (endianness() === 'LE' && start % 4 === 0) return new Type(bytes.buffer as ArrayBuffer, start, count);
  const out = new Type(count);
  const float = out instanceof Float32Array;
  for (let i = 0; i < count; i++) out[i] = float ? bytes.readFloatLE(byteOffset + 4 * i) : bytes.readInt32LE(byteOffset + 4 * i);
  return out;
}

function* readBlend(bytes: Buffer, spec: NonNullable<ModelJson['cooccurrence']>, numItems: number): Steps<CooccurrenceBlend> {
  const { params, entries } = spec;
  if (spec.numItems !== numItems) throw new Error(`the co-occurrence term covers ${spec.numItems} items, the model ${numItems}`);
  if (![params?.weight, params?.scale, params?.decay].every((v) => typeof v === 'number' && Number.isFinite(v) && v >= 0)) throw new Error('the co-occurrence term has bad parameters');
  // The repeat part: absent before versions had it; a weight without a decay in [0, 1] is not one we wrote.
  const { repeatWeight = 0, repeatDecay = 1 } = params;
  if (!(Number.isFinite(repeatWeight) && repeatWeight >= 0 && Number.isFinite(repeatDecay) && repeatDecay >= 0 && repeatDecay <= 1)) throw new Error('the repeat term has bad parameters');
  const rows = numItems + 2;
  if (!Number.isInteger(entries) || entries < 0 || bytes.length !== 4 * (rows + 2 * entries)) throw new Error(`${spec.path} has ${bytes.length} bytes, model.json describes ${4 * (rows + 2 * entries)}`);
  const offsets = littleEndian(bytes, 0, rows, Int32Array);
  const items = littleEndian(bytes, 4 * rows, entries, Int32Array);
  const weights = littleEndian(bytes, 4 * (rows + entries), entries, Float32Array);
  yield* rowSteps(0, rows - 1, 1, (i) => {
    if (offsets[i]! > offsets[i + 1]!) throw new Error(`${spec.path}: offsets decrease at item ${i}`);
  });
  if (offsets[0] !== 0 || offsets[rows - 1] !== entries) throw new Error(`${spec.path}: offsets do not span the entries`);
  yield* rowSteps(0, entries, 1, (e) => {
    const item = items[e]!;
    if (item < 1 || item > numItems) throw new Error(`${spec.path}: neighbour ${item} is outside 1..${numItems}`);
  });
  return new CooccurrenceBlend({ numItems, offsets, items, weights }, params);
}
