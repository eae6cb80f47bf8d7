// Every command of the tree has a seam test: its factory (the exported `xxxCommand` of
// src/cli/<group>/<file>.ts that registers it) is imported and called by a test in this folder.
// A command added without one fails here, naming it.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { buildProgram } from '../../../src/cli/program.js';
import type { Io } from '../../../src/util/io.js';
import { quietIo } from '../../node/helpers.js';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const HERE = import.meta.dirname;

const io = (): Io => quietIo({});

// "group sub" for every command without subcommands, as the tree defines it.
function leaves(cmd: Command, prefix: string[] = []): string[] {
  if (cmd.commands.length === 0) return [prefix.join(' ')];
  return cmd.commands.flatMap((c) => leaves(c, [...prefix, c.name()]));
}

type Factory = (parent: Command, io: Io, run?: unknown) => unknown;

// Every exported factory of every command module: `group file#export` -> the command it registers.
async function factories(): Promise<Map<string, { group: string; file: string; name: string }>> {
  const out = new Map<string, { group: string; file: string; name: string }>();
  const cli = join(ROOT, 'src', 'cli');
  for (const group of readdirSync(cli, { withFileTypes: true })) {
    if (!group.isDirectory()) continue;
    for (const file of readdirSync(join(cli, group.name))) {
      if (!file.endsWith('.ts') || file === 'index.ts') continue;
      const mod = (await import(join(cli, group.name, file))) as Record<string, unknown>;
      for (const [name, value] of Object.entries(mod)) {
        if (!/Command$/.test(name) || typeof value !== 'function') continue;
        const parent = new Command(group.name);
        (value as Factory)(parent, io(), async () => undefined);
        for (const made of parent.commands) out.set(`${group.name} ${made.name()}`, { group: group.name, file: file.replace(/\.ts$/, ''), name });
      }
    }
  }
  return out;
}

// The seam tests' source, and which factories (module + export name) each imports and uses.
function usedFactories(): Set<string> {
  const used = new Set<string>();
  for (const file of readdirSync(HERE)) {
    if (!file.endsWith('.test.ts') || file === 'coverage.test.ts') continue;
    const text = readFileSync(join(HERE, file), 'utf8');
    const imports = /import \{([^}]*)\} from '\.\.\/\.\.\/\.\.\/src\/cli\/([\w-]+)\/([\w-]+)\.js';/g;
    for (const m of text.matchAll(imports)) {
      for (const part of m[1]!.split(',')) {
        const [exported, local = exported] = part
          .trim()
          .split(/\s+as\s+/)
          .map((s) => s.trim());
        if (!exported) continue;
        // Imported and used beyond the import line (in a parse() call or a table of factories).
        const uses = text.match(new RegExp(`\\b${local}\\b`, 'g'))?.length ?? 0;
        if (uses >= 2) used.add(`${m[2]}/${m[3]}#${exported}`);
      }
    }
  }
  return used;
}

describe('seam tests', () => {
  it('every command of the tree is made by an exported factory that a test in test/cli/commands calls', async () => {
    const program = await buildProgram(io());
    const commands = leaves(program).filter((c) => c.includes(' '));
    expect(commands.length).toBeGreaterThan(20);
    const made = await factories();
    const used = usedFactories();
    const missing: string[] = [];
    for (const command of commands) {
      const f = made.get(command);
      if (!f) missing.push(`${command}: no exported xxxCommand factory in src/cli/${command.split(' ')[0]}/ registers it`);
      else if (!used.has(`${f.group}/${f.file}#${f.name}`)) missing.push(`${command}: ${f.name} (src/cli/${f.group}/${f.file}.ts) has no seam test`);
    }
    expect(missing).toEqual([]);
  });
});
