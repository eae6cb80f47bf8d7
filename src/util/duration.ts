// Durations as people write them: `90`, `30s`, `10m`, `1h30m`, `2h` (a bare number is seconds).
import { UsageError } from './errors.js';

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

// Parses a duration into milliseconds; `flag` names the option in the error.
export function parseDuration(text: string, flag: string): number {
  const t = text.trim();
  if (/^\d+(\.\d+)?$/.test(t)) return Math.round(Number(t) * 1000);
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/gy;
  let ms = 0;
  let pos = 0;
  for (let m = re.exec(t); m; m = re.exec(t)) {
    ms += Number(m[1]) * UNIT_MS[m[2]!]!;
    pos = re.lastIndex;
  }
  if (t === '' || pos !== t.length) throw new UsageError(`${flag} ${JSON.stringify(text)}: not a duration`, 'write it like 90, 30s, 10m or 1h30m');
  return Math.round(ms);
}

// Formats milliseconds as `45s`, `10m`, `1h30m`, `1h0m5s` is written `1h5s`.
export function formatDuration(ms: number): string {
  let s = Math.max(0, Math.round(ms / 1000));
  if (s === 0) return '0s';
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  return `${h ? `${h}h` : ''}${m ? `${m}m` : ''}${s ? `${s}s` : ''}`;
}
