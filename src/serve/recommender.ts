import type { CatalogItem, PopularItems, ServingReader } from '../data/serving-reader.js';
import { BUILTIN_EVENT_TYPES } from '../data/import/event-types.js';
import type { ExcludePolicy } from '../data/exclusion.js';
import type { ItemBoosts, ItemFilter, ItemGroup } from '../data/item-rules/compile.js';
import { beamSearch, topIndices } from '../model/beam-search.js';
import { itemMetadata, NewItemScores, type MetadataLevel } from '../model/metadata-peers.js';
import type { CatalogCache } from './catalog-cache.js';
import type { MemoEntry } from '../model/representation-memo.js';
import type { ModelHistory, Shortlist, UserState } from '../model/served-model.js';
import type { WarmedUser } from './inference-protocol.js';
import { LruCache } from './lru-cache.js';
import type { ModelRegistry } from './model-registry.js';
import type { PooledModel } from './pooled-model.js';
import { ProblemError } from './problem.js';
import type { NextSequence, RankedCandidates, RecommendedItem, Recommendations, SimilarItems } from './responses.js';
import { UserCache, type CachedUser, type Owner } from './user-cache.js';

export type { ExcludePolicy } from '../data/exclusion.js';

/** Filters every recommendation call accepts. Inactive items are always left out. */
export interface Filters {
  /** Items of the shopper's history to leave out: those purchased (default), all seen, or none. */
  readonly exclude: ExcludePolicy;
  readonly category?: string | undefined;
  /** Recommend only among these items (external ids). */
  readonly includeItems?: readonly string[] | undefined;
  readonly excludeItems?: readonly string[] | undefined;
  /** A filter rule over properties and built-ins (CatalogCache.filter): only the items it holds for. */
  readonly where?: ItemFilter | undefined;
  /**
   * Boost rules (CatalogCache.boosts): the items are ranked by probability × the factor of the rules that
   * hold for them. They reorder what the filters keep and never bring back an item they leave out.
   */
  readonly boosts?: ItemBoosts | undefined;
  /** Diversity: at most `max` items with the same value of `group` (category, a property); items without one are not capped. */
  readonly maxPer?: { readonly group: ItemGroup; readonly max: number } | undefined;
  /** Items shown at fixed 1-based slots (≤ k, distinct), whatever their rank: the other filters do not apply to them. */
  readonly pins?: readonly Pin[] | undefined;
  /**
   * Exploration: this share of the k slots (the last ones, at least one) goes to items this server has
   * shown least (new ones first, as nothing has shown them), drawn at random among those the filters keep.
   */
  readonly explore?: number | undefined;
}

export interface Pin {
  readonly item: string;
  readonly slot: number;
  readonly reason?: string | undefined;
}

/**
 * Which model serves a request: the active one (undefined), another ready
 * version, or the popular strategy (an experiment's variants; src/serve/experiments.ts).
 */
export type Serving = { readonly strategy: 'model'; readonly modelVersion: number | null } | { readonly strategy: 'popular' } | undefined;

// The results' shapes are the API's response schemas (src/serve/responses.ts): declared once, documented from there.
export type { NextSequence, RankedCandidates, RecommendedItem, Recommendations, SimilarItems } from './responses.js';
export type Strategy = Recommendations['strategy'];

/** An inline session event: external item id and event-type name. */
export interface InlineEvent {
  readonly item: string;
  readonly type: string;
}

export interface RecommenderOptions {
  /** Serve popular items when no model is loaded (otherwise 503). */
  readonly popularFallback: boolean;
  readonly popularWindowDays: number;
  readonly userCacheSize: number;
  readonly userCacheTtlSeconds: number;
}

/** A pinned item as the serving strategy describes it, and whether it had a score for it. */
type DescribePinned = (entry: CatalogItem) => { readonly item: RecommendedItem; readonly scored: boolean };

/**
 * A model's indices in catalogue terms: entries 1..numItems are the version's items (undefined where the
 * catalogue no longer lists one); after them come the catalogue's items the version never saw (new items),
 * which rank with the best score of the known items that share their category or brand (NewItemScores).
 */
interface ModelCatalogView {
  readonly generation: number;
  readonly entries: (CatalogItem | undefined)[];
  /** When it was built (performance.now()). */
  readonly builtAt: number;
}

/**
 * A view is built again at most this often while the catalogue only gains items (event batches that name
 * new ones): building it and the new items' peer groups reads the whole catalogue (a few ms for 23,715
 * items), and a shop's ingestion can add items in every batch. Items added meanwhile join recommendations
 * at the next build; lookups by id see them at once (CatalogCache).
 */
const ADDITIONS_VIEW_REFRESH_MS = 1_000;

const POPULAR_TTL_MS = 60_000;
/** Per-item masks and boost factors of rules kept, per model and catalogue generation; those that read `age` are rebuilt after AGE_RULE_TTL_MS. */
const RULE_TABLES = 32;
const AGE_RULE_TTL_MS = 60_000;
/** Catalogue items drawn per exploring request, of which the least shown that the filters keep fill the slots. */
const EXPLORE_DRAWS = 256;

/** A boost rule's factor per model index (reported as is) and its logarithm (added to the scores to rank). */
interface BoostTable {
  readonly at: number;
  readonly factors: Float64Array;
  readonly logFactors: Float32Array;
}
const POPULAR_LIMIT = 1_000;
/** How long after an activation ends the spare user cache is built (away from the swap's own work). */
const SPARE_DELAY_MS = 5_000;
const PURCHASE = BUILTIN_EVENT_TYPES.purchase!;

/**
 * Everything the recommendation routes compute: histories (cached per user,
 * invalidated by new events), the model's state and scores, filters, top-k,
 * and the popular fallback for shoppers without a usable history.
 */
export class Recommender {
  private users: UserCache;
  /** Users represented under a version about to serve (see prepareNext), filed before it does. */
  private next: { readonly version: number; readonly users: UserCache } | undefined;
  /**
   * An empty user cache for the next activation's prepareNext, built ahead (at start, and SPARE_DELAY_MS
   * after each activation ends): building one holds the event loop for 8-13 ms (the lru-cache package fills
   * its arrays for every row it may hold, 100,000 by default), which the first second of an activation,
   * busy with the version's load, should not add (docs/serving-performance.md, "An activation's first
   * second, thread by thread").
   */
  private spare: UserCache | undefined;
  private spareTimer: NodeJS.Timeout | undefined;
  private readonly views = new WeakMap<PooledModel, ModelCatalogView>();
  private readonly fresh = new WeakMap<PooledModel, { readonly generation: number } & NewItems>();
  /** What a filter rule keeps (1) of a model's indices, and a boost rule's log-factor per index: rules repeat, the catalogue is scanned once. */
  private readonly ruleMasks = new LruCache<string, { readonly at: number; readonly mask: Uint8Array }>(RULE_TABLES);
  private readonly ruleBoosts = new LruCache<string, BoostTable>(RULE_TABLES);
  private popular: { at: number; value: PopularItems } | undefined;
  private eventTypes: Map<string, number> = new Map();
  /** How often this process's user and session recommendations showed each item (internal id): what exploration favours the least of. */
  private readonly shownCounts = new Map<number, number>();

  constructor(
    private readonly reader: ServingReader,
    private readonly catalog: CatalogCache,
    private readonly models: ModelRegistry,
    private readonly options: RecommenderOptions,
    private readonly onCacheLookup: (hit: boolean) => void = () => {},
  ) {
    this.users = this.userCache();
    this.spare = this.userCache();
    this.invalidatedAt = new LruCache(Math.max(100_000, options.userCacheSize));
  }

  async start(): Promise<void> {
    this.eventTypes = await this.reader.eventTypes();
  }

  /**
   * Caches users represented under `model` elsewhere (the warm-up's
   * background worker, from histories it read in bulk), skipping users
   * already cached and users with events newer than the read (epoch
   * readAt: they are left to their next request). Returns how many were added.
   */
  primeWarmed(model: PooledModel, users: readonly WarmedUser[], readAt: number): number {
    const cache = this.models.current === model ? this.users : this.next?.version === model.version ? this.next.users : undefined;
    if (!cache) return 0;
    let added = 0;
    for (const u of users) {
      if (cache.versionOf(u.externalId) === model.version || this.changedSince(u.externalId, readAt)) continue;
      const { state, shortlist } = u.representation ?? {};
      cache.set(u.externalId, { owner: toOwner([u.items, u.types]), version: model.version, encoded: u.encoded, state, shortlist });
      added++;
    }
    return added;
  }

  /**
   * A version is about to serve: from now on primeWarmed files its users
   * in a cache of their own, which adopt() makes the user cache when the
   * version takes over, so shoppers never meet an empty cache at the swap.
   * Events invalidate users there as well. Costs a second cache's memory
   * while it fills.
   */
  prepareNext(model: PooledModel): void {
    this.next = { version: model.version, users: this.spare ?? this.userCache() };
    this.spare = undefined;
  }

  /** Users filed for the version about to serve (0 without one). */
  get preparedUsers(): number {
    return this.next?.users.size ?? 0;
  }

  /** `model` now serves: the users prepared for it become the user cache; anything else cached is stale. */
  adopt(model: PooledModel | undefined): void {
    const prepared = model !== undefined && this.next?.version === model.version ? this.next.users : undefined;
    this.next = undefined;
    this.spareLater();
    if (prepared) {
      this.users = prepared;
      this.popular = undefined;
    } else this.invalidateAll();
  }

  /** The version prepared for did not take over (its activation failed). */
  dropNext(model: PooledModel): void {
    if (this.next?.version === model.version) this.next = undefined;
    this.spareLater();
  }

  /** Builds the next spare user cache a while after an activation ended (see spare). */
  private spareLater(): void {
    if (this.spare || this.spareTimer) return;
    this.spareTimer = setTimeout(() => {
      this.spareTimer = undefined;
      if (!this.next) this.spare ??= this.userCache();
    }, SPARE_DELAY_MS);
    this.spareTimer.unref();
  }

  /** An empty user cache of the configured size and time to live. */
  private userCache(): UserCache {
    return new UserCache(this.options.userCacheSize, this.options.userCacheTtlSeconds > 0 ? this.options.userCacheTtlSeconds * 1000 : Infinity);
  }

  /**
   * Invalidation epochs: a history read before a user's latest invalidation
   * must not enter the cache, or a purchase stored while the representation
   * was being computed would be recommended again until the next event.
   */
  private epoch = 0;
  private readonly invalidatedAt: LruCache<string, number>;

  /** The current invalidation epoch: take it before reading histories, pass it to prime(). */
  get currentEpoch(): number {
    return this.epoch;
  }

  private changedSince(externalId: string, epoch: number): boolean {
    return this.forgotAllAt > epoch || (this.invalidatedAt.get(externalId) ?? 0) > epoch;
  }

  /** The epoch of the last forgetUsers(): every history read before it is stale. */
  private forgotAllAt = 0;

  /**
   * Every user's cached state is stale (another replica's events may have been
   * missed): drop them all, and keep reads already under way from filing theirs.
   */
  forgetUsers(): void {
    this.epoch++;
    this.forgotAllAt = this.epoch;
    this.users.clear();
    this.next?.users.clear();
  }

  /** How many user representations are cached. */
  get cachedUsers(): number {
    return this.users.size;
  }

  /** The serving cache's representations under `model` (states with their shortlists), for a memo of them. */
  *cachedRepresentations(model: PooledModel): Generator<MemoEntry> {
    if (this.models.current !== model) return;
    for (const entry of this.users.entries()) {
      if (entry.version === model.version && entry.encoded && entry.state && entry.shortlist) yield { encoded: entry.encoded, representation: { state: entry.state, shortlist: entry.shortlist } };
    }
  }

  /** Bytes the user caches' tables hold (the one serving and, during an activation, the next version's). */
  get userCacheBytes(): number {
    return this.users.bytes + (this.next?.users.bytes ?? 0);
  }

  /** New events for these users: their cached representations are stale. */
  invalidateUsers(externalIds: Iterable<string>): void {
    this.epoch++;
    for (const id of externalIds) {
      this.users.delete(id);
      this.next?.users.delete(id);
      this.invalidatedAt.set(id, this.epoch);
    }
  }

  /** A model nothing was prepared for serves (see adopt): every cached representation is stale. */
  private invalidateAll(): void {
    this.users.clear();
    this.popular = undefined;
  }

  async forUser(userId: string, k: number, filters: Filters, serving?: Serving): Promise<Recommendations> {
    // Outside experiments the active version, with no await on the way.
    const model = serving === undefined ? this.models.current?.acquire() : await this.modelFor(serving);
    try {
      const user = await this.user(userId, model);
      return this.recommend(model, user.owner, user.encoded, user.state, k, filters, user.shortlist, serving);
    } finally {
      model?.release();
    }
  }

  async forSession(events: readonly InlineEvent[], k: number, filters: Filters, serving?: Serving): Promise<Recommendations> {
    // Outside experiments the active version, with no await on the way.
    const model = serving === undefined ? this.models.current?.acquire() : await this.modelFor(serving);
    try {
      const owner = await this.inlineOwner(events);
      const { encoded, state, shortlist } = await represent(model, owner);
      return this.recommend(model, owner, encoded, state, k, filters, shortlist, serving);
    } finally {
      model?.release();
    }
  }

  async nextSequence(userId: string, steps: number, beamWidth: number, filters: Filters, serving?: Serving): Promise<NextSequence> {
    // Outside experiments the active version, with no await on the way.
    const model = serving === undefined ? this.models.current?.acquire() : await this.modelFor(serving);
    try {
      const user = await this.user(userId, model);
      const history = { events: user.owner.events, used: user.encoded?.items.length ?? 0 };
      if (!model || !user.encoded || user.encoded.items.length === 0) {
        const popular = await this.popularFor(user.owner, steps, filters, model, serving);
        return { strategy: 'popular', modelVersion: model?.version ?? null, items: popular, probability: null, alternatives: [], history };
      }
      const encoded = user.encoded;
      const lastType = encoded.types.at(-1) ?? 0;
      const keep = this.keeper(model, user.owner, filters);
      const continuations = await beamSearch(
        encoded.items,
        (histories) => model.logProbs(histories.map((items) => ({ items, types: items.map((_, i) => encoded.types[i] ?? lastType) }))),
        { steps, beamWidth, allow: keep },
      );
      const best = continuations[0];
      const view = this.view(model);
      const describe = (index: number, logProb: number): RecommendedItem => toItem(view.entries[index]!, Math.exp(logProb), logProb);
      const items = best ? best.items.map((index, step) => describe(index, best.stepLogProbs[step]!)) : [];
      return {
        strategy: 'model',
        modelVersion: model.version,
        items,
        probability: best ? Math.exp(best.logProb) : null,
        alternatives: continuations.slice(1).map((c) => ({ items: c.items.map((index) => view.entries[index]!.externalId), probability: Math.exp(c.logProb) })),
        history,
      };
    } finally {
      model?.release();
    }
  }

  async rank(owner: { user: string } | { session: readonly InlineEvent[] }, candidates: readonly string[], filters: Filters, serving?: Serving): Promise<RankedCandidates> {
    // Outside experiments the active version, with no await on the way.
    const model = serving === undefined ? this.models.current?.acquire() : await this.modelFor(serving);
    try {
      let person: Owner;
      let encoded: ModelHistory | undefined;
      let state: UserState | undefined;
      if ('user' in owner) {
        const user = await this.user(owner.user, model);
        ({ owner: person, encoded, state } = user);
      } else {
        person = await this.inlineOwner(owner.session);
        ({ encoded, state } = await represent(model, person));
      }
      const history = { events: person.events, used: encoded?.items.length ?? 0 };
      const now = Date.now();
      const rule = this.itemRule(person, filters, now);
      const dropped: RankedCandidates['dropped'][number][] = [];
      const kept: CatalogItem[] = [];
      for (const id of new Set(candidates)) {
        const entry = this.catalog.byExternalId(id);
        const verdict = rule(entry);
        if (verdict === 'kept') kept.push(entry!);
        else dropped.push({ item: id, reason: verdict });
      }
      if (!model || !state) {
        this.requireFallback(model, serving);
        const popular = await this.popularCounts();
        const counts = new Map(popular.items.map((p) => [p.itemId, p.count]));
        const total = Math.max(1, popular.windowEvents);
        const items = kept
          .map((entry) => toItem(entry, (counts.get(entry.id) ?? 0) / total, counts.get(entry.id) ?? 0, boostOf(filters.boosts, entry, now)))
          .sort(byBoostedProbability);
        return { strategy: 'popular', modelVersion: model?.version ?? null, items, dropped, history };
      }
      const scores = await model.scores(state);
      const items: RecommendedItem[] = [];
      // Candidates the version never saw rank with their metadata peers' score, as in recommendations.
      const fresh = kept.some((entry) => model.vocabulary.indexOf(entry.id) === 0) ? this.newItems(model, this.view(model)) : undefined;
      const freshScores = fresh?.scores.fromScores(scores);
      for (const entry of kept) {
        const index = model.vocabulary.indexOf(entry.id);
        const at = index === 0 ? fresh?.positionOf.get(entry.id) : undefined;
        const score = index !== 0 ? scores[index]! : at !== undefined ? freshScores![at]! : -Infinity;
        if (score === -Infinity) dropped.push({ item: entry.externalId, reason: 'not_in_model' });
        else {
          const item = toItem(entry, Math.exp(score - state.logNormaliser), score, boostOf(filters.boosts, entry, now));
          items.push(index === 0 ? { ...item, newItem: { level: fresh!.scores.level(at!)! } } : item);
        }
      }
      items.sort(byBoostedProbability);
      return { strategy: 'model', modelVersion: model.version, items, dropped, history };
    } finally {
      model?.release();
    }
  }

  async similar(itemId: string, k: number, filters: Omit<Filters, 'exclude'>): Promise<SimilarItems> {
    const model = this.models.current?.acquire();
    try {
      if (!model) throw new ProblemError('MODEL_NOT_LOADED', 'similar items need a trained model; none is loaded');
      const entry = this.catalog.byExternalId(itemId);
      if (!entry) throw new ProblemError('ITEM_NOT_FOUND', `item '${itemId}' is not in the catalogue`);
      const index = model.vocabulary.indexOf(entry.id);
      if (index === 0) throw new ProblemError('ITEM_NOT_IN_MODEL', `item '${itemId}' is newer than model version ${model.version}: it has no embedding yet`, { modelVersion: model.version });
      const keep = this.keeper(model, EMPTY_OWNER, { ...filters, exclude: 'none' });
      const similarities = await model.similarities(index);
      const view = this.view(model);
      const best = topIndices(similarities, k, (i) => i !== 0 && i !== index && keep(i));
      return {
        modelVersion: model.version,
        item: itemId,
        items: best.map((i) => {
          const { probability: _p, score: _s, ...rest } = toItem(view.entries[i]!, 0, 0);
          return { ...rest, similarity: similarities[i]! };
        }),
      };
    } finally {
      model?.release();
    }
  }

  private async recommend(
    model: PooledModel | undefined,
    owner: Owner,
    encoded: ModelHistory | undefined,
    state: UserState | undefined,
    k: number,
    filters: Filters,
    shortlist: Shortlist | undefined,
    serving: Serving,
  ): Promise<Recommendations> {
    const history = { events: owner.events, used: encoded?.items.length ?? 0 };
    const { pins } = filters;
    // The pinned items take their slots below; the ranking leaves them out so none shows twice.
    const ranking = pins ? { ...filters, excludeItems: [...(filters.excludeItems ?? []), ...pins.map((p) => p.item)] } : filters;
    const exploring = filters.explore ? Math.min(k, Math.max(1, Math.round(k * filters.explore))) : 0;
    let result: Recommendations;
    if (!model || !state) {
      const items = await this.popularFor(owner, k - exploring, ranking, model, serving);
      const describe = await this.popularPinned(filters);
      result = { strategy: 'popular', modelVersion: model?.version ?? null, items: [...items, ...this.explored(owner, ranking, items, exploring, describe)], history };
      if (pins) result = this.placePins(result, k, pins, describe);
    } else {
      const items = await this.ranked(model, owner, state, shortlist, k - exploring, ranking);
      const explored = exploring > 0 ? this.exploreCandidates(owner, ranking, items, exploring) : [];
      const extra = [...explored, ...(pins ?? []).map((p) => this.catalog.byExternalId(p.item)).filter((e): e is CatalogItem => e !== undefined)];
      const describe = extra.length > 0 ? await this.modelDescriber(model, state, shortlist, extra, filters) : undefined;
      result = { strategy: 'model', modelVersion: model.version, items: [...items, ...explored.map((entry) => ({ ...describe!(entry).item, exploration: true as const }))], history };
      if (pins) result = this.placePins(result, k, pins, describe!);
    }
    for (const item of result.items) {
      const id = this.catalog.byExternalId(item.item)?.id;
      if (id !== undefined) this.shownCounts.set(id, (this.shownCounts.get(id) ?? 0) + 1);
    }
    return result;
  }

  /** The popular strategy's exploration items, described and marked. */
  private explored(owner: Owner, filters: Filters, ranked: readonly RecommendedItem[], count: number, describe: DescribePinned): RecommendedItem[] {
    return count > 0 ? this.exploreCandidates(owner, filters, ranked, count).map((entry) => ({ ...describe(entry).item, exploration: true as const })) : [];
  }

  /**
   * Items for the exploration slots: EXPLORE_DRAWS catalogue items drawn at random, those the filters keep
   * and the answer does not already show, least shown first (the draw's order breaks ties at random).
   */
  private exploreCandidates(owner: Owner, filters: Filters, ranked: readonly RecommendedItem[], count: number): CatalogItem[] {
    const rule = this.itemRule(owner, filters, Date.now());
    const taken = new Set(ranked.map((i) => i.item));
    const drawn = new Map<number, CatalogItem>();
    for (let d = 0; d < EXPLORE_DRAWS && this.catalog.size > 0; d++) {
      const entry = this.catalog.itemAt(Math.floor(Math.random() * this.catalog.size))!;
      if (!drawn.has(entry.id) && !taken.has(entry.externalId) && rule(entry) === 'kept') drawn.set(entry.id, entry);
    }
    return [...drawn.values()].sort((a, b) => (this.shownCounts.get(a.id) ?? 0) - (this.shownCounts.get(b.id) ?? 0)).slice(0, count);
  }

  /**
   * The model's top k under the filters (and boosts), new items (view entries after the model's own)
   * ranked with their peers' best score. The shortlist answers when its k-th kept item scores at least
   * its lowest score (a new item whose group has an item there scores exactly that item's score, any
   * other at most the lowest): nothing outside it can then come first.
   */
  private async ranked(model: PooledModel, owner: Owner, state: UserState, shortlist: Shortlist | undefined, k: number, filters: Filters): Promise<RecommendedItem[]> {
    const view = this.view(model);
    const fresh = this.newItems(model, view)?.scores;
    const keepKnown = this.keeper(model, owner, filters);
    const known = model.numItems;
    const keep = fresh ? (index: number) => keepKnown(index) && (index <= known || fresh.scored(index - known - 1)) : keepKnown;
    const describe = (index: number, score: number, boost?: number): RecommendedItem => {
      const item = toItem(view.entries[index]!, Math.exp(score - state.logNormaliser), score, boost);
      return index > known ? { ...item, newItem: { level: fresh!.level(index - known - 1)! } } : item;
    };
    const merged = shortlist && withFresh(shortlist, fresh?.fromShortlist(shortlist), known);
    if (filters.boosts || filters.maxPer) return this.reranked(model, view, state, merged, k, keep, filters, describe, fresh);
    if (merged && k <= shortlist!.indices.length) {
      const chosen: RecommendedItem[] = [];
      for (let j = 0; j < merged.indices.length && chosen.length < k && merged.scores[j]! >= merged.floor; j++) {
        const index = merged.indices[j]!;
        if (keep(index)) chosen.push(describe(index, merged.scores[j]!));
      }
      if (chosen.length === k) return chosen;
    }
    const scores = await this.allScores(model, state, fresh);
    const best = topIndices(scores, k, keep);
    return best.map((i) => describe(i, scores[i]!));
  }

  /** Every item's score: the version's own (index = model index), then the new items'. */
  private async allScores(model: PooledModel, state: UserState, fresh: NewItemScores | undefined): Promise<Float32Array> {
    const scores = await model.scores(state);
    return fresh ? withFreshScores(scores, fresh.fromScores(scores)) : scores;
  }

  /** The view's new items, their groups and positions, once per model and catalogue generation (undefined when there are none). */
  private newItems(model: PooledModel, view: ModelCatalogView): NewItems | undefined {
    if (view.entries.length <= model.numItems + 1) return undefined;
    const cached = this.fresh.get(model);
    if (cached?.generation === view.generation) return cached;
    const known = view.entries.slice(0, model.numItems + 1).map((entry, index) => (index > 0 && entry ? itemMetadata(entry) : undefined));
    const fresh = view.entries.slice(model.numItems + 1) as CatalogItem[];
    const entry = { generation: view.generation, scores: NewItemScores.of(known, fresh.map(itemMetadata)), positionOf: new Map(fresh.map((item, i) => [item.id, i])) };
    this.fresh.set(model, entry);
    return entry;
  }

  /** How the model describes items it did not rank (pinned, explored): its probability and score where it knows the item (the shortlist's, else the catalogue's scores). */
  private async modelDescriber(model: PooledModel, state: UserState, shortlist: Shortlist | undefined, entries: readonly CatalogItem[], filters: Filters): Promise<DescribePinned> {
    const known = new Map<number, number>();
    if (shortlist) for (let j = 0; j < shortlist.indices.length; j++) known.set(shortlist.indices[j]!, shortlist.scores[j]!);
    const indices = entries.map((entry) => model.vocabulary.indexOf(entry.id));
    const newItems = indices.includes(0) ? this.newItems(model, this.view(model)) : undefined;
    // The catalogue's scores, fetched once, when a known item is not shortlisted or a new item needs its peers'.
    const scores = newItems || indices.some((index) => index !== 0 && !known.has(index)) ? await model.scores(state) : undefined;
    if (scores) for (const index of indices) if (index !== 0) known.set(index, scores[index]!);
    // Items the version never saw: their peers' score, as when ranked.
    const fresh = new Map<number, { score: number; level: MetadataLevel }>();
    if (newItems && scores) {
      const freshScores = newItems.scores.fromScores(scores);
      entries.forEach((entry, i) => {
        const at = indices[i] === 0 ? newItems.positionOf.get(entry.id) : undefined;
        if (at !== undefined && freshScores[at]! > -Infinity) fresh.set(entry.id, { score: freshScores[at]!, level: newItems.scores.level(at)! });
      });
    }
    const now = Date.now();
    return (entry) => {
      const unseen = fresh.get(entry.id);
      if (unseen) return { item: { ...toItem(entry, Math.exp(unseen.score - state.logNormaliser), unseen.score, boostOf(filters.boosts, entry, now)), newItem: { level: unseen.level } }, scored: true };
      const score = known.get(model.vocabulary.indexOf(entry.id));
      return score === undefined
        ? { item: toItem(entry, 0, 0, boostOf(filters.boosts, entry, now)), scored: false }
        : { item: toItem(entry, Math.exp(score - state.logNormaliser), score, boostOf(filters.boosts, entry, now)), scored: true };
    };
  }

  /** How the popular strategy describes pinned items: their share and count in the window (0 for an item outside its list). */
  private async popularPinned(filters: Filters): Promise<DescribePinned> {
    const popular = await this.popularCounts();
    const counts = new Map(popular.items.map((p) => [p.itemId, p.count]));
    const total = Math.max(1, popular.windowEvents);
    const now = Date.now();
    return (entry) => ({ item: toItem(entry, (counts.get(entry.id) ?? 0) / total, counts.get(entry.id) ?? 0, boostOf(filters.boosts, entry, now)), scored: true });
  }

  /**
   * Puts each pinned item in its slot, the ranked items filling the others in order, k at most. A pin of an
   * item the catalogue does not have, or an inactive one, is reported and its slot goes to the ranking.
   */
  private placePins(result: Recommendations, k: number, pins: readonly Pin[], describe: DescribePinned): Recommendations {
    const bySlot = new Map<number, RecommendedItem>();
    const unplaced: NonNullable<Recommendations['unplacedPins']> = [];
    for (const pin of pins) {
      const entry = this.catalog.byExternalId(pin.item);
      if (!entry || !entry.active) {
        unplaced.push({ item: pin.item, slot: pin.slot, why: entry ? 'inactive' : 'unknown' });
        continue;
      }
      const { item, scored } = describe(entry);
      bySlot.set(pin.slot, { ...item, pin: { slot: pin.slot, reason: pin.reason ?? null, scored } });
    }
    const items: RecommendedItem[] = [];
    const ranked = result.items[Symbol.iterator]();
    for (let slot = 1; slot <= k; slot++) {
      const pinned = bySlot.get(slot);
      if (pinned) items.push(pinned);
      else {
        const next = ranked.next();
        if (next.done) {
          // The ranking ran out: later pins close up behind it.
          for (let later = slot + 1; later <= k; later++) if (bySlot.has(later)) items.push(bySlot.get(later)!);
          break;
        }
        items.push(next.value);
      }
    }
    return { ...result, items, ...(unplaced.length > 0 && { unplacedPins: unplaced }) };
  }

  /**
   * The top k kept items by probability × boost, at most maxPer.max of a group, chosen greedily in that
   * order. From the shortlist when that is provably the answer: an item outside it scores at most the
   * shortlist's lowest score, so, boosted at most by maxFactor, it comes after the k-th chosen when that
   * one is above the bound, and the greedy choice over every item would have stopped before it.
   * Otherwise from the whole catalogue's scores.
   */
  private async reranked(
    model: PooledModel,
    view: ModelCatalogView,
    state: UserState,
    shortlist: MergedShortlist | undefined,
    k: number,
    keep: (index: number) => boolean,
    filters: Filters,
    describeItem: (index: number, score: number, boost?: number) => RecommendedItem,
    fresh: NewItemScores | undefined,
  ): Promise<RecommendedItem[]> {
    const table = filters.boosts ? this.boostTable(model, view, filters.boosts) : undefined;
    const logMax = filters.boosts ? Math.log(filters.boosts.maxFactor) : 0;
    const now = Date.now();
    const describe = (index: number, score: number): RecommendedItem => describeItem(index, score, table?.factors[index]);
    type Candidate = { index: number; score: number; boosted: number };
    const choose = (ordered: Iterable<Candidate>): Candidate[] => {
      const counts = new Map<string, number>();
      const chosen: Candidate[] = [];
      for (const candidate of ordered) {
        if (chosen.length === k) break;
        const key = filters.maxPer?.group.key(view.entries[candidate.index]!, now);
        if (key !== undefined) {
          const count = counts.get(key) ?? 0;
          if (count >= filters.maxPer!.max) continue;
          counts.set(key, count + 1);
        }
        chosen.push(candidate);
      }
      return chosen;
    };
    if (shortlist && k <= shortlist.ownLength) {
      const kept: { index: number; score: number; boosted: number }[] = [];
      for (let j = 0; j < shortlist.indices.length; j++) {
        const index = shortlist.indices[j]!;
        const score = shortlist.scores[j]!;
        if (keep(index)) kept.push({ index, score, boosted: score + (table?.logFactors[index] ?? 0) });
      }
      kept.sort((a, b) => b.boosted - a.boosted || a.index - b.index);
      const chosen = choose(kept);
      if (chosen.length === k && chosen[k - 1]!.boosted > shortlist.floor + logMax) return chosen.map((c) => describe(c.index, c.score));
    }
    const scores = await this.allScores(model, state, fresh);
    const boosted = table ? Float32Array.from(scores, (score, i) => score + table.logFactors[i]!) : scores;
    // The greedy choice reads candidates best first: the top 20 k usually hold k that fit the cap, else every kept item.
    let ordered = topIndices(boosted, Math.min(scores.length - 1, 20 * k), keep);
    const candidates = (indices: readonly number[]): Candidate[] => indices.map((index) => ({ index, score: scores[index]!, boosted: boosted[index]! }));
    let chosen = choose(candidates(ordered));
    if (chosen.length < k && ordered.length === 20 * k) {
      // Every kept item, sorted (topIndices inserts into a sorted list: quadratic for a whole catalogue).
      ordered = [];
      for (let index = 1; index < scores.length; index++) if (keep(index)) ordered.push(index);
      ordered.sort((a, b) => boosted[b]! - boosted[a]! || a - b);
      chosen = choose(candidates(ordered));
    }
    return chosen.map((c) => describe(c.index, c.score));
  }

  private async popularFor(owner: Owner, k: number, filters: Filters, model: PooledModel | undefined, serving: Serving): Promise<RecommendedItem[]> {
    this.requireFallback(model, serving);
    const popular = await this.popularCounts();
    const now = Date.now();
    const rule = this.itemRule(owner, filters, now);
    const total = Math.max(1, popular.windowEvents);
    const out: RecommendedItem[] = [];
    const entries = new Map<string, CatalogItem>();
    for (const { itemId, count } of popular.items) {
      if (out.length === k && !filters.boosts && !filters.maxPer) break;
      const entry = this.catalog.byInternalId(itemId);
      if (rule(entry) !== 'kept') continue;
      out.push(toItem(entry!, count / total, count, boostOf(filters.boosts, entry!, now)));
      entries.set(entry!.externalId, entry!);
    }
    // With boosts, every kept popular item competes on count × boost; with a cap, the greedy choice in that order.
    if (filters.boosts) out.sort(byBoostedProbability);
    if (!filters.maxPer) return out.slice(0, k);
    const counts = new Map<string, number>();
    return out
      .filter((item) => {
        const key = filters.maxPer!.group.key(entries.get(item.item)!, now);
        if (key === undefined) return true;
        const count = counts.get(key) ?? 0;
        counts.set(key, count + 1);
        return count < filters.maxPer!.max;
      })
      .slice(0, k);
  }

  /** Without a model, only the popular fallback can answer; it may be switched off (not for an experiment's popular variant). */
  private requireFallback(model: PooledModel | undefined, serving: Serving): void {
    if (!model && serving?.strategy !== 'popular' && !this.options.popularFallback) throw new ProblemError('MODEL_NOT_LOADED', 'no model version is active and the popular fallback is off');
  }

  private async popularCounts(): Promise<PopularItems> {
    const now = performance.now();
    if (!this.popular || now - this.popular.at > POPULAR_TTL_MS) {
      this.popular = { at: now, value: await this.reader.popularItems(this.options.popularWindowDays, POPULAR_LIMIT) };
    }
    return this.popular.value;
  }

  /**
   * The model a request is served by: the active one, an experiment variant's
   * version (kept loaded beside it; if it cannot be loaded, the active one
   * serves and the response says which version answered), or none for the
   * popular variant. Release what it returns.
   */
  private async modelFor(serving: Serving): Promise<PooledModel | undefined> {
    if (serving === undefined) return this.models.current?.acquire();
    if (serving.strategy === 'popular') return undefined;
    if (serving.modelVersion === null || serving.modelVersion === this.models.current?.version) return this.models.current?.acquire();
    try {
      return await this.models.acquireInspectable(serving.modelVersion);
    } catch {
      return this.models.current?.acquire();
    }
  }

  /** The user's history and, when a model serves, its state: from the cache, else from the database. */
  private async user(externalId: string, model: PooledModel | undefined): Promise<CachedUser> {
    const cached = this.users.get(externalId);
    const version = model?.version ?? null;
    if (cached && cached.version === version) {
      this.onCacheLookup(true);
      return cached;
    }
    this.onCacheLookup(false);
    const readAt = this.epoch;
    let owner = cached?.owner;
    if (!owner) {
      const id = await this.reader.userId(externalId);
      owner = id === undefined ? EMPTY_OWNER : toOwner(await this.reader.userHistory(id).then((h) => [h.items, h.types] as const));
    }
    const { encoded, state, shortlist } = await represent(model, owner);
    const entry: CachedUser = { owner, version, encoded, state, shortlist };
    // Answer with what was read either way; cache it only if no event arrived for the user meanwhile,
    // and only if the version it was computed under still serves (the cache is that version's).
    if (!this.changedSince(externalId, readAt) && (this.models.current?.version ?? null) === version) this.users.set(externalId, entry);
    return entry;
  }

  private async inlineOwner(events: readonly InlineEvent[]): Promise<Owner> {
    const items: number[] = [];
    const types: number[] = [];
    for (const event of events) {
      const entry = this.catalog.byExternalId(event.item);
      if (!entry) continue; // an item the catalogue does not know cannot inform the model or the filters
      let type = this.eventTypes.get(event.type);
      if (type === undefined) {
        this.eventTypes = await this.reader.eventTypes();
        type = this.eventTypes.get(event.type) ?? 0;
      }
      items.push(entry.id);
      types.push(type);
    }
    return { ...toOwner([Int32Array.from(items), Int32Array.from(types)]), events: events.length };
  }

  /** Internal ids the owner's exclusion policy and excludeItems rule out. */
  private blockedInternal(owner: Owner, filters: Filters): Set<number> {
    const blocked = new Set<number>(filters.exclude === 'seen' ? owner.items : filters.exclude === 'purchased' ? owner.purchased : []);
    for (const id of filters.excludeItems ?? []) {
      const entry = this.catalog.byExternalId(id);
      if (entry) blocked.add(entry.id);
    }
    return blocked;
  }

  /**
   * The one filter rule of every route (model, popular fallback, re-ranking): an item is kept when
   * the catalogue knows it, it is active, the owner's exclusion policy and excludeItems leave it,
   * and it is in the category and in includeItems when they are given; otherwise, why not.
   */
  private itemRule(owner: Owner, filters: Filters, now: number): (entry: CatalogItem | undefined) => 'kept' | 'unknown' | 'inactive' | 'filtered' {
    const blocked = this.blockedInternal(owner, filters);
    const include = filters.includeItems ? new Set(filters.includeItems) : undefined;
    const { category, where } = filters;
    return (entry) => {
      if (entry === undefined) return 'unknown';
      if (!entry.active) return 'inactive';
      const left =
        blocked.has(entry.id) || (category !== undefined && entry.category !== category) || (include !== undefined && !include.has(entry.externalId)) || (where !== undefined && !where.test(entry, now));
      return left ? 'filtered' : 'kept';
    };
  }

  /** The filter rule over model indices (a filter rule through its cached mask). */
  private keeper(model: PooledModel, owner: Owner, filters: Filters): (index: number) => boolean {
    const view = this.view(model);
    const rule = this.itemRule(owner, { ...filters, where: undefined }, Date.now());
    const mask = filters.where && this.ruleMask(model, view, filters.where);
    return mask ? (index) => mask[index] === 1 && rule(view.entries[index]) === 'kept' : (index) => rule(view.entries[index]) === 'kept';
  }

  /** Which of a model's indices a filter rule keeps, computed once per rule, model and catalogue (and minute, for `age`). */
  private ruleMask(model: PooledModel, view: ModelCatalogView, where: ItemFilter): Uint8Array {
    const key = `${model.version}:${view.generation}:${where.text}`;
    const now = Date.now();
    const cached = this.ruleMasks.get(key);
    if (cached && !(where.usesAge && now - cached.at > AGE_RULE_TTL_MS)) return cached.mask;
    const mask = new Uint8Array(view.entries.length);
    for (let index = 1; index < view.entries.length; index++) {
      const entry = view.entries[index];
      if (entry && where.test(entry, now)) mask[index] = 1;
    }
    this.ruleMasks.set(key, { at: now, mask });
    return mask;
  }

  /** The boost factor of each of a model's indices, computed as ruleMask is. */
  private boostTable(model: PooledModel, view: ModelCatalogView, boosts: ItemBoosts): BoostTable {
    const key = `${model.version}:${view.generation}:${boosts.text}`;
    const now = Date.now();
    const cached = this.ruleBoosts.get(key);
    if (cached && !(boosts.usesAge && now - cached.at > AGE_RULE_TTL_MS)) return cached;
    const factors = new Float64Array(view.entries.length).fill(1);
    const logFactors = new Float32Array(view.entries.length);
    for (let index = 1; index < view.entries.length; index++) {
      const entry = view.entries[index];
      if (!entry) continue;
      factors[index] = boosts.factor(entry, now);
      logFactors[index] = Math.log(factors[index]!);
    }
    const table = { at: now, factors, logFactors };
    this.ruleBoosts.set(key, table);
    return table;
  }

  private view(model: PooledModel): ModelCatalogView {
    const current = this.views.get(model);
    if (current && current.generation === this.catalog.generation) return current;
    if (current && current.generation >= this.catalog.changedGeneration && performance.now() - current.builtAt < ADDITIONS_VIEW_REFRESH_MS) return current;
    const entries = new Array<CatalogItem | undefined>(model.numItems + 1);
    for (let index = 1; index <= model.numItems; index++) entries[index] = this.catalog.byInternalId(model.vocabulary.itemAt(index));
    for (let i = 0; i < this.catalog.size; i++) {
      const item = this.catalog.itemAt(i)!;
      if (model.vocabulary.indexOf(item.id) === 0) entries.push(item);
    }
    const view = { generation: this.catalog.generation, entries, builtAt: performance.now() };
    this.views.set(model, view);
    return view;
  }
}

/** A model's new items (the view's entries after its own): their scores from their groups, and each one's position by internal item id. */
interface NewItems {
  readonly scores: NewItemScores;
  readonly positionOf: ReadonlyMap<number, number>;
}

/**
 * A shortlist with the new items whose score it gives (NewItemScores.fromShortlist), best first. Items
 * outside it (the model's own beyond the shortlist, other new items) score at most `floor` (-Infinity when
 * the shortlist holds every one of the model's items).
 */
interface MergedShortlist {
  readonly indices: Int32Array;
  readonly scores: Float32Array;
  readonly floor: number;
  /** How many of the indices are the shortlist's own. */
  readonly ownLength: number;
}

function withFresh(shortlist: Shortlist, fresh: Float32Array | undefined, known: number): MergedShortlist {
  const own = shortlist.indices.length;
  const floor = own >= known ? -Infinity : own > 0 ? shortlist.scores[own - 1]! : Infinity; // best first: the last is the lowest
  if (!fresh) return { indices: shortlist.indices, scores: shortlist.scores, floor, ownLength: own };
  const order: number[] = [];
  for (let j = 0; j < own; j++) order.push(j);
  for (let i = 0; i < fresh.length; i++) if (fresh[i]! > -Infinity) order.push(own + i); // NaN (no peer shortlisted) and -Infinity (no group) stay out
  const indexOf = (j: number): number => (j < own ? shortlist.indices[j]! : known + 1 + (j - own));
  const scoreOf = (j: number): number => (j < own ? shortlist.scores[j]! : fresh[j - own]!);
  order.sort((a, b) => scoreOf(b) - scoreOf(a) || indexOf(a) - indexOf(b));
  return { indices: Int32Array.from(order, indexOf), scores: Float32Array.from(order, scoreOf), floor, ownLength: own };
}

/** Every item's score, the new items' after the model's own. */
function withFreshScores(scores: Float32Array, fresh: Float32Array): Float32Array {
  const out = new Float32Array(scores.length + fresh.length);
  out.set(scores);
  out.set(fresh, scores.length);
  return out;
}

const NO_ITEMS = new Int32Array(0);
const EMPTY_OWNER: Owner = { events: 0, items: NO_ITEMS, types: NO_ITEMS, purchased: NO_ITEMS };

function toOwner([items, types]: readonly [Int32Array, Int32Array]): Owner {
  let purchases = 0;
  for (let i = 0; i < items.length; i++) if (types[i] === PURCHASE) purchases++;
  if (purchases === 0) return { events: items.length, items, types, purchased: NO_ITEMS };
  const purchased = new Set<number>();
  for (let i = 0; i < items.length; i++) if (types[i] === PURCHASE) purchased.add(items[i]!);
  return { events: items.length, items, types, purchased: Int32Array.from(purchased) };
}

/** The owner's history in the model's terms, its state and shortlist (none without a model or a known item). */
async function represent(model: PooledModel | undefined, owner: Owner): Promise<{ encoded: ModelHistory | undefined; state: UserState | undefined; shortlist: Shortlist | undefined }> {
  const encoded = model?.encode(owner.items, owner.types);
  if (!model || !encoded || encoded.items.length === 0) return { encoded, state: undefined, shortlist: undefined };
  const { state, shortlist } = await model.represent(encoded);
  return { encoded, state, shortlist };
}

function toItem(entry: CatalogItem, probability: number, score: number, boost?: number): RecommendedItem {
  const item: RecommendedItem = { item: entry.externalId, title: entry.title, category: entry.category, price: entry.price, probability, score };
  return boost === undefined ? item : { ...item, boost };
}

/** The boost factor of an item when rules are given (undefined: no boost field in the answer). */
function boostOf(boosts: ItemBoosts | undefined, entry: CatalogItem, now: number): number | undefined {
  return boosts?.factor(entry, now);
}

/** Most probable × boosted first (boost 1 without rules), then by item id. */
function byBoostedProbability(a: RecommendedItem, b: RecommendedItem): number {
  return b.probability * (b.boost ?? 1) - a.probability * (a.boost ?? 1) || b.score - a.score || (a.item < b.item ? -1 : 1);
}
