import { ALL_SCENARIOS, ALL_SERVERS, QUICK_SKIPS, type Mode, type ScenarioName } from './config.js';
import type { ServerKind } from './servers/types.js';

export interface Args {
  mode: Mode;
  scenarios: ScenarioName[];
  servers: ServerKind[];
  outDir?: string;
  profile: boolean;
  help: boolean;
}

export const USAGE = `Usage: npm run bench -- [--quick]
                        [--only=fanout,many,idle,connect,cross,c18k,cluster,workers,outbox,collab,proxy,codec,game]
                        [--servers=switchboard,switchboard-memory,switchboard-sqlite,switchboard-redis,socketio,ws,ws-coalesce]
                        [--out=DIR] [--profile]
  --quick     the same sizes with short windows
  --only      run only these scenarios (a quick run leaves out c18k unless named here)
  --servers   run only these servers (ratios need switchboard and the peer)
  --out       where the JSON and SVG go (default bench/results)
  --profile   run the servers with --cpu-prof (profiles in <out>/profiles)`;

function list<T extends string>(value: string, allowed: readonly T[], flag: string): T[] {
  const items = value.split(',').filter(Boolean);
  for (const i of items) if (!allowed.includes(i as T)) throw new Error(`${flag}: unknown value "${i}" (one of ${allowed.join(', ')})`);
  return items as T[];
}

/** Parses the command line; throws on anything it does not know. */
export function parseArgs(argv: readonly string[]): Args {
  const args: Args = { mode: 'full', scenarios: [...ALL_SCENARIOS], servers: [...ALL_SERVERS], profile: false, help: false };
  let only = false;
  for (const a of argv) {
    const [flag, value = ''] = a.split(/=(.*)/s, 2) as [string, string?];
    switch (flag) {
      case '--quick':
        args.mode = 'quick';
        break;
      case '--full':
        args.mode = 'full';
        break;
      case '--tiny':
        args.mode = 'tiny';
        break;
      case '--only':
        args.scenarios = list(value, ALL_SCENARIOS, '--only');
        only = true;
        break;
      case '--servers':
        args.servers = list(value, ALL_SERVERS, '--servers');
        break;
      case '--out':
        if (!value) throw new Error('--out needs a directory');
        args.outDir = value;
        break;
      case '--profile':
        args.profile = true;
        break;
      case '--help':
      case '-h':
        args.help = true;
        break;
      default:
        throw new Error(`unknown argument: ${a}\n${USAGE}`);
    }
  }
  if (args.mode === 'quick' && !only) args.scenarios = args.scenarios.filter((s) => !QUICK_SKIPS.includes(s));
  return args;
}
