import type { Broker } from '../broker/broker.js';
import type { ResolvedChannel } from '../channels/channels.js';
import type { Limits } from '../config/options.js';
import type { Metrics } from '../metrics/metrics.js';
import { HubError } from '../protocol/errors.js';
import { RawJson } from '../protocol/publish-scan.js';
import type { ClientInfo, StreamPosition } from '../stream/types.js';

/** Encodes and stores one publication through the Broker; every publish path ends here. */
export class Publisher {
  constructor(
    private readonly broker: Broker,
    private readonly limits: Limits,
    private readonly metrics: Metrics,
  ) {}

  /**
   * JSON text of `data` (a RawJson is already its text: the publish fast path); 107 when it is
   * not JSON or larger than limits.maxMessageBytes.
   */
  encode(data: unknown): string {
    let encoded: string | undefined;
    if (data instanceof RawJson) encoded = data.text;
    else {
      try {
        encoded = JSON.stringify(data);
      } catch {
        throw new HubError(107, 'data: must be JSON (no cycles, no BigInt, nested at most limits.maxJsonDepth)');
      }
      if (encoded === undefined) throw new HubError(107, 'data: must be JSON');
    }
    if (Buffer.byteLength(encoded) > this.limits.maxMessageBytes) {
      throw new HubError(107, `data: larger than limits.maxMessageBytes (${this.limits.maxMessageBytes} bytes)`);
    }
    return encoded;
  }

  /**
   * Stores and sends one publication; the broker call is made before the first await. `stored`
   * runs once it is stored, unless its idempotency key returned an earlier one (nothing new was
   * published: no second webhook event).
   */
  async publish(
    ch: ResolvedChannel,
    encoded: string,
    idempotencyKey: string | undefined,
    info?: ClientInfo,
    stored?: (at: StreamPosition) => Promise<void>,
  ): Promise<StreamPosition> {
    const result = await this.broker.publish(ch.name, encoded, {
      history: ch.history,
      ...(info ? { info } : {}),
      ...(idempotencyKey !== undefined ? { idempotencyKey, idempotencyTtlMs: this.limits.idempotencyWindowMs } : {}),
    });
    const at = { offset: result.offset, epoch: result.epoch };
    if (result.duplicate) return at;
    this.metrics.published(info ? 'client' : 'server');
    if (stored) await stored(at);
    return at;
  }
}
