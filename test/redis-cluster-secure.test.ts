/**
 * A Redis Cluster that wants a password and speaks only TLS (3 masters of this file's own, with a
 * CA made for them): hubs configured with `redisCluster: { seeds, password, tls }` deliver across
 * shards (commands, slot refreshes and every shard subscriber authenticate over TLS), a wrong
 * password gives temporary errors, `switchboard serve` takes the same from its variables and
 * flags, and bad settings are refused naming the field.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { HubError, OptionsError, resolveOptions } from '../src/index.js';
import { applyEnv } from '../src/config/load.js';
import { closeAllServers, createTestServer, until } from './support/harness.js';
import { OwnRedisCluster } from './support/redis-cluster.js';

const PASSWORD = `cluster-pw-${randomUUID().slice(0, 8)}`;
let cluster: OwnRedisCluster;

beforeAll(async () => {
  cluster = await OwnRedisCluster.start({ masters: 3, replicas: 0, password: PASSWORD, tls: true });
}, 60_000);
afterEach(async () => {
  await closeAllServers();
});
afterAll(async () => {
  await cluster?.stop();
});

function secured(password = PASSWORD): Record<string, unknown> {
  return {
    redisCluster: { seeds: cluster.seeds.slice(0, 1), password, tls: { caFile: cluster.caFile } },
    redisPrefix: `sbsec-${randomUUID().slice(0, 8)}`,
    redisCommandTimeoutMs: 1_000,
  };
}

function optionIssues(input: Record<string, unknown>): string {
  try {
    resolveOptions({ auth: { secret: 'a-test-secret-of-at-least-32-chars!!' }, ...input });
  } catch (err) {
    expect(err).toBeInstanceOf(OptionsError);
    return (err as Error).message;
  }
  throw new Error('accepted');
}

describe('a Redis Cluster with a password and TLS', () => {
  it('delivers across nodes on channels of every shard, each subscriber connection authenticated over TLS', async () => {
    const options = secured();
    const a = await createTestServer(options);
    const b = await createTestServer(options);
    const channels: string[] = [];
    const masters = new Set<number>();
    for (let i = 0; masters.size < 3 && i < 200; i++) {
      const master = await cluster.masterPortOf(`${options.redisPrefix as string}:ch:{chat:s${i}}`);
      if (!masters.has(master)) {
        masters.add(master);
        channels.push(`chat:s${i}`);
      }
    }
    expect(channels).toHaveLength(3);
    const sub = await a.client({ user: 'alice' });
    for (const channel of channels) await sub.subscribe(channel);
    for (const [i, channel] of channels.entries()) await b.hub.publish(channel, { i });
    for (const [i, channel] of channels.entries()) {
      expect(await sub.waitFor((m) => m.push === 'pub' && m.channel === channel)).toMatchObject({ offset: 1, data: { i } });
    }
    for (const node of [a, b]) await until(async () => (await fetch(`${node.httpUrl}/readyz`)).status === 200, 'ready on the secured cluster');
  });

  it('gives temporary errors (114) with a wrong password, and is not ready', async () => {
    const a = await createTestServer(secured('not-the-password'));
    const err = await a.hub.publish('chat:x', { x: 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HubError);
    expect((err as HubError).code).toBe(114);
    expect((await fetch(`${a.httpUrl}/readyz`)).status).toBe(503);
  });

  it('takes the password from SWITCHBOARD_REDIS_CLUSTER_PASSWORD and TLS from --redis-cluster-ca, and is ready', async () => {
    const cli = join(import.meta.dirname, '..', 'src', 'cli', 'main.ts');
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      SWITCHBOARD_TOKEN_SECRET: 'cluster-cli-secret-0123456789abcdef',
      SWITCHBOARD_API_KEY: 'cluster-cli-api-key-0123',
      SWITCHBOARD_LOG_LEVEL: 'warn',
      SWITCHBOARD_REDIS_CLUSTER: cluster.seeds.slice(1, 2).join(','),
      SWITCHBOARD_REDIS_CLUSTER_PASSWORD: PASSWORD,
    };
    delete env.SWITCHBOARD_REDIS_URL;
    let child: ChildProcess | undefined;
    try {
      child = spawn(process.execPath, ['--import', 'tsx', cli, 'serve', '--memory', '--port', '0', '--host', '127.0.0.1', '--redis-cluster-ca', cluster.caFile], {
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
      await until(() => /HTTP API/.test(out), 'the listening lines', 30_000);
      const http = /HTTP API\s+(\S+)\/api/.exec(out)![1]!;
      await until(async () => (await fetch(`${http}/readyz`)).status === 200, 'ready on the secured cluster', 30_000);
    } finally {
      child?.kill('SIGKILL');
    }
  }, 60_000);

  it('refuses bad cluster settings naming the field', () => {
    expect(optionIssues({ redisCluster: { seeds: ['a:7000'], username: 'app' } })).toMatch(/redisCluster\.password: is needed with username/);
    expect(optionIssues({ redisCluster: { seeds: ['a:7000'], tls: { caFile: '/nonexistent/ca.pem' } } })).toMatch(/redisCluster\.tls\.caFile: cannot read \/nonexistent\/ca\.pem/);
    expect(optionIssues({ redisCluster: { seeds: ['a:7000'], tls: { verify: false } } })).toMatch(/redisCluster\.tls: Unrecognized key: "verify"/);
    expect(optionIssues({ redisCluster: { seeds: ['nope'], password: '' } })).toMatch(/redisCluster\.seeds\.0: must be host:port.*redisCluster\.password/);
    // A password from the environment without seeds anywhere.
    expect(optionIssues(applyEnv({}, { SWITCHBOARD_REDIS_CLUSTER_PASSWORD: 'pw' }))).toMatch(/redisCluster\.seeds: must be a list of host:port seed nodes/);
    expect(() => applyEnv({}, { SWITCHBOARD_REDIS_CLUSTER: 'a:7000', SWITCHBOARD_REDIS_CLUSTER_TLS: 'yes' })).toThrow(/SWITCHBOARD_REDIS_CLUSTER_TLS must be 1, 0, true or false/);
    // Seeds and settings from the environment over a config file's seeds.
    expect(resolveOptions({ auth: { secret: 'a-test-secret-of-at-least-32-chars!!' }, ...applyEnv({ redisCluster: ['c:7000'] }, { SWITCHBOARD_REDIS_CLUSTER_TLS: '1', SWITCHBOARD_REDIS_CLUSTER_PASSWORD: 'pw' }) }).redisCluster).toEqual({
      seeds: ['c:7000'],
      username: null,
      password: 'pw',
      tls: { caFile: null, serverName: null, rejectUnauthorized: true },
    });
  });
});
