// Changed-file facts for selection: read from a file/stdin, or from git (diff against the merge base).
import { InputError } from '../util/errors.js';
import { compileGlobList } from '../util/glob.js';

// The first changed file that one of the globs matches (--run-all-paths), or undefined.
export function firstMatchingFile(changed: readonly string[], globs: string | readonly string[]): string | undefined {
  const m = compileGlobList(globs);
  return changed.find((f) => m.test(f));
}

export function parseChangedFiles(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter(Boolean);
}

// `git diff --name-only --diff-filter=ACMDR $(git merge-base REF HEAD)`, as vLLM's bootstrap does.
export async function gitChangedFiles(cwd: string, base: string): Promise<string[]> {
  // execa is loaded only when git is needed: it costs ~100 ms of start-up.
  const { execa } = await import('execa');
  const mb = await execa('git', ['merge-base', base, 'HEAD'], { cwd, reject: false });
  if ((mb as { code?: string }).code === 'ENOENT')
    throw new InputError(`--diff-base ${base}: git is not installed (or not on PATH)`, 'install git, or pass the changed files with --changed-files');
  if (mb.exitCode !== 0) {
    throw new InputError(
      `--diff-base ${base}: git merge-base failed: ${String(mb.stderr).trim() || 'not a git checkout?'}`,
      'fetch the base branch (git fetch origin main) or pass --changed-files',
    );
  }
  // -z: paths exactly as they are (no quoting of spaces or non-ASCII names).
  const diff = await execa('git', ['diff', '--name-only', '-z', '--diff-filter=ACMDR', String(mb.stdout).trim()], {
    cwd,
    reject: false,
    stripFinalNewline: false,
  });
  if (diff.exitCode !== 0) throw new InputError(`--diff-base ${base}: git diff failed: ${String(diff.stderr).trim()}`);
  return String(diff.stdout).split('\0').filter(Boolean);
}

// Tracked files of the checkout at cwd, or undefined outside a git checkout.
export async function gitTrackedFiles(cwd: string): Promise<string[] | undefined> {
  const { execa } = await import('execa');
  const r = await execa('git', ['ls-files', '-z'], { cwd, reject: false, stripFinalNewline: false });
  return r.exitCode === 0 ? String(r.stdout).split('\0').filter(Boolean) : undefined;
}
