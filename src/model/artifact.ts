import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { AppError } from '../errors.js';
import { ModelConfigSchema, type ModelConfig } from './config.js';
import { SasRecEnsemble } from './ensemble.js';
import { SasRec } from './sasrec.js';

/**
 * A model on disk in TensorFlow.js's weights-manifest layout: model.json
 * (format, the members' configs, weight specs) and weights.bin (float32,
 * little-endian, in manifest order), readable with tf.io.decodeWeights by
 * other tools. Format version 2 holds an ensemble: member k's weights are
 * named members/k/<name>; version 1 (one model, unprefixed names) still
 * loads, as a one-member ensemble. Files are written to temporary names and
 * renamed, so a crash never leaves a half-written artifact under the final
 * name.
 */
export const ARTIFACT_FORMAT = 'attnrec-sasrec';
export const ARTIFACT_VERSION = 2;

interface WeightSpec {
  readonly name: string;
  readonly shape: number[];
  readonly dtype: 'float32';
}

interface ModelJson {
  readonly format: string;
  readonly formatVersion: number;
  /** The first member's (version 1: the model's). */
  readonly config: unknown;
  /** Version 2: every member's. */
  readonly members?: unknown[];
  readonly weightsManifest: { readonly paths: string[]; readonly weights: WeightSpec[] }[];
  /** Anything the writer wants to keep beside the weights (vocabulary, training metadata). */
  readonly extra?: unknown;
}

export function saveModel(model: SasRecEnsemble, directory: string, extra?: unknown): void {
  mkdirSync(directory, { recursive: true });
  const named = model.members.flatMap((member, k) => member.namedVariables().map(([name, v]): [string, tf.Variable] => [`members/${k}/${name}`, v]));
  const specs: WeightSpec[] = named.map(([name, v]) => ({ name, shape: [...v.shape], dtype: 'float32' }));
  const parts = named.map(([, v]) => v.dataSync() as Float32Array);
  const bytes = Buffer.alloc(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const part of parts) {
    // Float32Array is host-endian; artifacts are little-endian everywhere, which this writes explicitly.
    for (let i = 0; i < part.length; i++) at = bytes.writeFloatLE(part[i]!, at);
  }
  const json: ModelJson = {
    format: ARTIFACT_FORMAT,
    formatVersion: ARTIFACT_VERSION,
    config: model.config,
    members: model.members.map((m) => m.config),
    weightsManifest: [{ paths: ['weights.bin'], weights: specs }],
    ...(extra !== undefined && { extra }),
  };
  writeAtomically(join(directory, 'weights.bin'), bytes);
  writeAtomically(join(directory, 'model.json'), `${JSON.stringify(json, null, 2)}\n`);
}

export function loadModel(directory: string): { model: SasRecEnsemble; extra: unknown } {
  const corrupt = (why: string): AppError => new AppError('ARTIFACT_CORRUPT', `model artifact in ${directory} is unusable: ${why}`, { directory });
  let json: ModelJson;
  let bytes: Buffer;
  try {
    json = JSON.parse(readFileSync(join(directory, 'model.json'), 'utf8')) as ModelJson;
    bytes = readFileSync(join(directory, 'weights.bin'));
  } catch (error) {
    throw corrupt((error as Error).message);
  }
  if (json.format !== ARTIFACT_FORMAT || (json.formatVersion !== 1 && json.formatVersion !== ARTIFACT_VERSION)) throw corrupt(`unknown format ${json.format} v${json.formatVersion}`);
  const rawConfigs = json.formatVersion === 1 ? [json.config] : (json.members ?? []);
  const configs: ModelConfig[] = [];
  for (const raw of rawConfigs) {
    const parsed = ModelConfigSchema.safeParse(raw);
    if (!parsed.success) throw corrupt(`bad config: ${parsed.error.issues[0]?.message}`);
    configs.push(parsed.data);
  }
  if (configs.length === 0) throw corrupt('no members');
  const members = configs.map((config) => new SasRec(config));
  let model: SasRecEnsemble;
  try {
    model = new SasRecEnsemble(members);
  } catch (error) {
    for (const m of members) m.dispose();
    throw corrupt((error as Error).message);
  }
  const specs = json.weightsManifest?.[0]?.weights ?? [];
  const byName = new Map(members.flatMap((member, k) => member.namedVariables().map(([name, v]): [string, tf.Variable] => [json.formatVersion === 1 ? name : `members/${k}/${name}`, v])));
  const fail = (why: string): never => {
    model.dispose();
    throw corrupt(why);
  };
  const expectedBytes = specs.reduce((n, s) => n + 4 * s.shape.reduce((a, b) => a * b, 1), 0);
  if (bytes.length !== expectedBytes) fail(`weights.bin has ${bytes.length} bytes, the manifest describes ${expectedBytes}`);
  if (specs.length !== byName.size) fail(`${specs.length} weights in the manifest, the model has ${byName.size}`);
  let at = 0;
  for (const spec of specs) {
    const variable = byName.get(spec.name);
    const size = spec.shape.reduce((a, b) => a * b, 1);
    if (!variable || variable.shape.join('x') !== spec.shape.join('x')) fail(`weight ${spec.name} [${spec.shape}] does not fit the model`);
    const values = new Float32Array(size);
    for (let i = 0; i < size; i++, at += 4) values[i] = bytes.readFloatLE(at);
    variable!.assign(tf.tensor(values, spec.shape));
  }
  return { model, extra: json.extra };
}

function writeAtomically(path: string, data: string | Buffer): void {
  const temporary = `${path}.tmp-${process.pid}`;
  writeFileSync(temporary, data);
  renameSync(temporary, path);
}
