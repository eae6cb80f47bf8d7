// Runs one command's flag parsing in-process, as gh's runF tests do: the command is attached to the
// real root (global flags, error output, exit codes) with a run function that only records the
// checked input. No domain code runs.
import { PassThrough, Readable } from 'node:stream';
import type { Command } from 'commander';
import type { RunF } from '../../../src/cli/command.js';
import { runCli } from '../../../src/cli/main.js';
import { rootCommand } from '../../../src/cli/program.js';
import type { Io } from '../../../src/util/io.js';

export type Factory<I> = (parent: Command, io: Io, run: RunF<I>) => Command;

export interface Parsed<I> {
  code: number;
  // The checked input the run function received; undefined when parsing failed.
  input?: I;
  stderr: string;
  stdout: string;
}

export async function parse<I>(
  group: string,
  factory: Factory<I>,
  argv: string[],
  opts: { env?: Record<string, string>; cwd?: string } = {},
): Promise<Parsed<I>> {
  let stdout = '';
  let stderr = '';
  const out = new PassThrough().on('data', (c: Buffer) => (stdout += c.toString()));
  const err = new PassThrough().on('data', (c: Buffer) => (stderr += c.toString()));
  let input: I | undefined;
  let runs = 0;
  const io: Omit<Io, 'log'> = {
    stdout: out,
    stderr: err,
    stdin: Readable.from(['']),
    env: opts.env ?? {},
    cwd: opts.cwd ?? '/srv/here',
    stdoutIsTTY: false,
    stderrIsTTY: false,
    color: false,
    now: () => new Date('2026-11-23T12:00:00Z'),
    sleep: async () => undefined,
    uid: 0,
    execPath: '/usr/bin/node',
  };
  const code = await runCli([group, ...argv], io, {}, (fullIo) => {
    const root = rootCommand(fullIo);
    factory(root.command(group), fullIo, async (i) => {
      runs++;
      input = i;
    });
    return root;
  });
  await new Promise((r) => setImmediate(r));
  if (runs > 1) throw new Error('the run function ran more than once');
  return { code, input, stderr, stdout };
}
