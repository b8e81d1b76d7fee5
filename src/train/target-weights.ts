import { normaliseEventType } from '../data/import/event-types.js';
import { FieldError } from '../data/import/fields.js';
import { AppError } from '../errors.js';

/**
 * TrainingOptions.targetWeights from the training job's flags:
 * `--target-weights view=1,cart=2,purchase=4` gives each named event type its
 * weight (types not named weigh 1), and `--target-types purchase,cart` trains
 * only the positions followed by one of those types (every other type weighs
 * 0). Names are event types as imported (aliases such as add_to_cart work);
 * `known` maps each stored type's name to its id. Undefined when neither
 * flag changes anything.
 */
export function parseTargetWeights(weights: string | undefined, types: string | undefined, known: ReadonlyMap<string, number>): number[] | undefined {
  if (weights === undefined && types === undefined) return undefined;
  const size = Math.max(3, ...known.values()) + 1;
  const out = new Array<number>(size).fill(1);
  out[0] = 0;
  const idOf = (raw: string, flag: string): number => {
    const name = normaliseEventType(raw);
    const id = name instanceof FieldError ? undefined : known.get(name);
    if (id === undefined) throw new AppError('USAGE', `--${flag}: unknown event type '${raw.trim()}' (known: ${[...known.keys()].join(', ')})`);
    return id;
  };
  for (const part of weights === undefined ? [] : weights.split(',')) {
    const match = /^\s*([^=]+?)\s*=\s*([^=]+?)\s*$/.exec(part);
    if (!match) throw new AppError('USAGE', `--target-weights takes type=weight pairs separated by commas (view=1,cart=2,purchase=4); got '${part}'`);
    const weight = Number(match[2]);
    if (!Number.isFinite(weight) || weight < 0 || weight > 1000) throw new AppError('USAGE', `--target-weights: the weight of ${match[1]} must be a number from 0 to 1000; got '${match[2]}'`);
    out[idOf(match[1]!, 'target-weights')] = weight;
  }
  if (types !== undefined) {
    const keep = new Set(types.split(',').map((name) => idOf(name, 'target-types')));
    for (let id = 1; id < size; id++) if (!keep.has(id)) out[id] = 0;
  }
  if (out.every((w, id) => id === 0 || w === 0)) throw new AppError('USAGE', 'every event type weighs 0: nothing would be trained');
  return out;
}
