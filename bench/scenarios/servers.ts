import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Child } from '../proc/child.js';
import type { Target } from '../loadgen/client.js';
import type { DialectName } from '../loadgen/dialects.js';
import type { RunningServer, ServerKind, ServerOptions } from '../servers/types.js';
import type { RunContext } from './context.js';

export interface ServerHandle {
  kind: ServerKind;
  child: Child;
  port: number;
  target: Target;
}

const DIALECT_OF: Record<ServerKind, DialectName> = {
  switchboard: 'switchboard',
  'switchboard-memory': 'switchboard',
  'switchboard-sqlite': 'switchboard',
  'switchboard-redis': 'switchboard',
  socketio: 'socketio',
  ws: 'wsjson',
  'ws-coalesce': 'wsjson',
  // Spoken by bench/game/agent.ts, not by the loadgen dialects.
  'switchboard-game': 'switchboard',
  'socketio-game': 'socketio',
};

/**
 * Starts `nodes` processes of one server kind (joined through Redis when `redis`, and always for
 * switchboard-redis; switchboard-sqlite gets a fresh temporary dataDir per node), runs `fn`, and
 * always tears down: load-generator connections first, then the server processes, then the dataDirs.
 */
export async function withServers<T>(
  ctx: RunContext,
  kind: ServerKind,
  nodes: number,
  redis: boolean,
  fn: (servers: ServerHandle[]) => Promise<T>,
  /** More server options (the Redis Cluster scenario's seeds). */
  extra: Partial<ServerOptions> = {},
): Promise<T> {
  const handles: ServerHandle[] = [];
  const children: Child[] = [];
  const dataDirs: string[] = [];
  try {
    const useRedis = redis || kind === 'switchboard-redis';
    if (useRedis && !ctx.redisUrl) throw new Error('Redis not reachable at 127.0.0.1:6379');
    const options = (i: number): ServerOptions => {
      if (kind === 'switchboard-sqlite') dataDirs[i] ??= mkdtempSync(join(tmpdir(), 'switchboard-bench-'));
      return {
        secret: ctx.secret,
        ...(useRedis && ctx.redisUrl ? { redisUrl: ctx.redisUrl, redisPrefix: `bench-${ctx.runId}` } : {}),
        ...(dataDirs[i] ? { dataDir: dataDirs[i] } : {}),
        ...extra,
      };
    };
    for (let i = 0; i < nodes; i++) {
      children.push(
        Child.spawn(`${kind}#${i}`, 'servers/entry.ts', [], { exposeGc: true, ...(ctx.cpuProfDir ? { cpuProf: ctx.cpuProfDir } : {}) }),
      );
    }
    const started = await Promise.all(
      children.map((child, i) => child.call<RunningServer>('start', { kind, options: options(i) }, 30_000)),
    );
    started.forEach(({ port }, i) =>
      handles.push({ kind, child: children[i]!, port, target: { host: '127.0.0.1', port, dialect: DIALECT_OF[kind] } }),
    );
    return await fn(handles);
  } finally {
    ctx.progress.step(`${kind} · closing`);
    await Promise.allSettled([ctx.pub.call('pubClose'), ctx.subs.closeAll()]);
    // A profiled server must exit normally to write its profile; the others are simply killed.
    await Promise.allSettled(children.map((c) => c.kill(ctx.cpuProfDir ? 5000 : 0)));
    for (const dir of dataDirs) if (dir) rmSync(dir, { recursive: true, force: true });
  }
}
