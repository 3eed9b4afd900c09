/**
 * The load generator of the codec and game scenarios, one of several processes driven over
 * IPC. Raw `ws` connections, the same sending and counting code for every server; only the
 * wire dialect differs:
 * - `switchboard-json` / `switchboard-msgpack`: protocol v1 over the JSON or MessagePack codec;
 * - `socketio`: engine.io 4 + socket.io-msgpack-parser packets (binary).
 * Deliveries are counted without decoding (one needle per message); latency is sampled on
 * every `sampleEvery`-th connection by decoding its frames and reading the sender's clock
 * (`t`, µs since the epoch, shared by all processes of the machine).
 */
import { performance } from 'node:perf_hooks';
import { Packr, Unpackr } from 'msgpackr';
import { WebSocket } from 'ws';
import { countOf as count } from '../loadgen/dialects.js';
import { LatencyReservoir } from '../loadgen/latency.js';
import { signHs256 } from '../loadgen/jwt.js';
import { serveRpc } from '../proc/rpc.js';

export type GameDialect = 'switchboard-json' | 'switchboard-msgpack' | 'socketio';

export interface GameOpenSpec {
  dialect: GameDialect;
  port: number;
  secret: string;
  channel: string;
  count: number;
  userPrefix: string;
  sampleEvery: number;
}

export interface GameReport {
  deliveries: number;
  frames: number;
  bytes: number;
  elapsedMs: number;
  closed: number;
  sent: number;
  latency: { p50: number; p99: number; max: number; samples: number } | null;
}

const packr = new Packr({ useRecords: false, variableMapSize: true });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number' });
const nowUs = (): number => Math.round((performance.timeOrigin + performance.now()) * 1000);

/** One message per needle: the push kind of Switchboard (JSON text or MessagePack bytes). */
const NEEDLES: Record<string, Buffer> = {
  'json-pub': Buffer.from('"push":"pub"'),
  'json-emit': Buffer.from('"push":"emit"'),
  'msgpack-pub': Buffer.from([0xa4, 0x70, 0x75, 0x73, 0x68, 0xa3, 0x70, 0x75, 0x62]),
  'msgpack-emit': Buffer.from([0xa4, 0x70, 0x75, 0x73, 0x68, 0xa4, 0x65, 0x6d, 0x69, 0x74]),
};

const MSGPACK_PING = Buffer.from([0xa4, 0x70, 0x75, 0x73, 0x68, 0xa4, 0x70, 0x69, 0x6e, 0x67]);

class Conn {
  ready = false;
  closed = false;
  private nextId = 3;

  constructor(
    readonly ws: WebSocket,
    readonly dialect: GameDialect,
    readonly sampled: boolean,
  ) {}

  /** Sends one command/event object in this dialect. */
  send(value: unknown): void {
    if (this.ws.readyState !== WebSocket.OPEN) return;
    if (this.dialect === 'switchboard-json') this.ws.send(JSON.stringify(value));
    else this.ws.send(packr.pack(value));
  }

  publish(channel: string, data: unknown): void {
    this.send({ id: this.nextId++, method: 'publish', params: { channel, data } });
  }
}

const conns: Conn[] = [];
const latency = new LatencyReservoir();
let stats = { deliveries: 0, frames: 0, bytes: 0, started: Date.now() };
let sent = 0;
let timer: NodeJS.Timeout | undefined;

function openOne(spec: GameOpenSpec, i: number): Promise<void> {
  const token = signHs256(spec.secret, `${spec.userPrefix}${i}`);
  const sampled = i % spec.sampleEvery === 0;
  const url =
    spec.dialect === 'socketio' ? `ws://127.0.0.1:${spec.port}/socket.io/?EIO=4&transport=websocket` : `ws://127.0.0.1:${spec.port}/ws`;
  const ws =
    spec.dialect === 'switchboard-msgpack'
      ? new WebSocket(url, 'switchboard.v1.msgpack', { perMessageDeflate: false })
      : new WebSocket(url, { perMessageDeflate: false });
  const conn = new Conn(ws, spec.dialect, sampled);
  conns.push(conn);
  const kind = spec.dialect === 'switchboard-json' ? 'json' : 'msgpack';
  return new Promise((resolve, reject) => {
    const fail = (err: Error): void => reject(err);
    ws.once('error', fail);
    ws.on('close', () => (conn.closed = true));
    ws.on('open', () => {
      if (spec.dialect !== 'socketio') {
        conn.send({ id: 1, method: 'connect', params: { token } });
        conn.send({ id: 2, method: 'subscribe', params: { channel: spec.channel } });
      }
    });
    ws.on('message', (data: Buffer, binary: boolean) => {
      if (!conn.ready) {
        if (setup(conn, data, binary, token)) {
          conn.ready = true;
          ws.off('error', fail);
          resolve();
        }
        return;
      }
      if (spec.dialect === 'socketio') {
        if (!binary) {
          if (data.length === 1 && data[0] === 0x32) ws.send('3');
          return;
        }
        stats.deliveries += 1;
        stats.frames += 1;
        stats.bytes += data.length;
        if (conn.sampled) {
          const packet = unpackr.unpack(data) as { data?: [string, { t?: number }] };
          const t = packet.data?.[1]?.t;
          if (typeof t === 'number') latency.add(nowUs() - t);
        }
        return;
      }
      stats.frames += 1;
      stats.bytes += data.length;
      stats.deliveries += count(data, NEEDLES[`${kind}-pub`]!) + count(data, NEEDLES[`${kind}-emit`]!);
      if (conn.sampled || !binary) sample(conn, data, binary);
      else if (data.includes(MSGPACK_PING)) conn.send({ method: 'pong' });
    });
  });
}

/** Setup exchange; true once the connection is subscribed (or joined). */
function setup(conn: Conn, data: Buffer, binary: boolean, token: string): boolean {
  if (conn.dialect === 'socketio') {
    const text = binary ? '' : data.toString();
    if (text.startsWith('0{')) {
      conn.ws.send(packr.pack({ type: 0, nsp: '/', data: { token } }));
      return false;
    }
    if (text === '2') conn.ws.send('3');
    if (!binary) return false;
    const packet = unpackr.unpack(data) as { type: number; data?: unknown };
    if (packet.type === 4) throw new Error(`socket.io refused: ${JSON.stringify(packet.data)}`);
    return packet.type === 0;
  }
  const messages = binary ? (unpackr.unpackMultiple(data) as Array<Record<string, any>>) : data.toString().split('\n').map((l) => JSON.parse(l) as Record<string, any>);
  for (const m of messages) {
    if (m.error) throw new Error(`switchboard refused: ${m.error.code} ${m.error.message}`);
    if (m.push === 'ping') conn.send({ method: 'pong' });
    if (m.id === 2) return true;
  }
  return false;
}

/** Latency samples from one frame; pings answered (a JSON frame is checked for them too). */
function sample(conn: Conn, data: Buffer, binary: boolean): void {
  const messages = binary ? (unpackr.unpackMultiple(data) as Array<Record<string, any>>) : conn.sampled || data.includes('"ping"') ? data.toString().split('\n').map((l) => JSON.parse(l) as Record<string, any>) : [];
  const now = nowUs();
  for (const m of messages) {
    if (m.push === 'ping') conn.send({ method: 'pong' });
    else if (conn.sampled && typeof m.data?.t === 'number') latency.add(now - m.data.t);
  }
}

serveRpc({
  elu: () => performance.eventLoopUtilization(),
  open: async (spec: GameOpenSpec) => {
    const batch = 20;
    for (let i = 0; i < spec.count; i += batch) {
      await Promise.all(Array.from({ length: Math.min(batch, spec.count - i) }, (_, j) => openOne(spec, i + j).then(() => undefined)));
    }
    return { open: conns.length };
  },
  /**
   * Game room: every connection sends `hz` positions a second (one tick sends for all), as a
   * client event (Switchboard) or a `pos` event (Socket.IO).
   * Codec: connection 0 publishes `perTick` publications of `payload` each tick (`hz` ticks/s).
   */
  start: (spec: { mode: 'game' | 'codec'; hz: number; channel: string; payload?: 'object' | 'binary'; perTick?: number }) => {
    clearInterval(timer);
    const bin = new Uint8Array(1024).map((_, i) => (i * 7) % 256);
    timer = setInterval(() => {
      const t = nowUs();
      if (spec.mode === 'game') {
        for (let i = 0; i < conns.length; i++) {
          const c = conns[i]!;
          const pos = { x: (t % 1000) / 10, y: i, t };
          if (c.dialect === 'socketio') {
            if (c.ws.readyState === WebSocket.OPEN) c.ws.send(packr.pack({ type: 2, nsp: '/', data: ['pos', pos] }));
          } else c.send({ method: 'emit', params: { channel: spec.channel, key: 'pos', data: pos } });
          sent += 1;
        }
        return;
      }
      const c = conns[0]!;
      for (let k = 0; k < (spec.perTick ?? 1); k++) {
        const data =
          spec.payload === 'binary'
            ? { t, blob: c.dialect === 'switchboard-json' ? { $binary: Buffer.from(bin).toString('base64') } : bin }
            : { t, id: sent, user: 'player-42', x: 12.5, y: -3.25, tags: ['a', 'b'], ok: true };
        c.publish(spec.channel, data);
        sent += 1;
      }
    }, 1000 / spec.hz);
    return {};
  },
  stop: () => {
    clearInterval(timer);
    timer = undefined;
    return {};
  },
  reset: () => {
    stats = { deliveries: 0, frames: 0, bytes: 0, started: Date.now() };
    latency.reset();
    sent = 0;
    return {};
  },
  report: (): GameReport => ({
    deliveries: stats.deliveries,
    frames: stats.frames,
    bytes: stats.bytes,
    elapsedMs: Date.now() - stats.started,
    closed: conns.filter((c) => c.closed).length,
    sent,
    latency: latency.summary(),
  }),
  closeAll: () => {
    clearInterval(timer);
    for (const c of conns.splice(0)) c.ws.terminate();
    return {};
  },
});

// --cpu-prof (bench --profile) writes its profile only on a normal exit.
process.on('SIGTERM', () => process.exit(0));
