/**
 * The Switchboard node of the proxy bench: JWT and the connect proxy side by side (connections
 * without a token go to the backend), `proxied:*` with the publish proxy, `plain:*` without.
 * Run: `node --import tsx bench/proxy/hub.ts JWT_SECRET PROXY_SECRET BACKEND_URL`; prints `ready <port>`.
 */
import { createHub } from '../../src/index.js';

const [jwtSecret = '', proxySecret = '', backend = ''] = process.argv.slice(2);
const hub = createHub({
  auth: { secret: jwtSecret },
  proxy: {
    secret: proxySecret,
    connect: { url: `${backend}/connect`, timeoutMs: 5_000 },
    publish: { url: `${backend}/publish`, timeoutMs: 5_000 },
    maxInFlight: 10_000,
  },
  namespaces: {
    proxied: { history: { size: 100 } },
    plain: { history: { size: 100 }, proxy: { publish: null } },
  },
  limits: {
    maxConnections: 1_000_000,
    maxConnectionsPerUser: 1_000_000,
    connectionRatePerIp: { perSecond: 1_000_000, burst: 1_000_000 },
    commandRate: { perSecond: 1_000_000, burst: 1_000_000 },
  },
});
const { port } = await hub.listen(0, '127.0.0.1');
process.stdout.write(`ready ${port}\n`);
