// The terminal filter for job logs (src/util/terminal.ts): text and colours pass, sequences that
// drive the terminal do not, whatever the chunking.
import { describe, expect, it } from 'vitest';
import { terminalFilter } from '../../src/util/terminal.js';
import { randomInts } from '../helpers/random.js';

const ESC = '\u001b';
const BEL = '\u0007';

function run(text: string, keepColor: boolean, cuts: number[] = []): string {
  const f = terminalFilter(keepColor);
  let out = '';
  let at = 0;
  for (const c of [...cuts, text.length]) {
    out += f(text.slice(at, c));
    at = c;
  }
  return out + f('', true);
}

describe('terminalFilter', () => {
  const rows: [string, string, string, string][] = [
    // name, input, with colour, without colour
    ['plain text', 'hello\tworld\r\n', 'hello\tworld\r\n', 'hello\tworld\r\n'],
    [
      'SGR colours kept (or dropped without colour)',
      `${ESC}[31mred${ESC}[0m ${ESC}[1;38;5;208mx${ESC}[m`,
      `${ESC}[31mred${ESC}[0m ${ESC}[1;38;5;208mx${ESC}[m`,
      'red x',
    ],
    ["Buildkite's timestamp marker (APC, BEL)", `${ESC}_bk;t=1700000000000${BEL}line\n`, 'line\n', 'line\n'],
    ['window title (OSC 0, BEL)', `a${ESC}]0;pwned${BEL}b`, 'ab', 'ab'],
    ['clipboard write (OSC 52, ST)', `a${ESC}]52;c;cHduZWQ=${ESC}\\b`, 'ab', 'ab'],
    ['hyperlink (OSC 8)', `${ESC}]8;;https://evil.example${ESC}\\click${ESC}]8;;${ESC}\\`, 'click', 'click'],
    ['clear screen, cursor moves, private modes', `${ESC}[2J${ESC}[H${ESC}[?25l${ESC}[10;20Hx`, 'x', 'x'],
    ['reset and charset switches', `${ESC}c${ESC}(0q${ESC}(B\u000eq\u000f`, 'qq', 'qq'],
    ['DCS and C1 controls', `${ESC}Pq#0;2;0;0;0${ESC}\\a\u009b2Jb\u009d0;t\u0007c\u0085d`, 'abcd', 'abcd'],
    ['bell, NUL, DEL and other C0', `a\u0007b\u0000c\u007fd\u000be\u000cf`, 'abcdef', 'abcdef'],
    ['backspace kept (overstrike, progress)', 'ab\bc', 'ab\bc', 'ab\bc'],
    ['SGR with a non-digit parameter is not colour', `${ESC}[>4;2m.`, '.', '.'],
    ['unicode text untouched', 'héllo 世界 🚀', 'héllo 世界 🚀', 'héllo 世界 🚀'],
  ];
  for (const [name, input, color, plain] of rows)
    it(name, () => {
      expect(run(input, true)).toBe(color);
      expect(run(input, false)).toBe(plain);
    });

  it('gives the same result however the text is cut into chunks', () => {
    const text = rows.map((r) => r[1]).join('|');
    const whole = run(text, true);
    const r = randomInts(7);
    for (let k = 0; k < 200; k++) {
      const cuts = [...new Set(Array.from({ length: 1 + r(8) }, () => r(text.length)))].sort((a, b) => a - b);
      expect(run(text, true, cuts), `cuts ${cuts.join(',')}`).toBe(whole);
    }
  });

  it('an unterminated string sequence gives up after 64 KiB instead of eating the rest of the log', () => {
    const out = run(`${ESC}]0;${'x'.repeat(70 * 1024)}tail`, true);
    expect(out.endsWith('tail')).toBe(true);
    expect(out.length).toBeLessThan(8 * 1024);
  });

  it('nothing it lets through can start a sequence other than SGR', () => {
    const r = randomInts(11);
    const alphabet = [ESC, '[', ']', 'P', '_', '\\', BEL, '\u009b', '\u009d', 'm', '0', ';', '?', 'a', '\n', '\u000e'];
    for (let k = 0; k < 300; k++) {
      const text = Array.from({ length: 40 }, () => alphabet[r(alphabet.length)]).join('');
      const out = run(text, true);
      // Every ESC left is the start of an SGR sequence; no other control character remains.
      expect(out.replace(/\u001b\[[0-9;:]*m/g, '')).not.toMatch(/[\u0000-\u0007\u000b\u000c\u000e-\u001f\u007f-\u009f]/);
    }
  });
});
