import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';

/** Receives a RawWs's data frames and its end. */
export interface FrameSink {
  /** A text, binary or continuation frame's payload (a view into the read buffer). */
  onFrame(payload: Buffer): void;
  onClose(): void;
}

export interface RawWsTarget {
  host: string;
  port: number;
  /** Path and query of the upgrade request. */
  path: string;
  localAddress?: string;
  /** Sec-WebSocket-Protocol to ask for. */
  protocol?: string;
}

const MAX_HEAD = 16 * 1024;
const MAX_FRAME = 64 * 1024 * 1024;

/**
 * A minimal WebSocket client over a raw TCP socket, as cheap as a load generator can be: the
 * upgrade is one hand-written request, server frames (unmasked) are cut out of the read
 * buffer without copying, control frames are answered, nothing is decoded. Outgoing frames
 * use an all-zero masking key, so the payload goes out unchanged (servers cannot tell; this is
 * loopback benchmarking, not a browser).
 */
export class RawWs {
  private socket: Socket | undefined;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private need = 0;
  private closed = false;

  constructor(private readonly sink: FrameSink) {}

  get isClosed(): boolean {
    return this.closed;
  }

  /** Opens TCP and completes the upgrade (HTTP 101); rejects on any other answer or timeout. */
  connect(target: RawWsTarget, timeoutMs: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const key = randomBytes(16).toString('base64');
      const socket = connect({
        host: target.host,
        port: target.port,
        ...(target.localAddress ? { localAddress: target.localAddress } : {}),
      });
      this.socket = socket;
      socket.setNoDelay(true);
      let head: Buffer = Buffer.alloc(0);
      let settled = false;
      const fail = (err: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.closed = true;
        socket.destroy();
        reject(err);
      };
      const timer = setTimeout(() => fail(new Error('handshake timeout')), timeoutMs);
      socket.once('connect', () => {
        socket.write(
          `GET ${target.path} HTTP/1.1\r\nHost: ${target.host}:${target.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
            `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n` +
            (target.protocol ? `Sec-WebSocket-Protocol: ${target.protocol}\r\n` : '') +
            '\r\n',
        );
      });
      const onHead = (chunk: Buffer) => {
        head = head.length === 0 ? chunk : Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end === -1) {
          if (head.length > MAX_HEAD) fail(new Error('handshake: response head too large'));
          return;
        }
        const status = head.subarray(0, head.indexOf('\r\n')).toString('latin1');
        if (!/^HTTP\/1\.1 101 /.test(status)) {
          fail(new Error(`handshake refused: ${status} ${head.subarray(end + 4, end + 200).toString('utf8')}`));
          return;
        }
        settled = true;
        clearTimeout(timer);
        socket.off('data', onHead);
        socket.on('data', this.onData);
        resolve();
        const rest = head.subarray(end + 4);
        if (rest.length > 0) this.onData(rest);
      };
      socket.on('data', onHead);
      socket.on('error', (err) => fail(err));
      socket.on('close', () => {
        if (!settled) fail(new Error('closed during handshake'));
        else if (!this.closed) {
          this.closed = true;
          this.sink.onClose();
        }
      });
    });
  }

  sendText(data: string | Buffer): void {
    this.write(0x1, typeof data === 'string' ? Buffer.from(data) : data);
  }

  /** Holds writes until `uncork`, so a burst leaves in as few segments as possible. */
  cork(): void {
    this.socket?.cork();
  }

  uncork(): void {
    this.socket?.uncork();
  }

  /** Drops the connection at once (no close handshake: teardown of thousands must be quick). */
  destroy(): void {
    this.closed = true;
    this.socket?.destroy();
  }

  private write(opcode: number, data: Buffer): void {
    const socket = this.socket;
    if (!socket || this.closed || socket.destroyed) return;
    const n = data.length;
    const hdr = n < 126 ? 6 : n < 65536 ? 8 : 14;
    const out = Buffer.allocUnsafe(hdr + n);
    out[0] = 0x80 | opcode;
    if (n < 126) out[1] = 0x80 | n;
    else if (n < 65536) {
      out[1] = 0x80 | 126;
      out.writeUInt16BE(n, 2);
    } else {
      out[1] = 0x80 | 127;
      out.writeUInt32BE(0, 2);
      out.writeUInt32BE(n, 6);
    }
    out.writeUInt32BE(0, hdr - 4); // masking key 0: payload bytes stay as they are
    data.copy(out, hdr);
    socket.write(out);
  }

  private readonly onData = (chunk: Buffer): void => {
    let buf: Buffer;
    if (this.pendingBytes === 0) buf = chunk;
    else {
      this.pending.push(chunk);
      this.pendingBytes += chunk.length;
      if (this.pendingBytes < this.need) return;
      buf = Buffer.concat(this.pending, this.pendingBytes);
      this.pending = [];
      this.pendingBytes = 0;
    }
    const len = buf.length;
    let pos = 0;
    this.need = 0;
    while (pos + 2 <= len) {
      const b0 = buf[pos]!;
      const b1 = buf[pos + 1]!;
      let size = b1 & 0x7f;
      let hdr = 2;
      if (size === 126) {
        if (pos + 4 > len) break;
        size = buf.readUInt16BE(pos + 2);
        hdr = 4;
      } else if (size === 127) {
        if (pos + 10 > len) break;
        size = buf.readUInt32BE(pos + 2) * 2 ** 32 + buf.readUInt32BE(pos + 6);
        hdr = 10;
      }
      if (b1 & 0x80 || size > MAX_FRAME) {
        this.destroy();
        this.sink.onClose();
        return;
      }
      const end = pos + hdr + size;
      if (end > len) {
        this.need = end - pos;
        break;
      }
      const opcode = b0 & 0x0f;
      if (opcode <= 2) this.sink.onFrame(buf.subarray(pos + hdr, end));
      else if (opcode === 0x9) this.write(0xa, buf.subarray(pos + hdr, end));
      else if (opcode === 0x8) {
        this.write(0x8, buf.subarray(pos + hdr, Math.min(end, pos + hdr + 2)));
        this.socket?.end();
      }
      pos = end;
      if (this.closed) return;
    }
    if (pos < len) {
      this.pending = [buf.subarray(pos)];
      this.pendingBytes = len - pos;
    }
  };
}
