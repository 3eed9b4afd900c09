import type { Limits } from '../config/options.js';
import type { Node } from '../hub/node.js';
import { TokenBucket } from '../limits/token-bucket.js';
import { CloseCode, type CloseCodeValue } from '../protocol/close-codes.js';
import { isMethod, parseParams, readEnvelope, type Envelope, type Method, type Params } from '../protocol/commands.js';
import { HubError, toWireError } from '../protocol/errors.js';
import { encodeError } from '../protocol/pushes.js';
import type { CommandSession } from './command-table.js';
import type { InboundSink } from './inbound-frames.js';

/** Commands accepted but not yet answered; more are refused with 111. */
const MAX_PENDING_COMMANDS = 256;

/** What the intake needs of its connection besides the session itself. */
export interface IntakeHost {
  readonly session: CommandSession;
  isConnected(): boolean;
  /** The client answered a ping. */
  pong(): void;
  /** Runs one checked command; returns the encoded reply, if it has one. */
  run(method: Method, params: Params<Method>, id: number): Promise<string | undefined>;
  closeAfterReply(code: CloseCodeValue): void;
}

/**
 * The commands of one connection, from decoded to answered: envelopes checked, command and
 * client-event rates applied, commands run one after another in the order sent, errors
 * answered, and too many violations in a row turned into a close.
 */
export class CommandIntake implements InboundSink {
  private readonly bucket: TokenBucket;
  private readonly eventBucket: TokenBucket;
  private violations = 0;
  private commands: Promise<void> = Promise.resolve();
  private pendingCommands = 0;

  constructor(
    private readonly node: Node,
    private readonly limits: Limits,
    private readonly host: IntakeHost,
    now: number,
  ) {
    this.bucket = new TokenBucket(limits.commandRate.perSecond, limits.commandRate.burst, now);
    this.eventBucket = new TokenBucket(limits.clientEventRate.perSecond, limits.clientEventRate.burst, now);
  }

  get closed(): boolean {
    return this.host.session.closed;
  }

  /** One decoded command (whatever the codec): checked, then queued behind the ones before it. */
  command(parsed: unknown): void {
    const env = readEnvelope(parsed);
    if (typeof env === 'string') {
      const id = typeof (parsed as { id?: unknown })?.id === 'number' ? (parsed as { id: number }).id : undefined;
      this.refuse(CloseCode.PROTOCOL_ERROR, Number.isSafeInteger(id) && id! > 0 ? id : undefined, new HubError(107, env));
      return;
    }
    if (env.method === 'pong' && env.id === undefined) {
      this.host.pong();
      return;
    }
    if (env.method === 'emit' && env.id === undefined) {
      // A client event: no reply, its own rate (past it, dropped), in order with the commands.
      if (!this.eventBucket.take()) {
        this.node.metrics.clientEventDropped();
        return;
      }
      this.commands = this.commands.then(() => this.emitEvent(env.params));
      return;
    }
    if (env.id === undefined) {
      this.refuse(CloseCode.PROTOCOL_ERROR, undefined, new HubError(107, 'id: required for commands'));
      return;
    }
    if (!this.bucket.take() || this.pendingCommands >= MAX_PENDING_COMMANDS) {
      this.refuse(CloseCode.RATE_LIMITED, env.id, new HubError(111));
      return;
    }
    // Commands run one after another, in the order sent: a subscribe batched behind its
    // connect sees the connection connected, and a client's publishes keep their order.
    this.pendingCommands += 1;
    const command = env as Envelope & { id: number };
    this.commands = this.commands.then(async () => {
      try {
        await this.dispatch(command);
      } finally {
        this.pendingCommands -= 1;
      }
    });
  }

  /** Answers a rejected command; too many in a row close the connection. */
  refuse(code: CloseCodeValue, id: number | undefined, err: HubError): void {
    this.host.session.sendText(encodeError(id, err.toWire()));
    this.violations += 1;
    // The error replies go out first: a breach gets its errors, then the close.
    if (this.violations >= this.limits.maxViolations) this.host.closeAfterReply(code);
  }

  /** Sends one client event; a refused one is answered by an id-less error. */
  private async emitEvent(params: unknown): Promise<void> {
    const session = this.host.session;
    if (!this.host.isConnected()) {
      // Nothing is sent, but the client is told why (an id-less error, as for other refused events).
      session.sendText(encodeError(undefined, new HubError(110, 'emit: connect first').toWire()));
      return;
    }
    const parsed = parseParams('emit', params);
    if (!parsed.ok) {
      this.refuse(CloseCode.PROTOCOL_ERROR, undefined, new HubError(107, `emit: ${parsed.error}`));
      return;
    }
    try {
      await this.node.commands.emit(session, parsed.params);
    } catch (err) {
      if (session.closed) return;
      if (!(err instanceof HubError)) this.node.commandFailed('emit', session.id, err);
      session.sendText(encodeError(undefined, toWireError(err)));
    }
  }

  private async dispatch(env: Envelope & { id: number }): Promise<void> {
    const { id } = env;
    const session = this.host.session;
    try {
      if (!isMethod(env.method)) throw new HubError(104, `method not found: ${env.method}`);
      this.node.metrics.command(env.method);
      const parsed = parseParams(env.method, env.params);
      if (!parsed.ok) throw new HubError(107, parsed.error);
      if (env.method !== 'connect' && !this.host.isConnected()) throw new HubError(110);
      const reply = await this.host.run(env.method, parsed.params, id);
      this.violations = 0;
      if (reply !== undefined && !session.closed) session.sendText(reply);
    } catch (err) {
      if (session.closed) return;
      if (err instanceof HubError && (err.code === 107 || err.code === 104)) this.violations += 1;
      const wire = toWireError(err);
      // Anything but a HubError is a bug or a backend fault: the client gets 100, the log the details.
      if (!(err instanceof HubError)) this.node.commandFailed(env.method, session.id, err);
      this.node.metrics.error(wire.code);
      session.sendText(encodeError(id, wire));
      if (this.violations >= this.limits.maxViolations) this.host.closeAfterReply(CloseCode.PROTOCOL_ERROR);
    }
  }
}
