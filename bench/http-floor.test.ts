import { describe, expect, it } from 'vitest';
import { NOISY_FLOOR_MS, noisyMachineNote, type FloorResult } from './http-floor.js';

const gc = { scavenges: 0, scavenge_median_ms: 0, scavenge_p90_ms: 0, scavenge_max_ms: 0, mark_compacts: 0, paused_ms: 0 };
const server = (name: FloorResult['server'], p99s: number[]): FloorResult => ({
  server: name,
  runs: p99s.map((p99_ms) => ({ p50_ms: 1, p99_ms, max_ms: p99_ms * 2, server_cpu_us_per_request: null, load_generator_cpu_us_per_request: 100 })),
  gc,
});

describe('a machine too noisy to judge a tail by', () => {
  it('is one where the server as attnrec serves it, doing no work, had its best p99 past (c)’s 10 ms', () => {
    // 2026-12-06 17:44: express_born 14.13 / 11 ms, node:http 17.06 / 17.8 ms.
    const note = noisyMachineNote({ rate: 1_000, servers: [server('node_http', [17.06, 17.8]), server('express_born', [14.13, 11])] });
    expect(note).toContain('p99 of 11 ms at 1000 req/s');
    expect(NOISY_FLOOR_MS).toBe(10);
  });

  it('is not one where a single run was slow but the best was within 10 ms, nor one with no floor measured', () => {
    // 2026-12-05 18:50: express_born 1.57 / 1.52 ms; plain node:http's slower runs do not count.
    expect(noisyMachineNote({ rate: 1_000, servers: [server('node_http', [30, 40]), server('express_born', [25, 9.9])] })).toBeUndefined();
    expect(noisyMachineNote({ rate: 1_000, servers: [server('node_http', [17, 18])] })).toBeUndefined();
  });
});
