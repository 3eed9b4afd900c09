/**
 * How each server kind is spoken to: the upgrade path, the setup exchange (authenticate with
 * the JWT, subscribe), keep-alives while counting, and the publish frame. Setup frames are
 * decoded properly (they are few); the hot path never decodes.
 */
export type DialectName = 'switchboard' | 'socketio' | 'wsjson';

export interface Sender {
  sendText(text: string): void;
}

export interface DialectSession {
  /** Sent right after the upgrade; returns true when the session is already ready. */
  start(out: Sender): boolean;
  /** One frame during setup; true once ready. Throws when the server refuses. */
  onSetupFrame(text: string, out: Sender): boolean;
  /** Any frame once ready: answer application-level pings. Must be cheap. */
  keepAlive(frame: Buffer, out: Sender): void;
}

export interface Dialect {
  path(token: string): string;
  /** The WebSocket subprotocol to ask for, if any. */
  subprotocol?: string;
  session(token: string, channels: readonly string[]): DialectSession;
  /** One publish command carrying `payload` (an ASCII string without quotes or backslashes). */
  publishFrame(channel: string, payload: string, seq: number): string;
  /** Counts refusals in a frame the publisher's connection received (replies to publishes). */
  countErrors(frame: Buffer): number;
}

const G = 0x67; // 'g'

/**
 * Whether a Switchboard frame holds a `{"push":"ping"}` line. Scanning every frame for the
 * 15-byte string would cost the load generator more than counting does, so it looks for the
 * byte `g`, which no other line of the bench has (its keys, channel names, user names, hex
 * client ids and payloads contain none), and checks the bytes before it.
 */
function hasSwitchboardPing(frame: Buffer): boolean {
  let g = frame.indexOf(G);
  while (g !== -1) {
    if (
      g >= 12 &&
      frame[g - 1] === 0x6e &&
      frame[g - 2] === 0x69 &&
      frame[g - 3] === 0x70 &&
      frame[g - 4] === 0x22 &&
      frame[g - 5] === 0x3a
    )
      return true;
    g = frame.indexOf(G, g + 1);
  }
  return false;
}
const SB_ERROR = Buffer.from('"error"');

/** Occurrences of `needle` in `frame` (no decoding). */
export function countOf(frame: Buffer, needle: Buffer): number {
  let n = 0;
  let p = frame.indexOf(needle);
  while (p !== -1) {
    n += 1;
    p = frame.indexOf(needle, p + needle.length);
  }
  return n;
}

/**
 * Switchboard protocol v2 (`switchboard.v2.json`, docs/protocol.md), what the SDK speaks by
 * default: v1's commands and replies, compact publications. Connect and subscribes batched in
 * frames of at most SB_BATCH commands (the server answers 111 past 256 pending commands per
 * connection).
 */
const SB_BATCH = 100;

const switchboard: Dialect = {
  path: () => '/ws',
  subprotocol: 'switchboard.v2.json',
  session(token, channels) {
    const waiting = new Set<number>();
    const queue: Array<{ id: number; line: string }> = [{ id: 1, line: JSON.stringify({ id: 1, method: 'connect', params: { token } }) }];
    channels.forEach((channel, i) =>
      queue.push({ id: i + 2, line: JSON.stringify({ id: i + 2, method: 'subscribe', params: { channel } }) }),
    );
    const sendBatch = (out: Sender) => {
      const batch = queue.splice(0, SB_BATCH);
      for (const b of batch) waiting.add(b.id);
      out.sendText(batch.map((b) => b.line).join('\n'));
    };
    return {
      start(out) {
        sendBatch(out);
        return false;
      },
      onSetupFrame(text, out) {
        for (const line of text.split('\n')) {
          if (line.trim() === '') continue;
          const msg = JSON.parse(line) as { id?: number; error?: { code: number; message: string }; push?: string };
          if (msg.error) throw new Error(`switchboard refused: ${msg.error.code} ${msg.error.message}`);
          if (msg.push === 'ping') out.sendText('{"method":"pong"}');
          if (typeof msg.id === 'number') waiting.delete(msg.id);
        }
        if (waiting.size > 0) return false;
        if (queue.length === 0) return true;
        sendBatch(out);
        return false;
      },
      keepAlive(frame, out) {
        if (hasSwitchboardPing(frame)) out.sendText('{"method":"pong"}');
      },
    };
  },
  publishFrame: (channel, payload, seq) => `{"id":${seq + 1},"method":"publish","params":{"channel":"${channel}","data":"${payload}"}}`,
  countErrors: (frame) => countOf(frame, SB_ERROR),
};

/**
 * Socket.IO 4 over engine.io 4, websocket transport only: `0{…}` open → `40{"token"}` →
 * `40{sid}`; subscribe with an acknowledged event `421["sub",[…]]` → `431[]`; engine.io
 * pings `2` are answered `3`. Publications arrive as `42["m","channel","payload"]`.
 */
const socketio: Dialect = {
  path: () => '/socket.io/?EIO=4&transport=websocket',
  session(token, channels) {
    let connected = false;
    return {
      start: () => false,
      onSetupFrame(text, out) {
        if (text === '2') {
          out.sendText('3');
          return false;
        }
        if (text.startsWith('0{')) {
          out.sendText(`40${JSON.stringify({ token })}`);
          return false;
        }
        if (text.startsWith('44')) throw new Error(`socket.io refused: ${text}`);
        if (!connected && text.startsWith('40')) {
          connected = true;
          if (channels.length === 0) return true;
          out.sendText(`421${JSON.stringify(['sub', channels])}`);
          return false;
        }
        return connected && text.startsWith('431');
      },
      keepAlive(frame, out) {
        if (frame.length === 1 && frame[0] === 0x32) out.sendText('3');
      },
    };
  },
  publishFrame: (channel, payload) => `42["pub","${channel}","${payload}"]`,
  countErrors: () => 0,
};

/** The ws peers: token in the query (verified at the upgrade), `{"sub":[…]}` → `{"ok":true}`. */
const wsjson: Dialect = {
  path: (token) => `/?token=${token}`,
  session(_token, channels) {
    return {
      start(out) {
        if (channels.length === 0) return true;
        out.sendText(JSON.stringify({ sub: channels }));
        return false;
      },
      onSetupFrame(text) {
        const msg = JSON.parse(text) as { ok?: boolean; error?: string };
        if (msg.error) throw new Error(`ws peer refused: ${msg.error}`);
        return msg.ok === true;
      },
      keepAlive() {},
    };
  },
  publishFrame: (channel, payload) => `{"pub":"${channel}","data":"${payload}"}`,
  countErrors: () => 0,
};

export const DIALECTS: Record<DialectName, Dialect> = { switchboard, socketio, wsjson };
