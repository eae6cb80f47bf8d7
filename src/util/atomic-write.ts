// Atomic file writes: a temporary file in the same directory, fsync, chmod to the exact mode,
// then rename over the target. `writeIfChanged` skips files whose content and mode already match,
// so a re-run that changes nothing writes nothing (no mtime change).
import { randomBytes } from 'node:crypto';
import { chmod, open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { dirname, join, basename } from 'node:path';
import { makeDirs } from './mkdirs.js';

export async function atomicWrite(path: string, content: string | Buffer, mode = 0o644): Promise<void> {
  // Not mkdir's recursive form: it never returns where the kernel refuses a level (/proc/x/...).
  await makeDirs(dirname(path));
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx', mode);
  try {
    await fh.writeFile(content);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await chmod(tmp, mode);
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
}

// Writes only when content or mode differ; returns whether it wrote.
export async function writeIfChanged(path: string, content: string | Buffer, mode: number): Promise<boolean> {
  try {
    const [cur, st] = await Promise.all([readFile(path), stat(path)]);
    const want = typeof content === 'string' ? Buffer.from(content) : content;
    if (cur.equals(want)) {
      if ((st.mode & 0o7777) !== mode) await chmod(path, mode);
      return (st.mode & 0o7777) !== mode;
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  await atomicWrite(path, content, mode);
  return true;
}
