// Validation findings on stderr, as `file:line:col: severity: path: message`.
import type { Io } from '../../util/io.js';

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
  for (const f of findings.slice(0, MAX_FINDINGS_SHOWN)) io.stderr.write(`${name}:${f.line}:${f.col}: ${f.severity}: ${f.path}: ${f.message}\n`);
  const more = findings.length - MAX_FINDINGS_SHOWN;
  if (more > 0)
    io.stderr.write(
      `${name}: ... and ${more} more finding${more === 1 ? '' : 's'} (fix the first ones first: later ones often follow from them; --json lists all)\n`,
    );
}
