import { describe, expect, it } from 'vitest';
import { MAX_SECRET_CHARS, redact, redactData, registerSecret, streamRedactor } from '../../src/util/redact.js';
import { randomInts } from '../helpers/random.js';

describe('redact', () => {
  it('removes registered values and token-shaped text', () => {
    registerSecret('correct-horse-battery');
    expect(redact('sent correct-horse-battery twice: correct-horse-battery')).toBe('sent [REDACTED] twice: [REDACTED]');
    expect(redact('token bkua_0123456789abcdefABCDEF leaked')).toBe('token [REDACTED] leaked');
    expect(redact('authorization: Bearer abc.def-123')).toBe('authorization: Bearer [REDACTED]');
    expect(redact('{"token":"s3cr3t-value","password": "hunter22"}')).toBe('{"token":"[REDACTED]","password": "[REDACTED]"}');
    expect(redact('secret=PROD_DB_2024')).toBe('secret=[REDACTED]');
  });

  it("keeps the name of Buildkite's and bkci's variables where a message names one", () => {
    expect(redact('no API token: BUILDKITE_API_TOKEN is not set')).toBe('no API token: BUILDKITE_API_TOKEN is not set');
    expect(redact('agent token: BUILDKITE_AGENT_TOKEN, or token=BKCI_X')).toBe('agent token: BUILDKITE_AGENT_TOKEN, or token=BKCI_X');
    expect(redact('token: BUILDKITE_API_TOKEN_abc123')).toBe('token: [REDACTED]');
  });
});

describe('redact keeps words that only look like keys', () => {
  it('a token-file path ending in token is not a key: the next word stays', () => {
    expect(redact('--token-file /root/agent-token: cannot read it (ENOENT)')).toBe('--token-file /root/agent-token: cannot read it (ENOENT)');
    expect(redact('--token-file /srv/token: cannot read it (EACCES)')).toBe('--token-file /srv/token: cannot read it (EACCES)');
    expect(redact('reading the token: permission denied')).toBe('reading the token: permission denied');
    expect(redact('wrote /etc/bkci/token.env: 0600')).toBe('wrote /etc/bkci/token.env: 0600');
  });

  it('still redacts values after keys, in every form', () => {
    expect(redact('BUILDKITE_AGENT_TOKEN=abcdef123456 started')).toBe('BUILDKITE_AGENT_TOKEN=[REDACTED] started');
    expect(redact('token: 8f1c2e9a7b3d4c5e6f7a')).toBe('token: [REDACTED]');
    expect(redact("password='hunter22'")).toBe("password='[REDACTED]'");
    expect(redact('{"agent_token" : "abcdefgh"}')).toBe('{"agent_token" : "[REDACTED]"}');
    expect(redact('secret: averyveryverylongsecretwithoutdigits')).toBe('secret: [REDACTED]');
    expect(redact('bkci build --token=abcdefgh')).toBe('bkci build --token=[REDACTED]');
  });
});

describe("Buildkite's prefixed tokens", () => {
  it.each(['bkua_', 'bkaa_', 'bkaj_', 'bkct_'])('%s... is redacted wherever it stands', (prefix) => {
    const t = `${prefix}0123456789abcdefABCDEF0123`;
    expect(redact(`got ${t}.`)).toBe('got [REDACTED].');
    expect(redact(`"${t}"`)).toBe('"[REDACTED]"');
  });

  it('a word that only starts like one is kept', () => {
    expect(redact('bkua_short and bkxx_0123456789abcdef')).toBe('bkua_short and bkxx_0123456789abcdef');
  });
});

describe('redactData', () => {
  it('keeps the shape; redacts every string; replaces the value of a secret-named key whole', () => {
    const data = {
      number: 7,
      message: 'deploy with bkua_0123456789abcdefABCDEF',
      env: { HF_TOKEN: 'hf_plainvalue', DB_PASSWORD: 'x', RUN_ALL: '1', NOTE: 'token: BUILDKITE_API_TOKEN', EMPTY_TOKEN: '' },
      jobs: [{ name: 'a', command: 'curl -H "Authorization: Bearer abcdef123456"', agent_token: 'BUILDKITE_AGENT_TOKEN' }],
      ok: true,
      none: null,
    };
    expect(redactData(data)).toEqual({
      number: 7,
      message: 'deploy with [REDACTED]',
      env: { HF_TOKEN: '[REDACTED]', DB_PASSWORD: '[REDACTED]', RUN_ALL: '1', NOTE: 'token: BUILDKITE_API_TOKEN', EMPTY_TOKEN: '' },
      jobs: [{ name: 'a', command: 'curl -H "Authorization: Bearer [REDACTED]"', agent_token: 'BUILDKITE_AGENT_TOKEN' }],
      ok: true,
      none: null,
    });
    expect(data.message).toContain('bkua_'); // the data itself is not changed
  });
});

describe('streamRedactor', () => {
  const through = (parts: string[]) => {
    const r = streamRedactor();
    return parts.map((p) => r.part(p)).join('') + r.end();
  };

  it('finds a token split between parts, at any cut', () => {
    const text = 'line one\nexport T=bkaj_0123456789abcdefABCDEF0123 done\nlast line without newline';
    const want = 'line one\nexport T=[REDACTED] done\nlast line without newline';
    for (let cut = 0; cut <= text.length; cut++) expect(through([text.slice(0, cut), text.slice(cut)]), String(cut)).toBe(want);
    expect(through(text.split(''))).toBe(want);
  });

  it('passes each complete line on at once, and a very long line in pieces (not held whole)', () => {
    const r = streamRedactor();
    expect(r.part('a\nb')).toBe('a\n');
    expect(r.part('c\n')).toBe('bc\n');
    const long = 'word '.repeat(30_000);
    const out = r.part(long);
    expect(out.length).toBeGreaterThan(100_000);
    expect(out + r.end()).toBe(long);
  });

  // Lines far longer than what is held (no line break for hundreds of KiB), secrets of every
  // kind at random places, the text cut at random places (inside the secrets too): the output is
  // what redact() makes of the whole text, and no secret's value shows.
  it(`a line of any length: the same as redacting it whole, whatever the cuts (seeded; BKCI_FUZZ_CASES for more)`, () => {
    registerSecret('registered.secret-with~odd/chars');
    const kinds: [string, string][] = [
      ['Authorization: Bearer ', 'sekr3t-value.with~dots/and+signs='],
      ['HF_TOKEN=', 'hf_abcdefghijklmnopqrstuvwxyz012345'],
      ['"password": "', 'correct-horse-battery-staple-99'],
      ['token: ', 'Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZg'],
      [' ', 'bkua_0123456789abcdefABCDEF0123456789abcd'],
      ['=', 'registered.secret-with~odd/chars'],
    ];
    const cases = Number(process.env.BKCI_FUZZ_CASES ?? 40);
    const next = randomInts(20261208);
    const pads = ['x', 'word ', '.', 'ü😀'];
    for (let c = 0; c < cases; c++) {
      let text = '';
      for (let k = 0, n = 1 + next(6); k < n; k++) {
        text += pads[next(pads.length)]!.repeat(next(3) === 0 ? next(50) : next(40_000));
        const [key, value] = kinds[next(kinds.length)]!;
        text += ` ${key}${value} `;
      }
      if (next(2)) text += '\n';
      const parts: string[] = [];
      for (let at = 0; at < text.length;) {
        const n = next(4) === 0 ? 1 + next(8) : 1 + next(20_000);
        parts.push(text.slice(at, at + n));
        at += n;
      }
      const r = streamRedactor();
      const out = parts.map((p) => r.part(p)).join('') + r.end();
      expect(out === redact(text), `case ${c}: differs from redacting the whole text`).toBe(true);
      for (const [, value] of kinds) expect(out.includes(value), `case ${c}: ${value}`).toBe(false);
    }
  });

  it('holds a bounded part of a line that never ends', () => {
    const r = streamRedactor();
    let out = 0;
    const piece = 'y'.repeat(10_000);
    for (let i = 0; i < 100; i++) {
      out += r.part(piece).length;
      // What is held never exceeds twice the longest secret plus one part.
      expect((i + 1) * piece.length - out).toBeLessThanOrEqual(2 * MAX_SECRET_CHARS + piece.length);
    }
    expect(out + r.end().length).toBe(100 * piece.length);
  });
});
