/**
 * Scenario (e)'s limit beside the shoppers, as the FLOP count and the matMul peak are the inference
 * scenarios' limit: what the machine's cores could carry at most, by the CPU each part was measured to
 * cost alone in the same run.
 *
 * - The shoppers at the mixed phase's rate cost what (a)'s open-loop run at that rate cost: the server's
 *   CPU and the load generator's, per second of the run.
 * - An ingested event costs what ingestion alone cost: the server's CPU and the load generator's, per
 *   event stored.
 * - With every core busy and nothing else running, the cores the shoppers leave carry at most
 *   (cores − shoppers' cores) ÷ CPU per event events a second. Latency grows without bound as a machine
 *   nears full use, so the bound is optimistic; a phase that stored less while it used fewer cores than it
 *   had was held back by something other than the cores (the bulk governor, docs/serving-performance.md).
 */
export interface CpuMeasured {
  /** The server's CPU seconds over the run. */
  readonly server_cpu_s: number;
  /** The load generator's own CPU seconds over the run. */
  readonly generator_cpu_s: number;
  /** The run's length in seconds. */
  readonly seconds: number;
}

export interface IngestionBudget {
  readonly cores: number;
  /** The shoppers alone at the mixed phase's rate: server and load generator CPU seconds a second. */
  readonly shoppers_cores: number;
  /** Ingestion alone: server and load generator CPU µs per stored event. */
  readonly cpu_us_per_event: number;
  /** (cores − shoppers_cores) ÷ cpu_us_per_event: every core busy; no more can be stored beside those shoppers here. */
  readonly bound_events_per_s: number;
  /** What the mixed phase used of the cores: server and load generator CPU seconds a second. */
  readonly used_cores: number;
}

export function ingestionBudget(input: { cores: number; shoppers: CpuMeasured; ingestion: CpuMeasured & { readonly events: number }; mixed: CpuMeasured }): IngestionBudget {
  const { cores, shoppers, ingestion, mixed } = input;
  if (!(cores > 0)) throw new RangeError(`cores must be positive; got ${cores}`);
  for (const [name, run] of Object.entries({ shoppers, ingestion, mixed })) {
    if (!(run.seconds > 0)) throw new RangeError(`${name}: seconds must be positive; got ${run.seconds}`);
  }
  if (!(ingestion.events > 0)) throw new RangeError(`ingestion stored no event; got ${ingestion.events}`);
  const shoppersCores = (shoppers.server_cpu_s + shoppers.generator_cpu_s) / shoppers.seconds;
  const perEvent = (ingestion.server_cpu_s + ingestion.generator_cpu_s) / ingestion.events;
  return {
    cores,
    shoppers_cores: round(shoppersCores, 3),
    cpu_us_per_event: round(perEvent * 1e6, 1),
    bound_events_per_s: Math.max(0, Math.floor((cores - shoppersCores) / perEvent)),
    used_cores: round((mixed.server_cpu_s + mixed.generator_cpu_s) / mixed.seconds, 3),
  };
}

function round(x: number, digits: number): number {
  return Math.round(x * 10 ** digits) / 10 ** digits;
}
