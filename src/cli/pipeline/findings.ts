// Validation findings on stderr, as `file:line:col: severity: path: message`: a key or value quoted
// from the file has its control characters shown escaped (src/util/terminal.ts visible) and its
// secrets redacted.
import type { Io } from '../../util/io.js';
import { redact } from '../../util/redact.js';
import { visible } from '../../util/terminal.js';

// At most this many findings on stderr: one YAML mistake (a wrong indent) can cascade into dozens.
const MAX_FINDINGS_SHOWN = 20;

export interface Finding {
  severity: string;
  path: string;
  line: number;
  col: number;
  message: string;
}

export function writeFindings(io: Io, name: string, findings: Finding[]): void {
  for (const f of findings.slice(0, MAX_FINDINGS_SHOWN))
    io.stderr.write(redact(visible(`${name}:${f.line}:${f.col}: ${f.severity}: ${f.path}: ${f.message}`)) + '\n');
  const rest = findings.slice(MAX_FINDINGS_SHOWN);
  if (rest.length > 0) {
    // Where the rest are: the lines of the first ten (the full list is in --json).
    const lines = [...new Set(rest.map((f) => f.line))];
    const shown = lines.slice(0, 10).join(', ') + (lines.length > 10 ? ` and ${lines.length - 10} more lines` : '');
    const more = rest.length;
    io.stderr.write(
      visible(
        `${name}:${rest[0]!.line}:${rest[0]!.col}: ... and ${more} more finding${more === 1 ? '' : 's'} at line${lines.length === 1 ? '' : 's'} ${shown} (fix the first ones first: later ones often follow from them; --json lists all)\n`,
      ),
    );
  }
}
