/**
 * deploy/: what can run without Docker, Kubernetes or systemd runs for real (docs/operations.md,
 * "Deployment", says which parts do and which do not):
 * - Dockerfile: parsed by stage; the build stage's COPY and RUN steps run in a temp dir (npm ci
 *   is the checkout's node_modules plus the build it runs; npm prune is checked instead: the
 *   built code imports only production dependencies), the runtime stage's COPY and RUN steps
 *   too, then its CMD as an unprivileged user with its ENV, and its HEALTHCHECK command;
 * - docker-compose.yml: parsed; its three nodes started with their environments on a Redis of
 *   our own, behind nginx with compose-nginx.conf (which must be deploy/nginx.conf filled in);
 * - Kubernetes manifests: parsed and checked against the real server (ports, probe paths, the
 *   grace period against limits.shutdownTimeoutMs from the ConfigMap, secrets), then the
 *   container's command started with the manifest's environment, probed, and stopped;
 * - systemd unit: its ExecStart started for real (paths mapped to this checkout), as an
 *   unprivileged user, with its environment, and stopped with its KillSignal.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { resolveOptions } from '../src/config/options.js';
import { signToken } from '../src/index.js';
import { envPair, execForm, parseDockerfile, parseUnit, unitSeconds, type DockerStage } from './support/deploy-files.js';
import { until } from './support/harness.js';
import { freePort } from './support/processes.js';
import { ProtocolClient } from './support/protocol-client.js';
import { OwnRedis } from './support/redis-server.js';

const ROOT = join(import.meta.dirname, '..');
const DEPLOY = join(ROOT, 'deploy');
const SECRET = 'deploy-test-secret-0123456789abcdef0123';
const API_KEY = 'deploy-test-api-key-0123';
const NGINX = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((p) => spawnSync(p, ['-v']).status === 0);
const AS_ROOT = process.getuid?.() === 0;
const NOBODY = AS_ROOT ? { uid: Number(spawnSync('id', ['-u', 'nobody']).stdout), gid: Number(spawnSync('id', ['-g', 'nobody']).stdout) } : undefined;

let work: string;
let redis: OwnRedis;
/** The runtime stage's /app, built by the Dockerfile test, reused by the Kubernetes one. */
let runtimeApp: string | undefined;
const children: ChildProcess[] = [];

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'sb-deploy-'));
  chmodSync(work, 0o755); // readable by the unprivileged user the servers run as
  redis = await OwnRedis.start();
});

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await redis?.down();
  rmSync(work, { recursive: true, force: true });
});

function dir(name: string, writableByServer = false): string {
  const d = join(work, name);
  mkdirSync(d, { recursive: true });
  if (writableByServer && NOBODY) chownSync(d, NOBODY.uid, NOBODY.gid);
  return d;
}

interface Started {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exit: Promise<number | null>;
}

/** Starts a command as the unprivileged user (when these tests run as root), as a service manager would. */
function startAsService(argv: string[], cwd: string, env: NodeJS.ProcessEnv): Started {
  const [cmd, ...args] = argv;
  const child = spawn(cmd!, args, { cwd, env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'], ...(NOBODY ?? {}) });
  children.push(child);
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, stdout: () => out, stderr: () => err, exit };
}

async function status(url: string): Promise<number> {
  return fetch(url).then(
    (r) => r.status,
    () => 0,
  );
}

async function waitUp(port: number, s: Started, path = '/healthz'): Promise<void> {
  await until(async () => (await status(`http://127.0.0.1:${port}${path}`)) === 200 || s.child.exitCode !== null, `${path} on ${port}`, 60_000);
  expect(s.child.exitCode, s.stderr()).toBeNull();
}

/** SIGTERM (or `signal`), and the seconds until it exited. */
async function stopTimed(s: Started, signal: NodeJS.Signals = 'SIGTERM'): Promise<{ code: number | null; seconds: number }> {
  const t0 = Date.now();
  s.child.kill(signal);
  const code = await s.exit;
  return { code, seconds: (Date.now() - t0) / 1000 };
}

/** Bare package names the built code imports (`import … from 'x'`, `import('x')`). */
function importedPackages(distDir: string): Set<string> {
  const found = new Set<string>();
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.js') && !p.includes(`${join('dist', 'client')}`)) {
        const text = readFileSync(p, 'utf8');
        for (const m of text.matchAll(/(?:from\s+|import\s*\(\s*|import\s+)['"]([^'"./][^'"]*)['"]/g)) {
          const spec = m[1]!;
          if (spec.startsWith('node:') || builtinModules.includes(spec)) continue;
          found.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!);
        }
      }
    }
  };
  walk(distDir);
  return found;
}

describe('deploy/Dockerfile', () => {
  const stages: DockerStage[] = parseDockerfile(readFileSync(join(DEPLOY, 'Dockerfile'), 'utf8'));
  const build = stages.find((s) => s.name === 'build');
  const runtime = stages.at(-1)!;
  const envOf = (stage: DockerStage): Record<string, string> => Object.fromEntries(stage.steps.filter((s) => s.op === 'ENV').map((s) => envPair(s.args)));

  it('is multi-stage, runs as a non-root user, and checks /healthz on the port it exposes', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    expect(build).toBeDefined();
    expect(runtime).not.toBe(build);
    const user = runtime.steps.filter((s) => s.op === 'USER').at(-1)?.args;
    expect(user).toBeDefined();
    expect(['root', '0']).not.toContain(user);
    const env = envOf(runtime);
    expect(runtime.steps.find((s) => s.op === 'EXPOSE')?.args).toBe(env.SWITCHBOARD_PORT);
    const health = runtime.steps.find((s) => s.op === 'HEALTHCHECK')!.args;
    expect(health).toMatch(/\/healthz/);
    expect(health).toMatch(/process\.env\.SWITCHBOARD_PORT/);
    expect(execForm(runtime.steps.find((s) => s.op === 'CMD')!.args)).toEqual(['node', 'dist/cli/main.js', 'serve']);
    // Nothing but the built output and the production dependencies is copied from the build.
    expect(runtime.steps.filter((s) => s.op === 'COPY').every((s) => s.args.startsWith('--from=build '))).toBe(true);
  });

  it('builds in a temp dir as its steps say, and its CMD serves (as an unprivileged user) and passes its HEALTHCHECK', async () => {
    // --- the build stage
    const buildDir = dir('docker-build');
    for (const step of build!.steps) {
      if (step.op === 'WORKDIR' || step.op === 'ENV') continue;
      if (step.op === 'COPY') {
        const parts = step.args.split(/\s+/);
        const dest = parts.pop()!;
        for (const src of parts) cpSync(join(ROOT, src), dest.endsWith('/') || parts.length > 1 ? join(buildDir, dest, src) : join(buildDir, dest), { recursive: true });
      } else if (step.op === 'RUN' && /^npm ci\b/.test(step.args)) {
        // Installing from the registry is replaced by the checkout's node_modules (same lock
        // file); what npm ci runs then — the prepare script, npm run build — runs for real.
        symlinkSync(join(ROOT, 'node_modules'), join(buildDir, 'node_modules'));
        const r = spawnSync('npm', ['run', 'build'], { cwd: buildDir, encoding: 'utf8', timeout: 180_000 });
        expect(r.status, r.stderr + r.stdout).toBe(0);
      } else if (step.op === 'RUN' && /^npm prune --omit=dev\b/.test(step.args)) {
        // Not run (it would change the shared node_modules): the built server imports only
        // production dependencies, so pruning the others cannot break it.
        const pkg = JSON.parse(readFileSync(join(buildDir, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
        const extra = [...importedPackages(join(buildDir, 'dist'))].filter((p) => !(p in pkg.dependencies));
        expect(extra).toEqual([]);
      } else {
        throw new Error(`a build step this test does not know how to run: ${step.op} ${step.args}`);
      }
    }
    expect(existsSync(join(buildDir, 'dist', 'cli', 'main.js'))).toBe(true);
    expect(existsSync(join(buildDir, 'dist', 'broker', 'redis', 'publish.lua'))).toBe(true);

    // --- the runtime stage
    const app = dir('docker-app');
    const data = dir('docker-data', true);
    for (const step of runtime.steps) {
      if (step.op === 'COPY') {
        const [, src, dest] = /^--from=build\s+(\S+)\s+(\S+)$/.exec(step.args)!;
        const from = join(buildDir, src!.replace(/^\/app\/?/, ''));
        const to = join(app, dest!.replace(/^\.\//, ''));
        if (src!.endsWith('node_modules')) symlinkSync(join(ROOT, 'node_modules'), to);
        else cpSync(from, to, { recursive: true });
      } else if (step.op === 'RUN') {
        expect(step.args).toBe('mkdir -p /data && chown node:node /data'); // done by dir('docker-data', true)
      } else if (!['ENV', 'WORKDIR', 'VOLUME', 'USER', 'EXPOSE', 'HEALTHCHECK', 'STOPSIGNAL', 'CMD'].includes(step.op)) {
        throw new Error(`a runtime step this test does not know: ${step.op}`);
      }
    }
    runtimeApp = app;
    const port = await freePort();
    const env = { ...envOf(runtime), SWITCHBOARD_PORT: String(port), SWITCHBOARD_DATA_DIR: data, SWITCHBOARD_TOKEN_SECRET: SECRET, SWITCHBOARD_API_KEY: API_KEY };
    const s = startAsService(execForm(runtime.steps.find((st) => st.op === 'CMD')!.args)!, app, env);
    await waitUp(port, s);
    expect(s.stdout()).toContain(`WebSocket  ws://127.0.0.1:${port}/ws`);
    if (NOBODY) expect(readFileSync(`/proc/${s.child.pid}/status`, 'utf8')).toMatch(new RegExp(`^Uid:\\s+${NOBODY.uid}\\s`, 'm'));
    // The HEALTHCHECK command, as Docker runs it (shell form, in the container's environment).
    const health = runtime.steps.find((st) => st.op === 'HEALTHCHECK')!.args.replace(/^.*?\bCMD\s+/, '');
    expect(spawnSync('sh', ['-c', health], { env: { ...process.env, ...env }, timeout: 10_000 }).status).toBe(0);
    // The embedded default wrote its history under the data volume.
    await fetch(`http://127.0.0.1:${port}/api/publish`, { method: 'POST', headers: { authorization: `apikey ${API_KEY}` }, body: JSON.stringify({ channel: 'news', data: 1 }) });
    expect(readdirSync(data).length).toBeGreaterThan(0);
    const stopped = await stopTimed(s, runtime.steps.find((st) => st.op === 'STOPSIGNAL')!.args as NodeJS.Signals);
    expect(stopped.code).toBe(0);
    // With the server gone, the health check fails.
    expect(spawnSync('sh', ['-c', health], { env: { ...process.env, ...env }, timeout: 10_000 }).status).toBe(1);
  }, 240_000);
});

describe('deploy/kubernetes/switchboard.yaml', () => {
  const docs = parseAllDocuments(readFileSync(join(DEPLOY, 'kubernetes', 'switchboard.yaml'), 'utf8')).map((d) => d.toJS() as any);
  const byKind = (kind: string): any => docs.find((d) => d.kind === kind);
  const deployment = byKind('Deployment');
  const pod = deployment.spec.template.spec;
  const container = pod.containers[0];
  const secret = byKind('Secret');
  const configJson = byKind('ConfigMap').data['config.json'] as string;
  const envValue = (name: string): any => container.env.find((e: any) => e.name === name);

  it('has probes, ports, preStop and a grace period that match the real server and its shutdown timeout', () => {
    expect(docs.map((d) => d.kind).sort()).toEqual(['ConfigMap', 'Deployment', 'PodDisruptionBudget', 'Secret', 'Service']);
    const http = container.ports.find((p: any) => p.name === 'http');
    expect(String(http.containerPort)).toBe(envValue('SWITCHBOARD_PORT').value);
    expect(container.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'http' });
    expect(container.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'http' });
    const preStop = container.lifecycle.preStop.exec.command as string[];
    expect(preStop[0]).toBe('sleep');
    const options = resolveOptions({ ...JSON.parse(configJson), auth: { allowAnonymous: true } });
    const needed = Number(preStop[1]) + options.limits.shutdownTimeoutMs / 1000;
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(needed);
    expect(pod.terminationGracePeriodSeconds).toBeLessThanOrEqual(needed + 15);
    // The config mount is where the command reads it.
    const mount = container.volumeMounts.find((m: any) => m.name === 'config').mountPath as string;
    expect(container.command).toContain(`${mount}/config.json`);
    // Service, PDB and Deployment select the same pods; the Service targets the named port.
    const labels = deployment.spec.template.metadata.labels;
    expect(deployment.spec.selector.matchLabels).toEqual(labels);
    expect(byKind('Service').spec.selector).toEqual(labels);
    expect(byKind('Service').spec.ports[0].targetPort).toBe('http');
    expect(byKind('PodDisruptionBudget').spec.selector.matchLabels).toEqual(labels);
    expect(byKind('PodDisruptionBudget').spec.maxUnavailable).toBeLessThan(deployment.spec.replicas);
    // Every secret reference names a key of the Secret; Redis comes from it.
    for (const e of container.env.filter((x: any) => x.valueFrom)) {
      expect(e.valueFrom.secretKeyRef.name).toBe(secret.metadata.name);
      expect(Object.keys(secret.stringData)).toContain(e.valueFrom.secretKeyRef.key);
    }
    expect(envValue('SWITCHBOARD_REDIS_URL').valueFrom.secretKeyRef.key).toBe('redis-url');
    expect(pod.securityContext.runAsNonRoot).toBe(true);
    expect(pod.securityContext.runAsUser).not.toBe(0);
  });

  it("starts the container's command with the manifest's environment; the probes answer; SIGTERM ends it within the grace period", async () => {
    const app = runtimeApp ?? ROOT; // the Docker runtime stage when that test ran, else this checkout
    const port = await freePort();
    const etc = dir('k8s-etc');
    writeFileSync(join(etc, 'config.json'), configJson);
    const data = dir('k8s-data', true);
    const env: Record<string, string> = {};
    for (const e of container.env) {
      env[e.name] = e.value ?? secret.stringData[e.valueFrom.secretKeyRef.key];
    }
    Object.assign(env, { SWITCHBOARD_PORT: String(port), SWITCHBOARD_DATA_DIR: data, SWITCHBOARD_REDIS_URL: redis.url, SWITCHBOARD_LOG_LEVEL: 'warn' });
    const argv = (container.command as string[]).map((a) => a.replace('/etc/switchboard', etc));
    const s = startAsService(argv, app, env);
    await waitUp(port, s, container.readinessProbe.httpGet.path);
    expect(await status(`http://127.0.0.1:${port}${container.livenessProbe.httpGet.path}`)).toBe(200);
    // A namespace from the ConfigMap is in force: presence on chat:.
    const c = await ProtocolClient.open(`ws://127.0.0.1:${port}/ws`);
    await c.connect(await signToken({ secret: env.SWITCHBOARD_TOKEN_SECRET!, user: 'k8s' }));
    await c.subscribe('chat:lobby');
    expect((await c.call('presence', { channel: 'chat:lobby' })).users).toEqual(['k8s']);
    const closed = c.waitForClose(60_000);
    const stopped = await stopTimed(s);
    expect((await closed).code).toBe(4000);
    expect(stopped.code).toBe(0);
    expect(stopped.seconds).toBeLessThan(pod.terminationGracePeriodSeconds);
  }, 90_000);
});

describe('deploy/docker-compose.yml', () => {
  const compose = parseYaml(readFileSync(join(DEPLOY, 'docker-compose.yml'), 'utf8'), { merge: true }) as any;
  const nodes = Object.entries(compose.services as Record<string, any>).filter(([name]) => /^node\d$/.test(name));

  it('describes 3 nodes on one Redis behind nginx, whose config is deploy/nginx.conf filled in', () => {
    expect(nodes).toHaveLength(3);
    expect(compose.services.redis.image).toMatch(/^redis:7/);
    for (const [, n] of nodes) {
      expect(n.environment.SWITCHBOARD_REDIS_URL).toBe('redis://redis:6379');
      expect(n.build.dockerfile).toBe('deploy/Dockerfile');
      expect(Number.parseInt(n.stop_grace_period, 10)).toBeGreaterThan(resolveOptions({ auth: { allowAnonymous: true } }).limits.shutdownTimeoutMs / 1000);
    }
    const mount = (compose.services.nginx.volumes as string[]).find((v) => v.endsWith(':/etc/nginx/nginx.conf:ro'))!;
    const conf = readFileSync(join(DEPLOY, mount.split(':')[0]!), 'utf8');
    const template = readFileSync(join(DEPLOY, 'nginx.conf'), 'utf8');
    const filled = template
      .slice(template.indexOf('worker_processes'))
      .replaceAll('{{PREFIX}}', '/tmp')
      .replace('listen 127.0.0.1:{{PORT}};', `listen ${compose.services.nginx.ports[0].split(':')[1]};`)
      .replace('{{UPSTREAMS}}', nodes.map(([name, n]) => `server ${name}:${n.environment.SWITCHBOARD_PORT};`).join('\n    '));
    expect(conf.slice(conf.indexOf('worker_processes'))).toBe(filled);
  });

  it('runs: three nodes with their compose environments on one Redis, a client through nginx gets what another node published', async () => {
    if (!NGINX) throw new Error('nginx is not installed (apt-get install nginx-light); .ci/run installs it');
    const ports: number[] = [];
    const servers: Started[] = [];
    for (const [name, n] of nodes) {
      const port = await freePort();
      ports.push(port);
      const env = { ...n.environment, SWITCHBOARD_REDIS_URL: redis.url, SWITCHBOARD_TOKEN_SECRET: SECRET, SWITCHBOARD_API_KEY: API_KEY, SWITCHBOARD_PORT: String(port), SWITCHBOARD_DATA_DIR: dir(`compose-${name}`, true), SWITCHBOARD_LOG_LEVEL: 'warn' };
      servers.push(startAsService([process.execPath, join(ROOT, 'dist', 'cli', 'main.js'), 'serve'], ROOT, env));
    }
    for (const [i, s] of servers.entries()) await waitUp(ports[i]!, s, '/readyz');
    const nginxDir = dir('compose-nginx');
    const nginxPort = await freePort();
    let conf = readFileSync(join(DEPLOY, 'compose-nginx.conf'), 'utf8').replaceAll('/tmp', nginxDir).replace('listen 8080;', `listen 127.0.0.1:${nginxPort};`);
    nodes.forEach(([name], i) => (conf = conf.replace(`server ${name}:7070;`, `server 127.0.0.1:${ports[i]};`)));
    writeFileSync(join(nginxDir, 'nginx.conf'), conf);
    const nginx = spawn(NGINX, ['-p', nginxDir, '-e', join(nginxDir, 'error.log'), '-c', join(nginxDir, 'nginx.conf'), '-g', 'daemon off;'], { stdio: 'ignore' });
    children.push(nginx);
    await until(async () => (await status(`http://127.0.0.1:${nginxPort}/readyz`)) === 200, 'nginx', 20_000);
    const c = await ProtocolClient.open(`ws://127.0.0.1:${nginxPort}/ws`);
    await c.connect(await signToken({ secret: SECRET, user: 'compose' }));
    await c.subscribe('news');
    for (const port of ports) {
      await fetch(`http://127.0.0.1:${port}/api/publish`, { method: 'POST', headers: { authorization: `apikey ${API_KEY}` }, body: JSON.stringify({ channel: 'news', data: { from: port } }) });
    }
    const got = await c.waitForPushes(3, (m) => m.push === 'pub' && m.channel === 'news');
    expect(got.map((m) => m.data.from)).toEqual(ports);
    c.terminate();
    nginx.kill('SIGTERM');
    for (const s of servers) expect((await stopTimed(s)).code).toBe(0);
  }, 90_000);
});

describe('deploy/switchboard.service', () => {
  const unit = parseUnit(readFileSync(join(DEPLOY, 'switchboard.service'), 'utf8'));
  const service = unit.get('Service')!;
  const one = (key: string): string => service.get(key)![0]!;

  it('stops within TimeoutStopSec, above the graceful shutdown, and runs as its own user', () => {
    expect(unitSeconds(one('TimeoutStopSec'))).toBeGreaterThan(resolveOptions({ auth: { allowAnonymous: true } }).limits.shutdownTimeoutMs / 1000);
    expect(one('KillSignal')).toBe('SIGTERM');
    expect(one('User')).not.toBe('root');
    expect(unit.get('Install')!.get('WantedBy')).toEqual(['multi-user.target']);
  });

  it('its ExecStart serves (with --workers auto, through Redis) as an unprivileged user, and its KillSignal stops every worker', async () => {
    const port = await freePort();
    const etc = dir('systemd-etc');
    const state = dir('systemd-state', true);
    writeFileSync(join(etc, 'config.json'), JSON.stringify({ limits: { shutdownSpreadMs: 200 } }));
    writeFileSync(join(etc, 'env'), `SWITCHBOARD_TOKEN_SECRET=${SECRET}\nSWITCHBOARD_API_KEY=${API_KEY}\nSWITCHBOARD_REDIS_URL=${redis.url}\n`);
    const map = (s: string): string =>
      s
        .replace('/usr/bin/node', process.execPath)
        .replace('/opt/switchboard', ROOT)
        .replace('/etc/switchboard', etc)
        .replace('/var/lib/switchboard', state);
    const env: Record<string, string> = {};
    for (const line of readFileSync(map(one('EnvironmentFile')), 'utf8').split('\n').filter(Boolean)) {
      const [k, v] = envPair(line);
      env[k] = v;
    }
    for (const e of service.get('Environment') ?? []) {
      const [k, v] = envPair(map(e));
      env[k] = v;
    }
    expect(env.SWITCHBOARD_PORT).toBe('7070');
    env.SWITCHBOARD_PORT = String(port);
    const argv = map(one('ExecStart')).split(/\s+/);
    expect(argv).toContain('--workers');
    const s = startAsService(argv, map(one('WorkingDirectory')), env);
    await waitUp(port, s, '/readyz');
    await until(() => /HTTP API/.test(s.stdout()), 'the listening lines');
    const stopped = await stopTimed(s, one('KillSignal') as NodeJS.Signals);
    expect(stopped.code, s.stderr()).toBe(0);
    expect(stopped.seconds).toBeLessThan(unitSeconds(one('TimeoutStopSec')));
    expect(await status(`http://127.0.0.1:${port}/healthz`)).toBe(0); // no worker left listening
  }, 90_000);
});
