// Where a command's `-o PATH` output goes. Only a regular file (or a path that does not exist yet)
// is replaced, atomically (temporary file + rename), and only when its content differs: a re-run
// that changes nothing writes nothing. Nothing else is ever replaced or read:
//   -, /dev/stdout, /dev/fd/1, /proc/self/fd/1   the command's standard output
//   a character device (/dev/null, /dev/zero, a terminal), another /dev/fd/N, a FIFO with a reader
//                                                written to directly, as a shell's `>` would
//   a FIFO nobody reads                          refused (writing would wait for a reader forever)
//   a symbolic link                              followed: the file it points to is what is written
//                                                (atomically replaced when regular; the link stays)
//   a dangling symbolic link, a directory, a block device, a socket, a name the system refuses
//   (too long, a part not a directory, no permission)   refused, exit 2, naming the path
import { constants } from 'node:fs';
import { lstat, open, realpath, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { atomicWrite } from './atomic-write.js';
import { InputError } from './errors.js';
import type { Io } from './io.js';

export type OutputOutcome = 'stdout' | 'written' | 'unchanged' | 'streamed';

const STDOUT_ALIASES = new Set(['/dev/stdout', '/dev/fd/1', '/proc/self/fd/1']);

// A path as an error message shows it: a name of thousands of characters is cut.
export function shownPath(path: string): string {
  return path.length > 200 ? `${path.slice(0, 120)}... (a name of ${path.length} characters)` : path;
}

const REASONS: Record<string, string> = {
  ENAMETOOLONG: 'the name is too long',
  ENOTDIR: 'a part of the path is not a directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'the file system is read-only',
  ELOOP: 'too many levels of symbolic links',
  EISDIR: 'it is a directory',
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  ENXIO: 'no process reads it',
};

function refused(path: string, why: string, hint = 'pass a regular file, a new path, or - for standard output'): InputError {
  return new InputError(`-o ${shownPath(path)}: cannot write the output: ${why}`, hint);
}

function fromErrno(path: string, err: unknown): InputError {
  const code = (err as NodeJS.ErrnoException).code;
  return refused(path, (code && REASONS[code]) ?? code ?? String(err));
}

// Writes `content` to `target` (relative to io.cwd) by the rules above; says what it did.
export async function writeOutput(target: string, content: string, io: Pick<Io, 'stdout' | 'cwd'>): Promise<OutputOutcome> {
  if (target === '') throw refused(target, 'the path is empty');
  if (target === '-' || STDOUT_ALIASES.has(target)) {
    io.stdout.write(content);
    return 'stdout';
  }
  const path = resolve(io.cwd, target);
  if (STDOUT_ALIASES.has(path)) {
    io.stdout.write(content);
    return 'stdout';
  }
  try {
    let link;
    try {
      link = await lstat(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      await atomicWrite(path, content, 0o644);
      return 'written';
    }
    let st = link;
    if (link.isSymbolicLink()) {
      try {
        st = await stat(path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT')
          throw refused(target, 'it is a symbolic link to a file that does not exist', 'create the file it points to, or pass another path');
        throw err;
      }
    }
    if (st.isFile()) return await replaceRegular(link.isSymbolicLink() ? await realpath(path) : path, content);
    if (st.isDirectory()) throw refused(target, 'it is a directory', 'name a file inside it');
    if (st.isFIFO()) return await writeFifo(path, content);
    if (st.isCharacterDevice()) return await writeDirect(path, content);
    if (st.isBlockDevice()) throw refused(target, 'it is a block device; bkci does not write to disks');
    throw refused(target, 'it is a socket or another special file');
  } catch (err) {
    if (err instanceof InputError) throw err;
    throw fromErrno(target, err);
  }
}

async function replaceRegular(path: string, content: string): Promise<OutputOutcome> {
  // Opened without blocking and checked again through the descriptor: had the file been swapped
  // for a FIFO or a device since it was looked at, nothing is read.
  let mode = 0o644;
  let fh;
  try {
    fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (fh) {
    try {
      const st = await fh.stat();
      if (!st.isFile()) throw refused(path, 'it stopped being a regular file while bkci looked at it');
      mode = st.mode & 0o7777;
      const want = Buffer.from(content);
      if (st.size === want.length && (await fh.readFile()).equals(want)) return 'unchanged';
    } finally {
      await fh.close();
    }
  }
  // The replacement keeps the permissions the file had.
  await atomicWrite(path, content, mode);
  return 'written';
}

async function writeFifo(path: string, content: string): Promise<OutputOutcome> {
  // Opening a FIFO to write waits until something reads it: checked first without waiting.
  let probe;
  try {
    probe = await open(path, constants.O_WRONLY | constants.O_NONBLOCK);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENXIO') throw refused(path, 'it is a FIFO that no process reads', 'start its reader first');
    throw err;
  }
  try {
    return await writeDirect(path, content);
  } finally {
    await probe.close();
  }
}

// Writes into what is already there (a device, a FIFO, a descriptor): no temporary file, nothing
// created, nothing truncated or read.
async function writeDirect(path: string, content: string): Promise<OutputOutcome> {
  const fh = await open(path, constants.O_WRONLY);
  try {
    await fh.writeFile(content);
  } finally {
    await fh.close();
  }
  return 'streamed';
}
