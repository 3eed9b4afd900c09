import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';

export interface MetricsSource {
  stats(): { connections: number; queuedBytes: number; channels: number };
}

/**
 * Prometheus metrics of one hub, in a registry of its own (several hubs may share a process).
 * Hot-path counters are bumped once per broadcast, never once per subscriber.
 */
export class Metrics {
  readonly registry = new Registry();
  private readonly publications: Counter<'source'>;
  private readonly deliveries: Counter;
  private readonly disconnects: Counter<'code'>;
  private readonly commands: Counter<'method'>;
  private readonly errors: Counter<'code'>;
  private readonly latestDrops: Counter;
  private readonly clientEventDrops: Counter;
  private readonly outbox: Counter<'outcome'>;

  private readonly gauges: Record<keyof ReturnType<MetricsSource['stats']>, Gauge>;

  constructor(private readonly source: MetricsSource) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'switchboard_' });
    // One stats() walk per scrape sets all three (it visits every connection).
    this.gauges = {
      connections: new Gauge({ name: 'switchboard_connections', help: 'Open client connections on this node', registers }),
      channels: new Gauge({ name: 'switchboard_channels', help: 'Channels with at least one subscriber on this node', registers }),
      queuedBytes: new Gauge({
        name: 'switchboard_queued_bytes',
        help: 'Outbound bytes queued for all connections of this node',
        registers,
      }),
    };
    this.publications = new Counter({
      name: 'switchboard_publications_total',
      help: 'Publications accepted by this node',
      labelNames: ['source'],
      registers,
    });
    this.deliveries = new Counter({
      name: 'switchboard_deliveries_total',
      help: 'Publications queued to subscribers on this node',
      registers,
    });
    this.disconnects = new Counter({
      name: 'switchboard_disconnects_total',
      help: 'Connections closed, by close code',
      labelNames: ['code'],
      registers,
    });
    this.commands = new Counter({
      name: 'switchboard_commands_total',
      help: 'Client commands, by method',
      labelNames: ['method'],
      registers,
    });
    this.errors = new Counter({
      name: 'switchboard_command_errors_total',
      help: 'Error replies, by error code',
      labelNames: ['code'],
      registers,
    });
    this.latestDrops = new Counter({
      name: 'switchboard_latest_dropped_total',
      help: 'Latest-value publications and client events dropped: a slow connection held limits.maxLatestEntries keys',
      registers,
    });
    this.clientEventDrops = new Counter({
      name: 'switchboard_client_events_dropped_total',
      help: 'Client events (emit) dropped at the sender, over limits.clientEventRate',
      registers,
    });
    this.outbox = new Counter({
      name: 'switchboard_outbox_rows_total',
      help: 'PostgreSQL outbox rows consumed by this node: published, or failed (refused for good)',
      labelNames: ['outcome'],
      registers,
    });
  }

  /** Latest-value frames dropped because a slow connection held maxLatestEntries keys already. */
  latestDropped(): void {
    this.latestDrops.inc();
  }

  /** Client events dropped at the sender's limits.clientEventRate. */
  clientEventDropped(): void {
    this.clientEventDrops.inc();
  }

  /** Outbox rows published, or refused for good (marked failed). */
  outboxRows(outcome: 'published' | 'failed', count: number): void {
    this.outbox.inc({ outcome }, count);
  }

  published(source: 'client' | 'server'): void {
    this.publications.inc({ source });
  }

  delivered(count: number): void {
    if (count > 0) this.deliveries.inc(count);
  }

  disconnected(code: number): void {
    this.disconnects.inc({ code: String(code) });
  }

  command(method: string): void {
    this.commands.inc({ method });
  }

  error(code: number): void {
    this.errors.inc({ code: String(code) });
  }

  /** Webhook events delivered (2xx) and set aside after their retries ran out. */
  readonly webhookEvents = new Counter<'outcome'>({
    name: 'switchboard_webhook_events_total',
    help: 'Webhook events by outcome: delivered, or failed (retries ran out; GET /api/webhooks/failed)',
    labelNames: ['outcome'],
    registers: [this.registry],
  });

  webhooksDelivered(count: number): void {
    this.webhookEvents.inc({ outcome: 'delivered' }, count);
  }

  webhooksFailed(count: number): void {
    this.webhookEvents.inc({ outcome: 'failed' }, count);
  }

  /** Proxy requests to the backend by kind (connect, refresh, subscribe, publish, rpc) and outcome (src/proxy/proxy-stats.ts). */
  readonly proxyRequests = new Counter<'kind' | 'outcome'>({
    name: 'switchboard_proxy_requests_total',
    help: 'Proxy requests to the backend by kind and outcome: ok, timeout, unavailable, http_5xx, refused, invalid, limited',
    labelNames: ['kind', 'outcome'],
    registers: [this.registry],
  });

  proxyRequest(kind: string, outcome: string): void {
    this.proxyRequests.inc({ kind, outcome });
  }

  /** Collaborative documents (docs/collab.md): open on this node, updates stored and applied here, failed loads. */
  private openDocuments: () => number = () => 0;
  readonly documentsOpen = new Gauge({
    name: 'switchboard_documents_open',
    help: 'Yjs documents open (in memory) on this node',
    registers: [this.registry],
    collect: () => {
      this.documentsOpen.set(this.openDocuments());
    },
  });
  readonly documentUpdates = new Counter({
    name: 'switchboard_document_updates_total',
    help: 'Document updates stored and applied by this node (clients and the HTTP API)',
    registers: [this.registry],
  });
  readonly documentUpdateBytes = new Counter({
    name: 'switchboard_document_update_bytes_total',
    help: 'Bytes of the document updates stored and applied by this node',
    registers: [this.registry],
  });
  readonly documentLoadFailures = new Counter({
    name: 'switchboard_document_load_failures_total',
    help: 'Document loads that failed or timed out (nothing was created for them)',
    registers: [this.registry],
  });

  /** Where the open-documents gauge reads from (the DocumentHost, once it exists). */
  countDocuments(open: () => number): void {
    this.openDocuments = open;
  }

  documentUpdated(bytes: number): void {
    this.documentUpdates.inc();
    this.documentUpdateBytes.inc(bytes);
  }

  documentLoadFailed(): void {
    this.documentLoadFailures.inc();
  }

  /** Running totals for the admin UI's rates (summed over labels). */
  async totals(): Promise<{ publications: number; deliveries: number; errors: number; slowConsumers: number; disconnects: number }> {
    const sum = async (c: Counter<string>, only?: (labels: Record<string, unknown>) => boolean): Promise<number> =>
      (await c.get()).values.filter((v) => !only || only(v.labels)).reduce((n, v) => n + v.value, 0);
    return {
      publications: await sum(this.publications),
      deliveries: await sum(this.deliveries),
      errors: await sum(this.errors),
      slowConsumers: await sum(this.disconnects, (l) => l.code === '4001'),
      disconnects: await sum(this.disconnects),
    };
  }

  async text(): Promise<{ contentType: string; body: string }> {
    const stats = this.source.stats();
    for (const [key, gauge] of Object.entries(this.gauges) as Array<[keyof typeof stats, Gauge]>) gauge.set(stats[key]);
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
