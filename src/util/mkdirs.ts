// `mkdir -p` that always ends: Node's `mkdir(dir, { recursive: true })` loops forever where the
// kernel answers ENOENT to creating a directory whose parent exists (under /proc, for one). This
// creates the missing directories one level at a time, so a refusal is an error, not a hang.
import { mkdir, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';

// Returns the first directory it created (as mkdir's recursive form does), undefined when none.
export async function makeDirs(dir: string, mode?: number): Promise<string | undefined> {
  const missing: string[] = [];
  for (let d = resolve(dir); ;) {
    try {
      const st = await stat(d);
      if (!st.isDirectory()) throw Object.assign(new Error(`ENOTDIR: not a directory, mkdir '${d}'`), { code: 'ENOTDIR', path: d });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      missing.push(d);
      const up = dirname(d);
      if (up === d) break;
      d = up;
    }
  }
  missing.reverse();
  for (const d of missing) {
    try {
      await mkdir(d, mode === undefined ? undefined : { mode });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || !(await stat(d)).isDirectory()) throw err;
    }
  }
  return missing[0];
}
