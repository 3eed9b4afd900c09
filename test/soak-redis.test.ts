/**
 * The soak of issue 7: 3 hub processes joined by a Redis of the test's own, 3 × 300 SDK
 * subscribers of one channel (in two subscriber processes), a publisher sending 5,000 messages
 * through the HTTP API. Meanwhile one node is SIGKILLed (its clients fail over to the others and
 * recover) and Redis is restarted without persistence (every stream gets a new epoch: each
 * subscriber gets `recovered: false` once). At the end every subscriber has seen, per epoch,
 * strictly consecutive offsets — no gap that a `recovered: false` does not explain, no
 * duplicate — and sits at the last offset of the last epoch. A summary with the cause of every
 * gap, duplicate and `recovered: false` is printed.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { provisionalEpochTime } from '../src/stream/epoch.js';
import { freePort, killProcesses, startHubProcess, type HubProcess } from './support/processes.js';
import { OwnRedis } from './support/redis-server.js';
import { mergeStatus, SubscriberProcess } from './support/soak-cluster.js';
import type { Anomaly, SoakReport, SoakStatus } from './support/soak-subscribers.js';

const SECRET = 'soak-test-secret-0123456789abcdef0123456789';
const API_KEY = 'soak-api-key-0123456789abcdef';
const CHANNEL = 'soak:main';
const NODES = 3;
const PER_NODE = 300;
const SUBSCRIBER_PROCESSES = 2;
const MESSAGES = 5_000;
/** Acknowledged publishes before the SIGKILL of a node, and before the Redis restart. */
const KILL_NODE_AT = 1_500;
const RESTART_REDIS_AT = 3_000;
/** Publishes per second at most, and how many may be in flight at once. */
const RATE = 150;
const WINDOW = 8;
const VICTIM = NODES - 1;
/** How long Redis stays down in its restart. */
const REDIS_DOWN_MS = 1_000;

const nodeOptions = (redisUrl: string): Record<string, unknown> => ({
  auth: { secret: SECRET },
  apiKey: API_KEY,
  redisUrl,
  redisPrefix: 'soak',
  positionCheckIntervalMs: 500,
  statsIntervalMs: 5_000,
  namespaces: { soak: { history: { size: 6_000, ttlSeconds: 600 }, clientPublish: 'none' } },
  limits: {
    recoveryMaxPublications: 6_000,
    shutdownSpreadMs: 0,
    shutdownTimeoutMs: 5_000,
    // 900 clients from one IP, reconnecting together after a node dies.
    connectionRatePerIp: { perSecond: 10_000, burst: 10_000 },
  },
});

let redis: OwnRedis | undefined;
const subscriberProcesses: SubscriberProcess[] = [];

afterAll(async () => {
  await Promise.allSettled(subscriberProcesses.map((p) => p.stop()));
  await killProcesses();
  await redis?.down();
}, 30_000);

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls until `check` passes; fails with `what` (and the last status) after `timeoutMs`. */
async function until<T>(probe: () => Promise<T>, check: (v: T) => boolean, what: string, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (check(v)) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last: ${JSON.stringify(v)}`);
    await sleep(100);
  }
}

interface Ack {
  i: number;
  offset: number;
  epoch: string;
  at: number;
}

/**
 * Sends messages 1..MESSAGES through `POST /api/publish`, each with its own idempotency key,
 * WINDOW at a time (so the nodes batch several publications per frame, as under real load).
 * A node that does not answer (killed) → the same key on another node, and that node is skipped
 * for a while; a temporary error (114, HTTP 503: Redis down) → the same key again after a pause,
 * until Redis is back. A retry whose first attempt was applied returns the first result.
 */
class Publisher {
  readonly acks: Ack[] = [];
  readonly retries = new Map<string, number>();
  private failure: Error | undefined;
  private next = 1;
  private rotation = 0;
  /** Nodes that did not answer, and until when they are skipped. */
  private readonly skipUntil = new Map<HubProcess, number>();

  constructor(private readonly nodes: HubProcess[]) {}

  get count(): number {
    return this.acks.length;
  }

  /** Throws if publishing failed (so waiting loops stop early). */
  check(): void {
    if (this.failure) throw this.failure;
  }

  async run(): Promise<void> {
    const started = Date.now();
    const worker = async (): Promise<void> => {
      while (!this.failure && this.next <= MESSAGES) {
        const i = this.next++;
        const due = started + (i * 1000) / RATE;
        if (Date.now() < due) await sleep(due - Date.now());
        this.acks.push(await this.publish(i));
      }
    };
    try {
      await Promise.all(Array.from({ length: WINDOW }, worker));
    } catch (err) {
      this.failure ??= err as Error;
      throw this.failure;
    }
  }

  private retried(cause: string): void {
    this.retries.set(cause, (this.retries.get(cause) ?? 0) + 1);
  }

  /** The next node in turn that is not being skipped (any, if all are). */
  private pick(): HubProcess {
    const now = Date.now();
    for (let k = 0; k < this.nodes.length; k++) {
      const node = this.nodes[this.rotation++ % this.nodes.length]!;
      if ((this.skipUntil.get(node) ?? 0) <= now) return node;
    }
    return this.nodes[this.rotation++ % this.nodes.length]!;
  }

  private async publish(i: number): Promise<Ack> {
    const body = JSON.stringify({ channel: CHANNEL, data: { i }, idempotencyKey: `soak-${i}` });
    const deadline = Date.now() + 30_000;
    for (let attempt = 0; ; attempt++) {
      if (this.failure) throw this.failure;
      if (Date.now() > deadline) throw new Error(`publish ${i}: no success within 30 s (${attempt} attempts)`);
      const node = this.pick();
      let res: Response;
      try {
        res = await fetch(`${node.httpUrl}/api/publish`, {
          method: 'POST',
          headers: { authorization: `apikey ${API_KEY}`, 'content-type': 'application/json' },
          body,
          signal: AbortSignal.timeout(5_000),
        });
      } catch {
        this.retried('node unreachable (SIGKILLed) → same key on another node');
        this.skipUntil.set(node, Date.now() + 2_000);
        await sleep(5);
        continue;
      }
      const reply = (await res.json().catch(() => ({}))) as {
        offset?: number;
        epoch?: string;
        error?: { code: number; temporary?: boolean };
      };
      if (res.status === 200 && typeof reply.offset === 'number' && typeof reply.epoch === 'string') {
        return { i, offset: reply.offset, epoch: reply.epoch, at: Date.now() };
      }
      if (res.status === 503 && reply.error?.code === 114 && reply.error.temporary) {
        this.retried('HTTP 503 / error 114 (Redis unavailable) → same key after 100 ms');
        await sleep(100);
        continue;
      }
      throw new Error(`publish ${i}: unexpected HTTP ${res.status} ${JSON.stringify(reply)}`);
    }
  }
}

async function statusOf(target?: { epoch: string; offset: number }): Promise<SoakStatus> {
  return mergeStatus(await Promise.all(subscriberProcesses.map((p) => p.status(target))));
}

/** min / median / max. */
function describeSpread(xs: number[]): string {
  if (xs.length === 0) return '-';
  const s = [...xs].sort((a, b) => a - b);
  return `${s[0]} / ${s[Math.floor(s.length / 2)]} / ${s.at(-1)} (min / median / max)`;
}

function describeAnomaly(a: Anomaly, events: Array<[string, number]>): string {
  const when = events.filter(([, t]) => t <= a.at).at(-1)?.[0] ?? 'before any event';
  const what =
    a.kind === 'gap'
      ? `expected offset ${a.expected}, got ${a.got} (${a.got - a.expected} missing)`
      : a.kind === 'duplicate'
        ? `offset ${a.got} again after ${a.expected}`
        : `${a.detail ?? ''} at offset ${a.got}`;
  return `    subscriber ${a.sub} on ${a.url || '(no connection)'}: ${what}, epoch ${a.epoch}, ${a.recovered ? 'in a recovery' : 'live'}, after "${when}"`;
}

describe('soak: 3 nodes × 300 subscribers on Redis, a node SIGKILLed and Redis restarted', () => {
  it('ends with zero gaps and zero duplicates at every subscriber', { timeout: 240_000 }, async () => {
    const t0 = Date.now();
    const events: Array<[string, number]> = [];
    const mark = (name: string): void => void events.push([name, Date.now()]);

    redis = await OwnRedis.start();
    const ports = await Promise.all(Array.from({ length: NODES }, () => freePort()));
    const nodes = await Promise.all(ports.map((port) => startHubProcess(nodeOptions(redis!.url), port)));
    const urls = nodes.map((n) => n.wsUrl);
    const total = NODES * PER_NODE;
    const perProcess = Math.ceil(total / SUBSCRIBER_PROCESSES);
    for (let from = 0; from < total; from += perProcess) {
      subscriberProcesses.push(
        await SubscriberProcess.start({
          secret: SECRET,
          channel: CHANNEL,
          urls,
          from,
          count: Math.min(perProcess, total - from),
          backoff: { minMs: 100, maxMs: 2_000, factor: 2 },
        }),
      );
    }
    const initial = await until(statusOf, (s) => s.subscribed === total && s.connected === total, `${total} subscribers`, 60_000);
    // Each subscriber has its home node first: an even spread.
    expect(Object.values(initial.byUrl)).toEqual(nodes.map(() => PER_NODE));
    mark('subscribed');

    const publisher = new Publisher(nodes);
    const publishing = publisher.run();
    publishing.catch(() => undefined);
    const progress = async (): Promise<number> => {
      publisher.check();
      return publisher.count;
    };

    // SIGKILL one node; its subscribers fail over to the other two and recover.
    await until(progress, (n) => n >= KILL_NODE_AT, `${KILL_NODE_AT} publishes`, 60_000);
    mark(`SIGKILL node ${VICTIM}`);
    await nodes[VICTIM]!.kill();
    const failedOver = await until(
      async () => {
        publisher.check();
        return statusOf();
      },
      (s) => s.connected === total && s.subscribed === total && s.byUrl[nodes[VICTIM]!.wsUrl] === undefined,
      'every subscriber back on a live node',
      60_000,
    );
    mark('failover complete');

    // Restart Redis without persistence: every stream is lost, so it gets a new epoch.
    await until(progress, (n) => n >= RESTART_REDIS_AT, `${RESTART_REDIS_AT} publishes`, 60_000);
    const epochBefore = publisher.acks.at(-1)!.epoch;
    mark('Redis stopped (like SHUTDOWN NOSAVE)');
    const restartedAt = Date.now();
    await redis.down();
    // Publishes fail with 503 meanwhile and are retried; then Redis starts again, empty.
    await sleep(REDIS_DOWN_MS);
    await redis.up();
    mark('Redis started again, empty');

    await publishing;
    mark('publisher done');
    // The top of the last epoch: the highest offset acknowledged in it.
    const lastEpoch = publisher.acks.at(-1)!.epoch;
    const final = publisher.acks.filter((a) => a.epoch === lastEpoch).reduce((a, b) => (b.offset > a.offset ? b : a));
    const target = { epoch: final.epoch, offset: final.offset };
    await until(
      () => statusOf(target),
      (s) => s.atTarget === total,
      'every subscriber at the final position',
      60_000,
    );
    mark('all subscribers at the final position');

    const reports: SoakReport[] = await Promise.all(subscriberProcesses.map((p) => p.report()));
    const sum = (f: (r: SoakReport) => number): number => reports.reduce((n, r) => n + f(r), 0);
    const anomalies = reports.flatMap((r) => r.anomalies).sort((a, b) => a.at - b.at);
    const failures = reports.flatMap((r) => r.recoveryFailures);
    const finals = reports.flatMap((r) => r.finals);

    // ---- what the publisher saw ----------------------------------------------------------
    const epochs = [...new Set(publisher.acks.map((a) => a.epoch))];
    const byPosition = new Map(publisher.acks.map((a) => [`${a.epoch}:${a.offset}`, a.i]));
    // Every position one subscriber process saw, with what it held there.
    const seen = new Map<string, number>();
    let contentVsPublisher = 0;
    for (const r of reports) {
      for (const [pos, i] of Object.entries(r.content)) {
        if (byPosition.has(pos) && byPosition.get(pos) !== i) contentVsPublisher += 1;
        if (seen.has(pos) && seen.get(pos) !== i) contentVsPublisher += 1;
        seen.set(pos, i);
      }
    }
    // Positions delivered that no acknowledgement names: applied, and the reply lost with Redis.
    const unacked = [...seen.keys()].filter((pos) => !byPosition.has(pos));
    const finalEpochAcks = publisher.acks.filter((a) => a.epoch === final.epoch).length;

    // ---- the summary -----------------------------------------------------------------------
    const causeOf = (f: (typeof failures)[number]): string =>
      f.since.epoch !== f.position.epoch
        ? f.since.epoch === epochBefore &&
          // The stream's new epoch, or (a resubscribe before the first publish after the restart
          // recreated it) the provisional epoch given for a stream that does not exist.
          (f.position.epoch === final.epoch || provisionalEpochTime(CHANNEL, f.position.epoch) !== undefined)
          ? 'epoch changed after Redis restart (stream lost with Redis)'
          : `epoch changed ${f.since.epoch} → ${f.position.epoch} (not the Redis restart)`
        : `same epoch, ${f.position.offset - f.since.offset} missed (over the recovery limit or expired)`;
    const failureCauses = new Map<string, typeof failures>();
    for (const f of failures) failureCauses.set(causeOf(f), [...(failureCauses.get(causeOf(f)) ?? []), f]);
    const range = (xs: number[]): string => (xs.length ? `${Math.min(...xs)}–${Math.max(...xs)}` : '-');
    const rel = (t: number): string => `${((t - t0) / 1000).toFixed(1)} s`;
    const lines = [
      `soak summary (${((Date.now() - t0) / 1000).toFixed(1)} s): ${total} subscribers (${NODES} nodes × ${PER_NODE}), ${MESSAGES} messages, ${sum((r) => r.received)} deliveries`,
      `  events: ${events.map(([name, t]) => `${name} @${rel(t)}`).join('; ')}`,
      `  publisher: ${publisher.count} acknowledged, epochs ${epochs.join(' → ')}, final offset ${final.offset}`,
      ...[...publisher.retries].map(([cause, n]) => `    retried ×${n}: ${cause}`),
      `  failover: ${Object.entries(failedOver.byUrl)
        .map(([url, n]) => `${n} on ${url}`)
        .join(
          ', ',
        )}; reconnects ${sum((r) => r.finals.reduce((n, f) => n + f.reconnects, 0))}, resubscribes ${sum((r) => r.resubscribes)} (recovered: true ×${sum((r) => r.recoveredResubscribes)})`,
      `  failed-over subscribers: back subscribed after ${describeSpread(finals.filter((f) => f.reconnects > 0).map((f) => f.worstOutageMs))} ms, ` +
        `WebSockets opened ${describeSpread(finals.filter((f) => f.reconnects > 0).map((f) => f.worstOutageOpens))}`,
      `  gaps: ${sum((r) => r.gaps)} (${sum((r) => r.missing)} offsets missing)`,
      ...anomalies.filter((a) => a.kind === 'gap').map((a) => describeAnomaly(a, events)),
      `  duplicates: ${sum((r) => r.duplicates)}`,
      ...anomalies.filter((a) => a.kind === 'duplicate').map((a) => describeAnomaly(a, events)),
      `  recovered:false: ${failures.length}`,
      ...[...failureCauses].map(
        ([cause, fs]) =>
          `    ×${fs.length}: ${cause}; at ${range(fs.map((f) => f.at - restartedAt))} ms after Redis stopped, ` +
          `since offset ${range(fs.map((f) => f.since.offset))}, new position ${range(fs.map((f) => f.position.offset))} ` +
          `(${sum((r) => r.skippedByRecoveryFailure)} offsets of the new epoch before it not delivered, as the SDK documents)`,
      ),
      `  content mismatches: ${sum((r) => r.contentMismatches) + contentVsPublisher}; SDK/tracker epoch mismatches: ${sum((r) => r.epochMismatches)}`,
      ...anomalies.filter((a) => a.kind === 'content' || a.kind === 'epoch').map((a) => describeAnomaly(a, events)),
      `  applied in the old epoch with the ack lost in the Redis restart (then published again into the new epoch): ${unacked.length}` +
        (unacked.length ? ` (${unacked.join(', ')})` : ''),
      `  client errors: ${JSON.stringify(Object.fromEntries(reports.flatMap((r) => Object.entries(r.clientErrors)).reduce((m, [k, n]) => m.set(k, (m.get(k) ?? 0) + n), new Map<string, number>())))}`,
    ];
    console.log(lines.join('\n'));

    // ---- the assertions ----------------------------------------------------------------------
    expect(sum((r) => r.gaps)).toBe(0);
    expect(sum((r) => r.duplicates)).toBe(0);
    expect(sum((r) => r.contentMismatches) + contentVsPublisher).toBe(0);
    expect(sum((r) => r.epochMismatches)).toBe(0);
    // Everyone ends at the last offset of the last epoch.
    expect(finals.filter((f) => f.epoch !== final.epoch || f.last !== final.offset)).toEqual([]);
    // The restart made one new epoch, and the publisher's messages are in it exactly once each.
    expect(epochs.length).toBe(2);
    expect(final.epoch).not.toBe(epochBefore);
    expect(final.offset).toBe(finalEpochAcks);
    expect(new Set(publisher.acks.map((a) => `${a.epoch}:${a.offset}`)).size).toBe(MESSAGES);
    // recovered:false only from the Redis restart: once per subscriber, old epoch → new epoch.
    expect([...failureCauses.keys()]).toEqual(['epoch changed after Redis restart (stream lost with Redis)']);
    expect(failures.every((f) => f.at >= restartedAt)).toBe(true);
    expect(finals.filter((f) => f.recoveryFailures !== 1)).toEqual([]);
  });
});
