// What is on disk now (under --root): the previous manifest, and content hash and mode of each
// file a plan may touch. Read-only; fed to the planner as facts.
//
// The manifest is checked before anything trusts it: a corrupted or hand-edited one is an error
// naming the field, and it may only name paths setup could have written (no `..`, files only in
// bkci's config directory and bkci's units). While setup applies a plan it keeps a journal (the
// old and new manifests together) next to where the manifest goes; a run killed half way leaves
// it behind, and the next setup or teardown reads it as part of the manifest, so the directories
// and files the killed run made are still bkci's.
import { lstat, readFile, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import * as z from 'zod';
import { InputError, UsageError } from '../util/errors.js';
import { mergeManifests, sha256, type CurrentState, type FileState, type Manifest } from './plan.js';
import { agentCacheDir, agentTmpDir, gitMirrorsDirFor } from './agent-env.js';
import { assertNoLink, fsError, under } from './safe-fs.js';
import { PATHS } from './units.js';

export { under };

export const JOURNAL_NAME = '.bkci-setup-journal.json';

// Where a journal may be: beside the manifest, or in the first existing ancestor of its directory
// (on a first setup /etc/buildkite-agent/bkci does not exist yet when the journal is written).
export function journalCandidates(): string[] {
  const out: string[] = [];
  for (let d = PATHS.confDir; ; d = dirname(d)) {
    out.push(d === '/' ? `/${JOURNAL_NAME}` : `${d}/${JOURNAL_NAME}`);
    if (d === '/') return out;
  }
}

const safeName = /^[A-Za-z0-9._@+-]{1,200}$/;
const targetPath = z
  .string()
  .max(4096)
  .refine(
    (p) =>
      p.startsWith('/') &&
      p
        .slice(1)
        .split('/')
        .every((x) => x !== '' && x !== '.' && x !== '..') &&
      !/[\u0000-\u001f\u007f]/.test(p),
    {
      message: 'not an absolute path in normal form (no empty, . or .. parts)',
    },
  );
const mode = z.number().int().min(0).max(0o7777);

const agentSchema = z.looseObject({
  instance: z.string().regex(safeName),
  name: z.string(),
  unit: z.string().regex(/^bkci-agent@[A-Za-z0-9._+-]+\.service$/),
  gpuIndices: z.array(z.number()),
  cpus: z.string(),
  memNodes: z.string(),
  memoryMaxText: z.string(),
  buildPath: targetPath,
});

const manifestSchema = z.looseObject({
  managedBy: z.literal('bkci'),
  version: z.literal(1),
  queue: z.string(),
  vendor: z.string(),
  user: z.string(),
  agents: z.array(agentSchema),
  files: z.array(z.looseObject({ path: targetPath, mode, sha256: z.string().optional(), secret: z.boolean().optional() })),
  dirs: z.array(z.looseObject({ path: targetPath, mode, owner: z.enum(['root', 'agent']), kind: z.enum(['config', 'build', 'shared']), created: z.boolean() })),
  // Agents `node teardown --agent` forgot (src/node/forget.ts), until the next setup.
  forgotten: z.array(z.looseObject({ instance: z.string().regex(safeName), name: z.string(), gpus: z.array(z.string()) })).optional(),
});

// Files setup writes: bkci's config directory and bkci's own systemd units and drop-ins.
export function isManagedFile(p: string): boolean {
  return p.startsWith(PATHS.confDir + '/') || /^\/etc\/systemd\/system\/bkci-[^/]+(?:\/[^/]+)?$/.test(p);
}

// The plugins directory setup makes beside a build root (`/var/lib/buildkite-agent/builds` →
// `/var/lib/buildkite-agent/plugins`).
export function pluginsDirFor(buildRoot: string): string {
  return `${buildRoot.replace(/\/builds\/?$/, '') || '/var/lib/buildkite-agent'}/plugins`;
}

// Parses and checks a manifest (or journal) text; `where` names the file in errors.
export function parseManifest(text: string, where: string): Manifest {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw corrupt(where, `not JSON (${(err as Error).message})`);
  }
  const r = manifestSchema.safeParse(data);
  if (!r.success) {
    const i = r.error.issues[0]!;
    const field = i.path.map((k) => (typeof k === 'number' ? `[${k}]` : `.${String(k)}`)).join('') || '(top level)';
    throw corrupt(where, `${field.replace(/^\./, '')}: ${i.message}`);
  }
  const m = r.data as unknown as Manifest;
  m.files.forEach((f, i) => {
    if (!isManagedFile(f.path)) throw corrupt(where, `files[${i}].path ${JSON.stringify(f.path)} is not a file bkci writes`);
  });
  // Build directories are removed with everything in them (teardown --purge): only an agent's own
  // build directory, or the plugins directory beside the build root, qualifies.
  const buildDirs = new Set(
    m.agents.flatMap((a) => [
      a.buildPath,
      agentTmpDir(a.buildPath),
      agentCacheDir(a.buildPath),
      pluginsDirFor(dirname(a.buildPath)),
      gitMirrorsDirFor(dirname(a.buildPath)),
    ]),
  );
  m.dirs.forEach((d, i) => {
    if (d.path === '/') throw corrupt(where, `dirs[${i}].path is /`);
    if (d.kind === 'build' && !buildDirs.has(d.path))
      throw corrupt(
        where,
        `dirs[${i}].path ${JSON.stringify(d.path)} is marked a build directory but is no agent's build, tmp, cache, plugins or git mirrors directory`,
      );
  });
  m.agents.forEach((a, i) => {
    if (a.buildPath.split('/').pop() !== a.instance)
      throw corrupt(where, `agents[${i}].buildPath ${JSON.stringify(a.buildPath)} does not end in the instance name ${a.instance}`);
  });
  return m;
}

function corrupt(where: string, why: string): InputError {
  return new InputError(
    `${where}: corrupted bkci manifest: ${why}`,
    `restore it from a backup, or move it aside (mv ${where} ${where}.bad) and run bkci node setup again with the same flags: it writes a new one`,
  );
}

// `--root` must be a directory (or not exist yet, for setup).
export async function checkRoot(root: string, mustExist = false): Promise<void> {
  try {
    const st = await stat(root);
    if (!st.isDirectory()) throw new UsageError(`--root ${root}: not a directory`, 'pass the directory to stage the files under');
  } catch (err) {
    if (err instanceof UsageError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && !mustExist) return;
    if (code === 'ENOENT') throw new UsageError(`--root ${root}: no such directory`);
    if (code === 'ENOTDIR') throw new UsageError(`--root ${root}: a part of the path is not a directory`);
    throw fsError(err, root);
  }
}

async function readText(root: string, path: string): Promise<string | undefined> {
  await assertNoLink(root, path, 'any');
  try {
    const st = await lstat(under(root, path));
    if (!st.isFile()) throw new InputError(`${under(root, path)}: not a regular file`, 'remove it and run setup again');
    if (st.size > 64 * 1024 * 1024) throw corrupt(under(root, path), `${st.size} bytes, far larger than any manifest`);
    return await readFile(under(root, path), 'utf8');
  } catch (err) {
    if (err instanceof InputError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw fsError(err, under(root, path));
  }
}

// The journals an interrupted setup left (normally none).
export async function readJournals(root: string): Promise<{ path: string; manifest: Manifest }[]> {
  const out: { path: string; manifest: Manifest }[] = [];
  for (const p of journalCandidates()) {
    const text = await readText(root, p);
    if (text !== undefined) out.push({ path: p, manifest: parseManifest(text, under(root, p)) });
  }
  return out;
}

// The manifest, merged with the journal of an interrupted setup if one is there. Undefined when
// bkci manages nothing under the root.
export async function readManifest(root: string): Promise<Manifest | undefined> {
  await checkRoot(root);
  const text = await readText(root, PATHS.manifest);
  let m = text === undefined ? undefined : parseManifest(text, under(root, PATHS.manifest));
  for (const j of await readJournals(root)) m = m ? mergeManifests(m, j.manifest) : j.manifest;
  return m;
}

export async function fileState(path: string): Promise<FileState | undefined> {
  try {
    const st = await lstat(path);
    // A link or a directory where a file goes is never "unchanged": the planner rewrites it (and
    // the writer refuses a link, naming it).
    if (!st.isFile()) return { sha256: '', mode: -1 };
    const content = await readFile(path, 'utf8');
    return { sha256: sha256(content), mode: st.mode & 0o7777 };
  } catch {
    return undefined;
  }
}

export async function isDir(path: string): Promise<boolean> {
  try {
    return (await lstat(path)).isDirectory();
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
  // Nothing setup writes, chmods or removes may be reached through a link: refused now, before
  // the plan is shown or applied.
  for (const p of all) await assertNoLink(root, p, 'any');
  for (const d of dirs) await assertNoLink(root, d, 'dir');
  const files = new Map<string, FileState>();
  for (const p of all) {
    const s = await fileState(under(root, p));
    if (s) files.set(p, s);
  }
  const present = new Set<string>();
  for (const d of dirs) if (await isDir(under(root, d))) present.add(d);
  return { files, dirs: present, manifest, userExists: staging ? true : await userExists(root, user) };
}
