// Artifact selection and download. A plan first (pure): each chosen artifact's local path under
// the download directory, or why it is refused (absolute, `..`, NUL, too long, a file where
// another artifact needs a directory, the same path twice). Then the downloads, N at a time: each
// file streamed into a temporary file beside its target while its sha1 and size are computed,
// renamed into place only when both match. A failed or interrupted download leaves no file.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { realpath, rename, rmdir, unlink } from 'node:fs/promises';
import { makeDirs } from '../util/mkdirs.js';
import { dirname, join, resolve, sep } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BkciError, CheckFailed, Interrupted } from '../util/errors.js';
import { compileGlobList } from '../util/glob.js';
import type { Io } from '../util/io.js';
import type { ApiClient } from './client.js';
import type { Artifact } from './types.js';

// The artifacts whose path matches one of the comma-separated globs (linear-time matching: a
// hostile pattern cannot make it backtrack).
export function selectArtifacts(all: Artifact[], glob: string | undefined): Artifact[] {
  if (glob === undefined) return all;
  const m = compileGlobList(glob);
  return all.filter((a) => m.test(a.path));
}

// Linux limits: a name of 255 bytes, a path of 4095.
const NAME_MAX = 255;
const PATH_MAX = 4095;

export type Placement = { artifact: Artifact; file: string } | { artifact: Artifact; refused: string };

// Where each artifact goes under `dir` (an absolute directory), or why it does not.
export function planDownloads(dir: string, artifacts: Artifact[]): Placement[] {
  const root = resolve(dir);
  const out: Placement[] = artifacts.map((a) => {
    const why = unsafePath(a.path);
    if (why) return { artifact: a, refused: why };
    const file = resolve(root, a.path);
    if (Buffer.byteLength(file) > PATH_MAX) return { artifact: a, refused: `its local path would be longer than ${PATH_MAX} bytes` };
    return { artifact: a, file };
  });
  // Every directory some artifact needs, and the first artifact of each file path.
  const dirs = new Map<string, string>();
  const first = new Map<string, string>();
  for (const p of out) {
    if (!('file' in p)) continue;
    for (let d = dirname(p.file); d.length > root.length; d = dirname(d)) if (!dirs.has(d)) dirs.set(d, p.artifact.path);
  }
  return out.map((p) => {
    if (!('file' in p)) return p;
    const other = dirs.get(p.file);
    if (other !== undefined) return { artifact: p.artifact, refused: `it is a file where artifact ${JSON.stringify(other)} needs a directory` };
    const earlier = first.get(p.file);
    if (earlier !== undefined) return { artifact: p.artifact, refused: `another artifact (${JSON.stringify(earlier)}) has the same path; kept the first` };
    first.set(p.file, p.artifact.path);
    return p;
  });
}

// Why an artifact path cannot be written under the download directory, or undefined.
export function unsafePath(path: string): string | undefined {
  if (path === '') return 'the path is empty';
  if (path.includes('\0')) return 'the path contains a NUL character';
  if (path.startsWith('/') || path.startsWith('\\') || /^[A-Za-z]:[\\/]/.test(path))
    return 'the path is absolute (it would be written outside the download directory)';
  const parts = path.split('/');
  if (parts.includes('..')) return 'the path contains `..` (it could lead outside the download directory)';
  if (parts.every((p) => p === '' || p === '.')) return 'the path names no file';
  const long = parts.find((p) => Buffer.byteLength(p) > NAME_MAX);
  if (long !== undefined) return `a name in the path is ${Buffer.byteLength(long)} bytes long (at most ${NAME_MAX})`;
  return undefined;
}

export interface Downloaded {
  path: string;
  file: string;
  bytes: number;
  sha1: string;
  // The file was already there with the right sha1: nothing was downloaded or written.
  skipped: boolean;
}

export interface DownloadResult {
  downloaded: Downloaded[];
  // Artifacts not downloaded and why: refused paths and failed downloads, in artifact order.
  problems: { path: string; reason: string; hint?: string }[];
}

export interface DownloadOptions {
  concurrency: number;
  // Called as each file is done (in completion order).
  onDone?: (d: Downloaded) => void;
}

// Downloads the artifacts into dir, `concurrency` at a time. One failing file does not stop the
// others; an interrupt (io.signal) stops all of them, removes their partial files and is thrown.
export async function downloadArtifacts(client: ApiClient, artifacts: Artifact[], dir: string, io: Io, opts: DownloadOptions): Promise<DownloadResult> {
  const plan = planDownloads(dir, artifacts);
  const results: ({ ok: Downloaded } | { reason: string; hint?: string } | undefined)[] = plan.map((p) => ('refused' in p ? { reason: p.refused } : undefined));
  const todo = plan.flatMap((p, i) => ('file' in p ? [{ i, artifact: p.artifact, file: p.file }] : []));
  let next = 0;
  let stop: unknown;
  // Directories made for files that then failed are removed at the end when empty.
  const made = new Set<string>();
  const worker = async () => {
    while (next < todo.length && stop === undefined) {
      const t = todo[next++]!;
      try {
        const d = await downloadOne(client, t.artifact, t.file, dir, made);
        results[t.i] = { ok: d };
        opts.onDone?.(d);
      } catch (err) {
        if (err instanceof Interrupted || io.signal?.aborted) stop ??= err;
        else if (err instanceof BkciError) results[t.i] = { reason: err.message, hint: err.hint };
        else results[t.i] = { reason: describeFsError(err) };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(opts.concurrency, todo.length)) }, worker));
  for (const d of [...made].sort((x, y) => y.length - x.length)) await rmdir(d).catch(() => undefined);
  if (stop !== undefined) throw stop instanceof BkciError ? stop : new Interrupted();
  const out: DownloadResult = { downloaded: [], problems: [] };
  results.forEach((r, i) => {
    if (r && 'ok' in r) out.downloaded.push(r.ok);
    else out.problems.push({ path: plan[i]!.artifact.path, reason: r?.reason ?? 'not downloaded', hint: r && 'hint' in r ? r.hint : undefined });
  });
  return out;
}

// The error a download with problems ends with (exit 1), or undefined.
export function downloadProblems(r: DownloadResult): CheckFailed | undefined {
  if (r.problems.length === 0) return undefined;
  const list = r.problems.map((p) => `  ${JSON.stringify(p.path)}: ${p.reason}`).join('\n');
  const hints = [...new Set(r.problems.map((p) => p.hint).filter((h): h is string => h !== undefined))];
  return new CheckFailed(
    `${r.problems.length} artifact${r.problems.length === 1 ? '' : 's'} not downloaded (${r.downloaded.length} downloaded):\n${list}`,
    hints.length
      ? hints.join('; ')
      : 'paths that are absolute, contain `..` or NUL, or clash with another artifact are never written; run again for the others',
  );
}

async function sha1Of(file: string): Promise<{ sha1: string; bytes: number } | undefined> {
  const hash = createHash('sha1');
  let bytes = 0;
  try {
    for await (const c of createReadStream(file)) {
      hash.update(c as Buffer);
      bytes += (c as Buffer).length;
    }
  } catch {
    return undefined;
  }
  return { sha1: hash.digest('hex'), bytes };
}

async function downloadOne(client: ApiClient, a: Artifact, file: string, dir: string, made: Set<string>): Promise<Downloaded> {
  if (a.sha1sum) {
    const have = await sha1Of(file);
    if (have && have.sha1 === a.sha1sum.toLowerCase()) return { path: a.path, file, bytes: have.bytes, sha1: have.sha1, skipped: true };
  }
  return client.download(a.download_url, async (body) => {
    // Directories only once there is something to write into them, and never through a
    // symbolic link that leads out of the download directory.
    const parent = dirname(file);
    const first = await makeDirs(parent);
    for (let d = parent; first !== undefined && d.length >= first.length; d = dirname(d)) made.add(d);
    const [realRoot, realParent] = await Promise.all([realpath(resolve(dir)), realpath(parent)]);
    if (realParent !== realRoot && !realParent.startsWith(realRoot + sep))
      throw new CheckFailed(`${dirname(a.path)} is a symbolic link out of the download directory (to ${realParent})`);
    const tmp = join(parent, `.bkci-${randomBytes(6).toString('hex')}.part`);
    const hash = createHash('sha1');
    let bytes = 0;
    const meter = new Transform({
      transform(chunk: Buffer, _enc, done) {
        hash.update(chunk);
        bytes += chunk.length;
        done(null, chunk);
      },
    });
    try {
      await pipeline(body, meter, createWriteStream(tmp, { mode: 0o644, flags: 'wx' }));
      const sha1 = hash.digest('hex');
      if (a.sha1sum && sha1 !== a.sha1sum.toLowerCase())
        throw new CheckFailed(
          `${a.path}: sha1 mismatch (expected ${a.sha1sum}, got ${sha1}); the file was not kept`,
          'download it again; if it persists the artifact is corrupt in storage',
        );
      if (a.file_size != null && bytes !== a.file_size)
        throw new CheckFailed(`${a.path}: size mismatch (expected ${a.file_size} bytes, got ${bytes}); the file was not kept`);
      await rename(tmp, file);
      return { path: a.path, file, bytes, sha1, skipped: false };
    } catch (err) {
      await unlink(tmp).catch(() => undefined);
      throw err;
    }
  });
}

function describeFsError(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  const why: Record<string, string> = {
    EISDIR: 'a directory is in the way',
    ENOTDIR: 'a part of the path is a file, not a directory',
    EEXIST: 'a file is in the way of a directory',
    ENOTEMPTY: 'a directory is in the way',
    EACCES: 'permission denied',
    EPERM: 'permission denied',
    ENOSPC: 'no space left on the device',
    ENAMETOOLONG: 'the path is too long',
    EROFS: 'the file system is read-only',
  };
  return (e?.code && why[e.code]) ?? e?.code ?? String(err);
}
