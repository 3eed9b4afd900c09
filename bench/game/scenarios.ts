/**
 * The codec and game scenarios (`--only=codec,game`), on the load generator of bench/game/agent.ts:
 * - codec: one Switchboard process, `codecSubs` subscribers of one channel (history on) and a
 *   publisher, all speaking JSON, then all MessagePack; a small object and a 1 KB binary payload
 *   (JSON: `{"$binary": base64}`). Bytes per delivery (frame bytes at the subscribers over
 *   messages) and server CPU per delivery.
 * - game: `gamePlayers` players in one room, each sending `gameHz` positions a second and
 *   receiving everyone else's: Switchboard (latest-value namespace, client events, MessagePack)
 *   against Socket.IO (volatile emits, socket.io-msgpack-parser). Deliveries/s and
 *   publish-to-deliver p50/p99.
 */
import { join } from 'node:path';
import { Child } from '../proc/child.js';
import { eluBetween, readElu } from '../proc/elu.js';
import { errorText, sleep, type RunContext } from '../scenarios/context.js';
import { round } from '../scenarios/measure.js';
import type { GameServerKind, RunningServer } from '../servers/types.js';
import type { GameDialect, GameOpenSpec, GameReport } from './agent.js';

export interface CodecResult {
  codec: 'json' | 'msgpack';
  payload: 'object' | 'binary';
  deliveriesPerSec: number;
  bytesPerDelivery: number;
  serverNsPerDelivery: number;
  p99Ms: number | null;
}

export interface GameResult {
  server: GameServerKind;
  players: number;
  sentPerSec: number;
  deliveriesPerSec: number;
  p50Ms: number | null;
  p99Ms: number | null;
  serverCpuPct: number;
  closed: number;
  framesPerSec: number;
  /** The busiest load-generator agent's event-loop share in the window (0–1). */
  agentBusy: number;
  /** The server's event-loop share in the window (0–1). */
  serverBusy: number;
  /** The agents, not the server, set the pace (agentBusy past cfg.subsBusyLimit, or sending fell short). */
  loadgenLimited: boolean;
}

const AGENTS = 2;

async function withGameServer<T>(ctx: RunContext, kind: GameServerKind, fn: (server: Child, port: number, agents: Child[]) => Promise<T>): Promise<T> {
  const server = Child.spawn(kind, 'servers/entry.ts', [], { exposeGc: true, ...(ctx.cpuProfDir ? { cpuProf: ctx.cpuProfDir } : {}) });
  const agents = Array.from({ length: AGENTS }, (_, i) =>
    Child.spawn(`game-agent#${i}`, 'game/agent.ts', [], ctx.cpuProfDir ? { cpuProf: join(ctx.cpuProfDir, 'agents') } : {}),
  );
  try {
    const { port } = await server.call<RunningServer>('start', { kind, options: { secret: ctx.secret } }, 30_000);
    return await fn(server, port, agents);
  } finally {
    await Promise.allSettled(agents.map((a) => a.call('closeAll')));
    // A profiled server gets time to write its profile.
    await Promise.allSettled([server.kill(ctx.cpuProfDir ? 5000 : 0), ...agents.map((a) => a.kill(ctx.cpuProfDir ? 5000 : 0))]);
  }
}

/** Opens `count` connections spread over the agents (agent 0 holds connection 0, the codec publisher). */
async function open(agents: Child[], spec: Omit<GameOpenSpec, 'count' | 'userPrefix'>, count: number): Promise<void> {
  await Promise.all(
    agents.map((a, i) => {
      const n = Math.floor(count / agents.length) + (i < count % agents.length ? 1 : 0);
      return a.call('open', { ...spec, count: n, userPrefix: `g${i}-` }, 120_000);
    }),
  );
}

/** One measurement window: deliveries, frames, bytes and latency summed over the agents, server CPU. */
async function measure(
  ctx: RunContext,
  server: Child,
  agents: Child[],
): Promise<{ rep: GameReport; cpuS: number; windowS: number; agentBusy: number; serverBusy: number }> {
  await sleep(ctx.cfg.warmupMs);
  await Promise.all(agents.map((a) => a.call('reset')));
  const cpu0 = server.cpuSeconds();
  const [serverElu0, ...agentElu0] = await Promise.all([readElu(server), ...agents.map((a) => readElu(a))]);
  await sleep(ctx.cfg.windowMs);
  const cpuS = server.cpuSeconds() - cpu0;
  const [serverElu1, ...agentElu1] = await Promise.all([readElu(server), ...agents.map((a) => readElu(a))]);
  // The busiest agent's event-loop share: near 1, the load generator (not the server) set the pace.
  const agentBusy = Math.max(...agents.map((_, i) => eluBetween(agentElu0[i]!, agentElu1[i]!)));
  const serverBusy = eluBetween(serverElu0!, serverElu1!);
  const reps = await Promise.all(agents.map((a) => a.call<GameReport>('report')));
  await Promise.all(agents.map((a) => a.call('stop')));
  const lat = reps.map((r) => r.latency).filter((l) => l !== null);
  const rep: GameReport = {
    deliveries: reps.reduce((s, r) => s + r.deliveries, 0),
    frames: reps.reduce((s, r) => s + r.frames, 0),
    bytes: reps.reduce((s, r) => s + r.bytes, 0),
    elapsedMs: Math.max(...reps.map((r) => r.elapsedMs)),
    closed: reps.reduce((s, r) => s + r.closed, 0),
    sent: reps.reduce((s, r) => s + r.sent, 0),
    // Per-agent percentiles: the worse one is reported (each agent samples its own connections).
    latency: lat.length
      ? { p50: Math.max(...lat.map((l) => l.p50)), p99: Math.max(...lat.map((l) => l.p99)), max: Math.max(...lat.map((l) => l.max)), samples: lat.reduce((s, l) => s + l.samples, 0) }
      : null,
  };
  return { rep, cpuS, windowS: rep.elapsedMs / 1000, agentBusy, serverBusy };
}

export async function runCodec(ctx: RunContext): Promise<CodecResult[]> {
  const out: CodecResult[] = [];
  const subs = ctx.cfg.mode === 'tiny' ? 10 : 200;
  try {
    // One server process and one set of agents for all four runs; connections are reopened per codec.
    await withGameServer(ctx, 'switchboard-game', async (server, port, agents) => {
      for (const codec of ['json', 'msgpack'] as const) {
        const dialect: GameDialect = codec === 'json' ? 'switchboard-json' : 'switchboard-msgpack';
        await open(agents, { dialect, port, secret: ctx.secret, channel: 'codec:bench', sampleEvery: 20 }, subs);
        for (const payload of ['object', 'binary'] as const) {
          ctx.progress.step(`codec · ${codec} · ${payload} payload`);
          await agents[0]!.call('start', { mode: 'codec', hz: 100, perTick: 2, channel: 'codec:bench', payload });
          const r = await measure(ctx, server, agents);
          out.push({
            codec,
            payload,
            deliveriesPerSec: Math.round(r.rep.deliveries / r.windowS),
            bytesPerDelivery: r.rep.deliveries ? round(r.rep.bytes / r.rep.deliveries, 1) : 0,
            serverNsPerDelivery: r.rep.deliveries ? Math.round((r.cpuS / r.rep.deliveries) * 1e9) : 0,
            p99Ms: r.rep.latency ? round(r.rep.latency.p99, 1) : null,
          });
          // What is in flight arrives before the next window.
          await sleep(300);
        }
        await Promise.all(agents.map((a) => a.call('closeAll')));
      }
    });
  } catch (err) {
    ctx.notes.push(`codec: failed: ${errorText(err)}`);
  }
  for (const payload of ['object', 'binary'] as const) {
    const j = out.find((r) => r.codec === 'json' && r.payload === payload);
    const m = out.find((r) => r.codec === 'msgpack' && r.payload === payload);
    if (!j || !m) continue;
    ctx.notes.push(
      `codec, ${payload} payload, ${subs} subscribers: JSON ${j.bytesPerDelivery} B and ${j.serverNsPerDelivery} ns server CPU per delivery; ` +
        `MessagePack ${m.bytesPerDelivery} B and ${m.serverNsPerDelivery} ns (${round(m.bytesPerDelivery / j.bytesPerDelivery, 2)}× the bytes, ` +
        `${round(m.serverNsPerDelivery / Math.max(1, j.serverNsPerDelivery), 2)}× the CPU; target ≤ 0.8× CPU for the object payload)`,
    );
  }
  return out;
}

export async function runGame(ctx: RunContext): Promise<GameResult[]> {
  const out: GameResult[] = [];
  const players = ctx.cfg.mode === 'tiny' ? 10 : 200;
  const hz = 20;
  for (const kind of ['switchboard-game', 'socketio-game'] as const) {
    try {
      ctx.progress.step(`game · ${kind} · ${players} players × ${hz}/s`);
      const r = await withGameServer(ctx, kind, async (server, port, agents) => {
        const dialect: GameDialect = kind === 'socketio-game' ? 'socketio' : 'switchboard-msgpack';
        await open(agents, { dialect, port, secret: ctx.secret, channel: 'game:room', sampleEvery: 40 }, players);
        await Promise.all(agents.map((a) => a.call('start', { mode: 'game', hz, channel: 'game:room' })));
        return measure(ctx, server, agents);
      });
      out.push({
        server: kind,
        players,
        sentPerSec: Math.round(r.rep.sent / r.windowS),
        deliveriesPerSec: Math.round(r.rep.deliveries / r.windowS),
        p50Ms: r.rep.latency ? round(r.rep.latency.p50, 1) : null,
        p99Ms: r.rep.latency ? round(r.rep.latency.p99, 1) : null,
        serverCpuPct: Math.round((r.cpuS / r.windowS) * 100),
        closed: r.rep.closed,
        framesPerSec: Math.round(r.rep.frames / r.windowS),
        agentBusy: round(r.agentBusy, 2),
        serverBusy: round(r.serverBusy, 2),
        // Sending well short of players × hz means the agents' timers fell behind too.
        loadgenLimited: r.agentBusy > ctx.cfg.subsBusyLimit || r.rep.sent / r.windowS < 0.9 * players * hz,
      });
    } catch (err) {
      ctx.notes.push(`game ${kind}: failed: ${errorText(err)}`);
    }
  }
  const sb = out.find((r) => r.server === 'switchboard-game');
  const sio = out.find((r) => r.server === 'socketio-game');
  for (const r of out) {
    ctx.notes.push(
      `game room, ${r.server}: ${r.players} players sending ${r.sentPerSec}/s, ${r.deliveriesPerSec} deliveries/s ` +
        `(all-to-all would be ${r.sentPerSec * (r.players - 1)}/s), p50 ${r.p50Ms} ms, p99 ${r.p99Ms} ms, server CPU ${r.serverCpuPct}% (event loop ${Math.round(r.serverBusy * 100)}% busy), ` +
        `busiest agent ${Math.round(r.agentBusy * 100)}% busy${r.loadgenLimited ? ' — LOAD GENERATOR LIMITED' : ''}, closed ${r.closed}, ${r.framesPerSec} frames/s`,
    );
  }
  if (sb && sio && sio.deliveriesPerSec > 0 && sb.p99Ms !== null && sio.p99Ms !== null) {
    ctx.notes.push(
      `game room ratios: Switchboard ${round(sb.deliveriesPerSec / sio.deliveriesPerSec, 2)}× Socket.IO's deliveries/s (target ≥ 3×), ` +
        `p99 ${round(sb.p99Ms / Math.max(0.1, sio.p99Ms), 2)}× (target ≤ 0.5×)` +
        (sb.loadgenLimited || sio.loadgenLimited ? ' — load generator limited: these ratios measure the agents, not the servers' : ''),
    );
  }
  return out;
}
