// What the `bkci node ...` commands share: the root they work under and whole-number flags.
import { resolve } from 'node:path';
import { UsageError } from '../../util/errors.js';
import type { Io } from '../../util/io.js';

export const mode = (m: number) => m.toString(8).padStart(4, '0');

export function rootOf(io: Io, root: string | undefined): { root: string; staging: boolean } {
  return root === undefined ? { root: '/', staging: false } : { root: resolve(io.cwd, root), staging: true };
}

export function positiveInt(v: string, flag: string, min = 1): number {
  if (!/^\d+$/.test(v) || Number(v) < min) throw new UsageError(`${flag} ${v}: expected a whole number${min ? ` of at least ${min}` : ''}`);
  return Number(v);
}

export function parseTags(text: string | undefined): [string, string][] {
  if (!text) return [];
  return text
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean)
    .map((t) => {
      const i = t.indexOf('=');
      if (i <= 0) throw new UsageError(`--tags ${JSON.stringify(t)}: expected key=value`);
      return [t.slice(0, i), t.slice(i + 1)] as [string, string];
    });
}
