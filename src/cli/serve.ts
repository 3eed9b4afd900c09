import { existsSync } from 'node:fs';
import { pino } from 'pino';
import { applyEnv, DEFAULT_DATA_DIR, readConfigFile, splitList, withCluster } from '../config/load.js';
import type { HubOptionsInput } from '../config/options.js';
import { DEMO_NAMESPACES, startDemo } from '../demo/demo.js';
import { createHub } from '../server/hub.js';
import { PACKAGE_ROOT } from '../http/package-files.js';
import { intArg, parse, UsageError } from './args.js';
import { resolveOptions } from '../config/options.js';
import { redisTargetOf } from '../redis/target.js';
import { isWorker, reportListening, runWorkers, workerCount } from './workers.js';
import { ensureSecrets, secretsFile } from './secrets.js';

export { SERVE_USAGE } from './help.js';

/**
 * Runs a server: the config file, then SWITCHBOARD_* variables, then flags. With no token
 * secret or API key configured, it uses (and creates once) `<dataDir>/secrets.json`.
 */
export async function serveCommand(args: string[]): Promise<void> {
  const { values } = parse(
    args,
    {
      port: { type: 'string' },
      host: { type: 'string' },
      config: { type: 'string' },
      memory: { type: 'boolean' },
      redis: { type: 'string' },
      postgres: { type: 'string' },
      'redis-cluster': { type: 'string' },
      'redis-cluster-tls': { type: 'boolean' },
      'redis-cluster-ca': { type: 'string' },
      workers: { type: 'string' },
      demo: { type: 'boolean' },
      'admin-port': { type: 'string' },
    },
    0,
  );
  let config: HubOptionsInput = applyEnv(values.config ? readConfigFile(values.config) : {});
  const port = intArg('port', values.port);
  if (port !== undefined) config.port = port;
  if (values.host) config.host = values.host;
  if (values.redis) config.redisUrl = values.redis;
  if (values.postgres) config.postgres = { ...config.postgres, url: values.postgres };
  if (values['redis-cluster']) config.redisCluster = withCluster(config.redisCluster, { seeds: splitList(values['redis-cluster']) });
  if (values['redis-cluster-tls']) config.redisCluster = withCluster(config.redisCluster, { tls: true });
  if (values['redis-cluster-ca']) config.redisCluster = withCluster(config.redisCluster, { tls: { caFile: values['redis-cluster-ca'] } });
  const adminPort = intArg('admin-port', values['admin-port']);
  if (adminPort !== undefined) config.adminPort = adminPort;
  const dataDir = config.dataDir ?? DEFAULT_DATA_DIR;
  const logger = pino({ name: 'switchboard', level: process.env.SWITCHBOARD_LOG_LEVEL ?? 'info' }, pino.destination(2));

  const auth = config.auth ?? {};
  const hasKey = auth.secret !== undefined || auth.publicKey !== undefined || auth.jwksUrl !== undefined;
  if (!hasKey || config.apiKey === undefined) {
    const { secrets, created } = ensureSecrets(dataDir);
    if (!hasKey) config.auth = { ...auth, secret: secrets.tokenSecret };
    config.apiKey ??= secrets.apiKey;
    logger.info({ file: secretsFile(dataDir) }, created ? 'created a token secret and API key' : 'using the token secret and API key');
  }
  config = { ...config, dataDir: values.memory ? null : dataDir };
  if (config.webDir === undefined && existsSync(`${PACKAGE_ROOT}web`)) config.webDir = `${PACKAGE_ROOT}web`;
  if (values.demo) config.namespaces = { ...DEMO_NAMESPACES, ...config.namespaces } as HubOptionsInput['namespaces'];

  const workers = workerCount(values.workers);
  if (workers > 1 && !isWorker()) {
    const options = resolveOptions(config);
    if (!redisTargetOf(options)) {
      throw new UsageError(
        `--workers ${workers} needs Redis, through which the workers coordinate: --redis URL, --redis-cluster HOST:PORT,…, SWITCHBOARD_REDIS_URL, or redisUrl / redisCluster / redisSentinel in the config`,
      );
    }
    const code = await runWorkers(workers, options.limits.shutdownTimeoutMs, logger);
    if (code !== 0) throw new Error('a worker failed (see its log above)');
    return;
  }

  const hub = createHub({ ...config, logger });
  const demo = values.demo && config.auth?.secret ? startDemo(hub, config.auth.secret) : undefined;
  if (demo) hub.use((req, res) => demo.handle(req, res));
  let listening;
  try {
    listening = await hub.listen();
  } catch (err) {
    demo?.close();
    await hub.close().catch(() => undefined);
    throw listenError(err, hub.options.port, hub.options.adminPort);
  }
  const { url, httpUrl, adminUrl } = listening;

  const lines = [
    `switchboard listening (${config.redisUrl ? 'Redis' : config.redisCluster ? 'Redis Cluster' : config.redisSentinel ? 'Redis through Sentinel' : values.memory ? 'memory only' : `history in ${dataDir}`})`,
    `  WebSocket  ${url}`,
    `  SSE        ${httpUrl}${hub.options.sse.path}?channel=NAME`,
    `  HTTP API   ${httpUrl}/api  (Authorization: apikey KEY)`,
  ];
  if (hub.options.webDir !== null) lines.push(`  pages      ${httpUrl}/`);
  const pg = hub.options.postgres;
  if (pg.url !== null && pg.outbox.enabled) lines.push(`  outbox     ${pg.schema}.${pg.outbox.table} (PostgreSQL)`);
  if (adminUrl) lines.push(`  admin      ${adminUrl}  (metrics, health, admin UI at /admin)`);
  else lines.push(`  admin UI   ${httpUrl}/admin  (log in with the API key or adminPassword)`);
  if (demo) lines.push('  demo mode: anyone may get a token for any name at /demo/token — local use only');
  if (isWorker()) reportListening(lines);
  else process.stdout.write(`${lines.join('\n')}\n`);

  await new Promise<void>((resolve) => {
    const stop = (signal: string): void => {
      logger.info({ signal }, 'shutting down');
      demo?.close();
      hub.close().then(resolve, resolve);
      // A second signal ends at once.
      process.once(signal, () => process.exit(1));
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
}

/** A listen failure in words: a port in use says how to pick another. */
function listenError(err: unknown, port: number, adminPort: number | null): Error {
  const e = err as NodeJS.ErrnoException & { port?: number };
  if (e.code === 'EADDRINUSE') {
    const which = e.port !== undefined && e.port === adminPort && adminPort !== port ? 'admin port' : 'port';
    const hint =
      which === 'port'
        ? 'stop the other server, or choose another port with --port N or SWITCHBOARD_PORT=N (--port 0 picks a free one)'
        : 'choose another with --admin-port N';
    return new Error(`${which} ${e.port ?? port} is already in use (EADDRINUSE): ${hint}`);
  }
  if (e.code === 'EACCES') return new Error(`not allowed to listen on port ${e.port ?? port} (EACCES): use a port above 1023 with --port N`);
  return err instanceof Error ? err : new Error(String(err));
}
