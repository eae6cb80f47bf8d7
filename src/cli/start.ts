// Runs the CLI as the real process: process.* gathered into an Io, handed to runCli. Shared by the
// two executables, dist/cli/bin.js (the compiled sources) and the bundle's launcher.
import { realSleep, wantsColor } from '../util/io.js';
import { runCli } from './main.js';

export interface StartInfo {
  // What became of the bundle's code cache (see src/cli/launch.ts); logged at debug level.
  codeCache?: string;
}

export async function start(argv: string[], info: StartInfo = {}): Promise<number> {
  // A closed pipe (`bkci ... | head`) is not an error.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });

  // stdin and stderr are made on first use: Node builds a stream for each (~1.5 ms for a piped
  // stdin, ~1 ms for a stderr that is a file), which a render that logs nothing never needs.
  let stderrTTY: boolean | undefined;
  const stderrIsTTY = () => (stderrTTY ??= process.stderr.isTTY === true);
  return runCli(
    argv,
    {
      stdout: process.stdout,
      get stderr() {
        return process.stderr;
      },
      get stdin() {
        return process.stdin;
      },
      env: process.env,
      cwd: process.cwd(),
      stdoutIsTTY: process.stdout.isTTY === true,
      get stderrIsTTY() {
        return stderrIsTTY();
      },
      get color() {
        return wantsColor(stderrIsTTY(), process.env);
      },
      now: () => new Date(),
      sleep: realSleep,
      uid: typeof process.getuid === 'function' ? process.getuid() : undefined,
      execPath: process.execPath,
      nodeVersion: process.versions.node,
    },
    info,
  );
}
