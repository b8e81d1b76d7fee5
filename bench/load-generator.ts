import { connect, type Socket } from 'node:net';
import { PerformanceObserver } from 'node:perf_hooks';

/**
 * The serve benchmark's HTTP load generator: what it does, exactly.
 *
 * Connections. A fixed pool of `connections` keep-alive HTTP/1.1 TCP
 * connections (node:net sockets, Nagle off) is opened before the clock
 * starts, so connecting is not in any latency. A connection carries one
 * request at a time (no pipelining). If the server closes it (an error, a
 * `Connection: close` answer, a keep-alive timeout) it is reopened when next
 * needed, and that connect time counts in the request that needed it.
 *
 * Requests. A request is a sequence of steps (e.g. POST an event, then GET
 * recommendations) run on one connection: each step's bytes are written when
 * the previous step's answer has arrived in full. `next()` builds each request
 * when it is about to be sent. Answers are parsed minimally: status line,
 * headers, a Content-Length body (a chunked answer or one without a length
 * counts as an error: the attnrec server sends neither, as Express's res.json
 * and res.send set Content-Length). A step whose status is not 2xx is counted
 * as non-2xx and the sequence goes on; a socket error, a close before the
 * whole answer, or no answer within `timeoutSeconds` (checked every 250 ms)
 * counts as an error, ends that request (its later steps are not sent) and
 * the connection is reopened for the next one.
 *
 * Open loop (`mode: 'open'`, at `rate` requests/s): request i is due at
 * t0 + i / rate, for rate × seconds requests, evenly spaced (no bursts). A
 * timer wakes at each due time (Node timers have ~1 ms resolution) and hands
 * every due request to an idle connection, or to the back of a FIFO queue
 * when all `connections` are busy; a connection that finishes takes the head
 * of the queue. Latency is measured from the due time, not from the moment
 * the bytes were written, so time spent queued behind a slow answer counts
 * (coordinated omission corrected): a server that stalls makes every request
 * due during the stall late by what it waited. How late the generator itself
 * was to wake is reported as `schedule_lag_ms` (it counts in the latencies
 * too), and the time from due to written as `wait_ms`.
 *
 * Closed loop (`mode: 'closed'`): each of the `connections` sends its next
 * request as soon as it has the previous answer, for `seconds`; latency is
 * measured from the write. Requests/s is the server's throughput at a
 * concurrency of `connections`.
 *
 * End of a run. No request is started after the schedule (open) or the
 * duration (closed) ends; those under way get up to `drainSeconds` to finish.
 * Requests still queued or in flight then are `abandoned` (not errors: the
 * generator gave up on them; a run with any is overloaded, its percentiles
 * describe only the answered ones). `rps` counts requests answered within
 * `seconds` of t0.
 *
 * Latencies. Per step name: every sample kept (a Float64Array), percentiles
 * by nearest rank over all answered steps of that name (2xx or not). The
 * first step of a request counts from its due time (open) or its write
 * (closed); each later step from its own write. `request` is the whole
 * sequence, due time (or first write) to last answer. With `windowSeconds`,
 * the same per window of due time (open) or start time (closed), so a window
 * holds the requests that were due in it.
 */
export interface Step {
  /** Samples and counts are kept per step name. */
  readonly name: string;
  /** The whole HTTP/1.1 request, as written to the socket (see httpRequest). */
  readonly bytes: Buffer;
}

export type LoadRequest = readonly Step[];

export interface LoadOptions {
  readonly host: string;
  readonly port: number;
  readonly mode: 'open' | 'closed';
  /** Open loop: requests per second, evenly spaced. */
  readonly rate?: number;
  readonly connections: number;
  readonly seconds: number;
  /** Builds the next request (called when it is sent, or queued in an open loop). */
  readonly next: () => LoadRequest;
  /** Stop after this many requests (tests); otherwise rate × seconds (open) or the duration (closed). */
  readonly requests?: number;
  /** Time given to requests under way after the last one started (default 5). */
  readonly drainSeconds?: number;
  /** A step unanswered this long is an error (default 30). */
  readonly timeoutSeconds?: number;
  /** Also summarise per window of this many seconds. */
  readonly windowSeconds?: number;
  /** Called once the connections are open, with t0 (performance.now() milliseconds). */
  readonly onStart?: (t0: number) => void;
}

export interface LatencyStats {
  readonly count: number;
  readonly p50_ms: number | null;
  readonly p90_ms: number | null;
  readonly p99_ms: number | null;
  readonly max_ms: number | null;
  readonly mean_ms: number | null;
}

export interface StepStats extends LatencyStats {
  readonly non2xx: number;
  readonly errors: number;
}

export interface WindowStats {
  readonly from_s: number;
  readonly to_s: number;
  /** Requests due (open) or started (closed) in the window. */
  readonly requests: number;
  /** Of those: any step non-2xx or an error. */
  readonly failed: number;
  readonly abandoned: number;
  readonly request: LatencyStats;
  readonly steps: Record<string, StepStats>;
}

export interface LoadResult {
  readonly mode: 'open' | 'closed';
  /** Open loop: the offered rate. */
  readonly offered_rps?: number;
  readonly connections: number;
  readonly seconds: number;
  /** Requests due (open) or started (closed). */
  readonly requests: number;
  /** Requests whose every step was answered (2xx or not). */
  readonly completed: number;
  /** Requests with any non-2xx step or an error. */
  readonly failed: number;
  /** Requests given up at the end (queued or in flight after the drain time). */
  readonly abandoned: number;
  /** Requests completed within `seconds` of t0, per second. */
  readonly rps: number;
  readonly request: LatencyStats;
  readonly steps: Record<string, StepStats>;
  /** Non-2xx statuses and error kinds, with counts. */
  readonly statuses: Record<string, number>;
  readonly error_kinds: Record<string, number>;
  /** Open loop: due time to first byte written (queueing for a connection plus timer lateness). */
  readonly wait_ms?: LatencyStats;
  /** Open loop: how late the timer handed out due requests. */
  readonly schedule_lag_ms?: LatencyStats;
  /** CPU seconds of this (the generator's) whole process during the run. */
  readonly generator_cpu_s: number;
  /**
   * The generator's own garbage-collection pauses during the run (its main thread stops: nothing is sent or
   * read), and how many of the requests at or over the p99 were under way during one of at least 1 ms: the
   * part of the tail that is the load generator's, not the server's.
   */
  readonly generator_gc: GeneratorGc;
  readonly windows?: WindowStats[];
}

export interface GeneratorGc {
  readonly pauses: number;
  readonly total_ms: number;
  readonly max_ms: number;
  readonly over_10ms: number;
  readonly tail_requests: number;
  readonly tail_requests_during_a_pause: number;
}

/** Records this process's GC pauses (start and end, performance.now() time) until stop(). */
function watchGc(): { pauses: Float64Array[]; stop(): void } {
  const pauses: Float64Array[] = [];
  const take = (entries: readonly PerformanceEntry[]): void => {
    for (const entry of entries) pauses.push(Float64Array.of(entry.startTime, entry.startTime + entry.duration));
  };
  const observer = new PerformanceObserver((list) => take(list.getEntries()));
  observer.observe({ entryTypes: ['gc'] });
  return {
    pauses,
    stop: () => {
      take(observer.takeRecords());
      observer.disconnect();
    },
  };
}

function generatorGc(pauses: readonly Float64Array[], t0: number, at: Float64Array, latency: Float64Array, p99: number | null): GeneratorGc {
  let total = 0;
  let max = 0;
  let over10 = 0;
  for (const [from, to] of pauses) {
    const d = to! - from!;
    total += d;
    max = Math.max(max, d);
    if (d > 10) over10++;
  }
  const long = pauses.filter(([from, to]) => to! - from! >= 1);
  let tail = 0;
  let during = 0;
  if (p99 !== null) {
    for (let i = 0; i < latency.length; i++) {
      if (latency[i]! < p99) continue;
      tail++;
      const start = t0 + at[i]!;
      const end = start + latency[i]!;
      if (long.some(([from, to]) => from! < end && to! > start)) during++;
    }
  }
  return { pauses: pauses.length, total_ms: round2(total), max_ms: round2(max), over_10ms: over10, tail_requests: tail, tail_requests_during_a_pause: during };
}

/** The bytes of one keep-alive HTTP/1.1 request; a body is sent as JSON. */
export function httpRequest(name: string, method: string, path: string, options: { host: string; headers?: Record<string, string>; body?: string }): Step {
  let head = `${method} ${path} HTTP/1.1\r\nHost: ${options.host}\r\nConnection: keep-alive\r\n`;
  for (const [key, value] of Object.entries(options.headers ?? {})) head += `${key}: ${value}\r\n`;
  if (options.body !== undefined) {
    head += `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(options.body)}\r\n\r\n`;
    return { name, bytes: Buffer.from(head + options.body) };
  }
  return { name, bytes: Buffer.from(`${head}\r\n`) };
}

/** A growable array of float64 samples. */
export class Samples {
  private data = new Float64Array(1024);
  length = 0;

  push(x: number): void {
    if (this.length === this.data.length) {
      const bigger = new Float64Array(this.data.length * 2);
      bigger.set(this.data);
      this.data = bigger;
    }
    this.data[this.length++] = x;
  }

  values(): Float64Array {
    return this.data.subarray(0, this.length);
  }
}

/** Nearest-rank percentiles of latencies in milliseconds (2 decimals). */
export function latencyStats(values: Float64Array | number[]): LatencyStats {
  const sorted = Float64Array.from(values).sort();
  const n = sorted.length;
  if (n === 0) return { count: 0, p50_ms: null, p90_ms: null, p99_ms: null, max_ms: null, mean_ms: null };
  const at = (q: number): number => round2(sorted[Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1))]!);
  let sum = 0;
  for (const x of sorted) sum += x;
  return { count: n, p50_ms: at(0.5), p90_ms: at(0.9), p99_ms: at(0.99), max_ms: round2(sorted[n - 1]!), mean_ms: round2(sum / n) };
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}

/** Samples of one step name: latencies and the window key (due offset, ms) of the request each belongs to. */
class StepRecord {
  readonly latency = new Samples();
  readonly at = new Samples();
  /** Offsets of requests in which this step was non-2xx / an error. */
  readonly non2xxAt = new Samples();
  readonly errorAt = new Samples();
}

/** One request under way on a connection. */
interface Active {
  readonly steps: LoadRequest;
  /** Due time (open) or start time (closed), performance.now() ms. */
  readonly due: number;
  index: number;
  stepSent: number;
  failed: boolean;
}

type Done = (error: string | null, status: number) => void;

/** One keep-alive connection with a minimal HTTP/1.1 response parser. */
class Connection {
  private socket: Socket | undefined;
  private buffer: Buffer | undefined;
  private bodyStart = -1;
  private contentLength = 0;
  private status = 0;
  private closeAfter = false;
  private done: Done | undefined;
  /** When the step in flight was written (for the timeout sweep), 0 when idle. */
  sentAt = 0;
  active: Active | undefined;

  constructor(
    private readonly host: string,
    private readonly port: number,
  ) {}

  open(): Promise<void> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: this.host, port: this.port });
      socket.setNoDelay(true);
      const failed = (error: Error): void => reject(error);
      socket.once('error', failed);
      socket.once('connect', () => {
        socket.off('error', failed);
        this.attach(socket);
        resolve();
      });
    });
  }

  private attach(socket: Socket): void {
    this.socket = socket;
    // Events of a socket this connection has already dropped are ignored: they would end the next request.
    socket.on('data', (chunk: Buffer) => {
      if (this.socket === socket) this.onData(chunk);
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (this.socket === socket) this.fail(error.code ?? error.message);
    });
    socket.on('close', () => {
      if (this.socket === socket) this.fail('closed');
    });
  }

  /** Writes one request; `done` gets an error kind or null and the status. Reconnects first if needed. */
  send(bytes: Buffer, done: Done): void {
    this.done = done;
    this.buffer = undefined;
    this.bodyStart = -1;
    this.sentAt = performance.now();
    if (this.socket && !this.socket.destroyed) {
      this.socket.write(bytes);
      return;
    }
    this.open().then(
      () => {
        if (this.done === done) this.socket!.write(bytes);
      },
      (error: NodeJS.ErrnoException) => this.fail(`connect ${error.code ?? error.message}`),
    );
  }

  /** Ends the step in flight as an error and drops the socket. */
  fail(kind: string): void {
    const done = this.done;
    const socket = this.socket;
    this.socket = undefined;
    socket?.destroy();
    if (!done) return;
    this.done = undefined;
    this.sentAt = 0;
    done(kind, 0);
  }

  close(): void {
    this.done = undefined;
    this.socket?.destroy();
    this.socket = undefined;
  }

  private onData(chunk: Buffer): void {
    if (!this.done) {
      // Bytes nobody asked for: the connection is out of step; start afresh.
      this.socket?.destroy();
      return;
    }
    this.buffer = this.buffer ? Buffer.concat([this.buffer, chunk]) : chunk;
    if (this.bodyStart < 0) {
      const end = this.buffer.indexOf('\r\n\r\n', 0, 'latin1');
      if (end < 0) return;
      const head = this.buffer.toString('latin1', 0, end);
      this.status = Number(head.slice(9, 12));
      if (!head.startsWith('HTTP/1.') || !Number.isInteger(this.status)) return this.fail('bad status line');
      if (/\r\ntransfer-encoding:\s*chunked/i.test(head)) return this.fail('chunked response (unsupported)');
      const length = /\r\ncontent-length:\s*(\d+)/i.exec(head);
      if (!length && this.status !== 204 && this.status !== 304) return this.fail('no content-length');
      this.contentLength = length ? Number(length[1]) : 0;
      this.closeAfter = /\r\nconnection:\s*close/i.test(head);
      this.bodyStart = end + 4;
    }
    if (this.buffer.length - this.bodyStart < this.contentLength) return;
    const done = this.done;
    this.done = undefined;
    this.sentAt = 0;
    this.buffer = undefined;
    this.bodyStart = -1;
    if (this.closeAfter) {
      const socket = this.socket;
      this.socket = undefined;
      socket?.destroy();
    }
    done(null, this.status);
  }
}

/** Runs one load; see the comment at the top of this file. */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const { mode, connections: poolSize, seconds } = options;
  if (mode === 'open' && !(options.rate! > 0)) throw new Error('an open loop needs a rate > 0');
  const drainMs = (options.drainSeconds ?? 5) * 1000;
  const timeoutMs = (options.timeoutSeconds ?? 30) * 1000;
  const pool = Array.from({ length: poolSize }, () => new Connection(options.host, options.port));
  await Promise.all(pool.map((c) => c.open()));

  const records = new Map<string, StepRecord>();
  const record = (name: string): StepRecord => {
    let r = records.get(name);
    if (!r) records.set(name, (r = new StepRecord()));
    return r;
  };
  const requestLatency = new Samples();
  const requestAt = new Samples();
  /** Due (open) or start (closed) offset of every request, answered or not. */
  const dueAt = new Samples();
  const failedAt = new Samples();
  const abandonedAt = new Samples();
  const wait = new Samples();
  const lag = new Samples();
  const statuses: Record<string, number> = {};
  const errorKinds: Record<string, number> = {};
  let requests = 0;
  let completed = 0;
  let completedInTime = 0;
  const cpuBefore = process.cpuUsage();
  const gc = watchGc();

  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  options.onStart?.(t0);
  const total = mode === 'open' ? Math.min(options.requests ?? Infinity, Math.round(options.rate! * seconds)) : (options.requests ?? Infinity);
  const idle: Connection[] = [...pool];
  const queue: number[] = [];
  let queueHead = 0;
  let scheduling = true;
  let finish: () => void = () => {};
  const finished = new Promise<void>((resolve) => (finish = resolve));
  let endSchedule: () => void = () => {};
  const scheduleEnded = new Promise<void>((resolve) => (endSchedule = resolve));
  const underWay = (): number => poolSize - idle.length + (queue.length - queueHead);

  const start = (connection: Connection, due: number): void => {
    const now = performance.now();
    if (mode === 'open') wait.push(now - due);
    else dueAt.push(due - t0);
    connection.active = { steps: options.next(), due, index: 0, stepSent: now, failed: false };
    sendStep(connection);
  };

  const sendStep = (connection: Connection): void => {
    const active = connection.active!;
    const step = active.steps[active.index]!;
    active.stepSent = performance.now();
    connection.send(step.bytes, (error, status) => answered(connection, error, status));
  };

  const answered = (connection: Connection, error: string | null, status: number): void => {
    const active = connection.active!;
    const now = performance.now();
    const step = active.steps[active.index]!;
    const r = record(step.name);
    const at = active.due - t0;
    if (error !== null) {
      r.errorAt.push(at);
      errorKinds[error] = (errorKinds[error] ?? 0) + 1;
      active.failed = true;
      return release(connection, now, false);
    }
    r.latency.push(now - (active.index === 0 ? active.due : active.stepSent));
    r.at.push(at);
    if (status < 200 || status > 299) {
      r.non2xxAt.push(at);
      statuses[String(status)] = (statuses[String(status)] ?? 0) + 1;
      active.failed = true;
    }
    if (++active.index < active.steps.length) return sendStep(connection);
    release(connection, now, true);
  };

  const release = (connection: Connection, now: number, complete: boolean): void => {
    const active = connection.active!;
    connection.active = undefined;
    const at = active.due - t0;
    if (complete) {
      completed++;
      if (now <= end) completedInTime++;
      requestLatency.push(now - active.due);
      requestAt.push(at);
    }
    if (active.failed) failedAt.push(at);
    // Next: the head of the queue (open), a new request while the duration lasts (closed), or idle.
    if (queueHead < queue.length) {
      start(connection, queue[queueHead++]!);
    } else if (mode === 'closed' && scheduling && now < end && requests < total) {
      requests++;
      start(connection, now);
    } else {
      idle.push(connection);
      if (mode === 'closed' && requests >= total) stopScheduling();
      if (!scheduling && underWay() === 0) finish();
    }
  };

  const timeouts = setInterval(() => {
    const now = performance.now();
    for (const c of pool) if (c.sentAt > 0 && now - c.sentAt > timeoutMs) c.fail('timeout');
  }, 250);

  let timer: NodeJS.Timeout | undefined;
  function stopScheduling(): void {
    scheduling = false;
    endSchedule();
    if (underWay() === 0) finish();
  }
  if (mode === 'open') {
    const interval = 1000 / options.rate!;
    let index = 0;
    const tick = (): void => {
      const now = performance.now();
      while (index < total && t0 + index * interval <= now) {
        const due = t0 + index * interval;
        index++;
        requests++;
        dueAt.push(due - t0);
        lag.push(now - due);
        const connection = idle.pop();
        if (connection) start(connection, due);
        else queue.push(due);
      }
      if (queueHead > 4096 && queueHead * 2 > queue.length) {
        queue.splice(0, queueHead);
        queueHead = 0;
      }
      if (index < total) timer = setTimeout(tick, Math.max(0, t0 + index * interval - performance.now()));
      else stopScheduling();
    };
    tick();
  } else {
    while (idle.length > 0 && requests < total) {
      requests++;
      start(idle.pop()!, performance.now());
    }
    timer = setTimeout(stopScheduling, seconds * 1000);
  }

  // Wait for the schedule to end, then for the last answers, at most drainSeconds.
  await scheduleEnded;
  let drainTimer: NodeJS.Timeout | undefined;
  await Promise.race([finished, new Promise<void>((resolve) => (drainTimer = setTimeout(resolve, drainMs)))]);
  clearTimeout(drainTimer);
  clearTimeout(timer);
  clearInterval(timeouts);
  for (let i = queueHead; i < queue.length; i++) abandonedAt.push(queue[i]! - t0);
  for (const c of pool) {
    if (c.active) abandonedAt.push(c.active.due - t0);
    c.active = undefined;
    c.close();
  }
  const cpu = process.cpuUsage(cpuBefore);
  gc.stop();

  const stepStats = (r: StepRecord, keep?: (at: number) => boolean): StepStats => {
    const latencies = keep ? r.latency.values().filter((_, i) => keep(r.at.values()[i]!)) : r.latency.values();
    const count = (s: Samples): number => (keep ? s.values().filter(keep).length : s.length);
    return { ...latencyStats(latencies), non2xx: count(r.non2xxAt), errors: count(r.errorAt) };
  };
  const steps = Object.fromEntries([...records].map(([name, r]) => [name, stepStats(r)]));
  let windows: WindowStats[] | undefined;
  if (options.windowSeconds) {
    const width = options.windowSeconds * 1000;
    const span = mode === 'open' ? (total / options.rate!) * 1000 : seconds * 1000;
    windows = [];
    for (let from = 0; from < span - 1e-6; from += width) {
      const keep = (at: number): boolean => at >= from && at < from + width;
      const inWindow = (s: Samples): number => s.values().filter(keep).length;
      windows.push({
        from_s: round2(from / 1000),
        to_s: round2(Math.min(span, from + width) / 1000),
        requests: inWindow(dueAt),
        failed: inWindow(failedAt),
        abandoned: inWindow(abandonedAt),
        request: latencyStats(requestLatency.values().filter((_, i) => keep(requestAt.values()[i]!))),
        steps: Object.fromEntries([...records].map(([name, r]) => [name, stepStats(r, keep)])),
      });
    }
  }
  const request = latencyStats(requestLatency.values());
  return {
    mode,
    ...(mode === 'open' && { offered_rps: options.rate! }),
    connections: poolSize,
    seconds,
    requests,
    completed,
    failed: failedAt.length,
    abandoned: abandonedAt.length,
    rps: Math.round((completedInTime / seconds) * 10) / 10,
    request,
    steps,
    statuses,
    error_kinds: errorKinds,
    ...(mode === 'open' && { wait_ms: latencyStats(wait.values()), schedule_lag_ms: latencyStats(lag.values()) }),
    generator_cpu_s: Math.round(((cpu.user + cpu.system) / 1e6) * 100) / 100,
    generator_gc: generatorGc(gc.pauses, t0, requestAt.values(), requestLatency.values(), request.p99_ms),
    ...(windows && { windows }),
  };
}
