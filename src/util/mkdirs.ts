// `mkdir -p` that always ends: Node's `mkdir(dir, { recursive: true })` loops forever where the
// kernel answers ENOENT to creating a directory whose parent exists (under /proc, for one). This
// creates the missing directories one level at a time, so a refusal is an error, not a hang.
import { mkdir, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';

export async function makeDirs(dir: string, mode?: number): Promise<void> {
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
  for (const d of missing.reverse()) {
    try {
      await mkdir(d, mode === undefined ? undefined : { mode });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || !(await stat(d)).isDirectory()) throw err;
    }
  }
}
