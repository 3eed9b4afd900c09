import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { SqliteDatabase } from './sqlite-db.js';

/** SQLite's own default (pages): what the main connection goes back to if the worker fails. */
const AUTOCHECKPOINT_PAGES = 1000;

export interface CheckpointerOptions {
  /** How often the worker copies the WAL back into the database file (a PASSIVE checkpoint). */
  intervalMs: number;
  /**
   * WAL length (pages) past which the worker runs a RESTART checkpoint, which makes the next
   * writer start the log over. Under constant writes PASSIVE checkpoints never find the log
   * fully copied at a quiet moment, so without this the WAL would grow without bound.
   */
  restartPages: number;
  /**
   * WAL length (pages) at which the worker counts as behind: a writer that never pauses keeps the
   * RESTART from getting in. The main connection then checkpoints itself (as SQLite does by
   * default) until the worker finds the log short again.
   */
  behindPages: number;
  /** How long the worker leaves checkpointing to the main connection once it is behind. */
  behindPauseMs: number;
  /** How long the RESTART waits for the writer and readers before it gives up for this round. */
  restartWaitMs: number;
  /** How long `close` waits for the worker to close its connection before terminating it. */
  closeWaitMs: number;
  /** The file the worker opens; the main connection's own by default (a fault test names another). */
  file?: string;
}

export const CHECKPOINTER_DEFAULTS: CheckpointerOptions = {
  intervalMs: 100,
  restartPages: 4096,
  behindPages: 16384,
  behindPauseMs: 1000,
  restartWaitMs: 200,
  closeWaitMs: 1000,
};

/** What the worker posts: a failure (it then exits) or, on request, the last checkpoint's figures. */
type WorkerMessage =
  | { kind: 'failed'; message: string }
  | { kind: 'stats'; stats: CheckpointStats }
  | { kind: 'behind'; behind: boolean };

export interface CheckpointStats {
  /** PASSIVE checkpoints run, and RESTART ones. */
  passive: number;
  restart: number;
  /** Frames in the WAL at the last checkpoint. */
  logPages: number;
}

/**
 * The worker's body (CommonJS, evaluated): its own connection to the database file, a PASSIVE
 * checkpoint every `intervalMs`, a RESTART one when the log passed `restartPages`, and word to the
 * main thread when the log is past `behindPages` (and when it is short again). A failure is
 * posted and ends the worker, so that the main connection goes back to checkpointing itself.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.module);
const stats = { passive: 0, restart: 0, logPages: 0 };
let behind = false;
let db;
let timer;
function fail(err) {
  clearTimeout(timer);
  parentPort.postMessage({ kind: 'failed', message: String(err && err.message || err) });
  try { db && db.close(); } catch {}
  parentPort.close();
}
function checkpoint(mode) {
  const row = db.pragma('wal_checkpoint(' + mode + ')')[0];
  if (mode === 'PASSIVE') stats.passive++; else stats.restart++;
  stats.logPages = row.log;
  return row;
}
function tick() {
  try {
    let log = checkpoint('PASSIVE').log;
    if (log > workerData.restartPages) {
      const row = checkpoint('RESTART');
      // Not busy: every frame is copied and the next writer starts the log over.
      log = row.busy === 0 ? 0 : row.log;
    }
    if ((log >= workerData.behindPages) !== behind) {
      behind = !behind;
      parentPort.postMessage({ kind: 'behind', behind });
    }
    // Behind: the main connection's own checkpoints run alone for a while (two checkpointers
    // would keep each other from copying the whole log, and the log from starting over).
    timer = setTimeout(tick, behind ? workerData.behindPauseMs : workerData.intervalMs);
  } catch (err) {
    fail(err);
  }
}
try {
  db = new Database(workerData.file, { fileMustExist: true });
  db.pragma('synchronous = NORMAL');
  db.pragma('busy_timeout = ' + workerData.restartWaitMs);
  timer = setTimeout(tick, workerData.intervalMs);
} catch (err) {
  fail(err);
}
parentPort.on('message', (m) => {
  if (m === 'stats') parentPort.postMessage({ kind: 'stats', stats });
  if (m === 'stop') {
    clearTimeout(timer);
    try { db && db.close(); } catch {}
    parentPort.close();
  }
});
`;

/**
 * WAL checkpoints off the event loop. By default SQLite checkpoints in the connection that
 * commits, every 1000 pages: the committing call then copies the log into the database file and
 * syncs it, a few milliseconds during which the event loop serves nobody. Here the main
 * connection only appends to the WAL (`wal_autocheckpoint = 0`) and a worker thread with its
 * own connection does the copying. A PASSIVE checkpoint never blocks the writer; the RESTART
 * that bounds the log holds it for the few pages the last PASSIVE one left. A writer that never
 * pauses starves the RESTART: past `behindPages` the main connection checkpoints itself until
 * the log is short again. If the worker fails or exits, the main connection checkpoints itself
 * again (logged), so the WAL never grows unchecked. Durability is unchanged: a commit is durable
 * once in the WAL, as before.
 */
export class SqliteCheckpointer {
  private readonly worker: Worker;
  private stopping = false;
  private exited = false;
  private readonly exitedPromise: Promise<void>;
  private statsWaiters: ((s: CheckpointStats) => void)[] = [];
  private readonly closeWaitMs: number;

  constructor(
    private readonly db: SqliteDatabase,
    private readonly logger: Logger,
    options: Partial<CheckpointerOptions> = {},
  ) {
    const o = { ...CHECKPOINTER_DEFAULTS, ...options };
    this.closeWaitMs = o.closeWaitMs;
    const module = createRequire(import.meta.url).resolve('better-sqlite3');
    db.pragma('wal_autocheckpoint = 0');
    this.worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: {
        module,
        file: o.file ?? db.name,
        intervalMs: o.intervalMs,
        restartPages: o.restartPages,
        behindPages: o.behindPages,
        behindPauseMs: o.behindPauseMs,
        restartWaitMs: o.restartWaitMs,
      },
    });
    this.worker.unref();
    this.worker.on('message', (m: WorkerMessage) => this.onMessage(m));
    this.worker.on('error', (err) => this.fallBack(err.message));
    this.exitedPromise = new Promise((resolve) => this.worker.once('exit', () => resolve()));
    this.worker.once('exit', () => {
      this.exited = true;
      if (!this.stopping) this.fallBack('the checkpoint worker exited');
    });
  }

  /** The worker's figures (for tests and diagnostics); undefined once it is gone. */
  async stats(): Promise<CheckpointStats | undefined> {
    if (this.exited) return undefined;
    const reply = new Promise<CheckpointStats | undefined>((resolve) => {
      this.statsWaiters.push(resolve);
      void this.exitedPromise.then(() => resolve(undefined));
    });
    this.worker.postMessage('stats');
    return reply;
  }

  /** Whether the worker is running (false once it failed and the main connection took over). */
  get running(): boolean {
    return !this.exited;
  }

  /** Ends the worker as a crash would (fault tests): the main connection takes over. */
  async terminateWorker(): Promise<void> {
    await this.worker.terminate();
    await this.exitedPromise;
  }

  /** Stops the worker (it closes its connection), terminating it after `closeWaitMs`; never throws. */
  async close(): Promise<void> {
    this.stopping = true;
    if (this.exited) return;
    this.worker.postMessage('stop');
    let timer: NodeJS.Timeout | undefined;
    const waited = await Promise.race([
      this.exitedPromise.then(() => true),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), this.closeWaitMs))),
    ]);
    clearTimeout(timer);
    if (!waited) await this.worker.terminate().catch(() => undefined);
  }

  private onMessage(m: WorkerMessage): void {
    if (m.kind === 'failed') this.fallBack(m.message);
    else if (m.kind === 'stats') for (const w of this.statsWaiters.splice(0)) w(m.stats);
    else if (!this.stopping && this.db.open) this.db.pragma(`wal_autocheckpoint = ${m.behind ? AUTOCHECKPOINT_PAGES : 0}`);
  }

  /** The worker is gone or failing: the main connection checkpoints itself again. */
  private fallBack(reason: string): void {
    if (this.stopping || !this.db.open) return;
    this.stopping = true;
    try {
      this.db.pragma(`wal_autocheckpoint = ${AUTOCHECKPOINT_PAGES}`);
    } finally {
      this.logger.warn({ reason }, 'SQLite checkpoint worker stopped; checkpointing on the main connection again');
      void this.worker.terminate().catch(() => undefined);
    }
  }
}
