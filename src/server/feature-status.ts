import type { FeatureStatusRegistry } from '../admin/features.js';
import type { DocumentHost } from '../collab/host.js';
import type { HubOptions } from '../config/options.js';
import type { Session } from '../hub/session.js';
import type { Metrics } from '../metrics/metrics.js';
import type { ProxyHooks } from '../proxy/proxy-hooks.js';
import type { Webhooks } from '../webhooks/webhooks.js';

export interface FeatureParts {
  options: HubOptions;
  webhooks: Webhooks | undefined;
  proxy: ProxyHooks | undefined;
  documents: DocumentHost;
  sessions: ReadonlySet<Session>;
  metrics: Metrics;
}

/**
 * Registers the admin UI's status provider of every enabled feature (docs/operations.md, "Admin
 * UI"): webhooks and proxy when configured, documents when a namespace has `document: true`,
 * msgpack always. Also counts proxy requests in the metrics. Returns a function that removes them.
 */
export function registerFeatureStatus(features: FeatureStatusRegistry, parts: FeatureParts): () => void {
  const { options, webhooks, proxy, documents, sessions, metrics } = parts;
  const removers: Array<() => void> = [];
  if (webhooks) removers.push(features.register('webhooks', async () => ({ ...(await webhooks.status()) })));
  if (proxy) {
    proxy.stats.observe((kind, outcome) => metrics.proxyRequest(kind, outcome));
    removers.push(features.register('proxy', () => ({ ...proxy.stats.status() })));
  }
  if (Object.values(options.namespaces).some((ns) => ns.document)) {
    removers.push(features.register('documents', () => ({ open: documents.openCount, maxOpenDocuments: options.collab.maxOpenDocuments })));
  }
  removers.push(features.register('msgpack', () => codecCounts(sessions)));
  return () => {
    for (const remove of removers) remove();
  };
}

/** Open sessions by codec: a walk over this node's sessions, once per status call. */
function codecCounts(sessions: ReadonlySet<Session>): { msgpack: number; json: number } {
  const counts = { msgpack: 0, json: 0 };
  for (const session of sessions) if (!session.closed) counts[session.codec ?? 'json'] += 1;
  return counts;
}
