// What is on disk now (under --root): the previous manifest, and content hash and mode of each
// file a plan may touch. Read-only; fed to the planner as facts.
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { InputError } from '../util/errors.js';
import { sha256, type CurrentState, type FileState, type Manifest } from './plan.js';
import { PATHS } from './units.js';

export const under = (root: string, p: string) => (root === '/' ? p : join(root, p));

export async function readManifest(root: string): Promise<Manifest | undefined> {
  let text: string;
  try {
    text = await readFile(under(root, PATHS.manifest), 'utf8');
  } catch {
    return undefined;
  }
  try {
    const m = JSON.parse(text) as Manifest;
    if (m.managedBy !== 'bkci' || !Array.isArray(m.files) || !Array.isArray(m.agents)) throw new Error('not a bkci manifest');
    return m;
  } catch (err) {
    throw new InputError(
      `${under(root, PATHS.manifest)}: unreadable bkci manifest (${(err as Error).message})`,
      'restore it from backup, or remove the bkci files by hand and run setup again',
    );
  }
}

export async function fileState(path: string): Promise<FileState | undefined> {
  try {
    const [content, st] = await Promise.all([readFile(path, 'utf8'), stat(path)]);
    return { sha256: sha256(content), mode: st.mode & 0o7777 };
  } catch {
    return undefined;
  }
}

export async function isDir(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

export async function userExists(root: string, user: string): Promise<boolean> {
  const passwd = await readFile(under(root, '/etc/passwd'), 'utf8').catch(() => '');
  return passwd.split('\n').some((l) => l.split(':')[0] === user);
}

export async function gatherState(root: string, paths: string[], dirs: string[], user: string, staging: boolean): Promise<CurrentState> {
  const manifest = await readManifest(root);
  const all = new Set([...paths, ...(manifest?.files.map((f) => f.path) ?? [])]);
  const files = new Map<string, FileState>();
  for (const p of all) {
    const s = await fileState(under(root, p));
    if (s) files.set(p, s);
  }
  const present = new Set<string>();
  for (const d of dirs) if (await isDir(under(root, d))) present.add(d);
  return { files, dirs: present, manifest, userExists: staging ? true : await userExists(root, user) };
}
