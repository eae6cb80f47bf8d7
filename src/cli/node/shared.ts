// What the `bkci node ...` commands share: the root they work under, and value parsers.
import { resolve } from 'node:path';
import { InvalidArgumentError } from 'commander';
import type { Io } from '../../util/io.js';

// --root: a staging tree (no systemctl), or the host itself.
export function rootOf(io: Pick<Io, 'cwd'>, root: string | undefined): { root: string; staging: boolean } {
  return root === undefined ? { root: '/', staging: false } : { root: resolve(io.cwd, root), staging: true };
}

// argParser for --tags: k=v,k2=v2, or QUEUE:k=v,k2=v2 (every pair of the value for QUEUE: their
// keys come back as `QUEUE:k`, for src/node/queues.ts scopeFlags).
export function tagsArg(text: string): [string, string][] {
  const scope = /^([^:=,]+):[^,]*=/.exec(text.trim())?.[1];
  const body = scope === undefined ? text : text.trim().slice(scope.length + 1);
  return body
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean)
    .map((t) => {
      const i = t.indexOf('=');
      if (i <= 0) throw new InvalidArgumentError(`expected key=value, not ${JSON.stringify(t)}`);
      const k = t.slice(0, i);
      return [scope !== undefined && !k.includes(':') ? `${scope}:${k}` : k, t.slice(i + 1)] as [string, string];
    });
}

// A duration in milliseconds: seconds (`90`), `30s`, `45m`/`45min`, `3h`; `infinity` is Infinity.
// undefined when it is none of these.
export function durationMs(text: string): number | undefined {
  const t = text.trim().toLowerCase();
  if (t === 'infinity' || t === 'unlimited') return Number.POSITIVE_INFINITY;
  const m = /^(\d{1,7})\s*(s|sec|m|min|h)?$/.exec(t);
  if (!m || Number(m[1]) === 0) return undefined;
  const unit = m[2] === 'h' ? 3_600_000 : m[2] === 'm' || m[2] === 'min' ? 60_000 : 1000;
  return Number(m[1]) * unit;
}
