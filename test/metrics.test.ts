import { afterEach, describe, expect, it } from 'vitest';
import { closeAllServers, createTestServer } from './support/harness.js';

afterEach(closeAllServers);

function sample(text: string, metric: string): number {
  const line = text.split('\n').find((l) => l.startsWith(metric));
  if (!line) throw new Error(`no ${metric} in metrics`);
  return Number(line.split(' ').pop());
}

describe('Prometheus metrics', () => {
  it('counts connections, publications, deliveries, commands and disconnects', async () => {
    const server = await createTestServer();
    const a = await server.client({ user: 'a' });
    const b = await server.client({ user: 'b' });
    await a.subscribe('chat:m');
    await b.subscribe('chat:m');
    await a.publish('chat:m', 1);
    await server.hub.publish('chat:m', 2);
    await b.waitForPushes(2, (m) => m.push === 'pub');
    await a.errorCode('nope', {});
    await b.close();

    const res = await fetch(`${server.httpUrl}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    const text = await res.text();
    expect(sample(text, 'switchboard_connections ')).toBe(1);
    expect(sample(text, 'switchboard_channels ')).toBe(1);
    expect(sample(text, 'switchboard_publications_total{source="client"}')).toBe(1);
    // Server-side: hub.publish, and the user status changes on status:<user>.
    expect(sample(text, 'switchboard_publications_total{source="server"}')).toBeGreaterThanOrEqual(3);
    expect(sample(text, 'switchboard_deliveries_total ')).toBe(4);
    expect(sample(text, 'switchboard_commands_total{method="subscribe"}')).toBe(2);
    expect(sample(text, 'switchboard_command_errors_total{code="104"}')).toBe(1);
    expect(sample(text, 'switchboard_disconnects_total{code="1001"}')).toBe(1);
    expect(text).toContain('switchboard_process_cpu_seconds_total');
    expect(text).toContain('switchboard_nodejs_eventloop_lag_seconds');
    expect(text).not.toMatch(/switchboard_process_process_|switchboard_process_nodejs_/);
  });

  it('moves to the admin port when one is set, and health answers on both', async () => {
    const server = await createTestServer({ adminPort: 0 });
    const admin = server.adminUrl!;
    expect(admin).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect((await fetch(`${admin}/metrics`)).status).toBe(200);
    expect(await (await fetch(`${admin}/metrics`)).text()).toContain('switchboard_connections');
    expect((await fetch(`${server.httpUrl}/metrics`)).status).toBe(404);
    expect((await fetch(`${admin}/readyz`)).status).toBe(200);
    expect((await fetch(`${server.httpUrl}/healthz`)).status).toBe(200);
    expect((await fetch(`${admin}/api/info`)).status).toBe(404);
  });

  it('can be turned off', async () => {
    const server = await createTestServer({ metricsPath: null });
    expect((await fetch(`${server.httpUrl}/metrics`)).status).toBe(404);
  });
});
