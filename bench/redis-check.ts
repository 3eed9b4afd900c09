import { connect } from 'node:net';

/** Whether a Redis answers PING at host:port within `timeoutMs`. */
export function redisReachable(host = '127.0.0.1', port = 6379, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (ok: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (d: Buffer) => done(d.toString('latin1').startsWith('+PONG')));
    socket.once('error', () => done(false));
  });
}
