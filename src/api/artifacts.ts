// Artifact selection and download: a glob over artifact paths, then each file streamed to a
// temporary file beside its target while its sha1 is computed, renamed into place only when the
// sha1 matches. Paths are kept under the download directory and may not escape it.
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { chmod, mkdir, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { CheckFailed } from '../util/errors.js';
import { globToRegExp } from '../util/glob.js';
import type { ApiClient } from './client.js';
import type { Artifact } from './types.js';

export function selectArtifacts(all: Artifact[], glob: string | undefined): Artifact[] {
  if (!glob) return all;
  const res = glob.split(',').map((g) => globToRegExp(g.trim()));
  return all.filter((a) => res.some((re) => re.test(a.path)));
}

// The local path of an artifact under dir; refuses absolute paths and `..` escapes.
export function localPath(dir: string, artifactPath: string): string {
  const target = resolve(dir, artifactPath.replace(/^\/+/, ''));
  const rel = relative(resolve(dir), target);
  if (rel === '' || rel.startsWith('..') || rel.split(sep).includes('..'))
    throw new CheckFailed(`artifact path ${JSON.stringify(artifactPath)} would be written outside ${dir}; not downloading it`);
  return target;
}

export interface Downloaded {
  path: string;
  file: string;
  bytes: number;
  sha1: string;
  // The file was already there with the right sha1: nothing was downloaded or written.
  skipped: boolean;
}

async function sha1Of(file: string): Promise<{ sha1: string; bytes: number } | undefined> {
  const { createReadStream } = await import('node:fs');
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

export async function downloadArtifact(client: ApiClient, a: Artifact, dir: string): Promise<Downloaded> {
  const file = localPath(dir, a.path);
  if (a.sha1sum) {
    const have = await sha1Of(file);
    if (have && have.sha1 === a.sha1sum.toLowerCase()) return { path: a.path, file, bytes: have.bytes, sha1: have.sha1, skipped: true };
  }
  return client.download(a.download_url, async (body) => {
    // Directories only once there is something to write into them.
    await mkdir(dirname(file), { recursive: true });
    const tmp = join(dirname(file), `.${basename(file)}.${randomBytes(6).toString('hex')}.part`);
    const hash = createHash('sha1');
    let bytes = 0;
    try {
      body.on('data', (c: Buffer) => {
        hash.update(c);
        bytes += c.length;
      });
      await pipeline(body, createWriteStream(tmp, { mode: 0o644 }));
      const sha1 = hash.digest('hex');
      if (a.sha1sum && sha1 !== a.sha1sum.toLowerCase()) {
        throw new CheckFailed(
          `${a.path}: sha1 mismatch (expected ${a.sha1sum}, got ${sha1}); the file was not kept`,
          'download it again; if it persists the artifact is corrupt in storage',
        );
      }
      if (a.file_size != null && bytes !== a.file_size) {
        throw new CheckFailed(`${a.path}: size mismatch (expected ${a.file_size} bytes, got ${bytes}); the file was not kept`);
      }
      await chmod(tmp, 0o644);
      await rename(tmp, file);
      return { path: a.path, file, bytes, sha1, skipped: false };
    } catch (err) {
      await unlink(tmp).catch(() => undefined);
      throw err;
    }
  });
}
