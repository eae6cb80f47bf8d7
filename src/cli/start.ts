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

  return runCli(
    argv,
    {
      stdout: process.stdout,
      stderr: process.stderr,
      stdin: process.stdin,
      env: process.env,
      cwd: process.cwd(),
      stdoutIsTTY: process.stdout.isTTY === true,
      stderrIsTTY: process.stderr.isTTY === true,
      color: wantsColor(process.stderr.isTTY === true, process.env),
      now: () => new Date(),
      sleep: realSleep,
      uid: typeof process.getuid === 'function' ? process.getuid() : undefined,
      execPath: process.execPath,
      nodeVersion: process.versions.node,
    },
    info,
  );
}
