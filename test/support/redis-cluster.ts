import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { freePort } from './processes.js';

const run = promisify(execFile);

export interface OwnRedisClusterOptions {
  masters?: number;
  /** Replicas per master. */
  replicas?: number;
  /** `cluster-node-timeout`: how long a dead master goes unnoticed before its replica takes over. */
  nodeTimeoutMs?: number;
  /** `requirepass` (and `masterauth`) of every node. */
  password?: string;
  /** TLS only (no plain port), cluster bus and replication included, with a CA made for the cluster (`caFile`). */
  tls?: boolean;
}

/**
 * A Redis Cluster of the test's own: `masters` × (1 + `replicas`) `redis-server --cluster-enabled yes`
 * processes on free loopback ports, joined by `redis-cli --cluster create`, no persistence, in a
 * temporary directory removed by `stop()`. Start it once per test file (it takes a few seconds).
 */
export class OwnRedisCluster {
  private readonly children = new Map<number, ChildProcess>();

  private constructor(
    readonly ports: number[],
    private readonly dir: string,
    private readonly security: { password?: string; tls?: boolean },
  ) {}

  /** The CA that signed the nodes' certificate (with `tls`). */
  get caFile(): string {
    return join(this.dir, 'ca.crt');
  }

  static async start(options: OwnRedisClusterOptions = {}): Promise<OwnRedisCluster> {
    const masters = options.masters ?? 3;
    const replicas = options.replicas ?? 1;
    const ports: number[] = [];
    while (ports.length < masters * (1 + replicas)) {
      const p = await freePort();
      // The cluster bus listens on port + 10000: both must be free and below 65536.
      if (p + 10_000 < 65_536 && !ports.includes(p)) ports.push(p);
    }
    const security = { ...(options.password !== undefined ? { password: options.password } : {}), ...(options.tls ? { tls: true } : {}) };
    const c = new OwnRedisCluster(ports, mkdtempSync(join(tmpdir(), 'sb-cluster-')), security);
    try {
      if (options.tls) await c.makeCertificates();
      for (const port of ports) c.spawnNode(port, options.nodeTimeoutMs ?? 1_000);
      await Promise.all(ports.map((p) => c.waitPing(p)));
      await run('redis-cli', [
        ...c.cliAuth(),
        '--cluster',
        'create',
        ...ports.map((p) => `127.0.0.1:${p}`),
        '--cluster-replicas',
        String(replicas),
        '--cluster-yes',
      ]);
      await c.waitOk();
      return c;
    } catch (err) {
      await c.stop();
      throw err;
    }
  }

  /** Seed nodes as `host:port` (all of them; one would do). */
  get seeds(): string[] {
    return this.ports.map((p) => `127.0.0.1:${p}`);
  }

  /**
   * Waits until every running node says `cluster_state:ok` and agrees on the masters, and every
   * running replica has its link to its master up. A replica that never completed its first sync
   * is never promoted (its data counts as infinitely old), so a test that kills a master before
   * that would wait for a failover that cannot happen.
   */
  async waitOk(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const states = await Promise.all(this.livePorts().map((p) => this.cli(p, 'cluster', 'info').catch(() => '')));
      if (states.every((s) => s.includes('cluster_state:ok'))) {
        const views = await Promise.all(this.livePorts().map((p) => this.mastersSeenBy(p).catch(() => '')));
        const replication = await Promise.all(this.livePorts().map((p) => this.cli(p, 'info', 'replication').catch(() => '')));
        const synced = replication.every((r) => !r.includes('role:slave') || r.includes('master_link_status:up'));
        if (synced && views.every((v) => v !== '' && v === views[0])) return;
      }
      if (Date.now() > deadline) throw new Error(`cluster not ok: ${states.join(' | ')}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** The port of the master that serves the slot of `key` (a key, or a shard channel). */
  async masterPortOf(key: string): Promise<number> {
    const port = this.livePorts()[0]!;
    const slot = Number(await this.cli(port, 'cluster', 'keyslot', key));
    const nodes = await this.cli(port, 'cluster', 'nodes');
    for (const line of nodes.split('\n')) {
      const [, addr, flags, , , , , state, ...ranges] = line.split(' ');
      if (!flags?.includes('master') || flags.includes('fail') || state !== 'connected') continue;
      for (const r of ranges) {
        const [a, b] = r.split('-').map(Number);
        if (slot >= a! && slot <= (b ?? a)!) return Number(addr!.split(':')[1]!.split('@')[0]);
      }
    }
    throw new Error(`no master for slot ${slot}`);
  }

  /** Ports of the masters, now. */
  async masterPorts(): Promise<number[]> {
    const nodes = await this.cli(this.livePorts()[0]!, 'cluster', 'nodes');
    return nodes
      .split('\n')
      .filter((l) => l.includes('master') && !l.includes('fail'))
      .map((l) => Number(l.split(' ')[1]!.split(':')[1]!.split('@')[0]));
  }

  /** SIGKILLs one node (a master dies); its replica is promoted after `nodeTimeoutMs` or so. */
  async kill(port: number): Promise<void> {
    const child = this.children.get(port);
    this.children.delete(port);
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGKILL');
    });
  }

  /** A plain connection to one node (tests that look at keys by hand). */
  connect(port: number): Redis {
    const conn = new Redis(port, '127.0.0.1', {
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
      ...(this.security.password !== undefined ? { password: this.security.password } : {}),
      ...(this.security.tls ? { tls: { ca: readFileSync(this.caFile) } } : {}),
    });
    conn.on('error', () => undefined);
    return conn;
  }

  async stop(): Promise<void> {
    await Promise.all([...this.children.keys()].map((p) => this.kill(p)));
    rmSync(this.dir, { recursive: true, force: true });
  }

  private livePorts(): number[] {
    return [...this.children.keys()];
  }

  /** A CA and one certificate for 127.0.0.1, shared by every node (openssl). */
  private async makeCertificates(): Promise<void> {
    const f = (name: string): string => join(this.dir, name);
    await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('ca.key'), '-out', f('ca.crt'), '-days', '2', '-subj', '/CN=switchboard-test-ca']);
    await run('openssl', ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('node.key'), '-out', f('node.csr'), '-subj', '/CN=127.0.0.1']);
    writeFileSync(f('ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
    await run('openssl', ['x509', '-req', '-in', f('node.csr'), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f('node.crt'), '-days', '2', '-extfile', f('ext.cnf')]);
  }

  /** redis-cli's flags for this cluster's password and TLS. */
  private cliAuth(): string[] {
    return [
      ...(this.security.password !== undefined ? ['-a', this.security.password, '--no-auth-warning'] : []),
      ...(this.security.tls ? ['--tls', '--cacert', this.caFile] : []),
    ];
  }

  private spawnNode(port: number, nodeTimeoutMs: number): void {
    const { password, tls } = this.security;
    const child = spawn(
      'redis-server',
      [
        ...(tls
          ? ['--port', '0', '--tls-port', String(port), '--tls-cluster', 'yes', '--tls-replication', 'yes', '--tls-auth-clients', 'no',
             '--tls-cert-file', join(this.dir, 'node.crt'), '--tls-key-file', join(this.dir, 'node.key'), '--tls-ca-cert-file', this.caFile]
          : ['--port', String(port)]),
        ...(password !== undefined ? ['--requirepass', password, '--masterauth', password] : []),
        '--bind', '127.0.0.1',
        '--cluster-enabled', 'yes',
        '--cluster-config-file', join(this.dir, `nodes-${port}.conf`),
        '--cluster-node-timeout', String(nodeTimeoutMs),
        '--save', '',
        // A replica's first sync starts at once (the default waits 5 s for more replicas).
        '--repl-diskless-sync-delay', '0',
        '--appendonly', 'no',
        '--dir', this.dir,
      ],
      { stdio: 'ignore' },
    );
    this.children.set(port, child);
  }

  private async mastersSeenBy(port: number): Promise<string> {
    const nodes = await this.cli(port, 'cluster', 'nodes');
    return nodes
      .split('\n')
      .filter((l) => / (myself,)?master /.test(l) && !l.includes('fail'))
      .map((l) => `${l.split(' ')[1]} ${l.split(' ').slice(8).join(' ')}`)
      .sort()
      .join(';');
  }

  private async cli(port: number, ...args: string[]): Promise<string> {
    const { stdout } = await run('redis-cli', [...this.cliAuth(), '-p', String(port), ...args], { timeout: 5_000 });
    return stdout.trim();
  }

  private async waitPing(port: number): Promise<void> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      try {
        if ((await this.cli(port, 'ping')) === 'PONG') return;
      } catch {
        // not up yet
      }
      if (Date.now() > deadline) throw new Error(`redis-server on ${port} did not start`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}
