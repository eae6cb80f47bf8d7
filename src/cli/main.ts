// The CLI entry: builds the commander program, runs it against an Io, maps every error to its
// exit code and one clear message on stderr (stack only with --debug). Returns the exit code.
import { createRequire } from 'node:module';
import { CommanderError } from 'commander';
import { BkciError, SilentFailure } from '../util/errors.js';
import type { Io } from '../util/io.js';
import { createLogger, LOG_LEVELS, type LogLevel } from '../util/log.js';
import { redact } from '../util/redact.js';
import { visible } from '../util/terminal.js';
import type { Command } from 'commander';
import { buildProgram } from './program.js';
import type { StartInfo } from './start.js';

const require = createRequire(import.meta.url);

export interface GlobalFlags {
  logLevel?: string;
  logFormat?: string;
  quiet?: boolean;
  debug?: boolean;
  json?: boolean;
}

// Picks the log level from --log-level/--quiet/--debug (or BKCI_LOG_LEVEL).
export function logLevelFrom(flags: GlobalFlags, env: Io['env']): LogLevel {
  if (flags.debug) return 'debug';
  if (flags.quiet) return 'error';
  const lvl = (flags.logLevel ?? env.BKCI_LOG_LEVEL ?? 'info').toLowerCase();
  return (LOG_LEVELS as readonly string[]).includes(lvl) ? (lvl as LogLevel) : 'info';
}

// Scans argv for the global logging flags before commander runs, so the logger exists early.
function preScan(argv: string[]): GlobalFlags {
  const f: GlobalFlags = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') break;
    if (a === '--debug') f.debug = true;
    else if (a === '-q' || a === '--quiet') f.quiet = true;
    else if (a === '--log-level') f.logLevel = argv[i + 1];
    else if (a.startsWith('--log-level=')) f.logLevel = a.slice('--log-level='.length);
    else if (a === '--log-format') f.logFormat = argv[i + 1];
    else if (a.startsWith('--log-format=')) f.logFormat = a.slice('--log-format='.length);
  }
  return f;
}

// `program` builds the command tree (tests give one with a single command and their own run).
export async function runCli(
  argv: string[],
  io: Omit<Io, 'log'> & { log?: Io['log'] },
  info: StartInfo = {},
  program: (io: Io, argv: string[]) => Command | Promise<Command> = buildProgram,
): Promise<number> {
  const flags = preScan(argv);
  const level = logLevelFrom(flags, io.env);
  // stderr and its TTY-ness are read when the first line is logged (start.ts makes them lazily).
  const log =
    io.log ??
    createLogger(
      () => io.stderr,
      {
        level,
        // An unknown value is refused by commander; until then, text.
        format: flags.logFormat === 'json' ? 'json' : 'text',
        get color() {
          return io.color;
        },
      },
      () => require('pino'),
    );
  if (info.codeCache) log.debug({ codeCache: info.codeCache }, 'code cache');
  if (info.deferredCa) log.debug('started without NODE_EXTRA_CA_CERTS (this command makes no TLS connection); set again for child processes');
  // io's own properties may be getters: extended, not copied.
  const fullIo: Io = Object.create(io, { log: { value: log, enumerable: true } }) as Io;
  try {
    await (await program(fullIo, argv)).parseAsync(argv, { from: 'user' });
    return 0;
  } catch (err) {
    return reportError(err, fullIo, flags.debug === true);
  }
}

function reportError(err: unknown, io: Io, debug: boolean): number {
  if (err instanceof CommanderError) {
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return 0;
    // commander has already written its message (through configureOutput).
    return err.exitCode === 0 ? 0 : 2;
  }
  if (err instanceof SilentFailure) return 1;
  if (err instanceof BkciError) {
    io.stderr.write(redact(`bkci: ${visible(err.message)}\n`));
    if (err.hint) io.stderr.write(redact(`hint: ${visible(err.hint)}\n`));
    if (debug && err.stack) io.stderr.write(redact(err.stack + '\n'));
    return err.exitCode;
  }
  const e = err as Error;
  io.stderr.write(redact(`bkci: internal error: ${visible(e?.message ?? String(err))}\n`));
  if (debug && e?.stack) io.stderr.write(redact(e.stack + '\n'));
  else io.stderr.write('hint: run again with --debug for the stack trace\n');
  return 1;
}
