import { createServer } from 'node:http';
import { WebSocketServer, type WebSocket } from 'ws';
import { jwtVerifier } from './auth.js';
import { listenLoopback } from './listen.js';
import type { RunningServer, ServerOptions } from './types.js';

const NEWLINE = Buffer.from('\n');

class Peer {
  readonly channels = new Set<string>();
  queue: Buffer[] = [];
  scheduled = false;
  constructor(readonly ws: WebSocket) {}
}

/**
 * The `ws` reference broadcasters. `plain`: one `ws.send` per subscriber per message.
 * `coalesce`: each connection gets a queue, flushed once per setImmediate as one frame with
 * messages joined by "\n" (the write-coalescing ceiling Switchboard is held to). Each
 * publication is encoded once (`{"channel","data"}` as a Buffer) for all subscribers. With a
 * Redis URL, publishes go through Redis pub/sub (ioredis) and every node delivers what its
 * channel subscriptions bring in.
 */
export async function start(o: ServerOptions, mode: 'plain' | 'coalesce'): Promise<RunningServer> {
  const http = createServer();
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, clientTracking: false, maxPayload: 64 * 1024 });
  const verify = jwtVerifier(o.secret);
  const rooms = new Map<string, Set<Peer>>();
  const prefix = `${o.redisPrefix ?? 'bench'}-ws:`;

  let pending: Peer[] = [];
  let flushScheduled = false;
  const flush = () => {
    const batch = pending;
    pending = [];
    flushScheduled = false;
    for (const p of batch) {
      p.scheduled = false;
      const q = p.queue;
      p.queue = [];
      if (q.length === 1) p.ws.send(q[0]!, { binary: false });
      else {
        const parts: Buffer[] = [];
        for (let i = 0; i < q.length; i++) {
          if (i > 0) parts.push(NEWLINE);
          parts.push(q[i]!);
        }
        p.ws.send(Buffer.concat(parts), { binary: false });
      }
    }
  };

  const deliver = (channel: string, frame: Buffer) => {
    const room = rooms.get(channel);
    if (!room) return;
    if (mode === 'plain') {
      for (const p of room) p.ws.send(frame, { binary: false });
      return;
    }
    for (const p of room) {
      p.queue.push(frame);
      if (!p.scheduled) {
        p.scheduled = true;
        pending.push(p);
      }
    }
    if (!flushScheduled) {
      flushScheduled = true;
      setImmediate(flush);
    }
  };

  let publish = (channel: string, frame: Buffer): void => deliver(channel, frame);
  let onFirstSubscriber = async (_channel: string): Promise<void> => {};
  if (o.redisUrl) {
    const { Redis } = await import('ioredis');
    const pub = new Redis(o.redisUrl);
    const sub = pub.duplicate();
    await Promise.all([pub, sub].map((c) => new Promise<void>((resolve, reject) => c.once('ready', resolve).once('error', reject))));
    sub.on('messageBuffer', (channel: Buffer, message: Buffer) => deliver(channel.toString('utf8').slice(prefix.length), message));
    publish = (channel, frame) => void pub.publish(prefix + channel, frame);
    onFirstSubscriber = async (channel) => {
      await sub.subscribe(prefix + channel);
    };
  }

  const onConnection = (ws: WebSocket) => {
    const peer = new Peer(ws);
    ws.on('message', (data: Buffer) => {
      let msg: { sub?: unknown; pub?: unknown; data?: unknown };
      try {
        msg = JSON.parse(data.toString('utf8')) as typeof msg;
      } catch {
        ws.send('{"error":"bad json"}');
        return;
      }
      if (typeof msg.pub === 'string') {
        publish(msg.pub, Buffer.from(JSON.stringify({ channel: msg.pub, data: msg.data })));
      } else if (Array.isArray(msg.sub)) {
        const firsts: Promise<void>[] = [];
        for (const c of msg.sub) {
          if (typeof c !== 'string' || peer.channels.has(c)) continue;
          peer.channels.add(c);
          let room = rooms.get(c);
          if (!room) {
            room = new Set();
            rooms.set(c, room);
            firsts.push(onFirstSubscriber(c));
          }
          room.add(peer);
        }
        void Promise.all(firsts).then(() => ws.send('{"ok":true}'));
      }
    });
    ws.on('close', () => {
      for (const c of peer.channels) {
        const room = rooms.get(c);
        room?.delete(peer);
        if (room?.size === 0) rooms.delete(c);
      }
    });
    ws.on('error', () => {});
  };

  http.on('upgrade', (req, socket, head) => {
    socket.on('error', () => socket.destroy());
    const token = new URL(req.url ?? '/', 'http://x').searchParams.get('token');
    verify(token).then(
      () => wss.handleUpgrade(req, socket, head, onConnection),
      () => socket.end('HTTP/1.1 401 Unauthorized\r\nConnection: close\r\nContent-Length: 0\r\n\r\n'),
    );
  });
  return { port: await listenLoopback(http) };
}
