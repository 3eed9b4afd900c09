import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** Clock ticks per second of /proc/PID/stat times (USER_HZ; 100 on Linux). */
const CLK_TCK = 100;

/**
 * CPU seconds (user + system) a process has used so far, read from /proc/PID/stat, so that
 * every process is measured the same way from outside. NaN when it cannot be read.
 */
export function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // Fields after the command name (which may hold spaces) start at field 3 (state).
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(rest[11]);
    const stime = Number(rest[12]);
    return (utime + stime) / CLK_TCK;
  } catch {
    return Number.NaN;
  }
}

/** Resident set size in bytes, from /proc/PID/statm. NaN when it cannot be read. */
export function rssBytes(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  try {
    const pages = Number(readFileSync(`/proc/${pid}/statm`, 'latin1').split(' ')[1]);
    return pages * 4096;
  } catch {
    return Number.NaN;
  }
}

/** Machine-wide CPU ticks from the first line of /proc/stat. */
export interface MachineTicks {
  busy: number;
  softirq: number;
  total: number;
}

export function machineTicks(): MachineTicks {
  try {
    const line = readFileSync('/proc/stat', 'latin1').split('\n', 1)[0]!;
    const [user, nice, system, idle, iowait, irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number) as number[];
    const busy = user! + nice! + system! + irq! + softirq! + steal!;
    return { busy, softirq: softirq!, total: busy + idle! + iowait! };
  } catch {
    return { busy: Number.NaN, softirq: Number.NaN, total: Number.NaN };
  }
}

let redisPid: number | null | undefined;

/**
 * The process id of the Redis on 127.0.0.1:6379 (from INFO server), undefined when none answers.
 * Its CPU is part of the setup of every scenario that runs on it, not another process's load.
 */
export function sharedRedisPid(): number | undefined {
  if (redisPid === undefined) {
    try {
      const info = execFileSync('redis-cli', ['-h', '127.0.0.1', '-p', '6379', 'info', 'server'], { encoding: 'utf8', timeout: 2_000 });
      const pid = Number(/process_id:(\d+)/.exec(info)?.[1]);
      redisPid = Number.isInteger(pid) && pid > 0 ? pid : null;
    } catch {
      redisPid = null;
    }
  }
  return redisPid ?? undefined;
}
