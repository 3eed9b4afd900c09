import { createRequire } from 'node:module';
import { createServer } from 'node:http';
import { Server } from 'socket.io';
import { jwtVerifier } from './auth.js';
import { listenLoopback } from './listen.js';
import type { RunningServer, ServerOptions } from './types.js';

const require = createRequire(import.meta.url);

/**
 * Socket.IO 4.8 as its docs suggest for a game room: websocket transport, the MessagePack
 * parser (socket.io-msgpack-parser), every player in one room, and each position relayed to
 * the others with a volatile emit (`socket.volatile.to(room).emit`: dropped when the socket is
 * not writable, never buffered).
 */
export async function start(o: ServerOptions): Promise<RunningServer> {
  const http = createServer();
  const parser = require('socket.io-msgpack-parser') as never;
  const io = new Server(http, { transports: ['websocket'], serveClient: false, perMessageDeflate: false, httpCompression: false, parser });
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
    void socket.join('room');
    socket.on('pos', (data: unknown) => {
      socket.volatile.to('room').emit('pos', data);
    });
  });
  return { port: await listenLoopback(http) };
}
