/**
 * New items before the next training (issue 20, part 3): how often an item the model never saw reaches
 * the top 20 of the shoppers who go on to buy it, under several placements from the known items that
 * share its metadata (src/model/metadata-peers.ts): their mean embedding (at its own length or theirs),
 * their best score or the mean of their best 3, over finer groups (category, brand, price band, backing
 * off) or the category alone; against no metadata (the popularity-weighted mean of every known item's
 * row: where a typical popular item ranks) and a random slot. The rule is chosen on first views of the
 * launched items and reported on first purchases.
 *
 * Data: a shop of the shipped sample's kind with launches (scripts/generate-shop-sample.ts,
 * launchShare 0.1): a tenth of the items only exist from a launch day in the later part of the timeline
 * (days 55-85 of about 140; by day 55 about 55 % of the events have happened), so they are first seen there. The version is trained (`npm run train`,
 * defaults) on every event except those of the launched items, with the whole catalogue imported: it
 * never saw them. Then for every user's first purchase (and, for a bigger sample, first view) of a
 * launched item: the user's events before it, as serving encodes them (items the version knows), give
 * the state; every known item outside that history and every launched item already launched by then is
 * ranked; a hit is the launched item in the top 20.
 *
 *   npx tsx bench/new-items.ts [--users 8000] [--no-write]
 *
 * Writes bench/results/new-items-<timestamp>.json.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ROOT } from '../src/cli/processes.js';
import { openStore } from '../src/data/store.js';
import { selectBackend } from '../src/model/backend.js';
import { itemMetadata, metadataPeers, METADATA_LEVELS, SERVED_LEVELS, type ItemMetadata, type MetadataLevel } from '../src/model/metadata-peers.js';
import { ServedModel } from '../src/model/served-model.js';
import { generateShopSample, SHOP_SAMPLE_SEED } from '../scripts/generate-shop-sample.js';
import { machineFacts, writeBenchResult } from './machine.js';

const TOP = 20;
/** The rule the API serves (NewItemScores with SERVED_LEVELS), chosen on views with this benchmark. */
const SERVED_RULE = 'best item of the category, else the brand';
const LAUNCH_SHARE = 0.1;
const TYPES: Record<string, number> = { view: 1, cart: 2, purchase: 3 };

const { values } = parseArgs({ options: { users: { type: 'string', default: '8000' }, write: { type: 'boolean', default: true }, reuse: { type: 'boolean', default: false } }, allowNegative: true });
const users = Number(values.users);
const scratch = join(ROOT, 'bench', 'scratch', 'new-items');
const reuse = values.reuse && existsSync(join(scratch, 'shop.db'));
if (!reuse) {
  rmSync(scratch, { recursive: true, force: true });
  mkdirSync(scratch, { recursive: true });
}
const started = new Date();
const { catalog, events } = generateShopSample(SHOP_SAMPLE_SEED, { users, launchShare: LAUNCH_SHARE });

// The log, and when each item is first seen.
interface Event {
  readonly user: string;
  readonly item: string;
  readonly type: number;
  readonly t: number;
}
const lines = events.trimEnd().split('\n');
const log: Event[] = lines.slice(1).map((line) => {
  const [user, , item, type, timestamp] = line.split(',');
  return { user: user!, item: item!, type: TYPES[type!]!, t: Date.parse(timestamp!) };
});
const firstSeen = new Map<string, number>();
for (const e of log) firstSeen.set(e.item, Math.min(firstSeen.get(e.item) ?? Infinity, e.t));
const start = Math.min(...firstSeen.values());
// Launched items: first seen from day 55 on (the log's other items all show up in its first weeks).
const launched = new Set([...firstSeen].filter(([, t]) => t >= start + 55 * 86_400_000).map(([item]) => item));

writeFileSync(join(scratch, 'shop-catalog.csv'), catalog);
writeFileSync(join(scratch, 'training-events.csv'), `${[lines[0], ...lines.slice(1).filter((_, i) => !launched.has(log[i]!.item))].join('\n')}\n`);
const url = `file:${join(scratch, 'shop.db')}`;
const job = (name: string, args: readonly string[]): string =>
  execFileSync(process.execPath, ['--import', 'tsx', join(ROOT, 'jobs', `${name}.ts`), '--database-url', url, ...args], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 28 });
if (!reuse) job('import', ['--quiet', '--items', join(scratch, 'shop-catalog.csv'), join(scratch, 'training-events.csv')]);
process.stderr.write(`${reuse ? 'reusing the version trained' : 'training'} without the ${launched.size} launched items' events\n`);
const trained = reuse
  ? (JSON.parse(readFileSync(join(scratch, 'trained.json'), 'utf8')) as { versionId: number; trainSeconds: number })
  : (JSON.parse(job('train', ['--json', '--quiet', '--artifacts', join(scratch, 'models')])) as { versionId: number; trainSeconds: number });
writeFileSync(join(scratch, 'trained.json'), JSON.stringify({ versionId: trained.versionId, trainSeconds: trained.trainSeconds }));

await selectBackend('auto');
const store = openStore(url);
const version = await store.prisma.modelVersion.findUniqueOrThrow({ where: { id: trained.versionId } });
const catalogue = await store.prisma.item.findMany({ select: { id: true, externalId: true, category: true, price: true, properties: true } });
await store.close();
const served = ServedModel.load(version.id, version.createdAt, version.artifactPath);
const idOf = new Map(catalogue.map((i) => [i.externalId, i.id]));
const metadataOf = new Map(catalogue.map((i) => [i.externalId, itemMetadata({ category: i.category, price: i.price === null ? null : Number(i.price), properties: i.properties })]));
const numItems = served.numItems;
const known: (ItemMetadata | undefined)[] = [undefined];
const externalAt: string[] = [''];
const byInternal = new Map(catalogue.map((i) => [i.id, i.externalId]));
for (let index = 1; index <= numItems; index++) {
  const external = byInternal.get(served.vocabulary.itemAt(index))!;
  externalAt.push(external);
  known.push(metadataOf.get(external));
}
const fresh = [...launched].sort();
if (fresh.some((item) => served.vocabulary.indexOf(idOf.get(item)!) !== 0)) throw new Error('a launched item is in the version: its events were not left out');

/**
 * A placement rule: each launched item's score for a state, from the version's scores of the known items
 * (`scores`, network + term, as served) and the state's query; undefined when it cannot place the item.
 */
type Rule = (state: { readonly query: Float32Array }, scores: Float32Array, i: number) => number | undefined;
const cols = served.meanRows([[1]]).length;
const dot = (query: Float32Array, row: Float32Array, at = 0): number => {
  let sum = 0;
  for (let c = 0; c < cols; c++) sum += query[c]! * row[at + c]!;
  return sum;
};
const peersAt = (levels: readonly MetadataLevel[]) => {
  const peers = metadataPeers(known, fresh.map((item) => metadataOf.get(item)!), levels);
  return { peers, of: (i: number): readonly number[] | undefined => (peers.groupOf[i]! < 0 ? undefined : peers.groups[peers.groupOf[i]!]) };
};
const full = peersAt(METADATA_LEVELS);
const categoryOnly = peersAt(['category']);
const categoryThenBrand = peersAt(SERVED_LEVELS);
/** The mean row of a group (what the API serves). */
const meanRule = (at: ReturnType<typeof peersAt>): Rule => {
  const means = served.meanRows(at.peers.groups);
  return (state, _scores, i) => (at.peers.groupOf[i]! < 0 ? undefined : dot(state.query, means, at.peers.groupOf[i]! * cols));
};
/** The group's mean direction at its members' mean length: averaging shrinks a row towards the centre. */
const lengthRule = (at: ReturnType<typeof peersAt>): Rule => {
  const means = served.meanRows(at.peers.groups);
  const rows = at.peers.groups.map((members, g) => {
    const mean = means.subarray(g * cols, (g + 1) * cols);
    const length = (row: Float32Array): number => Math.hypot(...row);
    const target = members.reduce((sum, index) => sum + length(served.meanRows([[index]])), 0) / members.length;
    return mean.map((x) => (x * target) / Math.max(1e-12, length(mean)));
  });
  return (state, _scores, i) => (at.peers.groupOf[i]! < 0 ? undefined : dot(state.query, rows[at.peers.groupOf[i]!]!));
};
/** The n-th best score among the group's items, for this shopper. */
const peerRule = (at: ReturnType<typeof peersAt>, nth: number, mean = false): Rule => (_state, scores, i) => {
  const members = at.of(i);
  if (!members) return undefined;
  const ranked = members.map((index) => scores[index]!).sort((a, b) => b - a);
  const top = ranked.slice(0, Math.min(nth, ranked.length));
  return mean ? top.reduce((a, b) => a + b, 0) / top.length : top[top.length - 1]!;
};
// Without metadata: the known items' rows weighted by how often they occur in training.
const counts = new Float64Array(numItems + 1);
for (const e of log) if (!launched.has(e.item)) counts[served.vocabulary.indexOf(idOf.get(e.item)!)]!++;
const total = counts.reduce((a, b) => a + b, 0);
const popularRow = new Float32Array(cols);
for (let index = 1; index <= numItems; index++) {
  const row = served.meanRows([[index]]);
  for (let c = 0; c < cols; c++) popularRow[c]! += (row[c]! * counts[index]!) / total;
}
const placements: Record<string, Rule> = {
  'mean row': meanRule(full),
  'mean row at the members\' length': lengthRule(full),
  'best item of the group': peerRule(full, 1),
  'mean of the group\'s best 3': peerRule(full, 3, true),
  'mean row, category only': meanRule(categoryOnly),
  'best item of the category': peerRule(categoryOnly, 1),
  [SERVED_RULE]: peerRule(categoryThenBrand, 1),
  'second best item of the category': peerRule(categoryOnly, 2),
  'mean of the category\'s best 3': peerRule(categoryOnly, 3, true),
  'no metadata (popular mean row)': (state) => dot(state.query, popularRow),
};

/** The users' first purchases (or views) of launched items, each with the events before it. */
const byUser = new Map<string, Event[]>();
for (const e of log) if (e.user !== '') (byUser.get(e.user) ?? byUser.set(e.user, []).get(e.user)!).push(e);
function measure(type: number): Record<string, unknown> {
  const hits: Record<string, number> = Object.fromEntries([...Object.keys(placements), 'random'].map((name) => [name, 0]));
  let pairs = 0;
  for (const history of byUser.values()) {
    const done = new Set<string>();
    history.forEach((event, at) => {
      if (event.type !== type || !launched.has(event.item) || done.has(event.item)) return;
      done.add(event.item);
      const before = history.slice(0, at).filter((e) => !launched.has(e.item));
      if (before.length === 0) return;
      pairs++;
      const state = served.state(served.encode(before.map((e) => idOf.get(e.item)!), before.map((e) => e.type)));
      const scores = served.scores(state).slice();
      const seen = new Set(before.map((e) => e.item));
      const candidates: number[] = []; // known items outside the history
      for (let index = 1; index <= numItems; index++) if (!seen.has(externalAt[index]!)) candidates.push(index);
      const available = fresh.map((item, i) => [item, i] as const).filter(([item]) => firstSeen.get(item)! <= event.t);
      const target = fresh.indexOf(event.item);
      for (const [name, rule] of Object.entries(placements)) {
        const mine = rule(state, scores, target);
        if (mine === undefined) continue;
        let above = 0;
        // Ties count against the launched item, as in the evaluation (metrics.ts).
        for (const index of candidates) if (scores[index]! >= mine) above++;
        for (const [, i] of available) {
          const theirs = i === target ? undefined : rule(state, scores, i);
          if (theirs !== undefined && theirs >= mine) above++;
        }
        if (above < TOP) hits[name]!++;
      }
      hits.random! += Math.min(1, TOP / (candidates.length + available.length)); // expected hits of a uniformly random slot
    });
  }
  return { pairs, [`top_${TOP}_rate`]: Object.fromEntries(Object.entries(hits).map(([name, h]) => [name, round(h / Math.max(1, pairs))])) };
}

const result = {
  benchmark: 'new-items',
  started: started.toISOString(),
  machine: machineFacts(),
  dataset: `generated shop with launches (scripts/generate-shop-sample.ts, ${users} users, launchShare ${LAUNCH_SHARE}): ${log.length} events; ${launched.size} of ${catalogue.length} items first seen from day 55 on; the version trained on the ${log.filter((e) => !launched.has(e.item)).length} events of the others`,
  model_version: { id: trained.versionId, train_seconds: Math.round(trained.trainSeconds), items: numItems },
  protocol: `for each user's first purchase (and first view) of a launched item: the user's earlier events the version knows give the state; the item ranked among the known items outside that history and the launched items launched by then (ties against it); a hit is rank < ${TOP}. Groups: 'group' = the known items sharing category+brand+price band, backing off to category+brand, category+price, category, brand (at least 3 items); 'category' = the category alone (the served rule falls back to the brand without one). Mean row: the query times the group's mean output row (= the mean of their network scores); at the members' length: that row scaled to their mean length; best item / best 3: the group's best served score(s) for this shopper; no metadata: the training-popularity-weighted mean row of every known item; random: the expected rate of a uniformly random slot. Chosen on views, reported on purchases.`,
  groups_used: {
    finer: Object.fromEntries(METADATA_LEVELS.map((level) => [level, full.peers.levels.filter((l) => l === level).length])),
    served: Object.fromEntries(SERVED_LEVELS.map((level) => [level, categoryThenBrand.peers.levels.filter((l) => l === level).length])),
  },
  purchases: measure(TYPES.purchase!),
  views: measure(TYPES.view!),
};
const viewRates = (result.views as { top_20_rate: Record<string, number> }).top_20_rate;
const chosen = Object.keys(placements).reduce((best, name) => (viewRates[name]! > viewRates[best]! ? name : best));
Object.assign(result, { chosen_on_views: chosen, served: SERVED_RULE });
served.retire();
const json = JSON.stringify(result, null, 2);
process.stdout.write(`${json}\n`);
if (values.write) process.stderr.write(`wrote ${writeBenchResult(join(ROOT, 'bench', 'results'), 'new-items', started, json)}\n`);

function round(x: number, digits = 4): number {
  return Math.round(x * 10 ** digits) / 10 ** digits;
}
