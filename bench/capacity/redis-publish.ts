/**
 * Capacity input for docs/scaling.md: publishes/s one Redis shard takes with history on.
 * `npx tsx bench/capacity/redis-publish.ts [seconds] [inFlight]`
 *
 * Against a redis-server of its own and a Redis Cluster of 3 masters of its own (no replicas, no
 * persistence), a publishing broker runs the real publish script (history size 100, TTL 300 s) on
 * 1000 channels with `inFlight` publishes outstanding, while a second broker (another node)
 * subscribes to every channel and counts deliveries. Redis' own CPU (INFO cpu) per publish gives
 * what one Redis core sustains when it is the bottleneck: 1 / (Redis CPU seconds per publish).
 */
import { RedisBroker } from '../../src/broker/redis.js';
import { RedisClusterBroker } from '../../src/broker/redis-cluster.js';
import type { Broker, BrokerEventHandler } from '../../src/broker/broker.js';
import { OwnRedis } from '../../test/support/redis-server.js';
import { OwnRedisCluster } from '../../test/support/redis-cluster.js';
import { Redis } from 'ioredis';

const seconds = Number(process.argv[2] ?? 5);
const inFlight = Number(process.argv[3] ?? 200);
const CHANNELS = Array.from({ length: 1000 }, (_, i) => `bench:c${i}`);
const HISTORY = { size: 100, ttlMs: 300_000, metaTtlMs: 3_600_000 };
const DATA = JSON.stringify({ text: 'x'.repeat(100) });

async function redisCpu(ports: number[]): Promise<number> {
  let total = 0;
  for (const port of ports) {
    const conn = new Redis(port, '127.0.0.1');
    const info = await conn.info('cpu');
    conn.disconnect();
    const user = Number(/used_cpu_user:([\d.]+)/.exec(info)![1]);
    const sys = Number(/used_cpu_sys:([\d.]+)/.exec(info)![1]);
    total += user + sys;
  }
  return total;
}

async function run(name: string, pub: Broker, sub: Broker, ports: number[]): Promise<void> {
  let delivered = 0;
  const handler: BrokerEventHandler = { onPublication: () => void delivered++, onEvent: () => undefined, onControl: () => undefined };
  sub.setHandler(handler);
  pub.setHandler({ onPublication: () => undefined, onEvent: () => undefined, onControl: () => undefined });
  for (const c of CHANNELS) await sub.subscribe(c);
  let published = 0;
  let errors = 0;
  let stop = false;
  const loop = async (k: number): Promise<void> => {
    for (let i = k; !stop; i += inFlight) {
      try {
        await pub.publish(CHANNELS[i % CHANNELS.length]!, DATA, { history: HISTORY });
        published++;
      } catch {
        errors++;
      }
    }
  };
  const loops = Array.from({ length: inFlight }, (_, k) => loop(k));
  await new Promise((r) => setTimeout(r, 1000)); // warm-up
  const p0 = published;
  const d0 = delivered;
  const cpu0 = await redisCpu(ports);
  const self0 = process.cpuUsage();
  const t0 = Date.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const elapsed = (Date.now() - t0) / 1000;
  const p = published - p0;
  const d = delivered - d0;
  const cpu = (await redisCpu(ports)) - cpu0;
  const self = process.cpuUsage(self0);
  stop = true;
  await Promise.all(loops);
  const perPublishUs = (cpu / p) * 1e6;
  process.stdout.write(
    `${JSON.stringify({
      target: name,
      publishesPerSec: Math.round(p / elapsed),
      deliveriesPerSec: Math.round(d / elapsed),
      errors,
      redisCpuPct: Math.round((cpu / elapsed) * 100),
      redisCpuUsPerPublish: Math.round(perPublishUs * 10) / 10,
      publishesPerRedisCoreSecond: Math.round(1e6 / perPublishUs),
      clientCpuPct: Math.round(((self.user + self.system) / 1e6 / elapsed) * 100),
      inFlight,
      channels: CHANNELS.length,
      history: HISTORY.size,
    })}\n`,
  );
}

const single = await OwnRedis.start();
try {
  const prefix = `cap-${Date.now()}`;
  const pub = new RedisBroker({ url: single.url, prefix });
  const sub = new RedisBroker({ url: single.url, prefix });
  await run('one redis-server', pub, sub, [single.port]);
  await Promise.all([pub.close(), sub.close()]);
} finally {
  await single.down();
}

const cluster = await OwnRedisCluster.start({ masters: 3, replicas: 0 });
try {
  const prefix = `cap-${Date.now()}`;
  const pub = new RedisClusterBroker({ seeds: cluster.seeds, prefix });
  const sub = new RedisClusterBroker({ seeds: cluster.seeds, prefix });
  await run('Redis Cluster, 3 masters (sharded pub/sub)', pub, sub, cluster.ports);
  await Promise.all([pub.close(), sub.close()]);
} finally {
  await cluster.stop();
}
process.exit(0);
