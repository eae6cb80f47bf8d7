#!/usr/bin/env node
// The `bkci` executable: the real process's Io handed to runCli.
import { realSleep, wantsColor } from '../util/io.js';
import { runCli } from './main.js';

// A closed pipe (`bkci ... | head`) is not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw err;
});

const code = await runCli(process.argv.slice(2), {
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
});
process.exitCode = code;
