/**
 * Which Redis a hub runs on: the options for one server, a cluster or Sentinel (validated once,
 * conflicts named), SWITCHBOARD_REDIS_CLUSTER, and a hub through a real Sentinel (redis-server
 * --sentinel of this file's own, with a master and a replica) that follows a forced failover.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { applyEnv } from '../src/config/load.js';
import { OptionsError, resolveOptions } from '../src/index.js';
import { redisTargetOf } from '../src/redis/target.js';
import { closeAllServers, createTestServer, until } from './support/harness.js';
import { freePort } from './support/processes.js';
import { OwnRedis } from './support/redis-server.js';

const auth = { secret: 'targets-test-secret-0123456789abcdef' };

function issues(input: unknown): string {
  try {
    resolveOptions(input);
  } catch (err) {
    expect(err).toBeInstanceOf(OptionsError);
    return (err as Error).message;
  }
  throw new Error('accepted');
}

describe('Redis target options', () => {
  it('takes one of redisUrl, redisCluster and redisSentinel, and names the conflict and bad addresses', () => {
    expect(redisTargetOf(resolveOptions({ auth }))).toBeUndefined();
    expect(redisTargetOf(resolveOptions({ auth, redisUrl: 'redis://h:6379' }))).toEqual({ kind: 'url', url: 'redis://h:6379' });
    expect(redisTargetOf(resolveOptions({ auth, redisCluster: ['a:7000', '[::1]:7001'] }))).toEqual({ kind: 'cluster', seeds: ['a:7000', '[::1]:7001'] });
    expect(redisTargetOf(resolveOptions({ auth, redisSentinel: { sentinels: ['s:26379'], name: 'mymaster' } }))).toEqual({
      kind: 'sentinel',
      sentinel: { sentinels: ['s:26379'], name: 'mymaster' },
    });
    expect(issues({ auth, redisUrl: 'redis://h:6379', redisCluster: ['a:7000'] })).toMatch(/redisCluster.*cannot be set together with redisUrl/);
    expect(issues({ auth, redisCluster: ['a:7000'], redisSentinel: { sentinels: ['s:1'], name: 'm' } })).toMatch(
      /redisSentinel.*cannot be set together with redisCluster/,
    );
    expect(issues({ auth, redisCluster: ['no-port'] })).toMatch(/redisCluster.*host:port/);
    expect(issues({ auth, redisCluster: [] })).toMatch(/redisCluster/);
    expect(issues({ auth, redisSentinel: { sentinels: ['s:1'] } })).toMatch(/redisSentinel.*name/);
  });

  it('reads SWITCHBOARD_REDIS_CLUSTER as a comma-separated seed list', () => {
    expect(applyEnv({}, { SWITCHBOARD_REDIS_CLUSTER: '10.0.0.1:7000, 10.0.0.2:7000,' }).redisCluster).toEqual(['10.0.0.1:7000', '10.0.0.2:7000']);
    expect(applyEnv({}, {}).redisCluster).toBeUndefined();
  });
});

describe('a hub through Redis Sentinel', () => {
  const procs: ChildProcess[] = [];
  let dir: string | undefined;
  let master: OwnRedis | undefined;

  afterEach(async () => {
    await closeAllServers();
  });

  afterAll(async () => {
    for (const p of procs) p.kill('SIGKILL');
    await master?.down();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const cli = (port: number, ...args: string[]): string => execFileSync('redis-cli', ['-p', String(port), ...args], { encoding: 'utf8' }).trim();
  /** For polling: a node that is dropping its clients (a demotion) answers '' instead of throwing. */
  const poll = (port: number, ...args: string[]): string => {
    try {
      return cli(port, ...args);
    } catch {
      return '';
    }
  };

  it('finds the master through the sentinel, delivers and recovers, and follows a failover to the replica', async () => {
    dir = mkdtempSync(join(tmpdir(), 'sb-sentinel-'));
    master = await OwnRedis.start();
    const replicaPort = await freePort();
    procs.push(spawn('redis-server', ['--port', String(replicaPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--replicaof', '127.0.0.1', String(master.port)], { stdio: 'ignore' }));
    await until(() => {
      try {
        return cli(replicaPort, 'info', 'replication').includes('master_link_status:up');
      } catch {
        return false;
      }
    }, 'the replica in sync');
    const sentinelPort = await freePort();
    const conf = join(dir, 'sentinel.conf');
    writeFileSync(
      conf,
      [
        `port ${sentinelPort}`,
        'bind 127.0.0.1',
        `dir ${dir}`,
        `sentinel monitor sbm 127.0.0.1 ${master.port} 1`,
        'sentinel down-after-milliseconds sbm 1000',
        'sentinel failover-timeout sbm 5000',
        '',
      ].join('\n'),
    );
    procs.push(spawn('redis-server', [conf, '--sentinel'], { stdio: 'ignore' }));
    await until(() => {
      try {
        return cli(sentinelPort, 'sentinel', 'replicas', 'sbm').includes(String(replicaPort));
      } catch {
        return false;
      }
    }, 'the sentinel knowing master and replica', 20_000);

    const options = { redisSentinel: { sentinels: [`127.0.0.1:${sentinelPort}`], name: 'sbm' }, redisPrefix: `sbsent-${randomUUID().slice(0, 8)}` };
    const a = await createTestServer(options);
    const b = await createTestServer(options);
    const sub = await a.client({ user: 'alice' });
    await sub.subscribe('chat:s');
    for (let i = 1; i <= 5; i++) await b.hub.publish('chat:s', { i });
    const got = await sub.waitForPushes(5, (m) => m.push === 'pub');
    expect(got.map((m) => m.data.i)).toEqual([1, 2, 3, 4, 5]);
    const position = { offset: 5, epoch: got[0]!.epoch as string };
    await until(() => cli(replicaPort, 'info', 'replication').match(/master_repl_offset:(\d+)/)?.[1] === cli(master!.port, 'info', 'replication').match(/master_repl_offset:(\d+)/)?.[1], 'replica caught up');

    // A forced failover: the replica becomes the master, the old master a replica (its clients are dropped).
    cli(sentinelPort, 'sentinel', 'failover', 'sbm');
    await until(() => poll(replicaPort, 'info', 'replication').includes('role:master'), 'the replica promoted', 20_000);
    await until(() => poll(master!.port, 'info', 'replication').includes('role:slave'), 'the old master demoted', 20_000);
    // Publishes go to the new master once the nodes reconnect through the sentinel.
    await until(async () => b.hub.publish('chat:s', { after: true }).then(() => true, () => false), 'a publish after the failover', 30_000);
    expect(Number(cli(replicaPort, 'hget', `${options.redisPrefix}:meta:{chat:s}`, 's'))).toBeGreaterThanOrEqual(6);
    // The subscriber gets it (live, or by recovering after its node re-subscribed).
    const late = await b.client({ user: 'bob' });
    const recovered = await late.subscribe('chat:s', position);
    expect(recovered.recovered).toBe(true);
    expect(recovered.publications.map((p: { data: unknown }) => p.data)).toContainEqual({ after: true });
    await until(async () => (await fetch(`${a.httpUrl}/readyz`)).status === 200, 'node A ready again', 20_000);
  }, 90_000);
});
