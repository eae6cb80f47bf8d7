// `bkci self install`: copy the running single executable to PREFIX/bin/bkci, so that systemd
// units (the node health check) and operators name one stable, root-owned path. The plan is pure;
// applying it writes at most one file, atomically, and nothing when the installed copy is the same.
import { createHash } from 'node:crypto';
import { constants as fsConstants, createReadStream } from 'node:fs';
import { chmod, chown, copyFile, lstat, open, rename, rm, stat } from 'node:fs/promises';
import { makeDirs } from '../util/mkdirs.js';
import { dirname, join, resolve } from 'node:path';
import { InputError, UsageError } from '../util/errors.js';

export { DEFAULT_PREFIX, INSTALLED_PATH } from '../util/bundled.js';
import { DEFAULT_PREFIX } from '../util/bundled.js';

export interface SelfInstallFacts {
  // The running executable (process.execPath) when bkci runs as the single executable; undefined
  // when it runs as the npm package under Node.
  executable: string | undefined;
  cwd: string;
  // The process's user id: as root the copy is made root-owned.
  uid: number | undefined;
}

export interface SelfInstallPlan {
  from: string;
  to: string;
  mode: number;
  // Set when the copy must be owned by root (bkci runs as root).
  owner?: { uid: 0; gid: 0 };
}

export function planSelfInstall(facts: SelfInstallFacts, prefix = DEFAULT_PREFIX): SelfInstallPlan {
  if (!facts.executable)
    throw new UsageError(
      'self install copies the single executable, and this bkci runs as the npm package under Node',
      'download bkci-linux-<arch> (docs/install.md) and run its self install, or install the npm package globally (npm install -g)',
    );
  if (prefix === '' || /[\0\n\r]/.test(prefix)) throw new UsageError(`--prefix ${JSON.stringify(prefix)}: expected a directory`);
  const to = join(resolve(facts.cwd, prefix), 'bin', 'bkci');
  return { from: facts.executable, to, mode: 0o755, ...(facts.uid === 0 ? { owner: { uid: 0 as const, gid: 0 as const } } : {}) };
}

async function sha256Of(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

export interface SelfInstallResult {
  path: string;
  changed: boolean;
  sha256: string;
}

// Copies plan.from to plan.to through a temporary file in the same directory (fsynced, then
// renamed over the old one: a running copy keeps its inode). A symbolic link at plan.to is
// replaced, never written through. Nothing is written when the bytes, mode and owner already match.
export async function applySelfInstall(plan: SelfInstallPlan): Promise<SelfInstallResult> {
  const sha256 = await sha256Of(plan.from);
  const old = await lstat(plan.to).catch(() => undefined);
  if (old?.isDirectory()) throw new InputError(`${plan.to}: is a directory`, 'remove it, or pass another --prefix');
  if (old?.isFile() && (old.mode & 0o7777) === plan.mode && (!plan.owner || (old.uid === 0 && old.gid === 0))) {
    const size = (await stat(plan.from)).size;
    if (old.size === size && (await sha256Of(plan.to)) === sha256) return { path: plan.to, changed: false, sha256 };
  }
  const dir = dirname(plan.to);
  await makeDirs(dir, 0o755).catch((err: NodeJS.ErrnoException) => {
    throw new InputError(`${dir}: cannot create the directory (${err.code ?? err.message})`, 'run as root (sudo) or pass a writable --prefix');
  });
  const tmp = join(dir, `.bkci.${process.pid}.tmp`);
  try {
    // COPYFILE_EXCL: never onto a file already there (a stale temporary file is removed first).
    await rm(tmp, { force: true });
    await copyFile(plan.from, tmp, fsConstants.COPYFILE_EXCL);
    const out = await open(tmp, 'r+');
    try {
      await out.sync();
    } finally {
      await out.close();
    }
    if (plan.owner) await chown(tmp, plan.owner.uid, plan.owner.gid);
    await chmod(tmp, plan.mode);
    await rename(tmp, plan.to);
  } catch (err) {
    await rm(tmp, { force: true });
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS' || code === 'ENOTDIR')
      throw new InputError(`${plan.to}: cannot write (${code})`, 'run as root (sudo) or pass a writable --prefix');
    throw err;
  }
  return { path: plan.to, changed: true, sha256 };
}
