import type { Limits } from '../config/options.js';
import type { Node } from '../hub/node.js';
import { TokenBucket } from '../limits/token-bucket.js';
import { CloseCode, type CloseCodeValue } from '../protocol/close-codes.js';
import { isMethod, parseParams, readEnvelope, type Envelope, type Method, type Params } from '../protocol/commands.js';
import { HubError, toWireError } from '../protocol/errors.js';
import type { ScannedPublish } from '../protocol/publish-scan.js';
import { encodeError, encodeReply } from '../protocol/pushes.js';
import type { StreamPosition } from '../stream/types.js';
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
  /**
   * Starts a checked publish at once when it can run without waiting on anything (no hook, no
   * proxy): its broker call is made before this returns, so publishes started one after another
   * reach the broker in that order. Undefined when it must take the queue.
   */
  publishNow(params: Params<'publish'>): Promise<StreamPosition> | undefined;
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
  /** Of the pending commands, the publishes already handed to the broker (publishNow). */
  private startedPublishes = 0;

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
    if (!this.admit(env.id)) return;
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

  /**
   * A publish the fast path read. While every command ahead of it is a publish already handed
   * to the broker, it is started at once (the broker keeps the order they were started in), so
   * a client's publishes in flight are batched by the broker instead of queued here; the
   * commands after it still wait for it. Otherwise it takes the queue like any command.
   */
  publish(command: ScannedPublish): void {
    const { id, params } = command;
    if (!this.admit(id)) return;
    this.pendingCommands += 1;
    if (this.pendingCommands === this.startedPublishes + 1 && this.host.isConnected()) {
      this.node.metrics.command('publish');
      let started: Promise<StreamPosition> | undefined;
      try {
        started = this.host.publishNow(params);
      } catch (err) {
        started = Promise.reject(err);
      }
      if (started) {
        this.startedPublishes += 1;
        const done = started.then(
          (position) => {
            this.violations = 0;
            if (!this.host.session.closed) this.host.session.sendText(encodeReply(id, position));
          },
          (err: unknown) => this.failed(id, 'publish', err),
        );
        const settled = done.finally(() => {
          this.startedPublishes -= 1;
          this.pendingCommands -= 1;
        });
        this.commands = this.commands.then(() => settled);
        return;
      }
      this.commands = this.commands.then(() => this.runQueued(id, 'publish', params));
      return;
    }
    this.commands = this.commands.then(() => this.runQueued(id, 'publish', params, true));
  }

  /** A publish the fast path read but could not start at once, run in its turn. */
  private async runQueued(id: number, method: Method, params: Params<Method>, count = false): Promise<void> {
    try {
      if (count) this.node.metrics.command(method);
      if (!this.host.isConnected()) throw new HubError(110);
      await this.execute(id, method, params);
    } catch (err) {
      this.failed(id, method, err);
    } finally {
      this.pendingCommands -= 1;
    }
  }

  /** Within the command rate and the pending bound; else refused with 111 (false). */
  private admit(id: number): boolean {
    if (this.bucket.take() && this.pendingCommands < MAX_PENDING_COMMANDS) return true;
    this.refuse(CloseCode.RATE_LIMITED, id, new HubError(111));
    return false;
  }

  /** Runs a checked command and sends its reply. */
  private async execute(id: number, method: Method, params: Params<Method>): Promise<void> {
    const reply = await this.host.run(method, params, id);
    this.violations = 0;
    if (reply !== undefined && !this.host.session.closed) this.host.session.sendText(reply);
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
    try {
      if (!isMethod(env.method)) throw new HubError(104, `method not found: ${env.method}`);
      this.node.metrics.command(env.method);
      const parsed = parseParams(env.method, env.params);
      if (!parsed.ok) throw new HubError(107, parsed.error);
      if (env.method !== 'connect' && !this.host.isConnected()) throw new HubError(110);
      await this.execute(id, env.method, parsed.params);
    } catch (err) {
      this.failed(id, env.method, err);
    }
  }

  /** Answers a command that failed. */
  private failed(id: number, method: string, err: unknown): void {
    const session = this.host.session;
    if (session.closed) return;
    if (err instanceof HubError && (err.code === 107 || err.code === 104)) this.violations += 1;
    const wire = toWireError(err);
    // Anything but a HubError is a bug or a backend fault: the client gets 100, the log the details.
    if (!(err instanceof HubError)) this.node.commandFailed(method, session.id, err);
    this.node.metrics.error(wire.code);
    session.sendText(encodeError(id, wire));
    if (this.violations >= this.limits.maxViolations) this.host.closeAfterReply(CloseCode.PROTOCOL_ERROR);
  }
}
