// Text quoted from input or from an API into a message on stderr (an error, its hint, a finding,
// a log line) cannot drive the terminal: escape sequences, carriage returns and bidi controls are
// shown as \xNN / \uNNNN; line feeds stay.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { PassThrough } from 'node:stream';
import pino from 'pino';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/util/log.js';
import { visible } from '../../src/util/terminal.js';
import { runBkci } from '../helpers/io.js';

const ESC = '\u001b';
const RAW = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

describe('control characters in messages on stderr', () => {
  it('visible(): escapes all but line feed and tab', () => {
    expect(visible(`a${ESC}]0;title\u0007b\r\nc\td\u202eé`)).toBe('a\\x1b]0;title\\x07b\\x0d\nc\td\\u202eé');
    expect(visible('plain ✓ text')).toBe('plain ✓ text');
  });

  it('a key with an OSC sequence in a pipeline: the finding and the summary show it escaped', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bkci-esc-'));
    const file = join(dir, `p${ESC}[31m.yml`);
    // YAML's own escapes (\\e, \\a, \\u202e) in a double-quoted key: the parsed key holds the characters.
    writeFileSync(file, 'steps:\n  - label: a\n    command: x\n    "k\\e]52;c;cGF5bG9hZA==\\a\\u202exy": 1\n');
    const r = await runBkci(['pipeline', 'validate', file]);
    expect(r.code).toBe(1);
    expect(r.stderr).not.toMatch(RAW);
    expect(r.stderr).toContain('k\\x1b]52;c;cGF5bG9hZA==\\x07\\u202exy');
    expect(r.stderr).toContain('p\\x1b[31m.yml is invalid');
  });

  it('an error naming a file with control characters', async () => {
    const r = await runBkci(['pipeline', 'validate', `/nonexistent/x${ESC}]0;t\u0007\r.yml`]);
    expect(r.code).toBe(2);
    expect(r.stderr).not.toMatch(RAW);
    expect(r.stderr).toMatch(/^bkci: \/nonexistent\/x\\x1b\]0;t\\x07\\x0d\.yml: /m);
  });

  it('a log line whose message carries an escape sequence', async () => {
    let out = '';
    const sink = new PassThrough().on('data', (c: Buffer) => (out += c.toString()));
    const log = createLogger(
      () => sink,
      { level: 'info', color: false },
      () => pino,
    );
    log.warn({ branch: `b${ESC}[2J` }, `branch b${ESC}]0;t\u0007 has no builds`);
    await new Promise((r) => setImmediate(r));
    expect(out).toMatch(/^WARN {2}branch b\\x1b\]0;t\\x07 has no builds branch="b\\u001b\[2J"\n$/);
    expect(out).not.toMatch(RAW);
  });
});
