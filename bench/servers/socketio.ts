import { createServer } from 'node:http';
import { Server } from 'socket.io';
import { jwtVerifier } from './auth.js';
import { listenLoopback } from './listen.js';
import type { RunningServer, ServerOptions } from './types.js';

/**
 * Socket.IO 4.8 as its docs suggest for this job: websocket transport only, JWT checked in a
 * middleware, channels are rooms, a client event `pub` is broadcast with `io.to(room).emit`.
 * With a Redis URL, @socket.io/redis-adapter (ioredis) joins the nodes.
 */
export async function start(o: ServerOptions): Promise<RunningServer> {
  const http = createServer();
  const io = new Server(http, { transports: ['websocket'], serveClient: false, perMessageDeflate: false, httpCompression: false });
  if (o.redisUrl) {
    const { createAdapter } = await import('@socket.io/redis-adapter');
    const { Redis } = await import('ioredis');
    const pub = new Redis(o.redisUrl);
    const sub = pub.duplicate();
    await Promise.all([pub, sub].map((c) => new Promise<void>((resolve, reject) => c.once('ready', resolve).once('error', reject))));
    io.adapter(createAdapter(pub, sub, { key: `${o.redisPrefix ?? 'bench'}-sio` }));
  }
  const verify = jwtVerifier(o.secret);
  io.use((socket, next) => {
    verify((socket.handshake.auth as { token?: unknown }).token).then(
      (user) => {
        socket.data.user = user;
        next();
      },
      () => next(new Error('unauthorized')),
    );
  });
  io.on('connection', (socket) => {
    socket.on('sub', (channels: unknown, ack: unknown) => {
      if (Array.isArray(channels)) void socket.join(channels.filter((c): c is string => typeof c === 'string'));
      if (typeof ack === 'function') ack();
    });
    socket.on('pub', (channel: unknown, data: unknown) => {
      if (typeof channel === 'string') io.to(channel).emit('m', channel, data);
    });
  });
  return { port: await listenLoopback(http) };
}
