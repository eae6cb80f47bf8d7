// What the `bkci node ...` commands share: the root they work under, and value parsers.
import { resolve } from 'node:path';
import { InvalidArgumentError } from 'commander';
import type { Io } from '../../util/io.js';

// --root: a staging tree (no systemctl), or the host itself.
export function rootOf(io: Pick<Io, 'cwd'>, root: string | undefined): { root: string; staging: boolean } {
  return root === undefined ? { root: '/', staging: false } : { root: resolve(io.cwd, root), staging: true };
}

// argParser for --tags: k=v,k2=v2.
export function tagsArg(text: string): [string, string][] {
  return text
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean)
    .map((t) => {
      const i = t.indexOf('=');
      if (i <= 0) throw new InvalidArgumentError(`expected key=value, not ${JSON.stringify(t)}`);
      return [t.slice(0, i), t.slice(i + 1)] as [string, string];
    });
}
