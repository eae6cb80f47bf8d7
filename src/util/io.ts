// The one object that carries the process's streams, environment and clock into the code below
// src/cli: nothing else touches `process.*`, so tests run commands in-process with their own Io.
import type { Readable, Writable } from 'node:stream';
import type { Out } from './fd-writer.js';
import type { Logger } from './log.js';

export interface Io {
  // Only ever written to: the real process writes fd 1 directly (fd-writer.ts).
  stdout: Out;
  stderr: Writable;
  stdin: Readable;
  env: Readonly<Record<string, string | undefined>>;
  cwd: string;
  stdoutIsTTY: boolean;
  stderrIsTTY: boolean;
  // Colour on stderr/stdout: a TTY, NO_COLOR unset, TERM not dumb.
  color: boolean;
  now(): Date;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
  // Aborted on SIGINT/SIGTERM with an Interrupted error as its reason (src/cli/start.ts installs
  // the handlers the first time this is read, so commands that never look keep Node's default).
  // Long work (requests, waits, downloads) stops at once and cleans up; absent in some tests.
  readonly signal?: AbortSignal;
  log: Logger;
  // The process's user id (undefined where there is none) and the Node.js binary running bkci.
  uid?: number;
  execPath?: string;
  nodeVersion?: string;
}

export function wantsColor(isTTY: boolean, env: Io['env']): boolean {
  return isTTY && env.NO_COLOR === undefined && env.TERM !== 'dumb';
}

export function realSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

// Reads a command's input file, `-` meaning stdin; a missing or unreadable file is an InputError
// naming the path.
export async function readInput(path: string, io: Pick<Io, 'stdin' | 'cwd'>, what: string): Promise<string> {
  return (await readInputBytes(path, io, what)).toString('utf8');
}

// The same, as bytes (for callers that must refuse invalid UTF-8 rather than read U+FFFD).
export async function readInputBytes(path: string, io: Pick<Io, 'stdin' | 'cwd'>, what: string): Promise<Buffer> {
  if (path === '-') return readStreamBytes(io.stdin);
  const [{ readFileSync }, { resolve }, { InputError }] = await Promise.all([import('node:fs'), import('node:path'), import('./errors.js')]);
  try {
    // A synchronous read: a CLI has nothing else to do meanwhile, and it skips the thread pool.
    return readFileSync(resolve(io.cwd, path));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why: Record<string, string> = {
      ENOENT: 'no such file',
      EISDIR: 'it is a directory',
      EACCES: 'permission denied',
      ENOTDIR: 'a part of the path is not a directory',
    };
    throw new InputError(`${path}: cannot read the ${what}: ${(code && why[code]) ?? code ?? String(err)}`, `check the path (relative to ${io.cwd})`);
  }
}

// Reads a whole stream (stdin for `-`).
export async function readStream(s: Readable): Promise<string> {
  return (await readStreamBytes(s)).toString('utf8');
}

export async function readStreamBytes(s: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(typeof c === 'string' ? Buffer.from(c) : (c as Buffer));
  return Buffer.concat(chunks);
}
