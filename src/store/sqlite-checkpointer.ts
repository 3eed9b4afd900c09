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
   * The main connection's own automatic checkpoint (pages), the bound on the WAL: a PASSIVE
   * checkpoint never lets the log start over while writes go on (the writer restarts it only
   * when every frame is copied at the start of a write), so past this length the main
   * connection checkpoints after its commit, copying only what the worker has not copied yet;
   * the next write then starts the log over.
   */
  boundPages: number;
  /** How long `close` waits for the worker to close its connection before terminating it. */
  closeWaitMs: number;
  /** The file the worker opens; the main connection's own by default (a fault test names another). */
  file?: string;
}

export const CHECKPOINTER_DEFAULTS: CheckpointerOptions = {
  intervalMs: 100,
  boundPages: 4096,
  closeWaitMs: 1000,
};

/** What the worker posts: a failure (it then exits) or, on request, its running figures. */
type WorkerMessage = { kind: 'failed'; message: string } | { kind: 'stats'; stats: CheckpointStats };

export interface CheckpointStats {
  /**
   * PASSIVE checkpoints run; summed over them, the frames each found in the log and the frames
   * of those it reported copied back (diagnostics: a frame counts again in every checkpoint that
   * finds it still in the log).
   */
  passive: number;
  logPages: number;
  copiedPages: number;
}

/**
 * The worker's body (CommonJS, evaluated): its own connection to the database file and a PASSIVE
 * checkpoint every `intervalMs`. A failure is posted and ends the worker, so that the main
 * connection goes back to checkpointing itself.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.module);
const stats = { passive: 0, logPages: 0, copiedPages: 0 };
let db;
let timer;
function fail(err) {
  clearTimeout(timer);
  parentPort.postMessage({ kind: 'failed', message: String(err && err.message || err) });
  try { db && db.close(); } catch {}
  parentPort.close();
}
function tick() {
  try {
    const row = db.pragma('wal_checkpoint(PASSIVE)')[0];
    stats.passive++;
    stats.logPages += Math.max(0, row.log);
    stats.copiedPages += Math.max(0, row.checkpointed);
    timer = setTimeout(tick, workerData.intervalMs);
  } catch (err) {
    fail(err);
  }
}
try {
  db = new Database(workerData.file, { fileMustExist: true });
  db.pragma('synchronous = NORMAL');
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
 * WAL checkpoints mostly off the event loop. By default SQLite checkpoints in the connection that
 * commits, every 1000 pages: the committing call then copies the log into the database file and
 * syncs it, milliseconds during which the event loop serves nobody. Here a worker thread with its
 * own connection copies the log every `intervalMs` (PASSIVE: it never blocks the writer, nor
 * waits for it), and the main connection's automatic checkpoint is raised to `boundPages`: it
 * then runs once per cycle of the log, copies only the pages the worker has not copied yet, and
 * lets the next write start the log over — so the WAL stays bounded however hard the writes go.
 * (A RESTART checkpoint from the worker would hold the write lock while it copies and syncs:
 * the main connection's writes then sleep in SQLite's busy handler, on the event loop — tried,
 * and it halved a busy server's throughput.) If the worker fails or exits, the main connection
 * checkpoints every 1000 pages again (logged). Durability is unchanged: a commit is durable once
 * in the WAL, as before.
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
    db.pragma(`wal_autocheckpoint = ${o.boundPages}`);
    this.worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: {
        module,
        file: o.file ?? db.name,
        intervalMs: o.intervalMs,
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
    else for (const w of this.statsWaiters.splice(0)) w(m.stats);
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
