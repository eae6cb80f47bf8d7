// The one writer for a command's product: JSON (`--json`) or the command's text renderer, on stdout
// (or stderr for a side product such as `pipeline render --explain`). Every command's output,
// human or JSON, goes through writeResult.
import type { Io } from './io.js';
import { redact, redactData } from './redact.js';
import { terminalFilter } from './terminal.js';

export type OutputFormat = 'text' | 'json';

// `json` may be the --json flag itself (true: JSON, false: text).
export function writeResult<T>(io: Io, format: OutputFormat | boolean, data: T, text: (d: T, io: Io) => string, to: 'stdout' | 'stderr' = 'stdout'): void {
  const json = format === true || format === 'json';
  const out = json ? JSON.stringify(data, null, 2) + '\n' : text(data, io);
  if (out !== '') io[to].write(out);
}

// The product of a command that prints data from elsewhere (the Buildkite API: builds, jobs,
// agents, logs): as writeResult, with every registered secret and Buildkite-token-shaped string
// redacted, and the value of a secret-named key replaced (src/util/redact.ts), as in logs; on a
// terminal, without the escape sequences that would drive it (src/util/terminal.ts).
export function writeApiResult<T>(io: Io, format: OutputFormat | boolean, data: T, text: (d: T, io: Io) => string): void {
  const json = format === true || format === 'json';
  if (json) writeResult(io, 'json', redactData(data), () => '');
  else {
    // Names and messages from the API reach a terminal as text only: a job named with an OSC 52
    // (clipboard) or `ESC c` (reset) sequence must not drive it. Colours stay (bkci's own headers).
    const out = redact(text(data, io));
    writeResult(io, 'text', data, () => (io.stdoutIsTTY ? terminalFilter(io.color)(out, true) : out));
  }
}

// Aligned columns with an upper-case header on a TTY; tab-separated rows without header when piped.
export function table(io: Io, header: string[], rows: string[][]): string {
  if (!io.stdoutIsTTY) return rows.map((r) => r.join('\t') + '\n').join('');
  const all = [header.map((h) => h.toUpperCase()), ...rows];
  const widths = header.map((_h, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd() + '\n';
  const head = line(all[0]!);
  return (io.color ? `\u001b[1m${head.trimEnd()}\u001b[0m\n` : head) + rows.map(line).join('');
}
