import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpRequest, latencyStats, runLoad, type LoadRequest } from './load-generator.js';

// A tiny server whose behaviour each path chooses. Tolerances are generous: this runs on a loaded 2-core machine.
let server: Server;
let port = 0;
const hits: { path: string; at: number; socketPort: number; method: string; body: string }[] = [];
let stallNext = 0;

beforeAll(async () => {
  server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      const path = req.url ?? '';
      hits.push({ path, at: performance.now(), socketPort: req.socket.remotePort ?? 0, method: req.method ?? '', body });
      const answer = (status: number): void => void res.writeHead(status, { 'content-type': 'application/json', 'content-length': 11 }).end('{"ok":true}');
      if (path === '/fail') return answer(503);
      if (path === '/drop') return void req.socket.destroy();
      if (path === '/chunked') return void res.writeHead(200).write('abc', () => res.end());
      if (path === '/stall' || stallNext > 0) {
        const wait = stallNext || 200;
        stallNext = 0;
        return void setTimeout(() => answer(200), wait);
      }
      answer(200);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

const get = (name: string, path: string): LoadRequest => [httpRequest(name, 'GET', path, { host: `127.0.0.1:${port}` })];

describe('runLoad', () => {
  it('closed loop: every request is counted once, per step, and a sequence stays on one connection', async () => {
    hits.length = 0;
    const result = await runLoad({
      host: '127.0.0.1',
      port,
      mode: 'closed',
      connections: 3,
      seconds: 5,
      requests: 60,
      next: () => [httpRequest('post', 'POST', '/event', { host: 'x', body: '{"a":1}' }), httpRequest('get', 'GET', '/recs', { host: 'x' })],
    });
    expect(result.requests).toBe(60);
    expect(result.completed).toBe(60);
    expect(result.failed).toBe(0);
    expect(result.steps.post!.count).toBe(60);
    expect(result.steps.get!.count).toBe(60);
    expect(result.request.count).toBe(60);
    expect(hits).toHaveLength(120);
    expect(hits.filter((h) => h.method === 'POST').every((h) => h.body === '{"a":1}')).toBe(true);
    // Each GET follows its POST on the same connection: at most 3 connections, and on each the methods alternate.
    const bySocket = new Map<number, typeof hits>();
    for (const h of hits) bySocket.set(h.socketPort, [...(bySocket.get(h.socketPort) ?? []), h]);
    expect(bySocket.size).toBe(3);
    for (const list of bySocket.values()) list.forEach((h, i) => expect(h.method).toBe(i % 2 === 0 ? 'POST' : 'GET'));
  });

  it('open loop: holds the rate, evenly spaced, within a loose tolerance', async () => {
    hits.length = 0;
    const result = await runLoad({ host: '127.0.0.1', port, mode: 'open', rate: 200, connections: 4, seconds: 1, next: () => get('ok', '/ok') });
    expect(result.requests).toBe(200);
    expect(result.completed).toBe(200);
    expect(result.offered_rps).toBe(200);
    expect(hits).toHaveLength(200);
    const first = hits[0]!.at;
    const span = hits.at(-1)!.at - first;
    expect(span).toBeGreaterThan(800);
    expect(span).toBeLessThan(1_600);
    // Evenly spaced rather than in bursts: each half of the span gets about half of the requests.
    const firstHalf = hits.filter((h) => h.at - first < span / 2).length;
    expect(firstHalf).toBeGreaterThan(60);
    expect(firstHalf).toBeLessThan(140);
    expect(result.rps).toBeGreaterThan(120);
  });

  it('open loop: a stall shows in the latency of the requests queued behind it (coordinated omission corrected)', async () => {
    hits.length = 0;
    let built = 0;
    const result = await runLoad({
      host: '127.0.0.1',
      port,
      mode: 'open',
      rate: 100,
      connections: 1,
      seconds: 0.6,
      // The 20th request stalls 200 ms; the ~20 due during the stall wait on the one connection.
      next: () => (++built === 20 ? get('r', '/stall') : get('r', '/ok')),
    });
    expect(result.completed).toBe(60);
    const latency = result.steps.r!;
    expect(latency.max_ms!).toBeGreaterThan(180);
    expect(latency.p99_ms!).toBeGreaterThan(150);
    // Not only the stalled request: those due during the stall are late by what they waited.
    expect(latency.p90_ms!).toBeGreaterThan(20);
    expect(result.wait_ms!.max_ms!).toBeGreaterThan(100);
    // A closed loop measures from the write, so it sees the stall once.
    built = 0;
    const closed = await runLoad({ host: '127.0.0.1', port, mode: 'closed', connections: 1, seconds: 5, requests: 40, next: () => (++built === 10 ? get('r', '/stall') : get('r', '/ok')) });
    expect(closed.steps.r!.max_ms!).toBeGreaterThan(180);
    expect(closed.steps.r!.p90_ms!).toBeLessThan(100);
  });

  it('counts non-2xx answers, dropped connections and unsupported answers, and reconnects after them', async () => {
    const paths = ['/ok', '/fail', '/drop', '/chunked'];
    let i = 0;
    const result = await runLoad({ host: '127.0.0.1', port, mode: 'closed', connections: 2, seconds: 5, requests: 40, next: () => get('r', paths[i++ % paths.length]!) });
    expect(result.requests).toBe(40);
    expect(result.failed).toBe(30);
    expect(result.steps.r!.non2xx).toBe(10);
    expect(result.steps.r!.errors).toBe(20);
    expect(result.statuses).toEqual({ '503': 10 });
    expect(result.error_kinds['chunked response (unsupported)']).toBe(10);
    expect(Object.values(result.error_kinds).reduce((a, b) => a + b, 0)).toBe(20);
    // Answered steps (2xx or not) have latencies; errors do not.
    expect(result.steps.r!.count).toBe(20);
    expect(result.completed).toBe(20);
  });

  it('summarises per window of due time, failures included', async () => {
    let i = 0;
    const result = await runLoad({ host: '127.0.0.1', port, mode: 'open', rate: 100, connections: 4, seconds: 0.6, windowSeconds: 0.3, next: () => get('r', i++ % 10 === 0 ? '/fail' : '/ok') });
    expect(result.windows).toHaveLength(2);
    expect(result.windows!.map((w) => w.requests)).toEqual([30, 30]);
    expect(result.windows!.map((w) => w.failed)).toEqual([3, 3]);
    expect(result.windows![0]!.steps.r!.count).toBe(30);
    expect(result.windows![1]!.steps.r!.non2xx).toBe(3);
  });

  it("reports its own garbage-collection pauses, so a tail that is the generator's shows as such", async () => {
    let kept: Float64Array[] = [];
    const result = await runLoad({
      host: '127.0.0.1',
      port,
      mode: 'open',
      rate: 200,
      connections: 4,
      seconds: 1,
      // Each request allocates ~4 MB that lives a while: young-generation collections (and promotions) follow.
      next: () => {
        kept.push(new Float64Array(500_000));
        if (kept.length > 20) kept = kept.slice(10);
        return get('gc', '/gc');
      },
    });
    const gc = result.generator_gc;
    expect(gc.pauses).toBeGreaterThan(0);
    expect(gc.total_ms).toBeGreaterThan(0);
    expect(gc.max_ms).toBeLessThanOrEqual(gc.total_ms);
    expect(gc.tail_requests).toBeGreaterThan(0);
    expect(gc.tail_requests).toBeLessThanOrEqual(result.request.count);
    expect(gc.tail_requests_during_a_pause).toBeLessThanOrEqual(gc.tail_requests);
  });

  it('gives up on requests still queued after the drain time and says so', async () => {
    stallNext = 1_500;
    const result = await runLoad({ host: '127.0.0.1', port, mode: 'open', rate: 50, connections: 1, seconds: 0.4, drainSeconds: 0.3, next: () => get('r', '/ok') });
    expect(result.requests).toBe(20);
    expect(result.abandoned).toBe(20);
    expect(result.completed).toBe(0);
    stallNext = 0;
  });
});

describe('latencyStats', () => {
  it('takes percentiles by nearest rank', () => {
    const values = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(latencyStats(values)).toMatchObject({ count: 100, p50_ms: 50, p90_ms: 90, p99_ms: 99, max_ms: 100, mean_ms: 50.5 });
    expect(latencyStats([]).p99_ms).toBeNull();
  });
});
