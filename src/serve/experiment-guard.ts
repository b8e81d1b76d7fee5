import { stopExperiment, type Experiment } from '../data/experiments.js';
import { variantCounts } from '../data/online-metrics.js';
import type { Store } from '../data/store.js';
import { compareProportions } from '../stats/online-tests.js';

/**
 * The guard rail of a running experiment: once the control and a variant each
 * have guardrail.minImpressions impressions, the variant's purchase
 * conversion is tested against control's (two-proportion z-test, one-sided);
 * if it is worse at guardrail.alpha the experiment stops itself and says why.
 * It is checked on every model poll, so it looks at the data many times: a
 * strict alpha (the default 0.01) keeps the chance of stopping a variant that
 * is not worse small over many looks, at the price of stopping a bad one later.
 * Returns the reason when it stopped the experiment.
 */
export async function checkGuardrail(store: Store, experiment: Experiment, now = Date.now()): Promise<string | undefined> {
  const rail = experiment.guardrail;
  if (!rail || experiment.status !== 'running' || !experiment.startedAt) return undefined;
  const counts = await variantCounts(store, experiment, now);
  const control = experiment.variants.find((v) => v.control);
  const base = control && counts.get(control.name);
  if (!base || base.impressions < rail.minImpressions) return undefined;
  for (const variant of experiment.variants) {
    if (variant.control) continue;
    const c = counts.get(variant.name)!;
    if (c.impressions < rail.minImpressions) continue;
    const test = compareProportions({ successes: base.purchased, n: base.impressions }, { successes: c.purchased, n: c.impressions });
    if (test.pWorse < rail.alpha) {
      const rate = (s: number, n: number) => `${((100 * s) / n).toFixed(2)} % (${s}/${n})`;
      const reason = `guard rail: variant '${variant.name}' converts worse than control '${control!.name}', ${rate(c.purchased, c.impressions)} against ${rate(base.purchased, base.impressions)}, one-sided p = ${test.pWorse.toPrecision(3)} < ${rail.alpha} (${test.test})`;
      try {
        await stopExperiment(store, experiment.id, reason);
      } catch (error) {
        // Another replica's guard (or an admin) stopped it first.
        if ((error as { code?: string }).code === 'EXPERIMENT_STOPPED') return undefined;
        throw error;
      }
      return reason;
    }
  }
  return undefined;
}
