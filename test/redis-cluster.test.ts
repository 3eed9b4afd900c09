/**
 * Hubs on a real Redis Cluster of this file's own (3 masters + 3 replicas on loopback, started
 * once for the file by test/support/redis-cluster.ts), each test under its own key prefix:
 * cross-node delivery on channels owned by different shards through sharded pub/sub, exact
 * recovery, presence, stores, cross-node commands, listings and the position check on the
 * cluster, and a master killed while publishing.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { Cluster } from 'ioredis';
import * as Y from 'yjs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SwitchboardClient, type Publication, type RecoveryFailedContext } from '../src/client/index.js';
import { HubError } from '../src/index.js';
import { sdkDocument } from './support/collab.js';
import { closeAllServers, createTestServer, TEST_API_KEY, until } from './support/harness.js';
import { OwnRedisCluster } from './support/redis-cluster.js';

let cluster: OwnRedisCluster;
const sdkClients: SwitchboardClient[] = [];

beforeAll(async () => {
  cluster = await OwnRedisCluster.start();
}, 60_000);

afterEach(async () => {
  for (const c of sdkClients.splice(0)) c.disconnect();
  await closeAllServers();
});

afterAll(async () => {
  await cluster?.stop();
});

function onCluster(extra: Record<string, unknown> = {}): { redisCluster: string[]; redisPrefix: string } & Record<string, unknown> {
  return { redisCluster: cluster.seeds.slice(0, 2), redisPrefix: `sbcl-${randomUUID().slice(0, 8)}`, ...extra };
}

/** Channel names (`chat:<stem>N`) whose shard channels live on `count` different masters. */
async function channelsOnDifferentShards(prefix: string, stem: string, count: number): Promise<Array<{ channel: string; master: number }>> {
  const out: Array<{ channel: string; master: number }> = [];
  for (let i = 0; out.length < count && i < 200; i++) {
    const channel = `chat:${stem}${i}`;
    const master = await cluster.masterPortOf(`${prefix}:ch:{${channel}}`);
    if (!out.some((c) => c.master === master)) out.push({ channel, master });
  }
  expect(out).toHaveLength(count);
  return out;
}

describe('nodes joined by a Redis Cluster', () => {
  it('delivers across nodes on channels of three shards, through sharded pub/sub, and recovers exactly', async () => {
    const options = onCluster();
    const a = await createTestServer(options);
    const b = await createTestServer(options);
    const channels = await channelsOnDifferentShards(options.redisPrefix, 'x', 3);
    const sub = await a.client({ user: 'alice' });
    for (const { channel } of channels) await sub.subscribe(channel);
    for (let i = 1; i <= 30; i++) await b.hub.publish(channels[i % 3]!.channel, { i });
    for (const [k, { channel }] of channels.entries()) {
      const got = await sub.waitForPushes(10, (m) => m.push === 'pub' && m.channel === channel);
      expect(got.map((m) => m.offset)).toEqual(Array.from({ length: 10 }, (_, i) => i + 1));
      expect(got.map((m) => m.data.i)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1).filter((i) => i % 3 === k));
    }

    // Each channel's keys and shard subscription are on the master that owns its slot, and
    // nothing went through classic (cluster-wide) pub/sub.
    for (const { channel, master } of channels) {
      const conn = cluster.connect(master);
      expect(await conn.exists(`${options.redisPrefix}:stream:{${channel}}`, `${options.redisPrefix}:meta:{${channel}}`)).toBe(2);
      const [, shardSubs] = (await conn.call('PUBSUB', 'SHARDNUMSUB', `${options.redisPrefix}:ch:{${channel}}`)) as [string, number];
      expect(shardSubs).toBe(1); // node A's subscriber connection to this shard
      const [, classic] = (await conn.call('PUBSUB', 'NUMSUB', `${options.redisPrefix}:ch:{${channel}}`)) as [string, number];
      expect(classic).toBe(0);
      conn.disconnect();
    }

    // Exact recovery across nodes.
    const first = channels[0]!.channel;
    const position = { offset: 10, epoch: sub.pubs(first)[0]!.epoch as string };
    await sub.close();
    for (let i = 1; i <= 25; i++) await b.hub.publish(first, { later: i });
    const again = await a.client({ user: 'alice' });
    const recovered = await again.subscribe(first, position);
    expect(recovered.recovered).toBe(true);
    expect(recovered.publications.map((p: { offset: number; data: { later: number } }) => [p.offset, p.data.later])).toEqual(
      Array.from({ length: 25 }, (_, i) => [11 + i, i + 1]),
    );
    // An idempotent publish on the cluster (three keys in one slot) applies once.
    const once = await b.hub.publish(first, { idem: 1 }, { idempotencyKey: 'k1' });
    expect(await b.hub.publish(first, { idem: 2 }, { idempotencyKey: 'k1' })).toEqual(once);
  });

  it('shares presence, join/leave, read positions and statuses, acts on every node, and lists channels across nodes', async () => {
    const options = onCluster({ statsIntervalMs: 100, namespaces: { room: { presence: true, joinLeave: true, readReceipts: true } } });
    const a = await createTestServer(options);
    const b = await createTestServer(options);
    const onA = await a.client({ user: 'alice' });
    const onB = await b.client({ user: 'bob' });
    await onA.subscribe('room:lobby');
    await onB.subscribe('room:lobby');
    await onA.waitFor((m) => m.push === 'join' && m.info?.user === 'bob');
    expect((await onB.call('presence', { channel: 'room:lobby' })).users).toEqual(['alice', 'bob']);

    // Read positions and statuses (the store) on the cluster, written on one node, read on the other.
    for (let i = 1; i <= 5; i++) await b.hub.publish('room:lobby', { i });
    expect(await onA.call('markRead', { channel: 'room:lobby', offset: 3 })).toMatchObject({ lastRead: 3, top: 5, unread: 2 });
    expect((await onB.call('readers', { channel: 'room:lobby' })).readers).toEqual({ alice: 3 });
    await onA.call('setStatus', { status: 'away' });
    expect((await onB.call('statuses', { users: ['alice'] })).users.alice).toMatchObject({ status: 'away' });

    // Listings: channel counts summed over both nodes, two nodes.
    await onB.subscribe('room:quiet');
    const get = async (path: string): Promise<any> =>
      (await fetch(`${a.httpUrl}${path}`, { headers: { authorization: `apikey ${TEST_API_KEY}` } })).json();
    await until(async () => {
      const l = await get('/api/channels');
      return l.channels.length === 2 && l.channels[0].subscribers === 2;
    }, 'the listing over both nodes');
    expect((await get('/api/channels')).channels).toEqual([
      { channel: 'room:lobby', subscribers: 2 },
      { channel: 'room:quiet', subscribers: 1 },
    ]);
    expect((await get('/api/info')).nodes).toBe(2);

    // Cross-node commands (the control shard channel).
    await onB.close();
    await onA.waitFor((m) => m.push === 'leave' && m.info?.user === 'bob');
    const carolA = await a.client({ user: 'carol' });
    const carolB = await b.client({ user: 'carol' });
    await a.hub.disconnect('carol');
    expect((await carolA.waitForClose()).code).toBe(4501);
    expect((await carolB.waitForClose()).code).toBe(4501);
  });

  it('finds a publication lost in sharded pub/sub by the position check', async () => {
    const options = onCluster({ positionCheckIntervalMs: 100 });
    const a = await createTestServer(options);
    const channel = 'chat:lossy';
    await a.hub.publish(channel, { first: true });
    const sub = await a.client({ user: 'alice' });
    const reply = await sub.subscribe(channel);
    // Appended to the stream on its shard, never published.
    const conn = cluster.connect(await cluster.masterPortOf(`${options.redisPrefix}:meta:{${channel}}`));
    const offset = await conn.hincrby(`${options.redisPrefix}:meta:{${channel}}`, 's', 1);
    await conn.xadd(`${options.redisPrefix}:stream:{${channel}}`, `0-${offset}`, 'd', '{"lost":true}', 'i', '', 't', String(Date.now()));
    conn.disconnect();
    expect(await sub.waitFor((m) => m.push === 'unsubscribe')).toMatchObject({ channel, code: 2001, resubscribe: true });
    const recovered = await sub.subscribe(channel, reply.position);
    expect(recovered).toMatchObject({ recovered: true, publications: [{ offset: 2, data: { lost: true } }] });
  });

  it('is ready only once the cluster is, and reports a cluster of 3 masters through a plain client', async () => {
    const c = new Cluster(cluster.seeds.slice(0, 1));
    await until(() => c.status === 'ready', 'a plain cluster client');
    expect(c.nodes('master')).toHaveLength(3);
    c.disconnect();
    const a = await createTestServer(onCluster());
    await until(async () => (await fetch(`${a.httpUrl}/readyz`)).status === 200, 'ready on the cluster');
  });
});

describe('documents on a cluster', () => {
  it('keeps both keys of a document in one slot: edits on one node reach the other, compact, and reload on a fresh node', async () => {
    const options = onCluster({ namespaces: { docs: { document: true } }, collab: { resyncIntervalMs: 1_000, compactDelayMs: 200 } });
    const a = await createTestServer(options);
    const b = await createTestServer(options);
    const name = 'docs:clustered';
    const readText = async (httpUrl: string): Promise<string> => {
      const res = await fetch(`${httpUrl}/api/documents/${name}?text=text`, { headers: { authorization: `apikey ${TEST_API_KEY}` } });
      expect(res.status).toBe(200);
      return ((await res.json()) as { text: { text: string } }).text.text;
    };
    const doc = new Y.Doc();
    const provider = sdkDocument(name, doc, { url: a.httpUrl, token: await a.token('alice') });
    try {
      await provider.whenSynced();
      for (const word of ['one ', 'two ', 'three']) doc.getText('text').insert(doc.getText('text').length, word);
      await until(async () => (await readText(b.httpUrl)) === 'one two three', 'the edits on the other node');
    } finally {
      provider.destroy();
    }
    // Compacted: the snapshot is in the meta hash, on the same master as the log.
    const log = `${options.redisPrefix}:doc:log:{${name}}`;
    const meta = `${options.redisPrefix}:doc:meta:{${name}}`;
    const conn = cluster.connect(await cluster.masterPortOf(log));
    try {
      expect(await cluster.masterPortOf(meta)).toBe(await cluster.masterPortOf(log));
      await until(async () => (await conn.hexists(meta, 'snapshot')) === 1, 'the compaction');
    } finally {
      conn.disconnect();
    }
    await closeAllServers();
    const fresh = await createTestServer(options);
    expect(await readText(fresh.httpUrl)).toBe('one two three');
  });
});

describe('switchboard serve on a cluster', () => {
  it('takes the seeds from --redis-cluster or SWITCHBOARD_REDIS_CLUSTER and is ready on the cluster', async () => {
    const cli = join(import.meta.dirname, '..', 'dist', 'cli', 'main.js');
    const base: NodeJS.ProcessEnv = { ...process.env, SWITCHBOARD_TOKEN_SECRET: 'cluster-cli-secret-0123456789abcdef', SWITCHBOARD_API_KEY: 'cluster-cli-api-key-0123', SWITCHBOARD_LOG_LEVEL: 'warn' };
    delete base.SWITCHBOARD_REDIS_URL;
    const runs: Array<{ args: string[]; env: NodeJS.ProcessEnv }> = [
      { args: ['--redis-cluster', cluster.seeds.slice(0, 2).join(',')], env: base },
      { args: [], env: { ...base, SWITCHBOARD_REDIS_CLUSTER: cluster.seeds.slice(1, 3).join(',') } },
    ];
    const children: ChildProcess[] = [];
    try {
      await Promise.all(
        runs.map(async ({ args, env }) => {
          const child = spawn(process.execPath, [cli, 'serve', '--memory', '--port', '0', '--host', '127.0.0.1', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
          children.push(child);
          let out = '';
          child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
          await until(() => /HTTP API/.test(out), 'the listening lines', 30_000);
          expect(out).toMatch(/switchboard listening \(Redis Cluster\)/);
          const http = /HTTP API\s+(\S+)\/api/.exec(out)![1]!;
          await until(async () => (await fetch(`${http}/readyz`)).status === 200, 'ready on the cluster', 30_000);
        }),
      );
    } finally {
      for (const c of children) c.kill('SIGKILL');
    }
  }, 60_000);
});

describe('a master killed while publishing', () => {
  it('gives publishers temporary errors (never a false ack); subscribers recover exactly or are told recovered: false', async () => {
    const options = onCluster({ positionCheckIntervalMs: 200 });
    const a = await createTestServer(options);
    const b = await createTestServer(options);
    const channel = 'chat:failover';
    const master = await cluster.masterPortOf(`${options.redisPrefix}:ch:{${channel}}`);
    // A channel on the same shard that nobody publishes to during the failover: no gap for the
    // position check to find, so only the move of its subscription to the promoted master keeps
    // it live.
    let quiet = '';
    for (let i = 0; quiet === '' && i < 200; i++) {
      if ((await cluster.masterPortOf(`${options.redisPrefix}:ch:{chat:quiet${i}}`)) === master) quiet = `chat:quiet${i}`;
    }
    expect(quiet).not.toBe('');
    const quietSub = await a.client({ user: 'bob' });
    await quietSub.subscribe(quiet);

    const client = new SwitchboardClient(a.url, { token: await a.token('alice', { ttl: 3600 }), backoff: { minMs: 10, maxMs: 200, factor: 2 } });
    sdkClients.push(client);
    const got: Publication[] = [];
    const failed: RecoveryFailedContext[] = [];
    const subscription = client.subscribe(channel, { onPublication: (p) => got.push(p), onRecoveryFailed: (ctx) => failed.push(ctx) });
    client.connect();
    await subscription.ready(10_000);

    // Publishes one after another from node B: each either acknowledged (offset) or refused with 114.
    const acked: Array<{ n: number; offset: number; epoch: string }> = [];
    const errors: number[] = [];
    const refused: number[] = [];
    let n = 0;
    let stop = false;
    const publisher = (async () => {
      while (!stop) {
        const i = ++n;
        try {
          const r = await b.hub.publish(channel, { n: i });
          acked.push({ n: i, ...r });
        } catch (err) {
          expect(err).toBeInstanceOf(HubError);
          errors.push((err as HubError).code);
          refused.push(i);
          await new Promise((r) => setTimeout(r, 20));
        }
      }
    })();
    await until(() => acked.length >= 20, 'publications before the kill');
    await cluster.kill(master);
    await until(() => errors.length > 0, 'publishers told while the master is down', 20_000);
    const ackedAtKill = acked.length;
    await until(() => acked.length >= ackedAtKill + 20, 'publications on the promoted replica', 30_000);
    stop = true;
    await publisher;
    await cluster.waitOk();
    expect(await cluster.masterPortOf(`${options.redisPrefix}:ch:{${channel}}`)).not.toBe(master);
    expect(new Set(errors)).toEqual(new Set([114]));

    // A sentinel after everything: once it arrives, whatever came before has arrived or been declared lost.
    const sentinel = await b.hub.publish(channel, { n: 'sentinel' });
    await until(() => got.some((p) => (p.data as { n: unknown }).n === 'sentinel'), 'the sentinel', 30_000);
    expect(subscription.position).toEqual(sentinel);

    // The sharded subscriptions moved to the promoted master: node A's subscriber connection to it
    // holds both channels, both nodes are ready again (every wanted channel confirmed), and the
    // quiet channel, never resubscribed by its client, gets a publication live.
    const promoted = cluster.connect(await cluster.masterPortOf(`${options.redisPrefix}:ch:{${channel}}`));
    try {
      await until(async () => {
        const reply = (await promoted.call('PUBSUB', 'SHARDNUMSUB', `${options.redisPrefix}:ch:{${channel}}`, `${options.redisPrefix}:ch:{${quiet}}`)) as Array<string | number>;
        return reply[1] === 1 && reply[3] === 1;
      }, 'the shard subscriptions on the promoted master');
    } finally {
      promoted.disconnect();
    }
    for (const node of [a, b]) await until(async () => (await fetch(`${node.httpUrl}/readyz`)).status === 200, 'ready after the failover');
    await b.hub.publish(quiet, { after: 'failover' });
    expect(await quietSub.waitFor((m) => m.push === 'pub' && m.channel === quiet)).toMatchObject({ offset: 1, data: { after: 'failover' } });

    const delivered = got.map((p) => (p.data as { n: number | string }).n);
    expect(new Set(delivered).size).toBe(delivered.length); // never twice
    const numbers = delivered.filter((x): x is number => typeof x === 'number');
    expect(numbers).toEqual([...numbers].sort((x, y) => x - y)); // in order
    const missing = acked.filter((p) => !numbers.includes(p.n));
    // An acknowledged publication missing is one the old master lost before replicating it: the
    // subscriber was told so (recovered: false), never left with a silent gap.
    if (missing.length > 0) expect(failed.length).toBeGreaterThan(0);
    // Every publication it got is one that was acknowledged, or one refused whose script still ran
    // before the connection dropped (then it is in the stream, and delivering it is right).
    expect(numbers.filter((x) => !acked.some((p) => p.n === x) && !refused.includes(x))).toEqual([]);
  }, 90_000);
});
