import { DIALECTS, type DialectName, type DialectSession } from './dialects.js';
import { RawWs, type FrameSink } from './raw-ws.js';

/** Where a load-generator connection goes and which protocol it speaks. */
export interface Target {
  host: string;
  port: number;
  dialect: DialectName;
}

/**
 * One load-generator connection: opens, authenticates and subscribes (setup frames decoded),
 * then hands every further frame, undecoded, to `onData`.
 */
export class BenchClient implements FrameSink {
  readonly ws = new RawWs(this);
  private readonly session: DialectSession;
  private ready = false;
  private settle: ((err?: Error) => void) | undefined;

  constructor(
    private readonly target: Target,
    private readonly token: string,
    channels: readonly string[],
    private readonly onData: (frame: Buffer) => void,
    private readonly onClosed: () => void,
  ) {
    this.session = DIALECTS[target.dialect].session(token, channels);
  }

  /** Resolves once connected, authenticated and subscribed. */
  async open(timeoutMs: number, localAddress?: string): Promise<void> {
    const started = Date.now();
    const dialect = DIALECTS[this.target.dialect];
    const path = dialect.path(this.token);
    await this.ws.connect(
      {
        host: this.target.host,
        port: this.target.port,
        path,
        ...(dialect.subprotocol ? { protocol: dialect.subprotocol } : {}),
        ...(localAddress ? { localAddress } : {}),
      },
      timeoutMs,
    );
    const readyPromise = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => done(new Error('setup timeout')), Math.max(1, timeoutMs - (Date.now() - started)));
      const done = (err?: Error) => {
        clearTimeout(timer);
        this.settle = undefined;
        if (err) {
          this.ws.destroy();
          reject(err);
        } else resolve();
      };
      this.settle = done;
    });
    if (this.session.start(this.ws)) this.markReady();
    return readyPromise;
  }

  destroy(): void {
    this.ws.destroy();
  }

  private markReady(): void {
    this.ready = true;
    this.settle?.();
  }

  onFrame(frame: Buffer): void {
    if (this.ready) {
      this.session.keepAlive(frame, this.ws);
      this.onData(frame);
      return;
    }
    try {
      if (this.session.onSetupFrame(frame.toString('utf8'), this.ws)) this.markReady();
    } catch (err) {
      this.settle?.(err instanceof Error ? err : new Error(String(err)));
    }
  }

  onClose(): void {
    if (!this.ready) this.settle?.(new Error('closed during setup'));
    else this.onClosed();
  }
}
