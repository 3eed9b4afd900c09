import type { ProxyKind } from './proxy-client.js';

/**
 * How a proxy request ended: `ok`; `timeout` (no answer within the endpoint's timeoutMs);
 * `unavailable` (a network failure); `http_5xx`; `refused` (HTTP 4xx, or an `error` answer);
 * `invalid` (an answer that is neither a result nor an error, or a result of the wrong shape);
 * `limited` (refused here: maxInFlight or maxInFlightPerConnection was reached).
 */
export type ProxyOutcome = 'ok' | 'timeout' | 'unavailable' | 'http_5xx' | 'refused' | 'invalid' | 'limited';

export const PROXY_OUTCOMES: readonly ProxyOutcome[] = ['ok', 'timeout', 'unavailable', 'http_5xx', 'refused', 'invalid', 'limited'];

export interface ProxyStatus {
  /** Requests waiting for the backend now. */
  inFlight: number;
  /** Requests since start, and those that did not end `ok`, by outcome. */
  calls: number;
  errors: Record<Exclude<ProxyOutcome, 'ok'>, number>;
  /** The same per proxy kind (only kinds called at least once). */
  byKind: Partial<Record<ProxyKind, { calls: number; errors: number }>>;
}

/** Counts of this node's proxy requests by kind and outcome (the admin UI's, and a listener for metrics). */
export class ProxyStats {
  private readonly counts = new Map<ProxyKind, Map<ProxyOutcome, number>>();
  private listener: ((kind: ProxyKind, outcome: ProxyOutcome) => void) | undefined;

  constructor(private readonly inFlight: () => number) {}

  /** Calls `listener` once per finished request (one listener; a later call replaces it). */
  observe(listener: (kind: ProxyKind, outcome: ProxyOutcome) => void): void {
    this.listener = listener;
  }

  record(kind: ProxyKind, outcome: ProxyOutcome): void {
    let byOutcome = this.counts.get(kind);
    if (!byOutcome) this.counts.set(kind, (byOutcome = new Map()));
    byOutcome.set(outcome, (byOutcome.get(outcome) ?? 0) + 1);
    this.listener?.(kind, outcome);
  }

  status(): ProxyStatus {
    const errors = Object.fromEntries(PROXY_OUTCOMES.filter((o) => o !== 'ok').map((o) => [o, 0])) as ProxyStatus['errors'];
    const byKind: ProxyStatus['byKind'] = {};
    let calls = 0;
    for (const [kind, byOutcome] of this.counts) {
      const entry = { calls: 0, errors: 0 };
      for (const [outcome, n] of byOutcome) {
        entry.calls += n;
        if (outcome !== 'ok') {
          entry.errors += n;
          errors[outcome] += n;
        }
      }
      calls += entry.calls;
      byKind[kind] = entry;
    }
    return { inFlight: this.inFlight(), calls, errors, byKind };
  }
}
