// The file operations of `node setup` and `teardown`, under a root, that never go through a
// symbolic link: a link (or a non-directory) anywhere below the root on the way to a path that is
// written, chmod'ed or removed is refused, naming it, before anything is done there. Files are
// written as a temporary file beside the target (O_EXCL|O_NOFOLLOW), fsync'ed, then renamed over
// it; the temporary names are recognisable so a later run removes what a killed run left.
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { lstat, mkdir, open, readdir, rename, rm, rmdir, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { BkciError, InputError } from '../util/errors.js';

export const under = (root: string, p: string) => (root === '/' ? p : join(root, p));

// `.token.env.bkci-0123456789ab.tmp`; older bkci wrote `.token.env.0123456789ab.tmp`.
const TEMP = /^\.(.+)\.(?:bkci-)?[0-9a-f]{12}\.tmp$/;

export class LinkRefused extends InputError {}

// Refuses a symbolic link (or a non-directory where a directory must be) in any part of `path`
// below `root`, the last part included. Parts that do not exist yet are fine.
export async function assertNoLink(root: string, path: string, last: 'file' | 'dir' | 'any' = 'any'): Promise<void> {
  const parts = path.split('/').filter(Boolean);
  let cur = '';
  for (let i = 0; i < parts.length; i++) {
    cur += '/' + parts[i];
    let st;
    try {
      st = await lstat(under(root, cur));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return;
      if (code === 'ENOTDIR')
        throw new InputError(`${under(root, cur)}: a part of the path is not a directory`, 'remove what is in the way, or pick another --root');
      throw fsError(err, under(root, cur));
    }
    const isLast = i === parts.length - 1;
    if (st.isSymbolicLink())
      throw new LinkRefused(
        `${under(root, cur)} is a symbolic link: bkci does not write through links (the target would be ${isLast ? 'changed' : 'written'} wherever it points)`,
        `remove the link (rm ${under(root, cur)}) and run again; to keep builds elsewhere, pass the real directory (e.g. --build-root)`,
      );
    if (!isLast && !st.isDirectory())
      throw new InputError(`${under(root, cur)} is not a directory, but ${path} is to be written under it`, 'remove it and run again');
    if (isLast && last === 'dir' && !st.isDirectory()) throw new InputError(`${under(root, cur)} is not a directory`, 'remove it and run again');
    if (isLast && last === 'file' && !st.isFile()) throw new InputError(`${under(root, cur)} is not a regular file`, 'remove it and run again');
  }
}

// A file system error as a message naming the path (exit 1: the host refused, not the input).
export function fsError(err: unknown, path: string): BkciError {
  if (err instanceof BkciError) return err;
  const e = err as NodeJS.ErrnoException;
  const why: Record<string, string> = {
    EACCES: 'permission denied',
    EPERM: 'operation not permitted',
    EROFS: 'read-only file system',
    ENOSPC: 'no space left on the device',
    ENOTDIR: 'a part of the path is not a directory',
    EISDIR: 'it is a directory',
    ELOOP: 'a symbolic link is in the way',
    ENAMETOOLONG: 'the path is too long',
  };
  return new BkciError(`${path}: ${(e.code && why[e.code]) ?? e.code ?? e.message}`, 'check the path and the permissions of its directories');
}

// Creates `path` and any missing parents, one at a time, each with `mode`; returns the ones made.
export async function mkdirSafe(root: string, path: string, mode: number): Promise<string[]> {
  await assertNoLink(root, path, 'dir');
  const made: string[] = [];
  const parts = path.split('/').filter(Boolean);
  let cur = '';
  for (const part of parts) {
    cur += '/' + part;
    try {
      await mkdir(under(root, cur), { mode });
      made.push(cur);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw fsError(err, under(root, cur));
      const st = await lstat(under(root, cur));
      if (st.isSymbolicLink() || !st.isDirectory()) await assertNoLink(root, cur, 'dir');
    }
  }
  return made;
}

// Sets a directory's mode without following a link (it was checked, and is opened O_NOFOLLOW).
export async function chmodSafe(root: string, path: string, mode: number, owner?: { uid: number; gid: number }): Promise<void> {
  await assertNoLink(root, path);
  let fh;
  try {
    fh = await open(under(root, path), constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOOP') await assertNoLink(root, path);
    throw fsError(err, under(root, path));
  }
  try {
    await fh.chmod(mode);
    if (owner) await fh.chown(owner.uid, owner.gid);
  } catch (err) {
    throw fsError(err, under(root, path));
  } finally {
    await fh.close();
  }
}

// Writes `content` to `path` atomically with exactly `mode`; never through a link.
export async function writeFileSafe(root: string, path: string, content: string, mode: number): Promise<void> {
  await assertNoLink(root, path, 'file');
  const target = under(root, path);
  const tmp = join(dirname(target), `.${basename(target)}.bkci-${randomBytes(6).toString('hex')}.tmp`);
  let fh;
  try {
    fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode);
  } catch (err) {
    throw fsError(err, tmp);
  }
  try {
    await fh.writeFile(content);
    await fh.chmod(mode);
    await fh.sync();
  } catch (err) {
    await fh.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw fsError(err, target);
  }
  await fh.close();
  try {
    await rename(tmp, target);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw fsError(err, target);
  }
}

// Removes a file (a link is removed itself: unlink never follows one); missing is fine.
export async function unlinkSafe(root: string, path: string): Promise<boolean> {
  await assertNoLink(root, dirname(path), 'dir');
  try {
    await unlink(under(root, path));
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return false;
    throw fsError(err, under(root, path));
  }
}

// Removes an empty directory: 'removed', 'kept' (not empty) or 'missing'.
export async function rmdirSafe(root: string, path: string): Promise<'removed' | 'kept' | 'missing'> {
  await assertNoLink(root, path, 'any');
  try {
    await rmdir(under(root, path));
    return 'removed';
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOTEMPTY' || code === 'EEXIST') return 'kept';
    if (code === 'ENOENT') return 'missing';
    if (code === 'ENOTDIR') throw new InputError(`${under(root, path)} is not a directory`, 'remove it by hand');
    throw fsError(err, under(root, path));
  }
}

// Removes a directory tree (links inside are removed, never followed).
export async function rmTreeSafe(root: string, path: string): Promise<void> {
  await assertNoLink(root, path, 'any');
  try {
    await rm(under(root, path), { recursive: true, force: true });
  } catch (err) {
    throw fsError(err, under(root, path));
  }
}

// Removes the temporary files a killed run left in `dir` beside the files named `bases`; returns
// their paths. Other files, even temporary-looking ones, are not bkci's and stay.
export async function removeTemps(root: string, dir: string, bases: Set<string>): Promise<string[]> {
  let names: string[];
  try {
    await assertNoLink(root, dir, 'dir');
    names = await readdir(under(root, dir));
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const n of names) {
    const m = TEMP.exec(n);
    if (!m || !bases.has(m[1]!)) continue;
    const p = dir === '/' ? `/${n}` : `${dir}/${n}`;
    if (await unlinkSafe(root, p).catch(() => false)) out.push(p);
  }
  return out;
}
