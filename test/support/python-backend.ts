/**
 * The Python backend (test/support/backend.py) in a process of its own: start it, read what it
 * recorded, steer it (slow, failing), SIGKILL it and start it again on the same port.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import type { WebSocketConstructor } from '../../src/client/types.js';
import { tail, track } from './processes.js';

const SCRIPT = fileURLToPath(new URL('./backend.py', import.meta.url));
export const PROXY_SECRET = 'proxy-secret-for-tests-0123456789';
export const WEBHOOK_SECRET = 'webhook-secret-for-tests-0123456789';

export interface WebhookEventSeen {
  id: string;
  type: string;
  timestamp: number;
  data: Record<string, unknown>;
}

export interface BackendState {
  messages: Array<{ id: number; channel: string; user: string; text: string }>;
  events: WebhookEventSeen[];
  rejected: number;
  proxyCalls: Array<{ kind: string; body: Record<string, unknown> }>;
}

export interface PythonBackend {
  port: number;
  url: string;
  state(): Promise<BackendState>;
  control(values: { slowMs?: number; failStatus?: number; sessionTtl?: number; loggedOut?: string[] }): Promise<void>;
  kill(): Promise<void>;
}

export async function startPythonBackend(port = 0): Promise<PythonBackend> {
  const child = spawn('python3', [SCRIPT, '--port', String(port), '--proxy-secret', PROXY_SECRET, '--webhook-secret', WEBHOOK_SECRET], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = track(child);
  const stderr = tail(child.stderr);
  const actual = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`backend.py exited (${code}): ${stderr()}`)));
  });
  const url = `http://127.0.0.1:${actual}`;
  return {
    port: actual,
    url,
    async state() {
      return (await (await fetch(`${url}/state`)).json()) as BackendState;
    },
    async control(values) {
      await fetch(`${url}/control`, { method: 'POST', body: JSON.stringify(values) });
    },
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

/** The SDK's WebSocket, sending a session cookie with the handshake as a browser would. */
export function withCookie(cookie: string): WebSocketConstructor {
  return class extends WebSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols, { headers: { cookie } });
    }
  } as unknown as WebSocketConstructor;
}
