import type { MemberWeights } from './artifact-format.js';
import type { ModelConfig } from './config.js';
import { instantiateKernel, layoutKernelMemory, type KernelMemory } from './kernel-module.js';
import { rowSteps, runSteps, type Steps } from './steps.js';

/**
 * The SASRec forward pass for serving, on the CPU in the SIMD kernel
 * kernels/inference.ts: the same maths as SasRec.forward without dropout,
 * in a fraction of the time, because
 *  - serving needs the last position's state only: the last block computes
 *    keys and values at every position, but its query, attention row,
 *    output projection and feed-forward at the last position alone;
 *  - histories are not padded: a batch is its histories' rows one after
 *    another, every projection one matrix product over all of them, the
 *    attention within each history's own span;
 *  - weights and work buffers live in the kernel's memory, laid out once:
 *    a pass copies in item indices and copies out one query per history,
 *    where TensorFlow.js dispatched some forty ops and allocated a tensor
 *    for each.
 * An ensemble's members run one after another; their last states, each
 * divided by the member count, are written side by side (see
 * SasRecEnsemble): one query per history, as the output table expects.
 *
 * `forward` with `allPositions` runs every block at every position and
 * returns the attention weights, for inspection.
 */
export interface EngineHistory {
  /** Model item indices 1..numItems, oldest first, at least one; only the last maxLength are read. */
  readonly items: readonly number[];
  /** Event-type ids, one per item (0 where unknown). */
  readonly types: readonly number[];
}

/**
 * The layout of a query, and so of a row of the output table it multiplies:
 * the members side by side, each its dim columns and then, where it has an
 * item bias, one more. columns[m]: member m's first column.
 */
export function queryLayout(configs: readonly Pick<ModelConfig, 'dim' | 'itemBias'>[]): { readonly columns: readonly number[]; readonly width: number } {
  const columns: number[] = [];
  let width = 0;
  for (const c of configs) {
    columns.push(width);
    width += c.dim + (c.itemBias ? 1 : 0);
  }
  return { columns, width };
}

/**
 * Where the members' item embeddings already sit, row by row: the serving
 * output table (see ServedModel), rows laid out as queries (queryLayout).
 * Given them, the engine copies the rows a pass needs into a work buffer
 * instead of keeping its own copy of the table (the largest of the weights:
 * 12 MB per member of the default model, per worker).
 */
export interface ItemRows {
  /** Member m's embedding of item r starts at table[r * stride + queryLayout(configs).columns[m]]. */
  readonly table: Float32Array;
  readonly stride: number;
}

/** Histories per pass: larger batches are run as several passes. */
export const ENGINE_MAX_BATCH = 64;
const EPSILON = 1e-8;

interface Exports {
  readonly memory: KernelMemory;
  gemm(m: number, n: number, k: number, a: number, lda: number, b: number, ldb: number, c: number, ldc: number, bias: number, mode: number): void;
  layerNorm(m: number, d: number, x: number, ldx: number, out: number, ldo: number, gamma: number, beta: number, eps: number): void;
  embed(m: number, d: number, items: number, positions: number, types: number, itemTable: number, positionTable: number, typeTable: number, scale: number, out: number): void;
  attend(t: number, from: number, heads: number, dk: number, scale: number, q: number, ldq: number, k: number, v: number, ldkv: number, out: number, ldo: number, weights: number, scratch: number): void;
  copyRows(m: number, d: number, src: number, lds: number, out: number, ldo: number, scale: number): void;
}

const STORE = 0;
const ADD = 1;
const RELU = 2;

/** Byte offsets of one block's weights in kernel memory. */
interface BlockAt {
  ln1Gamma: number;
  ln1Beta: number;
  /** [d, 3d]: row k is wq[k] | wk[k] | wv[k]. */
  wqkv: number;
  bqkv: number;
  wo: number;
  bo: number;
  ln2Gamma: number;
  ln2Beta: number;
  w1: number;
  b1: number;
  w2: number;
  b2: number;
}

interface MemberAt {
  readonly config: ModelConfig;
  /** 0 when the rows come from ItemRows. */
  readonly item: number;
  readonly position: number;
  /** 0 when the member has no event-type embedding. */
  readonly type: number;
  readonly blocks: BlockAt[];
  readonly finalGamma: number;
  readonly finalBeta: number;
  /** First column of this member's part of the query. */
  readonly column: number;
}

/** Work buffers (byte offsets), sized for ENGINE_MAX_BATCH histories of maxLength. */
interface Work {
  items: number;
  positions: number;
  types: number;
  x: number;
  h: number;
  qkv: number;
  context: number;
  ffn: number;
  lastX: number;
  lastH: number;
  lastQ: number;
  lastContext: number;
  lastFfn: number;
  weights: number;
  scratch: number;
  /** With ItemRows: the pass's item rows, gathered, and the row numbers 0.. that index them. */
  gathered: number;
  rowIds: number;
}

export class InferenceEngine {
  /** Width of a query: Σ members (dim, + 1 with an item bias). */
  readonly width: number;
  readonly maxLength: number;
  readonly heads: number;
  readonly blocks: number;
  private readonly wasm: Exports;
  private readonly members: MemberAt[];
  private readonly work: Work;
  private readonly itemRows: ItemRows | undefined;

  /**
   * Throws a RangeError naming the weight when one is missing or has the wrong shape for its
   * configuration. The weights are copied in before the constructor returns, or, given
   * `deferCopy`, handed over as steps the caller runs before first use (see InferenceEngine.build).
   * Given `itemRows`, the item embeddings are read from there (checked here, not copied).
   */
  constructor(configs: readonly ModelConfig[], weights: readonly MemberWeights[], options: { readonly deferCopy?: (copy: Steps<void>) => void; readonly itemRows?: ItemRows } = {}) {
    const { deferCopy, itemRows } = options;
    this.itemRows = itemRows;
    const wasm = instantiateKernel<Exports>('inference');
    if (!wasm) throw new Error('the inference kernel is not built: run `npm run build:kernels`');
    this.wasm = wasm;
    const first = configs[0]!;
    this.maxLength = first.maxLength;
    this.heads = first.heads;
    this.blocks = first.blocks;
    const maxDim = Math.max(...configs.map((c) => c.dim));
    const maxFfn = Math.max(...configs.map((c) => c.ffnDim));
    const rows = ENGINE_MAX_BATCH * this.maxLength;
    const B = ENGINE_MAX_BATCH;
    const T = this.maxLength;

    const take = (k: number, name: string, shape: readonly number[]): Float32Array => {
      const w = weights[k]?.get(name);
      if (!w || w.shape.join('x') !== shape.join('x')) throw new RangeError(`member ${k}: weight ${name} [${w?.shape ?? 'missing'}] does not fit its configuration [${shape}]`);
      return w.values;
    };
    // One layout for everything: the weights, then the work buffers; memory never grows after this.
    const tensors: { member: number; name: string; shape: number[] }[] = [];
    configs.forEach((c, k) => {
      const { numItems, numEventTypes, maxLength, dim: d, ffnDim: f } = c;
      if (!itemRows) tensors.push({ member: k, name: 'item_embedding', shape: [numItems + 1, d] });
      tensors.push({ member: k, name: 'position_embedding', shape: [maxLength, d] });
      if (numEventTypes > 0) tensors.push({ member: k, name: 'type_embedding', shape: [numEventTypes + 1, d] });
      for (let b = 0; b < c.blocks; b++) {
        // Stored names, but for the fused projections wqkv and bqkv (made from wq, wk, wv and bq, bk, bv).
        for (const [name, shape] of [
          ['ln1Gamma', [d]], ['ln1Beta', [d]], ['wqkv', [d, 3 * d]], ['bqkv', [3 * d]], ['wo', [d, d]], ['bo', [d]],
          ['ln2Gamma', [d]], ['ln2Beta', [d]], ['w1', [d, f]], ['b1', [f]], ['w2', [f, d]], ['b2', [d]],
        ] as const) tensors.push({ member: k, name: `blocks/${b}/${name}`, shape: [...shape] });
      }
      tensors.push({ member: k, name: 'final/gamma', shape: [d] }, { member: k, name: 'final/beta', shape: [d] });
    });
    const gatheredFloats = itemRows ? rows * maxDim : 0;
    const workFloats = [rows, rows, rows, rows * maxDim, rows * maxDim, rows * 3 * maxDim, rows * maxDim, rows * maxFfn, B * maxDim, B * maxDim, B * maxDim, B * maxDim, B * maxFfn, this.heads * T * T, T + 8, gatheredFloats, itemRows ? rows : 0];
    const offsets = layoutKernelMemory(wasm.memory, [...tensors.map((t) => 4 * t.shape.reduce((a, b) => a * b, 1)), ...workFloats.map((n) => 4 * n)]);
    const at = new Map(tensors.map((t, i) => [`${t.member}/${t.name}`, offsets[i]!]));
    const [items, positions, types, x, h, qkv, context, ffn, lastX, lastH, lastQ, lastContext, lastFfn, attention, scratch, gathered, rowIds] = offsets.slice(tensors.length) as number[];
    this.work = { items: items!, positions: positions!, types: types!, x: x!, h: h!, qkv: qkv!, context: context!, ffn: ffn!, lastX: lastX!, lastH: lastH!, lastQ: lastQ!, lastContext: lastContext!, lastFfn: lastFfn!, weights: attention!, scratch: scratch!, gathered: gathered!, rowIds: rowIds! };
    const layout = queryLayout(configs);
    if (itemRows) {
      new Int32Array(wasm.memory.buffer, rowIds!, rows).forEach((_, r, ids) => (ids[r] = r));
      configs.forEach((c, k) => {
        take(k, 'item_embedding', [c.numItems + 1, c.dim]);
        if (layout.width > itemRows.stride || itemRows.table.length < (c.numItems + 1) * itemRows.stride) {
          throw new RangeError(`member ${k}: the item rows given do not hold ${c.numItems + 1} rows of ${c.dim} values`);
        }
      });
    }

    const floats = (offset: number, n: number): Float32Array => new Float32Array(wasm.memory.buffer, offset, n);
    // Every weight is found and checked here, before anything is copied: a deferred copy cannot fail on a shape.
    type CopyStep =
      | { readonly kind: 'plain'; readonly target: Float32Array; readonly cols: number; readonly source: Float32Array }
      | { readonly kind: 'wqkv' | 'bqkv'; readonly target: Float32Array; readonly d: number; readonly q: Float32Array; readonly k: Float32Array; readonly v: Float32Array };
    const plan = tensors.map((t): CopyStep => {
      const target = floats(at.get(`${t.member}/${t.name}`)!, t.shape.reduce((a, b) => a * b, 1));
      const [, block, part] = /^blocks\/(\d+)\/(wqkv|bqkv)$/.exec(t.name) ?? [];
      if (part === undefined) return { kind: 'plain', target, cols: t.shape.length > 1 ? t.shape[t.shape.length - 1]! : target.length, source: take(t.member, t.name, t.shape) };
      const d = t.shape[0]! / (part === 'bqkv' ? 3 : 1);
      const [q, k, v] = ['q', 'k', 'v'].map((p) => take(t.member, `blocks/${block}/${part[0]}${p}`, part === 'bqkv' ? [d] : [d, d])) as [Float32Array, Float32Array, Float32Array];
      return { kind: part === 'bqkv' ? 'bqkv' : 'wqkv', target, d, q, k, v };
    });
    const copy = (function* (): Steps<void> {
      for (const step of plan) {
        const { target } = step;
        if (step.kind === 'plain') {
          // Row by row in pieces: the item embeddings are most of the model (and of its first page touches).
          const { cols, source } = step;
          yield* rowSteps(0, target.length / cols, cols, (r) => target.set(source.subarray(r * cols, (r + 1) * cols), r * cols));
          continue;
        }
        // The three projections side by side: one product gives Q, K and V (or K and V alone, from column d).
        const { d, q, k, v } = step;
        if (step.kind === 'bqkv') {
          target.set(q, 0);
          target.set(k, d);
          target.set(v, 2 * d);
          continue;
        }
        for (let r = 0; r < d; r++) {
          target.set(q.subarray(r * d, (r + 1) * d), r * 3 * d);
          target.set(k.subarray(r * d, (r + 1) * d), r * 3 * d + d);
          target.set(v.subarray(r * d, (r + 1) * d), r * 3 * d + 2 * d);
        }
      }
    })();
    if (deferCopy) deferCopy(copy);
    else runSteps(copy);

    this.members = configs.map((c, k) => {
      const get = (name: string): number => at.get(`${k}/${name}`)!;
      const member: MemberAt = {
        config: c,
        item: itemRows ? 0 : get('item_embedding'),
        position: get('position_embedding'),
        type: c.numEventTypes > 0 ? get('type_embedding') : 0,
        blocks: Array.from({ length: c.blocks }, (_, b) => ({
          ln1Gamma: get(`blocks/${b}/ln1Gamma`),
          ln1Beta: get(`blocks/${b}/ln1Beta`),
          wqkv: get(`blocks/${b}/wqkv`),
          bqkv: get(`blocks/${b}/bqkv`),
          wo: get(`blocks/${b}/wo`),
          bo: get(`blocks/${b}/bo`),
          ln2Gamma: get(`blocks/${b}/ln2Gamma`),
          ln2Beta: get(`blocks/${b}/ln2Beta`),
          w1: get(`blocks/${b}/w1`),
          b1: get(`blocks/${b}/b1`),
          w2: get(`blocks/${b}/w2`),
          b2: get(`blocks/${b}/b2`),
        })),
        finalGamma: get('final/gamma'),
        finalBeta: get('final/beta'),
        column: layout.columns[k]!,
      };
      return member;
    });
    this.width = layout.width;
  }

  /** The constructor as steps: the weights' copy (the item embeddings' first page touches, ~100 ms) in pieces. */
  static *build(configs: readonly ModelConfig[], weights: readonly MemberWeights[], itemRows?: ItemRows): Steps<InferenceEngine> {
    let copy: Steps<void> | undefined;
    const engine = new InferenceEngine(configs, weights, { deferCopy: (steps) => (copy = steps), ...(itemRows && { itemRows }) });
    yield;
    yield* copy!;
    return engine;
  }

  /** The query of each history's last position, [histories.length, width] row-major. */
  queries(histories: readonly EngineHistory[]): Float32Array {
    const out = new Float32Array(histories.length * this.width);
    for (let from = 0; from < histories.length; from += ENGINE_MAX_BATCH) {
      const batch = histories.slice(from, from + ENGINE_MAX_BATCH);
      this.pass(batch, false, out.subarray(from * this.width));
    }
    return out;
  }

  /**
   * One history through every block at every position: its query and the
   * attention weights of every layer, member by member (member m's block b
   * at m · blocks + b), each [heads, T, T] (row: the position attending).
   */
  forward(history: EngineHistory): { query: Float32Array; layers: Float32Array[] } {
    const query = new Float32Array(this.width);
    const layers: Float32Array[] = [];
    this.pass([history], true, query, layers);
    return { query, layers };
  }

  private pass(histories: readonly EngineHistory[], allPositions: boolean, out: Float32Array, layers?: Float32Array[]): void {
    const { wasm, work } = this;
    const n = histories.length;
    const starts: number[] = [];
    let rows = 0;
    const memory = wasm.memory.buffer;
    const items = new Int32Array(memory, work.items, n * this.maxLength);
    const positions = new Int32Array(memory, work.positions, n * this.maxLength);
    const types = new Int32Array(memory, work.types, n * this.maxLength);
    const lengths: number[] = [];
    for (const history of histories) {
      if (history.items.length < 1 || history.types.length !== history.items.length) throw new RangeError(`a history must hold at least one item and one type per item; got ${history.items.length} items, ${history.types.length} types`);
      // The last maxLength events, as the training windows and the left-padded batches read them.
      const T = Math.min(history.items.length, this.maxLength);
      const skip = history.items.length - T;
      starts.push(rows);
      lengths.push(T);
      for (let j = 0; j < T; j++) {
        items[rows + j] = history.items[skip + j]!;
        types[rows + j] = history.types[skip + j]!;
        positions[rows + j] = this.maxLength - T + j;
      }
      rows += T;
    }
    const K = this.members.length;
    const float = 4;
    for (const member of this.members) {
      const { dim: d, ffnDim: f, heads, numItems, numEventTypes } = member.config;
      for (let r = 0; r < rows; r++) {
        if (items[r]! < 1 || items[r]! > numItems) throw new RangeError(`item index ${items[r]} is outside 1..${numItems}`);
        if (types[r]! < 0 || types[r]! > numEventTypes) types[r] = 0;
      }
      const dk = d / heads;
      const scale = 1 / Math.sqrt(dk);
      let itemTable = member.item;
      let itemIds = work.items;
      if (this.itemRows) {
        // The pass's rows from the shared table into row r of the work buffer, read as item r.
        const { table, stride } = this.itemRows;
        const gathered = new Float32Array(memory, work.gathered, rows * d);
        for (let r = 0; r < rows; r++) {
          const from = items[r]! * stride + member.column;
          gathered.set(table.subarray(from, from + d), r * d);
        }
        itemTable = work.gathered;
        itemIds = work.rowIds;
      }
      wasm.embed(rows, d, itemIds, work.positions, work.types, itemTable, member.position, member.type, Math.sqrt(d), work.x);
      member.blocks.forEach((block, b) => {
        const last = b === member.blocks.length - 1 && !allPositions;
        wasm.layerNorm(rows, d, work.x, d, work.h, d, block.ln1Gamma, block.ln1Beta, EPSILON);
        if (!last) {
          wasm.gemm(rows, 3 * d, d, work.h, d, block.wqkv, 3 * d, work.qkv, 3 * d, block.bqkv, STORE);
          histories.forEach((_, i) => {
            const T = lengths[i]!;
            const qkv = work.qkv + starts[i]! * 3 * d * float;
            wasm.attend(T, 0, heads, dk, scale, qkv, 3 * d, qkv + d * float, qkv + 2 * d * float, 3 * d, work.context + starts[i]! * d * float, d, layers ? work.weights : 0, work.scratch);
            if (layers) layers.push(new Float32Array(memory, work.weights, heads * T * T).slice());
          });
          wasm.gemm(rows, d, d, work.context, d, block.wo, d, work.x, d, block.bo, ADD);
          wasm.layerNorm(rows, d, work.x, d, work.h, d, block.ln2Gamma, block.ln2Beta, EPSILON);
          wasm.gemm(rows, f, d, work.h, d, block.w1, f, work.ffn, f, block.b1, RELU);
          wasm.gemm(rows, d, f, work.ffn, f, block.w2, d, work.x, d, block.b2, ADD);
          return;
        }
        // The last block at the last position: keys and values everywhere, the rest for one row per history.
        wasm.gemm(rows, 2 * d, d, work.h, d, block.wqkv + d * float, 3 * d, work.qkv + d * float, 3 * d, block.bqkv + d * float, STORE);
        histories.forEach((_, i) => {
          const lastRow = starts[i]! + lengths[i]! - 1;
          wasm.copyRows(1, d, work.h + lastRow * d * float, d, work.lastH + i * d * float, d, 1);
          wasm.copyRows(1, d, work.x + lastRow * d * float, d, work.lastX + i * d * float, d, 1);
        });
        wasm.gemm(n, d, d, work.lastH, d, block.wqkv, 3 * d, work.lastQ, d, block.bqkv, STORE);
        histories.forEach((_, i) => {
          const T = lengths[i]!;
          const qkv = work.qkv + starts[i]! * 3 * d * float;
          wasm.attend(T, T - 1, heads, dk, scale, work.lastQ + i * d * float, d, qkv + d * float, qkv + 2 * d * float, 3 * d, work.lastContext + i * d * float, d, 0, work.scratch);
        });
        wasm.gemm(n, d, d, work.lastContext, d, block.wo, d, work.lastX, d, block.bo, ADD);
        wasm.layerNorm(n, d, work.lastX, d, work.lastH, d, block.ln2Gamma, block.ln2Beta, EPSILON);
        wasm.gemm(n, f, d, work.lastH, d, block.w1, f, work.lastFfn, f, block.b1, RELU);
        wasm.gemm(n, d, f, work.lastFfn, f, block.w2, d, work.lastX, d, block.b2, ADD);
      });
      if (allPositions) {
        histories.forEach((_, i) => wasm.copyRows(1, d, work.x + (starts[i]! + lengths[i]! - 1) * d * float, d, work.lastX + i * d * float, d, 1));
      }
      wasm.layerNorm(n, d, work.lastX, d, work.lastH, d, member.finalGamma, member.finalBeta, EPSILON);
      const states = new Float32Array(memory, work.lastH, n * d);
      for (let i = 0; i < n; i++) {
        const row = out.subarray(i * this.width + member.column);
        for (let j = 0; j < d; j++) row[j] = K === 1 ? states[i * d + j]! : states[i * d + j]! / K;
        if (member.config.itemBias) row[d] = 1 / K;
      }
    }
  }
}
