import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

/** The CLI as shipped (`npm test` builds dist/ first). */
export const CLI = join(import.meta.dirname, '..', '..', 'dist', 'cli', 'main.js');

export interface ServeProcess {
  child: ChildProcess;
  port: number;
  httpUrl: string;
  /** SIGTERM (graceful shutdown); resolves with the exit code. */
  stop(): Promise<number | null>;
}

/** The environment of a `switchboard serve` with nothing inherited from the developer's shell. */
export function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, SWITCHBOARD_LOG_LEVEL: 'warn' };
  for (const k of Object.keys(env)) if (k.startsWith('SWITCHBOARD_') && k !== 'SWITCHBOARD_LOG_LEVEL') delete env[k];
  return { ...env, ...extra };
}

/** Starts `switchboard serve ARGS` in `cwd` and resolves once it printed its URLs. */
export function startServe(args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<ServeProcess> {
  const child = spawn(process.execPath, [CLI, 'serve', ...args], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start: ${out} ${err}`)), 20_000);
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /HTTP API\s+http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        const port = Number(m[1]);
        resolve({
          child,
          port,
          httpUrl: `http://127.0.0.1:${port}`,
          stop: () =>
            new Promise((done) => {
              if (child.exitCode !== null) return done(child.exitCode);
              child.once('exit', (code) => done(code));
              child.kill('SIGTERM');
            }),
        });
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`serve exited (${code}): ${out} ${err}`));
    });
  });
}
