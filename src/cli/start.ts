// Runs the CLI as the real process: process.* gathered into an Io, handed to runCli. Shared by the
// two executables, dist/cli/bin.js (the compiled sources) and the bundle's launcher.
import { createRequire } from 'node:module';
import { Interrupted } from '../util/errors.js';
import { fdWriter } from '../util/fd-writer.js';
import { realSleep, wantsColor } from '../util/io.js';
import { runCli } from './main.js';

const require = createRequire(import.meta.url);

export interface StartInfo {
  // What became of the bundle's code cache (see src/cli/launch.ts); logged at debug level.
  codeCache?: string;
  // The bin's sh lines started Node without NODE_EXTRA_CA_CERTS (put back for child processes).
  deferredCa?: boolean;
}

export async function start(argv: string[], info: StartInfo = {}): Promise<number> {
  // A closed pipe (`bkci ... | head`) is not an error.
  const closed = () => process.exit(process.exitCode ?? 0);
  let stdout: NodeJS.WriteStream | undefined;
  const stdoutStream = () => {
    if (!stdout) {
      stdout = process.stdout;
      stdout.on('error', (err: NodeJS.ErrnoException) => {
        if (err.code === 'EPIPE') closed();
        throw err;
      });
    }
    return stdout;
  };
  let stdoutTTY: boolean | undefined;

  // stdin and stderr are made on first use: Node builds a stream for each (~1.5 ms for a piped
  // stdin, ~1 ms for a stderr that is a file), which a render that logs nothing never needs.
  let stderrTTY: boolean | undefined;
  const stderrIsTTY = () => (stderrTTY ??= process.stderr.isTTY === true);
  // SIGINT/SIGTERM abort io.signal. The handlers exist only once a command has read the signal
  // (requests, waits, downloads), so the others keep Node's default (end at once). A second
  // signal, or work that does not stop within 3 s, ends the process with 130 (143 for SIGTERM).
  let controller: AbortController | undefined;
  const signal = () => {
    if (!controller) {
      const c = (controller = new AbortController());
      const on = (sig: 'SIGINT' | 'SIGTERM') => {
        const code = sig === 'SIGINT' ? 130 : 143;
        if (c.signal.aborted) process.exit(code);
        c.abort(new Interrupted(sig));
        setTimeout(() => process.exit(code), 3000).unref();
      };
      process.on('SIGINT', () => on('SIGINT'));
      process.on('SIGTERM', () => on('SIGTERM'));
    }
    return controller.signal;
  };
  return runCli(
    argv,
    {
      stdout: fdWriter(1, stdoutStream, closed),
      get stderr() {
        return process.stderr;
      },
      get stdin() {
        return process.stdin;
      },
      env: process.env,
      cwd: process.cwd(),
      get stdoutIsTTY() {
        return (stdoutTTY ??= (require('node:tty') as typeof import('node:tty')).isatty(1));
      },
      get stderrIsTTY() {
        return stderrIsTTY();
      },
      get color() {
        return wantsColor(stderrIsTTY(), process.env);
      },
      now: () => new Date(),
      sleep: realSleep,
      get signal() {
        return signal();
      },
      uid: typeof process.getuid === 'function' ? process.getuid() : undefined,
      execPath: process.execPath,
      nodeVersion: process.versions.node,
    },
    info,
  );
}
