// An in-memory Io for running the CLI in-process: captured stdout/stderr, given env and stdin.
import { PassThrough, Readable } from 'node:stream';
import { runCli } from '../../src/cli/main.js';
import type { Io } from '../../src/util/io.js';

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
  // Every io.sleep() the command made, in milliseconds (the clock is fake: sleeps return at once).
  sleeps: number[];
}

export async function runBkci(
  argv: string[],
  opts: { env?: Record<string, string>; stdin?: string; cwd?: string; tty?: boolean; uid?: number } = {},
): Promise<CliRun> {
  const out = new PassThrough();
  const err = new PassThrough();
  let stdout = '';
  let stderr = '';
  out.on('data', (c: Buffer) => (stdout += c.toString()));
  err.on('data', (c: Buffer) => (stderr += c.toString()));
  let now = Date.parse('2026-11-23T12:00:00Z');
  const sleeps: number[] = [];
  const io: Omit<Io, 'log'> = {
    stdout: out,
    stderr: err,
    stdin: Readable.from([opts.stdin ?? '']),
    env: opts.env ?? {},
    cwd: opts.cwd ?? process.cwd(),
    stdoutIsTTY: opts.tty ?? false,
    stderrIsTTY: opts.tty ?? false,
    color: false,
    now: () => new Date(now),
    uid: opts.uid,
    execPath: process.execPath,
    nodeVersion: process.versions.node,
    sleep: async (ms: number) => {
      sleeps.push(ms);
      now += ms;
    },
  };
  const code = await runCli(argv, io);
  await new Promise((r) => setImmediate(r));
  return { code, stdout, stderr, sleeps };
}
