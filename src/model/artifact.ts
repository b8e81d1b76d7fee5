import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { ARTIFACT_FORMAT, ARTIFACT_VERSION, COOCCURRENCE_FILE, corrupt, readArtifact, type ModelJson, type WeightSpec } from './artifact-format.js';
import type { CooccurrenceBlend } from './cooccurrence-blend.js';
import { SasRecEnsemble } from './ensemble.js';
import { SasRec } from './sasrec.js';

/** Writing an artifact (the format: artifact-format.ts) and building a TensorFlow.js model from one. */
export function saveModel(model: SasRecEnsemble, directory: string, extra?: unknown, blend?: CooccurrenceBlend): void {
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
    ...(blend && { cooccurrence: { path: COOCCURRENCE_FILE, params: blend.params, numItems: blend.neighbours.numItems, entries: blend.neighbours.items.length } }),
    ...(extra !== undefined && { extra }),
  };
  writeAtomically(join(directory, 'weights.bin'), bytes);
  if (blend) writeAtomically(join(directory, COOCCURRENCE_FILE), neighbourBytes(blend));
  writeAtomically(join(directory, 'model.json'), `${JSON.stringify(json, null, 2)}\n`);
}

/** One member's weights as stored: logical name ("blocks/0/wq") → shape and values. */
export function loadModel(directory: string): { model: SasRecEnsemble; blend?: CooccurrenceBlend; extra: unknown } {
  const data = readArtifact(directory);
  const members = data.configs.map((config) => new SasRec(config));
  let model: SasRecEnsemble;
  try {
    model = new SasRecEnsemble(members);
  } catch (error) {
    for (const m of members) m.dispose();
    throw corrupt(directory, (error as Error).message);
  }
  const stored = data.members.reduce((n, m) => n + m.size, 0);
  const expected = members.reduce((n, m) => n + m.namedVariables().length, 0);
  if (stored !== expected) {
    model.dispose();
    throw corrupt(directory, `${stored} weights in the manifest, the model has ${expected}`);
  }
  members.forEach((member, k) => {
    for (const [name, variable] of member.namedVariables()) {
      const weight = data.members[k]!.get(name);
      if (!weight || variable.shape.join('x') !== weight.shape.join('x')) {
        model.dispose();
        throw corrupt(directory, `weight ${data.configs.length > 1 || k > 0 ? `members/${k}/` : ''}${name} [${weight?.shape ?? 'missing'}] does not fit the model`);
      }
      variable.assign(tf.tensor(weight.values, [...weight.shape]));
    }
  });
  return data.blend ? { model, blend: data.blend, extra: data.extra } : { model, extra: data.extra };
}

function neighbourBytes(blend: CooccurrenceBlend): Buffer {
  const { offsets, items, weights } = blend.neighbours;
  const bytes = Buffer.alloc(4 * (offsets.length + items.length + weights.length));
  let at = 0;
  for (const v of offsets) at = bytes.writeInt32LE(v, at);
  for (const v of items) at = bytes.writeInt32LE(v, at);
  for (const v of weights) at = bytes.writeFloatLE(v, at);
  return bytes;
}

function writeAtomically(path: string, data: string | Buffer): void {
  const temporary = `${path}.tmp-${process.pid}`;
  writeFileSync(temporary, data);
  renameSync(temporary, path);
}
