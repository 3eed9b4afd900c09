/**
 * Soak subscribers in a process of their own (test/soak-redis.test.ts forks one or two of
 * these): N SDK clients, each subscribed to one channel, each checking what it receives.
 * Run with `fork(this file, { execArgv: ['--import', 'tsx'] })`; driven over IPC:
 *
 *   parent → child  {type: 'start', ...SoakStart}   → {type: 'started'}
 *                   {type: 'status', id}            → {type: 'status', id, status: SoakStatus}
 *                   {type: 'report', id}            → {type: 'report', id, report: SoakReport}
 *                   {type: 'stop'}                  → disconnects everything and exits
 *
 * Per subscriber, per epoch, offsets must arrive strictly consecutively. A jump forward is a
 * gap unless a `recovered: false` (onRecoveryFailed) moved the subscriber to the new position
 * first; an offset not above the last one (same epoch) is a duplicate. Content is checked too:
 * every subscriber of this process must see the same `data.i` at a given (epoch, offset).
 */
import { signToken } from '../../src/auth/token.js';
import { WebSocket } from 'ws';
import { SwitchboardClient, type Subscription, type WebSocketConstructor } from '../../src/client/index.js';

export interface SoakStart {
  secret: string;
  channel: string;
  /** ws:// URLs of every node; subscriber k has `urls[k % n]` (its home) first, then the others. */
  urls: string[];
  /** Global index of this process's first subscriber, and how many it runs. */
  from: number;
  count: number;
  backoff: { minMs: number; maxMs: number; factor: number };
}

export interface RecoveryFailure {
  sub: number;
  at: number;
  since: { offset: number; epoch: string };
  position: { offset: number; epoch: string };
  /** The node the subscriber was connected to when it happened. */
  url: string;
}

export interface Anomaly {
  kind: 'gap' | 'duplicate' | 'content' | 'epoch';
  sub: number;
  at: number;
  epoch: string;
  /** The offset expected next (gap), or the last one delivered (duplicate). */
  expected: number;
  got: number;
  recovered: boolean;
  url: string;
  detail?: string;
}

export interface SoakStatus {
  subscribers: number;
  connected: number;
  subscribed: number;
  /** Connected subscribers per node URL. */
  byUrl: Record<string, number>;
  /** Subscribers whose last position is exactly `target` (when the status asked for one). */
  atTarget: number;
  received: number;
  /** One sample of a subscriber not at the target, for diagnostics. */
  laggard?: { sub: number; epoch: string | undefined; last: number; state: string; url: string };
}

export interface SoakReport {
  subscribers: number;
  received: number;
  gaps: number;
  /** Offsets missing in all gaps together. */
  missing: number;
  duplicates: number;
  contentMismatches: number;
  epochMismatches: number;
  /** Offsets not delivered because a `recovered: false` moved the subscriber past them. */
  skippedByRecoveryFailure: number;
  recoveryFailures: RecoveryFailure[];
  /** At most 50 anomalies of each kind, in the order seen. */
  anomalies: Anomaly[];
  /** Per subscriber: final epoch and offset, deliveries, failovers (connects after the first). */
  finals: Array<{
    sub: number;
    epoch: string | undefined;
    last: number;
    received: number;
    reconnects: number;
    recoveryFailures: number;
    /** The longest time without a subscription after losing the connection, and the WebSockets opened meanwhile. */
    worstOutageMs: number;
    worstOutageOpens: number;
  }>;
  /** What this process saw at each position: `${epoch}:${offset}` → data.i. */
  content: Record<string, number>;
  /** Client `error` events by code (e.g. 114 subscribes refused while Redis was down). */
  clientErrors: Record<string, number>;
  /** Server unsubscribe pushes are not visible in the SDK; resubscribes are: onSubscribed with resubscribed. */
  resubscribes: number;
  recoveredResubscribes: number;
}

interface Tracker {
  index: number;
  client: SwitchboardClient;
  sub: Subscription<{ i: number }>;
  epoch: string | undefined;
  last: number;
  received: number;
  connects: number;
  url: string;
  recoveryFailures: number;
  /** WebSockets opened, and when the last connection was lost (0: connected or never). */
  opens: number;
  lostAt: number;
  /** Longest time from losing a connection to being subscribed again, and the opens it took. */
  worstOutageMs: number;
  worstOutageOpens: number;
  opensAtLoss: number;
}

const trackers: Tracker[] = [];
const content = new Map<string, number>();
const anomalies: Anomaly[] = [];
const anomalyCounts = { gap: 0, duplicate: 0, content: 0, epoch: 0 };
const recoveryFailures: RecoveryFailure[] = [];
const clientErrors: Record<string, number> = {};
let missing = 0;
let skipped = 0;
let resubscribes = 0;
let recoveredResubscribes = 0;

function anomaly(a: Anomaly): void {
  anomalyCounts[a.kind] += 1;
  if (anomalyCounts[a.kind] <= 50) anomalies.push(a);
}

function startSubscriber(index: number, start: SoakStart, token: string): Tracker {
  // Home node first; the others after it, in an order that alternates between subscribers so
  // that the clients of a dead node spread over the survivors.
  const n = start.urls.length;
  const home = index % n;
  const others = Array.from({ length: n - 1 }, (_, j) => start.urls[(home + 1 + j) % n]!);
  if (Math.floor(index / n) % 2 === 1) others.reverse();
  const urls = [start.urls[home]!, ...others];
  const t = {
    index,
    epoch: undefined,
    last: 0,
    received: 0,
    connects: 0,
    url: '',
    recoveryFailures: 0,
    opens: 0,
    lostAt: 0,
  } as unknown as Tracker;
  t.worstOutageMs = 0;
  t.worstOutageOpens = 0;
  t.opensAtLoss = 0;
  // `ws`, counting the connections this client opens.
  const Counting = class extends WebSocket {
    constructor(url: string) {
      super(url);
      t.opens += 1;
    }
  } as unknown as WebSocketConstructor;
  const client = new SwitchboardClient(urls, { token, getToken: async () => token, backoff: start.backoff, WebSocket: Counting });
  t.client = client;
  client.on('connected', (info) => {
    t.connects += 1;
    t.url = info.url;
  });
  client.on('state', (s) => {
    if (s.state !== 'connected') {
      if (t.url !== '' && t.lostAt === 0) {
        t.lostAt = Date.now();
        t.opensAtLoss = t.opens;
      }
      t.url = '';
    }
  });
  client.on('error', (err) => {
    const key = `${err.code} ${err.codeName}`;
    clientErrors[key] = (clientErrors[key] ?? 0) + 1;
  });
  t.sub = client.subscribe<{ i: number }>(start.channel, {
    onSubscribed: (ctx) => {
      if (!ctx.resubscribed) {
        // The first subscribe (no `since`): delivery starts after the stream top.
        t.epoch = ctx.position.epoch;
        t.last = ctx.position.offset;
        return;
      }
      resubscribes += 1;
      if (ctx.recovered) recoveredResubscribes += 1;
      if (t.lostAt !== 0) {
        const ms = Date.now() - t.lostAt;
        if (ms > t.worstOutageMs) {
          t.worstOutageMs = ms;
          t.worstOutageOpens = t.opens - t.opensAtLoss;
        }
        t.lostAt = 0;
      }
    },
    onRecoveryFailed: (ctx) => {
      // Fires before the publications of the new position: the subscriber restarts from it.
      t.recoveryFailures += 1;
      recoveryFailures.push({ sub: index, at: Date.now(), since: { ...ctx.since }, position: { ...ctx.position }, url: t.url });
      if (ctx.position.epoch === t.epoch) skipped += Math.max(0, ctx.position.offset - t.last);
      else skipped += ctx.position.offset;
      t.epoch = ctx.position.epoch;
      t.last = ctx.position.offset;
    },
    onPublication: (pub) => {
      t.received += 1;
      const epoch = t.sub.position?.epoch ?? '';
      const base = { sub: index, at: Date.now(), epoch, recovered: pub.recovered, url: t.url };
      if (epoch !== t.epoch && pub.offset === 1 && t.last === 0) {
        // The first publication of a stream created after the subscriber got its (provisional)
        // position names the stream's epoch, which the SDK adopts (docs/protocol.md).
        t.epoch = epoch;
      } else if (epoch !== t.epoch) {
        anomaly({ ...base, kind: 'epoch', expected: t.last + 1, got: pub.offset, detail: `tracked epoch ${t.epoch}, SDK says ${epoch}` });
        t.epoch = epoch;
      }
      if (pub.offset <= t.last) {
        anomaly({ ...base, kind: 'duplicate', expected: t.last, got: pub.offset });
      } else {
        if (pub.offset !== t.last + 1) {
          missing += pub.offset - t.last - 1;
          anomaly({ ...base, kind: 'gap', expected: t.last + 1, got: pub.offset });
        }
        t.last = pub.offset;
      }
      const key = `${epoch}:${pub.offset}`;
      const i = pub.data?.i;
      const seen = content.get(key);
      if (seen === undefined) content.set(key, i);
      else if (seen !== i)
        anomaly({ ...base, kind: 'content', expected: t.last, got: pub.offset, detail: `data.i ${i}, others saw ${seen}` });
    },
    onError: (err) => {
      const key = `subscription ${err.code} ${err.codeName}`;
      clientErrors[key] = (clientErrors[key] ?? 0) + 1;
    },
  });
  client.connect();
  return t;
}

function status(target: { epoch: string; offset: number } | undefined): SoakStatus {
  const s: SoakStatus = { subscribers: trackers.length, connected: 0, subscribed: 0, byUrl: {}, atTarget: 0, received: 0 };
  for (const t of trackers) {
    s.received += t.received;
    if (t.client.state === 'connected') {
      s.connected += 1;
      s.byUrl[t.url] = (s.byUrl[t.url] ?? 0) + 1;
    }
    if (t.sub.state === 'subscribed') s.subscribed += 1;
    if (target && t.epoch === target.epoch && t.last === target.offset) s.atTarget += 1;
    else if (target && !s.laggard)
      s.laggard = { sub: t.index, epoch: t.epoch, last: t.last, state: `${t.client.state}/${t.sub.state}`, url: t.url };
  }
  return s;
}

function report(): SoakReport {
  return {
    subscribers: trackers.length,
    received: trackers.reduce((n, t) => n + t.received, 0),
    gaps: anomalyCounts.gap,
    missing,
    duplicates: anomalyCounts.duplicate,
    contentMismatches: anomalyCounts.content,
    epochMismatches: anomalyCounts.epoch,
    skippedByRecoveryFailure: skipped,
    recoveryFailures,
    anomalies,
    finals: trackers.map((t) => ({
      sub: t.index,
      epoch: t.epoch,
      last: t.last,
      received: t.received,
      reconnects: Math.max(0, t.connects - 1),
      recoveryFailures: t.recoveryFailures,
      worstOutageMs: t.worstOutageMs,
      worstOutageOpens: t.worstOutageOpens,
    })),
    content: Object.fromEntries(content),
    clientErrors,
    resubscribes,
    recoveredResubscribes,
  };
}

type Command =
  | ({ type: 'start' } & SoakStart)
  | { type: 'status'; id: number; target?: { epoch: string; offset: number } }
  | { type: 'report'; id: number }
  | { type: 'stop' };

const send = (msg: unknown): void => {
  process.send?.(msg);
};

process.on('message', (msg: Command) => {
  switch (msg.type) {
    case 'start':
      void (async () => {
        for (let k = 0; k < msg.count; k++) {
          const index = msg.from + k;
          const token = await signToken({ secret: msg.secret, user: `soak-${index}`, ttl: '2h' });
          trackers.push(startSubscriber(index, msg, token));
          // A few at a time, so the connects do not all land in one tick.
          if (k % 25 === 24) await new Promise((r) => setTimeout(r, 5));
        }
        send({ type: 'started' });
      })();
      return;
    case 'status':
      send({ type: 'status', id: msg.id, status: status(msg.target) });
      return;
    case 'report':
      send({ type: 'report', id: msg.id, report: report() });
      return;
    case 'stop':
      for (const t of trackers) t.client.disconnect();
      setTimeout(() => process.exit(0), 50);
      return;
  }
});

// The parent going away ends this process too.
process.on('disconnect', () => process.exit(0));
