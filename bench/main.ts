/**
 * `npm run bench [-- --quick]`: Switchboard against Socket.IO and plain ws, side by side.
 * Progress goes to stderr; stdout gets the table, the notes, the files written, and as its
 * last line one JSON object with the headline ratios.
 */
import { relative } from 'node:path';
import { parseArgs, USAGE } from './args.js';
import { installExitHandlers, killAllChildren, REPO_ROOT } from './proc/child.js';
import { runBench } from './run.js';

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (args.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  installExitHandlers();
  const out = await runBench({
    mode: args.mode,
    scenarios: args.scenarios,
    servers: args.servers,
    profile: args.profile,
    ...(args.outDir ? { outDir: args.outDir } : {}),
  });
  const lines = [
    '',
    `Switchboard benchmark — ${out.results.meta.mode} run, ${out.results.meta.date}, ${out.results.meta.durationS} s`,
    '',
    out.table,
    '',
    ...(out.results.notes.length ? ['Notes:', ...out.results.notes.map((n) => `  - ${n}`), ''] : []),
    ...(out.results.pace?.length
      ? ['Pace (bytes and client CPU per delivery; which side was busy):', ...out.results.pace.map((n) => `  - ${n}`), '']
      : []),
    `Wrote ${relative(REPO_ROOT, out.files.json)} and ${relative(REPO_ROOT, out.files.svg)}`,
    JSON.stringify(out.summary),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

main().then(
  () => {
    killAllChildren();
    process.exit(0);
  },
  (err: unknown) => {
    process.stderr.write(`\nbench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    killAllChildren();
    process.exit(1);
  },
);
