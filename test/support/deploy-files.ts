/**
 * Readers for the files in deploy/ (test/deploy-artifacts.test.ts): a Dockerfile's instructions
 * by stage, a systemd unit's keys, a `KEY=value` environment file.
 */

export interface DockerInstruction {
  op: string;
  args: string;
}

export interface DockerStage {
  from: string;
  name: string | undefined;
  steps: DockerInstruction[];
}

/** Splits a Dockerfile into stages (comments dropped, `\` continuations joined). */
export function parseDockerfile(text: string): DockerStage[] {
  const logical: string[] = [];
  let current = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (current === '' && (line === '' || line.startsWith('#'))) continue;
    if (line.endsWith('\\')) {
      current += `${line.slice(0, -1)} `;
      continue;
    }
    logical.push(current + line);
    current = '';
  }
  const stages: DockerStage[] = [];
  for (const line of logical) {
    const [op, ...rest] = line.split(/\s+/);
    const args = rest.join(' ');
    if (op!.toUpperCase() === 'FROM') {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args);
      stages.push({ from: m![1]!, name: m![2], steps: [] });
    } else {
      if (stages.length === 0) throw new Error(`${op} before FROM`);
      stages.at(-1)!.steps.push({ op: op!.toUpperCase(), args });
    }
  }
  return stages;
}

/** The JSON array of an exec-form instruction (`CMD ["a", "b"]`), or undefined for shell form. */
export function execForm(args: string): string[] | undefined {
  if (!args.startsWith('[')) return undefined;
  return JSON.parse(args) as string[];
}

/** `ENV A=1` / `ENV A 1` → [A, 1]. */
export function envPair(args: string): [string, string] {
  const eq = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(args);
  if (eq) return [eq[1]!, eq[2]!];
  const [k, ...v] = args.split(/\s+/);
  return [k!, v.join(' ')];
}

/** A systemd unit: section → key → values (a key may repeat, e.g. Environment). */
export function parseUnit(text: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let section: Map<string, string[]> | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const head = /^\[(.+)\]$/.exec(line);
    if (head) {
      section = new Map();
      sections.set(head[1]!, section);
      continue;
    }
    const eq = line.indexOf('=');
    if (!section || eq < 0) throw new Error(`bad unit line: ${line}`);
    const key = line.slice(0, eq).trim();
    section.set(key, [...(section.get(key) ?? []), line.slice(eq + 1).trim()]);
  }
  return sections;
}

/** systemd's time spans as used here: `40`, `40s`, `1min`. */
export function unitSeconds(value: string): number {
  const m = /^(\d+)\s*(s|sec|min)?$/.exec(value);
  if (!m) throw new Error(`unsupported time span ${value}`);
  return Number(m[1]) * (m[2] === 'min' ? 60 : 1);
}
